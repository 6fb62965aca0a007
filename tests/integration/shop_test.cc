// Issue 13's proof on the real broker: examples/shop run by the `kcqrs`
// binary (a child process), a generated mix of orders over products and
// customers with enough stock and funds for some orders and not for others,
// customers cancelling some of their orders, retries and invalid orders.
// After the system is quiet, every event topic is read with read_committed
// and every store from its changelog, and every invariant of the issue is
// checked, once with the default deadline, once with a deadline of a few
// milliseconds (deadlines race payments; late successes are refunded) and
// once with kill -9 rounds of the engine during the run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "json/document.h"
#include "tests/integration/kcqrs_child.h"
#include "tests/support/http_client.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;
using Clock = std::chrono::steady_clock;

constexpr char kTopology[] = KCQRS_SOURCE_DIR "/examples/shop/topology.yaml";

// One run's names: its application id, state directory and topics.
struct ShopNames {
  std::string app, state_dir;
  std::string order_commands, stock_commands, wallet_commands;
  std::string order_events, stock_events, wallet_events;
  std::string order_rejections, stock_rejections, wallet_rejections;
};

ShopNames MakeNames(const std::string& unique) {
  ShopNames n;
  n.app = unique;
  n.state_dir = (std::filesystem::temp_directory_path() / ("kcqrs-" + unique)).string();
  for (auto [kind, cmd, ev, rej] :
       {std::tuple{"orders", &n.order_commands, &n.order_events, &n.order_rejections},
        std::tuple{"inventory", &n.stock_commands, &n.stock_events, &n.stock_rejections},
        std::tuple{"payments", &n.wallet_commands, &n.wallet_events, &n.wallet_rejections}}) {
    *cmd = unique + "." + kind + ".commands";
    *ev = unique + "." + kind + ".events";
    *rej = unique + "." + kind + ".rejections";
  }
  return n;
}

std::vector<std::string> Overrides(const ShopNames& n, const std::string& bootstrap,
                                   int64_t deadline_ms) {
  return {
      "application.id=" + n.app,
      "application.state_dir=" + n.state_dir,
      "kafka.bootstrap_servers=" + bootstrap,
      "http.listen=127.0.0.1:0",
      "topics={" + n.order_commands + ": {partitions: 3}, " + n.stock_commands +
          ": {partitions: 3}, " + n.wallet_commands + ": {partitions: 3}}",
      "aggregates.order.command_topics=[" + n.order_commands + "]",
      "aggregates.order.event_topic=" + n.order_events,
      "aggregates.order.rejection_topic=" + n.order_rejections,
      "aggregates.stock.command_topics=[" + n.stock_commands + "]",
      "aggregates.stock.event_topic=" + n.stock_events,
      "aggregates.stock.rejection_topic=" + n.stock_rejections,
      "aggregates.wallet.command_topics=[" + n.wallet_commands + "]",
      "aggregates.wallet.event_topic=" + n.wallet_events,
      "aggregates.wallet.rejection_topic=" + n.wallet_rejections,
      "projections.orders.event_topics=[" + n.order_events + "]",
      "projections.stock.event_topics=[" + n.stock_events + "]",
      "projections.wallets.event_topics=[" + n.wallet_events + "]",
      "process_managers.checkout.event_topics=[" + n.order_events + ", " + n.stock_events +
          ", " + n.wallet_events + "]",
      "process_managers.checkout.deadline_ms=" + std::to_string(deadline_ms),
  };
}

std::string Cents(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "",
                static_cast<long long>(std::llabs(cents) / 100),
                static_cast<long long>(std::llabs(cents) % 100));
  return buf;
}
// Amounts come back as exact decimals with two digits; nlohmann reads them
// as doubles, which hold cents below 2^53 / 100 exactly enough to round.
int64_t ToCents(const json& amount) { return std::llround(amount.get<double>() * 100); }

struct Command {
  std::string topic, key, value;
};

struct PlacedOrder {
  std::string customer, product;
  int64_t quantity = 0, price_cents = 0;
  bool customer_cancel = false;
};

// The command mix. Stock: 0 to 30 per product, funds: 0.00 to 150.00 per
// customer, orders of 1 to 4 items at 0.50 to 20.00, so that some products
// run out and some customers run dry; some orders cancelled by their
// customer a little later; some PlaceOrders retried (same command id) or
// invalid (rejected, no checkout).
struct ShopMix {
  std::vector<Command> setup, orders;
  std::map<std::string, PlacedOrder> valid;  // by orderId
  std::map<std::string, int64_t> stock_added, funds_added;
  std::set<std::string> command_ids;  // each needs exactly one outcome
  size_t invalid = 0;
};

ShopMix MakeMix(const ShopNames& n, unsigned seed, int orders, int products, int customers) {
  std::mt19937 rng(seed);
  ShopMix m;
  for (int p = 0; p < products; ++p) {
    const std::string product = "p-" + std::to_string(p);
    const int q = static_cast<int>(rng() % 31);
    if (q == 0) continue;  // never stocked
    m.stock_added[product] = q;
    const std::string cid = "add-" + product;
    m.setup.push_back({n.stock_commands, product,
                       R"({"type":"AddStock","product":")" + product + R"(","quantity":)" +
                           std::to_string(q) + R"(,"commandId":")" + cid + "\"}"});
    m.command_ids.insert(cid);
  }
  for (int c = 0; c < customers; ++c) {
    const std::string customer = "c-" + std::to_string(c);
    const int64_t cents = static_cast<int64_t>(rng() % 15001);
    if (cents == 0) continue;  // no wallet
    m.funds_added[customer] = cents;
    const std::string cid = "fund-" + customer;
    m.setup.push_back({n.wallet_commands, customer,
                       R"({"type":"AddFunds","customerId":")" + customer + R"(","amount":)" +
                           Cents(cents) + R"(,"commandId":")" + cid + "\"}"});
    m.command_ids.insert(cid);
  }
  std::vector<std::pair<size_t, Command>> cancels;  // (send after this many orders, command)
  for (int i = 0; i < orders; ++i) {
    const std::string id = "o-" + std::to_string(i);
    PlacedOrder o{"c-" + std::to_string(rng() % customers),
                  "p-" + std::to_string(rng() % products), 1 + static_cast<int64_t>(rng() % 4),
                  50 + static_cast<int64_t>(rng() % 1951)};
    const bool invalid = i % 23 == 7;
    const std::string cid = "place-" + id;
    const std::string place =
        R"({"type":"PlaceOrder","orderId":")" + id + R"(","customerId":")" + o.customer +
        R"(","product":")" + o.product + R"(","quantity":)" +
        std::to_string(invalid ? 0 : o.quantity) + R"(,"unitPrice":)" + Cents(o.price_cents) +
        R"(,"commandId":")" + cid + "\"}";
    m.orders.push_back({n.order_commands, id, place});
    m.command_ids.insert(cid);
    if (i % 17 == 3) m.orders.push_back({n.order_commands, id, place});  // a retry
    if (invalid) {
      ++m.invalid;
      continue;
    }
    if (i % 11 == 5) {
      o.customer_cancel = true;
      const std::string kid = "cancel-" + id;
      cancels.push_back({m.orders.size() + rng() % 120,
                         {n.order_commands, id,
                          R"({"type":"CancelOrder","orderId":")" + id +
                              R"(","reason":"customer","commandId":")" + kid + "\"}"}});
      m.command_ids.insert(kid);
    }
    m.valid[id] = o;
  }
  // Each cancel goes in after a random number of later orders (so it meets
  // its checkout reserving, charging, confirming or finished).
  std::stable_sort(cancels.begin(), cancels.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [at, cmd] : cancels) {
    m.orders.insert(m.orders.begin() + static_cast<std::ptrdiff_t>(std::min(at, m.orders.size())),
                    cmd);
  }
  return m;
}

// Reads a set of topics with read_committed, from the start, incrementally.
class TopicReader {
 public:
  TopicReader(const std::string& bootstrap, const std::vector<std::string>& topics)
      : bootstrap_(bootstrap), topics_(topics) {}

  // Polls for up to `for_ms`; returns the number of new records.
  size_t Poll(std::chrono::milliseconds for_ms) {
    if (!consumer_ && !Connect()) {
      std::this_thread::sleep_for(for_ms);
      return 0;
    }
    size_t n = 0;
    const auto until = Clock::now() + for_ms;
    while (Clock::now() < until) {
      auto r = consumer_->Poll(std::chrono::milliseconds(50));
      if (r.ok() && r->has_value()) {
        records_[(*r)->topic].push_back(std::move(**r));
        ++n;
      }
    }
    return n;
  }
  const std::vector<kafka::ConsumedRecord>& records(const std::string& topic) {
    return records_[topic];
  }

 private:
  bool Connect() {
    auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap_}});
    if (!admin.ok()) return false;
    auto listed = (*admin)->ListTopics(std::chrono::seconds(10));
    if (!listed.ok()) return false;
    std::vector<kafka::TopicPartitionOffset> assign;
    for (const std::string& t : topics_) {
      int partitions = 0;
      for (const auto& l : *listed) {
        if (l.name == t) partitions = l.partitions;
      }
      if (partitions == 0) return false;  // not created yet
      for (int p = 0; p < partitions; ++p) assign.push_back({t, p, kafka::kOffsetBeginning});
    }
    auto consumer = kafka::Consumer::Create({{"bootstrap.servers", bootstrap_},
                                             {"isolation.level", "read_committed"},
                                             {"enable.auto.commit", "false"}});
    if (!consumer.ok() || !(*consumer)->Assign(assign).ok()) return false;
    consumer_ = std::move(consumer).value();
    return true;
  }

  std::string bootstrap_;
  std::vector<std::string> topics_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::map<std::string, std::vector<kafka::ConsumedRecord>> records_;
};

// What the committed events say about each order.
struct OrderFacts {
  int placed = 0, confirmed = 0, cancelled = 0;
  std::string reason;
  int reserved = 0, reservation_failed = 0, released = 0;
  int charged = 0, declined = 0, refunded = 0;
  int64_t charged_cents = 0;
};

struct Outcomes {
  std::map<std::string, OrderFacts> orders;
  // Every command id that produced an event or a rejection, with how many.
  std::map<std::string, int> outcomes;
  size_t pm_rejections = 0;
  std::vector<std::string> negative;  // where a stock or a balance went below zero
  std::map<std::string, int64_t> available, reserved, balance;  // folded from the events
  std::map<std::string, int64_t> stock_added, funds_added, charged, refunded;
};

Outcomes Fold(TopicReader& reader, const ShopNames& n) {
  Outcomes o;
  for (const auto& r : reader.records(n.order_events)) {
    json v = json::parse(*r.value);
    OrderFacts& f = o.orders[v["orderId"]];
    const std::string type = v["type"];
    if (type == "OrderPlaced") ++f.placed;
    if (type == "OrderConfirmed") ++f.confirmed;
    if (type == "OrderCancelled") {
      ++f.cancelled;
      f.reason = v.value("reason", "");
    }
    o.outcomes[HeaderValue(r, "kcqrs.command.id")]++;
  }
  // One consumer reads each partition in order, and one aggregate's events
  // are in one partition: folding in arrival order follows each aggregate.
  for (const auto& r : reader.records(n.stock_events)) {
    json v = json::parse(*r.value);
    const std::string type = v["type"], product = v["product"];
    const int64_t q = v.value("quantity", 0);
    if (type == "StockAdded") {
      o.available[product] += q;
      o.stock_added[product] += q;
      o.reserved[product] += 0;
    } else if (type == "StockReserved") {
      o.available[product] -= q;
      o.reserved[product] += q;
      ++o.orders[v["orderId"]].reserved;
    } else if (type == "StockReleased") {
      o.available[product] += q;
      o.reserved[product] -= q;
      ++o.orders[v["orderId"]].released;
    } else if (type == "StockReservationFailed") {
      ++o.orders[v["orderId"]].reservation_failed;
    }
    if (o.available[product] < 0 || o.reserved[product] < 0) {
      o.negative.push_back(product + " at " + type + " offset " + std::to_string(r.offset));
    }
    o.outcomes[HeaderValue(r, "kcqrs.command.id")]++;
  }
  for (const auto& r : reader.records(n.wallet_events)) {
    json v = json::parse(*r.value);
    const std::string type = v["type"], customer = v["customerId"];
    const int64_t cents = v.contains("amount") ? ToCents(v["amount"]) : 0;
    if (type == "FundsAdded") {
      o.balance[customer] += cents;
      o.funds_added[customer] += cents;
    } else if (type == "PaymentCharged") {
      o.balance[customer] -= cents;
      o.charged[customer] += cents;
      OrderFacts& f = o.orders[v["orderId"]];
      ++f.charged;
      f.charged_cents += cents;
    } else if (type == "PaymentRefunded") {
      o.balance[customer] += cents;
      o.refunded[customer] += cents;
      ++o.orders[v["orderId"]].refunded;
    } else if (type == "PaymentDeclined") {
      ++o.orders[v["orderId"]].declined;
    }
    if (o.balance[customer] < 0) {
      o.negative.push_back(customer + " at " + type + " offset " + std::to_string(r.offset));
    }
    o.outcomes[HeaderValue(r, "kcqrs.command.id")]++;
  }
  for (const std::string* t : {&n.order_rejections, &n.stock_rejections, &n.wallet_rejections}) {
    for (const auto& r : reader.records(*t)) {
      json v = json::parse(*r.value);
      const std::string cid = v.value("commandId", "");
      o.outcomes[cid]++;
      if (cid.starts_with("checkout:")) ++o.pm_rejections;
    }
  }
  return o;
}

// The issue's invariants that can only hold once the system is quiet, as a
// predicate for waiting (the full check, with messages, is CheckInvariants).
bool Settled(const Outcomes& o, const ShopMix& mix) {
  for (const auto& [id, _] : mix.valid) {
    auto it = o.orders.find(id);
    if (it == o.orders.end()) return false;
    const OrderFacts& f = it->second;
    if (f.confirmed + f.cancelled != 1) return false;
    if (f.cancelled && f.charged != f.refunded) return false;
    if (f.cancelled && f.reserved != f.released) return false;
  }
  return true;
}

// Latest value per key of a store's changelog (what the store holds).
std::map<std::string, json> ReadStore(const std::string& bootstrap, const std::string& app,
                                      const std::string& store, size_t expected) {
  std::map<std::string, json> out;
  for (const auto& r : ReadCommitted(bootstrap, app + "-" + store + "-changelog", expected,
                                     std::chrono::seconds(60), std::chrono::seconds(2))) {
    if (!r.key) continue;
    if (r.value) {
      out[*r.key] = json::parse(*r.value);
    } else {
      out.erase(*r.key);
    }
  }
  return out;
}
std::map<std::string, std::string> ReadStoreText(const std::string& bootstrap,
                                                 const std::string& app,
                                                 const std::string& store, size_t expected) {
  std::map<std::string, std::string> out;
  for (const auto& r : ReadCommitted(bootstrap, app + "-" + store + "-changelog", expected,
                                     std::chrono::seconds(60), std::chrono::seconds(2))) {
    if (r.key && r.value) out[*r.key] = *r.value;
  }
  return out;
}

bool Confirmed(const Outcomes& o, const std::string& id) {
  auto it = o.orders.find(id);
  return it != o.orders.end() && it->second.confirmed == 1;
}

struct Paths {
  int confirmed = 0, refunded = 0, late_success_refunds = 0, released = 0;
  std::map<std::string, int> cancelled;  // by reason
};

// Every invariant of issue 13, each checked for every order, product and
// customer; returns how often each path was taken.
void CheckInvariants(const std::string& bootstrap, const ShopNames& n, const ShopMix& mix,
                     const Outcomes& o, Paths* out) {
  Paths& paths = *out;
  // Exactly once: each command the test sent has exactly one outcome; each
  // command the checkout sent (its ids are derived, so a retry or a replay
  // sends the same id) at most one.
  for (const std::string& cid : mix.command_ids) {
    auto it = o.outcomes.find(cid);
    EXPECT_TRUE(it != o.outcomes.end() && it->second == 1)
        << cid << " has " << (it == o.outcomes.end() ? 0 : it->second) << " outcomes";
  }
  for (const auto& [cid, count] : o.outcomes) {
    EXPECT_EQ(count, 1) << "command " << cid << " has " << count << " outcomes";
    EXPECT_TRUE(mix.command_ids.count(cid) || cid.starts_with("checkout:o-"))
        << "an outcome of a command no one sent: '" << cid << "'";
  }

  // Nothing the example does is a dead letter (events of no order, such as
  // StockAdded, are not the checkout's).
  for (const auto& r : ReadCommitted(bootstrap, n.app + "-dlq", 0, std::chrono::seconds(10),
                                     std::chrono::seconds(1))) {
    ADD_FAILURE() << "dead letter: " << HeaderValue(r, "kcqrs.error") << " from "
                  << HeaderValue(r, "kcqrs.source.topic") << ": " << r.value.value_or("");
  }

  const auto orders = ReadStore(bootstrap, n.app, "orders", mix.valid.size());
  const auto checkouts = ReadStore(bootstrap, n.app, "checkouts", mix.valid.size());
  EXPECT_EQ(orders.size(), mix.valid.size()) << "the orders view has an order per placed order";
  for (const auto& [id, placed] : mix.valid) {
    SCOPED_TRACE("order " + id);
    auto fit = o.orders.find(id);
    if (fit == o.orders.end()) {
      ADD_FAILURE() << "no event names it";
      continue;
    }
    const OrderFacts& f = fit->second;
    EXPECT_EQ(f.placed, 1);
    // (1) Every order is CONFIRMED or CANCELLED, in the events and the view.
    EXPECT_EQ(f.confirmed + f.cancelled, 1) << "confirmed " << f.confirmed << ", cancelled "
                                            << f.cancelled;
    auto view = orders.find(id);
    if (view == orders.end()) {
      ADD_FAILURE() << "not in the orders view";
      continue;
    }
    EXPECT_EQ(view->second["status"], f.confirmed ? "CONFIRMED" : "CANCELLED")
        << view->second.dump();
    // (2) CONFIRMED iff exactly one PaymentCharged and no PaymentRefunded.
    EXPECT_EQ(f.confirmed == 1, f.charged == 1 && f.refunded == 0)
        << "charged " << f.charged << ", refunded " << f.refunded;
    EXPECT_LE(f.charged, 1) << "charged twice";
    EXPECT_LE(f.refunded, f.charged) << "refunded without a charge";
    // (3) A CANCELLED order with a PaymentCharged has exactly one PaymentRefunded.
    if (f.cancelled && f.charged) {
      EXPECT_EQ(f.refunded, 1);
    }
    // (4) An order cancelled after a StockReserved has exactly one StockReleased;
    // a confirmed one keeps its reservation.
    EXPECT_LE(f.reserved + f.reservation_failed, 1) << "reserved twice";
    if (f.cancelled && f.reserved) {
      EXPECT_EQ(f.released, 1);
    }
    if (f.confirmed) {
      EXPECT_EQ(f.released, 0);
    }
    EXPECT_LE(f.released, f.reserved) << "released without a reservation";
    if (f.confirmed) {
      EXPECT_EQ(f.charged_cents, placed.quantity * placed.price_cents) << "amount = q x price";
    }
    // The reasons follow the outcomes.
    if (f.cancelled) {
      EXPECT_EQ(view->second["reason"], f.reason);
      if (f.reason == "out_of_stock") {
        EXPECT_EQ(f.reservation_failed, 1);
      }
      if (f.reason == "payment_declined") {
        EXPECT_EQ(f.declined, 1);
      }
      if (f.reason == "customer") {
        EXPECT_TRUE(placed.customer_cancel);
      }
      EXPECT_TRUE(f.reason == "out_of_stock" || f.reason == "payment_declined" ||
                  f.reason == "timeout" || f.reason == "customer")
          << f.reason;
      ++paths.cancelled[f.reason];
    } else {
      ++paths.confirmed;
    }
    if (f.refunded) ++paths.refunded;
    if (f.refunded && f.reason == "timeout") ++paths.late_success_refunds;
    if (f.released) ++paths.released;
    // The checkout: ended, its outcome matching the order's, no deadline left.
    auto c = checkouts.find(id);
    if (c == checkouts.end()) {
      ADD_FAILURE() << "no checkout instance";
      continue;
    }
    EXPECT_EQ(c->second["status"], f.confirmed ? "completed" : "compensated")
        << c->second.dump();
    EXPECT_FALSE(c->second.contains("deadline")) << c->second.dump();
  }
  EXPECT_EQ(checkouts.size(), mix.valid.size()) << "a checkout per placed order, no other";

  // (5) No stock or balance is ever negative (checked at every event above,
  // and in the views).
  EXPECT_TRUE(o.negative.empty()) << ::testing::PrintToString(o.negative);

  // (6) available + reserved-for-unconfirmed + confirmed = added, per
  // product. Quiet, nothing is reserved for an unconfirmed order, so the
  // view's `reserved` is the confirmed quantity.
  std::map<std::string, int64_t> confirmed_quantity;
  for (const auto& [id, placed] : mix.valid) {
    if (Confirmed(o, id)) confirmed_quantity[placed.product] += placed.quantity;
  }
  const auto stock = ReadStore(bootstrap, n.app, "stock", mix.stock_added.size());
  EXPECT_EQ(stock.size(), mix.stock_added.size());
  for (const auto& [product, added] : mix.stock_added) {
    SCOPED_TRACE("product " + product);
    EXPECT_EQ(o.stock_added.count(product) ? o.stock_added.at(product) : -1, added);
    auto v = stock.find(product);
    if (v == stock.end()) {
      ADD_FAILURE() << "missing from the view";
      continue;
    }
    const int64_t available = v->second["available"], reserved = v->second["reserved"];
    EXPECT_GE(available, 0);
    EXPECT_EQ(available + confirmed_quantity[product], added) << v->second.dump();
    EXPECT_EQ(reserved, confirmed_quantity[product]) << v->second.dump();
    EXPECT_EQ(available, o.available.count(product) ? o.available.at(product) : -1) << "the view is the fold of the events";
  }
  for (const auto& [product, q] : confirmed_quantity) {
    EXPECT_TRUE(mix.stock_added.count(product)) << "confirmed without stock: " << product;
  }

  // (7) balance = funds added - charges + refunds, per customer, exactly.
  const auto wallets = ReadStoreText(bootstrap, n.app, "wallets", mix.funds_added.size());
  EXPECT_EQ(wallets.size(), mix.funds_added.size());
  const std::regex two_digits(R"("balance":\d+\.\d\d[,}])");
  for (const auto& [customer, added] : mix.funds_added) {
    SCOPED_TRACE("customer " + customer);
    auto v = wallets.find(customer);
    if (v == wallets.end()) {
      ADD_FAILURE() << "missing from the view";
      continue;
    }
    EXPECT_TRUE(std::regex_search(v->second, two_digits)) << "not whole cents: " << v->second;
    const int64_t balance = ToCents(json::parse(v->second)["balance"]);
    const int64_t charged = o.charged.count(customer) ? o.charged.at(customer) : 0;
    const int64_t refunded = o.refunded.count(customer) ? o.refunded.at(customer) : 0;
    EXPECT_EQ(o.funds_added.count(customer) ? o.funds_added.at(customer) : -1, added);
    EXPECT_EQ(balance, added - charged + refunded) << v->second;
    EXPECT_GE(balance, 0);
    int64_t confirmed_cents = 0;
    for (const auto& [id, placed] : mix.valid) {
      if (placed.customer == customer && Confirmed(o, id)) {
        confirmed_cents += placed.quantity * placed.price_cents;
      }
    }
    EXPECT_EQ(balance, added - confirmed_cents) << "only confirmed orders cost money";
  }
}

// A counter or gauge of the checkout from /metrics (-1 when absent);
// `labels` are the extra labels after process_manager, e.g. ,outcome="completed".
double Metric(const std::string& text, const std::string& name, const std::string& labels = "") {
  const std::string prefix = name + "{process_manager=\"checkout\"" + labels + "} ";
  const size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + 1 + prefix.size()));
}

// What a user sees over HTTP of the running child: every checkout instance
// under GET /stores/checkouts/keys/<id>, as its changelog has it, and (when
// the child ran the whole scenario, no kills) the checkout's metrics.
void CheckHttp(const std::string& address, const std::string& bootstrap, const ShopNames& n,
               const ShopMix& mix, const Paths& paths, bool whole_run) {
  const auto checkouts = ReadStore(bootstrap, n.app, "checkouts", mix.valid.size());
  int timed_out = 0;
  for (const auto& [id, doc] : checkouts) {
    if (doc["state"].value("reason", "") == "timeout") ++timed_out;
    HttpResult r = HttpRequest(address, "GET", "/stores/checkouts/keys/" + id);
    EXPECT_EQ(r.status, 200) << id << ": " << r.body;
    if (r.status == 200) {
      EXPECT_EQ(json::parse(r.body, nullptr, false), doc) << id << ": " << r.body;
    }
  }
  HttpResult m = HttpRequest(address, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(Metric(m.body, "kcqrs_process_manager_active"), 0) << "instances not ended";
  if (!whole_run) return;
  int cancelled = 0;
  for (const auto& [reason, count] : paths.cancelled) cancelled += count;
  EXPECT_EQ(Metric(m.body, "kcqrs_process_manager_started_total"),
            static_cast<double>(mix.valid.size()));
  EXPECT_EQ(Metric(m.body, "kcqrs_process_manager_ended_total", ",outcome=\"completed\""),
            paths.confirmed);
  EXPECT_EQ(Metric(m.body, "kcqrs_process_manager_ended_total", ",outcome=\"compensated\""),
            cancelled);
  EXPECT_EQ(Metric(m.body, "kcqrs_process_manager_deadlines_fired_total"), timed_out);
}

struct Scenario {
  const char* name;
  int64_t deadline_ms;
  int kills;
  int orders;
};

Paths RunScenario(const Scenario& s) {
  Paths paths;
  const std::string bootstrap = TestBootstrapServers();
  EXPECT_FALSE(bootstrap.empty());
  if (bootstrap.empty()) return paths;
  const ShopNames n = MakeNames(UniqueName(std::string("shop-") + s.name));
  std::filesystem::remove_all(n.state_dir);
  const std::vector<std::string> sets = Overrides(n, bootstrap, s.deadline_ms);
  const std::string log = n.state_dir + ".log";
  std::filesystem::remove(log);
  const ShopMix mix = MakeMix(n, 1313 + s.kills * 7 + static_cast<unsigned>(s.deadline_ms),
                              s.orders, 20, 30);
  const auto started = Clock::now();

  auto child = std::make_unique<KcqrsChild>(KCQRS_BINARY, kTopology, sets, log);
  TopicReader reader(bootstrap, {n.order_events, n.stock_events, n.wallet_events,
                                 n.order_rejections, n.stock_rejections, n.wallet_rejections});
  // The engine creates the topics; produce once they exist (the broker
  // creates none on its own).
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  EXPECT_TRUE(admin.ok());
  for (auto until = Clock::now() + std::chrono::seconds(60);
       admin.ok() && child->Running() && Clock::now() < until;) {
    auto listed = (*admin)->ListTopics(std::chrono::seconds(5));
    size_t found = 0;
    const std::vector<kafka::Admin::TopicInfo> topics =
        listed.ok() ? *listed : std::vector<kafka::Admin::TopicInfo>{};
    for (const auto& t : topics) {
      for (const std::string* want :
           {&n.order_commands, &n.stock_commands, &n.wallet_commands, &n.order_events,
            &n.stock_events, &n.wallet_events}) {
        if (t.name == *want) ++found;
      }
    }
    if (found == 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(child->Running()) << ReadWholeFile(log).substr(0, 20000);

  std::atomic<bool> produced{false};
  std::thread producer_thread([&] {
    auto producer = MakeProducer(bootstrap);
    ASSERT_NE(producer, nullptr);
    for (const Command& c : mix.setup) Produce(producer.get(), c.topic, c.key, c.value);
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
    // ~200 commands a second, so that checkouts overlap (and kills land
    // mid-work).
    size_t i = 0;
    for (const Command& c : mix.orders) {
      Produce(producer.get(), c.topic, c.key, c.value);
      if (++i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
    produced = true;
  });

  std::mt19937 rng(7);
  for (int k = 0; k < s.kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 1500));
    child->Kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(child->exit_status()))
        << "the child exited on its own before the kill:\n" << ReadWholeFile(log);
    child = std::make_unique<KcqrsChild>(KCQRS_BINARY, kTopology, sets, log);
  }
  producer_thread.join();
  EXPECT_TRUE(produced);

  // Quiet: every placed order final and compensated, then nothing new for
  // three seconds (a late refund, a doubled event would show up).
  Outcomes o;
  const auto until = Clock::now() + std::chrono::seconds(120);
  bool settled = false;
  while (Clock::now() < until && child->Running()) {
    reader.Poll(std::chrono::milliseconds(500));
    o = Fold(reader, n);
    if (Settled(o, mix)) {
      settled = true;
      break;
    }
  }
  EXPECT_TRUE(settled) << "not quiet after 120 s\n" << ReadWholeFile(log).substr(0, 20000);
  while (reader.Poll(std::chrono::seconds(3)) > 0) {
  }
  o = Fold(reader, n);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - started).count();

  CheckInvariants(bootstrap, n, mix, o, &paths);
  // The address the last run serves on (http.listen port 0: from its log).
  const std::string text = ReadWholeFile(log);
  std::string last;
  const std::regex listening(R"(http: listening on (127\.0\.0\.1:\d+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), listening);
       it != std::sregex_iterator(); ++it) {
    last = (*it)[1];
  }
  EXPECT_FALSE(last.empty()) << "no HTTP address in the log";
  if (!last.empty()) CheckHttp(last, bootstrap, n, mix, paths, s.kills == 0);

  child->Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(child->exit_status()) && WEXITSTATUS(child->exit_status()) == 0)
      << ReadWholeFile(log).substr(0, 20000);

  std::cout << "[" << s.name << "] deadline_ms=" << s.deadline_ms << " kills=" << s.kills
            << " orders=" << mix.valid.size() << " (+" << mix.invalid << " invalid)"
            << " confirmed=" << paths.confirmed;
  for (const auto& [reason, count] : paths.cancelled) {
    std::cout << " cancelled." << reason << "=" << count;
  }
  std::cout << " refunded=" << paths.refunded
            << " (late successes " << paths.late_success_refunds << ")"
            << " released=" << paths.released
            << " checkout_command_rejections=" << o.pm_rejections << " seconds=" << seconds
            << "\n";
  if (!::testing::Test::HasFailure()) {
    std::filesystem::remove_all(n.state_dir);
    std::filesystem::remove(log);
  }
  return paths;
}

// The default deadline (30 s) never fires while payments answer: every
// order ends confirmed, out of stock, declined or cancelled by its customer.
TEST(ShopTest, DefaultDeadlineEveryInvariantHolds) {
  Paths p = RunScenario({"default", 30000, 0, 300});
  EXPECT_GE(p.confirmed, 1);
  EXPECT_GE(p.cancelled["out_of_stock"], 1);
  EXPECT_GE(p.cancelled["payment_declined"], 1);
  EXPECT_GE(p.cancelled["customer"], 1);
  EXPECT_EQ(p.cancelled["timeout"], 0) << "a 30 s deadline fired";
  EXPECT_EQ(p.late_success_refunds, 0);
}

// A deadline of a few milliseconds fires before most payments answer: those
// checkouts release and cancel, and the charges that land afterwards are
// refunded.
TEST(ShopTest, ShortDeadlineLateSuccessesAreRefunded) {
  Paths p = RunScenario({"short", 5, 0, 300});
  EXPECT_GE(p.cancelled["timeout"], 1);
  EXPECT_GE(p.late_success_refunds, 1);
  EXPECT_GE(p.cancelled["out_of_stock"], 1);
}

// kill -9 of the engine three times while orders flow, with a deadline
// short enough to be pending at some kills (durable timers: a restart finds
// them due, or the payment first) and long enough for payments between
// kills (at 1 s, on the ASAN build, none made it).
TEST(ShopTest, KillNineRoundsEveryInvariantHolds) {
  Paths p = RunScenario({"kill9", 4000, 3, 400});
  EXPECT_GE(p.confirmed, 1);
  EXPECT_GE(p.cancelled["out_of_stock"], 1);
}

// kill -9 rounds with deadlines of 5 ms: deadlines are pending at every kill
// and fire after the restart (durable, exactly once), and the late charges
// are refunded through the kills.
TEST(ShopTest, KillNineRoundsWithShortDeadlinesEveryInvariantHolds) {
  Paths p = RunScenario({"kill9-short", 5, 3, 300});
  EXPECT_GE(p.cancelled["timeout"], 1);
  EXPECT_GE(p.late_success_refunds, 1);
}

}  // namespace
}  // namespace kcqrs
