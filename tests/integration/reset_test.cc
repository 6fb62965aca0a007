// `kcqrs reset` on the real broker: the orders example runs, is stopped,
// is reset (input offsets to the start, changelogs and local state gone,
// its own event topic skipped to its end) and runs again; the same read
// models come back, with no event folded twice. And the reset refuses
// while an instance runs.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "json/document.h"
#include "kcqrs/engine.h"
#include "tests/integration/orders_example.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;

struct Cli {
  int exit_code = -1;
  std::string out;
};

Cli RunCli(const std::string& args, const std::vector<std::string>& sets) {
  std::string cmd = std::string(KCQRS_BINARY) + " " + args;
  for (const std::string& s : sets) cmd += " --set '" + s + "'";
  Cli c;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return c;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, n);
  const int status = pclose(p);
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

std::unique_ptr<Engine> OpenReady(const EngineOptions& options) {
  auto engine = Engine::Open(options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!(*engine)->ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE((*engine)->ready()) << "not ready after 90 s";
  return std::move(engine).value();
}

// Waits until every key of `expected` reads as its value in `store`.
void ExpectStore(const Engine& engine, const std::string& store,
                 const std::map<std::string, json>& expected) {
  for (const auto& [key, want] : expected) {
    json last;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto v = engine.GetStore(store)->Get(key);
      if (v.ok()) {
        last = v->has_value() ? json::parse(**v) : json(nullptr);
        if (last == want) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(last, want) << store << "/" << key;
  }
}

std::set<std::string> Topics(const std::string& bootstrap) {
  std::set<std::string> out;
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  EXPECT_TRUE(admin.ok());
  auto topics = (*admin)->ListTopics(std::chrono::seconds(10));
  EXPECT_TRUE(topics.ok());
  for (const auto& t : *topics) out.insert(t.name);
  return out;
}

const std::map<std::string, json> kOrders = {
    {"o-1", {{"orderId", "o-1"}, {"product", "widget"}, {"quantity", 3}, {"status", "CREATED"}}},
    {"o-2", {{"orderId", "o-2"}, {"product", "widget"}, {"quantity", 2}, {"status", "CANCELLED"}}},
    {"o-3", {{"orderId", "o-3"}, {"product", "gadget"}, {"quantity", 5}, {"status", "CREATED"}}},
};
// o-1 and o-3 count; o-2 was cancelled; a rejected CreateOrder and the
// retry of c-1 add nothing. Folding an event twice would double these.
const std::map<std::string, json> kTotals = {
    {"widget", {{"product", "widget"}, {"orders", 1}, {"quantity", 3}}},
    {"gadget", {{"product", "gadget"}, {"orders", 1}, {"quantity", 5}}},
};

class ResetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    ASSERT_FALSE(bootstrap_.empty());
    n_ = MakeOrdersNames(UniqueName("orders-reset"));
    std::filesystem::remove_all(n_.state_dir);
    sets_ = OrdersOverrides(n_, bootstrap_);
    options_ = LoadOrders(n_, bootstrap_);
  }
  void TearDown() override { std::filesystem::remove_all(n_.state_dir); }

  void ProduceCommands() {
    auto producer = MakeProducer(bootstrap_);
    ASSERT_NE(producer, nullptr);
    Produce(producer.get(), n_.commands, "o-1", CreateOrder("o-1", "widget", 3, "c-1"));
    Produce(producer.get(), n_.commands, "o-2", CreateOrder("o-2", "widget", 2, "c-2"));
    Produce(producer.get(), n_.commands, "o-1", CreateOrder("o-1", "gadget", 9, "c-3"));
    Produce(producer.get(), n_.commands, "o-2", CancelOrder("o-2", "c-4"));
    Produce(producer.get(), n_.commands, "o-3", CreateOrder("o-3", "gadget", 5, "c-5"));
    Produce(producer.get(), n_.commands, "o-1", CreateOrder("o-1", "widget", 3, "c-1"));
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  }

  std::string topology() const { return KCQRS_SOURCE_DIR "/examples/orders/topology.yaml"; }

  std::string bootstrap_;
  OrdersNames n_;
  std::vector<std::string> sets_;
  EngineOptions options_;
};

TEST_F(ResetTest, ResetThenRerunBringsBackTheSameReadModels) {
  {
    auto engine = OpenReady(options_);
    ASSERT_NE(engine, nullptr);
    ProduceCommands();
    ExpectStore(*engine, "orders", kOrders);
    ExpectStore(*engine, "product_totals", kTotals);
    engine->Stop();
  }
  const std::string orders_changelog = n_.app + "-orders-changelog";
  const std::string aggregate_changelog = n_.app + "-order-aggregates-changelog";
  const std::string repartition = n_.app + "-product_totals-repartition";
  {
    const auto before = Topics(bootstrap_);
    ASSERT_TRUE(before.count(orders_changelog));
    ASSERT_TRUE(before.count(aggregate_changelog));
    ASSERT_TRUE(before.count(repartition));
  }
  ASSERT_FALSE(std::filesystem::is_empty(n_.state_dir));

  // A dry run says what it would do and changes nothing.
  Cli dry = RunCli("reset --dry-run " + topology(), sets_);
  ASSERT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_NE(dry.out.find("dry run"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find(n_.commands + "-0: "), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("(written by the application: to its end)"), std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("  " + orders_changelog + "\n"), std::string::npos) << dry.out;
  EXPECT_TRUE(Topics(bootstrap_).count(orders_changelog));

  // A time after every record puts the inputs at their end.
  Cli later = RunCli("reset --dry-run --to-datetime 2999-01-01T00:00:00Z " + topology(), sets_);
  ASSERT_EQ(later.exit_code, 0) << later.out;
  EXPECT_EQ(later.out.find(n_.commands + "-0: 0 -> 0"), std::string::npos) << later.out;

  Cli reset = RunCli("reset " + topology(), sets_);
  ASSERT_EQ(reset.exit_code, 0) << reset.out;
  const auto topics = Topics(bootstrap_);
  EXPECT_FALSE(topics.count(orders_changelog)) << reset.out;
  EXPECT_FALSE(topics.count(aggregate_changelog)) << reset.out;
  EXPECT_FALSE(topics.count(repartition)) << reset.out;
  EXPECT_TRUE(topics.count(n_.commands));
  EXPECT_TRUE(topics.count(n_.events));
  for (const auto& e : std::filesystem::directory_iterator(n_.state_dir)) {
    EXPECT_FALSE(e.is_directory()) << "left behind: " << e.path();
  }
  // The group starts over on the commands, and after the old events.
  {
    auto c = kafka::Consumer::Create({{"bootstrap.servers", bootstrap_}, {"group.id", n_.app}});
    ASSERT_TRUE(c.ok());
    std::vector<kafka::TopicPartitionOffset> parts;
    for (int p = 0; p < 3; ++p) {
      parts.push_back({n_.commands, p, kafka::kOffsetInvalid});
      parts.push_back({n_.events, p, kafka::kOffsetInvalid});
    }
    auto committed = (*c)->Committed(parts, std::chrono::seconds(10));
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    for (const auto& o : *committed) {
      auto marks = (*c)->QueryWatermarks(o.topic, o.partition, std::chrono::seconds(10));
      ASSERT_TRUE(marks.ok());
      EXPECT_EQ(o.offset, o.topic == n_.commands ? marks->first : marks->second)
          << o.topic << "-" << o.partition;
    }
  }

  // The rerun decides every command again from nothing and folds only the
  // events it writes: the same read models.
  auto engine = OpenReady(options_);
  ASSERT_NE(engine, nullptr);
  ExpectStore(*engine, "orders", kOrders);
  ExpectStore(*engine, "product_totals", kTotals);
  // Every event now twice in the topic (the old run's and the rerun's), and
  // still folded once: the totals stay as they are once the group caught up.
  ReadCommitted(bootstrap_, n_.events, 2 * 4, std::chrono::seconds(60));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ExpectStore(*engine, "product_totals", kTotals);
  engine->Stop();
}

TEST_F(ResetTest, RefusesWhileAnInstanceRunsAndChangesNothing) {
  auto engine = OpenReady(options_);
  ASSERT_NE(engine, nullptr);
  ProduceCommands();
  ExpectStore(*engine, "orders", kOrders);
  Cli reset = RunCli("reset " + topology(), sets_);
  EXPECT_EQ(reset.exit_code, 1) << reset.out;
  EXPECT_NE(reset.out.find("stop every instance first"), std::string::npos) << reset.out;
  EXPECT_NE(reset.out.find("nothing was reset"), std::string::npos) << reset.out;
  EXPECT_TRUE(Topics(bootstrap_).count(n_.app + "-orders-changelog"));
  ExpectStore(*engine, "product_totals", kTotals);
  engine->Stop();
}

}  // namespace
}  // namespace kcqrs
