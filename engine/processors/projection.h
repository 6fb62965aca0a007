// The projection: folds events into a read-model store (the query side).
#ifndef KCQRS_ENGINE_PROCESSORS_PROJECTION_H_
#define KCQRS_ENGINE_PROCESSORS_PROJECTION_H_

#include <memory>

#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

class ParsedRecord;

// The processor folding `projection`'s events into its store, keyed by the
// event key. `lua` and `parsed` (the task's) must outlive it.
std::unique_ptr<Processor> MakeProjection(const CompiledProjection& projection,
                                          const CompiledTopology& topology, LuaFunctions* lua,
                                          ParsedRecord* parsed);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_PROJECTION_H_
