// What the log says about dead letters: each one's place and reason, at most
// one line per source topic per second, and the count of those left out.
#include "engine/runtime/dead_letter_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kcqrs::engine {
namespace {

using std::chrono::milliseconds;

class DeadLetterLogTest : public ::testing::Test {
 protected:
  DeadLetterLog log_{"orders-dlq", [this](const std::string& l) { lines_.push_back(l); }};
  std::vector<std::string> lines_;
  const DeadLetterLog::Clock::time_point t0_{};
};

TEST_F(DeadLetterLogTest, NamesTheRecordAndTheReason) {
  log_.Add("orders.commands", 2, 17, "command: expected a JSON object", t0_ + milliseconds(5));
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0],
            "dead letter: orders.commands-2@17 went to orders-dlq: command: expected a JSON "
            "object");
}

TEST_F(DeadLetterLogTest, ABurstIsOneLinePerSecondAndItsCount) {
  const auto t = t0_ + milliseconds(5);
  for (int i = 0; i < 1000; ++i) {
    log_.Add("orders.commands", i % 3, i, "bad " + std::to_string(i), t + milliseconds(i / 10));
  }
  // 0..99 ms: the first line, the rest counted.
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0], "dead letter: orders.commands-0@0 went to orders-dlq: bad 0");
  log_.Flush(t + milliseconds(500));
  EXPECT_EQ(lines_.size(), 1u) << "not before the second is over";
  log_.Flush(t + milliseconds(1000));
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[1],
            "dead letters: 999 more from orders.commands went to orders-dlq (the last: "
            "orders.commands-0@999: bad 999)");
  log_.Flush(t + milliseconds(3000));
  EXPECT_EQ(lines_.size(), 2u) << "nothing new to say";
}

TEST_F(DeadLetterLogTest, TheNextLineCarriesTheCountOfThoseLeftOut) {
  log_.Add("orders.commands", 0, 1, "a", t0_);
  log_.Add("orders.commands", 0, 2, "b", t0_ + milliseconds(10));
  log_.Add("orders.commands", 0, 3, "c", t0_ + milliseconds(20));
  log_.Add("orders.commands", 1, 4, "d", t0_ + milliseconds(1000));
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[1],
            "dead letter: orders.commands-1@4 went to orders-dlq: d (and 2 more from "
            "orders.commands since the last such line)");
}

TEST_F(DeadLetterLogTest, EachSourceTopicHasItsOwnSecond) {
  log_.Add("orders.commands", 0, 1, "a", t0_);
  log_.Add("orders.events", 0, 9, "b", t0_ + milliseconds(1));
  log_.Add("orders.commands", 0, 2, "c", t0_ + milliseconds(2));
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[1], "dead letter: orders.events-0@9 went to orders-dlq: b");
}

}  // namespace
}  // namespace kcqrs::engine
