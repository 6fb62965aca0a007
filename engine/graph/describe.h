// Describe: a compiled topology as text, JSON or a Mermaid graph, for
// `kcqrs describe`, GET /topology and the web page (engine/ui_page.h).
//
// The graph is the one CompiledTopology builds (docs/architecture.md, "The
// graph"): nodes with source topics, stores and sink topics, grouped into
// sub-topologies. It may be described before the partition counts are known
// (CompiledTopology::ResolvePartitions not yet called): a count of 0 means
// unknown and is shown as "?" (text), null (JSON) or left out (Mermaid).
//
// kJson, one object (the schema GET /topology serves and the web page reads):
//   {
//     "application": "orders",                 // application.id
//     "subtopologies": [
//       {"id": 0,                              // int, from 0
//        "partitions": 3,                      // int (tasks), or null: unknown
//        "sources": ["orders.commands"],       // topics, sorted
//        "stores": ["order-aggregates"],       // stores, sorted
//        "nodes": [
//          {"name": "order",                   // the aggregate/projection/
//                                              // processor name; a projection
//                                              // keyed differently is two
//                                              // nodes of the same name
//           "kind": "aggregate",               // aggregate | projection |
//                                              // repartition | processor
//           "sources": ["orders.commands"],    // topics read, as declared
//           "stores": ["order-aggregates"],    // stores used
//           "sinks": ["orders.events", "orders.rejections", "orders-dlq"],
//           "parents": ["parse"]}]}],          // processors only, when it has
//                                              // parents (Forward)
//     "stores": [
//       {"name": "order-aggregates",
//        "kind": "rocksdb",                    // rocksdb | memory
//        "changelog": "orders-order-aggregates-changelog"}],
//     "dead_letter_topic": "orders-dlq"        // also a sink of every node
//   }
// Sub-topologies, nodes and stores keep the topology's order; the output is
// deterministic (same topology, same bytes). Compact, no trailing newline.
//
// kText: an indented listing in the manner of Kafka Streams'
// TopologyDescription, one block per sub-topology (sources, processors with
// their stores and successors, sinks), then the stores. Ends with a newline.
//
// kMermaid: "graph TD;" with topics as stadium nodes, processors as
// rectangles (grouped into one subgraph per sub-topology), stores as
// cylinders, and labelled edges; dead-letter edges are dotted. Node ids are
// derived from the names but hold only [A-Za-z0-9_] (topic names contain
// dots and dashes) and are unique; labels are quoted, so it renders on
// GitHub in a ```mermaid block. Ends with a newline.
//
// Thread-safety: pure functions of their arguments.
#ifndef KCQRS_ENGINE_GRAPH_DESCRIBE_H_
#define KCQRS_ENGINE_GRAPH_DESCRIBE_H_

#include <optional>
#include <string>
#include <string_view>

#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class CompiledTopology;

enum class DescribeFormat { kText, kJson, kMermaid };

// "text", "json" or "mermaid"; nullopt for anything else.
std::optional<DescribeFormat> ParseDescribeFormat(std::string_view name);

std::string Describe(const CompiledTopology& topology, DescribeFormat format);

// For `kcqrs describe`, which has no Kafka to ask: compiles `options` and
// resolves the partition counts as if no topic existed yet (the counts the
// file's `topics:` declares, and what kcqrs would create from them). When
// those declarations cannot be resolved, the counts are left unknown.
// Errors: the compiler's InvalidArgument, one "file:line:col: message" a line.
Result<std::string> DescribeOptions(const EngineOptions& options,
                                    DescribeFormat format);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_GRAPH_DESCRIBE_H_
