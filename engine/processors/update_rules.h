// The rules a topology gives its built-in processors, evaluated: the
// evolve and projection updates (set, merge, delete, Lua), the fields of
// an emit or a transform, and whether a rule reads the record's `meta` (so
// that it is built only then).
#ifndef KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_
#define KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// Evaluates each field into (*out)[name]; errors say `what`.name.
Status EvaluateFields(const CompiledFields& fields, const topology::Expression::Context& ctx,
                      const std::string& what, nlohmann::json* out);

// Applies an evolve or projection update to `doc`; null means deleted.
// Takes `doc` by value so that a merge changes it rather than a copy.
Result<nlohmann::json> ApplyUpdate(const CompiledUpdate& u, nlohmann::json doc,
                                   const nlohmann::json& event, const nlohmann::json& meta,
                                   int64_t now_ms, LuaFunctions* lua, const std::string& what);

// Whether a Lua snippet can see its `meta` argument.
bool LuaSeesMeta(const CompiledTopology& topology, int snippet);

// Whether any of `fields` reads expression root `root`.
bool FieldsUseRoot(const CompiledFields& fields, size_t root);

// The rules for one event type of an aggregate or projection, looked up once
// per event, with what the hot path needs at hand.
struct UpdateRules {
  const CompiledUpdate* update = nullptr;
  std::string what;  // "order.events.OrderCreated", for errors
  bool uses_meta = false;
};

// `owner`: the aggregate or projection name, for errors.
std::map<std::string, UpdateRules, std::less<>> MakeUpdateRules(
    const std::map<std::string, CompiledUpdate, std::less<>>& updates, const std::string& owner,
    const CompiledTopology& topology);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_
