// Reading `process_managers:` (docs/topology.md, "Process managers") and
// `processors.<name>.timers`: every key into the spec, with its place, and
// every mistake refused with the key path and the place in the file.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config_loader.h"

namespace kcqrs::config {
namespace {

constexpr char kHead[] = R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
)";

std::vector<std::string> Errors(const std::string& yaml, const LoadOptions& o = {}) {
  std::vector<ConfigError> errors;
  auto r = LoadEngineOptionsFromString(yaml, "t.yaml", o, &errors);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.ToString());
  EXPECT_EQ(r.ok(), errors.empty());
  return out;
}

// Line 5 is `process_managers:`; the checkout starts on line 6.
constexpr char kCheckout[] = R"(process_managers:
  checkout:
    event_topics: [shop.orders.events, shop.inventory.events, shop.payments.events]
    id: event.orderId
    store: checkouts
    deadline_ms: 30000
    time: stream_time
    on:
      OrderPlaced:
        when: state == null
        set:
          orderId: event.orderId
          status: "'RESERVING'"
        send:
          - to: stock
            type: ReserveStock
            with:
              product: event.product
              quantity: event.quantity
      PaymentCharged:
        - when: state.status == 'CHARGING'
          merge: {status: "'CONFIRMED'"}
          send: [{to: order, type: ConfirmOrder, with: {orderId: state.orderId}}]
          deadline: cancel
          end: completed
        - when: state.status == 'CANCELLED'
          send: [{topic: shop.refunds, key: state.customerId, type: Refund}]
      StockReserved:
        merge: {status: "'CHARGING'"}
        deadline: start
        deadline_ms: "state.quantity * 1000"
      Audited:
        lua: |
          return { state = state }
    on_deadline:
      when: state.status == 'CHARGING'
      merge: {status: "'CANCELLED'"}
      end: compensated
)";

std::string Pos(const SourcePosition& p) { return p.ToString(); }

TEST(ProcessManagersTest, ACheckoutIsReadKeyForKeyWithPlaces) {
  auto r = LoadEngineOptionsFromString(std::string(kHead) + kCheckout, "t.yaml", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->topology.process_managers.size(), 1u);
  const ProcessManagerSpec& pm = r->topology.process_managers[0];
  EXPECT_EQ(pm.name, "checkout");
  EXPECT_EQ(Pos(pm.where), "t.yaml:6:3");
  EXPECT_EQ(pm.event_topics, (std::vector<std::string>{"shop.orders.events",
                                                        "shop.inventory.events",
                                                        "shop.payments.events"}));
  EXPECT_EQ(pm.id.text, "event.orderId");
  EXPECT_EQ(Pos(pm.id.where), "t.yaml:8:9");
  EXPECT_EQ(pm.store, "checkouts");
  EXPECT_EQ(pm.type_field, "type");
  EXPECT_EQ(pm.deadline_ms, 30000);
  EXPECT_EQ(pm.time, ProcessManagerSpec::Time::kStreamTime);
  ASSERT_EQ(pm.events.size(), 4u);

  // A map is one reaction.
  EXPECT_EQ(pm.events[0].first, "OrderPlaced");
  ASSERT_EQ(pm.events[0].second.size(), 1u);
  const ReactionSpec& placed = pm.events[0].second[0];
  EXPECT_EQ(Pos(placed.where), "t.yaml:14:9");
  ASSERT_TRUE(placed.when);
  EXPECT_EQ(placed.when->text, "state == null");
  EXPECT_EQ(Pos(placed.when->where), "t.yaml:14:15");
  ASSERT_TRUE(placed.state);
  EXPECT_EQ(placed.state->kind, UpdateSpec::Kind::kSet);
  ASSERT_EQ(placed.state->fields.size(), 2u);
  EXPECT_EQ(placed.state->fields[1].first, "status");
  EXPECT_EQ(placed.state->fields[1].second.text, "'RESERVING'");
  EXPECT_EQ(Pos(placed.state->fields[1].second.where), "t.yaml:17:20");  // inside the quotes
  ASSERT_EQ(placed.send.size(), 1u);
  EXPECT_EQ(placed.send[0].aggregate, "stock");
  EXPECT_EQ(placed.send[0].topic, "");
  EXPECT_FALSE(placed.send[0].key);
  EXPECT_EQ(placed.send[0].type, "ReserveStock");
  EXPECT_EQ(Pos(placed.send[0].where), "t.yaml:19:13");
  ASSERT_EQ(placed.send[0].fields.size(), 2u);
  EXPECT_EQ(placed.send[0].fields[0].first, "product");
  EXPECT_EQ(placed.send[0].fields[0].second.text, "event.product");
  EXPECT_EQ(Pos(placed.send[0].fields[1].second.where), "t.yaml:23:25");
  EXPECT_EQ(placed.deadline, ReactionSpec::Deadline::kKeep);
  EXPECT_EQ(placed.end, ReactionSpec::End::kNo);
  EXPECT_FALSE(placed.lua);

  // A list is cases, in order.
  EXPECT_EQ(pm.events[1].first, "PaymentCharged");
  ASSERT_EQ(pm.events[1].second.size(), 2u);
  const ReactionSpec& charged = pm.events[1].second[0];
  EXPECT_EQ(charged.when->text, "state.status == 'CHARGING'");
  ASSERT_TRUE(charged.state);
  EXPECT_EQ(charged.state->kind, UpdateSpec::Kind::kMerge);
  EXPECT_EQ(charged.send.at(0).aggregate, "order");
  EXPECT_EQ(charged.send.at(0).fields.at(0).second.text, "state.orderId");
  EXPECT_EQ(charged.deadline, ReactionSpec::Deadline::kCancel);
  EXPECT_EQ(charged.end, ReactionSpec::End::kCompleted);
  const ReactionSpec& late = pm.events[1].second[1];
  EXPECT_EQ(Pos(late.where), "t.yaml:30:11");
  EXPECT_FALSE(late.state);  // no set or merge: unchanged
  ASSERT_EQ(late.send.size(), 1u);
  EXPECT_EQ(late.send[0].aggregate, "");
  EXPECT_EQ(late.send[0].topic, "shop.refunds");
  ASSERT_TRUE(late.send[0].key);
  EXPECT_EQ(late.send[0].key->text, "state.customerId");
  EXPECT_EQ(late.send[0].type, "Refund");
  EXPECT_TRUE(late.send[0].fields.empty());

  const ReactionSpec& reserved = pm.events[2].second.at(0);
  EXPECT_EQ(reserved.deadline, ReactionSpec::Deadline::kStart);
  ASSERT_TRUE(reserved.deadline_ms);
  EXPECT_EQ(reserved.deadline_ms->text, "state.quantity * 1000");
  EXPECT_EQ(Pos(reserved.deadline_ms->where), "t.yaml:35:23");

  // A Lua reaction is only its snippet; its place is its first line of code.
  const ReactionSpec& audited = pm.events[3].second.at(0);
  ASSERT_TRUE(audited.lua);
  EXPECT_EQ(audited.lua->code, "return { state = state }\n");
  EXPECT_EQ(Pos(audited.lua->where), "t.yaml:38:11");
  EXPECT_FALSE(audited.when);
  EXPECT_FALSE(audited.state);
  EXPECT_TRUE(audited.send.empty());

  ASSERT_EQ(pm.on_deadline.size(), 1u);
  EXPECT_EQ(pm.on_deadline[0].when->text, "state.status == 'CHARGING'");
  EXPECT_EQ(pm.on_deadline[0].end, ReactionSpec::End::kCompensated);
  EXPECT_EQ(Pos(pm.on_deadline[0].where), "t.yaml:40:7");
}

TEST(ProcessManagersTest, DefaultsAreTheDocumentedOnes) {
  auto r = LoadEngineOptionsFromString(std::string(kHead) + R"(process_managers:
  p:
    event_topics: a.events
    id: event.id
    store: ps
    on: {A: {}}
)", "t.yaml", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ProcessManagerSpec& pm = r->topology.process_managers.at(0);
  EXPECT_EQ(pm.event_topics, std::vector<std::string>{"a.events"});
  EXPECT_EQ(pm.type_field, "type");
  EXPECT_EQ(pm.deadline_ms, 30000);
  EXPECT_EQ(pm.ended_retention_ms, int64_t{604800000});
  EXPECT_EQ(pm.time, ProcessManagerSpec::Time::kWallClock);
  ASSERT_EQ(pm.events.size(), 1u);
  ASSERT_EQ(pm.events[0].second.size(), 1u);  // an empty reaction: the event is taken, nothing done
  EXPECT_TRUE(pm.on_deadline.empty());
}

TEST(ProcessManagersTest, DeadlineCanBeSetFromTheCommandLine) {
  LoadOptions o;
  o.overrides = {"process_managers.checkout.deadline_ms=5"};
  auto r = LoadEngineOptionsFromString(std::string(kHead) + kCheckout, "t.yaml", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->topology.process_managers.at(0).deadline_ms, 5);

  o.overrides = {"process_managers.checkout.deadline_ms=0"};
  auto errors = Errors(std::string(kHead) + kCheckout, o);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "--set process_managers.checkout.deadline_ms=0: "
                       "process_managers.checkout.deadline_ms: expected 1 to 31536000000 "
                       "(milliseconds), found 0");

  o.overrides = {"process_managers.checkout.ended_retention_ms=0"};
  r = LoadEngineOptionsFromString(std::string(kHead) + kCheckout, "t.yaml", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->topology.process_managers.at(0).ended_retention_ms, 0);
  o.overrides = {"process_managers.checkout.ended_retention_ms=-1"};
  errors = Errors(std::string(kHead) + kCheckout, o);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "--set process_managers.checkout.ended_retention_ms=-1: "
                       "process_managers.checkout.ended_retention_ms: expected 0 to 31536000000 "
                       "(milliseconds), found -1");
}

TEST(ProcessManagersTest, EnvironmentValuesWorkInTheDeadline) {
  LoadOptions o;
  o.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "CHECKOUT_DEADLINE_MS") return "250";
    return std::nullopt;
  };
  auto r = LoadEngineOptionsFromString(std::string(kHead) + R"(process_managers:
  p:
    event_topics: a.events
    id: event.id
    store: ps
    deadline_ms: ${CHECKOUT_DEADLINE_MS:-30000}
    on: {A: {deadline: start}}
)", "t.yaml", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->topology.process_managers.at(0).deadline_ms, 250);
}

// One process manager with a line per mistake; every one is reported, each
// with its key path and place, in file order.
TEST(ProcessManagersTest, EveryMistakeIsReportedWithItsPathAndPlace) {
  auto errors = Errors(std::string(kHead) + R"(process_managers:
  checkout:
    event_topics: [shop.orders.events]
    id: event.orderId
    store: checkouts
    deadline_ms: abc
    time: event_time
    on:
      OrderPlaced:
        snd: []
      A:
        - send: [{to: stock, topic: stock.commands, type: X}]
      B:
        - when: "true"
        - send:
            - {topic: stock.commands, type: X}
            - {to: stock, with: {a: b}}
            - {to: stock, type: X, wiht: {a: b}}
      C:
        when: state == null
        lua: return nil
      D:
        deadline: later
        end: done
      E:
        deadline: cancel
        deadline_ms: "10"
      F:
        delete: true
      G:
        set: {a: "1"}
        merge: {b: "2"}
      H: []
      I: start
    on_deadline:
      lau: return nil
)");
  std::vector<std::string> expected = {
      "t.yaml:10:18: process_managers.checkout.deadline_ms: expected an integer "
      "(milliseconds), found 'abc'",
      "t.yaml:11:11: process_managers.checkout.time: expected wall_clock or stream_time, "
      "found 'event_time'",
      "t.yaml:14:9: unknown key 'snd' in process_managers.checkout.on.OrderPlaced "
      "(did you mean 'send'?)",
      "t.yaml:16:37: process_managers.checkout.on.A[0].send[0]: 'to' (an aggregate) and "
      "'topic' exclude each other; use one",
      "t.yaml:20:23: process_managers.checkout.on.B[1].send[0]: 'topic' needs 'key' (an "
      "expression: the command's record key)",
      "t.yaml:21:15: process_managers.checkout.on.B[1].send[1]: the key 'type' is required "
      "(the command type)",
      "t.yaml:22:36: unknown key 'wiht' in process_managers.checkout.on.B[1].send[2] "
      "(did you mean 'with'?)",
      "t.yaml:25:14: process_managers.checkout.on.C: 'lua' replaces the whole reaction (it "
      "returns the state, the commands to send, the deadline and the end); remove 'when' or "
      "the 'lua'",
      "t.yaml:27:19: process_managers.checkout.on.D.deadline: expected start or cancel, "
      "found 'later'",
      "t.yaml:28:14: process_managers.checkout.on.D.end: expected completed or compensated, "
      "found 'done'",
      "t.yaml:31:22: process_managers.checkout.on.E.deadline_ms: only a reaction that "
      "starts a deadline (deadline: start) says how long it is",
      "t.yaml:33:17: process_managers.checkout.on.F.delete: an instance is never deleted; a "
      "reaction ends it (end: completed or compensated) and its state is kept, so that late "
      "events still find it",
      "t.yaml:36:16: process_managers.checkout.on.G: expected at most one of set, merge; "
      "found both",
      "t.yaml:37:10: process_managers.checkout.on.H: expected at least one reaction; leave "
      "the event type out to ignore it",
      "t.yaml:38:10: process_managers.checkout.on.I: expected a reaction (a map) or a list "
      "of them, found a scalar",
      "t.yaml:40:7: unknown key 'lau' in process_managers.checkout.on_deadline (did you mean "
      "'lua'?)",
  };
  EXPECT_EQ(errors, expected);
}

TEST(ProcessManagersTest, MissingKeysBadNamesAndRangesAreRefused) {
  auto errors = Errors(std::string(kHead) + R"(process_managers:
  checkout:
    deadline_ms: 0
    on:
      A:
        send: [{type: X}]
        lua: return nil
      B:
        send: [{to: "stock!", type: X}]
  "bad name": {}
  late:
    event_topics: e
    id: event.id
    store: s
    deadline_ms: 99999999999999999999
    on: {}
)");
  std::vector<std::string> expected = {
      "t.yaml:7:5: process_managers.checkout: the key 'event_topics' is required",
      "t.yaml:7:5: process_managers.checkout: the key 'id' is required",
      "t.yaml:7:5: process_managers.checkout: the key 'store' is required",
      "t.yaml:7:18: process_managers.checkout.deadline_ms: expected 1 to 31536000000 "
      "(milliseconds), found 0",
      "t.yaml:11:14: process_managers.checkout.on.A: 'lua' replaces the whole reaction (it "
      "returns the state, the commands to send, the deadline and the end); remove 'send' or "
      "the 'lua'",
      "t.yaml:13:21: process_managers.checkout.on.B.send[0].to: expected a name of letters, "
      "digits, '.', '_' or '-', found 'stock!'",
      "t.yaml:14:3: process_managers: 'bad name' is not a valid name (letters, digits, '.', "
      "'_', '-')",
      "t.yaml:19:18: process_managers.late.deadline_ms: expected 1 to 31536000000 "
      "(milliseconds), found 99999999999999999999",
      "t.yaml:20:9: process_managers.late.on: expected at least one event type",
  };
  EXPECT_EQ(errors, expected);
}

TEST(ProcessManagersTest, ASendNamesItsTarget) {
  auto errors = Errors(std::string(kHead) + R"(process_managers:
  p:
    event_topics: e
    id: event.id
    store: s
    on:
      A:
        send:
          - {type: X, with: {a: event.a}}
          - {to: stock, type: ""}
)");
  std::vector<std::string> expected = {
      "t.yaml:13:13: process_managers.p.on.A.send[0]: expected 'to' (the aggregate the "
      "command is for), or 'topic' and 'key'",
      "t.yaml:14:31: process_managers.p.on.A.send[1].type: expected a command type, found ''",
  };
  EXPECT_EQ(errors, expected);
}

TEST(ProcessManagersTest, ANameUsedTwiceIsRefused) {
  auto errors = Errors(std::string(kHead) + R"(process_managers:
  p: {event_topics: e, id: event.id, store: s, on: {A: {}}}
  p: {event_topics: f, id: event.id, store: t, on: {A: {}}}
)");
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:7:3: process_managers: 'p' is defined twice");
}

// The checkout of tests/config/checkout_topology.yaml (which the schema test
// also reads): the deadline comes from the environment, as the shop's does.
TEST(ProcessManagersTest, TheCheckoutFixtureReadsWithItsDeadlineFromTheEnvironment) {
  LoadOptions o;
  o.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "CHECKOUT_DEADLINE_MS") return "20";
    return std::nullopt;
  };
  auto r = LoadEngineOptionsFromFile(
      std::string(KCQRS_SOURCE_DIR) + "/tests/config/checkout_topology.yaml", o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->topology.process_managers.size(), 1u);
  const ProcessManagerSpec& pm = r->topology.process_managers[0];
  EXPECT_EQ(pm.deadline_ms, 20);
  std::vector<std::string> types;
  for (const auto& [type, reactions] : pm.events) types.push_back(type);
  EXPECT_EQ(types, (std::vector<std::string>{"OrderPlaced", "StockReserved",
                                             "StockReservationFailed", "PaymentCharged",
                                             "PaymentDeclined"}));
  ASSERT_EQ(pm.on_deadline.size(), 1u);
  ASSERT_EQ(pm.on_deadline[0].send.size(), 2u);
  EXPECT_EQ(pm.on_deadline[0].send[0].aggregate, "stock");
  EXPECT_EQ(pm.on_deadline[0].send[0].type, "ReleaseStock");
  EXPECT_EQ(pm.on_deadline[0].send[1].aggregate, "order");
  EXPECT_EQ(pm.on_deadline[0].send[1].fields.at(1).second.text, "'timeout'");
}

TEST(ProcessManagersTest, ProcessorsDeclareTheirTimersClock) {
  auto r = LoadEngineOptionsFromString(std::string(kHead) + R"(processors:
  plain: {processor: x, topics: a}
  wall: {processor: x, topics: a, timers: wall_clock}
  stream: {processor: x, topics: a, timers: stream_time}
)", "t.yaml", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->topology.processors.size(), 3u);
  EXPECT_EQ(r->topology.processors[0].timers, CustomProcessorSpec::Timers::kNone);
  EXPECT_EQ(r->topology.processors[1].timers, CustomProcessorSpec::Timers::kWallClock);
  EXPECT_EQ(r->topology.processors[2].timers, CustomProcessorSpec::Timers::kStreamTime);

  auto errors = Errors(std::string(kHead) + R"(processors:
  p: {processor: x, topics: a, timers: yes}
  q: {processor: x, topics: a, timer: wall_clock}
)");
  std::vector<std::string> expected = {
      "t.yaml:6:40: processors.p.timers: expected wall_clock or stream_time, found 'yes'",
      "t.yaml:7:32: unknown key 'timer' in processors.q (did you mean 'timers'?)",
  };
  EXPECT_EQ(errors, expected);
}

}  // namespace
}  // namespace kcqrs::config
