// PositionLog: following a record through commits to a store's inputs, with
// hops made by other instances (remote entries) and the last hop made here.
#include "engine/serving/position_log.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kcqrs::engine
