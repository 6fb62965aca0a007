// Process managers and durable timers, run by the TopologyTestDriver: a
// small two-aggregate saga (a reservation that must be paid before its
// deadline) and a C++ processor with timers, as an embedder writes it.
// What a user would see: the commands sent and their ids, the instance
// documents, deadlines firing exactly when the clock passes them, once.
#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "json/document.h"
#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using testing::TopologyTestDriver;

// A seat is held for a booking; the payment must come within the deadline
// or the hold is released. A payment after that is refunded.
constexpr char kBooking[] = R"(application:
  id: booking
kafka:
  bootstrap_servers: embedded
aggregates:
  seat:
    command_topics: [seats.commands]
    id_field: seat
    event_topic: seats.events
    rejection_topic: seats.rejections
    store: seat-aggregates
    commands:
      Hold:
        require:
          - {that: state == null || state.holder == null, code: taken}
        emit:
          - {type: Held, with: {seat: command.seat, booking: command.booking}}
      Release:
        require:
          - {that: state != null && state.holder == command.booking, code: not_held}
        emit:
          - {type: Released, with: {seat: command.seat, booking: command.booking}}
    events:
      Held: {set: {holder: event.booking}}
      Released: {set: {holder: "null"}}
  payment:
    command_topics: [payments.commands]
    id_field: booking
    event_topic: payments.events
    rejection_topic: payments.rejections
    store: payment-aggregates
    commands:
      Refund:
        emit:
          - {type: Refunded, with: {booking: command.booking}}
    events:
      Refunded: {set: {refunded: true}}
process_managers:
  booking:
    event_topics: [bookings, seats.events, seats.rejections, payments.events]
    id: event.booking
    store: bookings
    deadline_ms: 1000
    on:
      Requested:
        when: state == null
        set: {seat: event.seat, status: "'HOLDING'"}
        send:
          - {to: seat, type: Hold, with: {seat: state.seat, booking: meta.key}}
      Held:
        when: state.status == 'HOLDING'
        merge: {status: "'AWAITING_PAYMENT'"}
        deadline: start
      Rejected:
        merge: {status: "'FAILED'", code: event.code}
        end: compensated
      Paid:
        - when: state.status == 'AWAITING_PAYMENT'
          merge: {status: "'PAID'"}
          deadline: cancel
          end: completed
        - when: state.status == 'EXPIRED'
          send:
            - {to: payment, type: Refund, with: {booking: meta.key}}
    on_deadline:
      merge: {status: "'EXPIRED'"}
      send:
        - {to: seat, type: Release, with: {seat: state.seat, booking: meta.key}}
      end: compensated
)";

EngineOptions Load(const std::string& yaml, std::vector<std::string> overrides = {}) {
  config::LoadOptions load;
  load.overrides = std::move(overrides);
  auto options = config::LoadEngineOptionsFromString(yaml, "booking.yaml", load);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return options.ok() ? *options : EngineOptions{};
}

std::string HeaderOf(const Record& r, const std::string& name) {
  const Header* h = r.FindHeader(name);
  return h && h->value ? *h->value : "<none>";
}

class BookingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto driver = TopologyTestDriver::Create(Load(kBooking));
    ASSERT_TRUE(driver.ok()) << driver.status().ToString();
    driver_ = std::move(driver).value();
  }

  void TearDown() override {
    if (!driver_) return;
    for (const Record& r : driver_->ReadOutput("booking-dlq")) {
      ADD_FAILURE() << "unexpected dead letter: " << HeaderOf(r, "kcqrs.error");
    }
  }

  void Pipe(const std::string& topic, const std::string& key, const json& value,
            std::vector<Header> headers = {}) {
    Status s = driver_->PipeInput(topic, key, value.dump(), 0, std::move(headers));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  json Instance(const std::string& id) {
    auto store = driver_->GetStore("bookings");
    EXPECT_NE(store, nullptr);
    auto v = store->Get(id);
    EXPECT_TRUE(v.ok());
    return v.ok() && v->has_value() ? json::parse(**v) : json();
  }

  std::vector<json> Values(const std::string& topic) {
    std::vector<json> out;
    for (const Record& r : driver_->ReadOutput(topic)) out.push_back(json::parse(*r.value));
    return out;
  }

  std::unique_ptr<TopologyTestDriver> driver_;
};

TEST_F(BookingTest, ARequestSendsAHoldAndTheHoldStartsTheDeadline) {
  Pipe("bookings", "b-1", {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}});
  std::vector<Record> holds = driver_->ReadOutput("seats.commands");
  ASSERT_EQ(holds.size(), 1u);
  // Keyed by the seat aggregate's id, with the engine's command id and the
  // headers that bring the answer back to this instance.
  EXPECT_EQ(*holds[0].key, "12A");
  json hold = json::parse(*holds[0].value);
  EXPECT_EQ(hold["type"], "Hold");
  EXPECT_EQ(hold["booking"], "b-1");
  EXPECT_EQ(hold["commandId"], "booking:b-1:bookings/0/0:0");
  EXPECT_EQ(HeaderOf(holds[0], "kcqrs.process"), "booking");
  EXPECT_EQ(HeaderOf(holds[0], "kcqrs.process.id"), "b-1");

  // The seat aggregate decided it (the driver runs everything that follows).
  std::vector<json> events = Values("seats.events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "Held");
  json b = Instance("b-1");
  EXPECT_EQ(b["status"], "active");
  EXPECT_EQ(b["state"]["status"], "AWAITING_PAYMENT");
  EXPECT_EQ(b["deadline"]["due"], 1000) << b.dump();  // the driver's wall clock starts at 0
  EXPECT_EQ(b["events"], 2);
}

TEST_F(BookingTest, TheDeadlineFiresOnceWhenTheClockPassesItAndCompensates) {
  Pipe("bookings", "b-1", {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}});
  driver_->ReadOutput("seats.commands");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(999).ok());
  EXPECT_TRUE(driver_->ReadOutput("seats.commands").empty()) << "fired before it was due";
  ASSERT_TRUE(driver_->AdvanceWallClockTime(1).ok());
  std::vector<Record> release = driver_->ReadOutput("seats.commands");
  ASSERT_EQ(release.size(), 1u);
  json r = json::parse(*release[0].value);
  EXPECT_EQ(r["type"], "Release");
  EXPECT_EQ(r["commandId"], "booking:b-1:deadline/1:0");
  std::vector<json> seat = Values("seats.events");
  ASSERT_EQ(seat.size(), 2u);
  EXPECT_EQ(seat[1]["type"], "Released");
  json b = Instance("b-1");
  EXPECT_EQ(b["status"], "compensated");
  EXPECT_EQ(b["state"]["status"], "EXPIRED");
  EXPECT_FALSE(b.contains("deadline")) << b.dump();
  // Once: later time does not fire it again.
  ASSERT_TRUE(driver_->AdvanceWallClockTime(60000).ok());
  EXPECT_TRUE(driver_->ReadOutput("seats.commands").empty());
  // A payment after expiry is refunded (a late success).
  Pipe("payments.events", "b-1", {{"type", "Paid"}, {"booking", "b-1"}});
  std::vector<json> refunds = Values("payments.commands");
  ASSERT_EQ(refunds.size(), 1u);
  EXPECT_EQ(refunds[0]["type"], "Refund");
}

TEST_F(BookingTest, APaymentInTimeCancelsTheDeadline) {
  Pipe("bookings", "b-1", {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}});
  driver_->ReadOutput("seats.commands");
  ASSERT_TRUE(driver_->AdvanceWallClockTime(500).ok());
  Pipe("payments.events", "b-1", {{"type", "Paid"}, {"booking", "b-1"}});
  json b = Instance("b-1");
  EXPECT_EQ(b["status"], "completed");
  EXPECT_FALSE(b.contains("deadline"));
  ASSERT_TRUE(driver_->AdvanceWallClockTime(10000).ok());
  EXPECT_TRUE(driver_->ReadOutput("seats.commands").empty()) << "a cancelled deadline fired";
  EXPECT_TRUE(driver_->ReadOutput("payments.commands").empty());
}

TEST_F(BookingTest, AnEndedInstanceIsKeptForItsRetentionThenDeleted) {
  Pipe("bookings", "b-1", {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}});
  Pipe("payments.events", "b-1", {{"type", "Paid"}, {"booking", "b-1"}});
  json b = Instance("b-1");
  ASSERT_EQ(b["status"], "completed");
  const int64_t week = int64_t{7} * 24 * 3600 * 1000;
  EXPECT_EQ(b["expires"], week) << b.dump();  // the driver's clock is still at 0
  ASSERT_TRUE(driver_->AdvanceWallClockTime(week - 1).ok());
  EXPECT_FALSE(Instance("b-1").is_null()) << "deleted before its retention passed";
  ASSERT_TRUE(driver_->AdvanceWallClockTime(1).ok());
  EXPECT_TRUE(Instance("b-1").is_null()) << Instance("b-1").dump();
  // A late event for a deleted instance starts nothing: no case holds.
  Pipe("payments.events", "b-1", {{"type", "Paid"}, {"booking", "b-1"}});
  EXPECT_TRUE(Instance("b-1").is_null());
  EXPECT_TRUE(driver_->ReadOutput("payments.commands").empty());
}

TEST(BookingRetentionTest, ZeroKeepsEndedInstancesForEver) {
  auto driver = TopologyTestDriver::Create(
      Load(kBooking, {"process_managers.booking.ended_retention_ms=0"}));
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto& d = *driver;
  ASSERT_TRUE(d->PipeInput("bookings", "b-1",
                           json{{"type", "Requested"}, {"booking", "b-1"}, {"seat", "1"}}.dump())
                  .ok());
  ASSERT_TRUE(
      d->PipeInput("payments.events", "b-1", json{{"type", "Paid"}, {"booking", "b-1"}}.dump())
          .ok());
  ASSERT_TRUE(d->AdvanceWallClockTime(int64_t{400} * 24 * 3600 * 1000).ok());
  auto v = d->GetStore("bookings")->Get("b-1");
  ASSERT_TRUE(v.ok() && v->has_value());
  json b = json::parse(**v);
  EXPECT_EQ(b["status"], "completed");
  EXPECT_FALSE(b.contains("expires"));
  EXPECT_FALSE(d->GetStore("booking-timers")->Range("", "")->Valid()) << "a timer was left";
}

TEST_F(BookingTest, ARejectionOfACommandItSentFindsTheInstanceByItsHeaders) {
  Pipe("bookings", "b-1", {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}});
  // A second booking for the same seat: the seat refuses, and the
  // rejection (which has no booking field) still reaches b-2.
  Pipe("bookings", "b-2", {{"type", "Requested"}, {"booking", "b-2"}, {"seat", "12A"}});
  std::vector<Record> rejections = driver_->ReadOutput("seats.rejections");
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(HeaderOf(rejections[0], "kcqrs.process.id"), "b-2");
  json b2 = Instance("b-2");
  EXPECT_EQ(b2["status"], "compensated");
  EXPECT_EQ(b2["state"]["code"], "taken");
  EXPECT_EQ(Instance("b-1")["status"], "active");
}

TEST_F(BookingTest, AnEventReadTwiceSendsTheSameCommandIdsSoTheAggregateActsOnce) {
  // The same Held event twice (a rewind after a crash under at-least-once,
  // or a producer retry): the process manager's second reaction is not
  // taken (the state moved on), and a command it would resend carries the
  // same id. Here: the same Requested event from the same place twice.
  json requested = {{"type", "Requested"}, {"booking", "b-1"}, {"seat", "12A"}};
  std::vector<Header> place = {{"kcqrs.source.topic", "bookings"},
                               {"kcqrs.source.partition", "0"},
                               {"kcqrs.source.offset", "7"}};
  Pipe("bookings", "b-1", requested, place);
  std::vector<Record> first = driver_->ReadOutput("seats.commands");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(json::parse(*first[0].value)["commandId"], "booking:b-1:bookings/0/7:0");
  // The command itself arriving twice at the aggregate is decided once.
  ASSERT_TRUE(driver_->PipeInput("seats.commands", *first[0].key, *first[0].value, 0,
                                 first[0].headers)
                  .ok());
  EXPECT_EQ(Values("seats.events").size(), 1u) << "the aggregate acted twice";
  EXPECT_EQ(Values("seats.rejections").size(), 0u);
}

TEST_F(BookingTest, AnEventWithoutTheIdIsADeadLetterNamingTheExpression) {
  Pipe("bookings", "x", {{"type", "Requested"}, {"seat", "12A"}});
  std::vector<Record> dead = driver_->ReadOutput("booking-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(HeaderOf(dead[0], "kcqrs.error").find("process_managers.booking.id: 'event.booking' is null"),
            std::string::npos)
      << HeaderOf(dead[0], "kcqrs.error");
}

TEST(ProcessManagerCompileTest, MistakesAreNamedWithTheirPlace) {
  std::string yaml = kBooking;
  yaml.replace(yaml.find("{to: payment, type: Refund"), 26, "{to: payment, type: Refnd");
  auto driver = TopologyTestDriver::Create(Load(yaml));
  ASSERT_FALSE(driver.ok());
  EXPECT_NE(driver.status().message().find(
                "process_managers.booking.on.Paid[1].send[0].type: aggregate 'payment' has no "
                "command 'Refnd' (its commands: Refund)"),
            std::string::npos)
      << driver.status().ToString();
}

// An embedder's processor with durable timers: it sets a timer per key,
// and says so on a topic when the timer fires.
class ReminderProcessor : public Processor {
 public:
  Status Process(const Record& r, ProcessorContext& ctx) override {
    if (r.value == "cancel") return ctx.CancelTimer(*r.key);
    return ctx.SetTimer(*r.key, ctx.TimerClockMs() + std::stoll(*r.value));
  }
  Status OnTimer(std::string_view key, int64_t due_ms, ProcessorContext& ctx) override {
    if (key == "boom") return Status::InvalidArgument("cannot remind boom");
    return ctx.Send("reminders.due", std::string(key), std::to_string(due_ms));
  }
};

class TimersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    (void)RegisterProcessor("reminders", [](const std::map<std::string, std::string>&) {
      return std::make_unique<ReminderProcessor>();
    });
  }

  // `clock` empty: a processor that declares no timers.
  std::unique_ptr<TopologyTestDriver> Driver(const std::string& clock) {
    auto driver = TopologyTestDriver::Create(Load(R"(application:
  id: remind
kafka:
  bootstrap_servers: embedded
processors:
  reminders:
    processor: reminders
    topics: [reminders.set]
    outputs: [reminders.due]
)" + (clock.empty() ? std::string() : "    timers: " + clock + "\n")));
    EXPECT_TRUE(driver.ok()) << driver.status().ToString();
    return driver.ok() ? std::move(driver).value() : nullptr;
  }
};

TEST_F(TimersTest, WallClockTimersFireInDueOrderAndCanBeMovedOrCancelled) {
  auto d = Driver("wall_clock");
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->PipeInput("reminders.set", "a", "300").ok());
  ASSERT_TRUE(d->PipeInput("reminders.set", "b", "100").ok());
  ASSERT_TRUE(d->PipeInput("reminders.set", "c", "200").ok());
  ASSERT_TRUE(d->PipeInput("reminders.set", "c", "cancel").ok());
  ASSERT_TRUE(d->PipeInput("reminders.set", "a", "50").ok());  // moved earlier
  ASSERT_TRUE(d->AdvanceWallClockTime(1000).ok());
  std::vector<Record> due = d->ReadOutput("reminders.due");
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(*due[0].key, "a");
  EXPECT_EQ(*due[0].value, "50");
  EXPECT_EQ(*due[1].key, "b");
  // The timers are state: the store shows none left.
  auto store = d->GetStore("reminders-timers");
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->Range("", "")->Valid());
}

TEST_F(TimersTest, ATimerSetBeforeTheLastOneFiredStillFires) {
  // Scans of the timer store start at the last timer fired; one set
  // earlier than that (a due time already past) must lower the start.
  auto d = Driver("wall_clock");
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->PipeInput("reminders.set", "a", "100").ok());
  ASSERT_TRUE(d->AdvanceWallClockTime(100).ok());
  ASSERT_EQ(d->ReadOutput("reminders.due").size(), 1u);
  ASSERT_TRUE(d->PipeInput("reminders.set", "b", "-60").ok());  // due at 40
  std::vector<Record> due = d->ReadOutput("reminders.due");
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(*due[0].key, "b");
  EXPECT_EQ(*due[0].value, "40");
}

TEST_F(TimersTest, StreamTimeTimersFireAsRecordTimestampsPassThem) {
  auto d = Driver("stream_time");
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->PipeInput("reminders.set", "a", "100", /*timestamp_ms=*/1000).ok());
  ASSERT_TRUE(d->AdvanceWallClockTime(100000).ok());
  EXPECT_TRUE(d->ReadOutput("reminders.due").empty()) << "wall time moved a stream-time timer";
  ASSERT_TRUE(d->PipeInput("reminders.set", "b", "100000", 1099).ok());
  EXPECT_TRUE(d->ReadOutput("reminders.due").empty());
  ASSERT_TRUE(d->PipeInput("reminders.set", "c", "100000", 1100).ok());
  std::vector<Record> due = d->ReadOutput("reminders.due");
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(*due[0].key, "a");
}

TEST_F(TimersTest, AFailingTimerIsADeadLetterAndIsNotFiredAgain) {
  auto d = Driver("wall_clock");
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->PipeInput("reminders.set", "boom", "10").ok());
  ASSERT_TRUE(d->AdvanceWallClockTime(10).ok());
  std::vector<Record> dead = d->ReadOutput("remind-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.error"), "cannot remind boom");
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.processor"), "reminders");
  EXPECT_EQ(*dead[0].value, R"({"timer":"boom","due":10})");
  ASSERT_TRUE(d->AdvanceWallClockTime(10).ok());
  EXPECT_TRUE(d->ReadOutput("remind-dlq").empty());
}

TEST_F(TimersTest, ANodeWithoutTimersIsToldSo) {
  auto d = Driver("");
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->PipeInput("reminders.set", "a", "10").ok());
  std::vector<Record> dead = d->ReadOutput("remind-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(HeaderOf(dead[0], "kcqrs.error").find("does not declare timers"), std::string::npos);
}

}  // namespace
}  // namespace kcqrs
