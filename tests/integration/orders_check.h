// What exactly-once means for the orders example, checked from the outside:
// a command stream whose every command id needs exactly one outcome, the
// count of outcomes on the committed output topics, and an independent fold
// of the committed events into the two read models (`orders`, and
// `product_totals`, which the engine reaches through a repartition topic).
// The fault tests (kill -9, broker faults) all end with these checks.
#ifndef KCQRS_TESTS_INTEGRATION_ORDERS_CHECK_H_
#define KCQRS_TESTS_INTEGRATION_ORDERS_CHECK_H_

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/kafka/record.h"
#include "json/document.h"
#include "kcqrs/engine.h"
#include "tests/integration/orders_example.h"
#include "tests/support/kafka_io.h"

namespace kcqrs::testing {

struct OrdersCommands {
  std::vector<std::pair<std::string, std::string>> commands;  // key, value (in order)
  std::set<std::string> command_ids;                          // each needs one outcome
};

// The command stream: creates (some invalid), cancels, double cancels,
// producer-style retries of the same command id, and poison records (which
// go to the dead-letter topic and have no outcome).
inline OrdersCommands MakeOrdersCommands(int orders) {
  OrdersCommands e;
  for (int i = 0; i < orders; ++i) {
    const std::string id = "o-" + std::to_string(i);
    const std::string cid = "c-" + std::to_string(i);
    e.commands.emplace_back(id, CreateOrder(id, "p-" + std::to_string(i % 4), i % 5, cid));
    e.command_ids.insert(cid);
    if (i % 10 == 0) e.commands.emplace_back(id, CreateOrder(id, "p-0", 1, cid));  // retry
    if (i % 3 == 0) {
      e.commands.emplace_back(id, CancelOrder(id, "x-" + std::to_string(i)));
      e.command_ids.insert("x-" + std::to_string(i));
    }
    if (i % 9 == 0) {
      e.commands.emplace_back(id, CancelOrder(id, "y-" + std::to_string(i)));
      e.command_ids.insert("y-" + std::to_string(i));
    }
    if (i % 25 == 0) e.commands.emplace_back(id, "garbage-" + std::to_string(i));
  }
  return e;
}

// The command id an outcome record answers: events carry it in a header,
// rejections in their value.
inline std::string OutcomeCommandId(const kafka::ConsumedRecord& r, bool is_event) {
  if (is_event) return HeaderValue(r, "kcqrs.command.id");
  auto v = kcqrs::Json::parse(r.value.value_or(""), nullptr, /*allow_exceptions=*/false);
  if (!v.is_object() || !v.contains("commandId") || !v["commandId"].is_string()) return "";
  return v["commandId"].get<std::string>();
}

// command id -> number of outcome records (events and rejections).
inline std::map<std::string, int> CountOutcomes(
    const std::vector<kafka::ConsumedRecord>& events,
    const std::vector<kafka::ConsumedRecord>& rejections) {
  std::map<std::string, int> out;
  for (const auto& e : events) out[OutcomeCommandId(e, true)]++;
  for (const auto& r : rejections) out[OutcomeCommandId(r, false)]++;
  return out;
}

struct OutcomeCheck {
  size_t missing = 0;  // command ids with no outcome
  size_t doubled = 0;  // command ids with more than one
  size_t unknown = 0;  // outcomes for command ids never sent
};

// Adds a failure naming each command id whose outcome is missing (the first
// few), doubled or unknown, and returns the counts.
inline OutcomeCheck ExpectExactlyOneOutcomeEach(const std::map<std::string, int>& outcomes,
                                                const std::set<std::string>& command_ids) {
  OutcomeCheck c;
  for (const std::string& cid : command_ids) {
    auto it = outcomes.find(cid);
    if (it == outcomes.end()) {
      if (++c.missing <= 10) ADD_FAILURE() << cid << " has no outcome";
    } else if (it->second != 1) {
      ++c.doubled;
      ADD_FAILURE() << cid << " has " << it->second << " outcomes";
    }
  }
  for (const auto& [cid, count] : outcomes) {
    if (!command_ids.count(cid)) {
      ++c.unknown;
      ADD_FAILURE() << "an outcome for a command never sent: '" << cid << "' (" << count << ")";
    }
  }
  EXPECT_EQ(c.missing, 0u) << "commands without an outcome";
  EXPECT_EQ(c.doubled, 0u) << "commands with more than one outcome";
  EXPECT_EQ(c.unknown, 0u) << "outcomes of unknown commands";
  return c;
}

// The read models as the committed events define them, computed without the
// engine: per order its last state, per product the orders not cancelled.
struct OrdersFold {
  std::map<std::string, kcqrs::Json> orders;
  std::map<std::string, kcqrs::Json> totals;
};

inline OrdersFold FoldOrderEvents(const std::vector<kafka::ConsumedRecord>& events) {
  using json = kcqrs::Json;
  OrdersFold f;
  for (const auto& e : events) {
    json v = json::parse(*e.value);
    const std::string id = v["orderId"];
    const std::string product = v["product"];
    json& t = f.totals[product];
    if (t.is_null()) t = {{"product", product}, {"orders", 0}, {"quantity", 0}};
    if (v["type"] == "OrderCreated") {
      f.orders[id] = {{"orderId", id}, {"product", product}, {"quantity", v["quantity"]},
                      {"status", "CREATED"}};
      t["orders"] = t["orders"].get<int>() + 1;
      t["quantity"] = t["quantity"].get<int>() + v["quantity"].get<int>();
    } else {
      f.orders[id]["status"] = "CANCELLED";
      t["orders"] = t["orders"].get<int>() - 1;
      t["quantity"] = t["quantity"].get<int>() - v["quantity"].get<int>();
    }
  }
  return f;
}

// True when both stores of `engine` hold exactly what the fold says (see
// ExpectStoresMatchFold); for waiting until an engine has caught up.
inline bool StoresMatchFold(const Engine& engine, const OrdersFold& fold) {
  auto orders = engine.GetStore("orders");
  auto totals = engine.GetStore("product_totals");
  if (orders == nullptr || totals == nullptr) return false;
  for (const auto& [view, want] :
       {std::pair{orders, &fold.orders}, std::pair{totals, &fold.totals}}) {
    size_t rows = 0;
    for (auto it = view->Range("", ""); it->Valid(); it->Next(), ++rows) {
      auto w = want->find(std::string(it->key()));
      if (w == want->end()) return false;
      auto got = kcqrs::Json::parse(it->value(), nullptr, /*allow_exceptions=*/false);
      if (got != w->second) return false;
    }
    if (rows != want->size()) return false;
  }
  return true;
}

// Both stores of `engine` hold exactly what the fold says: every order and
// nothing else in `orders`, every product's totals in `product_totals`.
inline void ExpectStoresMatchFold(const Engine& engine, const OrdersFold& fold) {
  auto view = engine.GetStore("orders");
  ASSERT_NE(view, nullptr);
  size_t rows = 0;
  for (auto it = view->Range("", ""); it->Valid(); it->Next(), ++rows) {
    auto want = fold.orders.find(std::string(it->key()));
    ASSERT_NE(want, fold.orders.end()) << "store has an order no event created: " << it->key();
    EXPECT_EQ(kcqrs::Json::parse(it->value()), want->second) << it->key();
  }
  EXPECT_EQ(rows, fold.orders.size());
  auto product_totals = engine.GetStore("product_totals");
  ASSERT_NE(product_totals, nullptr);
  size_t products = 0;
  for (auto it = product_totals->Range("", ""); it->Valid(); it->Next()) ++products;
  EXPECT_EQ(products, fold.totals.size()) << "product_totals has products no event names";
  for (const auto& [product, want] : fold.totals) {
    auto got = product_totals->Get(product);
    ASSERT_TRUE(got.ok() && got->has_value()) << product;
    EXPECT_EQ(kcqrs::Json::parse(**got), want) << product;
  }
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_INTEGRATION_ORDERS_CHECK_H_
