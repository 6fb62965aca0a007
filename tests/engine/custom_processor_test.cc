// C++ processors registered by name and used from a YAML topology, run by
// the TopologyTestDriver: what an embedder of kcqrs writes.
#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs {
namespace {

// Counts records per key into the store named in its config; refuses
// records whose value is "fail" after having written, to show that a failed
// record leaves no trace.
class CountingProcessor : public Processor {
 public:
  explicit CountingProcessor(std::string store, std::string echo_topic)
      : store_name_(std::move(store)), echo_topic_(std::move(echo_topic)) {}

  Status Init(ProcessorContext& ctx) override {
    store_ = ctx.GetStateStore(store_name_);
    if (store_ == nullptr) return Status::Internal("no store " + store_name_);
    return Status::OK();
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto current = store_->Get(*r.key);
    if (!current.ok()) return current.status();
    int n = current->has_value() ? std::stoi(**current) : 0;
    KCQRS_RETURN_IF_ERROR(store_->Put(*r.key, std::to_string(n + 1)));
    KCQRS_RETURN_IF_ERROR(ctx.Send(echo_topic_, r.key, "seen " + std::to_string(n + 1)));
    if (r.value == "fail") return Status::InvalidArgument("asked to fail");
    return Status::OK();
  }

 private:
  std::string store_name_;
  std::string echo_topic_;
  KeyValueStore* store_ = nullptr;
};

EngineOptions Topology() {
  config::LoadOptions load;
  auto options = config::LoadEngineOptionsFromString(R"(application:
  id: audit
kafka:
  bootstrap_servers: embedded
processors:
  counter:
    processor: counting
    topics: [things]
    stores: [counts]
    config:
      store: counts
      echo: things.seen
)",
                                                     "audit.yaml", load);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return *options;
}

TEST(CustomProcessorTest, RegisteredProcessorRunsFromYaml) {
  ASSERT_TRUE(RegisterProcessor("counting", [](const std::map<std::string, std::string>& c) {
                return std::make_unique<CountingProcessor>(c.at("store"), c.at("echo"));
              }).ok());
  EXPECT_TRUE(RegisterProcessor("counting", [](const auto&) { return nullptr; })
                  .code() == Status::Code::kAlreadyExists);

  auto driver = testing::TopologyTestDriver::Create(Topology());
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  ASSERT_TRUE((*driver)->PipeInput("things", "a", "x").ok());
  ASSERT_TRUE((*driver)->PipeInput("things", "a", "y").ok());
  ASSERT_TRUE((*driver)->PipeInput("things", "b", "z").ok());
  // Fails after writing and sending: the record is dead-lettered, and its
  // write and its send are dropped.
  ASSERT_TRUE((*driver)->PipeInput("things", "a", "fail").ok());

  auto counts = (*driver)->GetStore("counts");
  ASSERT_NE(counts, nullptr);
  EXPECT_EQ(*counts->Get("a").value(), "2");
  EXPECT_EQ(*counts->Get("b").value(), "1");
  auto seen = (*driver)->ReadOutput("things.seen");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(*seen[1].value, "seen 2");
  auto dead = (*driver)->ReadOutput("audit-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(*dead[0].value, "fail");
}

}  // namespace
}  // namespace kcqrs
