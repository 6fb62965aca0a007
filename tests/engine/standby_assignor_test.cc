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
  EXPECT_TRUE(
      StandbyTasksFor("a", {Instance("a", {}), Instance("b", kTasks)}, kTasks, 0).empty());
}

TEST(StandbyAssignorTest, ATaskBetweenOwnersKeepsStandbysAllInstancesAgreeOn) {
  // Nobody holds 1_2 for a moment: it still has exactly one standby, and
  // every instance computes the same one.
  const std::vector<InstanceInfo> instances = {Instance("a", {"0_0", "1_0"}),
                                               Instance("b", {"0_1", "1_1"}),
                                               Instance("c", {"0_2"})};
  int copies = 0;
  for (const InstanceInfo& i : instances) {
    copies += static_cast<int>(StandbyTasksFor(i.id, instances, kTasks, 1).count("1_2"));
  }
  EXPECT_EQ(copies, 1);
}

}  // namespace
}  // namespace kcqrs::engine
