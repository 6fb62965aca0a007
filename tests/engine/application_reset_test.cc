// `kcqrs reset`'s parts that need no Kafka: the --to-datetime parser, the
// plan's wording, and the local state's removal (only task directories,
// and never under a running kcqrs). The Kafka side is tested on the real
// broker in tests/integration/reset_test.cc.
#include "engine/runtime/application_reset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/runtime/state_directory.h"

namespace kcqrs::engine {
namespace {

namespace fs = std::filesystem;

TEST(ParseDateTimeTest, ReadsUtcOffsetsAndFractions) {
  EXPECT_EQ(*ParseDateTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseDateTime("1970-01-01T00:00:00"), 0);  // no zone: UTC
  EXPECT_EQ(*ParseDateTime("2026-11-30T12:00:00Z"), 1796040000000);
  EXPECT_EQ(*ParseDateTime("2026-11-30T13:00:00+01:00"), 1796040000000);
  EXPECT_EQ(*ParseDateTime("2026-11-30T11:30:00-00:30"), 1796040000000);
  EXPECT_EQ(*ParseDateTime("2026-11-30 12:00:00.25Z"), 1796040000250);
  EXPECT_EQ(*ParseDateTime("2024-02-29T00:00:00Z"), 1709164800000);  // leap day
  EXPECT_EQ(*ParseDateTime("1969-12-31T23:59:59Z"), -1000);
}

TEST(ParseDateTimeTest, RefusesWhatIsNotADateAndSaysWhatIsExpected) {
  for (const char* bad : {"", "2026-11-30", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2026-11-30T24:00:00Z", "2026-11-30T12:00:00+1", "yesterday",
                          "2026-11-30T12:00:00Zjunk", "2026-11-31T00:00:00Z"}) {
    auto r = ParseDateTime(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find("YYYY-MM-DDTHH:MM:SS"), std::string::npos) << bad;
  }
}

class LocalStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kcqrs-reset-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "0_0" / "db");
    fs::create_directories(dir_ / "2_11");
    fs::create_directories(dir_ / "backup");  // not a task: never the tool's to remove
    std::ofstream(dir_ / "kcqrs.instance") << "abc\n";
    std::ofstream(dir_ / "0_0" / "db" / "CURRENT") << "x";
    options_.application.id = "orders";
    options_.application.state_dir = dir_.string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  EngineOptions options_;
};

TEST_F(LocalStateTest, RemovesOnlyTaskDirectories) {
  ResetOptions reset;
  reset.local_state_only = true;
  auto plan = PlanReset(options_, reset);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->state_entries, (std::vector<std::string>{"0_0", "2_11"}));
  const std::string text = FormatResetPlan(*plan, /*dry_run=*/true);
  EXPECT_NE(text.find("would remove 2 task directories: 0_0, 2_11"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(dir_ / "0_0"));  // planning changes nothing

  ASSERT_TRUE(ApplyReset(options_, *plan, reset).ok());
  EXPECT_FALSE(fs::exists(dir_ / "0_0"));
  EXPECT_FALSE(fs::exists(dir_ / "2_11"));
  EXPECT_TRUE(fs::exists(dir_ / "backup"));
  EXPECT_TRUE(fs::exists(dir_ / "kcqrs.instance"));  // the instance keeps its id
}

TEST_F(LocalStateTest, RefusesAStateDirectoryARunningKcqrsHolds) {
  StateDirectory running(dir_.string());
  auto lock = running.Lock();
  ASSERT_TRUE(lock.ok());
  // flock is per open file description: a second open in this process is
  // refused as another process would be.
  ResetOptions reset;
  reset.local_state_only = true;
  auto plan = PlanReset(options_, reset);
  ASSERT_TRUE(plan.ok());
  Status s = ApplyReset(options_, *plan, reset);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("in use by another kcqrs process"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "0_0"));
}

TEST_F(LocalStateTest, TheEmbeddedBrokerHasNothingToReset) {
  options_.kafka.embedded = true;
  auto plan = PlanReset(options_, ResetOptions{});
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(plan.status().IsInvalidArgument());
  EXPECT_NE(plan.status().message().find("--local-state-only"), std::string::npos);
}

}  // namespace
}  // namespace kcqrs::engine
