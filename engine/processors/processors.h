// The built-in processors a declarative topology compiles into:
//   CommandHandler  decide + evolve for one aggregate (the command side)
//   Projection      fold events into a read-model store (the query side)
//   Repartition     re-key events for a projection keyed differently
// Each is created per task and used by the stream thread owning the task.
#ifndef KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_
#define KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "engine/metrics/metrics.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// The value of the record a task is processing, parsed once for all the
// built-in processors of the task that read it (a projection and the
// repartition of another projection read the same event topic). Owned by
// the task, which calls Reset() before each record. Thread-safety: none.
class ParsedRecord {
 public:
  // `limits`: the topology's (CompiledTopology::json_limits()).
  explicit ParsedRecord(JsonLimits limits = {}) : limits_(limits) {}

  void Reset() { record_ = nullptr; }

  // The value of `r` as a JSON object, or why it is not one (`what`, e.g.
  // "the event", names it in the error). Parsed on the first call per record.
  const Result<nlohmann::json>& Get(const Record& r, std::string_view what);

 private:
  const JsonLimits limits_;
  const Record* record_ = nullptr;
  std::string what_;
  std::optional<Result<nlohmann::json>> value_;
};

// Makes the processor for `node`. `lua` (owned by the stream thread),
// `metrics` (nullable) and `parsed` (the task's) must outlive it. Custom
// nodes come from the registry.
Result<std::unique_ptr<Processor>> MakeProcessor(const Node& node,
                                                 const CompiledTopology& topology,
                                                 LuaFunctions* lua, metrics::Metrics* metrics,
                                                 ParsedRecord* parsed);

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

#endif  // KCQRS_ENGINE_PROCESSORS_PROCESSORS_H_
