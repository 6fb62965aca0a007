// The rules of the shop example (examples/shop/topology.yaml) through the
// broker-free TopologyTestDriver: three aggregates, their read models and
// the `checkout` process manager, with its deadline fired by moving the
// driver's wall clock. What a user would see on the topics and in the stores.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "json/document.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "tests/support/examples.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using testing::TopologyTestDriver;

constexpr char kOrders[] = "shop.orders.commands";
constexpr char kInventory[] = "shop.inventory.commands";
constexpr char kPayments[] = "shop.payments.commands";
// The events of the checkout, keyed by orderId: what its task reads.
constexpr char kCheckoutIn[] = "shop-checkout-repartition";
// Where the held charges go (see HoldCharges).
constexpr char kHeld[] = "shop.held";

std::string Header(const Record& r, const std::string& name) {
  const kcqrs::Header* h = r.FindHeader(name);
  return h && h->value ? *h->value : "<none>";
}

// Commands as text, so that amounts keep their digits (12.50, not 12.5).
std::string PlaceOrder(const std::string& order, const std::string& customer,
                       const std::string& product, int quantity, const std::string& unit_price) {
  return R"({"type":"PlaceOrder","orderId":")" + order + R"(","customerId":")" + customer +
         R"(","product":")" + product + R"(","quantity":)" + std::to_string(quantity) +
         R"(,"unitPrice":)" + unit_price + R"(,"commandId":"place-)" + order + "\"}";
}
std::string AddStock(const std::string& product, int quantity) {
  return R"({"type":"AddStock","product":")" + product + R"(","quantity":)" +
         std::to_string(quantity) + R"(,"commandId":"stock-)" + product + "-" +
         std::to_string(quantity) + "\"}";
}
std::string AddFunds(const std::string& customer, const std::string& amount) {
  return R"({"type":"AddFunds","customerId":")" + customer + R"(","amount":)" + amount +
         R"(,"commandId":"funds-)" + customer + "-" + amount + "\"}";
}

// A slow service: the checkout's `type` commands to `aggregate` go to a
// topic no aggregate reads, keyed by `key`, and the test delivers them when
// it chooses (before the deadline, after it, or never). Only the target of
// those sends changes; their fields and command ids are the example's.
EngineOptions Hold(EngineOptions options, const std::string& aggregate, const std::string& command_type,
                   const std::string& key) {
  for (ProcessManagerSpec& pm : options.topology.process_managers) {
    for (auto& [event_type, reactions] : pm.events) {
      for (ReactionSpec& r : reactions) {
        for (SendSpec& s : r.send) {
          if (s.aggregate == aggregate && s.type == command_type) {
            s.aggregate.clear();
            s.topic = kHeld;
            s.key = ExpressionSpec{key, s.where};
          }
        }
      }
    }
  }
  return options;
}
// The payment service is slow.
EngineOptions HoldCharges(EngineOptions options) {
  return Hold(std::move(options), "wallet", "Charge", "state.customerId");
}

class ShopRulesTest : public ::testing::Test {
 protected:
  void Open(EngineOptions options) {
    auto driver = TopologyTestDriver::Create(options);
    ASSERT_TRUE(driver.ok()) << driver.status().ToString();
    driver_ = std::move(driver).value();
  }
  void SetUp() override { Open(testing::LoadExample("shop")); }

  void Pipe(const std::string& topic, const std::string& key, const std::string& value) {
    Status s = driver_->PipeInput(topic, key, value);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // The stored document as text (money keeps its digits), "" when absent.
  std::string Raw(const std::string& store, const std::string& key) {
    auto s = driver_->GetStore(store);
    EXPECT_NE(s, nullptr) << store;
    if (!s) return "";
    auto v = s->Get(key);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() && v->has_value() ? **v : "";
  }
  json Get(const std::string& store, const std::string& key) {
    const std::string raw = Raw(store, key);
    return raw.empty() ? json() : json::parse(raw);
  }

  // Everything written to `topic` since the last read, by type.
  std::vector<Record> Read(const std::string& topic) {
    std::vector<Record> out = driver_->ReadOutput(topic);
    for (const Record& r : out) seen_[topic].push_back(r);
    return out;
  }
  static std::vector<std::string> Types(const std::vector<Record>& records) {
    std::vector<std::string> out;
    for (const Record& r : records) out.push_back(json::parse(*r.value).value("type", "?"));
    return out;
  }
  std::vector<std::string> ReadTypes(const std::string& topic) { return Types(Read(topic)); }

  void Stock(const std::string& product, int quantity) {
    Pipe(kInventory, product, AddStock(product, quantity));
  }
  void Funds(const std::string& customer, const std::string& amount) {
    Pipe(kPayments, customer, AddFunds(customer, amount));
  }
  void Place(const std::string& order, const std::string& customer, const std::string& product,
             int quantity, const std::string& unit_price) {
    Pipe(kOrders, order, PlaceOrder(order, customer, product, quantity, unit_price));
  }
  // A rewind of the checkout's task: every event it has read so far, again,
  // with their headers (the projections do not see them: they are not
  // idempotent to replays, and not the subject here).
  void ReplayCheckoutInput() {
    Read(kCheckoutIn);
    std::vector<Record> input = seen_[kCheckoutIn];
    ASSERT_FALSE(input.empty()) << "nothing reached " << kCheckoutIn;
    for (const Record& r : input) {
      ASSERT_TRUE(driver_->PipeInput(kCheckoutIn, r.key, r.value, 0, r.headers).ok());
    }
    Read(kCheckoutIn);
  }
  void DrainAll() {
    for (const char* t : {"shop.orders.events", "shop.inventory.events", "shop.payments.events",
                          kOrders, kInventory, kPayments, kHeld, kCheckoutIn}) {
      Read(t);
    }
  }

  // No test expects dead letters or rejections of the checkout's own
  // commands unless it reads them itself.
  void TearDown() override {
    if (!driver_) return;
    for (const Record& r : driver_->ReadOutput("shop-dlq")) {
      ADD_FAILURE() << "unexpected dead letter: " << Header(r, "kcqrs.error") << " "
                    << r.value.value_or("");
    }
    for (const char* t : {"shop.inventory.rejections", "shop.payments.rejections"}) {
      for (const Record& r : driver_->ReadOutput(t)) {
        ADD_FAILURE() << "unexpected rejection on " << t << ": " << r.value.value_or("");
      }
    }
  }

  std::unique_ptr<TopologyTestDriver> driver_;
  std::map<std::string, std::vector<Record>> seen_;
};

TEST_F(ShopRulesTest, HappyPathReservesChargesAndConfirms) {
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  DrainAll();
  Place("o-1", "c-1", "p-1", 2, "12.50");

  EXPECT_EQ(ReadTypes("shop.orders.events"),
            (std::vector<std::string>{"OrderPlaced", "OrderConfirmed"}));
  EXPECT_EQ(ReadTypes("shop.inventory.events"), (std::vector<std::string>{"StockReserved"}));
  std::vector<Record> payments = Read("shop.payments.events");
  ASSERT_EQ(Types(payments), (std::vector<std::string>{"PaymentCharged"}));
  // amount = quantity x unitPrice, exactly: 2 x 12.50 = 25.00.
  EXPECT_NE(payments[0].value->find(R"("amount":25.00)"), std::string::npos) << *payments[0].value;
  EXPECT_NE(payments[0].value->find(R"("orderId":"o-1")"), std::string::npos);

  // The commands the checkout sent, with ids derived from their triggers:
  // <pm>:<instance>:<aggregate>/<aggregate id>/<version>:<n>.
  std::vector<Record> reserve = Read(kInventory);
  ASSERT_EQ(Types(reserve), (std::vector<std::string>{"ReserveStock"}));
  EXPECT_EQ(*reserve[0].key, "p-1");
  json rs = json::parse(*reserve[0].value);
  EXPECT_EQ(rs["commandId"], "checkout:o-1:order/o-1/1:0");
  EXPECT_EQ(rs["product"], "p-1");
  EXPECT_EQ(rs["quantity"], 2);
  EXPECT_EQ(rs["orderId"], "o-1");
  std::vector<Record> charge = Read(kPayments);
  ASSERT_EQ(Types(charge), (std::vector<std::string>{"Charge"}));
  EXPECT_EQ(*charge[0].key, "c-1");
  EXPECT_NE(charge[0].value->find(R"("amount":25.00)"), std::string::npos) << *charge[0].value;
  // StockReserved is the stock p-1's second event (after StockAdded).
  EXPECT_EQ(json::parse(*charge[0].value)["commandId"], "checkout:o-1:stock/p-1/2:0");
  std::vector<Record> confirm = Read(kOrders);
  ASSERT_EQ(Types(confirm), (std::vector<std::string>{"ConfirmOrder"}));
  EXPECT_EQ(json::parse(*confirm[0].value)["commandId"], "checkout:o-1:wallet/c-1/2:0");

  EXPECT_EQ(Raw("orders", "o-1"), R"({"orderId":"o-1","reason":null,"status":"CONFIRMED"})");
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":8,"product":"p-1","reserved":2})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":75.00,"customerId":"c-1"})");
  EXPECT_TRUE(driver_->ReadOutput("shop.orders.rejections").empty());
}

TEST_F(ShopRulesTest, TheCheckoutsStoreShowsEachInstance) {
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 2, "12.50");
  json doc = Get("checkouts", "o-1");
  ASSERT_TRUE(doc.is_object()) << "no checkout o-1";
  EXPECT_EQ(doc["id"], "o-1");
  EXPECT_EQ(doc["status"], "completed");
  EXPECT_FALSE(doc.contains("deadline")) << doc.dump();
  // OrderPlaced, StockReserved, PaymentCharged, OrderConfirmed.
  EXPECT_EQ(doc["events"], 4) << doc.dump();
  EXPECT_TRUE(doc["started"].is_number_integer()) << doc.dump();
  EXPECT_TRUE(doc["updated"].is_number_integer()) << doc.dump();
  EXPECT_LE(doc["started"].get<int64_t>(), doc["updated"].get<int64_t>());
  const std::string raw = Raw("checkouts", "o-1");
  EXPECT_NE(raw.find(R"("amount":25.00)"), std::string::npos) << raw;
  EXPECT_EQ(doc["state"]["status"], "CONFIRMED");
  EXPECT_EQ(doc["state"]["customerId"], "c-1");
  EXPECT_EQ(doc["state"]["product"], "p-1");
  EXPECT_EQ(doc["state"]["quantity"], 2);
  // Events of no order (stock and funds added) start no instance.
  auto store = driver_->GetStore("checkouts");
  ASSERT_NE(store, nullptr);
  size_t instances = 0;
  for (auto it = store->Range("", ""); it->Valid(); it->Next()) ++instances;
  EXPECT_EQ(instances, 1u);
}

TEST_F(ShopRulesTest, OutOfStockCancelsTheOrderAndChargesNothing) {
  Stock("p-1", 1);
  Funds("c-1", "100.00");
  DrainAll();
  Place("o-1", "c-1", "p-1", 2, "1.00");      // more than there is
  Place("o-2", "c-1", "p-none", 1, "1.00");   // a product never stocked

  std::vector<Record> failed = Read("shop.inventory.events");
  ASSERT_EQ(Types(failed),
            (std::vector<std::string>{"StockReservationFailed", "StockReservationFailed"}));
  json f = json::parse(*failed[0].value);
  EXPECT_EQ(f["orderId"], "o-1");
  EXPECT_EQ(f["reason"], "out_of_stock");
  EXPECT_EQ(json::parse(*failed[1].value)["orderId"], "o-2");
  EXPECT_TRUE(Read(kPayments).empty()) << "nothing may be charged";
  EXPECT_TRUE(Read("shop.payments.events").empty());
  for (const char* o : {"o-1", "o-2"}) {
    EXPECT_EQ(Get("orders", o),
              (json{{"orderId", o}, {"status", "CANCELLED"}, {"reason", "out_of_stock"}}));
    json doc = Get("checkouts", o);
    EXPECT_EQ(doc["status"], "compensated") << doc.dump();
    EXPECT_FALSE(doc.contains("deadline")) << doc.dump();
  }
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":1,"product":"p-1","reserved":0})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
}

TEST_F(ShopRulesTest, PaymentDeclinedReleasesTheStockAndCancels) {
  Stock("p-1", 10);
  Funds("c-1", "10.00");
  DrainAll();
  Place("o-1", "c-1", "p-1", 1, "10.01");   // a cent short
  Place("o-2", "c-none", "p-1", 3, "1.00"); // no wallet at all

  std::vector<Record> payments = Read("shop.payments.events");
  ASSERT_EQ(Types(payments), (std::vector<std::string>{"PaymentDeclined", "PaymentDeclined"}));
  EXPECT_EQ(json::parse(*payments[0].value)["reason"], "insufficient_funds");
  EXPECT_EQ(ReadTypes("shop.inventory.events"),
            (std::vector<std::string>{"StockReserved", "StockReleased", "StockReserved",
                                      "StockReleased"}));
  for (const char* o : {"o-1", "o-2"}) {
    EXPECT_EQ(Get("orders", o),
              (json{{"orderId", o}, {"status", "CANCELLED"}, {"reason", "payment_declined"}}));
    json doc = Get("checkouts", o);
    EXPECT_EQ(doc["status"], "compensated") << doc.dump();
    EXPECT_FALSE(doc.contains("deadline")) << "a declined payment cancels the deadline";
  }
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":10.00,"customerId":"c-1"})");
  // Exactly the balance is enough.
  Place("o-3", "c-1", "p-1", 1, "10.00");
  EXPECT_EQ(Get("orders", "o-3")["status"], "CONFIRMED");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":0.00,"customerId":"c-1"})");
}

TEST_F(ShopRulesTest, TheDeadlineReleasesAndCancelsWhenNoPaymentAnswers) {
  Open(HoldCharges(testing::LoadExample("shop")));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 4, "2.50");
  DrainAll();
  json doc = Get("checkouts", "o-1");
  EXPECT_EQ(doc["status"], "active");
  EXPECT_EQ(doc["state"]["status"], "CHARGING");
  ASSERT_TRUE(doc.contains("deadline")) << doc.dump();
  EXPECT_EQ(doc["deadline"]["due"], 30000) << doc.dump();
  const std::string seq = doc["deadline"]["seq"].dump();
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":6,"product":"p-1","reserved":4})");

  // Not a millisecond early.
  ASSERT_TRUE(driver_->AdvanceWallClockTime(29999).ok());
  EXPECT_TRUE(Read(kInventory).empty());
  EXPECT_EQ(Get("orders", "o-1")["status"], "PLACED");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(1).ok());
  std::vector<Record> release = Read(kInventory);
  ASSERT_EQ(Types(release), (std::vector<std::string>{"ReleaseStock"}));
  json rel = json::parse(*release[0].value);
  EXPECT_EQ(rel["quantity"], 4);
  EXPECT_EQ(rel["orderId"], "o-1");
  EXPECT_TRUE(rel["commandId"].get<std::string>().starts_with("checkout:o-1:deadline/"))
      << rel.dump();
  EXPECT_EQ(ReadTypes("shop.inventory.events"), (std::vector<std::string>{"StockReleased"}));
  std::vector<Record> cancel = Read(kOrders);
  ASSERT_EQ(Types(cancel), (std::vector<std::string>{"CancelOrder"}));
  EXPECT_EQ(json::parse(*cancel[0].value)["reason"], "timeout");
  // The firing is the trigger: deadline/<seq>, the commands its 0th and 1st.
  EXPECT_EQ(rel["commandId"], "checkout:o-1:deadline/" + seq + ":0");
  EXPECT_EQ(json::parse(*cancel[0].value)["commandId"], "checkout:o-1:deadline/" + seq + ":1");
  EXPECT_EQ(Get("orders", "o-1"),
            (json{{"orderId", "o-1"}, {"status", "CANCELLED"}, {"reason", "timeout"}}));
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");
  doc = Get("checkouts", "o-1");
  EXPECT_EQ(doc["status"], "compensated");
  EXPECT_FALSE(doc.contains("deadline")) << doc.dump();
  EXPECT_EQ(doc["state"]["reason"], "timeout");

  // Exactly once: more time changes nothing.
  ASSERT_TRUE(driver_->AdvanceWallClockTime(60000).ok());
  EXPECT_TRUE(Read(kInventory).empty());
  EXPECT_TRUE(Read(kOrders).empty());
}

TEST_F(ShopRulesTest, TheDeadlineIsASettingOfTheExample) {
  Open(HoldCharges(testing::LoadExample("shop", {"process_managers.checkout.deadline_ms=5000"})));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 1, "2.50");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(4999).ok());
  EXPECT_EQ(Get("orders", "o-1")["status"], "PLACED");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(1).ok());
  EXPECT_EQ(Get("orders", "o-1")["reason"], "timeout");
}

TEST_F(ShopRulesTest, APaymentInTimeCancelsTheDeadline) {
  Open(HoldCharges(testing::LoadExample("shop")));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 4, "2.50");
  std::vector<Record> held = Read(kHeld);
  ASSERT_EQ(Types(held), (std::vector<std::string>{"Charge"}));
  EXPECT_EQ(*held[0].key, "c-1");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(29000).ok());
  Pipe(kPayments, *held[0].key, *held[0].value);  // the payment answers in time
  EXPECT_EQ(Get("orders", "o-1")["status"], "CONFIRMED");
  EXPECT_FALSE(Get("checkouts", "o-1").contains("deadline"));
  DrainAll();
  ASSERT_TRUE(driver_->AdvanceWallClockTime(60000).ok());
  EXPECT_TRUE(Read(kInventory).empty()) << "a cancelled deadline fired";
  EXPECT_TRUE(Read(kOrders).empty());
  EXPECT_EQ(Get("orders", "o-1")["status"], "CONFIRMED");
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":6,"product":"p-1","reserved":4})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":90.00,"customerId":"c-1"})");
}

TEST_F(ShopRulesTest, ALateSuccessIsRefundedAndAReplayRefundsOnce) {
  Open(HoldCharges(testing::LoadExample("shop")));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 3, "0.10");
  std::vector<Record> held = Read(kHeld);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_TRUE(driver_->AdvanceWallClockTime(30000).ok());
  EXPECT_EQ(Get("orders", "o-1")["reason"], "timeout");
  DrainAll();

  // The payment service finally charges: the checkout gave up, so it refunds.
  Pipe(kPayments, *held[0].key, *held[0].value);
  std::vector<Record> payments = Read("shop.payments.events");
  ASSERT_EQ(Types(payments), (std::vector<std::string>{"PaymentCharged", "PaymentRefunded"}));
  EXPECT_NE(payments[1].value->find(R"("amount":0.30)"), std::string::npos) << *payments[1].value;
  std::vector<Record> refund = Read(kPayments);
  ASSERT_EQ(Types(refund), (std::vector<std::string>{"Refund"}));
  const std::string refund_id = json::parse(*refund[0].value)["commandId"];
  EXPECT_EQ(refund_id, "checkout:o-1:wallet/c-1/2:0");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
  EXPECT_EQ(Get("orders", "o-1")["status"], "CANCELLED") << "a refunded order stays cancelled";
  EXPECT_TRUE(Read(kOrders).empty()) << "no ConfirmOrder after the cancellation";
  EXPECT_TRUE(Read(kInventory).empty()) << "the stock was released once, by the deadline";

  // The same PaymentCharged again (a rewind): the checkout knows it
  // refunded; were it to answer again, it would be with the same command
  // id, which the wallet has decided already.
  ReplayCheckoutInput();
  for (const Record& r : Read(kPayments)) {
    EXPECT_EQ(json::parse(*r.value)["commandId"], refund_id);
  }
  EXPECT_TRUE(Read("shop.payments.events").empty()) << "refunded twice";
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
}

TEST_F(ShopRulesTest, AReplayedEventDoesNotMakeAnAggregateActTwice) {
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  DrainAll();
  Place("o-1", "c-1", "p-1", 2, "5.00");
  std::vector<Record> commands;
  std::set<std::string> ids;
  for (const char* t : {kInventory, kPayments, kOrders}) {
    for (const Record& r : Read(t)) {
      commands.push_back(r);
      ids.insert(json::parse(*r.value)["commandId"].get<std::string>());
    }
  }
  ASSERT_EQ(commands.size(), 3u);  // ReserveStock, Charge, ConfirmOrder
  DrainAll();

  // Every event of the checkout again, as a rewound task reads them; and
  // each of its commands again, as a retrying producer would send them.
  ReplayCheckoutInput();
  for (const Record& r : commands) Pipe(r.topic, *r.key, *r.value);
  for (const char* t : {kInventory, kPayments, kOrders}) {
    for (const Record& r : Read(t)) {
      EXPECT_TRUE(ids.count(json::parse(*r.value)["commandId"].get<std::string>()))
          << "a replay sent a command with a new id: " << *r.value;
    }
  }
  EXPECT_TRUE(Read("shop.orders.events").empty());
  EXPECT_TRUE(Read("shop.inventory.events").empty());
  EXPECT_TRUE(Read("shop.payments.events").empty());
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":8,"product":"p-1","reserved":2})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":90.00,"customerId":"c-1"})");
  EXPECT_EQ(Get("orders", "o-1")["status"], "CONFIRMED");
  EXPECT_TRUE(driver_->ReadOutput("shop.orders.rejections").empty());
}

// A rewind replays events into a checkout whose state moved on: what it
// compensated already is not compensated again (the second release would
// have another trigger, so another command id, and the stock would grow).
TEST_F(ShopRulesTest, AReplayAfterACompensationCompensatesNothingMore) {
  Open(HoldCharges(testing::LoadExample("shop")));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 4, "1.00");
  std::vector<Record> reserved = Read("shop.inventory.events");
  ASSERT_EQ(Types(reserved), (std::vector<std::string>{"StockAdded", "StockReserved"}));
  std::vector<Record> held = Read(kHeld);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_TRUE(driver_->AdvanceWallClockTime(30000).ok());
  Pipe(kPayments, *held[0].key, *held[0].value);  // a late success, refunded
  DrainAll();
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");

  ReplayCheckoutInput();
  EXPECT_TRUE(Read(kInventory).empty());
  EXPECT_TRUE(Read(kPayments).empty());
  EXPECT_TRUE(Read(kOrders).empty());
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
}

TEST_F(ShopRulesTest, CommandIdsAreTheSameOnEveryRun) {
  auto run = [&] {
    Open(testing::LoadExample("shop"));
    Stock("p-1", 1);
    Funds("c-1", "5.00");
    Place("o-1", "c-1", "p-1", 1, "1.00");
    Place("o-2", "c-1", "p-1", 1, "1.00");  // out of stock
    Place("o-3", "c-2", "p-1", 1, "1.00");
    std::vector<std::string> ids;
    for (const char* t : {kOrders, kInventory, kPayments}) {
      for (const Record& r : driver_->ReadOutput(t)) {
        json v = json::parse(*r.value);
        if (v["commandId"].get<std::string>().starts_with("checkout:")) ids.push_back(v.dump());
      }
    }
    return ids;
  };
  std::vector<std::string> first = run();
  EXPECT_GE(first.size(), 5u);
  EXPECT_EQ(run(), first);
}

TEST_F(ShopRulesTest, BadOrdersAreRejectedAndStartNoCheckout) {
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 0, "1.00");
  Place("o-2", "c-1", "p-1", 1, "1.005");  // not whole cents
  Place("o-3", "c-1", "p-1", 1, "\"1.00\"");
  Pipe(kOrders, "o-4", R"({"type":"PlaceOrder","orderId":"o-4","product":"p-1","quantity":1,)"
                       R"("unitPrice":1.00,"commandId":"x-4"})");
  Place("o-5", "c-1", "p-1", 1, "1.00");
  Place("o-5", "c-1", "p-1", 1, "1.00");  // a retry: deduplicated
  Pipe(kOrders, "o-5", R"({"type":"PlaceOrder","orderId":"o-5","customerId":"c-1",)"
                       R"("product":"p-1","quantity":1,"unitPrice":1.00,"commandId":"again"})");
  std::vector<Record> rejections = driver_->ReadOutput("shop.orders.rejections");
  std::vector<std::string> codes;
  for (const Record& r : rejections) codes.push_back(json::parse(*r.value)["code"]);
  EXPECT_EQ(codes, (std::vector<std::string>{"invalid", "invalid", "invalid", "invalid",
                                             "already_exists"}));
  EXPECT_NE(rejections[1].value->find("found 1.005"), std::string::npos) << *rejections[1].value;
  for (const char* o : {"o-1", "o-2", "o-3", "o-4"}) {
    EXPECT_TRUE(Get("checkouts", o).is_null()) << o;
    EXPECT_TRUE(Get("orders", o).is_null()) << o;
  }
  EXPECT_EQ(Get("orders", "o-5")["status"], "CONFIRMED");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":99.00,"customerId":"c-1"})");
  // The checkout's commands to an order that is final are rejected, with a code.
  Pipe(kOrders, "o-5", R"({"type":"CancelOrder","orderId":"o-5","commandId":"late"})");
  rejections = driver_->ReadOutput("shop.orders.rejections");
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(json::parse(*rejections[0].value)["code"], "already_final");
  Pipe(kOrders, "o-9", R"({"type":"ConfirmOrder","orderId":"o-9","commandId":"nf"})");
  rejections = driver_->ReadOutput("shop.orders.rejections");
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(json::parse(*rejections[0].value)["code"], "not_found");
}

TEST_F(ShopRulesTest, ACustomerCancelWhileChargingIsUndone) {
  Open(HoldCharges(testing::LoadExample("shop")));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 2, "7.00");
  std::vector<Record> held = Read(kHeld);
  ASSERT_EQ(held.size(), 1u);
  DrainAll();
  Pipe(kOrders, "o-1",
       R"({"type":"CancelOrder","orderId":"o-1","reason":"changed_mind","commandId":"k-1"})");
  EXPECT_EQ(Get("orders", "o-1"),
            (json{{"orderId", "o-1"}, {"status", "CANCELLED"}, {"reason", "changed_mind"}}));
  EXPECT_EQ(ReadTypes("shop.inventory.events"), (std::vector<std::string>{"StockReleased"}));
  EXPECT_EQ(ReadTypes(kInventory), (std::vector<std::string>{"ReleaseStock"}));
  EXPECT_TRUE(Read(kOrders).empty()) << "the checkout cancels nothing itself";
  EXPECT_EQ(Get("checkouts", "o-1")["status"], "compensated");
  // The charge still lands: refunded. And the deadline no longer fires.
  Pipe(kPayments, *held[0].key, *held[0].value);
  EXPECT_EQ(ReadTypes("shop.payments.events"),
            (std::vector<std::string>{"PaymentCharged", "PaymentRefunded"}));
  ASSERT_TRUE(driver_->AdvanceWallClockTime(60000).ok());
  EXPECT_TRUE(Read(kInventory).empty());
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
  EXPECT_EQ(Get("orders", "o-1")["reason"], "changed_mind");
}

TEST_F(ShopRulesTest, ACustomerCancelWhileReservingReleasesTheLateReservation) {
  Open(Hold(testing::LoadExample("shop"), "stock", "ReserveStock", "state.product"));
  Stock("p-1", 10);
  Funds("c-1", "100.00");
  Place("o-1", "c-1", "p-1", 2, "1.00");
  std::vector<Record> held = Read(kHeld);
  ASSERT_EQ(Types(held), (std::vector<std::string>{"ReserveStock"}));
  DrainAll();
  Pipe(kOrders, "o-1", R"({"type":"CancelOrder","orderId":"o-1","commandId":"k-1"})");
  EXPECT_EQ(Get("orders", "o-1"),
            (json{{"orderId", "o-1"}, {"status", "CANCELLED"}, {"reason", "cancelled"}}));
  EXPECT_EQ(Get("checkouts", "o-1")["status"], "compensated");
  // The reservation lands after the cancel: released, never charged.
  Pipe(kInventory, *held[0].key, *held[0].value);
  EXPECT_EQ(ReadTypes("shop.inventory.events"),
            (std::vector<std::string>{"StockReserved", "StockReleased"}));
  EXPECT_TRUE(Read(kPayments).empty());
  EXPECT_TRUE(Read(kHeld).empty());
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":10,"product":"p-1","reserved":0})");
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":100.00,"customerId":"c-1"})");
}

// The aggregates alone, commands sent by hand: a reservation or a charge
// that cannot be covered is an event the checkout reacts to; nothing ever
// goes negative; wrong quantities and amounts are rejections with codes.
TEST_F(ShopRulesTest, StockNeverGoesNegative) {
  Stock("p-1", 3);
  DrainAll();
  auto reserve = [&](const std::string& order, int q, const std::string& kind) {
    Pipe(kInventory, "p-1",
         R"({"type":")" + kind + R"(","product":"p-1","quantity":)" + std::to_string(q) +
             R"(,"orderId":")" + order + R"(","commandId":")" + kind + order + "\"}");
  };
  reserve("x-1", 2, "ReserveStock");
  reserve("x-2", 2, "ReserveStock");
  reserve("x-3", 5, "ReleaseStock");  // more than is reserved
  reserve("x-1", 2, "ReleaseStock");
  reserve("x-4", 0, "ReserveStock");
  Pipe(kInventory, "p-1", R"({"type":"AddStock","product":"p-1","quantity":-1,"commandId":"n"})");
  std::vector<Record> events = Read("shop.inventory.events");
  ASSERT_EQ(Types(events), (std::vector<std::string>{"StockReserved", "StockReservationFailed",
                                                     "StockReleased"}));
  json failed = json::parse(*events[1].value);
  EXPECT_EQ(failed, (json{{"type", "StockReservationFailed"}, {"product", "p-1"},
                          {"orderId", "x-2"}, {"quantity", 2}, {"available", 1},
                          {"reason", "out_of_stock"}}));
  std::vector<std::string> codes;
  for (const Record& r : driver_->ReadOutput("shop.inventory.rejections")) {
    codes.push_back(json::parse(*r.value)["code"]);
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"invalid", "invalid", "invalid"}));
  EXPECT_EQ(Raw("stock", "p-1"), R"({"available":3,"product":"p-1","reserved":0})");
}

TEST_F(ShopRulesTest, BalancesNeverGoNegativeAndAmountsAreExact) {
  Funds("c-1", "0.10");
  Funds("c-1", "0.20");
  DrainAll();
  auto pay = [&](const std::string& kind, const std::string& amount, const std::string& id) {
    Pipe(kPayments, "c-1",
         R"({"type":")" + kind + R"(","customerId":"c-1","amount":)" + amount +
             R"(,"orderId":"x","commandId":")" + id + "\"}");
  };
  pay("Charge", "0.31", "k-1");
  pay("Charge", "0.30", "k-2");
  pay("Charge", "0.001", "k-3");
  pay("Refund", "0.05", "k-4");
  pay("Charge", "\"1\"", "k-5");
  std::vector<Record> events = Read("shop.payments.events");
  ASSERT_EQ(Types(events), (std::vector<std::string>{"PaymentDeclined", "PaymentCharged",
                                                     "PaymentRefunded"}));
  EXPECT_NE(events[0].value->find(R"("balance":0.30)"), std::string::npos) << *events[0].value;
  EXPECT_NE(events[0].value->find(R"("reason":"insufficient_funds")"), std::string::npos);
  std::vector<std::string> codes;
  for (const Record& r : driver_->ReadOutput("shop.payments.rejections")) {
    codes.push_back(json::parse(*r.value)["code"]);
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"invalid_amount", "invalid_amount"}));
  // 0.10 + 0.20 - 0.30 + 0.05, exactly.
  EXPECT_EQ(Raw("wallets", "c-1"), R"({"balance":0.05,"customerId":"c-1"})");
  Pipe(kPayments, "c-1", R"({"type":"AddFunds","customerId":"c-1","amount":-1,"commandId":"n"})");
  EXPECT_EQ(driver_->ReadOutput("shop.payments.rejections").size(), 1u);
}

}  // namespace
}  // namespace kcqrs
