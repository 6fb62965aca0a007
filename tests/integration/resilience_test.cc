// The engine when Kafka goes away and when instances come and go:
//  - a broker outage: the engine keeps retrying, says it is not ready, and
//    loses nothing once the broker is back;
//  - two instances share the work through the consumer group (co-partitioned
//    tasks), and when one stops the other takes its tasks over, restoring
//    their stores from the changelogs.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/integration/engine_test_util.h"
#include "tests/integration/orders_example.h"
#include "tests/integration/own_broker.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;

TEST(ResilienceTest, BrokerOutageIsWaitedOutAndNothingIsLost) {
  OwnBroker broker((std::filesystem::temp_directory_path() / UniqueName("kcqrs-outage")).string());
  ASSERT_FALSE(broker.bootstrap().empty()) << "could not start a broker of its own";
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-outage"));
  std::filesystem::remove_all(n.state_dir);
  auto engine = OpenEngine(LoadOrders(n, broker.bootstrap()));
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));

  auto producer = MakeProducer(broker.bootstrap());
  for (int i = 0; i < 50; ++i) {
    Produce(producer.get(), n.commands, "a-" + std::to_string(i),
            CreateOrder("a-" + std::to_string(i), "widget", 1, "ca-" + std::to_string(i)));
  }
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  ASSERT_TRUE(WaitFor([&] { return StoreHas(*engine, "orders", "a-49"); },
                      std::chrono::seconds(60)));

  // The broker goes away; commands keep being sent (they wait in the producer).
  ASSERT_EQ(KafkaScript("stop-broker --dir " + broker.dir() + " --node 1 >/dev/null"), 0);
  for (int i = 0; i < 50; ++i) {
    Produce(producer.get(), n.commands, "b-" + std::to_string(i),
            CreateOrder("b-" + std::to_string(i), "gadget", 2, "cb-" + std::to_string(i)));
  }
  EXPECT_TRUE(WaitFor([&] { return !engine->ready(); }, std::chrono::seconds(30)))
      << "the engine still says it is ready with its broker down";
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_TRUE(engine->health().ok()) << engine->health().ToString();

  ASSERT_EQ(KafkaScript("start-broker --dir " + broker.dir() + " --node 1 >/dev/null"), 0);
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(120)).ok());
  EXPECT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(120)))
      << "not ready again after the broker came back";
  EXPECT_TRUE(WaitFor([&] { return StoreHas(*engine, "orders", "b-49"); },
                      std::chrono::seconds(120)));

  auto outcomes = Outcomes(broker.bootstrap(), n.events, n.rejections, 100);
  EXPECT_EQ(outcomes.size(), 100u);
  for (const auto& [cid, count] : outcomes) EXPECT_EQ(count, 1) << cid;
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(StoreHas(*engine, "orders", "a-" + std::to_string(i))) << i;
    EXPECT_TRUE(StoreHas(*engine, "orders", "b-" + std::to_string(i))) << i;
  }
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

TEST(ResilienceTest, TwoInstancesShareTheWorkAndOneTakesOverFromTheOther) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-scale"));
  OrdersNames n2 = n;
  n2.state_dir += "-second";
  std::filesystem::remove_all(n.state_dir);
  std::filesystem::remove_all(n2.state_dir);

  auto a = OpenEngine(LoadOrders(n, bootstrap));
  auto b = OpenEngine(LoadOrders(n2, bootstrap));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] {
        // Both have joined and split the work (the first to start may hold
        // all 9 tasks until the second joins).
        return a->ready() && b->ready() && a->stats().running_tasks > 0 &&
               b->stats().running_tasks > 0 &&
               a->stats().running_tasks + b->stats().running_tasks == 9;
      },
      std::chrono::seconds(90)))
      << "tasks: " << a->stats().running_tasks << " + " << b->stats().running_tasks;
  // Both work: 9 tasks (3 sub-topologies x 3 partitions) split between them.
  EXPECT_GT(a->stats().running_tasks, 0);
  EXPECT_GT(b->stats().running_tasks, 0);

  auto producer = MakeProducer(bootstrap);
  for (int i = 0; i < 60; ++i) {
    const std::string id = "o-" + std::to_string(i);
    Produce(producer.get(), n.commands, id, CreateOrder(id, "p-" + std::to_string(i % 3), 1,
                                                        "c-" + std::to_string(i)));
  }
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  auto hosted = [&](const std::string& key) {
    return StoreHas(*a, "orders", key) || StoreHas(*b, "orders", key);
  };
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 60; ++i) {
      if (!hosted("o-" + std::to_string(i))) return false;
    }
    return true;
  }, std::chrono::seconds(60)));

  // The second instance leaves; the first takes its tasks and their state.
  b->Stop();
  b.reset();
  ASSERT_TRUE(WaitFor([&] { return a->ready() && a->stats().running_tasks == 9; },
                      std::chrono::seconds(90)))
      << "tasks on the first instance: " << a->stats().running_tasks;
  EXPECT_GT(a->stats().restored_records, 0u) << "the moved tasks' stores were not restored";
  for (int i = 60; i < 90; ++i) {
    const std::string id = "o-" + std::to_string(i);
    Produce(producer.get(), n.commands, id, CreateOrder(id, "p-" + std::to_string(i % 3), 1,
                                                        "c-" + std::to_string(i)));
  }
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  EXPECT_TRUE(WaitFor([&] {
    for (int i = 0; i < 90; ++i) {
      if (!StoreHas(*a, "orders", "o-" + std::to_string(i))) return false;
    }
    return true;
  }, std::chrono::seconds(60)));
  // The totals are one hop further (through the repartition topic).
  auto orders_of = [&](int p) {
    auto totals = a->GetStore("product_totals");
    if (!totals) return -1;
    auto v = totals->Get("p-" + std::to_string(p));
    if (!v.ok() || !v->has_value()) return -1;
    return kcqrs::Json::parse(**v)["orders"].get<int>();
  };
  EXPECT_TRUE(WaitFor([&] { return orders_of(0) == 30 && orders_of(1) == 30 && orders_of(2) == 30; },
                      std::chrono::seconds(60)))
      << orders_of(0) << " " << orders_of(1) << " " << orders_of(2);
  auto outcomes = Outcomes(bootstrap, n.events, n.rejections, 90);
  EXPECT_EQ(outcomes.size(), 90u);
  for (const auto& [cid, count] : outcomes) EXPECT_EQ(count, 1) << cid;
  a->Stop();
  std::filesystem::remove_all(n.state_dir);
  std::filesystem::remove_all(n2.state_dir);
}

}  // namespace
}  // namespace kcqrs
