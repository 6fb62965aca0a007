// The built-in processors a declarative topology compiles into, one file
// each, and the one factory the runtime makes a node's processor with:
//   CommandHandler  decide + evolve for one aggregate (command_handler.h)
//   Projection      fold events into a read-model store (projection.h)
//   Repartition     re-key events for a projection keyed differently
//                   (repartition.h)
//   Transform       stateless filter and reshape (transform.h)
//   custom          C++ processors registered by name (custom.h)
//   ProcessManager  react to events with commands and deadlines, and its
//                   Correlation (process_manager.h)
// Each is created per task and used by the stream thread owning the task.
#ifndef KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_
#define KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_

#include <memory>
#include <set>
#include <string>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/processors/command_handler.h"  // Decide, for bench/micro
#include "engine/processors/lua_functions.h"
#include "engine/processors/parsed_record.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// Makes the processor for `node`. `lua` (owned by the stream thread),
// `metrics` (nullable) and `parsed` (the task's) must outlive it. Custom
// nodes come from the registry.
Result<std::unique_ptr<Processor>> MakeProcessor(const Node& node,
                                                 const CompiledTopology& topology,
                                                 LuaFunctions* lua, metrics::Metrics* metrics,
                                                 ParsedRecord* parsed);

// The source topics none of whose processors reads a record's headers, so
// that the consumer may leave them out (kafka::Consumer::SkipHeaders): a
// projection and the repartition in front of it read them only through
// `meta` (the event's version), which the compiler knows. A command handler
// copies a process manager's headers onto its outputs and forwards a
// misrouted command with its headers, and every other kind may read them:
// their topics keep them.
std::set<std::string> TopicsReadWithoutHeaders(const CompiledTopology& topology);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_
