#include "engine/processors/processors.h"

#include <nlohmann/json.hpp>

#include "engine/processors/aggregate_document.h"
#include "engine/codec/headers.h"
#include "engine/codec/json_codec.h"
#include "engine/codec/partitioner.h"
#include "engine/graph/processor_registry.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using nlohmann::json;

std::string_view TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

// Parses a record value as a JSON object within `limits` (a value over
// them is refused before anything deep is built); the error says what was
// wrong and where, and the record goes to the dead-letter topic with it.
Result<json> ParseObject(const Record& r, std::string_view what, const JsonLimits& limits) {
  if (!r.value) {
    return Status::InvalidArgument(std::string(what) + " has no value (a tombstone)");
  }
  Result<json> j = ParseJson(*r.value, limits);
  if (!j.ok()) {
    const std::string why = j.status().message();
    // "the command is not valid JSON: parse error at ...", "the command:
    // nesting deeper than 64 levels at byte 1234 (limits.max_json_depth)".
    if (why.rfind("not valid JSON", 0) == 0) {
      return Status::InvalidArgument(std::string(what) + " is " + why);
    }
    return Status::InvalidArgument(std::string(what) + ": " + why);
  }
  if (!j->is_object()) {
    return Status::InvalidArgument(std::string(what) + ": expected a JSON object, found " +
                                   std::string(TypeName(*j)));
  }
  return j;
}

// The `meta` root of expressions and the third argument of Lua snippets.
json Meta(const Record& r) {
  json m = json::object();
  m["topic"] = r.topic;
  m["partition"] = r.partition;
  m["offset"] = r.offset;
  m["timestamp"] = r.timestamp_ms;
  m["key"] = r.key ? json(*r.key) : json(nullptr);
  return m;
}

// A string field, or nullopt when absent or not a string.
const std::string* StringField(const json& obj, const std::string& name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// An event: a JSON object with a string type field, both held by the
// task's ParsedRecord.
struct TypedEvent {
  const json* value;
  const std::string* type;
};

Result<TypedEvent> ParseEvent(const Record& r, const std::string& type_field,
                              ParsedRecord* parsed) {
  const Result<json>& doc = parsed->Get(r, "the event");
  if (!doc.ok()) return doc.status();
  const std::string* type = StringField(*doc, type_field);
  if (type == nullptr) {
    return Status::InvalidArgument("the event has no '" + type_field +
                                   "' field (a string naming the event type)");
  }
  return TypedEvent{&*doc, type};
}

Status EvaluateFields(const CompiledFields& fields, const topology::Expression::Context& ctx,
                      const std::string& what, json* out) {
  for (const auto& [name, expr] : fields) {
    auto v = expr.Evaluate(ctx);
    if (!v.ok()) return v.status().WithContext(what + "." + name);
    (*out)[name] = std::move(v).value();
  }
  return Status::OK();
}

// Applies an evolve or projection update to `doc`; null means deleted.
// Takes `doc` by value so that a merge changes it rather than a copy.
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

std::optional<std::string> KeyString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  return std::nullopt;
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

bool FieldsUseRoot(const CompiledFields& fields, size_t root) {
  for (const auto& [name, expr] : fields) {
    if (expr.UsesRoot(root)) return true;
  }
  return false;
}

// Whether an evolve or projection update reads `meta` (root 2).
bool UpdateUsesMeta(const CompiledUpdate& u, const CompiledTopology& topology) {
  if (u.kind == UpdateSpec::Kind::kLua) return LuaSeesMeta(topology, u.lua);
  return FieldsUseRoot(u.fields, 2);
}

bool DecideUsesMeta(const CompiledDecide& d, const CompiledTopology& topology) {
  if (d.lua >= 0) return LuaSeesMeta(topology, d.lua);
  for (const CompiledRequire& req : d.require) {
    if (req.that.UsesRoot(2)) return true;
    for (const topology::Expression& e : req.reason.expressions()) {
      if (e.UsesRoot(2)) return true;
    }
  }
  for (const CompiledEmit& emit : d.emit) {
    if (FieldsUseRoot(emit.fields, 2)) return true;
  }
  return false;
}

// The rules for one event type of an aggregate or projection, looked up once
// per event, with what the hot path needs at hand.
struct UpdateRules {
  const CompiledUpdate* update = nullptr;
  std::string what;  // "order.events.OrderCreated", for errors
  bool uses_meta = false;
};

std::map<std::string, UpdateRules, std::less<>> MakeUpdateRules(
    const std::map<std::string, CompiledUpdate, std::less<>>& updates, const std::string& owner,
    const CompiledTopology& topology) {
  std::map<std::string, UpdateRules, std::less<>> out;
  for (const auto& [type, update] : updates) {
    out[type] = UpdateRules{&update, owner + ".events." + type, UpdateUsesMeta(update, topology)};
  }
  return out;
}

// The record's meta document, built on first use only.
class LazyMeta {
 public:
  explicit LazyMeta(const Record& r) : r_(r) {}
  const json& Get(bool needed) {
    if (!needed) return null_;
    if (!built_) {
      meta_ = Meta(r_);
      built_ = true;
    }
    return meta_;
  }

 private:
  const Record& r_;
  const json null_;
  json meta_;
  bool built_ = false;
};

class CommandHandler final : public Processor {
 public:
  CommandHandler(const CompiledAggregate& aggregate, const CompiledTopology& topology,
                 LuaFunctions* lua, metrics::Metrics* metrics)
      : agg_(aggregate),
        spec_(aggregate.spec),
        topology_(topology),
        lua_(lua),
        metrics_(metrics),
        limits_(topology.json_limits()),
        evolve_(MakeUpdateRules(aggregate.events, aggregate.spec.name, topology)) {
    for (const auto& [type, decide] : aggregate.commands) {
      commands_[type] =
          CommandRules{&decide, spec_.name + "." + type, DecideUsesMeta(decide, topology)};
    }
  }

  Status Init(ProcessorContext& ctx) override {
    store_ = ctx.GetStateStore(spec_.store);
    if (store_ == nullptr) return Status::Internal("store " + spec_.store + " is not connected");
    return Status::OK();
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto parsed = ParseObject(r, "the command", limits_);
    if (!parsed.ok()) return parsed.status();
    const json& command = *parsed;
    const std::string* type = StringField(command, spec_.type_field);
    if (type == nullptr) {
      return Status::InvalidArgument("the command has no '" + spec_.type_field +
                                     "' field (a string naming the command type)");
    }
    auto rules = commands_.find(*type);
    if (rules == commands_.end()) {
      return Status::InvalidArgument("unknown command type '" + *type + "' for aggregate '" +
                                     spec_.name + "' (known: " + agg_.command_types + ")");
    }
    auto id = AggregateId(r, command);
    if (!id.ok()) return id.status();
    if (!util::IsValidUtf8(*id)) {
      return Status::InvalidArgument("the aggregate id is not valid UTF-8 (aggregate " +
                                     spec_.name + "); ids travel in JSON events and headers");
    }
    // One aggregate, one partition, one writer: a command decided anywhere
    // else would be decided against state that is not the aggregate's.
    const int partitions = topology_.partitions(r.topic);
    if (partitions > 0) {
      const int32_t owner = PartitionForKey(*id, partitions);
      if (owner != r.partition) return Misrouted(r, *id, owner, ctx);
    }
    std::string command_id;
    if (const std::string* cid = StringField(command, spec_.command_id_field)) command_id = *cid;

    auto stored = store_->Get(*id);
    if (!stored.ok()) return stored.status();
    std::optional<AggregateDocument> loaded;
    if (stored->has_value()) {
      loaded = AggregateDocument::FromStored(std::move(**stored));
      if (!loaded) {
        return Status::Corruption("the stored state of " + spec_.name + " '" + *id +
                                  "' is not valid JSON");
      }
    } else {
      loaded.emplace();
    }
    AggregateDocument& aggregate = *loaded;
    if (!command_id.empty() && aggregate.HasOutcome(command_id)) {
      Counted(*type).duplicate.Increment();
      return Status::OK();  // a retry: its outcome is already out
    }

    LazyMeta meta(r);
    json& state = aggregate.state();
    Decision decision;
    const std::string& what = rules->second.what;
    KCQRS_RETURN_IF_ERROR(Decide(*rules->second.decide, command, state,
                                 meta.Get(rules->second.uses_meta), r.timestamp_ms, what, lua_,
                                 &decision));
    std::vector<json>& events = decision.events;
    std::optional<std::pair<std::string, std::string>>& rejection = decision.rejection;

    json outcome = json::object();
    outcome["id"] = command_id;
    // The headers of every output: these, then its type (and version).
    auto headers_for = [&](const std::string& output_type) {
      std::vector<Header> h;
      h.reserve(6);
      h.push_back({headers::kAggregate, spec_.name});
      h.push_back({headers::kAggregateId, *id});
      h.push_back({headers::kCommandType, *type});
      if (!command_id.empty()) h.push_back({headers::kCommandId, command_id});
      h.push_back({headers::kType, output_type});
      return h;
    };

    if (rejection) {
      json value = {{"commandId", command_id}, {"commandType", *type},
                    {"aggregate", spec_.name}, {"aggregateId", *id},
                    {"code", rejection->first}, {"reason", rejection->second},
                    {"timestamp", r.timestamp_ms}};
      KCQRS_RETURN_IF_ERROR(ctx.Send(spec_.rejection_topic, *id, DumpJson(value),
                                     headers_for("Rejected")));
      outcome["rejected"] = {{"code", rejection->first}, {"reason", rejection->second}};
      Rejected(*type, rejection->first).Increment();
    } else {
      int64_t version = aggregate.version();
      for (json& event : events) {
        ++version;
        const std::string& etype = event["type"].get_ref<const std::string&>();
        if (auto evolve = evolve_.find(etype); evolve != evolve_.end()) {
          const UpdateRules& u = evolve->second;
          auto next = ApplyUpdate(*u.update, std::move(state), event, meta.Get(u.uses_meta),
                                  r.timestamp_ms, lua_, u.what);
          if (!next.ok()) return next.status();
          state = std::move(next).value();
        }
        std::vector<Header> h = headers_for(etype);
        h.push_back({headers::kVersion, std::to_string(version)});
        KCQRS_RETURN_IF_ERROR(ctx.Send(spec_.event_topic, *id, DumpJson(event), std::move(h)));
      }
      aggregate.set_version(version);
      outcome["events"] = std::move(events);
      Counted(*type).accepted.Increment();
    }
    if (!command_id.empty() && spec_.dedup_window > 0) {
      aggregate.AppendOutcome(outcome, static_cast<size_t>(spec_.dedup_window));
    }
    return store_->Put(*id, aggregate.Serialize());
  }

 private:
  // Metric handles per command type (and rejection code), made on first use
  // and kept: looking them up locks.
  struct TypeCounters {
    metrics::Counter accepted;
    metrics::Counter duplicate;
  };
  TypeCounters& Counted(const std::string& type) {
    auto it = counters_.find(type);
    if (it == counters_.end()) {
      TypeCounters c;
      if (metrics_ != nullptr) {
        c.accepted = metrics_->CommandsAccepted(spec_.name, type);
        c.duplicate = metrics_->CommandsDuplicate(spec_.name, type);
      }
      it = counters_.emplace(type, c).first;
    }
    return it->second;
  }
  metrics::Counter& Rejected(const std::string& type, const std::string& code) {
    auto key = std::make_pair(type, code);
    auto it = rejected_.find(key);
    if (it == rejected_.end()) {
      metrics::Counter c;
      if (metrics_ != nullptr) c = metrics_->CommandsRejected(spec_.name, type, code);
      it = rejected_.emplace(key, c).first;
    }
    return it->second;
  }

  // A command on the wrong partition: forwarded to its aggregate's
  // partition of the same topic (keyed by the aggregate id, so that it stays
  // there), or dead-lettered, as the topology says.
  Status Misrouted(const Record& r, const std::string& id, int32_t owner,
                   ProcessorContext& ctx) {
    const bool forward = spec_.misrouted_commands == AggregateSpec::Misrouted::kForward;
    if (metrics_ != nullptr) {
      auto& c = forward ? forwarded_ : misrouted_dead_;
      if (!c) c = metrics_->CommandsMisrouted(spec_.name, forward ? "forwarded" : "dead_lettered");
      c->Increment();
    }
    if (!forward) {
      return Status::InvalidArgument(
          "the command for " + spec_.name + " '" + id + "' is on partition " +
          std::to_string(r.partition) + " but its aggregate id hashes (murmur2) to partition " +
          std::to_string(owner) + ": produce with the aggregate id as key and a murmur2 "
          "partitioner (librdkafka: partitioner=murmur2_random)");
    }
    std::vector<Header> h = r.headers;
    h.push_back({headers::kForwardedFrom,
                 r.topic + "-" + std::to_string(r.partition) + "@" + std::to_string(r.offset)});
    return ctx.Send(r.topic, id, r.value, std::move(h));
  }

  Result<std::string> AggregateId(const Record& r, const json& command) const {
    if (spec_.id_field.empty()) {
      if (!r.key || r.key->empty()) {
        return Status::InvalidArgument(
            "missing aggregate id: the command has no key (aggregate " + spec_.name +
            " takes its id from the record key)");
      }
      return *r.key;
    }
    auto it = command.find(spec_.id_field);
    std::optional<std::string> id;
    if (it != command.end()) id = KeyString(*it);
    if (!id || id->empty()) {
      return Status::InvalidArgument("missing aggregate id: the command has no '" +
                                     spec_.id_field + "' field (a string)");
    }
    if (r.key && *r.key != *id) {
      return Status::InvalidArgument(
          "the record key '" + *r.key + "' is not the aggregate id '" + *id + "' (field " +
          spec_.id_field + "): commands of one aggregate must have its id as key, so that "
          "they land in one partition");
    }
    return *id;
  }

  // The rules for one command type.
  struct CommandRules {
    const CompiledDecide* decide = nullptr;
    std::string what;  // "order.CreateOrder", for errors
    bool uses_meta = false;
  };

  const CompiledAggregate& agg_;
  const AggregateSpec& spec_;
  const CompiledTopology& topology_;
  std::optional<metrics::Counter> forwarded_;
  std::optional<metrics::Counter> misrouted_dead_;
  LuaFunctions* lua_;
  metrics::Metrics* metrics_;
  const JsonLimits limits_;
  std::map<std::string, CommandRules, std::less<>> commands_;
  std::map<std::string, UpdateRules, std::less<>> evolve_;
  std::map<std::string, TypeCounters, std::less<>> counters_;
  std::map<std::pair<std::string, std::string>, metrics::Counter> rejected_;
  KeyValueStore* store_ = nullptr;
};

class Projection final : public Processor {
 public:
  Projection(const CompiledProjection& projection, const CompiledTopology& topology,
             LuaFunctions* lua, ParsedRecord* parsed)
      : proj_(projection),
        lua_(lua),
        parsed_(parsed),
        rules_(MakeUpdateRules(projection.events, projection.spec.name, topology)) {}

  Status Init(ProcessorContext& ctx) override {
    store_ = ctx.GetStateStore(proj_.spec.store);
    if (store_ == nullptr) return Status::Internal("store " + proj_.spec.store + " is not connected");
    return Status::OK();
  }

  Status Process(const Record& r, ProcessorContext&) override {
    auto parsed = ParseEvent(r, proj_.spec.type_field, parsed_);
    if (!parsed.ok()) return parsed.status();
    const json& event = *parsed->value;
    const std::string* type = parsed->type;
    auto handler = rules_.find(*type);
    if (handler == rules_.end()) return Status::OK();  // not this view's concern
    if (!r.key) {
      return Status::InvalidArgument("the event has no key: projection " + proj_.spec.name +
                                     " keys its view by the event key");
    }
    auto stored = store_->Get(*r.key);
    if (!stored.ok()) return stored.status();
    json view;  // null when absent
    if (stored->has_value()) {
      view = ParseJson(**stored);
      if (view.is_discarded()) {
        return Status::Corruption("the stored view " + proj_.spec.store + " '" + *r.key +
                                  "' is not valid JSON");
      }
    }
    LazyMeta meta(r);
    const UpdateRules& u = handler->second;
    auto next = ApplyUpdate(*u.update, std::move(view), event, meta.Get(u.uses_meta),
                            r.timestamp_ms, lua_, u.what);
    if (!next.ok()) return next.status();
    if (next->is_null()) return store_->Delete(*r.key);
    return store_->Put(*r.key, DumpJson(*next));
  }

 private:
  const CompiledProjection& proj_;
  LuaFunctions* lua_;
  ParsedRecord* parsed_;
  const std::map<std::string, UpdateRules, std::less<>> rules_;
  KeyValueStore* store_ = nullptr;
};

class Repartition final : public Processor {
 public:
  Repartition(const CompiledProjection& projection, ParsedRecord* parsed)
      : proj_(projection), parsed_(parsed), key_uses_meta_(projection.key->UsesRoot(1)) {}

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto parsed = ParseEvent(r, proj_.spec.type_field, parsed_);
    if (!parsed.ok()) return parsed.status();
    const json& event = *parsed->value;
    const std::string* type = parsed->type;
    // Only the events the view folds travel through the repartition topic.
    if (!proj_.events.count(*type)) return Status::OK();
    LazyMeta meta(r);
    const json* roots[] = {&event, &meta.Get(key_uses_meta_)};
    auto key = proj_.key->Evaluate(topology::Expression::Context{roots, 2, r.timestamp_ms});
    if (!key.ok()) return key.status().WithContext(proj_.spec.name + ".key");
    std::optional<std::string> k = KeyString(*key);
    if (!k) {
      return Status::InvalidArgument(proj_.spec.name + ".key: '" + proj_.key->text() +
                                     "' is " + std::string(TypeName(*key)) + " for event " +
                                     *type + "; a view key must be a string or an integer");
    }
    return ctx.Send(proj_.repartition_topic, *k, *r.value, r.headers);
  }

 private:
  const CompiledProjection& proj_;
  ParsedRecord* parsed_;
  const bool key_uses_meta_;
};

// Stateless filter and reshape of JSON records.
class Transform final : public Processor {
 public:
  Transform(const CompiledTransform& transform, const JsonLimits& limits)
      : tr_(transform), limits_(limits) {
    auto uses_meta = [](const topology::Expression& e) { return e.UsesRoot(1); };
    needs_meta_ = (tr_.filter && uses_meta(*tr_.filter)) || (tr_.key && uses_meta(*tr_.key));
    for (const auto& field : tr_.value) needs_meta_ = needs_meta_ || uses_meta(field.second);
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto parsed = ParseObject(r, "the record", limits_);
    if (!parsed.ok()) return parsed.status();
    const json& record = *parsed;
    // `meta` is built only when an expression reads it: it is most of the
    // per-record cost of a simple filter otherwise.
    json meta = needs_meta_ ? Meta(r) : json(nullptr);
    const json* roots[] = {&record, &meta};
    const topology::Expression::Context ectx{roots, 2, r.timestamp_ms};
    if (tr_.filter) {
      auto pass = tr_.filter->EvaluateBool(ectx);
      if (!pass.ok()) return pass.status().WithContext(tr_.spec.name + ".filter");
      if (!*pass) return Status::OK();
    }
    std::optional<std::string> key = r.key;
    if (tr_.key) {
      auto k = tr_.key->Evaluate(ectx);
      if (!k.ok()) return k.status().WithContext(tr_.spec.name + ".key");
      key = KeyString(*k);
      if (!key) {
        return Status::InvalidArgument(tr_.spec.name + ".key: '" + tr_.key->text() + "' is " +
                                       std::string(TypeName(*k)) +
                                       "; a key must be a string or an integer");
      }
    }
    if (tr_.value.empty()) return ctx.Send(tr_.spec.to, std::move(key), r.value, r.headers);
    json out = json::object();
    KCQRS_RETURN_IF_ERROR(EvaluateFields(tr_.value, ectx, tr_.spec.name + ".value", &out));
    return ctx.Send(tr_.spec.to, std::move(key), DumpJson(out), r.headers);
  }

 private:
  const CompiledTransform& tr_;
  const JsonLimits limits_;
  bool needs_meta_ = false;
};

}  // namespace

Status Decide(const CompiledDecide& d, const json& command, const json& state,
              const json& meta, int64_t now_ms, const std::string& what, LuaFunctions* lua,
              Decision* out) {
  if (d.lua >= 0) {
    // Arguments in DecideRoots() order: command, state, meta.
    auto r = lua->Call(d.lua, {&command, &state, &meta}, now_ms);
    if (!r.ok()) return r.status().WithContext(what);
    // nil, or an empty table: accepted, nothing happened.
    if (r->is_null() || (r->is_structured() && r->empty())) return Status::OK();
    if (r->is_object()) {
      auto rej = r->find("$reject");
      if (rej != r->end() && rej->is_object()) {
        const std::string* code = StringField(*rej, "code");
        const std::string* reason = StringField(*rej, "reason");
        out->rejection = std::make_pair(code ? *code : std::string("rejected"),
                                    reason ? *reason : std::string());
        return Status::OK();
      }
      // A single event table is accepted as a list of one.
      if (StringField(*r, "type") != nullptr) {
        out->events.push_back(std::move(r).value());
        return Status::OK();
      }
    }
    if (!r->is_array()) {
      return Status::InvalidArgument(
          what + ": the Lua snippet returned " + std::string(TypeName(*r)) +
          "; expected a list of events ({type = ...}) or reject(code, reason)");
    }
    for (json& e : *r) {
      if (!e.is_object() || StringField(e, "type") == nullptr) {
        return Status::InvalidArgument(what + ": every event the Lua snippet returns must "
                                              "be a table with a string 'type'");
      }
      out->events.push_back(std::move(e));
    }
    return Status::OK();
  }
  const json* roots[] = {&command, &state, &meta};
  topology::Expression::Context ctx{roots, 3, now_ms};
  for (size_t i = 0; i < d.require.size(); ++i) {
    const CompiledRequire& req = d.require[i];
    auto ok = req.that.EvaluateBool(ctx);
    if (!ok.ok()) {
      return ok.status().WithContext(what + ".require[" + std::to_string(i) + "]");
    }
    if (!*ok) {
      auto reason = req.reason.Render(ctx);
      if (!reason.ok()) return reason.status().WithContext(what + ".reason");
      out->rejection = std::make_pair(req.code, std::move(reason).value());
      return Status::OK();
    }
  }
  for (size_t i = 0; i < d.emit.size(); ++i) {
    json event = json::object();
    event["type"] = d.emit[i].type;
    KCQRS_RETURN_IF_ERROR(EvaluateFields(d.emit[i].fields, ctx,
                                         what + ".emit[" + std::to_string(i) + "]", &event));
    out->events.push_back(std::move(event));
  }
  return Status::OK();
}

const Result<json>& ParsedRecord::Get(const Record& r, std::string_view what) {
  if (record_ != &r || what_ != what || !value_) {
    value_ = ParseObject(r, what, limits_);
    record_ = &r;
    what_ = what;
  }
  return *value_;
}

Result<std::unique_ptr<Processor>> MakeProcessor(const Node& node,
                                                 const CompiledTopology& topology,
                                                 LuaFunctions* lua, metrics::Metrics* metrics,
                                                 ParsedRecord* parsed) {
  const auto index = static_cast<size_t>(node.index);
  switch (node.kind) {
    case NodeKind::kAggregate:
      return std::unique_ptr<Processor>(new CommandHandler(topology.aggregates()[index], topology, lua, metrics));
    case NodeKind::kProjection:
      return std::unique_ptr<Processor>(new Projection(topology.projections()[index], topology, lua, parsed));
    case NodeKind::kRepartition:
      return std::unique_ptr<Processor>(new Repartition(topology.projections()[index], parsed));
    case NodeKind::kTransform:
      return std::unique_ptr<Processor>(new Transform(topology.transforms()[index], topology.json_limits()));
    case NodeKind::kCustom: {
      const CustomProcessorSpec& spec = topology.custom()[index];
      auto factory = FindProcessor(spec.processor);
      if (!factory) {
        return Status::NotFound("no C++ processor is registered as '" + spec.processor + "'");
      }
      std::unique_ptr<Processor> p;
      try {
        p = (*factory)(spec.config);
      } catch (const std::exception& e) {
        return Status::InvalidArgument("the C++ processor '" + spec.processor +
                                       "' rejected its configuration: " + e.what());
      } catch (...) {
        return Status::InvalidArgument("the C++ processor '" + spec.processor +
                                       "' threw an exception that is not a std::exception");
      }
      if (!p) return Status::Internal("the factory of '" + spec.processor + "' returned null");
      return p;
    }
  }
  return Status::Internal("unknown node kind");
}

}  // namespace kcqrs::engine
