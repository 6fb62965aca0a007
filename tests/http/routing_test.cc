// Any instance answers any query, broker-free: three HttpApi instances on
// loopback, each over a fake engine hosting some partitions, all sharing one
// fake InstanceDirectory (what the runtime's instance metadata would say).
// Commands go to the embedded mock cluster. What a client of any one
// instance sees: the holder's answer and who served it, scans merged across
// instances, one hop only, fast 503s for holders unknown or dead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config_loader.h"
#include "engine/codec/partitioner.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/mock_cluster.h"
#include "engine/serving/http_api.h"
#include "json/document.h"
#include "tests/support/http_client.h"
#include "tests/support/map_store.h"
#include "tests/support/test_certs.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;
using kcqrs::testing::HttpRequest;
using kcqrs::testing::HttpResult;
using SteadyClock = std::chrono::steady_clock;

using kcqrs::testing::MapStore;

constexpr char kTopology[] = R"(application:
  id: routing-test
kafka:
  bootstrap_servers: embedded
aggregates:
  ticket:
    command_topics: [tickets.commands]
    event_topic: tickets.events
    rejection_topic: tickets.rejections
    store: tickets
    commands:
      Open:
        emit:
          - type: Opened
    events:
      Opened:
        set:
          open: "true"
projections:
  views:
    event_topics: [tickets.events]
    store: views
    events:
      Opened:
        merge:
          n: "1"
)";

// What every instance's directory says: one list, shared.
struct Cluster {
  std::mutex mu;
  std::vector<InstanceInfo> instances;
  // Instances whose directory is behind a handover: they see no holder.
  std::set<std::string> behind;
};

class FakeDirectory final : public InstanceDirectory {
 public:
  FakeDirectory(Cluster* cluster, std::string self) : cluster_(cluster), self_(std::move(self)) {}
  std::vector<InstanceInfo> Instances() const override {
    std::lock_guard<std::mutex> lock(cluster_->mu);
    std::vector<InstanceInfo> out = cluster_->instances;
    for (InstanceInfo& i : out) i.self = i.id == self_;
    return out;
  }
  std::optional<InstanceInfo> ActiveHolder(const std::string& task) const override {
    {
      std::lock_guard<std::mutex> lock(cluster_->mu);
      if (cluster_->behind.count(self_)) return std::nullopt;
    }
    for (const InstanceInfo& i : Instances()) {
      if (std::count(i.active_tasks.begin(), i.active_tasks.end(), task)) return i;
    }
    return std::nullopt;
  }
  std::vector<InstanceInfo> StandbyHolders(const std::string& task) const override {
    std::vector<InstanceInfo> out;
    for (const InstanceInfo& i : Instances()) {
      if (std::count(i.standby_tasks.begin(), i.standby_tasks.end(), task)) out.push_back(i);
    }
    return out;
  }
  std::string self_id() const override { return self_; }

 private:
  Cluster* cluster_;
  std::string self_;
};

class FakeEngine final : public EngineView {
 public:
  FakeEngine(Cluster* cluster, std::string id) : directory_(cluster, std::move(id)) {
    auto options = config::LoadEngineOptionsFromString(kTopology, "t.yaml", {});
    EXPECT_TRUE(options.ok()) << options.status().ToString();
    auto compiled = CompiledTopology::Compile(*options);
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    EXPECT_TRUE((*compiled)->ResolvePartitions({{"tickets.commands", 3}}).ok());
    topology_ = std::shared_ptr<const CompiledTopology>(std::move(compiled).value());
    registry_ = std::make_unique<StoreRegistry>(
        std::map<std::string, int>{{"tickets", 3}, {"views", 3}});
    standby_registry_ = std::make_unique<StoreRegistry>(
        std::map<std::string, int>{{"tickets", 3}, {"views", 3}});
  }
  std::shared_ptr<const CompiledTopology> topology() const override { return topology_; }
  StoreRegistry* registry() const override { return registry_.get(); }
  StoreRegistry* standby_registry() const override { return standby_registry_.get(); }
  const PositionLog& positions() const override { return positions_; }
  PositionLog& mutable_positions() { return positions_; }
  bool ready() const override { return true; }
  Status health() const override { return Status::OK(); }
  ReadinessReport Readiness() const override { return {}; }
  StatsReport Stats() const override { return {}; }
  metrics::Metrics* metrics() override { return &metrics_; }
  const InstanceDirectory* instances() const override {
    return with_directory_ ? &directory_ : nullptr;
  }
  bool with_directory_ = true;

 private:
  FakeDirectory directory_;
  std::shared_ptr<const CompiledTopology> topology_;
  std::unique_ptr<StoreRegistry> registry_;
  std::unique_ptr<StoreRegistry> standby_registry_;
  PositionLog positions_;
  metrics::Metrics metrics_;
};

struct Instance {
  std::unique_ptr<FakeEngine> engine;
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<http::Server> server;
  std::string address() const { return server->local_address(); }
};

// A port nobody listens on.
std::string DeadUrl() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

class RoutingTest : public ::testing::Test {
 protected:
  // What every instance's API and server are given (SecureRoutingTest:
  // TLS and a query token); the scheme of the urls in the directory.
  virtual void Configure(HttpApiOptions*, http::ServerOptions*) {}
  virtual std::string Scheme() const { return "http"; }

  void SetUp() override {
    auto cluster = kafka::MockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    kafka_ = std::move(cluster).value();
    ASSERT_TRUE(kafka_->CreateTopic("tickets.commands", 3, 1).ok());
    for (const std::string id : {"a", "b", "c"}) {
      Instance in;
      in.engine = std::make_unique<FakeEngine>(&cluster_, id);
      HttpApiOptions options;
      options.bootstrap_servers = kafka_->bootstrap_servers();
      options.application_id = "routing-test";
      http::ServerOptions server_options;
      Configure(&options, &server_options);
      auto api = HttpApi::Create(in.engine.get(), options);
      ASSERT_TRUE(api.ok()) << api.status().ToString();
      in.api = std::move(api).value();
      http::Router router;
      in.api->Register(router);
      server_options.listen = "127.0.0.1:0";
      auto server = http::Server::Start(server_options, std::move(router));
      ASSERT_TRUE(server.ok()) << server.status().ToString();
      in.server = std::move(server).value();
      InstanceInfo info;
      info.id = id;
      info.url = Scheme() + "://" + in.address();
      cluster_.instances.push_back(info);
      instances_[id] = std::move(in);
    }
    const auto& topology = *instances_["a"].engine->topology();
    views_st_ = topology.SubTopologyOfStore("views")->id;
    tickets_st_ = topology.SubTopologyOfStore("tickets")->id;
  }
  void TearDown() override {
    for (auto& [id, in] : instances_) in.server->Stop();
    for (auto& [id, in] : instances_) in.api->Stop();
  }

  // `id` hosts and holds partition p of `store`, with `data`.
  void Hold(const std::string& id, const std::string& store, int32_t p,
            std::map<std::string, std::string> data) {
    instances_[id].engine->registry()->Add(store, p, std::make_shared<MapStore>(std::move(data)));
    Say(id, store, p);
  }
  // The directory says `id` holds partition p of `store` (whatever it hosts).
  void Say(const std::string& id, const std::string& store, int32_t p) {
    const int st = store == "views" ? views_st_ : tickets_st_;
    const std::string task = std::to_string(st) + "_" + std::to_string(p);
    std::lock_guard<std::mutex> lock(cluster_.mu);
    for (InstanceInfo& i : cluster_.instances) {
      auto& t = i.active_tasks;
      t.erase(std::remove(t.begin(), t.end(), task), t.end());
      if (i.id == id) {
        t.push_back(task);
        std::sort(t.begin(), t.end());
      }
    }
  }
  // After SpreadViews: partition 1 of views, b's, has moved to an instance
  // that then died (kill -9); the directory still names it ("dead", at a
  // port nobody listens on), and b no longer hosts the partition.
  void HolderOfOneDies() {
    AddInstance("dead", DeadUrl());
    Say("dead", "views", 1);
    instances_["b"].engine->registry()->Remove("views", 1);
  }
  // `id` keeps a standby copy of partition p of `store`, with `data`, and
  // the directory says so.
  void KeepCopy(const std::string& id, const std::string& store, int32_t p,
                std::map<std::string, std::string> data) {
    instances_[id].engine->standby_registry()->Add(store, p,
                                                   std::make_shared<MapStore>(std::move(data)));
    ListCopy(id, store, p);
  }
  // The directory says `id` keeps a standby copy of partition p of `store`
  // (whether it does or not).
  void ListCopy(const std::string& id, const std::string& store, int32_t p) {
    const int st = store == "views" ? views_st_ : tickets_st_;
    std::lock_guard<std::mutex> lock(cluster_.mu);
    for (InstanceInfo& i : cluster_.instances) {
      if (i.id != id) continue;
      i.standby_tasks.push_back(std::to_string(st) + "_" + std::to_string(p));
      std::sort(i.standby_tasks.begin(), i.standby_tasks.end());
    }
  }
  void AddInstance(const std::string& id, const std::string& url) {
    std::lock_guard<std::mutex> lock(cluster_.mu);
    InstanceInfo info;
    info.id = id;
    info.url = url;
    cluster_.instances.push_back(info);
  }

  // Keys a..z spread over the 3 partitions of views, held by a, b, c.
  std::map<std::string, std::string> SpreadViews() {
    std::map<int32_t, std::map<std::string, std::string>> parts;
    std::map<std::string, std::string> all;
    for (char c = 'a'; c <= 'z'; ++c) {
      const std::string key(1, c);
      const std::string value = "{\"k\":\"" + key + "\"}";
      parts[PartitionForKey(key, 3)][key] = value;
      all[key] = value;
    }
    Hold("a", "views", 0, parts[0]);
    Hold("b", "views", 1, parts[1]);
    Hold("c", "views", 2, parts[2]);
    return all;
  }
  // The keys of SpreadViews in partition p, each valued as a standby
  // copy's (so that a test sees which answered).
  static std::map<std::string, std::string> CopyOfViews(int32_t p) {
    std::map<std::string, std::string> copy;
    for (char c = 'a'; c <= 'z'; ++c) {
      const std::string key(1, c);
      if (PartitionForKey(key, 3) == p) copy[key] = "{\"k\":\"" + key + "\",\"copy\":true}";
    }
    return copy;
  }
  // Every page of `target` (a scan) asked on `id`, following the cursor;
  // fails the test on any answer but 200 or a page without
  // Kcqrs-Standby: true when `standby`.
  std::vector<json> AllPages(const std::string& id, const std::string& target,
                             const std::map<std::string, std::string>& headers, bool standby) {
    std::vector<json> pages;
    std::string cursor;
    while (pages.size() < 20) {
      HttpResult r = Get(id, target + (cursor.empty() ? "" : "&cursor=" + cursor), headers);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) break;
      EXPECT_EQ(r.headers["kcqrs-served-by"], id);
      EXPECT_EQ(r.headers.count("kcqrs-standby"), standby ? 1u : 0u) << r.body;
      if (standby) {
        EXPECT_EQ(r.headers["kcqrs-standby"], "true");
      }
      pages.push_back(Body(r));
      if (pages.back()["next"].is_null()) break;
      cursor = pages.back()["next"];
    }
    return pages;
  }
  static std::string KeyIn(int32_t partition) {
    for (char c = 'a'; c <= 'z'; ++c) {
      if (PartitionForKey(std::string(1, c), 3) == partition) return std::string(1, c);
    }
    return "";
  }

  HttpResult Get(const std::string& id, const std::string& target,
                 const std::map<std::string, std::string>& headers = {}) {
    return HttpRequest(instances_[id].address(), "GET", target, "", headers);
  }
  static json Body(const HttpResult& r) { return json::parse(r.body, nullptr, false); }

  std::unique_ptr<kafka::MockCluster> kafka_;
  Cluster cluster_;
  std::map<std::string, Instance> instances_;
  int views_st_ = 0;
  int tickets_st_ = 0;
};

TEST_F(RoutingTest, AKeyWhoseHolderIsDeadIsAnsweredFromAStandbyCopySayingSo) {
  // Partition 1 of views is held by a dead instance; c keeps a standby
  // copy of it. Asked on a, the key is answered by c's copy, marked.
  const std::string key = KeyIn(1);
  AddInstance("dead", DeadUrl());
  Say("dead", "views", 1);
  instances_["c"].engine->standby_registry()->Add(
      "views", 1, std::make_shared<MapStore>(std::map<std::string, std::string>{
                      {key, "{\"k\":\"standby\"}"}}));
  {
    std::lock_guard<std::mutex> lock(cluster_.mu);
    for (InstanceInfo& i : cluster_.instances) {
      if (i.id == "c") i.standby_tasks = {std::to_string(views_st_) + "_1"};
    }
  }
  const auto start = SteadyClock::now();
  HttpResult r = Get("a", "/stores/views/keys/" + key);
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(3));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"k\":\"standby\"}");
  EXPECT_EQ(r.headers["kcqrs-served-by"], "c");
  EXPECT_EQ(r.headers["kcqrs-standby"], "true");
  // Asked on c itself, its own copy answers.
  HttpResult here = Get("c", "/stores/views/keys/" + key);
  ASSERT_EQ(here.status, 200) << here.body;
  EXPECT_EQ(here.headers["kcqrs-standby"], "true");
  // A read that must see a write does not take a standby's word for it.
  HttpResult fresh = Get("a", "/stores/views/keys/" + key + "?position=" +
                                  EncodePositionToken({"tickets.commands", 1, 0}) +
                                  "&timeout_ms=200");
  EXPECT_EQ(fresh.status, 503) << fresh.body;
  EXPECT_EQ(fresh.headers.count("kcqrs-standby"), 0u);
}

// One partition of a store whose task a rebalance is moving away: the
// registry still lists it, but reads fail (its store is being closed).
class ClosingStore final : public ReadOnlyKeyValueStore {
 public:
  const std::string& name() const override { return name_; }
  Result<std::optional<std::string>> Get(std::string_view) const override {
    return Status::Unavailable("the store is closing: its task is moving");
  }
  std::unique_ptr<KeyValueIterator> Range(std::string_view, std::string_view) const override {
    return MapStore({}).Range("", "");
  }
  std::unique_ptr<KeyValueIterator> Prefix(std::string_view) const override {
    return MapStore({}).Prefix("");
  }
  uint64_t ApproximateNumEntries() const override { return 0; }

 private:
  std::string name_ = "closing";
};

TEST_F(RoutingTest, AKeyWhosePartitionLeavesAsItIsReadIsAnsweredFromTheStandbyCopy) {
  // b hosts partition 1 of views as the lookup looks, but its task is
  // moving: the read fails. b keeps a standby copy (the task's next home,
  // or the copy left when the group takes the task from b): the key is
  // answered from it, not with a 503 for the moment of the move (the
  // failover benchmark saw seconds of them).
  const std::string key = KeyIn(1);
  instances_["b"].engine->registry()->Add("views", 1, std::make_shared<ClosingStore>());
  KeepCopy("b", "views", 1, {{key, "{\"k\":\"copy\"}"}});
  HttpResult r = Get("b", "/stores/views/keys/" + key);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{\"k\":\"copy\"}");
  EXPECT_EQ(r.headers["kcqrs-standby"], "true");
}

TEST_F(RoutingTest, KeyHostedElsewhereIsAnsweredByItsHolderSayingWhoServedIt) {
  SpreadViews();
  for (char c = 'a'; c <= 'z'; ++c) {
    const std::string key(1, c);
    const std::string holder = std::string(1, "abc"[PartitionForKey(key, 3)]);
    HttpResult r = Get("a", "/stores/views/keys/" + key);
    ASSERT_EQ(r.status, 200) << key << ": " << r.body;
    EXPECT_EQ(r.body, "{\"k\":\"" + key + "\"}");
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_EQ(r.headers["kcqrs-served-by"], holder) << key;
  }
  // The holder's 404 is the answer: the key does not exist, and who says so.
  Hold("b", "views", 1, {});
  HttpResult missing = Get("a", "/stores/views/keys/" + KeyIn(1));
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(missing.headers["content-type"], "application/problem+json");
  EXPECT_EQ(missing.headers["kcqrs-served-by"], "b");
}

TEST_F(RoutingTest, ScanMergesEveryInstanceInKeyOrderWithOneCursor) {
  const auto all = SpreadViews();
  for (const std::string from : {"a", "b", "c"}) {
    std::vector<std::string> keys;
    std::string cursor;
    int pages = 0;
    while (true) {
      HttpResult r = Get(from, "/stores/views/keys?limit=4" +
                                   (cursor.empty() ? "" : "&cursor=" + cursor));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(r.headers["kcqrs-served-by"], from);
      json body = Body(r);
      EXPECT_LE(body["items"].size(), 4u);
      for (const json& item : body["items"]) {
        keys.push_back(item["key"]);
        EXPECT_EQ(item["value"]["k"], item["key"]);
      }
      ++pages;
      if (body["next"].is_null()) break;
      cursor = body["next"];
      ASSERT_LT(pages, 20) << "the cursor does not advance";
    }
    std::vector<std::string> expected;
    for (const auto& [k, v] : all) expected.push_back(k);
    EXPECT_EQ(keys, expected) << "from " << from;
    EXPECT_EQ(pages, 7);  // 26 keys, 4 a page
  }
  // Ranges and prefixes as a scan of one instance would answer them.
  HttpResult range = Get("b", "/stores/views/keys?from=d&to=h");
  ASSERT_EQ(range.status, 200) << range.body;
  json items = Body(range)["items"];
  ASSERT_EQ(items.size(), 4u) << range.body;
  EXPECT_EQ(items[0]["key"], "d");
  EXPECT_EQ(items[3]["key"], "g");
  EXPECT_TRUE(Body(range)["next"].is_null());
}

TEST_F(RoutingTest, AForwardedRequestIsNeverForwardedAgain) {
  SpreadViews();
  const std::string key = KeyIn(1);
  // The directory is behind: it says c holds partition 1, which c does not
  // host; c must not send the request on (to b, or back to a).
  Say("c", "views", 1);
  HttpResult r = Get("a", "/stores/views/keys/" + key);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(r.headers["kcqrs-served-by"], "c");
  EXPECT_EQ(Body(r).value("type", ""), "urn:kcqrs:problem:partition-not-hosted") << r.body;
  EXPECT_EQ(Body(r)["partition"], 1);
  EXPECT_NE(Body(r).value("detail", "").find("forwarded by a"), std::string::npos) << r.body;

  // Same for a request that says it was forwarded, sent straight to an
  // instance that does not host the key (the directory is right this time).
  Say("b", "views", 1);
  HttpResult direct =
      Get("a", "/stores/views/keys/" + key, {{"Kcqrs-Forwarded-By", "x"}});
  EXPECT_EQ(direct.status, 503) << direct.body;
  EXPECT_EQ(direct.headers["kcqrs-served-by"], "a");
  // A forwarded scan is answered from what is here, never fanned out.
  HttpResult scan = Get("a", "/stores/views/keys", {{"Kcqrs-Forwarded-By", "x"}});
  EXPECT_EQ(scan.status, 503) << scan.body;
  EXPECT_EQ(Body(scan)["missing_partitions"], json::array({1, 2})) << scan.body;
}

TEST_F(RoutingTest, UnknownOrDeadHolderIs503WithRetryAfterAtOnce) {
  SpreadViews();
  const std::string key = KeyIn(1);
  AddInstance("dead", DeadUrl());
  Say("dead", "views", 1);
  auto start = SteadyClock::now();
  HttpResult dead = Get("a", "/stores/views/keys/" + key);
  EXPECT_LT(SteadyClock::now() - start, std::chrono::milliseconds(2000));
  EXPECT_EQ(dead.status, 503) << dead.body;
  EXPECT_EQ(dead.headers["retry-after"], "1");
  EXPECT_EQ(dead.headers["kcqrs-served-by"], "a");
  EXPECT_EQ(Body(dead)["partition"], 1);
  EXPECT_NE(Body(dead).value("detail", "").find("held by instance dead, which did not answer"),
            std::string::npos)
      << dead.body;

  // A scan names the partition it could not get; partial=true has the rest.
  HttpResult scan = Get("a", "/stores/views/keys");
  EXPECT_EQ(scan.status, 503) << scan.body;
  EXPECT_EQ(scan.headers["retry-after"], "1");
  EXPECT_EQ(Body(scan)["missing_partitions"], json::array({1})) << scan.body;
  HttpResult partial = Get("a", "/stores/views/keys?partial=true");
  ASSERT_EQ(partial.status, 200) << partial.body;
  EXPECT_EQ(Body(partial)["partial"], true);
  EXPECT_EQ(Body(partial)["missing_partitions"], json::array({1}));
  size_t expected = 0;
  for (char c = 'a'; c <= 'z'; ++c) expected += PartitionForKey(std::string(1, c), 3) != 1;
  EXPECT_EQ(Body(partial)["items"].size(), expected);

  // Between owners: nobody holds partition 1.
  {
    std::lock_guard<std::mutex> lock(cluster_.mu);
    cluster_.instances.pop_back();
  }
  start = SteadyClock::now();
  HttpResult unknown = Get("a", "/stores/views/keys/" + key);
  EXPECT_LT(SteadyClock::now() - start, std::chrono::milliseconds(1000));
  EXPECT_EQ(unknown.status, 503) << unknown.body;
  EXPECT_EQ(unknown.headers["retry-after"], "1");
  EXPECT_EQ(Body(unknown).value("type", ""), "urn:kcqrs:problem:partition-unavailable");
  EXPECT_NE(Body(unknown).value("detail", "").find("partition 1 of store 'views'"),
            std::string::npos)
      << unknown.body;
}

// kill -9 of the holder of partition 1 of views: nobody answers for it
// until the group moves it, but a keeps a standby copy. A scan that allows
// standby data gets every key, partition 1's from the copy, and is told so.
TEST_F(RoutingTest, ScanWithADeadHolderIsAnsweredFromThisInstancesStandbyCopy) {
  const auto all = SpreadViews();
  HolderOfOneDies();
  KeepCopy("a", "views", 1, CopyOfViews(1));
  const auto start = SteadyClock::now();
  HttpResult r = Get("a", "/stores/views/keys", {{"Kcqrs-Standby-Ok", "1"}});
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(3));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-standby"], "true");
  EXPECT_EQ(r.headers["kcqrs-served-by"], "a");
  json body = Body(r);
  EXPECT_EQ(body["standby_partitions"], json::array({1})) << r.body;
  EXPECT_TRUE(body["next"].is_null());
  std::vector<std::string> keys;
  for (const json& item : body["items"]) {
    const std::string key = item["key"];
    keys.push_back(key);
    EXPECT_EQ(item["value"].value("copy", false), PartitionForKey(key, 3) == 1) << item.dump();
  }
  std::vector<std::string> expected;
  for (const auto& [k, v] : all) expected.push_back(k);
  EXPECT_EQ(keys, expected);

  // The same when nobody holds partition 1 (between owners).
  Say("nobody", "views", 1);
  HttpResult between = Get("a", "/stores/views/keys", {{"Kcqrs-Standby-Ok", "1"}});
  ASSERT_EQ(between.status, 200) << between.body;
  EXPECT_EQ(Body(between)["items"].size(), all.size());
  EXPECT_EQ(Body(between)["standby_partitions"], json::array({1}));
  EXPECT_EQ(between.headers["kcqrs-standby"], "true");
}

// The copy is on another instance: c keeps one, b is listed as keeping one
// but has none (its answer lists the partition missing, so c is asked).
TEST_F(RoutingTest, ScanWithADeadHolderIsAnsweredFromAnotherInstancesStandbyCopy) {
  const auto all = SpreadViews();
  HolderOfOneDies();
  ListCopy("b", "views", 1);
  KeepCopy("c", "views", 1, CopyOfViews(1));
  const auto start = SteadyClock::now();
  HttpResult r = Get("a", "/stores/views/keys?prefix=", {{"Kcqrs-Standby-Ok", "1"}});
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(3));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-standby"], "true");
  EXPECT_EQ(r.headers["kcqrs-served-by"], "a");
  json body = Body(r);
  EXPECT_EQ(body["standby_partitions"], json::array({1})) << r.body;
  ASSERT_EQ(body["items"].size(), all.size()) << r.body;
  for (const json& item : body["items"]) {
    EXPECT_EQ(item["value"].value("copy", false), PartitionForKey(item["key"].get<std::string>(), 3) == 1)
        << item.dump();
  }
  // With no instance keeping a copy that answers, the scan says which
  // partition it could not see, and why.
  instances_["c"].server->Stop();
  HttpResult none = Get("a", "/stores/views/keys", {{"Kcqrs-Standby-Ok", "1"}});
  EXPECT_EQ(none.status, 503) << none.body;
  EXPECT_EQ(none.headers["retry-after"], "1");
  EXPECT_EQ(none.headers.count("kcqrs-standby"), 0u);
  EXPECT_EQ(Body(none)["missing_partitions"], json::array({1, 2})) << none.body;
  EXPECT_NE(Body(none).value("detail", "").find("no standby copy of partition 1 answered"),
            std::string::npos)
      << none.body;
}

// Standby data only when asked for: without Kcqrs-Standby-Ok a scan is
// answered by holders only, as before, copies or not.
TEST_F(RoutingTest, ScanWithoutStandbyOkIs503EvenWhenACopyCouldAnswer) {
  SpreadViews();
  HolderOfOneDies();
  KeepCopy("a", "views", 1, CopyOfViews(1));
  KeepCopy("c", "views", 1, CopyOfViews(1));
  HttpResult r = Get("a", "/stores/views/keys");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(r.headers.count("kcqrs-standby"), 0u);
  EXPECT_EQ(Body(r)["missing_partitions"], json::array({1})) << r.body;
  HttpResult partial = Get("a", "/stores/views/keys?partial=true");
  ASSERT_EQ(partial.status, 200) << partial.body;
  EXPECT_EQ(Body(partial)["missing_partitions"], json::array({1}));
  EXPECT_FALSE(Body(partial).contains("standby_partitions")) << partial.body;
  Say("nobody", "views", 1);
  HttpResult between = Get("a", "/stores/views/keys");
  EXPECT_EQ(between.status, 503) << between.body;
  EXPECT_EQ(Body(between)["missing_partitions"], json::array({1})) << between.body;
}

// A scan that must see a write (?position) waits for holders: a copy,
// behind its holder, cannot say it has seen the write.
TEST_F(RoutingTest, ScanWithAPositionNeverReadsAStandbyCopy) {
  SpreadViews();
  HolderOfOneDies();
  KeepCopy("a", "views", 1, CopyOfViews(1));
  KeepCopy("c", "views", 1, CopyOfViews(1));
  // Every live instance has applied the position: only partition 1 lacks.
  PositionLog::Entry entry;
  entry.consumed_next[{"tickets.events", 0}] = 1;
  for (const std::string id : {"a", "b", "c"}) {
    instances_[id].engine->mutable_positions().Append(entry);
  }
  const std::string position = EncodePositionToken({"tickets.events", 0, 0});
  HttpResult r = Get("a", "/stores/views/keys?position=" + position + "&timeout_ms=500",
                     {{"Kcqrs-Standby-Ok", "1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers.count("kcqrs-standby"), 0u);
  EXPECT_EQ(Body(r)["missing_partitions"], json::array({1})) << r.body;
  // Without the dead holder, the same request is answered: the position
  // was no obstacle.
  Hold("b", "views", 1, CopyOfViews(1));
  HttpResult held = Get("a", "/stores/views/keys?position=" + position + "&timeout_ms=500",
                        {{"Kcqrs-Standby-Ok", "1"}});
  EXPECT_EQ(held.status, 200) << held.body;
  EXPECT_EQ(held.headers.count("kcqrs-standby"), 0u);
}

// Pages with one cursor across holders and copies: partition 1 from c's
// copy, 0 from here, 2 from c as its holder; every key once, in order.
TEST_F(RoutingTest, ScanPagesAcrossAStandbyCopyWithOneCursor) {
  const auto all = SpreadViews();
  HolderOfOneDies();
  KeepCopy("c", "views", 1, CopyOfViews(1));
  for (const std::string from : {"a", "c"}) {
    std::vector<json> pages =
        AllPages(from, "/stores/views/keys?limit=4", {{"Kcqrs-Standby-Ok", "1"}},
                 /*standby=*/true);
    std::vector<std::string> keys;
    for (const json& page : pages) {
      EXPECT_LE(page["items"].size(), 4u);
      EXPECT_EQ(page["standby_partitions"], json::array({1})) << page.dump();
      for (const json& item : page["items"]) keys.push_back(item["key"]);
    }
    std::vector<std::string> expected;
    for (const auto& [k, v] : all) expected.push_back(k);
    EXPECT_EQ(keys, expected) << "from " << from;
    EXPECT_EQ(pages.size(), 7u);  // 26 keys, 4 a page
  }
  // Once the partition has a holder again, the pages are the holder's and
  // say nothing of standbys.
  Hold("b", "views", 1, CopyOfViews(1));
  EXPECT_EQ(AllPages("a", "/stores/views/keys?limit=4", {{"Kcqrs-Standby-Ok", "1"}},
                     /*standby=*/false)
                .size(),
            7u);
}

TEST_F(RoutingTest, PositionTravelsWithTheForwardedQuery) {
  SpreadViews();
  const std::string key = KeyIn(1);
  const std::string token = EncodePositionToken({"tickets.events", 1, 41});
  // b has not applied it: b waits, then says so.
  HttpResult pending =
      Get("a", "/stores/views/keys/" + key + "?position=" + token + "&timeout_ms=200");
  EXPECT_EQ(pending.status, 503) << pending.body;
  EXPECT_EQ(pending.headers["kcqrs-served-by"], "b");
  EXPECT_EQ(Body(pending).value("type", ""), "urn:kcqrs:problem:position-not-reached");
  // b applies it.
  PositionLog::Entry entry;
  entry.consumed_next[{"tickets.events", 1}] = 42;
  instances_["b"].engine->mutable_positions().Append(entry);
  HttpResult applied = Get("a", "/stores/views/keys/" + key + "?position=" + token);
  EXPECT_EQ(applied.status, 200) << applied.body;
  EXPECT_EQ(applied.headers["kcqrs-served-by"], "b");
}

TEST_F(RoutingTest, CommandForAPartitionHeldElsewhereIsAnsweredByTheHolder) {
  // The key's command partition and its aggregate are b's; b has decided
  // the command already, so only b can answer 200 with its events.
  const std::string key = KeyIn(1);
  Hold("b", "tickets", 1,
       {{key, R"({"commands":[{"id":"c-1","events":[{"type":"Opened"}]}],"state":{}})"}});
  Hold("a", "tickets", 0, {});
  PositionLog::Entry entry;
  entry.consumed_next[{"tickets.commands", 1}] = int64_t{1} << 40;
  instances_["b"].engine->mutable_positions().Append(entry);
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true",
                             R"({"type":"Open","commandId":"c-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "b");
  EXPECT_EQ(Body(r)["events"], json::parse(R"([{"type":"Opened"}])")) << r.body;

  // Bad commands are refused where they arrive, with the command handler's
  // words (command_envelope.h).
  HttpResult bad = HttpRequest(instances_["a"].address(), "POST",
                               "/commands/ticket?key=" + key, R"({"kind":"Open"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.headers["kcqrs-served-by"], "a");
  EXPECT_EQ(Body(bad).value("detail", ""),
            "the command has no 'type' field (a string naming the command type)");
}

TEST_F(RoutingTest, CommandWhoseHolderIsDeadIsWrittenHereAndSaysWhy) {
  const std::string key = KeyIn(2);
  AddInstance("dead", DeadUrl());
  Say("dead", "tickets", 2);
  const auto start = SteadyClock::now();
  // With ?wait=true it waits, within its timeout, for another holder of
  // the partition; none comes.
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=500",
                             R"({"type":"Open"})");
  EXPECT_GE(SteadyClock::now() - start, std::chrono::milliseconds(500));
  EXPECT_LT(SteadyClock::now() - start, std::chrono::milliseconds(3000));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "a");
  json body = Body(r);
  EXPECT_EQ(body.value("commandId", "").size(), 32u) << r.body;
  auto position = DecodePositionToken(body.value("position", ""));
  ASSERT_TRUE(position.has_value()) << r.body;
  EXPECT_EQ(position->partition, 2);
  EXPECT_EQ(body["decided"], false);
  EXPECT_NE(body.value("detail", "").find("instance dead, which decides partition 2 of "
                                          "tickets.commands, did not answer"),
            std::string::npos)
      << r.body;
}

// How many records the command topic's partition holds.
int64_t RecordsIn(kafka::MockCluster& kafka, int32_t partition) {
  kafka::Properties p;
  p["bootstrap.servers"] = kafka.bootstrap_servers();
  p["group.id"] = "routing-test-count";
  p["enable.auto.commit"] = "false";
  auto consumer = kafka::Consumer::Create(p);
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  if (!consumer.ok()) return -1;
  auto offsets = (*consumer)->QueryWatermarks("tickets.commands", partition,
                                              std::chrono::seconds(5));
  EXPECT_TRUE(offsets.ok()) << offsets.status().ToString();
  if (!offsets.ok()) return -1;
  return offsets->second - offsets->first;
}

TEST_F(RoutingTest, WaitingCommandBetweenOwnersIsWrittenOnceAndAnsweredByTheNextHolder) {
  // Nobody decides partition 1 when the command arrives; after ~300 ms b
  // takes it over (restored, with the command decided). The client of a
  // gets b's outcome, within its timeout, and the command was written once.
  const std::string key = KeyIn(1);
  instances_["b"].engine->registry()->Add(
      "tickets", 1,
      std::make_shared<MapStore>(std::map<std::string, std::string>{
          {key, R"({"commands":[{"id":"c-9","events":[{"type":"Opened"}]}],"state":{}})"}}));
  PositionLog::Entry entry;
  entry.consumed_next[{"tickets.commands", 1}] = int64_t{1} << 40;
  instances_["b"].engine->mutable_positions().Append(entry);
  std::thread later([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Say("b", "tickets", 1);
  });
  const auto start = SteadyClock::now();
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=5000",
                             R"({"type":"Open","commandId":"c-9"})");
  const auto took = SteadyClock::now() - start;
  later.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "b");
  EXPECT_EQ(Body(r)["commandId"], "c-9");
  EXPECT_EQ(Body(r)["events"], json::parse(R"([{"type":"Opened"}])")) << r.body;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  EXPECT_EQ(RecordsIn(*kafka_, 1), 1);
}

TEST_F(RoutingTest, WaitingCommandIsAnsweredHereWhenThisInstanceTakesThePartitionOver) {
  // Between owners, then a itself takes partition 1 over: its own store
  // answers, and the command was written once.
  const std::string key = KeyIn(1);
  std::thread later([this, key] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Hold("a", "tickets", 1,
         {{key, R"({"commands":[{"id":"c-7","rejected":{"code":"closed","reason":"no"}}]})"}});
    PositionLog::Entry entry;
    entry.consumed_next[{"tickets.commands", 1}] = int64_t{1} << 40;
    instances_["a"].engine->mutable_positions().Append(entry);
  });
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=5000",
                             R"({"type":"Open","commandId":"c-7"})");
  later.join();
  ASSERT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "a");
  EXPECT_EQ(Body(r)["code"], "closed") << r.body;
  EXPECT_EQ(RecordsIn(*kafka_, 1), 1);
}

TEST_F(RoutingTest, WaitingCommandForwardedToAHolderThatJustLostItIsAnsweredByTheNext) {
  // a's directory names c, whose own directory is behind a handover: c
  // does not decide partition 1, writes the command and answers "not
  // decided"; then b takes the partition over. a waits for b rather than
  // relaying c's 202, and the command was written once, by c.
  const std::string key = KeyIn(1);
  Say("c", "tickets", 1);
  {
    std::lock_guard<std::mutex> lock(cluster_.mu);
    cluster_.behind.insert("c");
  }
  instances_["b"].engine->registry()->Add(
      "tickets", 1,
      std::make_shared<MapStore>(std::map<std::string, std::string>{
          {key, R"({"commands":[{"id":"c-5","events":[{"type":"Opened"}]}],"state":{}})"}}));
  PositionLog::Entry entry;
  entry.consumed_next[{"tickets.commands", 1}] = int64_t{1} << 40;
  instances_["b"].engine->mutable_positions().Append(entry);
  std::thread later([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Say("b", "tickets", 1);
  });
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=5000",
                             R"({"type":"Open","commandId":"c-5"})");
  later.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "b");
  EXPECT_EQ(Body(r)["events"], json::parse(R"([{"type":"Opened"}])")) << r.body;
  EXPECT_EQ(RecordsIn(*kafka_, 1), 1);
}

TEST_F(RoutingTest, CommandForwardedToAHolderStillRestoringWaitsThere) {
  // Right after a handover the directory names b, whose task is restoring
  // (its store not hosted yet): b decides the command once restored, and
  // answers it, rather than "not decided here".
  const std::string key = KeyIn(1);
  Say("b", "tickets", 1);
  std::thread later([this, key] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    instances_["b"].engine->registry()->Add(
        "tickets", 1,
        std::make_shared<MapStore>(std::map<std::string, std::string>{
            {key, R"({"commands":[{"id":"c-4","events":[{"type":"Opened"}]}],"state":{}})"}}));
    PositionLog::Entry entry;
    entry.consumed_next[{"tickets.commands", 1}] = int64_t{1} << 40;
    instances_["b"].engine->mutable_positions().Append(entry);
  });
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=5000",
                             R"({"type":"Open","commandId":"c-4"})");
  later.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "b");
  EXPECT_EQ(Body(r)["events"], json::parse(R"([{"type":"Opened"}])")) << r.body;
  EXPECT_EQ(RecordsIn(*kafka_, 1), 1);
}

TEST_F(RoutingTest, WaitingCommandWithNoHolderInTimeIs202WithItsPosition) {
  const std::string key = KeyIn(1);
  const auto start = SteadyClock::now();
  HttpResult r = HttpRequest(instances_["a"].address(), "POST",
                             "/commands/ticket?key=" + key + "&wait=true&timeout_ms=400",
                             R"({"type":"Open","commandId":"c-3"})");
  EXPECT_GE(SteadyClock::now() - start, std::chrono::milliseconds(400));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["kcqrs-served-by"], "a");
  EXPECT_EQ(Body(r)["commandId"], "c-3");
  EXPECT_EQ(Body(r)["decided"], false);
  EXPECT_TRUE(DecodePositionToken(Body(r).value("position", "")).has_value()) << r.body;
  EXPECT_NE(Body(r).value("detail", "").find("no instance took partition 1 of "
                                             "tickets.commands over"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(RecordsIn(*kafka_, 1), 1);
}

TEST_F(RoutingTest, InstancesListsTheDirectory) {
  Hold("b", "views", 1, {});
  HttpResult r = Get("c", "/instances");
  ASSERT_EQ(r.status, 200) << r.body;
  json list = Body(r)["instances"];
  ASSERT_EQ(list.size(), 3u) << r.body;
  EXPECT_EQ(list[1]["id"], "b");
  EXPECT_EQ(list[1]["url"], "http://" + instances_["b"].address());
  EXPECT_EQ(list[1]["active_tasks"], json::array({std::to_string(views_st_) + "_1"}));
  EXPECT_EQ(list[1]["self"], false);
  EXPECT_EQ(list[2]["self"], true);

  instances_["c"].engine->with_directory_ = false;
  HttpResult alone = Get("c", "/instances");
  ASSERT_EQ(alone.status, 200) << alone.body;
  ASSERT_EQ(Body(alone)["instances"].size(), 1u) << alone.body;
  EXPECT_EQ(Body(alone)["instances"][0]["self"], true);
}

}  // namespace
}  // namespace kcqrs::engine

namespace kcqrs::engine {
namespace {

// The same instances over HTTPS with client certificates required and a
// query token: a query asked of one instance is forwarded to the holder
// over TLS, presenting the instance's certificate and the token; a client
// (the real curl) needs the CA, a certificate of its own and the token.
class SecureRoutingTest : public RoutingTest {
 protected:
  static void SetUpTestSuite() { certs_ = new kcqrs::testing::TestCerts(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  void Configure(HttpApiOptions* api, http::ServerOptions* server) override {
    api->query_token = "q-secret";
    api->forward_tls.ca_file = certs_->File("ca.crt");
    api->forward_tls.cert_file = certs_->File("server.crt");
    api->forward_tls.key_file = certs_->File("server.key");
    server->tls.cert_file = certs_->File("server.crt");
    server->tls.key_file = certs_->File("server.key");
    server->tls.ca_file = certs_->File("ca.crt");
    server->tls.client_auth = http::ClientAuth::kRequired;
  }
  std::string Scheme() const override { return "https"; }

  kcqrs::testing::CurlResult Curl(const std::string& id, const std::string& target,
                                  const std::string& token) {
    std::string args = "--noproxy '*' --cacert '" + certs_->File("ca.crt") + "' --cert '" +
                       certs_->File("client.crt") + "' --key '" + certs_->File("client.key") +
                       "' -D - ";
    if (!token.empty()) args += "-H 'Authorization: Bearer " + token + "' ";
    return kcqrs::testing::Curl(args + "'https://" + instances_[id].address() + target + "'");
  }

  static kcqrs::testing::TestCerts* certs_;
};

kcqrs::testing::TestCerts* SecureRoutingTest::certs_ = nullptr;

TEST_F(SecureRoutingTest, QueriesAreForwardedOverTlsWithTheToken) {
  SpreadViews();
  const std::string key = KeyIn(1);  // b's
  auto r = Curl("a", "/stores/views/keys/" + key, "q-secret");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, ::testing::HasSubstr("Kcqrs-Served-By: b"));
  EXPECT_THAT(r.body, ::testing::HasSubstr("{\"k\":\"" + key + "\"}"));

  // A scan fans out to b and c over TLS and merges their pages.
  auto scan = Curl("a", "/stores/views/keys?limit=100", "q-secret");
  EXPECT_EQ(scan.status, 200) << scan.body;
  for (char c = 'a'; c <= 'z'; ++c) {
    EXPECT_THAT(scan.body, ::testing::HasSubstr("\"" + std::string(1, c) + "\""));
  }
}

TEST_F(SecureRoutingTest, QueriesWithoutTheTokenAre401OperationsStayOpen) {
  SpreadViews();
  for (const std::string token : {"", "wrong", "q-secre", "q-secret2"}) {
    auto r = Curl("a", "/stores/views/keys/" + KeyIn(1), token);
    EXPECT_EQ(r.status, 401) << token << ": " << r.body;
    EXPECT_THAT(r.body, ::testing::HasSubstr("WWW-Authenticate: Bearer"));
    EXPECT_THAT(r.body, ::testing::HasSubstr("\"status\":401"));
    EXPECT_EQ(Curl("a", "/stores/views/keys", token).status, 401);
    EXPECT_EQ(Curl("a", "/stores", token).status, 401);
  }
  EXPECT_EQ(Curl("a", "/stores", "q-secret").status, 200);
  // The scheme is case-insensitive (RFC 6750), the token is not.
  auto lower = kcqrs::testing::Curl(
      "--noproxy '*' --cacert '" + certs_->File("ca.crt") + "' --cert '" +
      certs_->File("client.crt") + "' --key '" + certs_->File("client.key") +
      "' -H 'authorization: bearer q-secret' 'https://" + instances_["a"].address() + "/stores'");
  EXPECT_EQ(lower.status, 200) << lower.body;
  EXPECT_EQ(Curl("a", "/stores", "Q-SECRET").status, 401);
  // Probes and scrapers need no token (but TLS all the same).
  for (const std::string path : {"/healthz", "/readyz", "/metrics", "/stats", "/instances"}) {
    const int status = Curl("a", path, "").status;
    EXPECT_TRUE(status == 200 || status == 503) << path << ": " << status;
  }
}

}  // namespace
}  // namespace kcqrs::engine
