// The sweep of task directories no stream thread uses (Kafka Streams'
// state.cleanup.delay.ms): what goes, what stays.
#include "engine/runtime/state_directory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <fstream>

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

}  // namespace
}  // namespace kcqrs::engine
