// PositionLog: following a record through commits to a store's inputs, with
// hops made by other instances (remote entries) and the last hop made here.
#include "engine/serving/position_log.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>
#include <unordered_map>

namespace kcqrs::engine {
namespace {

using Entry = PositionLog::Entry;

// orders.commands-0@5 is decided by the instance that owns the aggregate:
// its commit consumed past it and produced orders.events-1@40; the
// projection that reads orders.events is the queried store.
const RecordPosition kCommand{"orders.commands", 0, 5};
const std::set<std::string> kStoreSources{"orders.events"};
const std::set<std::string> kPath{"orders.events"};

Entry Decided(bool local) {
  Entry e;
  e.consumed_next[{"orders.commands", 0}] = 6;
  e.produced_last[{"orders.events", 1}] = 40;
  e.local = local;
  return e;
}
Entry Projected(int64_t next, bool local) {
  Entry e;
  e.consumed_next[{"orders.events", 1}] = next;
  e.local = local;
  return e;
}

TEST(PositionLogTest, AHopMadeByAnotherInstanceIsFollowed) {
  PositionLog log;
  log.Append(Decided(/*local=*/false));
  EXPECT_EQ(log.Applied(kCommand, kStoreSources, kPath), PositionLog::Answer::kPending);
  log.Append(Projected(41, /*local=*/true));
  EXPECT_EQ(log.Applied(kCommand, kStoreSources, kPath), PositionLog::Answer::kApplied);
}

TEST(PositionLogTest, TheLastHopCountsOnlyWhatThisProcessApplied) {
  // Another instance's projection being past the event says nothing of the
  // store this process serves.
  PositionLog log;
  log.Append(Decided(/*local=*/false));
  log.Append(Projected(41, /*local=*/false));
  EXPECT_EQ(log.Applied(kCommand, kStoreSources, kPath), PositionLog::Answer::kPending);
  log.Append(Projected(40, /*local=*/true));  // not past offset 40 yet
  EXPECT_EQ(log.Applied(kCommand, kStoreSources, kPath), PositionLog::Answer::kPending);
  log.Append(Projected(41, /*local=*/true));
  EXPECT_EQ(log.Applied(kCommand, kStoreSources, kPath), PositionLog::Answer::kApplied);
}

TEST(PositionLogTest, OnlyLocalEntriesReachTheListener) {
  PositionLog log;
  std::vector<bool> heard;
  log.SetLocalListener([&](const Entry& e) { heard.push_back(e.local); });
  log.Append(Decided(/*local=*/false));
  log.Append(Projected(41, /*local=*/true));
  EXPECT_EQ(heard, std::vector<bool>{true});
}

// Issue 11: the outcomes a commit decided are found by command id from the
// moment its entry is appended (a waiter woken by the entry finds them), the
// oldest forgotten beyond the capacity, and never handed to the listener
// (they are not published to other instances).
TEST(PositionLogTest, DecidedOutcomesAreFoundByCommandIdWithinTheirWindow) {
  PositionLog log(100, 3);
  size_t listened = 0;
  log.SetLocalListener([&](const Entry& e) { listened += e.outcomes.size(); });
  Entry e = Decided(true);
  CommandOutcome accepted;
  accepted.events = R"([{"type":"OrderCreated"}])";
  accepted.version = 1;
  CommandOutcome rejected;
  rejected.rejected = true;
  rejected.code = "invalid";
  rejected.reason = "quantity must be greater than 0";
  e.outcomes = {{"c-1", accepted}, {"c-2", rejected}};
  EXPECT_FALSE(log.DecidedOutcome("c-1").has_value());
  log.Append(std::move(e));
  EXPECT_EQ(listened, 0u);
  ASSERT_TRUE(log.DecidedOutcome("c-1").has_value());
  EXPECT_EQ(log.DecidedOutcome("c-1")->events, accepted.events);
  EXPECT_EQ(log.DecidedOutcome("c-1")->version, 1);
  ASSERT_TRUE(log.DecidedOutcome("c-2").has_value());
  EXPECT_TRUE(log.DecidedOutcome("c-2")->rejected);
  EXPECT_EQ(log.DecidedOutcome("c-2")->reason, rejected.reason);
  EXPECT_FALSE(log.DecidedOutcome("c-3").has_value());

  Entry later = Projected(50, true);
  later.outcomes = {{"c-3", accepted}, {"c-4", accepted}};
  log.Append(std::move(later));
  EXPECT_FALSE(log.DecidedOutcome("c-1").has_value());  // the oldest, beyond 3
  EXPECT_TRUE(log.DecidedOutcome("c-2").has_value());
  EXPECT_TRUE(log.DecidedOutcome("c-4").has_value());
}

// The window's index is open addressing with deletions: checked against a
// plain map and order on many ids of a small window, where probes collide
// and wrap around the index, repeats of remembered ids included.
TEST(PositionLogTest, TheOutcomeWindowAgreesWithAMapThroughCollisionsAndEvictions) {
  for (size_t capacity : {size_t{1}, size_t{7}, size_t{8}, size_t{33}}) {
    OutcomeWindow window(capacity);
    std::unordered_map<std::string, int64_t> expected;
    std::deque<std::string> order;
    std::mt19937 rng(static_cast<uint32_t>(capacity));
    for (int i = 0; i < 20000; ++i) {
      const std::string id = "c-" + std::to_string(rng() % (capacity * 3 + 1));
      CommandOutcome o;
      o.version = i;
      o.events = std::string(rng() % 40, 'e');
      window.Put(id, o);
      if (auto it = expected.find(id); it != expected.end()) {
        it->second = i;
      } else {
        expected.emplace(id, i);
        order.push_back(id);
        if (order.size() > capacity) {
          expected.erase(order.front());
          order.pop_front();
        }
      }
      ASSERT_EQ(window.size(), expected.size()) << "capacity " << capacity << " step " << i;
      for (size_t k = 0; k < capacity * 3 + 1; ++k) {
        const std::string probe = "c-" + std::to_string(k);
        const CommandOutcome* found = window.Find(probe);
        auto want = expected.find(probe);
        ASSERT_EQ(found != nullptr, want != expected.end())
            << probe << ", capacity " << capacity << " step " << i;
        if (found != nullptr) {
          EXPECT_EQ(found->version, want->second);
        }
      }
    }
  }
  OutcomeWindow none(0);
  none.Put("c-1", CommandOutcome{});
  EXPECT_EQ(none.Find("c-1"), nullptr);
}

}  // namespace
}  // namespace kcqrs::engine
