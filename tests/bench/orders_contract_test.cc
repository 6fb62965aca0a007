// The benchmark's contract (bench/WORKLOADS.md) against the engine itself:
// kbench's independent model of the orders rules must predict exactly what
// kcqrs does with bench/orders/topology.yaml. If the two drift apart, every
// benchmark run would be declared void by the checker; this test says so in
// CI instead, without a broker.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "config/config_loader.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "workloads.h"

namespace kcqrs {
namespace {

using nlohmann::json;

constexpr int kOrders = 500;  // 5,000 commands: every event type and rejection code it makes

std::unique_ptr<testing::TopologyTestDriver> BenchOrders() {
  config::LoadOptions load;
  load.getenv = [](const std::string&) { return std::optional<std::string>(); };
  auto options = config::LoadEngineOptionsFromFile(
      std::string(KCQRS_SOURCE_DIR) + "/bench/orders/topology.yaml", load);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  if (!options.ok()) return nullptr;
  auto driver = testing::TopologyTestDriver::Create(*options);
  EXPECT_TRUE(driver.ok()) << driver.status().ToString();
  return driver.ok() ? std::move(driver).value() : nullptr;
}

std::string StoreDigest(const ReadOnlyKeyValueStore& store, uint64_t* keys) {
  kbench::Digest d;
  for (auto it = store.Range("", ""); it->Valid(); it->Next()) {
    d.Add(it->key(), kbench::CanonicalJson(it->value()));
  }
  *keys = d.count();
  return d.Hex();
}

TEST(OrdersContractTest, EngineMatchesTheBenchmarkModel) {
  auto driver = BenchOrders();
  ASSERT_NE(driver, nullptr);
  kbench::OrdersModel model;
  const kbench::OrderNaming naming;
  for (int s = 0; s < 10; ++s) {  // step-major, as the generator writes them
    for (int k = 0; k < kOrders; ++k) {
      const kbench::OrderCommand c = kbench::OrderStep(naming, static_cast<uint64_t>(k), s);
      model.Apply(c);
      ASSERT_TRUE(
          driver->PipeInput("bench.orders.commands", c.order_id, kbench::CommandValue(c)).ok());
    }
  }
  const json expected = model.Summary();

  // The headers kbench check orders requires of every engine are kcqrs's.
  kbench::OrdersHeaderCheck headers;
  auto headers_of = [](const Record& r) {
    kbench::OrdersHeaderCheck::Headers h;
    for (const Header& x : r.headers) h.emplace_back(x.key, x.value);
    return h;
  };

  kbench::Digest events;
  std::map<std::string, uint64_t> by_type;
  for (const Record& r : driver->ReadOutput("bench.orders.events")) {
    const json e = json::parse(*r.value);
    kbench::OrdersModel::AddEvent(&events, *r.key, e);
    by_type[e["type"].get<std::string>()]++;
    headers.Event(r.topic, r.partition, r.offset, *r.key, e, headers_of(r));
  }
  EXPECT_EQ(json(by_type), expected["events"]["by_type"]);
  EXPECT_EQ(events.Hex(), expected["events"]["digest"]);

  kbench::Digest rejections;
  std::map<std::string, uint64_t> by_code;
  for (const Record& r : driver->ReadOutput("bench.orders.rejections")) {
    const json j = json::parse(*r.value);
    rejections.Add(*r.key, kbench::OrdersModel::RejectionIdentity(j).dump());
    by_code[j["code"].get<std::string>()]++;
    headers.Rejection(r.topic, r.partition, r.offset, *r.key, j, headers_of(r));
  }
  EXPECT_EQ(headers.bad_records(), 0u)
      << (headers.problems().empty() ? "" : headers.problems()[0]);
  EXPECT_EQ(headers.event_headers().Hex(), expected["events"]["headers_digest"]);
  EXPECT_EQ(json(by_code), expected["rejections"]["by_code"]);
  EXPECT_EQ(rejections.Hex(), expected["rejections"]["digest"]);
  // Every event type and four of the five rejection codes occur (no command
  // adjusts a cancelled order: WORKLOADS.md cancels at steps 8 and 9 only).
  EXPECT_EQ(by_code.size(), 4u);
  EXPECT_EQ(by_type.size(), 3u);

  for (const char* store : {"orders", "product_totals"}) {
    auto s = driver->GetStore(store);
    ASSERT_NE(s, nullptr) << store;
    uint64_t keys = 0;
    EXPECT_EQ(StoreDigest(*s, &keys), expected["stores"][store]["digest"]) << store;
    EXPECT_EQ(keys, expected["stores"][store]["keys"].get<uint64_t>()) << store;
  }
}

}  // namespace
}  // namespace kcqrs
