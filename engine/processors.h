// The built-in processors a declarative topology compiles into:
//   CommandHandler  decide + evolve for one aggregate (the command side)
//   Projection      fold events into a read-model store (the query side)
//   Repartition     re-key events for a projection keyed differently
// Each is created per task and used by the stream thread owning the task.
#ifndef KCQRS_ENGINE_PROCESSORS_H_
#define KCQRS_ENGINE_PROCESSORS_H_

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

// What deciding one command came to: the events to emit (each an object
// with a string "type"), or a rejection (code, reason).
struct Decision {
  std::vector<nlohmann::json> events;
  std::optional<std::pair<std::string, std::string>> rejection;
};

// The decide step of the command handler, on its own so that it can be
// measured (bench/micro): runs the declarative require/emit rules or the Lua
// snippet of `decide` against `command` and `state` (null for a new
// aggregate). `meta` is the record's meta document (topic, partition,
// offset, timestamp, key); `what` ("order.CreateOrder") prefixes errors.
// `lua` may be null when `decide` has no Lua snippet.
Status Decide(const CompiledDecide& decide, const nlohmann::json& command,
              const nlohmann::json& state, const nlohmann::json& meta, int64_t now_ms,
              const std::string& what, LuaFunctions* lua, Decision* out);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_H_
