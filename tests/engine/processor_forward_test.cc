// Forwarding between C++ processors of one sub-topology
// (ProcessorContext::Forward and ForwardTo, `parents:` in the topology), as
// Kafka Streams' context.forward(record) and forward(record, childName):
// children run at once, depth first, inside the input record's transaction,
// and a child's failure is the record's failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/graph/describe.h"
#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "kcqrs/topology_file.h"

namespace kcqrs {
namespace {

using Config = std::map<std::string, std::string>;

// A processor whose Process (and OnTimer) is a lambda given per test.
class Lambda : public Processor {
 public:
  using ProcessFn = std::function<Status(const Record&, ProcessorContext&)>;
  using TimerFn = std::function<Status(std::string_view, int64_t, ProcessorContext&)>;
  using InitFn = std::function<Status(ProcessorContext&)>;
  Lambda(ProcessFn process, TimerFn timer, InitFn init)
      : process_(std::move(process)), timer_(std::move(timer)), init_(std::move(init)) {}
  Status Init(ProcessorContext& ctx) override { return init_ ? init_(ctx) : Status::OK(); }
  Status Process(const Record& r, ProcessorContext& ctx) override { return process_(r, ctx); }
  Status OnTimer(std::string_view key, int64_t due, ProcessorContext& ctx) override {
    return timer_ ? timer_(key, due, ctx) : Status::OK();
  }

 private:
  ProcessFn process_;
  TimerFn timer_;
  InitFn init_;
};

// Registers `name` (once per test binary) to make Lambda processors.
void Register(const std::string& name, Lambda::ProcessFn process, Lambda::TimerFn timer = {},
              Lambda::InitFn init = {}) {
  Status s = RegisterProcessor(name, [process, timer, init](const Config&) {
    return std::make_unique<Lambda>(process, timer, init);
  });
  ASSERT_TRUE(s.ok() || s.code() == Status::Code::kAlreadyExists) << s.ToString();
}

std::unique_ptr<testing::TopologyTestDriver> Driver(const std::string& yaml) {
  auto options = LoadTopologyString(yaml, "forward.yaml");
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  if (!options.ok()) return nullptr;
  auto driver = testing::TopologyTestDriver::Create(*options);
  EXPECT_TRUE(driver.ok()) << driver.status().ToString();
  return driver.ok() ? std::move(driver).value() : nullptr;
}

std::string CompileError(const std::string& yaml) {
  auto options = LoadTopologyString(yaml, "forward.yaml");
  if (!options.ok()) return options.status().message();
  auto driver = testing::TopologyTestDriver::Create(*options);
  return driver.ok() ? "" : driver.status().message();
}

std::vector<std::string> Values(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.value.value_or("<null>"));
  return out;
}

std::string HeaderOf(const Record& r, const std::string& name) {
  const Header* h = r.FindHeader(name);
  return h != nullptr && h->value ? *h->value : "";
}

// "split" forwards each comma-separated item of a value to every child, and
// "total:<n>" to the child "count" only; "upper" sends its record in capitals
// with where it came from; "count" counts items per key in its store.
void RegisterSplitTopology() {
  Register("fwd-split", [](const Record& r, ProcessorContext& ctx) -> Status {
    std::string v = r.value.value_or("");
    size_t at = 0;
    int items = 0;
    while (at <= v.size()) {
      size_t comma = v.find(',', at);
      if (comma == std::string::npos) comma = v.size();
      Record item;
      item.key = r.key;
      item.value = v.substr(at, comma - at);
      item.timestamp_ms = r.timestamp_ms + 1000 * ++items;
      KCQRS_RETURN_IF_ERROR(ctx.Forward(std::move(item)));
      at = comma + 1;
    }
    Record total;
    total.key = r.key;
    total.value = "total:" + std::to_string(items);
    total.timestamp_ms = r.timestamp_ms;
    return ctx.ForwardTo("count", std::move(total));
  });
  Register("fwd-upper", [](const Record& r, ProcessorContext& ctx) -> Status {
    std::string v = r.value.value_or("");
    if (v == "boom") throw std::runtime_error("upper cannot take boom");
    std::transform(v.begin(), v.end(), v.begin(), ::toupper);
    return ctx.Send("out.upper", r.key,
                    v + " from " + r.topic + "-" + std::to_string(r.partition) + "@" +
                        std::to_string(r.offset));
  });
  Register("fwd-count", [](const Record& r, ProcessorContext& ctx) -> Status {
    if (r.value.value_or("").rfind("total:", 0) == 0) {
      return ctx.Send("out.totals", r.key, *r.value);
    }
    KeyValueStore* counts = ctx.GetStateStore("counts");
    if (counts == nullptr) return Status::Internal("no store counts");
    auto current = counts->Get(*r.key);
    if (!current.ok()) return current.status();
    int n = current->has_value() ? std::stoi(**current) : 0;
    return counts->Put(*r.key, std::to_string(n + 1));
  });
}

constexpr char kSplitTopology[] = R"(application:
  id: fwd
kafka:
  bootstrap_servers: embedded
processors:
  split:
    processor: fwd-split
    topics: [lines]
  upper:
    processor: fwd-upper
    parents: [split]
    outputs: [out.upper]
  count:
    processor: fwd-count
    parents: split
    outputs: [out.totals]
    stores: [counts]
)";

TEST(ProcessorForwardTest, ForwardReachesEveryChildAndForwardToOnlyTheNamedOne) {
  RegisterSplitTopology();
  auto driver = Driver(kSplitTopology);
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("lines", "k", "a,b,c", 5000).ok());
  ASSERT_TRUE(driver->PipeInput("lines", "j", "d", 6000).ok());

  // Each item reached "upper", which sees the input's topic, partition and
  // offset, and sends with the timestamp its parent gave.
  auto upper = driver->ReadOutput("out.upper");
  EXPECT_EQ(Values(upper), (std::vector<std::string>{"A from lines-0@0", "B from lines-0@0",
                                                      "C from lines-0@0", "D from lines-0@1"}));
  ASSERT_EQ(upper.size(), 4u);
  EXPECT_EQ(upper[0].timestamp_ms, 6000);
  EXPECT_EQ(upper[2].timestamp_ms, 8000);
  // The totals went to "count" only: "upper" would have sent them too.
  EXPECT_EQ(Values(driver->ReadOutput("out.totals")),
            (std::vector<std::string>{"total:3", "total:1"}));
  EXPECT_EQ(*driver->GetStore("counts")->Get("k").value(), "3");
  EXPECT_EQ(*driver->GetStore("counts")->Get("j").value(), "1");
  EXPECT_TRUE(driver->ReadOutput("fwd-dlq").empty());
}

TEST(ProcessorForwardTest, AChildThatThrowsFailsTheWholeInputRecordNamingTheChild) {
  RegisterSplitTopology();
  auto driver = Driver(kSplitTopology);
  ASSERT_NE(driver, nullptr);
  // "upper" throws on the second item, after the first was sent and
  // counted; "split" stops there and returns the error.
  ASSERT_TRUE(driver->PipeInput("lines", "k", "a,boom,c").ok());
  ASSERT_TRUE(driver->PipeInput("lines", "k", "x").ok());

  EXPECT_EQ(Values(driver->ReadOutput("out.upper")),
            (std::vector<std::string>{"X from lines-0@1"}));
  EXPECT_EQ(Values(driver->ReadOutput("out.totals")), (std::vector<std::string>{"total:1"}));
  EXPECT_EQ(*driver->GetStore("counts")->Get("k").value(), "1") << "the failed record's counts";
  auto dead = driver->ReadOutput("fwd-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "a,boom,c");
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.processor"), "upper");
  EXPECT_NE(HeaderOf(dead[0], "kcqrs.error").find("upper cannot take boom"), std::string::npos)
      << HeaderOf(dead[0], "kcqrs.error");
}

TEST(ProcessorForwardTest, AChildsFailureCountsEvenWhenTheParentIgnoresIt) {
  Register("fwd-careless", [](const Record& r, ProcessorContext& ctx) -> Status {
    KCQRS_RETURN_IF_ERROR(ctx.Send("out.parent", r.key, r.value));
    (void)ctx.Forward(r);  // the status is dropped on purpose
    return Status::OK();
  });
  Register("fwd-picky", [](const Record& r, ProcessorContext& ctx) -> Status {
    if (r.value == "bad") return Status::InvalidArgument("picky refuses bad");
    return ctx.Send("out.child", r.key, r.value);
  });
  auto driver = Driver(R"(application:
  id: careless
kafka:
  bootstrap_servers: embedded
processors:
  parent:
    processor: fwd-careless
    topics: [in]
    outputs: [out.parent]
  child:
    processor: fwd-picky
    parents: [parent]
    outputs: [out.child]
)");
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "k", "good").ok());
  ASSERT_TRUE(driver->PipeInput("in", "k", "bad").ok());
  EXPECT_EQ(Values(driver->ReadOutput("out.parent")), (std::vector<std::string>{"good"}));
  EXPECT_EQ(Values(driver->ReadOutput("out.child")), (std::vector<std::string>{"good"}));
  auto dead = driver->ReadOutput("careless-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.processor"), "child");
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.error"), "picky refuses bad");
}

// A topology of one processor `parent_processor` reading "in", with one
// child, "fwd-sink", that does nothing.
std::string ParentAndChild(const std::string& id, const std::string& parent_processor) {
  return "application:\n  id: " + id +
         "\nkafka:\n  bootstrap_servers: embedded\nprocessors:\n"
         "  parent:\n    processor: " + parent_processor + "\n    topics: [in]\n"
         "  child:\n    processor: fwd-sink\n    parents: [parent]\n";
}

TEST(ProcessorForwardTest, ForwardToAnUnknownChildIsAnErrorNamingTheChildren) {
  Register("fwd-wrong", [](const Record& r, ProcessorContext& ctx) {
    return ctx.ForwardTo("nobody", r);
  });
  Register("fwd-sink", [](const Record&, ProcessorContext&) { return Status::OK(); });
  auto driver = Driver(ParentAndChild("wrong", "fwd-wrong"));
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "k", "v").ok());
  auto dead = driver->ReadOutput("wrong-dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(HeaderOf(dead[0], "kcqrs.error"),
            "'parent' has no child 'nobody' (children: child; a child names its "
            "parents under processors.<child>.parents)");
}

TEST(ProcessorForwardTest, ForwardOutsideProcessIsAFailedPrecondition) {
  static Status from_init;
  Register("fwd-sink", [](const Record&, ProcessorContext&) { return Status::OK(); });
  Register(
      "fwd-early", [](const Record&, ProcessorContext&) { return Status::OK(); }, {},
      [](ProcessorContext& ctx) {
        from_init = ctx.Forward(Record{});
        return Status::OK();
      });
  auto driver = Driver(ParentAndChild("early", "fwd-early"));
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(from_init.code(), Status::Code::kFailedPrecondition) << from_init.ToString();
}

TEST(ProcessorForwardTest, ATimerCanForwardAndItsChildrenSendInTheFiring) {
  Register(
      "fwd-remind",
      [](const Record& r, ProcessorContext& ctx) { return ctx.SetTimer(*r.key, 1000); },
      [](std::string_view key, int64_t due, ProcessorContext& ctx) {
        Record r;
        r.key = std::string(key);
        r.value = "due " + std::to_string(due);
        r.timestamp_ms = due;
        return ctx.Forward(std::move(r));
      });
  Register("fwd-announce", [](const Record& r, ProcessorContext& ctx) {
    return ctx.Send("reminders", r.key,
                    *r.value + " (topic '" + r.topic + "', offset " + std::to_string(r.offset) +
                        ")");
  });
  auto driver = Driver(R"(application:
  id: remind
kafka:
  bootstrap_servers: embedded
processors:
  remind:
    processor: fwd-remind
    topics: [in]
    timers: wall_clock
  announce:
    processor: fwd-announce
    parents: [remind]
    outputs: [reminders]
)");
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "ada", "x").ok());
  EXPECT_TRUE(driver->ReadOutput("reminders").empty());
  ASSERT_TRUE(driver->AdvanceWallClockTime(1000).ok());
  auto sent = driver->ReadOutput("reminders");
  EXPECT_EQ(Values(sent), (std::vector<std::string>{"due 1000 (topic '', offset -1)"}));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].timestamp_ms, 1000);
}

TEST(ProcessorForwardTest, ChildrenRunDepthFirstDownAChain) {
  // Each stage sends "<name>:<value>" and forwards "<value>+" on.
  auto stage = [](std::string name) {
    return [name](const Record& r, ProcessorContext& ctx) -> Status {
      KCQRS_RETURN_IF_ERROR(ctx.Send("trace", r.key, name + ":" + *r.value));
      Record next = r;
      next.value = *r.value + "+";
      return ctx.Forward(std::move(next));
    };
  };
  Register("fwd-stage-a", stage("a"));
  Register("fwd-stage-b", stage("b"));
  Register("fwd-stage-c", stage("c"));
  auto driver = Driver(R"(application:
  id: chain
kafka:
  bootstrap_servers: embedded
processors:
  a: {processor: fwd-stage-a, topics: [in], outputs: [trace]}
  b: {processor: fwd-stage-b, parents: [a], outputs: [trace]}
  c: {processor: fwd-stage-c, parents: [a, b], outputs: [trace]}
)");
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->PipeInput("in", "k", "v").ok());
  // a forwards to b then c (declaration order); b's forward reaches c
  // before a's does.
  EXPECT_EQ(Values(driver->ReadOutput("trace")),
            (std::vector<std::string>{"a:v", "b:v+", "c:v++", "c:v+"}));
}

TEST(ProcessorForwardTest, ParentsAreCheckedWhenTheTopologyCompiles) {
  Register("fwd-any", [](const Record&, ProcessorContext&) { return Status::OK(); });
  const std::string head = R"(application:
  id: bad
kafka:
  bootstrap_servers: embedded
transforms:
  order: {from: [orders], to: orders.copy}
processors:
)";
  EXPECT_NE(CompileError(head + "  p: {processor: fwd-any, parents: [ghost]}\n")
                .find("forward.yaml:8:3: processors.p.parents: 'ghost' is not a processor of "
                      "this topology (processors: none other); only C++ processors forward"),
            std::string::npos)
      << CompileError(head + "  p: {processor: fwd-any, parents: [ghost]}\n");
  EXPECT_NE(CompileError(head + "  p: {processor: fwd-any, parents: [order]}\n")
                .find("'order' is not a processor of this topology"),
            std::string::npos);
  EXPECT_NE(CompileError(head + "  p: {processor: fwd-any, topics: [in], parents: [p]}\n")
                .find("processors.p.parents: a processor cannot be its own parent"),
            std::string::npos);
  const std::string cycle = CompileError(head +
                                         "  p: {processor: fwd-any, topics: [in], parents: [r]}\n"
                                         "  q: {processor: fwd-any, parents: [p]}\n"
                                         "  r: {processor: fwd-any, parents: [q]}\n");
  EXPECT_NE(cycle.find("the processors' parents form a cycle (p <- r <- q <- p)"),
            std::string::npos)
      << cycle;
  EXPECT_NE(CompileError(head +
                         "  p: {processor: fwd-any, topics: [in]}\n"
                         "  q: {processor: fwd-any, parents: [p, p]}\n")
                .find("processors.q.parents: 'p' is listed twice"),
            std::string::npos);
  EXPECT_NE(CompileError(head + "  p: {processor: fwd-any}\n")
                .find("processors.p: the key 'topics' is required (or 'parents'"),
            std::string::npos);
  EXPECT_NE(CompileError(head + "  p: {processor: fwd-any, parents: []}\n")
                .find("processors.p.parents: expected at least one processor"),
            std::string::npos);
}

TEST(ProcessorForwardTest, AChildRunsInItsParentsTaskAndDescribeShowsTheEdge) {
  RegisterSplitTopology();
  auto options = LoadTopologyString(kSplitTopology, "forward.yaml");
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto compiled = engine::CompiledTopology::Compile(*options);
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  // "count" has a store of its own and no topics: it still joins the task
  // of its parent, which calls it.
  ASSERT_EQ((*compiled)->subtopologies().size(), 1u);
  EXPECT_EQ((*compiled)->subtopologies()[0].nodes.size(), 3u);
  EXPECT_EQ((*compiled)->subtopologies()[0].sources, (std::vector<std::string>{"lines"}));

  const std::string text = engine::Describe(**compiled, engine::DescribeFormat::kText);
  EXPECT_NE(text.find("    Processor: split (processor, stores: [])\n"
                      "      --> upper, count, fwd-dlq\n"
                      "      <-- lines\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    Processor: count (processor, stores: [counts])\n"
                      "      --> out.totals, fwd-dlq\n"
                      "      <-- split\n"),
            std::string::npos)
      << text;
  const std::string mermaid = engine::Describe(**compiled, engine::DescribeFormat::kMermaid);
  EXPECT_NE(mermaid.find("n_split -->|forward| n_upper;"), std::string::npos) << mermaid;
  const std::string json = engine::Describe(**compiled, engine::DescribeFormat::kJson);
  EXPECT_NE(json.find(R"("name":"count","kind":"processor","sources":[],"stores":["counts"],)"
                      R"("sinks":["out.totals","fwd-dlq"],"parents":["split"]})"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace kcqrs
