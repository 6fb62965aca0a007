// Two instances of one application in one process, on the real broker:
// each learns through Kafka alone who holds which task, a position token
// from one is followed on the other, a clean stop is seen at once, and
// `kcqrs describe --live` lists what they publish.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "engine/codec/partitioner.h"
#include "engine/runtime/engine_internals.h"
#include "json/document.h"
#include "tests/integration/engine_test_util.h"
#include "tests/integration/orders_example.h"
#include "tests/support/examples.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;
using Clock = std::chrono::steady_clock;

constexpr int kCommandPartitions = 4;
// Fewer event partitions than command partitions: a command decided on one
// instance can have its event projected on the other, which is the hop a
// position token must cross between instances.
constexpr int kEventPartitions = 2;

struct Cli {
  int exit_code = -1;
  std::string out;
};

Cli RunCli(const std::string& args) {
  Cli c;
  FILE* p = popen((std::string(KCQRS_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, n);
  int status = pclose(p);
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

class InstancesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    names_ = MakeOrdersNames(UniqueName("orders-inst"));
    overrides_ = OrdersOverrides(names_, bootstrap_);
    for (std::string& o : overrides_) {
      if (o.rfind("topics=", 0) == 0) {
        o = "topics={" + names_.commands + ": {partitions: " +
            std::to_string(kCommandPartitions) + "}, " + names_.events +
            ": {partitions: " + std::to_string(kEventPartitions) + "}, " + names_.rejections +
            ": {partitions: " + std::to_string(kCommandPartitions) + "}}";
      }
    }
  }
  void TearDown() override {
    for (auto& e : engines_) {
      if (e) e->Stop();
    }
    engines_.clear();
    for (const char* suffix : {"-a", "-b"}) {
      std::filesystem::remove_all(names_.state_dir + suffix);
    }
  }

  Engine* Open(const std::string& suffix) {
    EngineOptions options = LoadExample("orders", overrides_);
    options.application.state_dir = names_.state_dir + suffix;
    std::filesystem::remove_all(options.application.state_dir);
    engines_.push_back(OpenEngine(options));
    return engines_.back().get();
  }

  static const engine::InstanceDirectory* Directory(Engine* e) {
    return engine::EngineInternals::View(*e)->instances();
  }

  // Every task of the topology ("0_0", ...), once the engine knows it.
  static std::set<std::string> AllTasks(Engine* e) {
    std::set<std::string> out;
    auto topology = engine::EngineInternals::View(*e)->topology();
    if (!topology) return out;
    for (const engine::SubTopology& st : topology->subtopologies()) {
      for (int p = 0; p < st.partitions; ++p) {
        out.insert(std::to_string(st.id) + "_" + std::to_string(p));
      }
    }
    return out;
  }

  // Both engines list both instances, with disjoint active tasks that cover
  // every task.
  bool BothSeeTheSplit(Engine* a, Engine* b) {
    const std::set<std::string> all = AllTasks(a);
    if (all.empty()) return false;
    for (Engine* e : {a, b}) {
      const auto* dir = Directory(e);
      if (dir == nullptr) return false;
      auto infos = dir->Instances();
      if (infos.size() != 2) return false;
      std::set<std::string> seen;
      size_t total = 0;
      for (const auto& i : infos) {
        seen.insert(i.active_tasks.begin(), i.active_tasks.end());
        total += i.active_tasks.size();
      }
      if (seen != all || total != all.size()) return false;
    }
    return true;
  }

  std::string CliSets() const {
    std::string out;
    for (const std::string& o : overrides_) out += " --set '" + o + "'";
    return out;
  }

  std::string bootstrap_;
  OrdersNames names_;
  std::vector<std::string> overrides_;
  std::vector<std::unique_ptr<Engine>> engines_;
};

TEST_F(InstancesTest, TwoInstancesKnowEachOtherFollowEachOthersTokensAndSeeACleanStop) {
  const auto opened = Clock::now();
  Engine* a = Open("-a");
  Engine* b = Open("-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);

  // Who holds what, learned through Kafka only.
  ASSERT_TRUE(WaitFor([&] { return BothSeeTheSplit(a, b); }, std::chrono::seconds(60)))
      << "a sees " << Directory(a)->Instances().size() << ", b sees "
      << Directory(b)->Instances().size();
  const auto split_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened).count();
  std::printf("both instances list both, tasks split, %lld ms after Open\n",
              static_cast<long long>(split_ms));
  EXPECT_LT(split_ms, 15000);
  for (Engine* e : {a, b}) {
    for (const auto& i : Directory(e)->Instances()) {
      Engine* owner = i.id == Directory(a)->self_id() ? a : b;
      EXPECT_EQ(i.url, "http://" + owner->http_address());
      EXPECT_EQ(i.self, owner == e);
      EXPECT_GT(i.updated_ms, 0);
    }
  }
  ASSERT_NE(Directory(a)->self_id(), Directory(b)->self_id());

  // An order whose command partition is on one instance and whose event
  // partition is on the other.
  auto topology = engine::EngineInternals::View(*a)->topology();
  ASSERT_TRUE(WaitFor([&] { return a->ready() && b->ready(); }, std::chrono::seconds(60)));
  int command_st = -1;
  int event_st = -1;
  for (const engine::SubTopology& st : topology->subtopologies()) {
    if (std::count(st.sources.begin(), st.sources.end(), names_.commands)) command_st = st.id;
    if (std::count(st.sources.begin(), st.sources.end(), names_.events)) event_st = st.id;
  }
  ASSERT_GE(command_st, 0);
  ASSERT_GE(event_st, 0);
  std::string key;
  Engine* decider = nullptr;
  Engine* projector = nullptr;
  // The group may still move tasks after the split seen above (a second
  // rebalance while the stream threads join): look until the directory
  // shows a key whose command and event tasks are held apart.
  WaitFor(
      [&] {
        for (int i = 0; i < 100 && key.empty(); ++i) {
          const std::string k = "o-" + std::to_string(i);
          const std::string command_task =
              std::to_string(command_st) + "_" +
              std::to_string(engine::PartitionForKey(k, kCommandPartitions));
          const std::string event_task =
              std::to_string(event_st) + "_" +
              std::to_string(engine::PartitionForKey(k, kEventPartitions));
          // A rebalance may still move a task (then it has no holder for a
          // moment).
          std::optional<engine::InstanceInfo> c = Directory(a)->ActiveHolder(command_task);
          std::optional<engine::InstanceInfo> e = Directory(a)->ActiveHolder(event_task);
          if (c && e && c->id != e->id) {
            key = k;
            decider = c->self ? a : b;
            projector = e->self ? a : b;
          }
        }
        return !key.empty();
      },
      std::chrono::seconds(15));
  ASSERT_FALSE(key.empty()) << "no key whose command and event land on different instances";

  HttpResult posted = HttpRequest(decider->http_address(), "POST", "/commands/order",
                                  CreateOrder(key, "widget", 2, "inst-1"));
  ASSERT_EQ(posted.status, 202) << posted.body;
  const std::string token = json::parse(posted.body)["position"];
  // The projector never saw the command: only the decider's commit, read
  // from <app>-commits, carries the token to the event it must wait for.
  const auto asked = Clock::now();
  HttpResult order = HttpRequest(projector->http_address(), "GET",
                                 "/stores/orders/keys/" + key + "?position=" + token +
                                     "&timeout_ms=10000");
  ASSERT_EQ(order.status, 200) << order.body;
  EXPECT_EQ(json::parse(order.body)["quantity"], 2);
  std::printf("read-your-writes across instances answered in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         Clock::now() - asked)
                                         .count()));

  // For comparison: a second order across instances (warm), and one whose
  // command and event are both on one instance.
  auto time_ryw = [&](const std::string& k, Engine* post_to, Engine* ask) {
    HttpResult p = HttpRequest(post_to->http_address(), "POST", "/commands/order",
                               CreateOrder(k, "widget", 1, "inst-" + k));
    EXPECT_EQ(p.status, 202) << p.body;
    const auto t0 = Clock::now();
    HttpResult r = HttpRequest(ask->http_address(), "GET",
                               "/stores/orders/keys/" + k + "?position=" +
                                   json::parse(p.body)["position"].get<std::string>() +
                                   "&timeout_ms=10000");
    EXPECT_EQ(r.status, 200) << r.body;
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  std::string across2;
  std::string local;
  for (int i = 100; i < 300 && (across2.empty() || local.empty()); ++i) {
    const std::string k = "o-" + std::to_string(i);
    std::optional<engine::InstanceInfo> c, e;
    ASSERT_TRUE(WaitFor(
        [&] {
          c = Directory(a)->ActiveHolder(
              std::to_string(command_st) + "_" +
              std::to_string(engine::PartitionForKey(k, kCommandPartitions)));
          e = Directory(a)->ActiveHolder(
              std::to_string(event_st) + "_" +
              std::to_string(engine::PartitionForKey(k, kEventPartitions)));
          return c && e;
        },
        std::chrono::seconds(15)));
    if (c->id != e->id && c->id == Directory(decider)->self_id() && across2.empty()) across2 = k;
    if (c->id == e->id && c->id == Directory(projector)->self_id() && local.empty()) local = k;
  }
  ASSERT_FALSE(across2.empty());
  ASSERT_FALSE(local.empty());
  std::printf("again across instances: %lld ms; within one instance: %lld ms\n",
              static_cast<long long>(time_ryw(across2, decider, projector)),
              static_cast<long long>(time_ryw(local, projector, projector)));

  // `kcqrs describe --live` sees what the instances publish.
  Cli text = RunCli("describe --live " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml" +
                    CliSets());
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("application " + names_.app + ": 2 live instance(s)"),
            std::string::npos)
      << text.out;
  for (Engine* e : {a, b}) {
    EXPECT_NE(text.out.find("instance " + Directory(e)->self_id() + " at http://" +
                            e->http_address()),
              std::string::npos)
        << text.out;
  }
  Cli js = RunCli("describe --live " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml" +
                  CliSets() + " --format json");
  ASSERT_EQ(js.exit_code, 0) << js.out;
  json listed = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(listed.is_object()) << js.out;
  EXPECT_EQ(listed["application"], names_.app);
  ASSERT_EQ(listed["instances"].size(), 2u) << js.out;
  std::set<std::string> listed_tasks;
  for (const json& i : listed["instances"]) {
    Engine* e = i["id"] == Directory(a)->self_id() ? a : b;
    EXPECT_EQ(i["url"], "http://" + e->http_address());
    for (const json& t : i["active_tasks"]) listed_tasks.insert(t.get<std::string>());
    EXPECT_EQ(i["standby_tasks"], json::array());
  }
  EXPECT_EQ(listed_tasks, AllTasks(a));

  // A clean stop: its tombstone takes it off the other's list at once, not
  // after the liveness time-out.
  const std::string gone = Directory(decider)->self_id();
  Engine* survivor = decider == a ? b : a;
  const auto stopping = Clock::now();
  decider->Stop();
  ASSERT_TRUE(WaitFor([&] { return Directory(survivor)->Instances().size() == 1; },
                      std::chrono::seconds(3)));
  std::printf("the survivor lists only itself %lld ms after Stop() began\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         Clock::now() - stopping)
                                         .count()));
  EXPECT_TRUE(Directory(survivor)->Instances()[0].self);
  Cli after = RunCli("describe --live " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml" +
                     CliSets());
  ASSERT_EQ(after.exit_code, 0) << after.out;
  EXPECT_NE(after.out.find("1 live instance(s)"), std::string::npos) << after.out;
  EXPECT_EQ(after.out.find(gone), std::string::npos) << after.out;
}

TEST_F(InstancesTest, DescribeLiveSaysWhenTheApplicationNeverRan) {
  Cli c = RunCli("describe --live " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml" +
                 CliSets());
  EXPECT_EQ(c.exit_code, 1) << c.out;
  EXPECT_NE(c.out.find("topic " + names_.app + "-instances does not exist"), std::string::npos)
      << c.out;
}

}  // namespace
}  // namespace kcqrs
