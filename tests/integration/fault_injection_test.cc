// Failures at chosen points of a running stream thread, on the real broker
// (issue 9): a failed send while a record's results are released, aborted
// offset sends and commits, and RocksDB applies that fail after Kafka has
// committed. Commands keep flowing, some of them written to the wrong
// partition on purpose (a producer with another partitioner). At the end
// every command has exactly one outcome, each misrouted command was decided
// against its aggregate's real state, and both read models (product_totals
// behind a repartition topic included) equal an independent fold of the
// committed events.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>

#include "engine/runtime/fault_injector.h"
#include "engine/kafka/admin.h"
#include "engine/codec/partitioner.h"
#include "tests/integration/engine_test_util.h"
#include "tests/integration/orders_example.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;
using json = kcqrs::Json;
using Point = engine::FaultInjector::Point;

// Fails chosen calls at each point, each with its own status.
class ScheduledFaults final : public engine::FaultInjector {
 public:
  void FailAt(Point p, std::set<int> calls, const Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : calls) plan_[p].calls[c] = status;
  }
  Status Check(Point p) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plan_.find(p);
    if (it == plan_.end() || !enabled_) return Status::OK();
    Plan& plan = it->second;
    auto call = plan.calls.find(++plan.seen);
    if (call == plan.calls.end()) return Status::OK();
    ++plan.injected;
    return call->second;
  }
  int injected(Point p) {
    std::lock_guard<std::mutex> lock(mu_);
    return plan_[p].injected;
  }
  void Disable() {
    std::lock_guard<std::mutex> lock(mu_);
    enabled_ = false;
  }

 private:
  struct Plan {
    std::map<int, Status> calls;
    int seen = 0;
    int injected = 0;
  };
  std::mutex mu_;
  std::map<Point, Plan> plan_;
  bool enabled_ = true;
};

TEST(FaultInjectionTest, FailuresInARunningThreadLoseAndDoubleNothing) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-faults"));
  std::filesystem::remove_all(n.state_dir);

  auto faults = std::make_shared<ScheduledFaults>();
  // Sends fail mid-record (an order's events and its aggregate write are
  // several sends), commits and offset sends abort, and RocksDB refuses to
  // apply two committed transactions.
  faults->FailAt(Point::kSend, {40, 41, 700, 1500, 2600}, Status::Unavailable("injected: send"));
  faults->FailAt(Point::kSendOffsets, {12, 47}, Status::Aborted("injected: send offsets"));
  // A retriable failure is retried within the transaction.
  faults->FailAt(Point::kSendOffsets, {3, 9},
                 Status::Unavailable("injected: send offsets; the call may be retried"));
  faults->FailAt(Point::kCommit, {2, 4, 5}, Status::Aborted("injected: commit"));
  faults->FailAt(Point::kApplyState, {20, 55}, Status::IoError("injected: RocksDB write"));
  engine::SetFaultInjectorForTesting(faults);
  auto engine = OpenEngine(LoadOrders(n, bootstrap));
  engine::SetFaultInjectorForTesting(nullptr);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));

  // Commands: orders created, some cancelled, some retried with the same
  // command id, and some cancels written straight to a partition their order
  // does not hash to.
  auto producer = MakeProducer(bootstrap);
  std::set<std::string> command_ids;
  std::set<std::string> misrouted;
  constexpr int kOrders = 300;
  constexpr int kPartitions = 3;
  for (int i = 0; i < kOrders; ++i) {
    const std::string id = "o-" + std::to_string(i);
    const std::string product = "p-" + std::to_string(i % 7);
    Produce(producer.get(), n.commands, id, CreateOrder(id, product, 1 + i % 5, "c-" + id));
    command_ids.insert("c-" + id);
    if (i % 10 == 0) {
      // A retry: the same command id must not emit twice.
      Produce(producer.get(), n.commands, id, CreateOrder(id, product, 1 + i % 5, "c-" + id));
    }
    if (i % 4 == 1) {
      kafka::OutgoingRecord r;
      r.topic = n.commands;
      r.key = id;
      r.value = CancelOrder(id, "x-" + id);
      if (i % 8 == 1) {
        r.partition = (engine::PartitionForKey(id, kPartitions) + 1) % kPartitions;
        misrouted.insert("x-" + id);
      }
      ASSERT_TRUE(producer->Send(r).ok());
      command_ids.insert("x-" + id);
    }
    if (i % 25 == 24) {
      ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  }
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());

  auto events = [&] {
    return ReadCommitted(bootstrap, n.events, 0, std::chrono::seconds(30), std::chrono::seconds(1));
  };
  std::vector<kafka::ConsumedRecord> committed_events;
  std::vector<kafka::ConsumedRecord> rejections;
  std::map<std::string, int> outcomes;
  const bool all_decided = WaitFor(
      [&] {
        committed_events = events();
        rejections = ReadCommitted(bootstrap, n.rejections, 0, std::chrono::seconds(30),
                                   std::chrono::seconds(1));
        outcomes.clear();
        for (const auto& e : committed_events) outcomes[HeaderValue(e, "kcqrs.command.id")]++;
        for (const auto& r : rejections) outcomes[json::parse(*r.value)["commandId"]]++;
        return outcomes.size() >= command_ids.size();
      },
      std::chrono::seconds(180));
  EXPECT_TRUE(all_decided) << outcomes.size() << " of " << command_ids.size() << " decided";
  faults->Disable();

  // Every point was really hit, and each hit cost a transaction.
  EXPECT_GE(faults->injected(Point::kSend), 3);
  EXPECT_GE(faults->injected(Point::kSendOffsets), 3);
  EXPECT_GE(faults->injected(Point::kCommit), 3);
  EXPECT_GE(faults->injected(Point::kApplyState), 1);
  EXPECT_GE(engine->stats().aborts, 5u);

  for (const std::string& cid : command_ids) {
    auto it = outcomes.find(cid);
    if (it == outcomes.end()) {
      ADD_FAILURE() << cid << " has no outcome";
    } else {
      EXPECT_EQ(it->second, 1) << cid << " has " << it->second << " outcomes";
    }
  }
  EXPECT_EQ(outcomes.size(), command_ids.size()) << "outcomes of commands never sent";
  // A misrouted cancel, decided on the wrong partition, would find no order
  // there and be rejected not_found; forwarded, it cancels the order.
  for (const auto& r : rejections) {
    json v = json::parse(*r.value);
    EXPECT_FALSE(misrouted.count(v["commandId"])) << "misrouted command rejected: " << v.dump();
  }

  // The independent fold of the committed events.
  std::map<std::string, json> orders;
  std::map<std::string, json> totals;
  for (const auto& e : committed_events) {
    json v = json::parse(*e.value);
    const std::string id = v["orderId"];
    const std::string product = v["product"];
    json& t = totals[product];
    if (t.is_null()) t = {{"product", product}, {"orders", 0}, {"quantity", 0}};
    if (v["type"] == "OrderCreated") {
      orders[id] = {{"orderId", id}, {"product", product}, {"quantity", v["quantity"]},
                    {"status", "CREATED"}};
      t["orders"] = t["orders"].get<int>() + 1;
      t["quantity"] = t["quantity"].get<int>() + v["quantity"].get<int>();
    } else {
      orders[id]["status"] = "CANCELLED";
      t["orders"] = t["orders"].get<int>() - 1;
      t["quantity"] = t["quantity"].get<int>() - v["quantity"].get<int>();
    }
  }
  // The read models catch up with the events (product_totals is one hop
  // further, behind the repartition topic).
  auto equal_fold = [&](std::string* why) {
    auto view = engine->GetStore("orders");
    auto pt = engine->GetStore("product_totals");
    if (!view || !pt) return false;
    for (const auto& [id, want] : orders) {
      auto got = view->Get(id);
      if (!got.ok() || !got->has_value() || json::parse(**got) != want) {
        *why = "orders/" + id + " = " + (got.ok() && got->has_value() ? **got : "<none>") +
               ", want " + want.dump();
        return false;
      }
    }
    for (const auto& [product, want] : totals) {
      auto got = pt->Get(product);
      if (!got.ok() || !got->has_value() || json::parse(**got) != want) {
        *why = "product_totals/" + product + " = " +
               (got.ok() && got->has_value() ? **got : "<none>") + ", want " + want.dump();
        return false;
      }
    }
    return true;
  };
  std::string why;
  EXPECT_TRUE(WaitFor([&] { return equal_fold(&why); }, std::chrono::seconds(60))) << why;
  std::cout << "commands=" << command_ids.size() << " misrouted=" << misrouted.size()
            << " events=" << committed_events.size() << " rejections=" << rejections.size()
            << " aborts=" << engine->stats().aborts
            << " redelivered=" << engine->stats().records_redelivered
            << " injected: send=" << faults->injected(Point::kSend)
            << " send_offsets=" << faults->injected(Point::kSendOffsets)
            << " commit=" << faults->injected(Point::kCommit)
            << " apply=" << faults->injected(Point::kApplyState) << "\n";
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

// A topic whose own max.message.bytes is below the producer's limit: the
// broker would refuse the record only at commit, and every retry would meet
// it again. The engine reads the topic's limit at start and dead-letters
// the command whose event would not fit; the partition flows on.
TEST(FaultInjectionTest, ARecordAboveATopicsOwnLimitIsADeadLetterNotAnAbortLoop) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-small-topic"));
  std::filesystem::remove_all(n.state_dir);
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  ASSERT_TRUE((*admin)
                  ->CreateTopics({{n.events, 3, -1, {{"max.message.bytes", "2000"}}}},
                                 std::chrono::seconds(30))
                  .ok());
  auto engine = OpenEngine(LoadOrders(n, bootstrap));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
  auto producer = MakeProducer(bootstrap);
  Produce(producer.get(), n.commands, "big", CreateOrder("big", std::string(3000, 'p'), 1, "c-big"));
  Produce(producer.get(), n.commands, "small", CreateOrder("small", "p", 1, "c-small"));
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  ASSERT_TRUE(WaitFor([&] { return StoreHas(*engine, "orders", "small"); },
                      std::chrono::seconds(60)));
  auto dead = ReadCommitted(bootstrap, n.dlq, 1, std::chrono::seconds(30));
  ASSERT_EQ(dead.size(), 1u);
  const std::string why = HeaderValue(dead[0], "kcqrs.error");
  EXPECT_NE(why.find("'" + n.events + "'"), std::string::npos) << why;
  EXPECT_NE(why.find("above the maximum message size of 1872"), std::string::npos) << why;
  EXPECT_FALSE(StoreHas(*engine, "orders", "big"));
  EXPECT_EQ(engine->stats().aborts, 0u);
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

// A thread that keeps aborting is not ready, and says why; once its
// transactions commit again it is ready, and nothing was lost on the way.
TEST(FaultInjectionTest, AThreadThatKeepsAbortingIsNotReadyAndSaysWhy) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-aborting"));
  std::filesystem::remove_all(n.state_dir);
  auto faults = std::make_shared<ScheduledFaults>();
  std::set<int> every;
  for (int i = 1; i <= 100000; ++i) every.insert(i);
  faults->FailAt(Point::kCommit, every, Status::Aborted("injected: the broker refuses"));
  engine::SetFaultInjectorForTesting(faults);
  auto engine = OpenEngine(LoadOrders(n, bootstrap));
  engine::SetFaultInjectorForTesting(nullptr);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
  auto producer = MakeProducer(bootstrap);
  Produce(producer.get(), n.commands, "o-1", CreateOrder("o-1", "p", 1, "c-1"));
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  EXPECT_TRUE(WaitFor([&] { return !engine->ready(); }, std::chrono::seconds(30)))
      << "still ready while every commit aborts";
  auto readyz = [&] {
    auto r = HttpRequest(engine->http_address(), "GET", "/readyz");
    return r.body;
  };
  const std::string body = readyz();
  EXPECT_NE(body.find("aborted"), std::string::npos) << body;
  EXPECT_NE(body.find("injected: the broker refuses"), std::string::npos) << body;
  faults->Disable();
  EXPECT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(60)))
      << "not ready again once commits succeed: " << readyz();
  EXPECT_TRUE(WaitFor([&] { return StoreHas(*engine, "orders", "o-1"); },
                      std::chrono::seconds(30)));
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

// Local state whose checkpoint does not fit the changelog (here the
// changelog was deleted and recreated, as an operator does to rebuild a
// store) is wiped and restored from the changelog as it is now, not reused.
TEST(FaultInjectionTest, StateThatDoesNotFitItsChangelogIsWipedAndRestored) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-recreated"));
  std::filesystem::remove_all(n.state_dir);
  {
    auto engine = OpenEngine(LoadOrders(n, bootstrap));
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
    auto producer = MakeProducer(bootstrap);
    for (int i = 0; i < 30; ++i) {
      const std::string id = "o-" + std::to_string(i);
      Produce(producer.get(), n.commands, id, CreateOrder(id, "p", 1, "c-" + id));
    }
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
    ASSERT_TRUE(WaitFor([&] { return StoreHas(*engine, "orders", "o-29"); },
                        std::chrono::seconds(60)));
    engine->Stop();
  }
  // The orders view's changelog, recreated empty: its local checkpoint now
  // points past its end.
  const std::string changelog = n.app + "-orders-changelog";
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->DeleteTopics({changelog}, std::chrono::seconds(30)).ok());
  ASSERT_TRUE((*admin)
                  ->CreateTopics({{changelog, 3, -1, {{"cleanup.policy", "compact"}}}},
                                 std::chrono::seconds(30))
                  .ok());
  auto engine = OpenEngine(LoadOrders(n, bootstrap));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
  auto view = engine->GetStore("orders");
  ASSERT_NE(view, nullptr);
  size_t rows = 0;
  for (auto it = view->Range("", ""); it->Valid(); it->Next()) ++rows;
  EXPECT_EQ(rows, 0u) << "stale local state was reused although its changelog is empty";
  // The aggregates' store, whose changelog is intact, kept its state: the
  // orders still exist for the command side.
  auto aggregates = engine->GetStore("order-aggregates");
  ASSERT_NE(aggregates, nullptr);
  auto o = aggregates->Get("o-29");
  EXPECT_TRUE(o.ok() && o->has_value());
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

// A read-your-writes token from before a restart is answered at once by the
// restarted instance: its position log starts from what the restored state
// reaches, rather than empty (when a token waited for a commit that might
// never come, or was judged by an unrelated one).
TEST(FaultInjectionTest, ReadYourWritesTokensSurviveARestart) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-ryw-restart"));
  std::filesystem::remove_all(n.state_dir);
  std::string token;
  {
    auto engine = OpenEngine(LoadOrders(n, bootstrap));
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
    auto posted = HttpRequest(engine->http_address(), "POST", "/commands/order?wait=true",
                              CreateOrder("o-1", "widget", 2, "c-1"));
    ASSERT_EQ(posted.status, 200) << posted.body;
    token = kcqrs::Json::parse(posted.body)["position"];
    engine->Stop();
  }
  auto engine = OpenEngine(LoadOrders(n, bootstrap));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
  // Both the view of the orders and product_totals (behind the repartition
  // topic): no new record flows, so only the restored positions can answer.
  for (const std::string target :
       {"/stores/orders/keys/o-1", "/stores/product_totals/keys/widget"}) {
    auto got = HttpRequest(engine->http_address(), "GET",
                           target + "?timeout_ms=5000&position=" + token);
    EXPECT_EQ(got.status, 200) << target << ": " << got.body;
  }
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

}  // namespace
}  // namespace kcqrs
