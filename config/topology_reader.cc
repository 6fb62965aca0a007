#include "config/topology_reader.h"

#include <charconv>
#include <set>

namespace kcqrs::config {
namespace {

bool IsTopicName(const std::string& s) {
  if (s.empty() || s.size() > 249 || s == "." || s == "..") return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

SourcePosition TopologyReader::Where(const YAML::Node& node) const {
  Diagnostics::Place at = diag_->At(node.Mark());
  return SourcePosition{std::move(at.source), at.line, at.column};
}

// Where the content of a scalar starts: after an opening quote, or on the
// line after a block indicator ('|' or '>').
SourcePosition TopologyReader::ContentStart(const YAML::Node& node) const {
  SourcePosition p = Where(node);
  if (p.line == 0) return p;  // not in the file: an override's
  int pos = node.Mark().pos;
  if (pos < 0 || static_cast<size_t>(pos) >= text_.size()) return p;
  char c = text_[static_cast<size_t>(pos)];
  if (c == '"' || c == '\'') {
    ++p.column;
  } else if (c == '|' || c == '>') {
    ++p.line;
    // The block's indentation is the first non-space of the next line.
    size_t nl = text_.find('\n', static_cast<size_t>(pos));
    p.column = 1;
    if (nl != std::string::npos) {
      size_t i = nl + 1;
      while (i < text_.size() && text_[i] == ' ') {
        ++i;
        ++p.column;
      }
    }
  }
  return p;
}

std::optional<std::string> TopologyReader::Name(const YAML::Node& node,
                                                std::string_view where) {
  std::optional<std::string> s = scalar_(node, where);
  if (!s) return std::nullopt;
  if (!IsTopicName(*s)) {
    diag_->Error(node.Mark(), std::string(where) +
                                  ": expected a name of letters, digits, '.', "
                                  "'_' or '-', found '" + *s + "'");
    return std::nullopt;
  }
  return s;
}

std::optional<ExpressionSpec> TopologyReader::Expr(const YAML::Node& node,
                                                   std::string_view where) {
  std::optional<std::string> s = scalar_(node, where);
  if (!s) return std::nullopt;
  if (s->empty()) {
    diag_->Error(node.Mark(), std::string(where) + ": expected an expression, found nothing");
    return std::nullopt;
  }
  return ExpressionSpec{*s, ContentStart(node)};
}

std::optional<LuaSpec> TopologyReader::Lua(const YAML::Node& node,
                                           std::string_view where) {
  // Lua code is not interpolated: `${` has no meaning there and `$` may be
  // part of a string the user wants.
  if (!diag_->ExpectScalar(node, where)) return std::nullopt;
  return LuaSpec{node.Scalar(), ContentStart(node)};
}

std::vector<std::string> TopologyReader::Topics(const YAML::Node& node,
                                                std::string_view where,
                                                std::string_view noun) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    if (auto t = Name(node, where)) out.push_back(*t);
    return out;
  }
  if (!diag_->ExpectSequence(node, where)) return out;
  if (node.size() == 0) {
    diag_->Error(node.Mark(),
                 std::string(where) + ": expected at least one " + std::string(noun));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (auto t = Name(node[i], std::string(where) + "[" + std::to_string(i) + "]")) {
      out.push_back(*t);
    }
  }
  return out;
}

namespace {

// How many more '(' and '[' than ')' and ']' the text opens, outside quotes.
int Unclosed(std::string_view text) {
  int open = 0;
  char quote = 0;
  for (char c : text) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(' || c == '[') {
      ++open;
    } else if (c == ')' || c == ']') {
      --open;
    }
  }
  return open;
}

}  // namespace

std::vector<std::pair<std::string, ExpressionSpec>> TopologyReader::Fields(
    const YAML::Node& node, std::string_view where) {
  std::vector<std::pair<std::string, ExpressionSpec>> out;
  if (!diag_->ExpectMap(node, where)) return out;
  std::vector<std::pair<YAML::Node, YAML::Node>> fields;
  for (const auto& kv : node) fields.emplace_back(kv.first, kv.second);
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto& [key, value] = fields[i];
    std::string field = key.Scalar();
    // The YAML pitfall: in a { ... } map a comma ends the value, so
    // `{ total: coalesce(view.total, 0) + event.amount }` reaches us as
    // `total: coalesce(view.total` and a field `0) + event.amount`. Put the
    // pieces back together to show the quoted expression.
    if (node.Style() == YAML::EmitterStyle::Flow && value.IsScalar() &&
        value.Tag() != "!" && Unclosed(value.Scalar()) > 0) {
      std::string whole = value.Scalar();
      size_t j = i + 1;
      for (; j < fields.size() && Unclosed(whole) > 0; ++j) {
        whole += ", " + fields[j].first.Scalar();
        if (fields[j].second.IsScalar()) whole += ": " + fields[j].second.Scalar();
      }
      diag_->Error(value.Mark(),
                   std::string(where) + "." + field + ": the expression '" + value.Scalar() +
                       "' is cut at a comma: in a { ... } map YAML ends a value at every "
                       "comma; quote the expression (" + field + ": \"" + whole +
                       "\") or write the map as a block, one field per line");
      i = j - 1;
      continue;
    }
    if (auto e = Expr(value, std::string(where) + "." + field)) {
      out.emplace_back(field, std::move(*e));
    }
  }
  return out;
}

std::optional<DecideSpec> TopologyReader::Decide(const YAML::Node& node,
                                                 const std::string& where) {
  if (!diag_->ExpectMap(node, where)) return std::nullopt;
  diag_->CheckKeys(node, where, {"require", "emit", "lua"});
  DecideSpec d;
  d.where = Where(node);
  if (node["lua"]) {
    if (node["require"] || node["emit"]) {
      diag_->Error(node["lua"].Mark(), where + ": 'lua' replaces 'require' and "
                                               "'emit'; use one or the other");
    }
    d.lua = Lua(node["lua"], where + ".lua");
    return d;
  }
  if (!node["emit"] && !node["require"]) {
    diag_->Error(node.Mark(), where + ": expected 'require' and 'emit', or 'lua'");
    return std::nullopt;
  }
  if (const YAML::Node req = node["require"]) {
    if (diag_->ExpectSequence(req, where + ".require")) {
      for (size_t i = 0; i < req.size(); ++i) {
        std::string w = where + ".require[" + std::to_string(i) + "]";
        const YAML::Node r = req[i];
        if (!diag_->ExpectMap(r, w)) continue;
        diag_->CheckKeys(r, w, {"that", "code", "reason"});
        RequireSpec spec;
        spec.where = Where(r);
        bool ok = true;
        for (const char* key : {"that", "code"}) {
          if (!r[key]) {
            diag_->Error(r.Mark(), w + ": the key '" + key + "' is required");
            ok = false;
          }
        }
        if (!ok) continue;
        auto that = Expr(r["that"], w + ".that");
        auto code = scalar_(r["code"], w + ".code");
        if (!that || !code) continue;
        spec.that = std::move(*that);
        spec.code = *code;
        if (r["reason"]) {
          auto reason = scalar_(r["reason"], w + ".reason");
          if (!reason) continue;
          spec.reason = ExpressionSpec{*reason, ContentStart(r["reason"])};
        } else {
          spec.reason = ExpressionSpec{"requires " + spec.that.text, spec.that.where};
        }
        d.require.push_back(std::move(spec));
      }
    }
  }
  if (const YAML::Node emit = node["emit"]) {
    if (diag_->ExpectSequence(emit, where + ".emit")) {
      for (size_t i = 0; i < emit.size(); ++i) {
        std::string w = where + ".emit[" + std::to_string(i) + "]";
        const YAML::Node e = emit[i];
        if (!diag_->ExpectMap(e, w)) continue;
        diag_->CheckKeys(e, w, {"type", "with"});
        EmitSpec spec;
        spec.where = Where(e);
        if (!e["type"]) {
          diag_->Error(e.Mark(), w + ": the key 'type' is required (the event type)");
          continue;
        }
        auto type = scalar_(e["type"], w + ".type");
        if (!type) continue;
        spec.type = *type;
        if (e["with"]) spec.fields = Fields(e["with"], w + ".with");
        d.emit.push_back(std::move(spec));
      }
    }
  }
  return d;
}

std::optional<UpdateSpec> TopologyReader::Update(const YAML::Node& node,
                                                 const std::string& where,
                                                 UpdateFlavour flavour) {
  const bool reaction = flavour == UpdateFlavour::kReaction;
  const char* replace = flavour == UpdateFlavour::kProjection ? "upsert" : "set";
  if (!reaction) {
    // A reaction's map holds its other keys too; its reader checked them.
    if (!diag_->ExpectMap(node, where)) return std::nullopt;
    if (flavour == UpdateFlavour::kProjection) {
      diag_->CheckKeys(node, where, {"upsert", "merge", "delete", "lua"});
    } else {
      diag_->CheckKeys(node, where, {"set", "merge", "delete", "lua"});
    }
  }
  int kinds = 0;
  UpdateSpec u;
  u.where = Where(node);
  if (node[replace]) {
    ++kinds;
    u.kind = UpdateSpec::Kind::kSet;
    u.fields = Fields(node[replace], where + "." + replace);
    if (reaction) u.where = Where(node[replace]);
  }
  if (node["merge"]) {
    ++kinds;
    u.kind = UpdateSpec::Kind::kMerge;
    u.fields = Fields(node["merge"], where + ".merge");
    if (reaction) u.where = Where(node["merge"]);
  }
  if (reaction) {
    // An instance is never deleted (it ends, and is kept so that late
    // events still find it), and a reaction's `lua` replaces the whole
    // reaction, not just the state: Reaction() deals with both.
    if (kinds == 0) return std::nullopt;
    if (kinds > 1) {
      diag_->Error(node["merge"].Mark(),
                   where + ": expected at most one of set, merge; found both");
      return std::nullopt;
    }
    return u;
  }
  if (node["delete"]) {
    ++kinds;
    u.kind = UpdateSpec::Kind::kDelete;
    auto v = scalar_(node["delete"], where + ".delete");
    if (v && *v != "true") {
      diag_->Error(node["delete"].Mark(), where + ".delete: expected true, found '" + *v + "'");
    }
  }
  if (node["lua"]) {
    ++kinds;
    u.kind = UpdateSpec::Kind::kLua;
    u.lua = Lua(node["lua"], where + ".lua");
  }
  if (kinds != 1) {
    diag_->Error(node.Mark(), where + ": expected exactly one of " + replace +
                                  ", merge, delete, lua; found " +
                                  std::to_string(kinds));
    return std::nullopt;
  }
  return u;
}

void TopologyReader::ReadAggregates(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "aggregates")) return;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "aggregates." + name;
    const YAML::Node a = kv.second;
    if (!IsTopicName(name)) {
      diag_->Error(kv.first.Mark(), "aggregates: '" + name + "' is not a valid name "
                                    "(letters, digits, '.', '_', '-')");
      continue;
    }
    if (!diag_->ExpectMap(a, w)) continue;
    diag_->CheckKeys(a, w, {"command_topics", "id_field", "type_field",
                            "command_id_field", "expected_version_field", "event_topic",
                            "rejection_topic", "store", "dedup_window", "misrouted_commands",
                            "commands", "events"});
    AggregateSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    for (const char* key : {"command_topics", "event_topic", "rejection_topic",
                            "store", "commands"}) {
      if (!a[key]) diag_->Error(a.Mark(), w + ": the key '" + key + "' is required");
    }
    if (a["command_topics"]) spec.command_topics = Topics(a["command_topics"], w + ".command_topics");
    if (a["event_topic"]) {
      if (auto t = Name(a["event_topic"], w + ".event_topic")) spec.event_topic = *t;
    }
    if (a["rejection_topic"]) {
      if (auto t = Name(a["rejection_topic"], w + ".rejection_topic")) spec.rejection_topic = *t;
    }
    if (a["store"]) {
      if (auto t = Name(a["store"], w + ".store")) spec.store = *t;
    }
    if (a["id_field"]) {
      if (auto v = scalar_(a["id_field"], w + ".id_field")) spec.id_field = *v;
    }
    if (a["type_field"]) {
      if (auto v = scalar_(a["type_field"], w + ".type_field")) spec.type_field = *v;
    }
    if (a["command_id_field"]) {
      if (auto v = scalar_(a["command_id_field"], w + ".command_id_field")) spec.command_id_field = *v;
    }
    if (a["expected_version_field"]) {
      if (auto v = scalar_(a["expected_version_field"], w + ".expected_version_field")) {
        if (v->empty()) {
          diag_->Error(a["expected_version_field"].Mark(),
                       w + ".expected_version_field: expected a command field name, found ''");
        } else {
          spec.expected_version_field = *v;
        }
      }
    }
    if (a["dedup_window"]) {
      if (auto v = scalar_(a["dedup_window"], w + ".dedup_window")) {
        try {
          size_t used = 0;
          int n = std::stoi(*v, &used);
          if (used != v->size() || n < 0 || n > 100000) throw std::out_of_range("");
          spec.dedup_window = n;
        } catch (const std::exception&) {
          diag_->Error(a["dedup_window"].Mark(), w + ".dedup_window: expected 0 to 100000, found '" + *v + "'");
        }
      }
    }
    if (a["misrouted_commands"]) {
      if (auto v = scalar_(a["misrouted_commands"], w + ".misrouted_commands")) {
        if (*v == "forward") {
          spec.misrouted_commands = AggregateSpec::Misrouted::kForward;
        } else if (*v == "dead_letter") {
          spec.misrouted_commands = AggregateSpec::Misrouted::kDeadLetter;
        } else {
          diag_->Error(a["misrouted_commands"].Mark(),
                       w + ".misrouted_commands: expected forward or dead_letter, found '" +
                           *v + "'");
        }
      }
    }
    if (const YAML::Node cmds = a["commands"]) {
      if (diag_->ExpectMap(cmds, w + ".commands")) {
        for (const auto& c : cmds) {
          std::string type = c.first.Scalar();
          if (auto d = Decide(c.second, w + ".commands." + type)) {
            d->where = Where(c.first);
            spec.commands.emplace_back(type, std::move(*d));
          }
        }
      }
    }
    if (const YAML::Node evs = a["events"]) {
      if (diag_->ExpectMap(evs, w + ".events")) {
        for (const auto& e : evs) {
          std::string type = e.first.Scalar();
          if (auto u = Update(e.second, w + ".events." + type, UpdateFlavour::kAggregate)) {
            spec.events.emplace_back(type, std::move(*u));
          }
        }
      }
    }
    out->aggregates.push_back(std::move(spec));
  }
}

void TopologyReader::ReadProjections(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "projections")) return;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "projections." + name;
    const YAML::Node p = kv.second;
    if (!IsTopicName(name)) {
      diag_->Error(kv.first.Mark(), "projections: '" + name + "' is not a valid name "
                                    "(letters, digits, '.', '_', '-')");
      continue;
    }
    if (!diag_->ExpectMap(p, w)) continue;
    diag_->CheckKeys(p, w, {"event_topics", "store", "type_field", "key", "events"});
    ProjectionSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    for (const char* key : {"event_topics", "store", "events"}) {
      if (!p[key]) diag_->Error(p.Mark(), w + ": the key '" + key + "' is required");
    }
    if (p["event_topics"]) spec.event_topics = Topics(p["event_topics"], w + ".event_topics");
    if (p["store"]) {
      if (auto t = Name(p["store"], w + ".store")) spec.store = *t;
    }
    if (p["type_field"]) {
      if (auto v = scalar_(p["type_field"], w + ".type_field")) spec.type_field = *v;
    }
    if (p["key"]) spec.key = Expr(p["key"], w + ".key");
    if (const YAML::Node evs = p["events"]) {
      if (diag_->ExpectMap(evs, w + ".events")) {
        for (const auto& e : evs) {
          std::string type = e.first.Scalar();
          if (auto u = Update(e.second, w + ".events." + type, UpdateFlavour::kProjection)) {
            spec.events.emplace_back(type, std::move(*u));
          }
        }
      }
    }
    out->projections.push_back(std::move(spec));
  }
}

void TopologyReader::ReadProcessors(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "processors")) return;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "processors." + name;
    const YAML::Node p = kv.second;
    if (!diag_->ExpectMap(p, w)) continue;
    diag_->CheckKeys(p, w,
                     {"processor", "topics", "parents", "outputs", "stores", "config", "timers"});
    CustomProcessorSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    if (!p["processor"]) diag_->Error(p.Mark(), w + ": the key 'processor' is required");
    if (!p["topics"] && !p["parents"]) {
      diag_->Error(p.Mark(), w + ": the key 'topics' is required (or 'parents': the processors "
                                 "that forward records to it)");
    }
    if (p["processor"]) {
      if (auto v = scalar_(p["processor"], w + ".processor")) spec.processor = *v;
    }
    if (p["topics"]) spec.topics = Topics(p["topics"], w + ".topics");
    if (p["parents"]) spec.parents = Topics(p["parents"], w + ".parents", "processor");
    if (p["outputs"]) spec.outputs = Topics(p["outputs"], w + ".outputs");
    if (p["stores"]) spec.stores = Topics(p["stores"], w + ".stores");
    if (const YAML::Node c = p["config"]) {
      if (diag_->ExpectMap(c, w + ".config")) {
        for (const auto& e : c) {
          if (auto v = scalar_(e.second, w + ".config." + e.first.Scalar())) {
            spec.config[e.first.Scalar()] = *v;
          }
        }
      }
    }
    if (p["timers"]) {
      if (auto v = scalar_(p["timers"], w + ".timers")) {
        if (*v == "wall_clock") {
          spec.timers = CustomProcessorSpec::Timers::kWallClock;
        } else if (*v == "stream_time") {
          spec.timers = CustomProcessorSpec::Timers::kStreamTime;
        } else {
          diag_->Error(p["timers"].Mark(),
                       w + ".timers: expected wall_clock or stream_time, found '" + *v + "'");
        }
      }
    }
    out->processors.push_back(std::move(spec));
  }
}

void TopologyReader::ReadTransforms(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "transforms")) return;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "transforms." + name;
    const YAML::Node t = kv.second;
    if (!IsTopicName(name)) {
      diag_->Error(kv.first.Mark(), "transforms: '" + name + "' is not a valid name "
                                    "(letters, digits, '.', '_', '-')");
      continue;
    }
    if (!diag_->ExpectMap(t, w)) continue;
    diag_->CheckKeys(t, w, {"from", "to", "filter", "key", "value"});
    TransformSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    for (const char* key : {"from", "to"}) {
      if (!t[key]) diag_->Error(t.Mark(), w + ": the key '" + key + "' is required");
    }
    if (t["from"]) spec.from = Topics(t["from"], w + ".from");
    if (t["to"]) {
      if (auto v = Name(t["to"], w + ".to")) spec.to = *v;
    }
    if (t["filter"]) spec.filter = Expr(t["filter"], w + ".filter");
    if (t["key"]) spec.key = Expr(t["key"], w + ".key");
    if (const YAML::Node v = t["value"]) {
      spec.value = Fields(v, w + ".value");
      if (v.IsMap() && v.size() == 0) {
        diag_->Error(v.Mark(), w + ".value: expected at least one field; leave 'value' out "
                               "to pass the record's value on unchanged");
      }
    }
    out->transforms.push_back(std::move(spec));
  }
}

std::optional<SendSpec> TopologyReader::Send(const YAML::Node& node,
                                              const std::string& where) {
  if (!diag_->ExpectMap(node, where)) return std::nullopt;
  diag_->CheckKeys(node, where, {"to", "topic", "key", "type", "with"});
  SendSpec spec;
  spec.where = Where(node);
  bool ok = true;
  if (node["to"] && node["topic"]) {
    diag_->Error(node["topic"].Mark(),
                 where + ": 'to' (an aggregate) and 'topic' exclude each other; use one");
    ok = false;
  } else if (!node["to"] && !node["topic"]) {
    diag_->Error(node.Mark(), where + ": expected 'to' (the aggregate the command is for), "
                                      "or 'topic' and 'key'");
    ok = false;
  } else if (node["topic"] && !node["key"]) {
    // Without an aggregate there is no id field to key the command by.
    diag_->Error(node["topic"].Mark(),
                 where + ": 'topic' needs 'key' (an expression: the command's record key)");
    ok = false;
  }
  if (!node["type"]) {
    diag_->Error(node.Mark(), where + ": the key 'type' is required (the command type)");
    ok = false;
  }
  if (node["to"]) {
    if (auto v = Name(node["to"], where + ".to")) spec.aggregate = *v; else ok = false;
  }
  if (node["topic"]) {
    if (auto v = Name(node["topic"], where + ".topic")) spec.topic = *v; else ok = false;
  }
  if (node["key"]) {
    spec.key = Expr(node["key"], where + ".key");
    if (!spec.key) ok = false;
  }
  if (node["type"]) {
    auto v = scalar_(node["type"], where + ".type");
    if (v && v->empty()) {
      diag_->Error(node["type"].Mark(), where + ".type: expected a command type, found ''");
      v.reset();
    }
    if (v) spec.type = *v; else ok = false;
  }
  if (node["with"]) spec.fields = Fields(node["with"], where + ".with");
  if (!ok) return std::nullopt;
  return spec;
}

std::optional<ReactionSpec> TopologyReader::Reaction(const YAML::Node& node,
                                                      const std::string& where) {
  if (!diag_->ExpectMap(node, where)) return std::nullopt;
  // `delete` is known so that it gets its own message below.
  diag_->CheckKeys(node, where, {"when", "set", "merge", "send", "deadline", "deadline_ms",
                                 "end", "lua", "delete"});
  ReactionSpec r;
  r.where = Where(node);
  if (node["delete"]) {
    diag_->Error(node["delete"].Mark(),
                 where + ".delete: an instance is never deleted; a reaction ends it (end: "
                         "completed or compensated) and its state is kept, so that late "
                         "events still find it");
    return std::nullopt;
  }
  if (node["lua"]) {
    std::string others;
    for (const char* key : {"when", "set", "merge", "send", "deadline", "deadline_ms", "end"}) {
      if (node[key]) others += std::string(others.empty() ? "" : ", ") + "'" + key + "'";
    }
    if (!others.empty()) {
      diag_->Error(node["lua"].Mark(),
                   where + ": 'lua' replaces the whole reaction (it returns the state, the "
                           "commands to send, the deadline and the end); remove " + others +
                           " or the 'lua'");
      return std::nullopt;
    }
    r.lua = Lua(node["lua"], where + ".lua");
    if (!r.lua) return std::nullopt;
    return r;
  }
  bool ok = true;
  if (node["when"]) {
    r.when = Expr(node["when"], where + ".when");
    if (!r.when) ok = false;
  }
  const size_t errors = diag_->errors().size();
  r.state = Update(node, where, UpdateFlavour::kReaction);
  if (diag_->errors().size() != errors) ok = false;
  if (const YAML::Node send = node["send"]) {
    if (diag_->ExpectSequence(send, where + ".send")) {
      for (size_t i = 0; i < send.size(); ++i) {
        if (auto s = Send(send[i], where + ".send[" + std::to_string(i) + "]")) {
          r.send.push_back(std::move(*s));
        } else {
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  bool deadline_read = true;
  if (node["deadline"]) {
    auto v = scalar_(node["deadline"], where + ".deadline");
    if (v && *v == "start") {
      r.deadline = ReactionSpec::Deadline::kStart;
    } else if (v && *v == "cancel") {
      r.deadline = ReactionSpec::Deadline::kCancel;
    } else {
      if (v) {
        diag_->Error(node["deadline"].Mark(),
                     where + ".deadline: expected start or cancel, found '" + *v + "'");
      }
      deadline_read = false;
      ok = false;
    }
  }
  if (node["deadline_ms"]) {
    r.deadline_ms = Expr(node["deadline_ms"], where + ".deadline_ms");
    if (!r.deadline_ms) {
      ok = false;
    } else if (deadline_read && r.deadline != ReactionSpec::Deadline::kStart) {
      diag_->Error(node["deadline_ms"].Mark(),
                   where + ".deadline_ms: only a reaction that starts a deadline "
                           "(deadline: start) says how long it is");
      ok = false;
    }
  }
  if (node["end"]) {
    if (auto v = scalar_(node["end"], where + ".end")) {
      if (*v == "completed") {
        r.end = ReactionSpec::End::kCompleted;
      } else if (*v == "compensated") {
        r.end = ReactionSpec::End::kCompensated;
      } else {
        diag_->Error(node["end"].Mark(),
                     where + ".end: expected completed or compensated, found '" + *v + "'");
        ok = false;
      }
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return r;
}

std::vector<ReactionSpec> TopologyReader::Reactions(const YAML::Node& node,
                                                    const std::string& where) {
  std::vector<ReactionSpec> out;
  if (node.IsMap()) {
    if (auto r = Reaction(node, where)) out.push_back(std::move(*r));
    return out;
  }
  if (!node.IsSequence()) {
    diag_->Error(node.Mark(), where + ": expected a reaction (a map) or a list of them, found " +
                                  std::string(KindName(node)));
    return out;
  }
  if (node.size() == 0) {
    diag_->Error(node.Mark(), where + ": expected at least one reaction; leave the event "
                                      "type out to ignore it");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (auto r = Reaction(node[i], where + "[" + std::to_string(i) + "]")) {
      out.push_back(std::move(*r));
    }
  }
  return out;
}

void TopologyReader::ReadProcessManagers(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "process_managers")) return;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "process_managers." + name;
    const YAML::Node m = kv.second;
    if (!IsTopicName(name)) {
      diag_->Error(kv.first.Mark(), "process_managers: '" + name + "' is not a valid name "
                                    "(letters, digits, '.', '_', '-')");
      continue;
    }
    if (!seen.insert(name).second) {
      diag_->Error(kv.first.Mark(), "process_managers: '" + name + "' is defined twice");
      continue;
    }
    if (!diag_->ExpectMap(m, w)) continue;
    diag_->CheckKeys(m, w, {"event_topics", "id", "store", "type_field", "deadline_ms",
                            "ended_retention_ms", "time", "on", "on_deadline"});
    ProcessManagerSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    for (const char* key : {"event_topics", "id", "store", "on"}) {
      if (!m[key]) diag_->Error(m.Mark(), w + ": the key '" + key + "' is required");
    }
    if (m["event_topics"]) spec.event_topics = Topics(m["event_topics"], w + ".event_topics");
    if (m["id"]) {
      if (auto e = Expr(m["id"], w + ".id")) spec.id = std::move(*e);
    }
    if (m["store"]) {
      if (auto t = Name(m["store"], w + ".store")) spec.store = *t;
    }
    if (m["type_field"]) {
      if (auto v = scalar_(m["type_field"], w + ".type_field")) {
        if (v->empty()) {
          diag_->Error(m["type_field"].Mark(),
                       w + ".type_field: expected an event field name, found ''");
        } else {
          spec.type_field = *v;
        }
      }
    }
    // Milliseconds from `lo` to a year (longer is surely a unit mistake,
    // and it keeps `now + ms` far from overflowing).
    auto millis = [&](const char* key, int64_t lo, int64_t* out) {
      constexpr int64_t kMax = int64_t{365} * 24 * 3'600'000;
      if (!m[key]) return;
      const std::string kw = w + "." + key;
      auto v = scalar_(m[key], kw);
      if (!v) return;
      int64_t n = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec == std::errc::result_out_of_range ||
          (ec == std::errc() && end == v->data() + v->size() && (n < lo || n > kMax))) {
        diag_->Error(m[key].Mark(), kw + ": expected " + std::to_string(lo) + " to " +
                                        std::to_string(kMax) + " (milliseconds), found " + *v);
      } else if (ec != std::errc() || end != v->data() + v->size()) {
        diag_->Error(m[key].Mark(),
                     kw + ": expected an integer (milliseconds), found '" + *v + "'");
      } else {
        *out = n;
      }
    };
    millis("deadline_ms", 1, &spec.deadline_ms);
    millis("ended_retention_ms", 0, &spec.ended_retention_ms);
    if (m["time"]) {
      if (auto v = scalar_(m["time"], w + ".time")) {
        if (*v == "wall_clock") {
          spec.time = ProcessManagerSpec::Time::kWallClock;
        } else if (*v == "stream_time") {
          spec.time = ProcessManagerSpec::Time::kStreamTime;
        } else {
          diag_->Error(m["time"].Mark(),
                       w + ".time: expected wall_clock or stream_time, found '" + *v + "'");
        }
      }
    }
    if (const YAML::Node on = m["on"]) {
      if (diag_->ExpectMap(on, w + ".on")) {
        if (on.size() == 0) {
          diag_->Error(on.Mark(), w + ".on: expected at least one event type");
        }
        for (const auto& e : on) {
          const std::string type = e.first.Scalar();
          spec.events.emplace_back(type, Reactions(e.second, w + ".on." + type));
        }
      }
    }
    if (const YAML::Node d = m["on_deadline"]) {
      spec.on_deadline = Reactions(d, w + ".on_deadline");
    }
    out->process_managers.push_back(std::move(spec));
  }
}

void TopologyReader::ReadStores(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "stores")) return;
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    const std::string w = "stores." + name;
    if (!diag_->ExpectMap(kv.second, w)) continue;
    diag_->CheckKeys(kv.second, w, {"kind"});
    StoreSpec spec;
    spec.name = name;
    spec.where = Where(kv.first);
    if (kv.second["kind"]) {
      if (auto v = scalar_(kv.second["kind"], w + ".kind")) {
        if (*v == "rocksdb") {
          spec.kind = StoreSpec::Kind::kRocksDb;
        } else if (*v == "memory") {
          spec.kind = StoreSpec::Kind::kMemory;
        } else {
          diag_->Error(kv.second["kind"].Mark(),
                       w + ".kind: expected rocksdb or memory, found '" + *v + "'");
        }
      }
    }
    out->stores.push_back(std::move(spec));
  }
}

void TopologyReader::ReadErrors(const YAML::Node& node, TopologySpec* out) {
  if (!diag_->ExpectMap(node, "errors")) return;
  diag_->CheckKeys(node, "errors", {"on_error", "dead_letter_topic"});
  if (node["on_error"]) {
    if (auto v = scalar_(node["on_error"], "errors.on_error")) {
      if (*v == "dead_letter") {
        out->errors.on_error = ErrorPolicy::OnError::kDeadLetter;
      } else if (*v == "fail") {
        out->errors.on_error = ErrorPolicy::OnError::kFail;
      } else {
        diag_->Error(node["on_error"].Mark(),
                     "errors.on_error: expected dead_letter or fail, found '" + *v + "'");
      }
    }
  }
  if (node["dead_letter_topic"]) {
    if (auto t = Name(node["dead_letter_topic"], "errors.dead_letter_topic")) {
      out->errors.dead_letter_topic = *t;
    }
  }
}

}  // namespace kcqrs::config
