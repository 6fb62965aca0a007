// C++ processors registered by name and used from a YAML topology, run by
// the TopologyTestDriver: what an embedder of kcqrs writes.
#include <gtest/gtest.h>

#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "kcqrs/topology_file.h"

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
  auto options = LoadTopologyString(R"(application:
  id: audit
kafka:
  bootstrap_servers: embedded
processors:
  counter:
    processor: counting
    topics: [things]
    outputs: [things.seen]
    stores: [counts]
    config:
      store: counts
      echo: things.seen
)",
                                    "audit.yaml");
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

namespace kcqrs {
namespace {

// The declarative topology can be built in code, without YAML: the same
// structs the file fills (include/kcqrs/topology_spec.h).
TEST(TopologyInCodeTest, AnAggregateBuiltInCodeDecidesLikeTheYamlOne) {
  EngineOptions options;
  options.application.id = "counter";
  options.kafka.embedded = true;
  AggregateSpec counter;
  counter.name = "counter";
  counter.command_topics = {"counter.commands"};
  counter.event_topic = "counter.events";
  counter.rejection_topic = "counter.rejections";
  counter.store = "counters";
  DecideSpec add;
  add.require.push_back(RequireSpec{{"command.by > 0", {}}, "invalid", {"by must be positive", {}}, {}});
  add.emit.push_back(EmitSpec{"Added", {{"by", {"command.by", {}}}}, {}});
  counter.commands.emplace_back("Add", add);
  UpdateSpec added;
  added.kind = UpdateSpec::Kind::kSet;
  added.fields = {{"total", {"coalesce(state.total, 0) + event.by", {}}}};
  counter.events.emplace_back("Added", added);
  options.topology.aggregates.push_back(counter);

  auto driver = testing::TopologyTestDriver::Create(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  ASSERT_TRUE((*driver)->PipeInput("counter.commands", "k", R"({"type":"Add","by":2})").ok());
  ASSERT_TRUE((*driver)->PipeInput("counter.commands", "k", R"({"type":"Add","by":5})").ok());
  ASSERT_TRUE((*driver)->PipeInput("counter.commands", "k", R"({"type":"Add","by":-1})").ok());
  EXPECT_EQ((*driver)->ReadOutput("counter.events").size(), 2u);
  EXPECT_EQ((*driver)->ReadOutput("counter.rejections").size(), 1u);
  auto stored = (*driver)->GetStore("counters")->Get("k");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_NE((*stored)->find(R"("state":{"total":7})"), std::string::npos) << **stored;
  EXPECT_NE((*stored)->find(R"("version":2)"), std::string::npos) << **stored;
}

}  // namespace
}  // namespace kcqrs
