// Describe: the orders example as JSON (the schema GET /topology serves),
// Kafka Streams-style text and a Mermaid graph, before and after the
// partition counts are known.
#include "engine/graph/describe.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "config/config_loader.h"
#include "json/document.h"
#include "tests/support/examples.h"
#include "engine/graph/compiled_topology.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

EngineOptions LoadOrders() { return kcqrs::testing::LoadExample("orders"); }

std::unique_ptr<CompiledTopology> CompileOrders() {
  auto compiled = CompiledTopology::Compile(LoadOrders());
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  return compiled.ok() ? std::move(compiled).value() : nullptr;
}

// The repartition topic already exists with 6 partitions, so sub-topology 2
// runs 6 tasks while the others run 3.
std::unique_ptr<CompiledTopology> CompileOrdersResolved() {
  auto t = CompileOrders();
  if (t == nullptr) return nullptr;
  Status s = t->ResolvePartitions({{"orders.commands", 3},
                                   {"orders.events", 3},
                                   {"orders.rejections", 3},
                                   {"orders-product_totals-repartition", 6}});
  EXPECT_TRUE(s.ok()) << s.ToString();
  return t;
}

constexpr char kOrdersJson[] = R"({
  "application": "orders",
  "subtopologies": [
    {"id": 0, "partitions": 3, "sources": ["orders.commands"], "stores": ["order-aggregates"],
     "nodes": [{"name": "order", "kind": "aggregate", "sources": ["orders.commands"],
                "stores": ["order-aggregates"],
                "sinks": ["orders.events", "orders.rejections", "orders-dlq"]}]},
    {"id": 1, "partitions": 3, "sources": ["orders.events"], "stores": ["orders"],
     "nodes": [{"name": "orders", "kind": "projection", "sources": ["orders.events"],
                "stores": ["orders"], "sinks": ["orders-dlq"]},
               {"name": "product_totals", "kind": "repartition", "sources": ["orders.events"],
                "stores": [], "sinks": ["orders-product_totals-repartition", "orders-dlq"]}]},
    {"id": 2, "partitions": 6, "sources": ["orders-product_totals-repartition"],
     "stores": ["product_totals"],
     "nodes": [{"name": "product_totals", "kind": "projection",
                "sources": ["orders-product_totals-repartition"], "stores": ["product_totals"],
                "sinks": ["orders-dlq"]}]}
  ],
  "stores": [
    {"name": "order-aggregates", "kind": "rocksdb", "changelog": "orders-order-aggregates-changelog"},
    {"name": "orders", "kind": "rocksdb", "changelog": "orders-orders-changelog"},
    {"name": "product_totals", "kind": "rocksdb", "changelog": "orders-product_totals-changelog"}
  ],
  "dead_letter_topic": "orders-dlq"
})";

TEST(DescribeTest, JsonOfTheOrdersExampleIsExactlyTheDocumentedShape) {
  auto t = CompileOrdersResolved();
  ASSERT_NE(t, nullptr);
  std::string out = Describe(*t, DescribeFormat::kJson);
  json got = json::parse(out);
  EXPECT_EQ(got, json::parse(kOrdersJson)) << got.dump(2);
  // Keys in the documented order, so that the document reads as specified.
  EXPECT_EQ(
      out.rfind(
          R"({"application":"orders","subtopologies":[{"id":0,"partitions":3,)",
          0),
      0u)
      << out;
  EXPECT_EQ(out, Describe(*t, DescribeFormat::kJson)) << "not deterministic";
}

TEST(DescribeTest, JsonBeforeThePartitionsAreKnownSaysNull) {
  auto t = CompileOrders();
  ASSERT_NE(t, nullptr);
  json got = json::parse(Describe(*t, DescribeFormat::kJson));
  json want = json::parse(kOrdersJson);
  for (json& st : want["subtopologies"]) st["partitions"] = nullptr;
  EXPECT_EQ(got, want) << got.dump(2);
}

constexpr char kOrdersText[] = R"(Topology: orders
  Sub-topology: 0 (partitions: 3)
    Source: orders.commands
      --> order
    Processor: order (aggregate, stores: [order-aggregates])
      --> orders.events, orders.rejections, orders-dlq
      <-- orders.commands
    Sink: orders.events
      <-- order
    Sink: orders.rejections
      <-- order
    Sink: orders-dlq
      <-- order
  Sub-topology: 1 (partitions: 3)
    Source: orders.events
      --> orders, product_totals
    Processor: orders (projection, stores: [orders])
      --> orders-dlq
      <-- orders.events
    Processor: product_totals (repartition, stores: [])
      --> orders-product_totals-repartition, orders-dlq
      <-- orders.events
    Sink: orders-dlq
      <-- orders, product_totals
    Sink: orders-product_totals-repartition
      <-- product_totals
  Sub-topology: 2 (partitions: 6)
    Source: orders-product_totals-repartition
      --> product_totals
    Processor: product_totals (projection, stores: [product_totals])
      --> orders-dlq
      <-- orders-product_totals-repartition
    Sink: orders-dlq
      <-- product_totals
  Stores:
    Store: order-aggregates (rocksdb, changelog: orders-order-aggregates-changelog)
    Store: orders (rocksdb, changelog: orders-orders-changelog)
    Store: product_totals (rocksdb, changelog: orders-product_totals-changelog)
  Dead letters: orders-dlq
)";

TEST(DescribeTest, TextListsEachSubTopologyLikeKafkaStreams) {
  auto t = CompileOrdersResolved();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Describe(*t, DescribeFormat::kText), kOrdersText);
}

TEST(DescribeTest, TextBeforeThePartitionsAreKnownSaysQuestionMark) {
  auto t = CompileOrders();
  ASSERT_NE(t, nullptr);
  std::string text = Describe(*t, DescribeFormat::kText);
  std::vector<std::string> subs;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find("Sub-topology:") != std::string::npos) subs.push_back(line);
  }
  EXPECT_EQ(subs,
            (std::vector<std::string>{"  Sub-topology: 0 (partitions: ?)",
                                      "  Sub-topology: 1 (partitions: ?)",
                                      "  Sub-topology: 2 (partitions: ?)"}))
      << text;
}

// Every id a Mermaid line defines or links, and the links themselves.
struct MermaidGraph {
  std::set<std::string> defined;
  std::set<std::string> edges;  // "from ARROW|label| to"
  std::vector<std::string> unparsed;
};

MermaidGraph ParseMermaid(const std::string& text) {
  MermaidGraph g;
  static const std::regex kDefine(
      R"re(^\s*(\S+?)(\(\[|\[\(|\[)"[^"]*"(\]\)|\)\]|\]);$)re");
  static const std::regex kEdge(
      R"re(^\s*(\S+) (-->|<-->|-\.->)\|([^|]+)\| (\S+);$)re");
  static const std::regex kSubgraph(R"re(^\s*subgraph (\S+?)\["[^"]*"\]$)re");
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // graph TD;
  for (; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kEdge)) {
      g.edges.insert(m[1].str() + " " + m[2].str() + "|" + m[3].str() + "| " +
                     m[4].str());
      g.defined.count(m[1].str()) ? void()
                                  : g.unparsed.push_back("undefined: " + line);
      g.defined.count(m[4].str()) ? void()
                                  : g.unparsed.push_back("undefined: " + line);
    } else if (std::regex_match(line, m, kDefine)) {
      g.defined.insert(m[1].str());
    } else if (std::regex_match(line, m, kSubgraph)) {
      g.defined.insert(m[1].str());
    } else if (line != "  end") {
      g.unparsed.push_back(line);
    }
  }
  return g;
}

TEST(DescribeTest,
     MermaidHasTopicsProcessorsStoresAndLabelledEdgesWithSafeIds) {
  auto t = CompileOrdersResolved();
  ASSERT_NE(t, nullptr);
  std::string m = Describe(*t, DescribeFormat::kMermaid);
  ASSERT_EQ(m.rfind("graph TD;\n", 0), 0u) << m;
  for (const char* line : {
           "  t_orders_commands([\"orders.commands\"]);\n",
           "  "
           "t_orders_product_totals_repartition([\"orders-product_totals-"
           "repartition\"]);\n",
           "  t_orders_dlq([\"orders-dlq\"]);\n",
           "  subgraph sub_0[\"Sub-topology 0 (3 partitions)\"]\n",
           "  subgraph sub_2[\"Sub-topology 2 (6 partitions)\"]\n",
           "    n_order[\"order (aggregate)\"];\n",
           "    n_product_totals_repartition[\"product_totals "
           "(repartition)\"];\n",
           "    n_product_totals[\"product_totals (projection)\"];\n",
           "    s_order_aggregates[(\"order-aggregates\")];\n",
           "    s_product_totals[(\"product_totals\")];\n",
       }) {
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  }
  MermaidGraph g = ParseMermaid(m);
  EXPECT_TRUE(g.unparsed.empty())
      << ::testing::PrintToString(g.unparsed) << "\n"
      << m;
  static const std::regex kSafe("[A-Za-z0-9_]+");
  for (const std::string& id : g.defined) {
    EXPECT_TRUE(std::regex_match(id, kSafe)) << id;
  }
  EXPECT_EQ(
      g.edges,
      (std::set<std::string>{
          "t_orders_commands -->|commands| n_order",
          "n_order -->|events| t_orders_events",
          "n_order -->|rejections| t_orders_rejections",
          "n_order -.->|dead letters| t_orders_dlq",
          "n_order <-->|state| s_order_aggregates",
          "t_orders_events -->|events| n_orders",
          "n_orders -->|update| s_orders",
          "n_orders -.->|dead letters| t_orders_dlq",
          "t_orders_events -->|events| n_product_totals_repartition",
          "n_product_totals_repartition -->|re-keyed events| "
          "t_orders_product_totals_repartition",
          "n_product_totals_repartition -.->|dead letters| t_orders_dlq",
          "t_orders_product_totals_repartition -->|events| n_product_totals",
          "n_product_totals -->|update| s_product_totals",
          "n_product_totals -.->|dead letters| t_orders_dlq",
      }))
      << m;
}

TEST(DescribeTest, MermaidBeforeThePartitionsAreKnownLeavesThemOut) {
  auto t = CompileOrders();
  ASSERT_NE(t, nullptr);
  std::string m = Describe(*t, DescribeFormat::kMermaid);
  EXPECT_NE(m.find("  subgraph sub_0[\"Sub-topology 0\"]\n"), std::string::npos)
      << m;
  EXPECT_EQ(m.find(" partition"), std::string::npos) << m;
}

TEST(DescribeTest, MermaidIdsStayUniqueWhenNamesSanitiseAlike) {
  config::LoadOptions load;
  auto options = config::LoadEngineOptionsFromString(R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
aggregates:
  order:
    command_topics: [a.b, a-b]
    event_topic: a_b
    rejection_topic: rejections
    store: s
    commands:
      Create:
        emit:
          - type: Created
            with: {id: command.id}
)",
                                                     "t.yaml", load);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto t = CompiledTopology::Compile(*options);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  MermaidGraph g = ParseMermaid(Describe(**t, DescribeFormat::kMermaid));
  EXPECT_TRUE(g.unparsed.empty()) << ::testing::PrintToString(g.unparsed);
  EXPECT_TRUE(g.edges.count("t_a_b -->|commands| n_order"))
      << ::testing::PrintToString(g.edges);
  EXPECT_TRUE(g.edges.count("t_a_b_2 -->|commands| n_order"))
      << ::testing::PrintToString(g.edges);
  EXPECT_TRUE(g.edges.count("n_order -->|events| t_a_b_3"))
      << ::testing::PrintToString(g.edges);
}

TEST(DescribeTest, DescribeOptionsResolvesTheDeclaredPartitionCounts) {
  auto json_text = DescribeOptions(LoadOrders(), DescribeFormat::kJson);
  ASSERT_TRUE(json_text.ok()) << json_text.status().ToString();
  json doc = json::parse(*json_text);
  std::vector<json> partitions;
  for (const json& st : doc["subtopologies"])
    partitions.push_back(st["partitions"]);
  // orders.* are declared with 3; the repartition topic takes its producer's.
  EXPECT_EQ(partitions, (std::vector<json>{3, 3, 3})) << doc.dump(2);

  EngineOptions bad = LoadOrders();
  bad.topology.aggregates[0].store = "orders";  // owned by the projection too
  auto refused = DescribeOptions(bad, DescribeFormat::kText);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsInvalidArgument())
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("store 'orders' is already used"),
            std::string::npos)
      << refused.status().message();
}

TEST(DescribeTest, ParsesFormatNames) {
  EXPECT_EQ(ParseDescribeFormat("text"), DescribeFormat::kText);
  EXPECT_EQ(ParseDescribeFormat("json"), DescribeFormat::kJson);
  EXPECT_EQ(ParseDescribeFormat("mermaid"), DescribeFormat::kMermaid);
  EXPECT_EQ(ParseDescribeFormat("dot"), std::nullopt);
}

}  // namespace
}  // namespace kcqrs::engine
