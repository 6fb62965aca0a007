#include "engine/processors/command_handler.h"

#include <chrono>
#include <map>

#include <spdlog/spdlog.h>

#include "engine/codec/command_envelope.h"
#include "engine/codec/headers.h"
#include "engine/codec/json_codec.h"
#include "engine/codec/partitioner.h"
#include "engine/processors/aggregate_document.h"
#include "engine/processors/command_outcome.h"
#include "engine/processors/parsed_record.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// A command sent by a process manager names it and its instance in two
// headers; the events and rejection decided for it carry them along, so
// that the answer finds its way back to the instance.
void CopyProcessHeaders(const Record& command, std::vector<Header>* out) {
  for (const Header& h : command.headers) {
    if (h.key == headers::kProcess || h.key == headers::kProcessId) out->push_back(h);
  }
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
        evolve_(MakeUpdateRules(aggregate.events, aggregate.spec.name, topology)),
        changelog_topic_(topology.ChangelogTopic(aggregate.spec.store)) {
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
    auto type = ReadCommandType(command, spec_);
    if (!type.ok()) return type.status();
    auto rules = commands_.find(*type);
    if (rules == commands_.end()) return UnknownCommandType(spec_, *type, agg_.command_types);
    auto id = ReadAggregateId(command, spec_, r.key);
    if (!id.ok()) return id.status();
    // One aggregate, one partition, one writer: a command decided anywhere
    // else would be decided against state that is not the aggregate's.
    const int partitions = topology_.partitions(r.topic);
    if (partitions > 0) {
      const int32_t owner = PartitionForKey(*id, partitions);
      if (owner != r.partition) return Misrouted(r, *id, owner, ctx);
    }
    const CommandEnvelope envelope{std::move(type).value(), std::move(id).value(),
                                   ReadCommandId(command, spec_)};
    const std::string& aggregate_id = envelope.aggregate_id;
    const std::string& command_type = envelope.type;
    const std::string& command_id = envelope.command_id;

    auto stored = store_->Get(aggregate_id);
    if (!stored.ok()) return stored.status();
    std::optional<AggregateDocument> loaded;
    if (stored->has_value()) {
      loaded = AggregateDocument::FromStored(std::move(**stored));
      if (!loaded) {
        return Status::Corruption("the stored state of " + spec_.name + " '" + aggregate_id +
                                  "' is not valid JSON");
      }
    } else {
      loaded.emplace();
    }
    AggregateDocument& aggregate = *loaded;
    if (!command_id.empty() && aggregate.HasOutcome(command_id)) {
      Counted(command_type).duplicate.Increment();
      return Status::OK();  // a retry: its outcome is already out
    }

    if (&ctx != recorder_ctx_) {
      recorder_ctx_ = &ctx;
      recorder_ = dynamic_cast<OutcomeRecorder*>(&ctx);
    }
    OutcomeRecorder* const recorder = recorder_;
    LazyMeta meta(r);
    json& state = aggregate.state();
    Decision decision;
    const std::string& what = rules->second.what;
    // Optimistic concurrency: a command decided on a version the aggregate
    // has moved past is refused before its rules run; a client that sent a
    // malformed expectation gets a code of its own, not a dead letter.
    std::optional<int64_t> expected;
    if (auto e = ReadExpectedVersion(command, spec_); !e.ok()) {
      decision.rejection.emplace("invalid_expected_version", e.status().message());
    } else if (*e && **e != aggregate.version()) {
      expected = **e;
      decision.rejection.emplace("conflict", ConflictReason(aggregate_id, *expected,
                                                            aggregate.version()));
    } else {
      KCQRS_RETURN_IF_ERROR(Decide(*rules->second.decide, command, state,
                                   meta.Get(rules->second.uses_meta), r.timestamp_ms, what,
                                   lua_, &decision));
    }
    std::vector<json>& events = decision.events;
    std::optional<std::pair<std::string, std::string>>& rejection = decision.rejection;

    // The aggregate keeps the command's id and a pointer to its outcome;
    // the outcome itself goes to the recorder (command_outcome.h).
    json entry = json::object();
    entry["id"] = command_id;
    CommandOutcome outcome;
    if (rejection) {
      json value = {{"commandId", command_id}, {"commandType", command_type},
                    {"aggregate", spec_.name}, {"aggregateId", aggregate_id},
                    {"code", rejection->first}, {"reason", rejection->second},
                    {"timestamp", r.timestamp_ms}};
      if (expected) {
        value["expectedVersion"] = *expected;
        value["currentVersion"] = aggregate.version();
      }
      outcome.version = aggregate.version();
      std::vector<Header> rh = CommandOutputHeaders(spec_, envelope, "Rejected");
      CopyProcessHeaders(r, &rh);
      KCQRS_RETURN_IF_ERROR(
          ctx.Send(spec_.rejection_topic, aggregate_id, DumpJson(value), std::move(rh)));
      Rejected(command_type, rejection->first).Increment();
      entry["rejected"] = rejection->first;
      outcome.rejected = true;
      outcome.code = std::move(rejection->first);
      outcome.reason = std::move(rejection->second);
    } else {
      int64_t version = aggregate.version();
      if (recorder != nullptr) outcome.events = "[";
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
        std::vector<Header> h = CommandOutputHeaders(spec_, envelope, etype);
        h.push_back({headers::kVersion, std::to_string(version)});
        CopyProcessHeaders(r, &h);
        std::string text = DumpJson(event);
        if (recorder != nullptr) {
          if (outcome.events.size() > 1) outcome.events += ',';
          outcome.events += text;
        }
        KCQRS_RETURN_IF_ERROR(
            ctx.Send(spec_.event_topic, aggregate_id, std::move(text), std::move(h)));
      }
      if (recorder != nullptr) outcome.events += ']';
      aggregate.set_version(version);
      entry["v"] = version;
      outcome.version = version;
      Counted(command_type).accepted.Increment();
    }
    if (!command_id.empty() && spec_.dedup_window > 0) {
      aggregate.AppendOutcome(entry, static_cast<size_t>(spec_.dedup_window));
    }
    if (recorder != nullptr && !command_id.empty()) {
      recorder->RecordOutcome(command_id, std::move(outcome));
    }
    std::string value = aggregate.Serialize();
    // The stored aggregate is one record of the store's changelog: kept
    // within the limit by dropping the oldest outcomes, which only shortens
    // the dedup window of this aggregate, rather than dead-lettering every
    // command from here on. A state too large on its own is written as it
    // is, and the task dead-letters the command.
    const size_t max = ctx.MaxRecordBytes(changelog_topic_);
    if (max > 0 && aggregate_id.size() + value.size() > max &&
        aggregate_id.size() < max) {
      const size_t kept_before = aggregate.outcome_count();
      const size_t dropped = aggregate.DropOldestOutcomesToFit(max - aggregate_id.size());
      if (dropped > 0) {
        value = aggregate.Serialize();
        // Still too large: the state alone is; the command is dead-lettered
        // with this write, and the dead letter says why.
        if (aggregate_id.size() + value.size() <= max) {
          Trimmed(aggregate_id, dropped, kept_before - dropped, max);
        }
      }
    }
    return store_->Put(aggregate_id, value);
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

  std::string ConflictReason(const std::string& id, int64_t expected, int64_t current) const {
    const std::string what = spec_.name + " '" + id + "'";
    if (expected == 0) {
      return what + " already exists (version " + std::to_string(current) +
             "); expected version 0 only creates";
    }
    if (current == 0) {
      return what + " does not exist (version 0); the command expected version " +
             std::to_string(expected);
    }
    return what + " is at version " + std::to_string(current) +
           ", not the expected version " + std::to_string(expected) +
           ": read it again and decide on the current state";
  }

  // Says that outcomes were dropped: at once the first time, then at most
  // once a minute for all the aggregates of this task, with their count.
  void Trimmed(const std::string& id, size_t dropped, size_t kept, size_t max) {
    ++trimmed_.aggregates;
    trimmed_.outcomes += dropped;
    const auto now = std::chrono::steady_clock::now();
    if (trimmed_.logged && now - *trimmed_.logged < std::chrono::minutes(1)) return;
    spdlog::warn(
        "aggregate {}: the stored aggregate '{}' would be above the maximum message size of "
        "{} bytes of its store's changelog, so it keeps only its last {} command outcomes "
        "(dedup_window: {}); a retry of an older command id is decided again. Dropped so "
        "far by this task: {} outcomes, in {} writes{}",
        spec_.name, id.substr(0, 64), max, kept, spec_.dedup_window, trimmed_.outcomes,
        trimmed_.aggregates, trimmed_.logged ? " (logged at most once a minute)" : "");
    trimmed_.logged = now;
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
  const ProcessorContext* recorder_ctx_ = nullptr;
  OutcomeRecorder* recorder_ = nullptr;  // of recorder_ctx_, or null
  const std::string changelog_topic_;
  struct {
    uint64_t aggregates = 0;  // writes that dropped outcomes
    uint64_t outcomes = 0;
    std::optional<std::chrono::steady_clock::time_point> logged;
  } trimmed_;
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

std::unique_ptr<Processor> MakeCommandHandler(const CompiledAggregate& aggregate,
                                              const CompiledTopology& topology,
                                              LuaFunctions* lua, metrics::Metrics* metrics) {
  return std::make_unique<CommandHandler>(aggregate, topology, lua, metrics);
}

}  // namespace kcqrs::engine
