// LintTopology: the warnings `kcqrs validate` prints (and `run` logs) about
// event types emitted and never handled, or handled and never emitted.
#include "config/topology_lint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config_loader.h"

namespace kcqrs::config {
namespace {

std::vector<std::string> Warnings(const std::string& yaml) {
  auto options = LoadEngineOptionsFromString(yaml, "t.yaml", {});
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  std::vector<std::string> out;
  if (!options.ok()) return out;
  for (const ConfigWarning& w : LintTopology(options->topology)) out.push_back(w.ToString());
  return out;
}

constexpr char kHead[] = R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
)";

// A typo on each side: the rule emits OrderCreatd, the evolve and the
// projection handle OrderCreated.
TEST(TopologyLintTest, ATypoIsNamedOnBothSidesWithItsPlace) {
  auto w = Warnings(std::string(kHead) + R"(aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      CreateOrder:
        emit:
          - type: OrderCreatd
            with: {orderId: command.orderId}
    events:
      OrderCreated:
        set: {open: "true"}
projections:
  orders:
    event_topics: [orders.events]
    store: orders
    events:
      OrderCreated:
        upsert: {orderId: event.orderId}
)");
  ASSERT_EQ(w.size(), 3u) << ::testing::PrintToString(w);
  EXPECT_EQ(w[0], "t.yaml:14:13: warning: aggregates.order.commands.CreateOrder.emit[0]: event "
                  "type 'OrderCreatd' is emitted, but neither aggregates.order.events nor a "
                  "projection or process manager of orders.events handles it (did you mean "
                  "'OrderCreated'?)");
  EXPECT_EQ(w[1], "t.yaml:18:9: warning: aggregates.order.events.OrderCreated: no command of "
                  "aggregate 'order' emits event type 'OrderCreated' (emitted: OrderCreatd) "
                  "(did you mean 'OrderCreatd'?)");
  EXPECT_EQ(w[2], "t.yaml:25:9: warning: projections.orders.events.OrderCreated: no rule emits "
                  "event type 'OrderCreated' on orders.events (emitted there: OrderCreatd) "
                  "(did you mean 'OrderCreatd'?)");
}

// An event the aggregate's state ignores is fine when a projection folds
// it, and the other way round; Lua decides count with their literals.
TEST(TopologyLintTest, HandledByEitherSideAndLuaLiteralsAreFine) {
  auto w = Warnings(std::string(kHead) + R"(aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      Note:
        emit:
          - type: Noted
      Cancel:
        lua: |
          if math.type(1) == "integer" and state.kind ~= "x" then
            return { type = 'Cancelled' }
          end
          return {{type="Cancelled"}}
    events:
      Cancelled:
        merge: {open: "false"}
projections:
  notes:
    event_topics: [orders.events]
    store: notes
    events:
      Noted:
        merge: {n: "coalesce(view.n, 0) + 1"}
)");
  EXPECT_TRUE(w.empty()) << ::testing::PrintToString(w);
}

// Where the types on a topic cannot be known, nothing is said about them:
// a Lua decide that builds its type, a topic a transform writes or reads,
// events from outside the topology.
TEST(TopologyLintTest, UnknowableTypesAreNotJudged) {
  auto w = Warnings(std::string(kHead) + R"(aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      Any:
        lua: |
          return {{ type = command.kind }}
    events:
      Whatever:
        merge: {x: "1"}
  audit:
    command_topics: [audit.commands]
    event_topic: audit.events
    rejection_topic: audit.rejections
    store: audit-aggregates
    commands:
      Log:
        emit:
          - type: Logged
transforms:
  copy:
    from: [audit.events]
    to: audit.copy
projections:
  outside:
    event_topics: [payments.events]
    store: outside
    events:
      Paid:
        merge: {paid: "true"}
  copies:
    event_topics: [audit.copy]
    store: copies
    events:
      Logged:
        merge: {n: "1"}
)");
  EXPECT_TRUE(w.empty()) << ::testing::PrintToString(w);
}

// An event only a process manager reacts to is handled; a type a process
// manager waits for and nothing emits is named like a projection's, and so
// are cases that cannot run and deadlines that make no sense.
TEST(TopologyLintTest, ProcessManagersHandleEventsAndAreCheckedLikeProjections) {
  auto w = Warnings(std::string(kHead) + R"(aggregates:
  stock:
    command_topics: [stock.commands]
    id_field: product
    event_topic: stock.events
    rejection_topic: stock.rejections
    store: stock
    commands:
      ReserveStock:
        emit:
          - type: StockReserved
            with: {orderId: command.orderId}
process_managers:
  checkout:
    event_topics: [stock.events]
    id: event.orderId
    store: checkouts
    on:
      StockReserved:
        - merge: {status: "'CHARGING'"}
          deadline: start
        - when: "true"
          end: completed
      StockReservd:
        end: compensated
  quiet:
    event_topics: [stock.events]
    id: event.orderId
    store: quiet
    on:
      StockReserved:
        send: [{topic: side.events, key: event.orderId, type: Noted}]
    on_deadline:
      end: compensated
projections:
  side:
    event_topics: [side.events]
    store: side
    events:
      Noted:
        merge: {n: "1"}
)");
  ASSERT_EQ(w.size(), 4u) << ::testing::PrintToString(w);
  EXPECT_EQ(w[0], "t.yaml:18:3: warning: process_managers.checkout: a reaction starts a "
                  "deadline, but there is no on_deadline: when it fires, nothing happens");
  EXPECT_EQ(w[1], "t.yaml:26:11: warning: process_managers.checkout.on.StockReserved[1]: "
                  "never runs: process_managers.checkout.on.StockReserved[0] has no 'when', "
                  "so it takes every event");
  EXPECT_EQ(w[2], "t.yaml:29:9: warning: process_managers.checkout.on.StockReservd: no rule "
                  "emits event type 'StockReservd' on stock.events (emitted there: "
                  "StockReserved) (did you mean 'StockReserved'?)");
  EXPECT_EQ(w[3], "t.yaml:38:7: warning: process_managers.quiet.on_deadline: never runs: no "
                  "reaction starts a deadline (deadline: start)");
}

// The examples are what users copy: they must be warning-free (the
// checkout's process manager handles what only it reads).
TEST(TopologyLintTest, TheExamplesHaveNoWarnings) {
  for (const std::string example :
       {"examples/orders/topology.yaml", "examples/bank/topology.yaml",
        "examples/shop/topology.yaml", "tests/config/checkout_topology.yaml"}) {
    const std::string path = std::string(KCQRS_SOURCE_DIR) + "/" + example;
    auto options = LoadEngineOptionsFromFile(path, {});
    ASSERT_TRUE(options.ok()) << options.status().ToString();
    ASSERT_FALSE(options->topology.aggregates.empty()) << path;
    for (const ConfigWarning& w : LintTopology(options->topology)) {
      ADD_FAILURE() << w.ToString();
    }
  }
}

}  // namespace
}  // namespace kcqrs::config
