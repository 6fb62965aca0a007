// Where standbys go: every instance computes the same placement from the
// same directory, and no instance keeps a standby of a task it runs.
#include "engine/runtime/standby_assignor.h"

#include <gtest/gtest.h>

#include <map>

namespace kcqrs::engine {
namespace {

InstanceInfo Instance(std::string id, std::vector<std::string> active) {
  InstanceInfo i;
  i.id = std::move(id);
  i.active_tasks = std::move(active);
  return i;
}

const std::vector<std::string> kTasks = {"0_0", "0_1", "0_2", "1_0", "1_1", "1_2"};

TEST(StandbyAssignorTest, OneReplicaGoesToTheNextInstanceInTheRing) {
  const std::vector<InstanceInfo> instances = {Instance("a", {"0_0", "1_0"}),
                                               Instance("b", {"0_1", "1_1"}),
                                               Instance("c", {"0_2", "1_2"})};
  EXPECT_EQ(StandbyTasksFor("b", instances, kTasks, 1), (std::set<std::string>{"0_0", "1_0"}));
  EXPECT_EQ(StandbyTasksFor("c", instances, kTasks, 1), (std::set<std::string>{"0_1", "1_1"}));
  EXPECT_EQ(StandbyTasksFor("a", instances, kTasks, 1), (std::set<std::string>{"0_2", "1_2"}));
}

TEST(StandbyAssignorTest, EveryTaskHasItsReplicasAndNoneOnItsHolder) {
  const std::vector<InstanceInfo> instances = {Instance("a", {"0_0", "1_0"}),
                                               Instance("b", {"0_1", "1_1"}),
                                               Instance("c", {"0_2", "1_2"})};
  for (int replicas : {1, 2, 5}) {
    std::map<std::string, int> copies;
    for (const InstanceInfo& i : instances) {
      for (const std::string& t : StandbyTasksFor(i.id, instances, kTasks, replicas)) {
        ++copies[t];
        for (const std::string& own : i.active_tasks) EXPECT_NE(t, own) << i.id;
      }
    }
    for (const std::string& t : kTasks) {
      EXPECT_EQ(copies[t], std::min(replicas, 2)) << t << " with " << replicas;
    }
  }
}

TEST(StandbyAssignorTest, AloneOrWithoutReplicasThereAreNoStandbys) {
  EXPECT_TRUE(StandbyTasksFor("a", {Instance("a", kTasks)}, kTasks, 1).empty());
  EXPECT_TRUE(StandbyTasksFor("a", {Instance("a", {"0_0"})}, kTasks, 0).empty());
  EXPECT_TRUE(
      StandbyTasksFor("a", {Instance("a", {}), Instance("b", kTasks)}, kTasks, 0).empty());
}

TEST(StandbyAssignorTest, ATaskBetweenOwnersKeepsStandbysAllInstancesAgreeOn) {
  // Nobody holds 1_2 for a moment: it has one copy more than its replicas
  // (nobody runs it), and every instance computes the same ones.
  const std::vector<InstanceInfo> instances = {Instance("a", {"0_0", "1_0"}),
                                               Instance("b", {"0_1", "1_1"}),
                                               Instance("c", {"0_2"})};
  int copies = 0;
  for (const InstanceInfo& i : instances) {
    copies += static_cast<int>(StandbyTasksFor(i.id, instances, kTasks, 1).count("1_2"));
  }
  EXPECT_EQ(copies, 2);
}

TEST(StandbyAssignorTest, WhenAHolderDiesEverySurvivorKeepsTheCopiesItHad) {
  // Three instances, two replicas: a and c keep copies of b's tasks. b is
  // killed and drops off the directory before the group gives its tasks to
  // a or c: both keep their copies, so both go on answering for b's keys,
  // and whichever the group picks takes over from a warm copy. (One copy
  // each, placed by hash, left one survivor without it: it restored in
  // full if picked, and answered 503 while the other's copy moved.)
  const std::vector<InstanceInfo> before = {Instance("a", {"0_0", "1_0"}),
                                            Instance("b", {"0_1", "1_1"}),
                                            Instance("c", {"0_2", "1_2"})};
  const std::vector<InstanceInfo> after = {before[0], before[2]};
  for (const char* survivor : {"a", "c"}) {
    const std::set<std::string> had = StandbyTasksFor(survivor, before, kTasks, 2);
    const std::set<std::string> has = StandbyTasksFor(survivor, after, kTasks, 2);
    for (const char* t : {"0_1", "1_1"}) {
      EXPECT_TRUE(had.count(t)) << survivor << " " << t;
      EXPECT_TRUE(has.count(t)) << survivor << " " << t << " after b died";
    }
  }
}

TEST(StandbyAssignorTest, WhenTheOtherOfTwoDiesTheSurvivorKeepsItsCopies) {
  // Two instances, one replica: b keeps copies of a's tasks. a is killed
  // and drops off the directory some seconds before the group gives its
  // tasks to b: b, alone now, keeps the copies (the only ones there are)
  // and goes on answering for a's keys from them. Before, an instance
  // alone kept none: a's keys answered 503 for those seconds, until b
  // took the tasks over.
  const std::vector<InstanceInfo> before = {Instance("a", {"0_0", "0_1", "0_2"}),
                                            Instance("b", {"1_0", "1_1", "1_2"})};
  const std::set<std::string> a_tasks = {"0_0", "0_1", "0_2"};
  EXPECT_EQ(StandbyTasksFor("b", before, kTasks, 1), a_tasks);
  EXPECT_EQ(StandbyTasksFor("b", {before[1]}, kTasks, 1), a_tasks);
  // Once b runs them, it keeps no copy of its own tasks.
  EXPECT_TRUE(StandbyTasksFor("b", {Instance("b", kTasks)}, kTasks, 1).empty());
}

}  // namespace
}  // namespace kcqrs::engine
