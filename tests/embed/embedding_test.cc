// What a program that embeds kcqrs relies on beyond the processor itself
// (issue 14): its logs in the host's logger, JSON logs, no HTTP server when
// it does not want one, state changes pushed to it, and sends with a
// timestamp of its choosing.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "json/document.h"
#include "kcqrs/engine.h"
#include "kcqrs/logging.h"
#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "kcqrs/topology_file.h"

namespace kcqrs {
namespace {

struct Captured {
  LogLevel level;
  std::string component;
  std::string message;
};

// Restores stderr in text format whatever a test did.
class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogFormat(LogFormat::kText);
    SetLogLevel(LogLevel::kInfo);
  }
};

TEST_F(LoggingTest, ASinkReceivesWhatKcqrsLogsInsteadOfStderr) {
  std::mutex mu;
  std::vector<Captured> seen;
  SetLogSink([&](LogLevel level, std::string_view component, std::string_view message) {
    std::lock_guard l(mu);
    seen.push_back({level, std::string(component), std::string(message)});
  });
  ::testing::internal::CaptureStderr();
  // What every module of kcqrs does to log.
  spdlog::warn("store {} is {} MB", "orders", 12);
  spdlog::debug("below the level: dropped");
  const std::string on_stderr = ::testing::internal::GetCapturedStderr();
  std::lock_guard l(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].level, LogLevel::kWarn);
  EXPECT_EQ(seen[0].component, "kcqrs");
  EXPECT_EQ(seen[0].message, "store orders is 12 MB");
  EXPECT_EQ(on_stderr, "");
}

TEST_F(LoggingTest, LevelsFilterBeforeTheSink) {
  std::vector<LogLevel> seen;
  SetLogSink([&](LogLevel level, std::string_view, std::string_view) { seen.push_back(level); });
  SetLogLevel(LogLevel::kDebug);
  spdlog::debug("now kept");
  SetLogLevel(LogLevel::kError);
  spdlog::warn("dropped");
  spdlog::error("kept");
  EXPECT_EQ(seen, (std::vector<LogLevel>{LogLevel::kDebug, LogLevel::kError}));
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "warn");
}

TEST_F(LoggingTest, JsonFormatWritesOneEscapedObjectPerLine) {
  SetLogFormat(LogFormat::kJson);
  ::testing::internal::CaptureStderr();
  spdlog::info("a \"quoted\" word\nand a second line\t\x01");
  spdlog::error("second");
  const std::string out = ::testing::internal::GetCapturedStderr();
  std::vector<kcqrs::Json> docs;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    docs.push_back(kcqrs::Json::parse(out.substr(start, nl - start), nullptr, false));
  }
  ASSERT_EQ(docs.size(), 2u) << out;
  ASSERT_TRUE(docs[0].is_object()) << out;
  EXPECT_EQ(docs[0]["msg"], "a \"quoted\" word\nand a second line\t\x01");
  EXPECT_EQ(docs[0]["level"], "info");
  EXPECT_EQ(docs[0]["logger"], "kcqrs");
  EXPECT_TRUE(docs[0]["thread"].is_number());
  EXPECT_EQ(docs[0]["ts"].get<std::string>().size(), std::string("2026-11-30T17:51:25.123Z").size());
  EXPECT_EQ(docs[1]["level"], "error");
  // Back to text: the same message is no JSON any more.
  SetLogFormat(LogFormat::kText);
  ::testing::internal::CaptureStderr();
  spdlog::info("plain");
  const std::string text = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(text.find("[info] plain"), std::string::npos) << text;
}

// Sends its input on with the timestamp named in the record's value.
class Stamper : public Processor {
 public:
  Status Process(const Record& r, ProcessorContext& ctx) override {
    return ctx.SendWithTimestamp("stamped", std::stoll(*r.value), r.key, r.value);
  }
};

TEST(SendWithTimestampTest, TheRecordCarriesTheGivenTimestamp) {
  ASSERT_TRUE(RegisterProcessor("stamper", [](const auto&) {
                return std::make_unique<Stamper>();
              }).ok());
  auto options = LoadTopologyString(R"(application:
  id: stamps
kafka:
  bootstrap_servers: embedded
processors:
  stamper:
    processor: stamper
    topics: [raw]
    outputs: [stamped]
)",
                                    "stamps.yaml");
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto driver = testing::TopologyTestDriver::Create(*options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  ASSERT_TRUE((*driver)->PipeInput("raw", "k", "1700000000000", /*timestamp_ms=*/5).ok());
  ASSERT_TRUE((*driver)->PipeInput("raw", "k", "-1", /*timestamp_ms=*/6).ok());
  auto out = (*driver)->ReadOutput("stamped");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].timestamp_ms, 1700000000000);  // not the input's 5
  auto dead = (*driver)->ReadOutput("stamps-dlq");
  ASSERT_EQ(dead.size(), 1u);  // the negative timestamp
}

// An engine on the embedded cluster with http.enabled: false, watched
// through a state listener instead of polling health().
TEST(EmbeddedEngineTest, RunsWithoutHttpAndReportsItsStates) {
  const std::string dir = ::testing::TempDir() + "kcqrs-embed-" + std::to_string(::getpid());
  auto options = LoadTopologyString(R"(application:
  id: quiet
  state_dir: )" + dir + R"(
kafka:
  bootstrap_servers: embedded
http:
  enabled: false
processors:
  noop:
    processor: embed-noop
    topics: [things]
    stores: [counters]
)",
                                    "quiet.yaml");
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_FALSE(options->http.enabled);
  struct Noop : Processor {
    Status Process(const Record&, ProcessorContext&) override { return Status::OK(); }
  };
  ASSERT_TRUE(RegisterProcessor("embed-noop", [](const auto&) {
                return std::make_unique<Noop>();
              }).ok());

  std::mutex mu;
  std::vector<std::pair<EngineState, EngineState>> changes;
  std::vector<std::string> logged;
  SetLogSink([&](LogLevel, std::string_view, std::string_view message) {
    std::lock_guard l(mu);
    logged.emplace_back(message);
  });
  auto engine = Engine::Open(*options, [&](EngineState now, EngineState before) {
    std::lock_guard l(mu);
    changes.emplace_back(now, before);
  });
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_EQ((*engine)->http_address(), "");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((*engine)->state() != EngineState::kRunning &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ((*engine)->state(), EngineState::kRunning) << (*engine)->health().ToString();
  // The listener runs on its own thread: give it one sampling period.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE((*engine)->GetStore("counters"), nullptr);
  (*engine)->Stop();
  EXPECT_EQ((*engine)->state(), EngineState::kStopped);
  SetLogSink(nullptr);

  std::lock_guard l(mu);
  std::string log;
  for (const std::string& m : logged) log += m + "\n";
  EXPECT_NE(log.find("HTTP server off (http.enabled: false)"), std::string::npos) << log;
  EXPECT_NE(log.find("advertises no HTTP API (http.enabled: false)"), std::string::npos) << log;
  EXPECT_EQ(log.find("HTTP server listening"), std::string::npos) << log;
  std::string told;
  for (const auto& [now, before] : changes) {
    told += std::string(EngineStateName(before)) + "->" + std::string(EngineStateName(now)) + " ";
  }
  ASSERT_GE(changes.size(), 4u) << told;
  EXPECT_EQ(changes.front(), std::make_pair(EngineState::kStarting, EngineState::kCreated)) << told;
  EXPECT_EQ(changes[changes.size() - 2].first, EngineState::kStopping) << told;
  EXPECT_EQ(changes[changes.size() - 2].second, EngineState::kRunning) << told;
  EXPECT_EQ(changes.back(), std::make_pair(EngineState::kStopped, EngineState::kStopping)) << told;
  for (size_t i = 1; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].second, changes[i - 1].first) << "a change was skipped: " << told;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kcqrs

namespace kcqrs {
namespace {

// With the server on, the instance advertises its address (the log line
// once read the URL from a moved-from config and printed nothing).
TEST(EmbeddedEngineTest, WithHttpTheInstanceAdvertisesItsAddress) {
  const std::string dir = ::testing::TempDir() + "kcqrs-embed-http-" + std::to_string(::getpid());
  auto options = LoadTopologyString(R"(application:
  id: loud
  state_dir: )" + dir + R"(
kafka:
  bootstrap_servers: embedded
http:
  listen: 127.0.0.1:0
transforms:
  copy:
    from: [in]
    to: out
)",
                                    "loud.yaml");
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  std::mutex mu;
  std::string log;
  SetLogSink([&](LogLevel, std::string_view, std::string_view message) {
    std::lock_guard l(mu);
    log.append(message).append("\n");
  });
  auto engine = Engine::Open(*options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const std::string expected = "advertises http://" + (*engine)->http_address() + "\n";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool found = false;
  while (!found && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard l(mu);
    found = log.find(expected) != std::string::npos;
  }
  (*engine)->Stop();
  SetLogSink(nullptr);
  std::lock_guard l(mu);
  EXPECT_TRUE(found) << "no '" << expected << "' in:\n" << log;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kcqrs
