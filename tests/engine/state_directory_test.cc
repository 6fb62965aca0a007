// The sweep of task directories no stream thread uses (Kafka Streams'
// state.cleanup.delay.ms): what goes, what stays.
#include "engine/runtime/state_directory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <optional>
#include <thread>

namespace kcqrs::engine {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::milliseconds;

class StateDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "kcqrs-state-dir-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    for (const char* d : {"0_1", "0_2", "1_0", "backup", "0_x"}) {
      fs::create_directories(dir_ + "/" + d);
      std::ofstream(dir_ + "/" + d + "/CURRENT") << "x";
    }
    std::ofstream(dir_ + "/kcqrs.instance") << "abc";
    std::ofstream(dir_ + "/kcqrs.lock") << "1";
  }
  void TearDown() override { fs::remove_all(dir_); }
  bool Has(const std::string& name) const { return fs::exists(dir_ + "/" + name); }
  std::string dir_;
};

TEST_F(StateDirectoryTest, RecentlyUsedDirectoriesOfAnEarlierRunStay) {
  StateDirectory sd(dir_);
  EXPECT_TRUE(sd.CleanUp(hours(1)).empty());
  EXPECT_TRUE(Has("0_1") && Has("0_2") && Has("1_0"));
}

TEST_F(StateDirectoryTest, UnclaimedTaskDirectoriesGoAndNothingElse) {
  StateDirectory sd(dir_);
  EXPECT_EQ(sd.Claim("0_1"), dir_ + "/0_1");
  auto removed = sd.CleanUp(milliseconds(0));
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{"0_2", "1_0"}));
  EXPECT_TRUE(Has("0_1")) << "a claimed task's directory was removed";
  EXPECT_TRUE(Has("backup") && Has("0_x") && Has("kcqrs.instance") && Has("kcqrs.lock"));
}

TEST_F(StateDirectoryTest, AReleasedDirectoryStaysForTheDelay) {
  StateDirectory sd(dir_);
  sd.Claim("0_1");
  sd.Release("0_1");
  (void)sd.CleanUp(hours(1));
  EXPECT_TRUE(Has("0_1"));
  // Claimed again within the delay: kept, whatever the delay.
  sd.Claim("0_1");
  (void)sd.CleanUp(milliseconds(0));
  EXPECT_TRUE(Has("0_1"));
  sd.Release("0_1");
  (void)sd.CleanUp(milliseconds(0));
  EXPECT_FALSE(Has("0_1"));
}

TEST_F(StateDirectoryTest, AnActiveTaskTakesItsDirectoryOverFromTheStandby) {
  StateDirectory sd(dir_);
  ASSERT_EQ(sd.ClaimStandby("0_1"), dir_ + "/0_1");
  EXPECT_FALSE(sd.ReleaseRequested("0_1"));
  // The stream thread that gets the task waits for the standby to let go;
  // the standby sees the request and releases.
  std::thread standby([&] {
    while (!sd.ReleaseRequested("0_1")) std::this_thread::sleep_for(milliseconds(1));
    sd.Release("0_1");
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(sd.Claim("0_1", std::chrono::seconds(10)), dir_ + "/0_1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  standby.join();
  EXPECT_FALSE(sd.ReleaseRequested("0_1"));
  // And a standby cannot take an active task's directory.
  EXPECT_FALSE(sd.ClaimStandby("0_1").has_value());
  // Nor is a claimed directory swept.
  const auto removed = sd.CleanUp(milliseconds(0));
  EXPECT_EQ(std::count(removed.begin(), removed.end(), "0_1"), 0);
  EXPECT_TRUE(Has("0_1"));
}

TEST_F(StateDirectoryTest, AStandbyThatLetGoCannotTakeBackWhatAnActiveTaskWaitsFor) {
  StateDirectory sd(dir_);
  ASSERT_TRUE(sd.ClaimStandby("0_1").has_value());
  // The standby lets go and, in the same breath, looks again (its next
  // reconcile), before the waiting Claim has woken. Taking the directory
  // back would close and reopen the copy until the Claim won the race.
  std::optional<std::string> retaken;
  std::thread standby([&] {
    while (!sd.ReleaseRequested("0_1")) std::this_thread::sleep_for(milliseconds(1));
    sd.Release("0_1");
    retaken = sd.ClaimStandby("0_1");
  });
  EXPECT_EQ(sd.Claim("0_1", std::chrono::seconds(10)), dir_ + "/0_1");
  standby.join();
  EXPECT_FALSE(retaken.has_value()) << *retaken;
  EXPECT_FALSE(sd.HeldByStandby("0_1"));
}

}  // namespace
}  // namespace kcqrs::engine
