#include "engine/graph/compiled_topology.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include "engine/graph/processor_registry.h"

namespace kcqrs::engine {

const std::vector<std::string>& DecideRoots() {
  static const std::vector<std::string> roots = {"command", "state", "meta"};
  return roots;
}
const std::vector<std::string>& EvolveRoots() {
  static const std::vector<std::string> roots = {"state", "event", "meta"};
  return roots;
}
const std::vector<std::string>& ProjectRoots() {
  static const std::vector<std::string> roots = {"view", "event", "meta"};
  return roots;
}
const std::vector<std::string>& KeyRoots() {
  static const std::vector<std::string> roots = {"event", "meta"};
  return roots;
}

const std::vector<std::string>& TransformRoots() {
  static const std::vector<std::string> roots = {"record", "meta"};
  return roots;
}

namespace {

// Collects errors as "file:line:col: message" lines.
class Errors {
 public:
  void Add(const SourcePosition& where, const std::string& message) {
    lines_.push_back(where.ToString() + ": " + message);
  }

  // Expression errors start with "at column N: "; N is turned into the
  // column in the file.
  void AddExpression(const SourcePosition& where, const std::string& what,
                     const std::string& message) {
    SourcePosition at = where;
    std::string rest = message;
    constexpr std::string_view kPrefix = "at column ";
    if (message.rfind(kPrefix, 0) == 0) {
      size_t colon = message.find(": ", kPrefix.size());
      int n = 0;
      const char* begin = message.data() + kPrefix.size();
      const char* end = message.data() + (colon == std::string::npos ? kPrefix.size() : colon);
      if (colon != std::string::npos && std::from_chars(begin, end, n).ec == std::errc() &&
          at.line > 0) {
        at.column += n - 1;
        rest = message.substr(colon + 2);
      }
    }
    Add(at, what + ": " + rest);
  }

  bool empty() const { return lines_.empty(); }
  Status ToStatus() const {
    std::string msg;
    for (const std::string& l : lines_) {
      if (!msg.empty()) msg += "\n";
      msg += l;
    }
    return Status::InvalidArgument(msg);
  }

 private:
  std::vector<std::string> lines_;
};

std::optional<topology::Expression> CompileExpr(const ExpressionSpec& spec,
                                                const std::vector<std::string>& roots,
                                                const std::string& what, Errors* errors) {
  auto r = topology::Expression::Compile(spec.text, roots);
  if (!r.ok()) {
    errors->AddExpression(spec.where, what, r.status().message());
    return std::nullopt;
  }
  return std::move(r).value();
}

CompiledFields CompileFields(
    const std::vector<std::pair<std::string, ExpressionSpec>>& fields,
    const std::vector<std::string>& roots, const std::string& what, Errors* errors) {
  CompiledFields out;
  for (const auto& [name, spec] : fields) {
    if (auto e = CompileExpr(spec, roots, what + "." + name, errors)) {
      out.emplace_back(name, std::move(*e));
    }
  }
  return out;
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  if (std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

// The aggregate named `name`, or null.
const AggregateSpec* FindAggregate(const TopologySpec& spec, const std::string& name) {
  for (const AggregateSpec& a : spec.aggregates) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

CompiledSend CompileSend(const SendSpec& s, const TopologySpec& spec, const std::string& what,
                         Errors* errors) {
  CompiledSend out;
  out.what = what;
  out.type = s.type;
  if (!s.aggregate.empty()) {
    const AggregateSpec* a = FindAggregate(spec, s.aggregate);
    if (a == nullptr) {
      std::string names;
      for (const AggregateSpec& x : spec.aggregates) names += (names.empty() ? "" : ", ") + x.name;
      errors->Add(s.where, what + ".to: no aggregate is named '" + s.aggregate +
                               "' (aggregates: " + (names.empty() ? "none" : names) + ")");
      return out;
    }
    if (a->command_topics.empty()) {
      errors->Add(s.where, what + ".to: aggregate '" + s.aggregate + "' has no command topic");
      return out;
    }
    out.topic = a->command_topics.front();
    out.type_field = a->type_field;
    out.command_id_field = a->command_id_field;
    out.id_field = a->id_field;
    bool known = false;
    std::string types;
    for (const auto& [type, d] : a->commands) {
      known = known || type == s.type;
      types += (types.empty() ? "" : ", ") + type;
    }
    if (!known) {
      errors->Add(s.where, what + ".type: aggregate '" + s.aggregate + "' has no command '" +
                               s.type + "' (its commands: " + types + ")");
    }
    if (out.id_field.empty() && !s.key) {
      errors->Add(s.where, what + ": aggregate '" + s.aggregate +
                               "' takes its id from the record key (no id_field): give 'key'");
    }
    if (!out.id_field.empty() && !s.key) {
      bool has_id = false;
      for (const auto& [name, e] : s.fields) has_id = has_id || name == out.id_field;
      if (!has_id) {
        errors->Add(s.where, what + ".with: the command needs its aggregate id field '" +
                                 out.id_field + "' (aggregate '" + s.aggregate + "')");
      }
    }
  } else {
    out.topic = s.topic;
    if (!s.key) errors->Add(s.where, what + ": a send to a topic needs 'key'");
  }
  for (const auto& [name, e] : s.fields) {
    if (name == out.command_id_field || name == out.type_field) {
      errors->Add(e.where, what + ".with." + name + ": the engine sets '" + name +
                               "' itself (the type from 'type', the command id from what "
                               "triggered the send)");
    }
  }
  if (s.key) out.key = CompileExpr(*s.key, EvolveRoots(), what + ".key", errors);
  out.fields = CompileFields(s.fields, EvolveRoots(), what + ".with", errors);
  return out;
}

CompiledReaction CompileReaction(const ReactionSpec& r, const TopologySpec& spec,
                                 const std::string& what, std::vector<LuaSnippet>* lua,
                                 Errors* errors) {
  CompiledReaction out;
  out.what = what;
  out.deadline = r.deadline;
  out.end = r.end;
  if (r.lua) {
    lua->push_back(LuaSnippet{*r.lua, EvolveRoots()});
    out.lua = static_cast<int>(lua->size() - 1);
    return out;
  }
  if (r.when) out.when = CompileExpr(*r.when, EvolveRoots(), what + ".when", errors);
  if (r.state) {
    if (r.state->kind != UpdateSpec::Kind::kSet && r.state->kind != UpdateSpec::Kind::kMerge) {
      errors->Add(r.state->where, what + ": a reaction changes its state with 'set' or 'merge'");
    } else {
      CompiledUpdate u;
      u.kind = r.state->kind;
      u.fields = CompileFields(r.state->fields, EvolveRoots(),
                               what + (u.kind == UpdateSpec::Kind::kSet ? ".set" : ".merge"),
                               errors);
      out.state = std::move(u);
    }
  }
  for (size_t i = 0; i < r.send.size(); ++i) {
    out.send.push_back(
        CompileSend(r.send[i], spec, what + ".send[" + std::to_string(i) + "]", errors));
  }
  if (r.deadline_ms) {
    out.deadline_ms = CompileExpr(*r.deadline_ms, EvolveRoots(), what + ".deadline_ms", errors);
  }
  return out;
}

CompiledProcessManager CompileProcessManager(const ProcessManagerSpec& pm,
                                             const TopologySpec& spec,
                                             const std::string& application_id,
                                             std::vector<LuaSnippet>* lua, Errors* errors) {
  CompiledProcessManager out;
  out.spec = pm;
  const std::string what = "process_managers." + pm.name;
  out.repartition_topic = application_id + "-" + pm.name + "-repartition";
  out.timer_store = TimerStoreName(pm.name);
  if (pm.event_topics.empty()) {
    errors->Add(pm.where, what + ": no event topics: list the topics it reacts to under "
                                 "'event_topics'");
  }
  if (pm.id.text.empty()) {
    errors->Add(pm.where, what + ": no 'id': say which instance an event belongs to, e.g. "
                                 "event.orderId");
  } else {
    out.id = CompileExpr(pm.id, KeyRoots(), what + ".id", errors);
  }
  if (pm.store.empty()) errors->Add(pm.where, what + ": no 'store' for its instances");
  if (pm.deadline_ms <= 0) {
    errors->Add(pm.where, what + ".deadline_ms: expected a positive number of milliseconds, "
                                 "found " + std::to_string(pm.deadline_ms));
  }
  if (pm.events.empty()) {
    errors->Add(pm.where, what + ": no events: list at least one event type under 'on'");
  }
  bool starts_deadline = false;
  for (const auto& [type, reactions] : pm.events) {
    std::vector<CompiledReaction>& v = out.events[type];
    for (size_t i = 0; i < reactions.size(); ++i) {
      v.push_back(CompileReaction(reactions[i], spec,
                                  what + ".on." + type + "[" + std::to_string(i) + "]", lua,
                                  errors));
      starts_deadline = starts_deadline || reactions[i].deadline == ReactionSpec::Deadline::kStart ||
                        reactions[i].lua.has_value();
    }
  }
  for (size_t i = 0; i < pm.on_deadline.size(); ++i) {
    out.on_deadline.push_back(CompileReaction(
        pm.on_deadline[i], spec, what + ".on_deadline[" + std::to_string(i) + "]", lua, errors));
  }
  if (starts_deadline && pm.on_deadline.empty()) {
    errors->Add(pm.where, what + ": a reaction starts a deadline but there is no "
                                 "'on_deadline' saying what happens when it passes");
  }
  for (const auto& [type, reactions] : out.events) {
    for (const CompiledReaction& r : reactions) {
      for (const CompiledSend& s : r.send) AddUnique(&out.outputs, s.topic);
    }
  }
  for (const CompiledReaction& r : out.on_deadline) {
    for (const CompiledSend& s : r.send) AddUnique(&out.outputs, s.topic);
  }
  // A Lua reaction may send to any aggregate: each aggregate's first
  // command topic is an output too.
  bool any_lua = false;
  for (const auto& [type, reactions] : out.events) {
    for (const CompiledReaction& r : reactions) any_lua = any_lua || r.lua >= 0;
  }
  for (const CompiledReaction& r : out.on_deadline) any_lua = any_lua || r.lua >= 0;
  if (any_lua) {
    for (const AggregateSpec& a : spec.aggregates) {
      if (!a.command_topics.empty()) AddUnique(&out.outputs, a.command_topics.front());
    }
  }
  for (const std::string& topic : pm.event_topics) {
    if (std::find(out.outputs.begin(), out.outputs.end(), topic) != out.outputs.end()) {
      errors->Add(pm.where, what + ": topic '" + topic +
                                "' is both read and sent to; a process manager sending to "
                                "its own input would loop");
    }
  }
  return out;
}

// Every parent of a processor is another processor, and following parents
// never leads back: Forward calls its children depth first, in the
// record's scope, so a cycle would never end.
void CheckProcessorParents(const std::vector<CustomProcessorSpec>& processors,
                           Errors* errors) {
  std::map<std::string, const CustomProcessorSpec*> by_name;
  for (const CustomProcessorSpec& c : processors) by_name.emplace(c.name, &c);
  bool unknown = false;
  for (const CustomProcessorSpec& c : processors) {
    std::set<std::string_view> seen;
    for (const std::string& p : c.parents) {
      if (!seen.insert(p).second) {
        // Listed twice, it would run twice for every Forward.
        errors->Add(c.where, "processors." + c.name + ".parents: '" + p + "' is listed twice");
        unknown = true;
      } else if (p == c.name) {
        errors->Add(c.where, "processors." + c.name + ".parents: a processor cannot be its own "
                             "parent");
        unknown = true;
      } else if (!by_name.count(p)) {
        std::string names;
        for (const auto& [name, spec] : by_name) {
          if (name != c.name) names += (names.empty() ? "" : ", ") + name;
        }
        errors->Add(c.where, "processors." + c.name + ".parents: '" + p +
                                 "' is not a processor of this topology (processors: " +
                                 (names.empty() ? "none other" : names) +
                                 "); only C++ processors forward records");
        unknown = true;
      }
    }
  }
  if (unknown) return;
  // Depth-first search for a cycle, reported once with its path.
  std::map<std::string, int> state;  // 1: on the path, 2: done
  std::vector<std::string> path;
  std::function<bool(const std::string&)> visit = [&](const std::string& name) {
    state[name] = 1;
    path.push_back(name);
    for (const std::string& p : by_name.at(name)->parents) {
      if (state[p] == 1) {
        std::string cycle;
        auto from = std::find(path.begin(), path.end(), p);
        for (auto it = from; it != path.end(); ++it) cycle += *it + " <- ";
        errors->Add(by_name.at(name)->where,
                    "processors." + name + ".parents: the processors' parents form a cycle (" +
                        cycle + p + "); records forwarded around it would never stop");
        return true;
      }
      if (state[p] == 0 && visit(p)) return true;
    }
    path.pop_back();
    state[name] = 2;
    return false;
  };
  for (const CustomProcessorSpec& c : processors) {
    if (state[c.name] == 0 && visit(c.name)) return;
  }
}

}  // namespace

Result<std::unique_ptr<CompiledTopology>> CompiledTopology::Compile(
    const EngineOptions& options) {
  Errors errors;
  std::unique_ptr<CompiledTopology> t(new CompiledTopology());
  t->application_id_ = options.application.id;
  t->cache_max_bytes_ = options.application.cache_max_bytes;
  t->declared_partitions_ = options.topics;
  t->errors_ = options.topology.errors;
  if (t->errors_.dead_letter_topic.empty()) {
    t->errors_.dead_letter_topic = options.application.id + "-dlq";
  }
  const TopologySpec& spec = options.topology;
  // The same ranges as config/ checks, for embedders who fill the struct.
  if (options.limits.max_json_depth < 1 || options.limits.max_json_depth > 1000) {
    errors.Add(SourcePosition{}, "limits.max_json_depth: expected 1 to 1000, found " +
                                     std::to_string(options.limits.max_json_depth));
  }
  if (options.limits.max_document_bytes < 1024 ||
      options.limits.max_document_bytes > 100 * 1024 * 1024) {
    errors.Add(SourcePosition{}, "limits.max_document_bytes: expected 1024 to 104857600, found " +
                                     std::to_string(options.limits.max_document_bytes));
  }
  t->json_limits_.max_depth = options.limits.max_json_depth;
  t->json_limits_.max_bytes = static_cast<size_t>(options.limits.max_document_bytes);

  auto add_lua = [&t](const LuaSpec& lua, std::vector<std::string> params) {
    t->lua_snippets_.push_back(LuaSnippet{lua, std::move(params)});
    return static_cast<int>(t->lua_snippets_.size() - 1);
  };
  auto compile_update = [&](const UpdateSpec& u, const std::vector<std::string>& roots,
                            const std::string& what) {
    CompiledUpdate cu;
    cu.kind = u.kind;
    if (u.kind == UpdateSpec::Kind::kLua) {
      if (u.lua) cu.lua = add_lua(*u.lua, roots);
    } else {
      cu.fields = CompileFields(u.fields, roots, what, &errors);
    }
    return cu;
  };

  // Which node uses each store, so that a store has one owner.
  std::map<std::string, std::string> store_owner;
  auto claim_store = [&](const std::string& store, const std::string& owner,
                         const SourcePosition& where) {
    if (store.empty()) return;
    auto [it, inserted] = store_owner.emplace(store, owner);
    if (!inserted && it->second != owner) {
      errors.Add(where, "store '" + store + "' is already used by " + it->second +
                            "; every aggregate and projection needs a store of its own");
    }
  };

  if (spec.aggregates.empty() && spec.projections.empty() && spec.processors.empty() &&
      spec.transforms.empty() && spec.process_managers.empty()) {
    errors.Add(SourcePosition{}, "the topology has no aggregates, projections, transforms "
                                 "or processors: there is nothing to run");
  }

  for (const AggregateSpec& a : spec.aggregates) {
    CompiledAggregate ca;
    ca.spec = a;
    const std::string what = "aggregates." + a.name;
    if (ca.spec.expected_version_field.empty()) {
      ca.spec.expected_version_field = options.application.expected_version_field;
    }
    for (const std::string* other : {&a.type_field, &a.id_field, &a.command_id_field}) {
      if (*other == ca.spec.expected_version_field) {
        errors.Add(a.where, what + ": the expected version field '" + *other +
                                "' is also the command's type, id or command id field; "
                                "name it apart (expected_version_field)");
      }
    }
    claim_store(a.store, "aggregate '" + a.name + "'", a.where);
    for (const std::string& topic : a.command_topics) {
      if (topic == a.event_topic || topic == a.rejection_topic) {
        errors.Add(a.where, what + ": topic '" + topic +
                                "' is both a command topic and an output topic");
      }
    }
    if (a.commands.empty()) {
      errors.Add(a.where, what + ": no commands: list at least one command type under 'commands'");
    }
    for (const auto& [type, d] : a.commands) {
      CompiledDecide cd;
      const std::string w = what + ".commands." + type;
      if (d.lua) {
        cd.lua = add_lua(*d.lua, DecideRoots());
      } else {
        for (size_t i = 0; i < d.require.size(); ++i) {
          const RequireSpec& r = d.require[i];
          const std::string rw = w + ".require[" + std::to_string(i) + "]";
          auto that = CompileExpr(r.that, DecideRoots(), rw + ".that", &errors);
          auto reason = topology::Template::Compile(r.reason.text, DecideRoots());
          if (!reason.ok()) {
            errors.AddExpression(r.reason.where, rw + ".reason", reason.status().message());
          }
          if (that && reason.ok()) {
            cd.require.push_back(CompiledRequire{std::move(*that), r.code,
                                                 std::move(reason).value()});
          }
        }
        for (size_t i = 0; i < d.emit.size(); ++i) {
          const EmitSpec& e = d.emit[i];
          CompiledEmit ce;
          ce.type = e.type;
          ce.fields = CompileFields(e.fields, DecideRoots(),
                                    w + ".emit[" + std::to_string(i) + "].with", &errors);
          cd.emit.push_back(std::move(ce));
        }
      }
      if (!ca.command_types.empty()) ca.command_types += ", ";
      ca.command_types += type;
      ca.commands.emplace(type, std::move(cd));
    }
    for (const auto& [type, u] : a.events) {
      ca.events.emplace(type, compile_update(u, EvolveRoots(), what + ".events." + type));
    }
    t->aggregates_.push_back(std::move(ca));
  }

  for (const ProjectionSpec& p : spec.projections) {
    CompiledProjection cp;
    cp.spec = p;
    const std::string what = "projections." + p.name;
    claim_store(p.store, "projection '" + p.name + "'", p.where);
    if (p.key) {
      cp.key = CompileExpr(*p.key, KeyRoots(), what + ".key", &errors);
      cp.repartition_topic = options.application.id + "-" + p.name + "-repartition";
    }
    if (p.events.empty()) {
      errors.Add(p.where, what + ": no events: list at least one event type under 'events'");
    }
    for (const auto& [type, u] : p.events) {
      cp.events.emplace(type, compile_update(u, ProjectRoots(), what + ".events." + type));
    }
    t->projections_.push_back(std::move(cp));
  }

  for (const CustomProcessorSpec& c : spec.processors) {
    if (!FindProcessor(c.processor)) {
      std::string registered;
      for (const std::string& n : RegisteredProcessors()) {
        registered += registered.empty() ? n : ", " + n;
      }
      errors.Add(c.where, "processors." + c.name + ": no C++ processor is registered as '" +
                              c.processor + "' (registered: " +
                              (registered.empty() ? "none" : registered) + ")");
    }
    if (auto factory = FindProcessor(c.processor)) {
      // A trial run: a factory that rejects its configuration says so now.
      std::string rejected;
      try {
        if ((*factory)(c.config) == nullptr) rejected = "it returned no processor";
      } catch (const std::exception& e) {
        rejected = e.what();
      } catch (...) {
        rejected = "it threw an exception that is not a std::exception";
      }
      if (!rejected.empty()) {
        errors.Add(c.where, "processors." + c.name + ": the C++ processor '" + c.processor +
                                "' rejected its configuration: " + rejected);
      }
    }
    for (const std::string& s : c.stores) claim_store(s, "processor '" + c.name + "'", c.where);
    if (c.timers != CustomProcessorSpec::Timers::kNone) {
      claim_store(TimerStoreName(c.name), "processor '" + c.name + "' (its timers)", c.where);
    }
    t->custom_.push_back(c);
  }
  CheckProcessorParents(spec.processors, &errors);

  for (const TransformSpec& tr : spec.transforms) {
    CompiledTransform ct;
    ct.spec = tr;
    const std::string what = "transforms." + tr.name;
    for (const std::string& topic : tr.from) {
      if (topic == tr.to) {
        errors.Add(tr.where, what + ": topic '" + topic +
                                 "' is both read and written; a transform writing to its "
                                 "own input would loop forever");
      }
    }
    if (tr.filter) ct.filter = CompileExpr(*tr.filter, TransformRoots(), what + ".filter", &errors);
    if (tr.key) ct.key = CompileExpr(*tr.key, TransformRoots(), what + ".key", &errors);
    ct.value = CompileFields(tr.value, TransformRoots(), what + ".value", &errors);
    t->transforms_.push_back(std::move(ct));
  }

  for (const ProcessManagerSpec& pm : spec.process_managers) {
    for (const ProjectionSpec& p : spec.projections) {
      if (p.name == pm.name) {
        errors.Add(pm.where, "process_managers." + pm.name + ": a projection has the same name; "
                             "both would use the topic " + options.application.id + "-" +
                             pm.name + "-repartition, so name them apart");
      }
    }
    t->process_managers_.push_back(
        CompileProcessManager(pm, spec, options.application.id, &t->lua_snippets_, &errors));
    const CompiledProcessManager& c = t->process_managers_.back();
    claim_store(pm.store, "process manager '" + pm.name + "'", pm.where);
    claim_store(c.timer_store, "process manager '" + pm.name + "' (its deadlines)", pm.where);
  }

  // Settings of named stores; every store used gets one.
  std::set<std::string> configured;
  for (const StoreSpec& s : spec.stores) {
    if (!store_owner.count(s.name)) {
      errors.Add(s.where, "stores." + s.name + ": no aggregate, projection or processor "
                          "uses this store");
      continue;
    }
    configured.insert(s.name);
    t->stores_.push_back(s);
  }
  for (const auto& [name, owner] : store_owner) {
    if (!configured.count(name)) {
      StoreSpec s;
      s.name = name;
      t->stores_.push_back(s);
    }
  }

  if (!errors.empty()) return errors.ToStatus();
  t->BuildGraph();
  return t;
}

namespace {

Node MakeNode(NodeKind kind, std::string name, int index, std::vector<std::string> sources,
              std::vector<std::string> stores, std::vector<std::string> sinks) {
  Node n;
  n.kind = kind;
  n.name = std::move(name);
  n.index = index;
  n.sources = std::move(sources);
  n.stores = std::move(stores);
  n.sinks = std::move(sinks);
  return n;
}

}  // namespace

void CompiledTopology::BuildGraph() {
  std::vector<Node> nodes;
  for (size_t i = 0; i < aggregates_.size(); ++i) {
    const AggregateSpec& a = aggregates_[i].spec;
    Node n = MakeNode(NodeKind::kAggregate, a.name, static_cast<int>(i), a.command_topics, {a.store},
           {a.event_topic, a.rejection_topic});
    nodes.push_back(std::move(n));
  }
  for (size_t i = 0; i < projections_.size(); ++i) {
    const CompiledProjection& p = projections_[i];
    if (!p.repartition_topic.empty()) {
      nodes.push_back(MakeNode(NodeKind::kRepartition, p.spec.name, static_cast<int>(i),
                           p.spec.event_topics, {}, {p.repartition_topic}));
      nodes.push_back(MakeNode(NodeKind::kProjection, p.spec.name, static_cast<int>(i),
                           {p.repartition_topic}, {p.spec.store}, {}));
    } else {
      nodes.push_back(MakeNode(NodeKind::kProjection, p.spec.name, static_cast<int>(i),
                           p.spec.event_topics, {p.spec.store}, {}));
    }
  }
  for (size_t i = 0; i < custom_.size(); ++i) {
    Node n = MakeNode(NodeKind::kCustom, custom_[i].name, static_cast<int>(i), custom_[i].topics,
                      custom_[i].stores, custom_[i].outputs);
    n.parents = custom_[i].parents;
    nodes.push_back(std::move(n));
  }
  for (size_t i = 0; i < transforms_.size(); ++i) {
    const TransformSpec& tr = transforms_[i].spec;
    nodes.push_back(MakeNode(NodeKind::kTransform, tr.name, static_cast<int>(i), tr.from, {},
                         {tr.to}));
  }
  for (size_t i = 0; i < process_managers_.size(); ++i) {
    const CompiledProcessManager& pm = process_managers_[i];
    nodes.push_back(MakeNode(NodeKind::kCorrelate, pm.spec.name, static_cast<int>(i),
                         pm.spec.event_topics, {}, {pm.repartition_topic}));
    Node n = MakeNode(NodeKind::kProcessManager, pm.spec.name, static_cast<int>(i),
           {pm.repartition_topic}, {pm.spec.store, pm.timer_store}, pm.outputs);
    n.timer_store = pm.timer_store;
    n.stream_time_timers = pm.spec.time == ProcessManagerSpec::Time::kStreamTime;
    nodes.push_back(std::move(n));
  }
  for (Node& n : nodes) {
    if (n.kind != NodeKind::kCustom) continue;
    const CustomProcessorSpec& c = custom_[static_cast<size_t>(n.index)];
    if (c.timers == CustomProcessorSpec::Timers::kNone) continue;
    n.timer_store = TimerStoreName(c.name);
    n.stores.push_back(n.timer_store);
    n.stream_time_timers = c.timers == CustomProcessorSpec::Timers::kStreamTime;
  }
  for (Node& n : nodes) n.sinks.push_back(errors_.dead_letter_topic);

  // Union-find: nodes sharing a source topic or a store run in one task.
  std::vector<size_t> parent(nodes.size());
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&parent](size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::map<std::string, size_t> first_user;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto link = [&](const std::string& key) {
      auto [it, inserted] = first_user.emplace(key, i);
      if (!inserted) parent[find(i)] = find(it->second);
    };
    for (const std::string& s : nodes[i].sources) link("topic:" + s);
    for (const std::string& s : nodes[i].stores) link("store:" + s);
    // A processor runs in its parents' task: their Forward calls it.
    if (nodes[i].kind == NodeKind::kCustom) {
      link("processor:" + nodes[i].name);
      for (const std::string& p : nodes[i].parents) link("processor:" + p);
    }
  }
  std::map<size_t, int> sub_of_root;
  for (size_t i = 0; i < nodes.size(); ++i) {
    size_t root = find(i);
    auto [it, inserted] = sub_of_root.emplace(root, static_cast<int>(subtopologies_.size()));
    if (inserted) {
      SubTopology st;
      st.id = it->second;
      subtopologies_.push_back(std::move(st));
    }
    SubTopology& st = subtopologies_[static_cast<size_t>(it->second)];
    for (const std::string& s : nodes[i].sources) AddUnique(&st.sources, s);
    for (const std::string& s : nodes[i].stores) AddUnique(&st.stores, s);
    st.nodes.push_back(std::move(nodes[i]));
  }
  for (SubTopology& st : subtopologies_) {
    std::sort(st.sources.begin(), st.sources.end());
    std::sort(st.stores.begin(), st.stores.end());
  }
}

Status CompiledTopology::ResolvePartitions(const std::map<std::string, int>& existing) {
  partitions_ = existing;
  to_create_.clear();
  auto known = [&](const std::string& topic) -> int {
    if (auto it = partitions_.find(topic); it != partitions_.end()) return it->second;
    if (auto it = declared_partitions_.find(topic); it != declared_partitions_.end()) {
      return it->second;
    }
    return 0;
  };

  std::vector<std::string> errors;
  // A topic that one sub-topology writes and another reads (events,
  // repartition topics) takes its producer's count when it does not exist
  // yet, so sub-topologies are resolved in rounds, producers first.
  std::map<std::string, int> producer;
  for (const SubTopology& st : subtopologies_) {
    for (const Node& n : st.nodes) {
      for (const std::string& sink : n.sinks) producer.emplace(sink, st.id);
    }
  }
  std::vector<bool> done(subtopologies_.size(), false);
  for (size_t round = 0; round <= subtopologies_.size(); ++round) {
    for (SubTopology& st : subtopologies_) {
      if (done[static_cast<size_t>(st.id)]) continue;
      std::map<int, std::vector<std::string>> counts;
      bool waiting = false;
      for (const std::string& s : st.sources) {
        int n = known(s);
        if (n > 0) {
          counts[n].push_back(s);
        } else if (auto p = producer.find(s); p != producer.end() &&
                   p->second != st.id && !done[static_cast<size_t>(p->second)] &&
                   round < subtopologies_.size()) {
          waiting = true;  // its producer is not settled yet
        }
      }
      if (waiting && counts.empty()) continue;
      if (counts.size() > 1) {
        std::string msg = "sub-topology " + std::to_string(st.id) +
                          " reads topics with different partition counts (";
        bool first = true;
        for (const auto& [n, topics] : counts) {
          for (const std::string& topic : topics) {
            msg += (first ? "" : ", ") + topic + ": " + std::to_string(n);
            first = false;
          }
        }
        msg += "); topics read by one task must have the same partition count";
        errors.push_back(msg);
        done[static_cast<size_t>(st.id)] = true;
        continue;
      }
      st.partitions = counts.empty() ? 1 : counts.begin()->first;
      done[static_cast<size_t>(st.id)] = true;
      for (const Node& n : st.nodes) {
        for (const std::string& sink : n.sinks) {
          if (known(sink) == 0 && sink != errors_.dead_letter_topic) {
            partitions_[sink] = st.partitions;
            to_create_.push_back(TopicToCreate{sink, st.partitions, {}});
          }
        }
      }
    }
  }
  for (const SubTopology& st : subtopologies_) {
    for (const std::string& s : st.sources) {
      if (known(s) == 0) {
        partitions_[s] = st.partitions;
        to_create_.push_back(TopicToCreate{s, st.partitions, {}});
      } else if (!existing.count(s)) {
        partitions_[s] = known(s);
        to_create_.push_back(TopicToCreate{s, known(s), {}});
      }
    }
    for (const std::string& store : st.stores) {
      const std::string changelog = ChangelogTopic(store);
      int n = known(changelog);
      if (n == 0) {
        partitions_[changelog] = st.partitions;
        to_create_.push_back(TopicToCreate{changelog, st.partitions,
                                           {{"cleanup.policy", "compact"}}});
      } else if (n != st.partitions) {
        errors.push_back("changelog topic " + changelog + " has " + std::to_string(n) +
                         " partitions but its store has " + std::to_string(st.partitions) +
                         " tasks; the changelog must match (delete it to rebuild the store)");
      }
    }
  }
  // Declared sinks not yet created (outputs no sub-topology reads).
  for (const auto& [topic, n] : declared_partitions_) {
    if (!partitions_.count(topic)) {
      partitions_[topic] = n;
      to_create_.push_back(TopicToCreate{topic, n, {}});
    }
  }
  const std::string& dlq = errors_.dead_letter_topic;
  if (known(dlq) == 0) {
    partitions_[dlq] = 1;
    to_create_.push_back(TopicToCreate{dlq, 1, {}});
  }
  // One entry per topic.
  std::set<std::string> seen;
  std::vector<TopicToCreate> unique;
  for (TopicToCreate& tc : to_create_) {
    if (seen.insert(tc.name).second) unique.push_back(std::move(tc));
  }
  to_create_ = std::move(unique);

  if (errors.empty()) return Status::OK();
  std::string msg;
  for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + e;
  return Status::InvalidArgument(msg);
}

int CompiledTopology::partitions(const std::string& topic) const {
  auto it = partitions_.find(topic);
  return it == partitions_.end() ? 0 : it->second;
}

std::vector<std::string> CompiledTopology::SourceTopics() const {
  std::vector<std::string> out;
  for (const SubTopology& st : subtopologies_) {
    for (const std::string& s : st.sources) AddUnique(&out, s);
  }
  return out;
}

const SubTopology* CompiledTopology::SubTopologyOf(const std::string& topic) const {
  for (const SubTopology& st : subtopologies_) {
    if (std::binary_search(st.sources.begin(), st.sources.end(), topic)) return &st;
  }
  return nullptr;
}

const SubTopology* CompiledTopology::SubTopologyOfStore(const std::string& store) const {
  for (const SubTopology& st : subtopologies_) {
    if (std::binary_search(st.stores.begin(), st.stores.end(), store)) return &st;
  }
  return nullptr;
}

const StoreSpec& CompiledTopology::Store(const std::string& name) const {
  for (const StoreSpec& s : stores_) {
    if (s.name == name) return s;
  }
  static const StoreSpec kDefault;
  return kDefault;
}

size_t CompiledTopology::CacheBytesPerTask() const {
  int64_t tasks = 0;
  for (const SubTopology& st : subtopologies_) {
    if (!st.stores.empty()) tasks += st.partitions;
  }
  return tasks <= 0 ? 0 : static_cast<size_t>(cache_max_bytes_ / tasks);
}

}  // namespace kcqrs::engine
