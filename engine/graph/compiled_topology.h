// CompiledTopology: a TopologySpec checked and compiled once at start.
//
// Expressions and templates are compiled here (they are immutable and shared
// by every stream thread). Lua snippets are only listed here: a Lua state is
// per thread, so each stream thread compiles `lua_snippets` into its own
// runtime, in order, and finds a snippet's function by its index.
//
// The graph: every aggregate, projection, transform and custom processor is a
// node with
// source topics, stores and sink topics. A projection keyed differently from
// its events becomes two nodes joined by a repartition topic. Nodes that
// share a source topic or a store form one sub-topology; a task is one
// partition of one sub-topology, so all source topics of a sub-topology must
// have the same partition count (checked when the counts are known).
//
// Thread-safety: immutable once built; share it as shared_ptr<const>.
#ifndef KCQRS_ENGINE_GRAPH_COMPILED_TOPOLOGY_H_
#define KCQRS_ENGINE_GRAPH_COMPILED_TOPOLOGY_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/codec/json_codec.h"
#include "kcqrs/options.h"
#include "kcqrs/status.h"
#include "topology/expression.h"

namespace kcqrs::engine {

// The root names each kind of expression may use, in Context order.
const std::vector<std::string>& DecideRoots();   // command, state, meta
const std::vector<std::string>& EvolveRoots();   // state, event, meta
const std::vector<std::string>& ProjectRoots();  // view, event, meta
const std::vector<std::string>& KeyRoots();      // event, meta
const std::vector<std::string>& TransformRoots();  // record, meta

struct LuaSnippet {
  LuaSpec spec;
  std::vector<std::string> params;
};

using CompiledFields = std::vector<std::pair<std::string, topology::Expression>>;

struct CompiledRequire {
  topology::Expression that;
  std::string code;
  topology::Template reason;
};

struct CompiledEmit {
  std::string type;
  CompiledFields fields;
};

struct CompiledDecide {
  std::vector<CompiledRequire> require;
  std::vector<CompiledEmit> emit;
  int lua = -1;  // index into lua_snippets, or -1
};

struct CompiledUpdate {
  UpdateSpec::Kind kind = UpdateSpec::Kind::kMerge;
  CompiledFields fields;
  int lua = -1;
};

struct CompiledAggregate {
  AggregateSpec spec;
  std::map<std::string, CompiledDecide, std::less<>> commands;
  std::map<std::string, CompiledUpdate, std::less<>> events;
  std::string command_types;  // "CreateOrder, CancelOrder", for errors
};

struct CompiledProjection {
  ProjectionSpec spec;
  std::optional<topology::Expression> key;
  std::map<std::string, CompiledUpdate, std::less<>> events;
  std::string repartition_topic;  // empty when keyed by the event key
};

struct CompiledTransform {
  TransformSpec spec;
  std::optional<topology::Expression> filter;
  std::optional<topology::Expression> key;
  CompiledFields value;  // empty: the value passes unchanged
};

// A command a process manager sends, resolved to its topic and fields.
struct CompiledSend {
  std::string topic;
  std::string type;
  std::string type_field = "type";
  std::string command_id_field = "commandId";
  // The command field whose value is the record key (the target
  // aggregate's id field); empty when `key` gives it.
  std::string id_field;
  std::optional<topology::Expression> key;
  CompiledFields fields;
  std::string what;  // "process_managers.checkout.on.OrderPlaced[0].send[1]"
};

// One case of a process manager's reaction to an event type or a deadline.
struct CompiledReaction {
  std::optional<topology::Expression> when;
  std::optional<CompiledUpdate> state;  // kSet or kMerge; absent: unchanged
  std::vector<CompiledSend> send;
  ReactionSpec::Deadline deadline = ReactionSpec::Deadline::kKeep;
  std::optional<topology::Expression> deadline_ms;
  ReactionSpec::End end = ReactionSpec::End::kNo;
  int lua = -1;  // the whole reaction in Lua
  std::string what;
};

struct CompiledProcessManager {
  ProcessManagerSpec spec;
  std::optional<topology::Expression> id;
  std::map<std::string, std::vector<CompiledReaction>, std::less<>> events;
  std::vector<CompiledReaction> on_deadline;
  std::string repartition_topic;  // <app>-<name>-repartition
  std::string timer_store;        // <name>-timers
  std::vector<std::string> command_topics;  // where its sends go
  // Every topic it sends to (command topics, explicit topics).
  std::vector<std::string> outputs;
};

// The store keeping the durable timers of node `name`.
inline std::string TimerStoreName(const std::string& name) { return name + "-timers"; }

enum class NodeKind {
  kAggregate,    // decide + evolve: commands in, events/rejections out
  kProjection,   // fold events into a read-model store
  kRepartition,  // re-key events for a projection keyed differently
  kCustom,       // a registered C++ processor
  kTransform,    // stateless filter and reshape
  kCorrelate,    // re-key events by a process manager's instance id
  kProcessManager,  // react to events with commands and deadlines
};

struct Node {
  NodeKind kind = NodeKind::kCustom;
  std::string name;
  int index = 0;  // into aggregates, projections, custom, transforms or process managers
  std::vector<std::string> sources;
  std::vector<std::string> stores;
  std::vector<std::string> sinks;
  // Processors that forward records to this one (custom processors only).
  std::vector<std::string> parents;
  // The store of its durable timers (ProcessorContext::SetTimer), if any.
  std::string timer_store;
  bool stream_time_timers = false;
};

struct SubTopology {
  int id = 0;
  std::vector<Node> nodes;
  std::vector<std::string> sources;  // sorted, unique
  std::vector<std::string> stores;   // sorted, unique
  int partitions = 0;                // set by ResolvePartitions
};

struct TopicToCreate {
  std::string name;
  int partitions = 1;
  std::map<std::string, std::string> configs;
};

class CompiledTopology {
 public:
  // Checks the spec and compiles its expressions. Errors: InvalidArgument
  // with one problem per line, each "file:line:col: message".
  static Result<std::unique_ptr<CompiledTopology>> Compile(const EngineOptions& options);

  // Given the partition counts of topics that exist (name -> partitions),
  // decides every sub-topology's partition count and which topics to create:
  // missing source and sink topics take the count declared under `topics:`,
  // else their sub-topology's; changelogs are compacted with one partition
  // per task. Fails when a sub-topology's sources disagree.
  Status ResolvePartitions(const std::map<std::string, int>& existing);

  const std::string& application_id() const { return application_id_; }
  // The value cache of one task's state (application.cache_max_bytes split
  // among every task of the topology that has stores), once partitions are
  // resolved; 0 before.
  size_t CacheBytesPerTask() const;
  const std::vector<SubTopology>& subtopologies() const { return subtopologies_; }
  const std::vector<CompiledAggregate>& aggregates() const { return aggregates_; }
  const std::vector<CompiledProjection>& projections() const { return projections_; }
  const std::vector<CustomProcessorSpec>& custom() const { return custom_; }
  const std::vector<CompiledTransform>& transforms() const { return transforms_; }
  const std::vector<CompiledProcessManager>& process_managers() const {
    return process_managers_;
  }
  const std::vector<LuaSnippet>& lua_snippets() const { return lua_snippets_; }
  const ErrorPolicy& errors() const { return errors_; }
  const std::vector<StoreSpec>& stores() const { return stores_; }
  // EngineOptions::limits as the JSON codec takes them: what every built-in
  // processor holds a record value to (engine/processors.cc, ParseObject).
  const JsonLimits& json_limits() const { return json_limits_; }

  // After ResolvePartitions: topics to create, and every topic's count.
  const std::vector<TopicToCreate>& topics_to_create() const { return to_create_; }
  int partitions(const std::string& topic) const;  // 0 when unknown
  // Every source topic of every sub-topology.
  std::vector<std::string> SourceTopics() const;
  // The sub-topology reading `topic`, or nullptr.
  const SubTopology* SubTopologyOf(const std::string& topic) const;
  const SubTopology* SubTopologyOfStore(const std::string& store) const;
  const StoreSpec& Store(const std::string& name) const;

  std::string ChangelogTopic(const std::string& store) const {
    return application_id_ + "-" + store + "-changelog";
  }

 private:
  CompiledTopology() = default;
  void BuildGraph();

  std::string application_id_;
  int64_t cache_max_bytes_ = 0;
  std::map<std::string, int> declared_partitions_;
  std::vector<CompiledAggregate> aggregates_;
  std::vector<CompiledProjection> projections_;
  std::vector<CustomProcessorSpec> custom_;
  std::vector<CompiledTransform> transforms_;
  std::vector<CompiledProcessManager> process_managers_;
  std::vector<LuaSnippet> lua_snippets_;
  std::vector<StoreSpec> stores_;
  ErrorPolicy errors_;
  JsonLimits json_limits_;
  std::vector<SubTopology> subtopologies_;
  std::map<std::string, int> partitions_;
  std::vector<TopicToCreate> to_create_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_GRAPH_COMPILED_TOPOLOGY_H_
