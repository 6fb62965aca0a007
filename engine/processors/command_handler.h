// The command handler: decide + evolve for one aggregate (the command side),
// with deduplication by command id and the forwarding of commands that
// arrive on a partition other than their aggregate's.
#ifndef KCQRS_ENGINE_PROCESSORS_COMMAND_HANDLER_H_
#define KCQRS_ENGINE_PROCESSORS_COMMAND_HANDLER_H_

#include "json/document.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/processors/lua_functions.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// The handler of `aggregate`. `lua` and `metrics` (nullable) must outlive it.
std::unique_ptr<Processor> MakeCommandHandler(const CompiledAggregate& aggregate,
                                              const CompiledTopology& topology,
                                              LuaFunctions* lua, metrics::Metrics* metrics);

// What deciding one command came to: the events to emit (each an object
// with a string "type"), or a rejection (code, reason).
struct Decision {
  std::vector<kcqrs::Json> events;
  std::optional<std::pair<std::string, std::string>> rejection;
};

// The decide step of the command handler, on its own so that it can be
// measured (bench/micro): runs the declarative require/emit rules or the Lua
// snippet of `decide` against `command` and `state` (null for a new
// aggregate). `meta` is the record's meta document (topic, partition,
// offset, timestamp, key); `what` ("order.CreateOrder") prefixes errors.
// `lua` may be null when `decide` has no Lua snippet.
Status Decide(const CompiledDecide& decide, const kcqrs::Json& command,
              const kcqrs::Json& state, const kcqrs::Json& meta, int64_t now_ms,
              const std::string& what, LuaFunctions* lua, Decision* out);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_COMMAND_HANDLER_H_
