#include "engine/graph/compiled_topology.h"

#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "kcqrs/engine.h"

namespace kcqrs::engine {
namespace {

EngineOptions Load(const std::string& yaml) {
  config::LoadOptions load;
  load.getenv = [](const std::string&) { return std::optional<std::string>(); };
  auto r = config::LoadEngineOptionsFromString(yaml, "t.yaml", load);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : EngineOptions{};
}

constexpr char kHead[] = R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
)";

std::string Aggregate(const std::string& require_that, const std::string& lua = "") {
  std::string y = std::string(kHead) + R"(aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      CreateOrder:
        require:
          - that: )" + require_that + R"(
            code: bad
        emit:
          - type: OrderCreated
            with: {orderId: command.orderId}
)";
  if (!lua.empty()) {
    y += "      CancelOrder:\n        lua: |\n" + lua;
  }
  return y;
}

TEST(CompiledTopologyTest, ExpressionErrorsPointAtTheFileLineAndColumn) {
  Status s = Engine::Validate(Load(Aggregate("comand.quantity > 0")));
  ASSERT_TRUE(s.IsInvalidArgument());
  // Line 14 holds "          - that: comand.quantity > 0"; the name starts at column 19.
  EXPECT_EQ(s.message().rfind("t.yaml:14:19: aggregates.order.commands.CreateOrder."
                              "require[0].that: unknown name 'comand'", 0),
            0u)
      << s.message();
  EXPECT_NE(s.message().find("did you mean 'command'"), std::string::npos) << s.message();

  s = Engine::Validate(Load(Aggregate("\"command.quantity >\"")));
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message().rfind("t.yaml:14:", 0), 0u) << s.message();
}

TEST(CompiledTopologyTest, LuaErrorsPointAtTheFileLine) {
  Status s = Engine::Validate(
      Load(Aggregate("state == null", "          local x = \n          return {{\n")));
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("t.yaml:2"), std::string::npos) << s.message();
}

TEST(CompiledTopologyTest, AStoreHasOneOwner) {
  Status s = Engine::Validate(Load(Aggregate("true") + R"(projections:
  orders:
    event_topics: [orders.events]
    store: order-aggregates
    events:
      OrderCreated: {upsert: {orderId: event.orderId}}
)"));
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("store 'order-aggregates' is already used by aggregate 'order'"),
            std::string::npos)
      << s.message();
}

TEST(CompiledTopologyTest, NothingToRunIsAnError) {
  Status s = Engine::Validate(Load(kHead));
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("nothing to run"), std::string::npos);
}

// Issue 12: Validate refuses what Open would refuse before it connects,
// with Open's message, for embedders who build options in code too.
TEST(CompiledTopologyTest, ValidateRefusesWhatOpenRefuses) {
  EngineOptions options = Load(Aggregate("true"));
  ASSERT_TRUE(Engine::Validate(options).ok());

  EngineOptions nowhere = options;
  nowhere.kafka.embedded = false;
  nowhere.kafka.bootstrap_servers.clear();
  Status s = Engine::Validate(nowhere);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message(),
            "kafka.bootstrap_servers is empty: give host:port of your brokers or 'embedded'");
  auto opened = Engine::Open(nowhere);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().message(), s.message());

  EngineOptions unknown = options;
  unknown.kafka.properties["no.such.property"] = "1";
  s = Engine::Validate(unknown);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(s.message().rfind("kafka.properties: property 'no.such.property' = '1': No such "
                              "configuration property", 0),
            0u)
      << s.message();
}

TEST(CompiledTopologyTest, UnregisteredProcessorIsNamed) {
  Status s = Engine::Validate(Load(std::string(kHead) + R"(processors:
  audit:
    processor: audit_log
    topics: [orders.events]
)"));
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("no C++ processor is registered as 'audit_log'"),
            std::string::npos)
      << s.message();
}

std::string ProjectionKeyedByProduct() {
  return Aggregate("true") + R"(projections:
  orders:
    event_topics: [orders.events]
    store: orders
    events:
      OrderCreated: {upsert: {orderId: event.orderId}}
  totals:
    event_topics: [orders.events]
    store: totals
    key: event.product
    events:
      OrderCreated: {merge: {n: "coalesce(view.n, 0) + 1"}}
)";
}

TEST(CompiledTopologyTest, SubTopologiesFollowSharedTopicsAndStores) {
  auto t = CompiledTopology::Compile(Load(ProjectionKeyedByProduct()));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto& subs = (*t)->subtopologies();
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[0].sources, std::vector<std::string>{"orders.commands"});
  EXPECT_EQ(subs[0].stores, std::vector<std::string>{"order-aggregates"});
  // The view keyed by the event key and the re-keying share the event topic.
  EXPECT_EQ(subs[1].sources, std::vector<std::string>{"orders.events"});
  EXPECT_EQ(subs[1].stores, std::vector<std::string>{"orders"});
  EXPECT_EQ(subs[1].nodes.size(), 2u);
  EXPECT_EQ(subs[2].sources, std::vector<std::string>{"shop-totals-repartition"});
  EXPECT_EQ(subs[2].stores, std::vector<std::string>{"totals"});
}

TEST(CompiledTopologyTest, ResolvesPartitionsAndTopicsToCreate) {
  auto t = CompiledTopology::Compile(Load(ProjectionKeyedByProduct()));
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->ResolvePartitions({{"orders.commands", 4}}).ok());
  for (const SubTopology& st : (*t)->subtopologies()) EXPECT_EQ(st.partitions, 4) << st.id;
  std::map<std::string, TopicToCreate> created;
  for (const TopicToCreate& c : (*t)->topics_to_create()) created[c.name] = c;
  EXPECT_FALSE(created.count("orders.commands"));
  EXPECT_EQ(created.at("orders.events").partitions, 4);
  EXPECT_EQ(created.at("shop-totals-repartition").partitions, 4);
  EXPECT_EQ(created.at("shop-order-aggregates-changelog").configs.at("cleanup.policy"),
            "compact");
  EXPECT_EQ(created.at("shop-totals-changelog").partitions, 4);
  EXPECT_EQ(created.at("shop-dlq").partitions, 1);
}

TEST(CompiledTopologyTest, CoPartitionedSourcesMustAgree) {
  std::string yaml = Aggregate("true");
  yaml.replace(yaml.find("[orders.commands]"), 17, "[orders.commands, orders.admin]");
  auto t = CompiledTopology::Compile(Load(yaml));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Status s = (*t)->ResolvePartitions({{"orders.commands", 3}, {"orders.admin", 6}});
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("orders.admin: 6"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("orders.commands: 3"), std::string::npos) << s.message();
}

TEST(CompiledTopologyTest, ChangelogWithTheWrongPartitionCountIsRefused) {
  auto t = CompiledTopology::Compile(Load(Aggregate("true")));
  ASSERT_TRUE(t.ok());
  Status s = (*t)->ResolvePartitions(
      {{"orders.commands", 3}, {"shop-order-aggregates-changelog", 2}});
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("has 2 partitions but its store has 3 tasks"), std::string::npos);
}

}  // namespace
}  // namespace kcqrs::engine
