// The orders example on the real broker: commands in through a plain Kafka
// producer, events, rejections and dead letters read back with
// read_committed, stores read through the engine; then restarts after a
// clean stop (only the changelog tail is restored) and after losing the
// state directory (everything is restored).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "json/document.h"
#include "kcqrs/engine.h"
#include "tests/integration/orders_example.h"
#include "tests/support/http_client.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;

std::unique_ptr<Engine> OpenReady(const EngineOptions& options) {
  auto engine = Engine::Open(options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return nullptr;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!(*engine)->ready() && std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE((*engine)->health().ok()) << (*engine)->health().ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE((*engine)->ready()) << "not ready after 90 s";
  return std::move(engine).value();
}

// Waits until `store` holds `key` with `expected` (null: absent).
void ExpectEventually(const Engine& engine, const std::string& store, const std::string& key,
                      const json& expected) {
  json last;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto view = engine.GetStore(store);
    ASSERT_NE(view, nullptr) << store;
    auto v = view->Get(key);
    if (v.ok()) {
      last = v->has_value() ? json::parse(**v) : json(nullptr);
      if (last == expected) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << store << "/" << key << ": expected " << expected.dump() << ", found "
                << last.dump();
}

void ExpectStores(const Engine& engine) {
  ExpectEventually(engine, "orders", "o-1",
                   {{"orderId", "o-1"}, {"product", "widget"}, {"quantity", 3},
                    {"status", "CREATED"}});
  ExpectEventually(engine, "orders", "o-2",
                   {{"orderId", "o-2"}, {"product", "widget"}, {"quantity", 2},
                    {"status", "CANCELLED"}});
  ExpectEventually(engine, "orders", "o-4",
                   {{"orderId", "o-4"}, {"product", "gadget"}, {"quantity", 5},
                    {"status", "CREATED"}});
  ExpectEventually(engine, "orders", "o-3", nullptr);
  ExpectEventually(engine, "product_totals", "widget",
                   {{"product", "widget"}, {"orders", 1}, {"quantity", 3}});
  ExpectEventually(engine, "product_totals", "gadget",
                   {{"product", "gadget"}, {"orders", 1}, {"quantity", 5}});
}

// Once caught up, the group has committed the end of `topic`, which kcqrs
// itself wrote with transactions: past the commit markers, so consumer-lag
// monitoring sees 0 rather than one record per partition forever.
void ExpectNoLag(const std::string& bootstrap, const std::string& group,
                 const std::string& topic) {
  auto consumer = kafka::Consumer::Create({{"bootstrap.servers", bootstrap},
                                           {"group.id", group},
                                           {"enable.auto.commit", "false"}});
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::vector<kafka::TopicPartitionOffset> parts;
  for (int p = 0; p < 3; ++p) parts.push_back({topic, p, kafka::kOffsetInvalid});
  std::string last;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto committed = (*consumer)->Committed(parts, std::chrono::seconds(10));
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    bool caught_up = true;
    last.clear();
    for (const auto& c : *committed) {
      auto wm = (*consumer)->QueryWatermarks(topic, c.partition, std::chrono::seconds(10));
      ASSERT_TRUE(wm.ok()) << wm.status().ToString();
      last += " p" + std::to_string(c.partition) + ": committed " + std::to_string(c.offset) +
              " end " + std::to_string(wm->second);
      if (wm->second > 0 && c.offset != wm->second) caught_up = false;
    }
    if (caught_up) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ADD_FAILURE() << "group " << group << " never caught up with " << topic << ":" << last;
}

TEST(OrdersEngineTest, CommandsEventsRejectionsDeadLettersAndStoresThenRestarts) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-e2e"));
  std::filesystem::remove_all(n.state_dir);
  const EngineOptions options = LoadOrders(n, bootstrap);

  std::unique_ptr<Engine> engine = OpenReady(options);
  ASSERT_NE(engine, nullptr);

  auto producer = MakeProducer(bootstrap);
  ASSERT_NE(producer, nullptr);
  Produce(producer.get(), n.commands, "o-1", CreateOrder("o-1", "widget", 3, "c-1"));
  Produce(producer.get(), n.commands, "o-2", CreateOrder("o-2", "widget", 2, "c-2"));
  Produce(producer.get(), n.commands, "o-1", CreateOrder("o-1", "gadget", 9, "c-3"));
  Produce(producer.get(), n.commands, "o-3", CreateOrder("o-3", "gadget", 0, "c-4"));
  Produce(producer.get(), n.commands, "o-2", CancelOrder("o-2", "c-5"));
  Produce(producer.get(), n.commands, "o-9", CancelOrder("o-9", "c-6"));
  Produce(producer.get(), n.commands, "o-2", CancelOrder("o-2", "c-7"));
  Produce(producer.get(), n.commands, "o-1", CreateOrder("o-1", "widget", 3, "c-1"));  // retry
  Produce(producer.get(), n.commands, "o-1", "{not json");
  Produce(producer.get(), n.commands, "o-4", R"({"orderId":"o-4"})");
  Produce(producer.get(), n.commands, "o-4", CreateOrder("o-4", "gadget", 5, "c-8"));
  // A poison event from outside, with a header of its own. No processor of
  // the events topic reads headers, so they are consumed without them
  // (kafka::Consumer::SkipHeaders); the dead letter must still carry them.
  {
    kafka::OutgoingRecord poison;
    poison.topic = n.events;
    poison.key = "o-5";
    poison.value = "{not json";
    poison.headers = {{"trace-id", "t-42"}, {"kcqrs.type", "OrderCreated"}};
    ASSERT_TRUE(producer->Send(poison).ok());
  }
  ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());

  auto events = ReadCommitted(bootstrap, n.events, 5);
  std::map<std::string, std::string> event_of_command;
  for (const auto& e : events) {
    if (e.key == "o-5") continue;  // the poison event
    json v = json::parse(*e.value);
    std::string cid = HeaderValue(e, "kcqrs.command.id");
    EXPECT_TRUE(event_of_command.emplace(cid, v["type"]).second) << "twice: " << cid;
    EXPECT_EQ(*e.key, v["orderId"]);
    EXPECT_EQ(HeaderValue(e, "kcqrs.aggregate"), "order");
    EXPECT_FALSE(HeaderValue(e, "kcqrs.version").empty());
  }
  EXPECT_EQ(event_of_command, (std::map<std::string, std::string>{{"c-1", "OrderCreated"},
                                                                  {"c-2", "OrderCreated"},
                                                                  {"c-5", "OrderCancelled"},
                                                                  {"c-8", "OrderCreated"}}));

  auto rejections = ReadCommitted(bootstrap, n.rejections, 4);
  std::map<std::string, std::string> code_of_command;
  for (const auto& r : rejections) {
    json v = json::parse(*r.value);
    code_of_command[v["commandId"]] = v["code"];
  }
  EXPECT_EQ(rejections.size(), 4u);
  EXPECT_EQ(code_of_command, (std::map<std::string, std::string>{{"c-3", "already_exists"},
                                                                 {"c-4", "invalid"},
                                                                 {"c-6", "not_found"},
                                                                 {"c-7", "already_cancelled"}}));

  auto dead = ReadCommitted(bootstrap, n.dlq, 3);
  ASSERT_EQ(dead.size(), 3u);
  std::set<std::string> errors;
  for (const auto& d : dead) {
    errors.insert(HeaderValue(d, "kcqrs.error").substr(0, 28));
    EXPECT_FALSE(HeaderValue(d, "kcqrs.source.offset").empty());
    if (HeaderValue(d, "kcqrs.source.topic") == n.events) {
      EXPECT_EQ(*d.value, "{not json");
      EXPECT_EQ(HeaderValue(d, "trace-id"), "t-42");
      EXPECT_EQ(HeaderValue(d, "kcqrs.type"), "OrderCreated");
    } else {
      EXPECT_EQ(HeaderValue(d, "kcqrs.source.topic"), n.commands);
    }
  }
  EXPECT_EQ(errors, (std::set<std::string>{"the command has no 'type' fi",
                                           "the command is not valid JSO",
                                           "the event is not valid JSON:"}));

  ExpectStores(*engine);
  ExpectNoLag(bootstrap, n.app, n.events);
  EngineStats first = engine->stats();
  EXPECT_EQ(first.dead_letters, 3u);
  engine->Stop();
  engine.reset();

  // A clean stop leaves local state at the changelog's end: nothing to replay.
  engine = OpenReady(options);
  ASSERT_NE(engine, nullptr);
  ExpectStores(*engine);
  EXPECT_EQ(engine->stats().restored_records, 0u);
  engine->Stop();
  engine.reset();

  // Without the state directory, everything comes back from the changelogs.
  std::filesystem::remove_all(n.state_dir);
  engine = OpenReady(options);
  ASSERT_NE(engine, nullptr);
  ExpectStores(*engine);
  // order aggregates o-1..o-4 (the retried c-1 wrote nothing), 3 orders,
  // 2 product totals, at least: compaction may have merged some.
  EXPECT_GE(engine->stats().restored_records, 9u);
  // /readyz keeps, per running task, what its restore replayed.
  {
    const HttpResult ready = HttpRequest(engine->http_address(), "GET", "/readyz");
    ASSERT_EQ(ready.status, 200) << ready.body;
    const kcqrs::Json body = kcqrs::Json::parse(ready.body);
    uint64_t restored = 0;
    for (const kcqrs::Json& t : body.at("tasks")) {
      EXPECT_EQ(t.at("state"), "RUNNING") << ready.body;
      restored += t.at("restored").get<uint64_t>();
    }
    EXPECT_EQ(restored, engine->stats().restored_records) << ready.body;
  }
  engine->Stop();
  std::filesystem::remove_all(n.state_dir);
}

}  // namespace
}  // namespace kcqrs
