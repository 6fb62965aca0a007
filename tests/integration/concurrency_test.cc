// Optimistic concurrency end to end (issue 12), on the real broker and over
// HTTP as two clients would do it: both read the same order and its ETag,
// both post a change with If-Match and ?wait=true; exactly one wins, the
// other gets 412 with the current version, reads again and wins on retry.
// A view carries the version (meta.version), and a command produced to
// Kafka directly with a malformed expectedVersion is a rejection, not a
// dead letter.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "json/document.h"
#include "tests/integration/engine_test_util.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;

// {app} is replaced by a name of this run: topics, group and state are its own.
constexpr char kTopology[] = R"(application:
  id: {app}
  state_dir: {state}
kafka:
  bootstrap_servers: {bootstrap}
http:
  listen: 127.0.0.1:0
topics:
  {app}.commands: {partitions: 3}
  {app}.events: {partitions: 3}
  {app}.rejections: {partitions: 3}
aggregates:
  order:
    command_topics: [{app}.commands]
    id_field: orderId
    event_topic: {app}.events
    rejection_topic: {app}.rejections
    store: order-aggregates
    commands:
      PlaceOrder:
        emit:
          - type: OrderPlaced
            with: {orderId: command.orderId, quantity: command.quantity}
      ChangeQuantity:
        require:
          - that: state != null
            code: not_found
            reason: "no order {command.orderId}"
        emit:
          - type: QuantityChanged
            with: {orderId: command.orderId, quantity: command.quantity}
    events:
      OrderPlaced:
        set: {quantity: event.quantity}
      QuantityChanged:
        merge: {quantity: event.quantity}
projections:
  orders:
    event_topics: [{app}.events]
    store: orders
    events:
      OrderPlaced:
        upsert: {orderId: event.orderId, quantity: event.quantity, version: meta.version}
      QuantityChanged:
        merge: {quantity: event.quantity, version: meta.version}
)";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    ASSERT_FALSE(bootstrap_.empty());
    app_ = UniqueName("occ");
    state_ = (std::filesystem::temp_directory_path() / ("kcqrs-" + app_)).string();
    std::filesystem::remove_all(state_);
    std::string yaml = Replace(Replace(Replace(kTopology, "{app}", app_), "{state}", state_),
                               "{bootstrap}", bootstrap_);
    auto options = config::LoadEngineOptionsFromString(yaml, "occ.yaml", {});
    ASSERT_TRUE(options.ok()) << options.status().ToString();
    engine_ = OpenEngine(*options);
    ASSERT_NE(engine_, nullptr);
    ASSERT_TRUE(WaitFor([this] { return engine_->ready(); }, std::chrono::seconds(90)));
  }
  void TearDown() override {
    if (engine_) engine_->Stop();
    engine_.reset();
    std::filesystem::remove_all(state_);
  }

  HttpResult Get(const std::string& target) {
    return HttpRequest(engine_->http_address(), "GET", target);
  }
  HttpResult Post(const json& command, std::map<std::string, std::string> headers) {
    return HttpRequest(engine_->http_address(), "POST", "/commands/order?wait=true",
                       command.dump(), headers);
  }
  static json Body(const HttpResult& r) { return json::parse(r.body, nullptr, false); }

  std::string bootstrap_, app_, state_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ConcurrencyTest, TwoClientsChangeOneOrderFromOneVersionAndOneWins) {
  // Create only: If-None-Match: * expects version 0.
  HttpResult placed = Post({{"type", "PlaceOrder"}, {"orderId", "o-1"}, {"quantity", 1}},
                           {{"If-None-Match", "*"}});
  ASSERT_EQ(placed.status, 200) << placed.body;
  EXPECT_EQ(placed.headers["etag"], "\"1\"");
  HttpResult twice = Post({{"type", "PlaceOrder"}, {"orderId", "o-1"}, {"quantity", 9}},
                          {{"If-None-Match", "*"}});
  ASSERT_EQ(twice.status, 412) << twice.body;
  EXPECT_EQ(Body(twice)["currentVersion"], 1);

  // Both clients read the order: the same ETag.
  HttpResult read_a = Get("/stores/order-aggregates/keys/o-1");
  HttpResult read_b = Get("/stores/order-aggregates/keys/o-1");
  ASSERT_EQ(read_a.status, 200) << read_a.body;
  ASSERT_EQ(read_b.status, 200) << read_b.body;
  const std::string etag = read_a.headers["etag"];
  EXPECT_EQ(etag, "\"1\"");
  EXPECT_EQ(read_b.headers["etag"], etag);

  // Both post a change decided on that version, at the same time.
  auto change = [this, etag](int quantity, const std::string& id) {
    return std::async(std::launch::async, [this, etag, quantity, id] {
      return Post({{"type", "ChangeQuantity"}, {"orderId", "o-1"}, {"quantity", quantity},
                   {"commandId", id}},
                  {{"If-Match", etag}});
    });
  };
  auto fa = change(10, "a-1");
  auto fb = change(20, "b-1");
  HttpResult a = fa.get();
  HttpResult b = fb.get();
  ASSERT_TRUE((a.status == 200 && b.status == 412) || (a.status == 412 && b.status == 200))
      << "a: " << a.status << " " << a.body << "\nb: " << b.status << " " << b.body;
  const bool a_won = a.status == 200;
  const HttpResult& won = a_won ? a : b;
  const HttpResult& lost = a_won ? b : a;
  EXPECT_EQ(Body(won)["version"], 2) << won.body;
  EXPECT_EQ(won.headers.at("etag"), "\"2\"");
  const json problem = Body(lost);
  EXPECT_EQ(lost.headers.at("content-type"), "application/problem+json");
  EXPECT_EQ(problem["code"], "conflict") << lost.body;
  EXPECT_EQ(problem["currentVersion"], 2) << lost.body;
  EXPECT_EQ(problem["detail"],
            "order 'o-1' is at version 2, not the expected version 1: read it again and "
            "decide on the current state");
  EXPECT_EQ(lost.headers.at("etag"), "\"2\"");

  // The loser reads again and retries on the current version: it wins.
  HttpResult reread = Get("/stores/order-aggregates/keys/o-1");
  ASSERT_EQ(reread.status, 200) << reread.body;
  EXPECT_EQ(reread.headers["etag"], "\"2\"");
  const int retry_quantity = a_won ? 20 : 10;
  HttpResult retried = Post({{"type", "ChangeQuantity"}, {"orderId", "o-1"},
                             {"quantity", retry_quantity}, {"commandId", a_won ? "b-2" : "a-2"}},
                            {{"If-Match", reread.headers["etag"]}});
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(Body(retried)["version"], 3);

  // The view says which version it shows (meta.version), once it has it.
  const std::string position = Body(retried)["position"];
  HttpResult view = Get("/stores/orders/keys/o-1?position=" + position);
  ASSERT_EQ(view.status, 200) << view.body;
  EXPECT_EQ(Body(view), (json{{"orderId", "o-1"}, {"quantity", retry_quantity}, {"version", 3}}));
  HttpResult aggregate = Get("/stores/order-aggregates/keys/o-1");
  EXPECT_EQ(aggregate.headers["etag"], "\"3\"");
  EXPECT_EQ(Body(aggregate)["state"]["quantity"], retry_quantity);

  // Written to Kafka by any producer: the same field, the same answers. A
  // malformed expectation is a rejection with its own code, never a dead
  // letter; a conflict's rejection record names the current version.
  auto producer = MakeProducer(bootstrap_);
  ASSERT_NE(producer, nullptr);
  Produce(producer.get(), app_ + ".commands", "o-1",
          json{{"type", "ChangeQuantity"}, {"orderId", "o-1"}, {"quantity", 5},
               {"expectedVersion", "3"}, {"commandId", "k-1"}}
              .dump());
  Produce(producer.get(), app_ + ".commands", "o-1",
          json{{"type", "ChangeQuantity"}, {"orderId", "o-1"}, {"quantity", 5},
               {"expectedVersion", 1}, {"commandId", "k-2"}}
              .dump());
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(10)).ok());
  std::map<std::string, json> rejected;
  for (const auto& r : ReadCommitted(bootstrap_, app_ + ".rejections", 4)) {
    json v = json::parse(*r.value);
    rejected[v["commandId"]] = v;
  }
  // The second PlaceOrder, the lost race, k-1 and k-2.
  ASSERT_EQ(rejected.size(), 4u);
  EXPECT_EQ(rejected[a_won ? "b-1" : "a-1"]["code"], "conflict");
  EXPECT_EQ(rejected["k-1"]["code"], "invalid_expected_version");
  EXPECT_EQ(rejected["k-2"]["code"], "conflict");
  EXPECT_EQ(rejected["k-2"]["currentVersion"], 3);
  EXPECT_EQ(rejected["k-2"]["expectedVersion"], 1);
  EXPECT_TRUE(ReadCommitted(bootstrap_, app_ + "-dlq", 0, std::chrono::seconds(10),
                            std::chrono::seconds(1))
                  .empty());
}

}  // namespace
}  // namespace kcqrs
