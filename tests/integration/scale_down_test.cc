// Clean scale-down on the real broker: an instance that stops cleanly hands
// its partitions to the others at once, not after the group's session
// timeout, although its stream threads are static group members (which
// keep a kill -9 + restart fast: kill9_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
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

long long MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

class ScaleDownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    names_ = MakeOrdersNames(UniqueName("orders-down"));
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
    EngineOptions options = LoadOrders(names_, bootstrap_);
    options.application.state_dir = names_.state_dir + suffix;
    std::filesystem::remove_all(options.application.state_dir);
    engines_.push_back(OpenEngine(options));
    return engines_.back().get();
  }

  static const engine::InstanceDirectory* Directory(Engine* e) {
    return engine::EngineInternals::View(*e)->instances();
  }

  // The task of the order aggregate that decides `key`'s commands.
  std::string CommandTask(Engine* e, const std::string& key) {
    auto topology = engine::EngineInternals::View(*e)->topology();
    for (const engine::SubTopology& st : topology->subtopologies()) {
      for (const std::string& source : st.sources) {
        if (source == names_.commands) {
          return std::to_string(st.id) + "_" +
                 std::to_string(engine::PartitionForKey(key, st.partitions));
        }
      }
    }
    return "";
  }

  std::string bootstrap_;
  OrdersNames names_;
  std::vector<std::unique_ptr<Engine>> engines_;
};

TEST_F(ScaleDownTest, ACleanlyStoppedInstanceHandsItsPartitionsOverWithinSeconds) {
  Engine* a = Open("-a");
  Engine* b = Open("-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->ready() && b->ready() && Directory(a) != nullptr &&
               Directory(a)->Instances().size() == 2;
      },
      std::chrono::seconds(60)));

  // A key whose commands b decides. The group may still move tasks after
  // both instances are seen (a second rebalance while the stream threads
  // join; a moment where one instance holds everything): look until the
  // directory shows b holding a command partition.
  std::string key;
  WaitFor(
      [&] {
        for (int i = 0; i < 100 && key.empty(); ++i) {
          const std::string k = "o-" + std::to_string(i);
          std::optional<engine::InstanceInfo> holder =
              Directory(a)->ActiveHolder(CommandTask(a, k));
          if (holder && holder->id == Directory(b)->self_id()) key = k;
        }
        return !key.empty();
      },
      std::chrono::seconds(30));
  ASSERT_FALSE(key.empty()) << "b holds no command partition";
  HttpResult created = HttpRequest(b->http_address(), "POST", "/commands/order?wait=true",
                                   CreateOrder(key, "widget", 2, "down-1"));
  ASSERT_EQ(created.status, 200) << created.body;

  const auto stopping = Clock::now();
  b->Stop();
  const long long stop_ms = MsSince(stopping);
  const auto stopped = Clock::now();

  // A command for b's partition, sent to a at once: no instance holds the
  // partition, so a writes it and answers 202. The user sees it processed
  // when a's read model has the order cancelled: a must hold the command
  // partition (with b's state restored: the order exists) and the event
  // partition. Without the leave, the group waits out b's session (10 s)
  // before giving them to a.
  const std::string cancel =
      json{{"type", "CancelOrder"}, {"orderId", key}, {"commandId", "down-2"}}.dump();
  HttpResult posted = HttpRequest(a->http_address(), "POST", "/commands/order", cancel);
  ASSERT_EQ(posted.status, 202) << posted.body;
  HttpResult order;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    order = HttpRequest(a->http_address(), "GET", "/stores/orders/keys/" + key);
  } while (!(order.status == 200 && json::parse(order.body)["status"] == "CANCELLED") &&
           MsSince(stopped) < 30000);
  const long long processed_ms = MsSince(stopped);
  std::printf("Stop() took %lld ms; a processed a command of b's partition %lld ms after it\n",
              stop_ms, processed_ms);
  ASSERT_EQ(order.status, 200) << order.body;
  EXPECT_EQ(json::parse(order.body)["status"], "CANCELLED") << order.body;
  EXPECT_LT(processed_ms, 5000);
  // Decided once, on b's state: posted again, its outcome is the order's
  // cancellation.
  HttpResult again =
      HttpRequest(a->http_address(), "POST", "/commands/order?wait=true&timeout_ms=10000", cancel);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("OrderCancelled"), std::string::npos) << again.body;
  auto holder = Directory(a)->ActiveHolder(CommandTask(a, key));
  ASSERT_TRUE(holder.has_value());
  EXPECT_TRUE(holder->self);
}

}  // namespace
}  // namespace kcqrs
