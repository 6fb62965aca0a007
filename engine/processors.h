// The built-in processors a declarative topology compiles into:
//   CommandHandler  decide + evolve for one aggregate (the command side)
//   Projection      fold events into a read-model store (the query side)
//   Repartition     re-key events for a projection keyed differently
// Each is created per task and used by the stream thread owning the task.
#ifndef KCQRS_ENGINE_PROCESSORS_H_
#define KCQRS_ENGINE_PROCESSORS_H_

#include <memory>

#include "engine/compiled_topology.h"
#include "engine/lua_functions.h"
#include "engine/metrics/metrics.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// Makes the processor for `node`. `lua` (owned by the stream thread) and
// `metrics` (nullable) must outlive it. Custom nodes come from the registry.
Result<std::unique_ptr<Processor>> MakeProcessor(const Node& node,
                                                 const CompiledTopology& topology,
                                                 LuaFunctions* lua, metrics::Metrics* metrics);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_H_
