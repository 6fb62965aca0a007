#include "config/topology_lint.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "util/edit_distance.h"

namespace kcqrs::config {
namespace {

// What one aggregate's decides emit.
struct Emits {
  std::map<std::string, std::pair<SourcePosition, std::string>> types;  // first place, its name
  bool unknown = false;  // a Lua decide builds a type we cannot read
};

bool IdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The `type = "X"` literals of a Lua snippet. `type = <anything else>` or a
// "type" key written as a string makes the result incomplete (*unknown).
void ScanLua(const std::string& code, std::set<std::string>* types, bool* unknown) {
  if (code.find("\"type\"") != std::string::npos || code.find("'type'") != std::string::npos) {
    *unknown = true;
  }
  for (size_t at = code.find("type"); at != std::string::npos; at = code.find("type", at + 4)) {
    if (at > 0 && IdentChar(code[at - 1])) continue;
    size_t i = at + 4;
    if (i < code.size() && IdentChar(code[i])) continue;
    while (i < code.size() && (code[i] == ' ' || code[i] == '\t')) ++i;
    if (i >= code.size() || code[i] != '=' || (i + 1 < code.size() && code[i + 1] == '=')) {
      continue;
    }
    ++i;
    while (i < code.size() && (code[i] == ' ' || code[i] == '\t')) ++i;
    if (i < code.size() && (code[i] == '"' || code[i] == '\'')) {
      const size_t end = code.find(code[i], i + 1);
      if (end != std::string::npos) {
        types->insert(code.substr(i + 1, end - i - 1));
        continue;
      }
    }
    *unknown = true;
  }
}

// " (did you mean 'X'?)" for the closest of `candidates`, when close.
std::string Hint(const std::string& word, const std::set<std::string>& candidates) {
  std::string best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    const size_t d = util::EditDistance(word, c);
    if (best.empty() || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (best.empty() || best_distance > std::max<size_t>(2, word.size() / 3)) return "";
  return " (did you mean '" + best + "'?)";
}

std::string List(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace

std::string ConfigWarning::ToString() const {
  return where.ToString() + ": warning: " + message;
}

std::vector<ConfigWarning> LintTopology(const TopologySpec& spec) {
  std::vector<ConfigWarning> out;

  std::map<std::string, Emits> emits;  // by aggregate
  std::map<std::string, std::vector<const AggregateSpec*>> written_by;  // topic -> aggregates
  std::set<std::string> written_otherwise;  // by a transform or a C++ processor
  std::set<std::string> read_whole;         // by a transform or a C++ processor
  for (const AggregateSpec& a : spec.aggregates) {
    Emits& e = emits[a.name];
    for (const auto& [command, decide] : a.commands) {
      const std::string what = "aggregates." + a.name + ".commands." + command;
      if (decide.lua) {
        std::set<std::string> types;
        ScanLua(decide.lua->code, &types, &e.unknown);
        for (const std::string& t : types) e.types.emplace(t, std::make_pair(decide.lua->where, what));
      }
      for (size_t i = 0; i < decide.emit.size(); ++i) {
        e.types.emplace(decide.emit[i].type,
                        std::make_pair(decide.emit[i].where,
                                       what + ".emit[" + std::to_string(i) + "]"));
      }
    }
    written_by[a.event_topic].push_back(&a);
  }
  for (const TransformSpec& t : spec.transforms) {
    written_otherwise.insert(t.to);
    read_whole.insert(t.from.begin(), t.from.end());
  }
  for (const CustomProcessorSpec& p : spec.processors) {
    written_otherwise.insert(p.outputs.begin(), p.outputs.end());
    read_whole.insert(p.topics.begin(), p.topics.end());
  }
  // A process manager's `send: [{topic: ...}]` writes what it likes there.
  auto sent_to_topics = [&written_otherwise](const std::vector<ReactionSpec>& reactions) {
    for (const ReactionSpec& r : reactions) {
      for (const SendSpec& s : r.send) {
        if (!s.topic.empty()) written_otherwise.insert(s.topic);
      }
    }
  };
  for (const ProcessManagerSpec& m : spec.process_managers) {
    for (const auto& [type, reactions] : m.events) sent_to_topics(reactions);
    sent_to_topics(m.on_deadline);
  }
  // The types some projection or process manager of `topic` handles.
  auto projected = [&spec](const std::string& topic) {
    std::set<std::string> types;
    auto reads = [&topic](const std::vector<std::string>& topics) {
      return std::find(topics.begin(), topics.end(), topic) != topics.end();
    };
    for (const ProjectionSpec& p : spec.projections) {
      if (!reads(p.event_topics)) continue;
      for (const auto& [type, update] : p.events) types.insert(type);
    }
    for (const ProcessManagerSpec& m : spec.process_managers) {
      if (!reads(m.event_topics)) continue;
      for (const auto& [type, reactions] : m.events) types.insert(type);
    }
    return types;
  };

  // Emitted, and handled by nothing.
  for (const AggregateSpec& a : spec.aggregates) {
    if (read_whole.count(a.event_topic)) continue;
    std::set<std::string> handled = projected(a.event_topic);
    for (const auto& [type, update] : a.events) handled.insert(type);
    for (const auto& [type, place] : emits[a.name].types) {
      if (handled.count(type)) continue;
      out.push_back({place.first, place.second + ": event type '" + type +
                                      "' is emitted, but neither aggregates." + a.name +
                                      ".events nor a projection or process manager of " + a.event_topic +
                                      " handles it" + Hint(type, handled)});
    }
  }

  // Handled, and emitted by nothing.
  for (const AggregateSpec& a : spec.aggregates) {
    const Emits& e = emits[a.name];
    if (e.unknown) continue;
    std::set<std::string> emitted;
    for (const auto& [type, place] : e.types) emitted.insert(type);
    for (const auto& [type, update] : a.events) {
      if (emitted.count(type)) continue;
      out.push_back({update.where, "aggregates." + a.name + ".events." + type +
                                       ": no command of aggregate '" + a.name +
                                       "' emits event type '" + type + "' (emitted: " +
                                       List(emitted) + ")" + Hint(type, emitted)});
    }
  }
  // What can arrive on `topics`, when it can be known: only topics whose
  // every writer is an aggregate whose types are known tell what cannot.
  auto arriving = [&](const std::vector<std::string>& topics,
                      std::set<std::string>* emitted) {
    bool known = !topics.empty();
    for (const std::string& topic : topics) {
      auto writers = written_by.find(topic);
      if (writers == written_by.end() || written_otherwise.count(topic)) return false;
      for (const AggregateSpec* a : writers->second) {
        const Emits& e = emits[a->name];
        if (e.unknown) known = false;
        for (const auto& [type, place] : e.types) emitted->insert(type);
      }
    }
    return known;
  };
  auto joined = [](const std::vector<std::string>& topics) {
    std::string out;
    for (const std::string& t : topics) out += (out.empty() ? "" : ", ") + t;
    return out;
  };
  for (const ProjectionSpec& p : spec.projections) {
    std::set<std::string> emitted;
    if (!arriving(p.event_topics, &emitted)) continue;
    for (const auto& [type, update] : p.events) {
      if (emitted.count(type)) continue;
      out.push_back({update.where, "projections." + p.name + ".events." + type +
                                       ": no rule emits event type '" + type + "' on " +
                                       joined(p.event_topics) + " (emitted there: " +
                                       List(emitted) + ")" + Hint(type, emitted)});
    }
  }
  for (const ProcessManagerSpec& m : spec.process_managers) {
    const std::string what = "process_managers." + m.name;
    std::set<std::string> emitted;
    if (arriving(m.event_topics, &emitted)) {
      for (const auto& [type, reactions] : m.events) {
        if (emitted.count(type) || reactions.empty()) continue;
        out.push_back({reactions[0].where, what + ".on." + type +
                                               ": no rule emits event type '" + type +
                                               "' on " + joined(m.event_topics) +
                                               " (emitted there: " + List(emitted) + ")" +
                                               Hint(type, emitted)});
      }
    }
    // Cases after one that takes everything never run.
    auto unreachable = [&out](const std::vector<ReactionSpec>& reactions,
                              const std::string& where) {
      for (size_t i = 0; i + 1 < reactions.size(); ++i) {
        if (reactions[i].when && !reactions[i].lua) continue;
        const std::string taker = where + "[" + std::to_string(i) + "]";
        out.push_back({reactions[i + 1].where,
                       where + "[" + std::to_string(i + 1) + "]: never runs: " + taker +
                           (reactions[i].lua ? " is a Lua reaction, which takes every event "
                                               "(returning nil ignores it)"
                                             : " has no 'when', so it takes every event")});
        break;
      }
    };
    // A deadline that no reaction starts, or one that fires into nothing.
    bool starts = false;
    bool lua = false;
    auto scan = [&](const std::vector<ReactionSpec>& reactions) {
      for (const ReactionSpec& r : reactions) {
        starts = starts || r.deadline == ReactionSpec::Deadline::kStart;
        lua = lua || r.lua.has_value();
      }
    };
    for (const auto& [type, reactions] : m.events) {
      unreachable(reactions, what + ".on." + type);
      scan(reactions);
    }
    unreachable(m.on_deadline, what + ".on_deadline");
    scan(m.on_deadline);
    if (starts && m.on_deadline.empty()) {
      out.push_back({m.where, what + ": a reaction starts a deadline, but there is no "
                                     "on_deadline: when it fires, nothing happens"});
    }
    if (!starts && !lua && !m.on_deadline.empty()) {
      out.push_back({m.on_deadline[0].where,
                     what + ".on_deadline: never runs: no reaction starts a deadline "
                            "(deadline: start)"});
    }
  }

  std::stable_sort(out.begin(), out.end(), [](const ConfigWarning& a, const ConfigWarning& b) {
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
  return out;
}

}  // namespace kcqrs::config
