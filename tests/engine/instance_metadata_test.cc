// InstanceMetadata without a broker: the records instances exchange, and
// the directory built from them (liveness, tombstones, two claimants).
// tests/integration/instances_test.cc runs it between two engines on Kafka.
#include "engine/runtime/instance_metadata.h"

#include <gtest/gtest.h>

#include "engine/runtime/client_configs.h"

namespace kcqrs::engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

InstanceInfo Info(const std::string& id, std::vector<std::string> active,
                  std::vector<std::string> standby = {}, int64_t updated_ms = 1000) {
  InstanceInfo i;
  i.id = id;
  i.url = "http://" + id + ":8080";
  i.active_tasks = std::move(active);
  i.standby_tasks = std::move(standby);
  i.updated_ms = updated_ms;
  return i;
}

std::vector<std::string> Ids(const std::vector<InstanceInfo>& infos) {
  std::vector<std::string> out;
  for (const auto& i : infos) out.push_back(i.id);
  return out;
}

TEST(InstanceInfoCodecTest, RoundTrips) {
  InstanceInfo in = Info("b7f3", {"0_0", "1_0"}, {"0_1"}, 1717000000123);
  const std::string json = EncodeInstanceInfo(in);
  EXPECT_EQ(json,
            R"({"active":["0_0","1_0"],"id":"b7f3","standby":["0_1"],)"
            R"("updated_ms":1717000000123,"url":"http://b7f3:8080","v":1})");
  auto out = DecodeInstanceInfo(json);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, "b7f3");
  EXPECT_EQ(out->url, "http://b7f3:8080");
  EXPECT_EQ(out->active_tasks, (std::vector<std::string>{"0_0", "1_0"}));
  EXPECT_EQ(out->standby_tasks, (std::vector<std::string>{"0_1"}));
  EXPECT_EQ(out->updated_ms, 1717000000123);
  EXPECT_FALSE(out->self);
}

TEST(InstanceInfoCodecTest, RefusesWhatItCannotReadAndSaysWhy) {
  struct Case {
    const char* json;
    const char* why;
  } cases[] = {
      {"not json", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {R"({"v":2,"id":"a","url":"u","updated_ms":1})", "expected format version \"v\":1, found 2"},
      {R"({"v":1,"url":"u","updated_ms":1})", "\"id\": expected a non-empty string"},
      {R"({"v":1,"id":"a","url":"u","active":"0_0","updated_ms":1})",
       "\"active\": expected an array"},
      {R"({"v":1,"id":"a","url":"u","active":[1],"updated_ms":1})",
       "\"active\": expected strings, found 1"},
      {R"({"v":1,"id":"a","url":"u"})", "\"updated_ms\": expected an integer"},
  };
  for (const Case& c : cases) {
    auto r = DecodeInstanceInfo(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << c.json;
    EXPECT_NE(r.status().message().find(c.why), std::string::npos)
        << c.json << ": " << r.status().message();
  }
}

TEST(CommitCodecTest, RoundTripsCompactlyAsARemoteEntry) {
  PositionLog::Entry e;
  e.consumed_next[{"orders.commands", 2}] = 1235;
  e.produced_last[{"orders.events", 2}] = 880;
  e.produced_last[{"orders.rejections", 2}] = 17;
  e.dead_letters[{"orders.commands", 2}][1234] = "not JSON";
  const std::string json = EncodeCommit(e);
  EXPECT_EQ(json,
            R"({"c":[[0,2,1235]],"d":[[0,2,1234,"not JSON"]],"p":[[1,2,880],[2,2,17]],)"
            R"("t":["orders.commands","orders.events","orders.rejections"],"v":1})");
  auto out = DecodeCommit(json);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(out->local);
  EXPECT_EQ(out->consumed_next, e.consumed_next);
  EXPECT_EQ(out->produced_last, e.produced_last);
  EXPECT_EQ(out->dead_letters, e.dead_letters);
}

TEST(CommitCodecTest, RefusesABadTopicIndex) {
  auto r = DecodeCommit(R"({"v":1,"t":["a"],"c":[[1,0,5]]})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"c\": expected [topic index, partition, offset], "
                                      "found [1,0,5]"),
            std::string::npos)
      << r.status().message();
  EXPECT_FALSE(DecodeCommit(R"({"v":1,"t":["a"],"d":[[0,0,5]]})").ok());
}

// A clock the test moves by hand.
struct FakeClock {
  steady_clock::time_point now = steady_clock::time_point() + std::chrono::hours(1);
  InstanceTable::Clock fn() {
    return [this] { return now; };
  }
};

TEST(InstanceTableTest, ListsItselfAndTheLiveOthersByIdUntilThreeHeartbeatsPass) {
  FakeClock clock;
  InstanceTable table("b", clock.fn());
  table.SetSelf(Info("b", {"0_1"}));
  table.Heard(Info("c", {"0_2"}), clock.now);
  table.Heard(Info("a", {"0_0"}), clock.now - milliseconds(5000));

  auto all = table.Instances();
  EXPECT_EQ(Ids(all), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(all[1].self);
  EXPECT_FALSE(all[0].self);
  EXPECT_EQ(table.self_id(), "b");

  clock.now += milliseconds(1001);  // a: 6001 ms without a word
  EXPECT_EQ(Ids(table.Instances()), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(table.ActiveHolder("0_0").has_value());

  table.Heard(Info("a", {"0_0"}), clock.now);  // a heartbeat brings it back
  ASSERT_TRUE(table.ActiveHolder("0_0").has_value());
  EXPECT_EQ(table.ActiveHolder("0_0")->url, "http://a:8080");

  clock.now += seconds(60);  // the others fall silent; this one never does
  EXPECT_EQ(Ids(table.Instances()), (std::vector<std::string>{"b"}));
  ASSERT_TRUE(table.ActiveHolder("0_1").has_value());
  EXPECT_TRUE(table.ActiveHolder("0_1")->self);
}

TEST(InstanceTableTest, ATombstoneRemovesAnInstanceAtOnce) {
  FakeClock clock;
  InstanceTable table("b", clock.fn());
  table.Heard(Info("a", {"0_0"}), clock.now);
  ASSERT_TRUE(table.ActiveHolder("0_0").has_value());
  table.Remove("a");
  EXPECT_FALSE(table.ActiveHolder("0_0").has_value());
  EXPECT_EQ(Ids(table.Instances()), (std::vector<std::string>{"b"}));
  table.Remove("b");  // its own id (an old incarnation's tombstone): still listed
  EXPECT_EQ(Ids(table.Instances()), (std::vector<std::string>{"b"}));
}

TEST(InstanceTableTest, OfTwoClaimantsTheOneThatSaidSoLastHoldsTheTask) {
  FakeClock clock;
  InstanceTable table("self", clock.fn());
  table.Heard(Info("a", {"0_0", "0_1"}, {}, 5000), clock.now);
  table.Heard(Info("c", {"0_1"}, {}, 7000), clock.now);
  table.Heard(Info("b", {"0_1"}, {}, 6000), clock.now);
  ASSERT_TRUE(table.ActiveHolder("0_1").has_value());
  EXPECT_EQ(table.ActiveHolder("0_1")->id, "c");
  EXPECT_EQ(table.ActiveHolder("0_0")->id, "a");
  // c falls silent: b, the newer of the two left, holds it.
  table.Heard(Info("a", {"0_0", "0_1"}, {}, 5000), clock.now + seconds(5));
  table.Heard(Info("b", {"0_1"}, {}, 6000), clock.now + seconds(5));
  clock.now += seconds(7);
  EXPECT_EQ(table.ActiveHolder("0_1")->id, "b");
  EXPECT_FALSE(table.ActiveHolder("9_9").has_value());
}

TEST(InstanceTableTest, StandbyHoldersAreTheLiveInstancesWithACopy) {
  FakeClock clock;
  InstanceTable table("self", clock.fn());
  table.SetSelf(Info("self", {}, {"0_0"}));
  table.Heard(Info("a", {"0_0"}, {"0_1"}), clock.now);
  table.Heard(Info("b", {"0_1"}, {"0_0"}), clock.now);
  EXPECT_EQ(Ids(table.StandbyHolders("0_0")), (std::vector<std::string>{"b", "self"}));
  EXPECT_EQ(Ids(table.StandbyHolders("0_1")), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(table.StandbyHolders("0_2").empty());
}

TEST(InstanceTableTest, ItsOwnRecordsFromKafkaDoNotReplaceWhatItKnows) {
  FakeClock clock;
  InstanceTable table("b", clock.fn());
  table.SetSelf(Info("b", {"0_1"}));
  table.Heard(Info("b", {"0_7"}), clock.now);  // a previous incarnation's last word
  EXPECT_EQ(table.ActiveHolder("0_1")->id, "b");
  EXPECT_FALSE(table.ActiveHolder("0_7").has_value());
  EXPECT_EQ(table.Instances().size(), 1u);
}

TEST(AdvertisedUrlTest, TheConfiguredOneElseTheBoundAddressElseTheHostname) {
  EXPECT_EQ(AdvertisedUrl("http://orders-1:80", "0.0.0.0:8080", "h"), "http://orders-1:80");
  EXPECT_EQ(AdvertisedUrl("", "127.0.0.1:8080", "h"), "http://127.0.0.1:8080");
  EXPECT_EQ(AdvertisedUrl("", "[::1]:8080", "h"), "http://[::1]:8080");
  EXPECT_EQ(AdvertisedUrl("", "0.0.0.0:8080", "node7"), "http://node7:8080");
  EXPECT_EQ(AdvertisedUrl("", "[::]:9000", "node7"), "http://node7:9000");
}

TEST(MetadataClientConfigTest, IdempotentNeverTransactionalNeverAGroupMember) {
  EngineOptions options;
  options.application.id = "orders";
  options.kafka.properties["security.protocol"] = "SASL_SSL";
  options.kafka.properties["enable.idempotence"] = "false";
  ClientConfig p = MetadataProducerConfig(options, "k:9092", "orders-x-metadata");
  EXPECT_EQ(p.properties.at("enable.idempotence"), "true");
  EXPECT_EQ(p.properties.count("transactional.id"), 0u);
  EXPECT_EQ(p.properties.at("security.protocol"), "SASL_SSL");
  ASSERT_EQ(p.overridden.size(), 1u);
  EXPECT_NE(p.overridden[0].find("enable.idempotence=false"), std::string::npos);
  ClientConfig c = MetadataConsumerConfig(options, "k:9092", "orders-x-metadata");
  EXPECT_EQ(c.properties.count("group.id"), 0u);
  EXPECT_EQ(c.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(c.properties.at("bootstrap.servers"), "k:9092");
}

}  // namespace
}  // namespace kcqrs::engine
