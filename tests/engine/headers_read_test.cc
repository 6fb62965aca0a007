// Which source topics the consumer may read without their headers
// (TopicsReadWithoutHeaders, issue 11): only those whose every processor
// is known not to read them. A topic kept by mistake costs CPU; a topic
// skipped by mistake would lose what a rule reads, so each reader is
// checked here.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "config/config_loader.h"
#include "engine/graph/compiled_topology.h"
#include "engine/processors/processors.h"

namespace kcqrs::engine {
namespace {

std::set<std::string> Skipped(const std::string& yaml) {
  auto options = config::LoadEngineOptionsFromString(yaml, "t.yaml", {});
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  if (!options.ok()) return {"<invalid>"};
  auto topology = CompiledTopology::Compile(*options);
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  if (!topology.ok()) return {"<invalid>"};
  return TopicsReadWithoutHeaders(**topology);
}

constexpr char kHead[] = R"(application:
  id: app
kafka:
  bootstrap_servers: embedded
)";

// The orders benchmark's shape: an aggregate, a view keyed by the event key
// and one keyed by a field (a repartition), none reading meta.
constexpr char kOrders[] = R"(aggregates:
  order:
    command_topics: [cmds]
    id_field: orderId
    event_topic: events
    rejection_topic: rejections
    store: orders-agg
    commands:
      Create:
        emit:
          - type: Created
            with: {orderId: command.orderId, product: command.product}
    events:
      Created:
        set: {product: event.product}
projections:
  orders:
    event_topics: [events]
    store: orders
    events:
      Created:
        upsert: {product: event.product}
  totals:
    event_topics: [events]
    store: totals
    key: event.product
    events:
      Created:
        merge:
          orders: coalesce(view.orders, 0) + 1
)";

TEST(HeadersReadTest, ViewsThatDoNotReadMetaLeaveTheirTopicsHeadersUnread) {
  // Commands keep theirs: a misrouted command is forwarded with its headers
  // (misrouted_commands: forward, the default).
  EXPECT_EQ(Skipped(std::string(kHead) + kOrders),
            (std::set<std::string>{"events", "app-totals-repartition"}));
}

TEST(HeadersReadTest, CommandsWithoutForwardingOrProcessManagersSkipTheirsToo) {
  std::string yaml = std::string(kHead) + kOrders;
  yaml.replace(yaml.find("    id_field: orderId\n"), 0, "    misrouted_commands: dead_letter\n");
  EXPECT_EQ(Skipped(yaml), (std::set<std::string>{"cmds", "events", "app-totals-repartition"}));
}

TEST(HeadersReadTest, AViewRuleReadingMetaKeepsItsTopicsHeaders) {
  std::string yaml = std::string(kHead) + kOrders;
  // The event's version comes from its kcqrs.version header.
  yaml.replace(yaml.find("upsert: {product: event.product}"),
               std::string("upsert: {product: event.product}").size(),
               "upsert: {product: event.product, version: meta.version}");
  EXPECT_EQ(Skipped(yaml), (std::set<std::string>{"app-totals-repartition"}));
}

TEST(HeadersReadTest, ARepartitionKeyOrLuaReadingMetaKeepsThem) {
  std::string yaml = std::string(kHead) + kOrders;
  yaml.replace(yaml.find("key: event.product"), std::string("key: event.product").size(),
               "key: meta.key");
  EXPECT_EQ(Skipped(yaml), (std::set<std::string>{"app-totals-repartition"}));

  yaml = std::string(kHead) + kOrders;
  const std::string merge = "        merge:\n          orders: coalesce(view.orders, 0) + 1\n";
  yaml.replace(yaml.find(merge), merge.size(),
               "        lua: |\n          return { orders = meta.offset }\n");
  // The repartition carries the headers to the view, whose Lua sees meta.
  EXPECT_EQ(Skipped(yaml), std::set<std::string>{});
}

TEST(HeadersReadTest, TransformsAndProcessManagersKeepTheirs) {
  std::string yaml = std::string(kHead) + kOrders + R"(transforms:
  copy:
    from: [events]
    to: copied
)";
  EXPECT_EQ(Skipped(yaml), (std::set<std::string>{"app-totals-repartition"}));
}

}  // namespace
}  // namespace kcqrs::engine
