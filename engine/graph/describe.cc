#include "engine/graph/describe.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "json/document.h"

namespace kcqrs::engine {
namespace {

const char* KindName(NodeKind kind) {
  switch (kind) {
    case NodeKind::kAggregate:
      return "aggregate";
    case NodeKind::kProjection:
      return "projection";
    case NodeKind::kRepartition:
      return "repartition";
    case NodeKind::kCustom:
      return "processor";
    case NodeKind::kTransform:
      return "transform";
    case NodeKind::kCorrelate:
      return "correlation";
    case NodeKind::kProcessManager:
      return "process manager";
  }
  return "processor";
}

const char* StoreKindName(StoreSpec::Kind kind) {
  return kind == StoreSpec::Kind::kMemory ? "memory" : "rocksdb";
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  for (const std::string& x : *v) {
    if (x == s) return;
  }
  v->push_back(s);
}

std::string Join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string Partitions(int n) { return n > 0 ? std::to_string(n) : "?"; }

// ---------------------------------------------------------------- JSON

std::string DescribeJson(const CompiledTopology& t) {
  using Json = nlohmann::ordered_json;
  Json doc = Json::object();
  doc["application"] = t.application_id();
  Json subs = Json::array();
  for (const SubTopology& st : t.subtopologies()) {
    Json s = Json::object();
    s["id"] = st.id;
    s["partitions"] = st.partitions > 0 ? Json(st.partitions) : Json(nullptr);
    s["sources"] = st.sources;
    s["stores"] = st.stores;
    Json nodes = Json::array();
    for (const Node& n : st.nodes) {
      Json node{{"name", n.name},
                {"kind", KindName(n.kind)},
                {"sources", n.sources},
                {"stores", n.stores},
                {"sinks", n.sinks}};
      if (!n.parents.empty()) node["parents"] = n.parents;
      nodes.push_back(std::move(node));
    }
    s["nodes"] = std::move(nodes);
    subs.push_back(std::move(s));
  }
  doc["subtopologies"] = std::move(subs);
  Json stores = Json::array();
  for (const StoreSpec& store : t.stores()) {
    stores.push_back(Json{{"name", store.name},
                          {"kind", StoreKindName(store.kind)},
                          {"changelog", t.ChangelogTopic(store.name)}});
  }
  doc["stores"] = std::move(stores);
  doc["dead_letter_topic"] = t.errors().dead_letter_topic;
  // Names come from the user's file: never fail on bad UTF-8, replace it.
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---------------------------------------------------------------- text

std::string DescribeText(const CompiledTopology& t) {
  std::string out = "Topology: " + t.application_id() + "\n";
  for (const SubTopology& st : t.subtopologies()) {
    out += "  Sub-topology: " + std::to_string(st.id) +
           " (partitions: " + Partitions(st.partitions) + ")\n";
    for (const std::string& topic : st.sources) {
      std::vector<std::string> readers;
      for (const Node& n : st.nodes) {
        for (const std::string& s : n.sources) {
          if (s == topic) AddUnique(&readers, n.name);
        }
      }
      out += "    Source: " + topic + "\n      --> " + Join(readers) + "\n";
    }
    std::vector<std::string> sinks;
    for (const Node& n : st.nodes) {
      // As Kafka Streams describes a processor: --> what it feeds (its
      // children, then its sink topics), <-- what feeds it.
      std::vector<std::string> to;
      for (const Node& c : st.nodes) {
        if (std::find(c.parents.begin(), c.parents.end(), n.name) != c.parents.end()) {
          AddUnique(&to, c.name);
        }
      }
      to.insert(to.end(), n.sinks.begin(), n.sinks.end());
      std::vector<std::string> from = n.sources;
      from.insert(from.end(), n.parents.begin(), n.parents.end());
      out += "    Processor: " + n.name + " (" + KindName(n.kind) +
             ", stores: [" + Join(n.stores) + "])\n";
      out += "      --> " + (to.empty() ? std::string("none") : Join(to)) + "\n";
      out += "      <-- " + Join(from) + "\n";
      for (const std::string& s : n.sinks) AddUnique(&sinks, s);
    }
    for (const std::string& topic : sinks) {
      std::vector<std::string> writers;
      for (const Node& n : st.nodes) {
        for (const std::string& s : n.sinks) {
          if (s == topic) AddUnique(&writers, n.name);
        }
      }
      out += "    Sink: " + topic + "\n      <-- " + Join(writers) + "\n";
    }
  }
  out += "  Stores:\n";
  for (const StoreSpec& store : t.stores()) {
    out += "    Store: " + store.name + " (" + StoreKindName(store.kind) +
           ", changelog: " + t.ChangelogTopic(store.name) + ")\n";
  }
  out += "  Dead letters: " + t.errors().dead_letter_topic + "\n";
  return out;
}

// ---------------------------------------------------------------- Mermaid

// Hands out Mermaid node ids: readable (derived from the name), made of
// [A-Za-z0-9_] only, and unique even when two names sanitise alike
// ("a.b" and "a-b").
class MermaidIds {
 public:
  const std::string& Get(const std::string& key, const std::string& prefix,
                         const std::string& name) {
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    std::string base = prefix;
    for (char c : name) {
      bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9');
      base += safe ? c : '_';
    }
    std::string id = base;
    for (int i = 2; used_.count(id); ++i) id = base + "_" + std::to_string(i);
    used_.insert(id);
    return ids_.emplace(key, id).first->second;
  }

 private:
  std::map<std::string, std::string> ids_;
  std::set<std::string> used_;
};

// A quoted Mermaid label: `"` and the characters Mermaid treats as markup
// become entity codes.
std::string Label(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "#quot;";
        break;
      case '<':
        out += "#lt;";
        break;
      case '>':
        out += "#gt;";
        break;
      case '#':
        out += "#35;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string DescribeMermaid(const CompiledTopology& t) {
  MermaidIds ids;
  const std::string& dlq = t.errors().dead_letter_topic;
  auto topic_id = [&](const std::string& topic) -> const std::string& {
    return ids.Get("topic:" + topic, "t_", topic);
  };
  auto node_id = [&](const SubTopology& st, size_t i) -> const std::string& {
    const Node& n = st.nodes[i];
    return ids.Get(
        "node:" + std::to_string(st.id) + ":" + std::to_string(i), "n_",
        n.kind == NodeKind::kRepartition  ? n.name + "_repartition"
        : n.kind == NodeKind::kCorrelate ? n.name + "_correlation"
                                         : n.name);
  };
  auto store_id = [&](const std::string& store) -> const std::string& {
    return ids.Get("store:" + store, "s_", store);
  };

  std::string out = "graph TD;\n";
  // Topics first, outside the sub-topologies: most of them join two.
  std::vector<std::string> topics;
  for (const SubTopology& st : t.subtopologies()) {
    for (const Node& n : st.nodes) {
      for (const std::string& s : n.sources) AddUnique(&topics, s);
      for (const std::string& s : n.sinks) AddUnique(&topics, s);
    }
  }
  for (const std::string& topic : topics) {
    out += "  " + topic_id(topic) + "([" + Label(topic) + "]);\n";
  }
  for (const SubTopology& st : t.subtopologies()) {
    std::string title = "Sub-topology " + std::to_string(st.id);
    if (st.partitions > 0) {
      title += " (" + std::to_string(st.partitions) +
               (st.partitions == 1 ? " partition)" : " partitions)");
    }
    out +=
        "  subgraph sub_" + std::to_string(st.id) + "[" + Label(title) + "]\n";
    for (size_t i = 0; i < st.nodes.size(); ++i) {
      const Node& n = st.nodes[i];
      out += "    " + node_id(st, i) + "[" +
             Label(n.name + " (" + KindName(n.kind) + ")") + "];\n";
    }
    for (const std::string& store : st.stores) {
      out += "    " + store_id(store) + "[(" + Label(store) + ")];\n";
    }
    out += "  end\n";
  }
  for (const SubTopology& st : t.subtopologies()) {
    for (size_t i = 0; i < st.nodes.size(); ++i) {
      const Node& n = st.nodes[i];
      const std::string& id = node_id(st, i);
      const char* in = n.kind == NodeKind::kAggregate ? "commands"
                       : n.kind == NodeKind::kCustom || n.kind == NodeKind::kTransform
                           ? "records"
                           : "events";
      for (const std::string& s : n.sources) {
        out += "  " + topic_id(s) + " -->|" + in + "| " + id + ";\n";
      }
      for (const std::string& p : n.parents) {
        for (size_t j = 0; j < st.nodes.size(); ++j) {
          if (st.nodes[j].kind == NodeKind::kCustom && st.nodes[j].name == p) {
            out += "  " + node_id(st, j) + " -->|forward| " + id + ";\n";
          }
        }
      }
      for (const std::string& s : n.stores) {
        out += n.kind == NodeKind::kProjection ? "  " + id + " -->|update| "
               : s == n.timer_store            ? "  " + id + " <-->|timers| "
                                               : "  " + id + " <-->|state| ";
        out += store_id(s) + ";\n";
      }
      for (const std::string& s : n.sinks) {
        std::string label = "records";
        const char* arrow = " -->|";
        if (s == dlq) {
          label = "dead letters";
          arrow = " -.->|";
        } else if (n.kind == NodeKind::kRepartition || n.kind == NodeKind::kCorrelate) {
          label = "re-keyed events";
        } else if (n.kind == NodeKind::kProcessManager) {
          label = "commands";
        } else if (n.kind == NodeKind::kAggregate) {
          const AggregateSpec& a =
              t.aggregates()[static_cast<size_t>(n.index)].spec;
          label = s == a.rejection_topic ? "rejections" : "events";
        }
        out += "  " + id + arrow + label + "| " + topic_id(s) + ";\n";
      }
    }
  }
  return out;
}

}  // namespace

std::optional<DescribeFormat> ParseDescribeFormat(std::string_view name) {
  if (name == "text") return DescribeFormat::kText;
  if (name == "json") return DescribeFormat::kJson;
  if (name == "mermaid") return DescribeFormat::kMermaid;
  return std::nullopt;
}

std::string Describe(const CompiledTopology& topology, DescribeFormat format) {
  switch (format) {
    case DescribeFormat::kText:
      return DescribeText(topology);
    case DescribeFormat::kJson:
      return DescribeJson(topology);
    case DescribeFormat::kMermaid:
      return DescribeMermaid(topology);
  }
  return DescribeText(topology);
}

Result<std::string> DescribeOptions(const EngineOptions& options,
                                    DescribeFormat format) {
  auto compiled = CompiledTopology::Compile(options);
  if (!compiled.ok()) return compiled.status();
  if (!(*compiled)->ResolvePartitions({}).ok()) {
    // The declared counts disagree within a sub-topology; existing topics
    // may still settle it at run time, so describe the counts as unknown.
    compiled = CompiledTopology::Compile(options);
    if (!compiled.ok()) return compiled.status();
  }
  return Describe(**compiled, format);
}

}  // namespace kcqrs::engine
