// Stateless transforms (`transforms:` in a topology): filter, re-key and
// reshape, run by the TopologyTestDriver.
#include <gtest/gtest.h>

#include "json/document.h"

#include "config/config_loader.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;

Result<EngineOptions> Load(const std::string& transforms) {
  config::LoadOptions load;
  return config::LoadEngineOptionsFromString(
      "application:\n  id: clicks\nkafka:\n  bootstrap_servers: embedded\n" + transforms,
      "clicks.yaml", load);
}

std::unique_ptr<testing::TopologyTestDriver> Driver(const std::string& transforms) {
  auto options = Load(transforms);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  if (!options.ok()) return nullptr;
  auto driver = testing::TopologyTestDriver::Create(*options);
  EXPECT_TRUE(driver.ok()) << driver.status().ToString();
  return driver.ok() ? std::move(driver).value() : nullptr;
}

constexpr char kBigActions[] = R"(transforms:
  big:
    from: [in]
    to: out
    filter: record.kind != 'view' && record.amount >= 100
    value:
      id: record.id
      cents: record.amount * 100
      source: meta.topic
)";

TEST(TransformTest, FiltersAndReshapesKeepingKeyTimestampAndHeaders) {
  auto driver = Driver(kBigActions);
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "u-1", R"({"id":"r-1","kind":"buy","amount":120})", 42,
                                {{"trace", "t-1"}})
                  .ok());
  ASSERT_TRUE(driver->PipeInput("in", "u-2", R"({"id":"r-2","kind":"view","amount":500})").ok());
  ASSERT_TRUE(driver->PipeInput("in", "u-3", R"({"id":"r-3","kind":"click","amount":99})").ok());
  auto out = driver->ReadOutput("out");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, "u-1");
  EXPECT_EQ(out[0].timestamp_ms, 42);
  EXPECT_EQ(json::parse(*out[0].value), json::parse(R"({"id":"r-1","cents":12000,"source":"in"})"));
  ASSERT_EQ(out[0].headers.size(), 1u);
  EXPECT_EQ(out[0].headers[0].key, "trace");
}

TEST(TransformTest, RekeysAndPassesValueBytesUnchangedWithoutValueFields) {
  auto driver = Driver(R"(transforms:
  by_user:
    from: [in]
    to: by-user
    key: record.user
)");
  ASSERT_NE(driver, nullptr);
  const std::string value = R"({ "user" : "u-7",  "n": 1 })";
  ASSERT_TRUE(driver->PipeInput("in", "k", value).ok());
  auto out = driver->ReadOutput("by-user");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, "u-7");
  EXPECT_EQ(out[0].value, value);  // bytes as they came, not re-encoded
}

TEST(TransformTest, BadRecordsGoToTheDeadLetterTopicAndTheNextOneFlows) {
  auto driver = Driver(std::string(kBigActions) + R"(  by_user:
    from: [in2]
    to: out2
    key: record.user
)");
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "u-1", "not json").ok());
  ASSERT_TRUE(driver->PipeInput("in", "u-1", R"({"id":"r-1","kind":"buy","amount":"lots"})").ok());
  ASSERT_TRUE(driver->PipeInput("in2", "u-1", R"({"user":["a"]})").ok());
  ASSERT_TRUE(driver->PipeInput("in", "u-1", R"({"id":"r-2","kind":"buy","amount":100})").ok());
  auto dlq = driver->ReadOutput("clicks-dlq");
  ASSERT_EQ(dlq.size(), 3u);
  auto error_of = [](const Record& r) {
    for (const Header& h : r.headers) {
      if (h.key == "kcqrs.error") return h.value.value_or("");
    }
    return std::string();
  };
  EXPECT_NE(error_of(dlq[0]).find("not valid JSON"), std::string::npos) << error_of(dlq[0]);
  EXPECT_NE(error_of(dlq[1]).find("big.filter"), std::string::npos) << error_of(dlq[1]);
  EXPECT_NE(error_of(dlq[2]).find("by_user.key"), std::string::npos) << error_of(dlq[2]);
  EXPECT_EQ(driver->ReadOutput("out").size(), 1u);
}

// Issue 9: a record nested 100,000 deep overflowed the stack. A record
// over limits.max_json_depth or limits.max_document_bytes is dead-lettered
// saying which limit and where, and the next record flows.
TEST(TransformTest, RecordsOverTheLimitsAreDeadLetteredSayingWhy) {
  auto driver = Driver(std::string(kBigActions) + R"(limits:
  max_json_depth: 8
  max_document_bytes: 262144
)");
  ASSERT_NE(driver, nullptr);
  const std::string deep = R"({"id":"r-1","kind":"buy","amount":100,"x":)" +
                           std::string(100000, '[') + std::string(100000, ']') + "}";
  ASSERT_TRUE(driver->PipeInput("in", "u-1", deep).ok());
  const std::string nine = R"({"id":"r-2","x":[[[[[[[[1]]]]]]]]})";
  ASSERT_TRUE(driver->PipeInput("in", "u-1", nine).ok());
  const std::string large = R"({"id":"r-3","pad":")" + std::string(262144, 'p') + "\"}";
  ASSERT_TRUE(driver->PipeInput("in", "u-1", large).ok());
  const std::string eight = R"({"id":"r-4","kind":"buy","amount":100,"x":[[[[[[[1]]]]]]]})";
  ASSERT_TRUE(driver->PipeInput("in", "u-1", eight).ok());
  auto dlq = driver->ReadOutput("clicks-dlq");
  ASSERT_EQ(dlq.size(), 3u);
  auto error_of = [](const Record& r) {
    for (const Header& h : r.headers) {
      if (h.key == "kcqrs.error") return h.value.value_or("");
    }
    return std::string();
  };
  EXPECT_NE(error_of(dlq[0]).find(
                "the record: nesting deeper than 8 levels at byte 49 (limits.max_json_depth)"),
            std::string::npos)
      << error_of(dlq[0]);
  EXPECT_EQ(dlq[0].value, deep);  // the record as it came, nothing lost
  EXPECT_NE(error_of(dlq[1]).find("nesting deeper than 8 levels at byte 23"), std::string::npos)
      << error_of(dlq[1]);
  EXPECT_NE(error_of(dlq[2]).find("the record: " + std::to_string(large.size()) +
                                  " bytes, more than the limit of 262144 bytes "
                                  "(limits.max_document_bytes)"),
            std::string::npos)
      << error_of(dlq[2]);
  ASSERT_EQ(driver->ReadOutput("out").size(), 1u);  // r-4, eight deep, passes
}

// The default depth (64) holds without any `limits:` section.
TEST(TransformTest, DefaultDepthLimitIs64) {
  auto driver = Driver(kBigActions);
  ASSERT_NE(driver, nullptr);
  auto nested = [](int depth) {
    return R"({"kind":"buy","amount":100,"x":)" + std::string(static_cast<size_t>(depth - 1), '[') +
           std::string(static_cast<size_t>(depth - 1), ']') + "}";
  };
  ASSERT_TRUE(driver->PipeInput("in", "u-1", nested(64)).ok());
  ASSERT_TRUE(driver->PipeInput("in", "u-1", nested(65)).ok());
  EXPECT_EQ(driver->ReadOutput("out").size(), 1u);
  EXPECT_EQ(driver->ReadOutput("clicks-dlq").size(), 1u);
}

TEST(TransformTest, ConfigErrorsSayWhereAndWhat) {
  auto loops = Load("transforms:\n  t:\n    from: [a]\n    to: a\n");
  ASSERT_TRUE(loops.ok()) << loops.status().ToString();
  auto driver = testing::TopologyTestDriver::Create(*loops);
  ASSERT_FALSE(driver.ok());
  EXPECT_NE(driver.status().message().find("both read and written"), std::string::npos)
      << driver.status().message();

  auto unknown = Load("transforms:\n  t:\n    from: [a]\n    to: b\n    fliter: record.x\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("clicks.yaml:9:5"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("filter"), std::string::npos)
      << unknown.status().message();

  auto bad_filter = Load("transforms:\n  t:\n    from: [a]\n    to: b\n    filter: record.x >\n");
  ASSERT_TRUE(bad_filter.ok()) << bad_filter.status().ToString();
  auto compiled = testing::TopologyTestDriver::Create(*bad_filter);
  ASSERT_FALSE(compiled.ok());
  EXPECT_NE(compiled.status().message().find("clicks.yaml:9:"), std::string::npos)
      << compiled.status().message();
  EXPECT_NE(compiled.status().message().find("transforms.t.filter"), std::string::npos)
      << compiled.status().message();
}

}  // namespace
}  // namespace kcqrs
