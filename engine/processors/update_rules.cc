#include "engine/processors/update_rules.h"

#include <cstddef>
#include <utility>
#include <vector>

#include "engine/codec/json_codec.h"
#include "engine/processors/parsed_record.h"

namespace kcqrs::engine {

using json = kcqrs::Json;

Status EvaluateFields(const CompiledFields& fields, const topology::Expression::Context& ctx,
                      const std::string& what, json* out) {
  const bool was_null = out->is_null();
  if (was_null) *out = json::object();
  if (!out->is_object()) {
    return Status::InvalidArgument(what + ": fields go into an object, not into " +
                                   std::string(TypeName(*out)));
  }
  json::object_t& members = *out->get_ptr<json::object_t*>();
  const size_t before = members.size();
  for (const auto& [name, expr] : fields) {
    auto v = expr.Evaluate(ctx);
    if (!v.ok()) {
      // *out as it was: what was appended is not sorted in.
      members.erase(members.begin() + static_cast<std::ptrdiff_t>(before), members.end());
      if (was_null) *out = nullptr;
      return v.status().WithContext(what + "." + name);
    }
    // Appended, then sorted in once (a field named twice, or one *out
    // has already, takes the last value, as assignment did): a search and
    // a vector insert per field were 40% of this function in callgrind.
    members.AppendUnsorted(name, std::move(v).value());
  }
  members.SortMembers();
  return Status::OK();
}

Result<json> ApplyUpdate(const CompiledUpdate& u, json doc, const json& event,
                         const json& meta, int64_t now_ms, LuaFunctions* lua,
                         const std::string& what) {
  const json* roots[] = {&doc, &event, &meta};
  topology::Expression::Context ctx{roots, 3, now_ms};
  switch (u.kind) {
    case UpdateSpec::Kind::kSet: {
      json out = json::object();
      KCQRS_RETURN_IF_ERROR(EvaluateFields(u.fields, ctx, what, &out));
      return out;
    }
    case UpdateSpec::Kind::kMerge: {
      // Every field reads the document as it was before the merge.
      std::vector<json> values;
      values.reserve(u.fields.size());
      for (const auto& [name, expr] : u.fields) {
        auto v = expr.Evaluate(ctx);
        if (!v.ok()) return v.status().WithContext(what + "." + name);
        values.push_back(std::move(v).value());
      }
      json out = doc.is_object() ? std::move(doc) : json::object();
      for (size_t i = 0; i < values.size(); ++i) out[u.fields[i].first] = std::move(values[i]);
      return out;
    }
    case UpdateSpec::Kind::kDelete:
      return json(nullptr);
    case UpdateSpec::Kind::kLua: {
      auto r = lua->Call(u.lua, {&doc, &event, &meta}, now_ms);
      if (!r.ok()) return r.status().WithContext(what);
      if (!r->is_null() && !r->is_object()) {
        return Status::InvalidArgument(what + ": the Lua snippet returned " +
                                       std::string(TypeName(*r)) +
                                       "; expected a table (the new document) or nil (delete)");
      }
      return std::move(r).value();
    }
  }
  return Status::Internal("unknown update kind");
}

// Whether a Lua snippet can see its `meta` argument: only by that name or
// through the chunk's varargs (the sandbox has no debug library). Passing nil
// to a snippet that cannot see it spares building and converting the table.
bool LuaSeesMeta(const CompiledTopology& topology, int snippet) {
  const std::string& code = topology.lua_snippets()[static_cast<size_t>(snippet)].spec.code;
  if (code.find("...") != std::string::npos) return true;
  auto is_name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t p = code.find("meta"); p != std::string::npos; p = code.find("meta", p + 1)) {
    const bool starts = p == 0 || !is_name_char(code[p - 1]);
    const bool ends = p + 4 == code.size() || !is_name_char(code[p + 4]);
    if (starts && ends) return true;
  }
  return false;
}

namespace {

bool IsLuaNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The fields `name.<field>` that Lua `code` reads of its local `name`; false
// when it may reach that value in any other way (see UpdateEventFields).
bool LuaFieldsOf(std::string_view code, std::string_view name, std::set<std::string>* fields) {
  if (code.find("...") != std::string_view::npos) return false;
  for (size_t p = code.find(name); p != std::string_view::npos; p = code.find(name, p + 1)) {
    const size_t end = p + name.size();
    if (p > 0 && IsLuaNameChar(code[p - 1])) continue;   // "prevent"
    if (end < code.size() && IsLuaNameChar(code[end])) continue;  // "events"
    // `event.` followed by a name, and not `event..` (concatenation).
    if (end + 1 >= code.size() || code[end] != '.' || !IsLuaNameChar(code[end + 1]) ||
        (code[end + 1] >= '0' && code[end + 1] <= '9')) {
      return false;
    }
    size_t q = end + 1;
    while (q < code.size() && IsLuaNameChar(code[q])) ++q;
    fields->emplace(code.substr(end + 1, q - end - 1));
  }
  return true;
}

}  // namespace

bool LuaEventFields(const CompiledTopology& topology, int snippet, std::set<std::string>* fields) {
  return LuaFieldsOf(topology.lua_snippets()[static_cast<size_t>(snippet)].spec.code, "event",
                     fields);
}

bool ExpressionFields(const std::optional<topology::Expression>& e, size_t root,
                      std::set<std::string>* fields) {
  return !e || e->RootFields(root, fields);
}

bool UpdateEventFields(const CompiledUpdate& u, const CompiledTopology& topology,
                       std::set<std::string>* fields) {
  switch (u.kind) {
    case UpdateSpec::Kind::kDelete:
      return true;
    case UpdateSpec::Kind::kLua:
      return LuaEventFields(topology, u.lua, fields);
    case UpdateSpec::Kind::kSet:
    case UpdateSpec::Kind::kMerge:
      for (const auto& [name, expr] : u.fields) {
        if (!expr.RootFields(1, fields)) return false;
      }
      return true;
  }
  return false;
}

EventFieldSelector::EventFieldSelector(const std::set<std::string>& names) : whole_(false) {
  for (const std::string& name : names) fields_.push_back({name, DumpJson(json(name)) + ':'});
}

std::string EventFieldSelector::Select(const json& event, const std::string& text) const {
  // No more members than fields: none left out (or one absent field stands
  // for one unread member, rare enough to send whole).
  if (whole_ || !event.is_object() || event.size() <= fields_.size()) return text;
  std::string out = "{";
  for (const Field& f : fields_) {
    auto it = event.find(f.name);
    if (it == event.end()) continue;
    if (out.size() > 1) out += ',';
    out += f.key;
    AppendJson(*it, &out);
  }
  out += '}';
  return out;
}

bool FieldsUseRoot(const CompiledFields& fields, size_t root) {
  for (const auto& [name, expr] : fields) {
    if (expr.UsesRoot(root)) return true;
  }
  return false;
}

namespace {

// Whether an evolve or projection update reads `meta` (root 2).
bool UpdateUsesMeta(const CompiledUpdate& u, const CompiledTopology& topology) {
  if (u.kind == UpdateSpec::Kind::kLua) return LuaSeesMeta(topology, u.lua);
  return FieldsUseRoot(u.fields, 2);
}

}  // namespace

std::map<std::string, UpdateRules, std::less<>> MakeUpdateRules(
    const std::map<std::string, CompiledUpdate, std::less<>>& updates, const std::string& owner,
    const CompiledTopology& topology) {
  std::map<std::string, UpdateRules, std::less<>> out;
  for (const auto& [type, update] : updates) {
    out[type] = UpdateRules{&update, owner + ".events." + type, UpdateUsesMeta(update, topology)};
  }
  return out;
}

bool ProjectionSeesMeta(const CompiledProjection& projection, const CompiledTopology& topology) {
  for (const auto& [type, rules] :
       MakeUpdateRules(projection.events, projection.spec.name, topology)) {
    if (rules.uses_meta) return true;
  }
  return false;
}

}  // namespace kcqrs::engine
