// What a keyed projection's repartition topic carries (issue 11): of each
// event, only the fields the view's rules for its type read, with the type;
// the whole event when a rule may read more than named fields. The view
// must come out as if the whole event had travelled.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config_loader.h"
#include "json/document.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using testing::TopologyTestDriver;

constexpr char kYaml[] = R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
projections:
  totals:
    event_topics: [shop.events]
    store: totals
    key: event.product
    events:
      Sold:
        merge:
          product: event.product
          quantity: coalesce(view.quantity, 0) + event.quantity
      Returned:
        lua: |
          local v = view or { product = event.product, quantity = 0 }
          v.quantity = v.quantity - event.quantity
          return v
      Audited:
        lua: |
          local v = view or {}
          for k, _ in pairs(event) do v[k] = true end
          return v
      Tagged:
        merge:
          tag: event[event.which]
)";

class RepartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = config::LoadEngineOptionsFromString(kYaml, "shop.yaml", {});
    ASSERT_TRUE(options.ok()) << options.status().ToString();
    auto driver = TopologyTestDriver::Create(*options);
    ASSERT_TRUE(driver.ok()) << driver.status().ToString();
    driver_ = std::move(driver).value();
  }

  // Pipes one event and returns the values it put on the repartition topic.
  std::vector<std::string> Pipe(const std::string& value) {
    EXPECT_TRUE(driver_->PipeInput("shop.events", "o-1", value).ok()) << value;
    std::vector<std::string> out;
    for (const Record& r : driver_->ReadOutput("shop-totals-repartition")) {
      out.push_back(r.value.value_or("<tombstone>"));
    }
    return out;
  }

  json View(const std::string& key) {
    auto v = driver_->GetStore("totals")->Get(key);
    EXPECT_TRUE(v.ok() && v->has_value()) << key;
    return v.ok() && v->has_value() ? json::parse(**v) : json();
  }

  std::unique_ptr<TopologyTestDriver> driver_;
};

TEST_F(RepartitionTest, CarriesOnlyTheFieldsTheViewsRulesRead) {
  // Expressions read product and quantity: orderId and note stay behind.
  EXPECT_EQ(Pipe(R"({"type":"Sold","orderId":"o-1","product":"p-1","quantity":3,"note":"gift"})"),
            std::vector<std::string>{R"({"product":"p-1","quantity":3,"type":"Sold"})"});
  // A Lua snippet reading event.product and event.quantity, on text that is
  // not canonical (spaces, key order, an exact decimal it does not read).
  EXPECT_EQ(
      Pipe(R"( { "quantity" : 1, "price": 1.50, "product":"p-1", "type":"Returned", "orderId":"o-1"} )"),
      std::vector<std::string>{R"({"product":"p-1","quantity":1,"type":"Returned"})"});
  EXPECT_EQ(View("p-1"), (json{{"product", "p-1"}, {"quantity", 2}}));
  EXPECT_TRUE(driver_->ReadOutput("shop-dlq").empty());
}

TEST_F(RepartitionTest, CarriesTheWholeEventWhenARuleMayReadAnyField) {
  // pairs(event) in Lua, event[<computed>] in an expression.
  const std::string audited = R"({"type":"Audited","product":"p-2","orderId":"o-1","by":"ada"})";
  EXPECT_EQ(Pipe(audited), std::vector<std::string>{audited});
  EXPECT_EQ(View("p-2"),
            (json{{"by", true}, {"orderId", true}, {"product", true}, {"type", true}}));
  const std::string tagged =
      R"({"type":"Tagged","product":"p-3","which":"colour","colour":"red","size":"L"})";
  EXPECT_EQ(Pipe(tagged), std::vector<std::string>{tagged});
  EXPECT_EQ(View("p-3"), (json{{"tag", "red"}}));
  EXPECT_TRUE(driver_->ReadOutput("shop-dlq").empty());
}

TEST_F(RepartitionTest, CarriesNothingOfEventsTheViewDoesNotFold) {
  EXPECT_TRUE(Pipe(R"({"type":"Shipped","product":"p-1","orderId":"o-1"})").empty());
  EXPECT_TRUE(driver_->ReadOutput("shop-dlq").empty());
}

// A process manager's correlation topic likewise carries of each event only
// what its reactions to that type read (`when`, `set`/`merge`, the sends'
// fields and keys, Lua), and the whole event when a reaction may read any.
TEST(CorrelationTest, CarriesOnlyTheFieldsTheReactionsRead) {
  constexpr char kPm[] = R"(application:
  id: pay
kafka:
  bootstrap_servers: embedded
topics:
  pay.out: {partitions: 1}
process_managers:
  checkout:
    event_topics: [pay.events]
    id: event.orderId
    store: checkouts
    on:
      Placed:
        when: event.amount > 0
        set: {total: event.amount}
        send:
          - {topic: pay.out, type: Charge, key: event.customer, with: {amount: state.total}}
      Noted:
        lua: |
          local s = state or {}
          for k, v in pairs(event) do s[k] = v end
          return {state = s}
    on_deadline:
      merge: {expired: "true"}
)";
  auto options = config::LoadEngineOptionsFromString(kPm, "pay.yaml", {});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto driver = TopologyTestDriver::Create(*options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto pipe = [&](const std::string& value) {
    EXPECT_TRUE((*driver)->PipeInput("pay.events", "o-1", value).ok()) << value;
    std::vector<std::string> out;
    for (const Record& r : (*driver)->ReadOutput("pay-checkout-repartition")) {
      out.push_back(r.value.value_or("<tombstone>"));
    }
    return out;
  };
  // The id expression reads orderId upstream; the reactions read amount and
  // customer: orderId, item and note stay behind.
  EXPECT_EQ(pipe(R"({"type":"Placed","orderId":"o-1","customer":"c-7","amount":12.50,)"
                 R"("item":"pen","note":"gift"})"),
            std::vector<std::string>{R"({"amount":12.50,"customer":"c-7","type":"Placed"})"});
  std::vector<Record> sent = (*driver)->ReadOutput("pay.out");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].key, "c-7");
  EXPECT_EQ(json::parse(*sent[0].value)["amount"], json::parse("12.50"));
  const std::string noted = R"({"type":"Noted","orderId":"o-1","by":"ada","at":3})";
  EXPECT_EQ(pipe(noted), std::vector<std::string>{noted});
  auto instance = (*driver)->GetStore("checkouts")->Get("o-1");
  ASSERT_TRUE(instance.ok() && instance->has_value());
  const json state = json::parse(**instance)["state"];
  EXPECT_EQ(state["by"], "ada");
  EXPECT_EQ(state["orderId"], "o-1");  // read through pairs(event): it travelled
  EXPECT_TRUE((*driver)->ReadOutput("pay-dlq").empty());
}

}  // namespace
}  // namespace kcqrs
