// The rules a topology gives its built-in processors, evaluated: the
// evolve and projection updates (set, merge, delete, Lua), the fields of
// an emit or a transform, and whether a rule reads the record's `meta` (so
// that it is built only then).
#ifndef KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_
#define KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_

#include "json/document.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// Evaluates each field into (*out)[name] (*out an object, or null for a new
// one); errors say `what`.name and leave *out as it was.
Status EvaluateFields(const CompiledFields& fields, const topology::Expression::Context& ctx,
                      const std::string& what, kcqrs::Json* out);

// Applies an evolve or projection update to `doc`; null means deleted.
// Takes `doc` by value so that a merge changes it rather than a copy.
Result<kcqrs::Json> ApplyUpdate(const CompiledUpdate& u, kcqrs::Json doc,
                                const kcqrs::Json& event, const kcqrs::Json& meta,
                                int64_t now_ms, LuaFunctions* lua, const std::string& what);

// Whether a Lua snippet can see its `meta` argument.
bool LuaSeesMeta(const CompiledTopology& topology, int snippet);

// Whether any of `fields` reads expression root `root`.
bool FieldsUseRoot(const CompiledFields& fields, size_t root);

// The top-level fields of the event that an evolve or projection update
// reads (root 1 of its expressions, `event` in its Lua snippet), added to
// *fields; false when it may read others, or the event as a whole. A Lua
// snippet is judged by its text: every mention of `event` must be
// `event.<name>`, and `...` must not appear; `pairs(event)`,
// `event[k]` or `local e = event` make it read the whole event.
bool UpdateEventFields(const CompiledUpdate& u, const CompiledTopology& topology,
                       std::set<std::string>* fields);

// As UpdateEventFields, for a Lua snippet whose event is `event`, or for an
// expression reading root `root`.
bool LuaEventFields(const CompiledTopology& topology, int snippet, std::set<std::string>* fields);
bool ExpressionFields(const std::optional<topology::Expression>& e, size_t root,
                      std::set<std::string>* fields);

// What a repartition sends of an event: the fields its consumer's rules
// read (RootFields, UpdateEventFields), or the whole event.
class EventFieldSelector {
 public:
  // The whole event.
  EventFieldSelector() = default;
  // Just these top-level fields (the type field among them).
  explicit EventFieldSelector(const std::set<std::string>& names);

  // The value to send for `event`, parsed from `text`: `text` itself when
  // nothing would be left out, else the named members of `event` as
  // DumpJson writes an object of just them.
  std::string Select(const kcqrs::Json& event, const std::string& text) const;

 private:
  struct Field {
    std::string name;
    std::string key;  // as written: "\"product\":"
  };
  bool whole_ = true;
  std::vector<Field> fields_;  // sorted by name
};

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

// Whether any of a projection's rules reads `meta` (and so the record's
// headers): the repartition carries headers only then, and only then must
// the consumer read them (TopicsReadWithoutHeaders).
bool ProjectionSeesMeta(const CompiledProjection& projection, const CompiledTopology& topology);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_UPDATE_RULES_H_
