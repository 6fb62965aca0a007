#include "engine/processors/process_manager.h"

#include <charconv>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/codec/headers.h"
#include "engine/codec/json_codec.h"
#include "engine/processors/parsed_record.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

const std::string* HeaderValue(const Record& r, std::string_view key) {
  for (const Header& h : r.headers) {
    if (h.key == key && h.value) return &*h.value;
  }
  return nullptr;
}

// The type of an event the process manager reads: its type field, or, for
// a rejection (which has none), "Rejected" from its kcqrs.type header.
Result<const std::string*> EventType(const Record& r, const json& event,
                                     const std::string& type_field) {
  if (const std::string* t = StringField(event, type_field)) return t;
  if (const std::string* t = HeaderValue(r, headers::kType)) return t;
  return Status::InvalidArgument("the event has no '" + type_field +
                                 "' field (a string naming the event type)");
}

class Correlation final : public Processor {
 public:
  Correlation(const CompiledProcessManager& pm, const CompiledTopology& topology,
              ParsedRecord* parsed)
      : pm_(pm), parsed_(parsed), id_uses_meta_(pm.id && pm.id->UsesRoot(1)) {
    for (const auto& [type, reactions] : pm.events) {
      std::set<std::string> fields = {pm.spec.type_field};
      read_fields_.emplace(type, ReactionsEventFields(reactions, topology, &fields)
                                     ? EventFieldSelector(fields)
                                     : EventFieldSelector());
    }
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    const Result<json>& doc = parsed_->Get(r, "the event");
    if (!doc.ok()) return doc.status();
    auto type = EventType(r, *doc, pm_.spec.type_field);
    if (!type.ok()) return type.status();
    // Only what the process manager reacts to travels on, and of it only
    // the fields its reactions to that type read.
    auto fields = read_fields_.find(**type);
    if (fields == read_fields_.end()) return Status::OK();
    std::optional<std::string> id;
    const std::string* process = HeaderValue(r, headers::kProcess);
    const std::string* process_id = HeaderValue(r, headers::kProcessId);
    if (process != nullptr && process_id != nullptr && *process == pm_.spec.name) {
      id = *process_id;  // an answer to a command this process manager sent
    } else {
      LazyMeta meta(r);
      const json* roots[] = {&*doc, &meta.Get(id_uses_meta_)};
      auto v = pm_.id->Evaluate(topology::Expression::Context{roots, 2, r.timestamp_ms});
      if (!v.ok()) return v.status().WithContext(pm_.spec.name + ".id");
      id = KeyString(*v);
      if (!id || id->empty()) {
        return Status::InvalidArgument(
            "process_managers." + pm_.spec.name + ".id: '" + pm_.id->text() + "' is " +
            (id ? std::string("an empty string") : std::string(TypeName(*v))) + " for event " +
            **type + "; an instance id must be a non-empty string or an integer");
      }
    }
    std::vector<Header> h = r.headers;
    if (HeaderValue(r, headers::kVersion) == nullptr &&
        HeaderValue(r, headers::kSourceTopic) == nullptr) {
      // Not an event of a kcqrs aggregate: its place is what names it, for
      // the command ids derived from it.
      h.push_back({headers::kSourceTopic, r.topic});
      h.push_back({headers::kSourcePartition, std::to_string(r.partition)});
      h.push_back({headers::kSourceOffset, std::to_string(r.offset)});
    }
    return ctx.Send(pm_.repartition_topic, *id, fields->second.Select(*doc, *r.value),
                    std::move(h));
  }

 private:
  // The top-level event fields `reactions` read (root 1 of their
  // expressions, `event` in Lua); false when they may read any.
  static bool ReactionsEventFields(const std::vector<CompiledReaction>& reactions,
                                   const CompiledTopology& topology,
                                   std::set<std::string>* fields) {
    for (const CompiledReaction& r : reactions) {
      if (r.lua >= 0) {
        if (!LuaEventFields(topology, r.lua, fields)) return false;
        continue;
      }
      if (!ExpressionFields(r.when, 1, fields) || !ExpressionFields(r.deadline_ms, 1, fields) ||
          (r.state && !UpdateEventFields(*r.state, topology, fields))) {
        return false;
      }
      for (const CompiledSend& send : r.send) {
        if (!ExpressionFields(send.key, 1, fields)) return false;
        for (const auto& [name, expr] : send.fields) {
          if (!expr.RootFields(1, fields)) return false;
        }
      }
    }
    return true;
  }

  const CompiledProcessManager& pm_;
  ParsedRecord* parsed_;
  const bool id_uses_meta_;
  // Per event type it reacts to (no other): what its reactions read.
  std::map<std::string, EventFieldSelector, std::less<>> read_fields_;
};

// One instance, as stored: {"id", "status", "state", "deadline": {"due",
// "seq"}, "deadlines", "started", "updated", "events"}.
struct Instance {
  json doc;
  bool existed = false;

  json& state() { return doc["state"]; }
  const std::string& status() { return doc["status"].get_ref<const std::string&>(); }
  bool active() { return status() == "active"; }
};

// What a reaction decided, before it is applied.
struct Decision {
  bool run = false;              // a reaction applied
  std::optional<json> state;     // the new state; absent: unchanged
  std::vector<json> commands;    // {topic, key, value}
  ReactionSpec::Deadline deadline = ReactionSpec::Deadline::kKeep;
  std::optional<int64_t> deadline_ms;
  ReactionSpec::End end = ReactionSpec::End::kNo;
};

// Whether any of `reactions` reads `meta` (root 2), so that it is built
// only then, as for projections.
bool ReactionsSeeMeta(const std::vector<CompiledReaction>& reactions,
                      const CompiledTopology& topology) {
  for (const CompiledReaction& r : reactions) {
    if (r.lua >= 0) {
      if (LuaSeesMeta(topology, r.lua)) return true;
      continue;
    }
    if ((r.when && r.when->UsesRoot(2)) || (r.state && FieldsUseRoot(r.state->fields, 2)) ||
        (r.deadline_ms && r.deadline_ms->UsesRoot(2))) {
      return true;
    }
    for (const CompiledSend& s : r.send) {
      if (FieldsUseRoot(s.fields, 2) || (s.key && s.key->UsesRoot(2))) return true;
    }
  }
  return false;
}

class ProcessManager final : public Processor, public TransactionListener {
 public:
  ProcessManager(const CompiledProcessManager& pm, const CompiledTopology& topology,
                 LuaFunctions* lua, metrics::Metrics* metrics, ParsedRecord* parsed)
      : pm_(pm), topology_(topology), lua_(lua), parsed_(parsed) {
    for (const auto& [type, reactions] : pm.events) {
      events_see_meta_ = events_see_meta_ || ReactionsSeeMeta(reactions, topology);
    }
    if (metrics != nullptr) {
      started_ = metrics->ProcessManagerStarted(pm.spec.name);
      completed_ = metrics->ProcessManagerEnded(pm.spec.name, "completed");
      compensated_ = metrics->ProcessManagerEnded(pm.spec.name, "compensated");
      fired_ = metrics->ProcessManagerDeadlinesFired(pm.spec.name);
      active_ = metrics->ProcessManagerActive(pm.spec.name);
    }
  }

  ~ProcessManager() override { active_.Decrement(static_cast<double>(committed_active_)); }

  Status Init(ProcessorContext& ctx) override {
    store_ = ctx.GetStateStore(pm_.spec.store);
    if (store_ == nullptr) {
      return Status::Internal("store " + pm_.spec.store + " is not connected");
    }
    // The instances still active, for the gauge: counted once, then kept
    // up to date as transactions commit.
    int64_t active = 0;
    auto it = store_->Range("", "");
    for (; it->Valid(); it->Next()) {
      json doc = ParseJson(it->value());
      if (doc.is_object() && doc.value("status", "") == "active") ++active;
    }
    KCQRS_RETURN_IF_ERROR(it->status());
    active_.Decrement(static_cast<double>(committed_active_));
    committed_active_ = active;
    active_.Increment(static_cast<double>(committed_active_));
    return Status::OK();
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    record_active_ = 0;  // this record's, whatever the last one did
    const Result<json>& doc = parsed_->Get(r, "the event");
    if (!doc.ok()) return doc.status();
    auto type = EventType(r, *doc, pm_.spec.type_field);
    if (!type.ok()) return type.status();
    auto reactions = pm_.events.find(**type);
    if (reactions == pm_.events.end()) return Status::OK();
    if (!r.key) {
      return Status::InvalidArgument("the event has no key (the instance id) on " + r.topic);
    }
    const std::string& id = *r.key;
    auto instance = Load(id);
    if (!instance.ok()) return instance.status();
    const json meta = events_see_meta_ ? EventMeta(r) : json();
    auto decision = Decide(reactions->second, instance->doc["state"], *doc, meta, r.timestamp_ms);
    if (!decision.ok()) return decision.status();
    if (!decision->run) return Status::OK();  // no case holds: ignored
    const std::string trigger = Trigger(r, **type);
    return Apply(id, std::move(*instance), std::move(*decision), trigger, r.timestamp_ms, ctx);
  }

  Status OnTimer(std::string_view key, int64_t due_ms, ProcessorContext& ctx) override {
    record_active_ = 0;
    const std::string id(key);
    auto instance = Load(id);
    if (!instance.ok()) return instance.status();
    if (!instance->existed) return Status::OK();
    if (!instance->active()) {
      // The retention of an ended instance has passed.
      if (instance->doc.value("expires", int64_t{-1}) == due_ms) return store_->Delete(id);
      return Status::OK();
    }
    auto deadline = instance->doc.find("deadline");
    if (deadline == instance->doc.end() || !deadline->is_object() ||
        deadline->value("due", int64_t{0}) != due_ms) {
      return Status::OK();  // cancelled or moved since (the timer went with it)
    }
    const int64_t seq = deadline->value("seq", int64_t{0});
    instance->doc.erase("deadline");
    fired_.Increment();
    json meta = json::object();
    meta["deadline"] = due_ms;
    meta["key"] = id;
    meta["timestamp"] = due_ms;
    const json null_event;
    Decision decision;
    if (!pm_.on_deadline.empty()) {
      auto d = Decide(pm_.on_deadline, instance->doc["state"], null_event, meta, due_ms);
      if (!d.ok()) return d.status();
      decision = std::move(*d);
    }
    // Even when no case holds, the deadline is gone: the instance is saved.
    decision.run = true;
    return Apply(id, std::move(*instance), std::move(decision),
                 "deadline/" + std::to_string(seq), due_ms, ctx);
  }

  void RecordDropped() override {
    pending_active_ -= record_active_;
    record_active_ = 0;
  }
  void Committed() override {
    committed_active_ += pending_active_;
    active_.Increment(static_cast<double>(pending_active_));
    pending_active_ = 0;
  }
  void Aborted() override {
    pending_active_ = 0;
    record_active_ = 0;
  }

 private:
  Result<Instance> Load(const std::string& id) {
    auto stored = store_->Get(id);
    if (!stored.ok()) return stored.status();
    Instance out;
    if (stored->has_value()) {
      out.doc = ParseJson(**stored);
      if (!out.doc.is_object() || !out.doc["status"].is_string()) {
        return Status::Corruption("the stored instance " + pm_.spec.store + " '" + id +
                                  "' is not a process manager instance document");
      }
      out.existed = true;
    } else {
      out.doc = json::object();
      out.doc["id"] = id;
      out.doc["status"] = "active";
      out.doc["state"] = nullptr;
      out.doc["deadlines"] = 0;
      out.doc["events"] = 0;
    }
    return out;
  }

  // The meta root of an event: where it was first written (not the
  // repartition topic), its timestamp, the instance id as key, and its
  // aggregate version.
  static json EventMeta(const Record& r) {
    json m = Meta(r);
    const std::string* topic = HeaderValue(r, headers::kSourceTopic);
    const std::string* partition = HeaderValue(r, headers::kSourcePartition);
    const std::string* offset = HeaderValue(r, headers::kSourceOffset);
    if (topic != nullptr) m["topic"] = *topic;
    auto number = [](const std::string* s) -> json {
      int64_t v = 0;
      if (s == nullptr) return nullptr;
      auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
      if (ec != std::errc() || p != s->data() + s->size()) return nullptr;
      return v;
    };
    if (partition != nullptr) m["partition"] = number(partition);
    if (offset != nullptr) m["offset"] = number(offset);
    if (topic == nullptr) {
      // An event of an aggregate: its place in its event topic is not
      // carried along; its aggregate and version name it.
      m["topic"] = nullptr;
      m["partition"] = nullptr;
      m["offset"] = nullptr;
    }
    return m;
  }

  // What names the event that triggered a reaction, the same every time it
  // is read: an aggregate's event by its aggregate, id and version; a
  // rejection by the command it answers; anything else by its place.
  static std::string Trigger(const Record& r, const std::string& type) {
    const std::string* aggregate = HeaderValue(r, headers::kAggregate);
    const std::string* aggregate_id = HeaderValue(r, headers::kAggregateId);
    const std::string* version = HeaderValue(r, headers::kVersion);
    if (aggregate != nullptr && aggregate_id != nullptr) {
      if (version != nullptr) return *aggregate + "/" + *aggregate_id + "/" + *version;
      const std::string* command_id = HeaderValue(r, headers::kCommandId);
      if (type == "Rejected" && command_id != nullptr) {
        return *aggregate + "/" + *aggregate_id + "/rejected/" + *command_id;
      }
    }
    const std::string* topic = HeaderValue(r, headers::kSourceTopic);
    const std::string* partition = HeaderValue(r, headers::kSourcePartition);
    const std::string* offset = HeaderValue(r, headers::kSourceOffset);
    if (topic != nullptr && partition != nullptr && offset != nullptr) {
      return *topic + "/" + *partition + "/" + *offset;
    }
    return r.topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset);
  }

  Result<Decision> Decide(const std::vector<CompiledReaction>& reactions, const json& state,
                          const json& event, const json& meta, int64_t now_ms) {
    const json* roots[] = {&state, &event, &meta};
    const topology::Expression::Context before{roots, 3, now_ms};
    for (const CompiledReaction& reaction : reactions) {
      if (reaction.lua >= 0) return DecideLua(reaction, state, event, meta, now_ms);
      if (reaction.when) {
        auto holds = reaction.when->Evaluate(before);
        if (!holds.ok()) return holds.status().WithContext(reaction.what + ".when");
        if (!holds->is_boolean()) {
          return Status::InvalidArgument(reaction.what + ".when: '" + reaction.when->text() +
                                         "' is " + std::string(TypeName(*holds)) +
                                         ", not true or false");
        }
        if (!holds->get<bool>()) continue;
      }
      Decision d;
      d.run = true;
      d.deadline = reaction.deadline;
      d.end = reaction.end;
      json next = state;
      if (reaction.state) {
        auto updated = ApplyUpdate(*reaction.state, state, event, meta, now_ms, lua_,
                                   reaction.what);
        if (!updated.ok()) return updated.status();
        next = std::move(updated).value();
        d.state = next;
      }
      // Sends and the deadline's length see the state after the update.
      const json* after_roots[] = {&next, &event, &meta};
      const topology::Expression::Context after{after_roots, 3, now_ms};
      for (const CompiledSend& send : reaction.send) {
        json command = json::object();
        KCQRS_RETURN_IF_ERROR(EvaluateFields(send.fields, after, send.what + ".with", &command));
        command[send.type_field] = send.type;
        std::optional<std::string> key;
        if (send.key) {
          auto k = send.key->Evaluate(after);
          if (!k.ok()) return k.status().WithContext(send.what + ".key");
          key = KeyString(*k);
        } else if (auto it = command.find(send.id_field); it != command.end()) {
          key = KeyString(*it);
        }
        if (!key || key->empty()) {
          return Status::InvalidArgument(send.what + ": the command " + send.type +
                                         " has no aggregate id ('" +
                                         (send.key ? send.key->text() : send.id_field) +
                                         "' is not a non-empty string or integer)");
        }
        d.commands.push_back(json{{"topic", send.topic},
                                  {"key", *key},
                                  {"id_field", send.command_id_field},
                                  {"value", std::move(command)}});
      }
      if (reaction.deadline_ms) {
        auto ms = reaction.deadline_ms->Evaluate(after);
        if (!ms.ok()) return ms.status().WithContext(reaction.what + ".deadline_ms");
        if (!ms->is_number_integer() || ms->get<int64_t>() <= 0) {
          return Status::InvalidArgument(reaction.what + ".deadline_ms: '" +
                                         reaction.deadline_ms->text() + "' is " + ms->dump() +
                                         "; expected a positive number of milliseconds");
        }
        d.deadline_ms = ms->get<int64_t>();
      }
      return d;
    }
    return Decision{};
  }

  // A Lua reaction returns {state=, send={...}, deadline=, deadline_ms=,
  // ["end"]=}, or nil to ignore the event.
  Result<Decision> DecideLua(const CompiledReaction& reaction, const json& state,
                             const json& event, const json& meta, int64_t now_ms) {
    auto r = lua_->Call(reaction.lua, {&state, &event, &meta}, now_ms);
    if (!r.ok()) return r.status().WithContext(reaction.what);
    Decision d;
    if (r->is_null()) return d;
    const std::string& what = reaction.what;
    if (!r->is_object()) {
      return Status::InvalidArgument(what + ": the Lua reaction returned " +
                                     std::string(TypeName(*r)) +
                                     "; expected a table {state=, send=, deadline=, end=} or nil");
    }
    d.run = true;
    for (auto& [k, v] : r->items()) {
      if (k != "state" && k != "send" && k != "deadline" && k != "deadline_ms" && k != "end") {
        return Status::InvalidArgument(what + ": the Lua reaction returned the key '" + k +
                                       "'; expected state, send, deadline, deadline_ms or end");
      }
    }
    if (auto it = r->find("state"); it != r->end()) d.state = *it;
    if (auto it = r->find("deadline"); it != r->end()) {
      if (*it == "start") {
        d.deadline = ReactionSpec::Deadline::kStart;
      } else if (*it == "cancel") {
        d.deadline = ReactionSpec::Deadline::kCancel;
      } else {
        return Status::InvalidArgument(what + ": deadline = " + it->dump() +
                                       "; expected \"start\" or \"cancel\"");
      }
    }
    if (auto it = r->find("deadline_ms"); it != r->end()) {
      if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
        return Status::InvalidArgument(what + ": deadline_ms = " + it->dump() +
                                       "; expected a positive number of milliseconds");
      }
      d.deadline_ms = it->get<int64_t>();
    }
    if (auto it = r->find("end"); it != r->end()) {
      if (*it == "completed") {
        d.end = ReactionSpec::End::kCompleted;
      } else if (*it == "compensated") {
        d.end = ReactionSpec::End::kCompensated;
      } else {
        return Status::InvalidArgument(what + ": end = " + it->dump() +
                                       "; expected \"completed\" or \"compensated\"");
      }
    }
    if (auto it = r->find("send"); it != r->end()) {
      if (!it->is_array()) {
        if (it->is_object() && it->empty()) return d;  // {} is how Lua writes an empty list
        return Status::InvalidArgument(what + ": send is " + std::string(TypeName(*it)) +
                                       "; expected a list of commands");
      }
      for (size_t i = 0; i < it->size(); ++i) {
        json& c = (*it)[i];
        const std::string w = what + ": send[" + std::to_string(i + 1) + "]";
        const std::string* to = c.is_object() ? StringField(c, "to") : nullptr;
        const AggregateSpec* a = to != nullptr ? FindAggregate(*to) : nullptr;
        if (a == nullptr) {
          return Status::InvalidArgument(w + ": 'to' must name an aggregate (found " +
                                         (to != nullptr ? "'" + *to + "'" : std::string("none")) +
                                         ")");
        }
        const std::string* type = StringField(c, "type");
        if (type == nullptr) return Status::InvalidArgument(w + ": no 'type' (the command type)");
        json command = c;
        command.erase("to");
        command.erase("type");
        command[a->type_field] = *type;
        std::optional<std::string> key;
        if (auto id = command.find(a->id_field); !a->id_field.empty() && id != command.end()) {
          key = KeyString(*id);
        }
        if (!key || key->empty()) {
          return Status::InvalidArgument(w + ": the command " + *type + " has no aggregate id ('" +
                                         a->id_field + "')");
        }
        d.commands.push_back(json{{"topic", a->command_topics.front()},
                                  {"key", *key},
                                  {"id_field", a->command_id_field},
                                  {"value", std::move(command)}});
      }
    }
    return d;
  }

  const AggregateSpec* FindAggregate(const std::string& name) const {
    for (const CompiledAggregate& a : topology_.aggregates()) {
      if (a.spec.name == name && !a.spec.command_topics.empty()) return &a.spec;
    }
    return nullptr;
  }

  Status Apply(const std::string& id, Instance instance, Decision d, const std::string& trigger,
               int64_t timestamp_ms, ProcessorContext& ctx) {
    json& doc = instance.doc;
    const bool was_active = instance.active();
    record_active_ = 0;
    int64_t active_delta = 0;
    if (!instance.existed) {
      doc["started"] = timestamp_ms;
      started_.Increment();
      ++active_delta;
    }
    doc["updated"] = timestamp_ms;
    doc["events"] = doc.value("events", int64_t{0}) + 1;
    if (d.state) doc["state"] = std::move(*d.state);
    // Command ids are derived from what triggered them, so that the same
    // event read again (a rewind, a retry) sends the same ids and the
    // aggregate's deduplication recognises them.
    for (size_t i = 0; i < d.commands.size(); ++i) {
      json& c = d.commands[i];
      json& value = c["value"];
      value[c["id_field"].get_ref<const std::string&>()] =
          pm_.spec.name + ":" + id + ":" + trigger + ":" + std::to_string(i);
      std::vector<Header> h = {{headers::kProcess, pm_.spec.name}, {headers::kProcessId, id}};
      KCQRS_RETURN_IF_ERROR(ctx.Send(c["topic"].get_ref<const std::string&>(),
                                     c["key"].get<std::string>(), DumpJson(value),
                                     std::move(h)));
    }
    bool ended_now = false;
    if (d.end != ReactionSpec::End::kNo && was_active) {
      doc["status"] = d.end == ReactionSpec::End::kCompleted ? "completed" : "compensated";
      (d.end == ReactionSpec::End::kCompleted ? completed_ : compensated_).Increment();
      --active_delta;
      d.deadline = ReactionSpec::Deadline::kCancel;
      ended_now = true;
    }
    const bool retained = ended_now && pm_.spec.ended_retention_ms > 0;
    if (d.deadline == ReactionSpec::Deadline::kStart && doc["status"] == "active") {
      const int64_t due = ctx.TimerClockMs() + d.deadline_ms.value_or(pm_.spec.deadline_ms);
      const int64_t seq = doc.value("deadlines", int64_t{0}) + 1;
      doc["deadlines"] = seq;
      doc["deadline"] = json{{"due", due}, {"seq", seq}};
      KCQRS_RETURN_IF_ERROR(ctx.SetTimer(id, due));
    } else if (d.deadline == ReactionSpec::Deadline::kCancel && doc.contains("deadline")) {
      doc.erase("deadline");
      // An instance has one timer: the retention below replaces it.
      if (!retained) KCQRS_RETURN_IF_ERROR(ctx.CancelTimer(id));
    }
    if (retained) {
      // Kept for late events, then deleted, so that the store does not
      // grow with every instance there ever was.
      const int64_t expires = ctx.TimerClockMs() + pm_.spec.ended_retention_ms;
      doc["expires"] = expires;
      KCQRS_RETURN_IF_ERROR(ctx.SetTimer(id, expires));
    }
    KCQRS_RETURN_IF_ERROR(store_->Put(id, DumpJson(doc)));
    record_active_ = active_delta;
    pending_active_ += active_delta;
    return Status::OK();
  }

  const CompiledProcessManager& pm_;
  const CompiledTopology& topology_;
  LuaFunctions* lua_;
  ParsedRecord* parsed_;
  KeyValueStore* store_ = nullptr;
  bool events_see_meta_ = false;  // built per event only when a reaction reads it
  metrics::Counter started_;
  metrics::Counter completed_;
  metrics::Counter compensated_;
  metrics::Counter fired_;
  metrics::Gauge active_;
  int64_t committed_active_ = 0;
  int64_t pending_active_ = 0;  // started less ended in the open transaction
  int64_t record_active_ = 0;   // the same, of the record in flight
};

}  // namespace

std::unique_ptr<Processor> MakeCorrelation(const CompiledProcessManager& pm,
                                           const CompiledTopology& topology,
                                           ParsedRecord* parsed) {
  return std::make_unique<Correlation>(pm, topology, parsed);
}

std::unique_ptr<Processor> MakeProcessManager(const CompiledProcessManager& pm,
                                              const CompiledTopology& topology,
                                              LuaFunctions* lua, metrics::Metrics* metrics,
                                              ParsedRecord* parsed) {
  return std::make_unique<ProcessManager>(pm, topology, lua, metrics, parsed);
}

}  // namespace kcqrs::engine
