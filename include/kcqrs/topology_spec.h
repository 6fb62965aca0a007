// TopologySpec: the declarative CQRS topology, as plain structs.
//
// This is what a YAML topology file (docs/topology.md) says, key for key;
// config/ fills it from the file and embedders may fill it in code. The engine
// compiles it into processors: expressions and Lua snippets are compiled once
// at start, and every error points back at the place recorded in `where`.
#ifndef KCQRS_TOPOLOGY_SPEC_H_
#define KCQRS_TOPOLOGY_SPEC_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kcqrs {

// A place in a topology file, for error messages. line/column are 1-based;
// 0 when the spec was built in code.
struct SourcePosition {
  std::string file;
  int line = 0;
  int column = 0;

  std::string ToString() const {
    if (line == 0) return file.empty() ? std::string("<code>") : file;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

// An expression of the kcqrs expression language (docs/expressions.md), or a
// template for text ("order {command.orderId} exists").
struct ExpressionSpec {
  std::string text;
  SourcePosition where;
};

// A Lua 5.4 snippet: the body of a function (see docs/topology.md for its
// parameters and what it returns per use).
struct LuaSpec {
  std::string code;
  SourcePosition where;  // the line where the code starts
};

// One condition of a decide rule: when `that` is false, the command is
// rejected with `code` and `reason`.
struct RequireSpec {
  ExpressionSpec that;
  std::string code;
  ExpressionSpec reason;  // a template
  SourcePosition where;
};

// An event built from fields: {type: <type>, <field>: <expression>...}.
struct EmitSpec {
  std::string type;
  std::vector<std::pair<std::string, ExpressionSpec>> fields;
  SourcePosition where;
};

// How one command type is decided: declaratively (require, then emit) or by
// a Lua snippet returning events or reject(code, reason).
struct DecideSpec {
  std::vector<RequireSpec> require;
  std::vector<EmitSpec> emit;
  std::optional<LuaSpec> lua;
  SourcePosition where;
};

// A change to a JSON document (aggregate state or read model):
//   kSet     replace it with `fields`
//   kMerge   overwrite `fields` in it (creating it when absent)
//   kDelete  remove it
//   kLua     a snippet returning the new document, or nil to delete
struct UpdateSpec {
  enum class Kind { kSet, kMerge, kDelete, kLua };
  Kind kind = Kind::kMerge;
  std::vector<std::pair<std::string, ExpressionSpec>> fields;
  std::optional<LuaSpec> lua;
  SourcePosition where;
};

// The command side: one aggregate type.
struct AggregateSpec {
  std::string name;
  std::vector<std::string> command_topics;
  // Where the aggregate id is: the record key when empty, else this field of
  // the command.
  std::string id_field;
  std::string type_field = "type";
  std::string command_id_field = "commandId";
  // The command field holding the aggregate version the command was decided
  // on (optimistic concurrency: a command whose aggregate has moved past it
  // is rejected with code "conflict", without deciding). A missing
  // aggregate has version 0, so 0 means "create only". Empty: the
  // application's (ApplicationOptions::expected_version_field).
  std::string expected_version_field;
  std::string event_topic;
  std::string rejection_topic;
  std::string store;
  // Command ids remembered per aggregate for deduplication. Default: 100.
  int dedup_window = 100;
  // A command found on a partition other than the one its aggregate id
  // hashes to (murmur2, as Java clients and kcqrs partition keys) would be
  // decided against the wrong state: another partition's task owns that
  // aggregate. kForward (default) re-writes it, in the same transaction, to
  // the right partition of the same topic; kDeadLetter sends it to the
  // dead-letter topic.
  enum class Misrouted { kForward, kDeadLetter };
  Misrouted misrouted_commands = Misrouted::kForward;
  std::vector<std::pair<std::string, DecideSpec>> commands;  // by type
  std::vector<std::pair<std::string, UpdateSpec>> events;    // evolve, by type
  SourcePosition where;
};

// The query side: one read model.
struct ProjectionSpec {
  std::string name;
  std::vector<std::string> event_topics;
  std::string store;
  std::string type_field = "type";
  // The key of the view; when absent, the event's Kafka key. When present,
  // events are repartitioned through `<application.id>-<name>-repartition`
  // so that one task owns each view key.
  std::optional<ExpressionSpec> key;
  std::vector<std::pair<std::string, UpdateSpec>> events;  // by type
  SourcePosition where;
};

// A C++ processor registered by name (kcqrs::RegisterProcessor).
struct CustomProcessorSpec {
  std::string name;       // this node's name
  std::string processor;  // the registered name
  // The topics it reads; may be empty when it has parents.
  std::vector<std::string> topics;
  // Processors (by node name, under `processors:`) whose
  // ProcessorContext::Forward hands it records, as Kafka Streams'
  // Topology::addProcessor(name, supplier, parentNames...). It runs in its
  // parents' task, inside the record's transaction.
  std::vector<std::string> parents;
  // The topics it sends to (ProcessorContext::Send). Declared so that they
  // exist before the first record: a send to any other topic dead-letters
  // the record being processed.
  std::vector<std::string> outputs;
  std::vector<std::string> stores;
  std::map<std::string, std::string> config;
  // Whether it uses durable timers (ProcessorContext::SetTimer), and on
  // which clock; they are kept in the store `<name>-timers`.
  enum class Timers { kNone, kWallClock, kStreamTime };
  Timers timers = Timers::kNone;
  SourcePosition where;
};

// A stateless transform (ksqlDB's CREATE STREAM ... AS SELECT ... WHERE):
// each JSON record of `from` that passes `filter` is reshaped and written to
// `to`. Expressions see `record` (the value) and `meta` (topic, partition,
// offset, timestamp, key). Output keeps the record's timestamp and headers.
struct TransformSpec {
  std::string name;
  std::vector<std::string> from;
  std::string to;
  std::optional<ExpressionSpec> filter;  // absent: every record
  std::optional<ExpressionSpec> key;     // absent: the input key
  // The output value's fields, in order; empty: the input value unchanged
  // (its bytes, not re-encoded).
  std::vector<std::pair<std::string, ExpressionSpec>> value;
  SourcePosition where;
};

// A command a process manager sends to an aggregate (or to a topic).
struct SendSpec {
  // The target aggregate: the command goes to its first command topic, keyed
  // by the command's aggregate id field (AggregateSpec::id_field), so that
  // it reaches the partition the aggregate's task owns. Empty: `topic`.
  std::string aggregate;
  std::string topic;                  // with `key`, when not to an aggregate
  std::optional<ExpressionSpec> key;  // overrides the id field's value
  std::string type;                   // the command type (its `type` field)
  // The command's fields, in order (YAML `with`). The command id is not one
  // of them: the engine derives it from what triggered the send.
  std::vector<std::pair<std::string, ExpressionSpec>> fields;
  SourcePosition where;
};

// What a process manager does for one event type (or when a deadline
// fires): the first case whose `when` holds runs; no case holding means
// the event is ignored.
struct ReactionSpec {
  std::optional<ExpressionSpec> when;  // absent: always
  // How the instance's state changes (set, merge; kLua returns the state).
  // Absent: unchanged.
  std::optional<UpdateSpec> state;
  std::vector<SendSpec> send;
  // kStart (re)starts the instance's deadline: due `deadline_ms` (or the
  // process manager's default) after now. kCancel removes it.
  enum class Deadline { kKeep, kStart, kCancel };
  Deadline deadline = Deadline::kKeep;
  std::optional<ExpressionSpec> deadline_ms;
  // Ends the instance, with its outcome (for metrics and queries); its
  // state is kept so that late events are still recognised, and a pending
  // deadline is cancelled.
  enum class End { kNo, kCompleted, kCompensated };
  End end = End::kNo;
  // Instead of all the above: a snippet of (state, event, meta) returning
  // {state=, send={...}, deadline="start"|"cancel", deadline_ms=, ["end"]=}
  // (docs/topology.md, "Process managers").
  std::optional<LuaSpec> lua;
  SourcePosition where;
};

// A process manager (a saga): coordinates aggregates by reacting to their
// events with commands, keeping per-instance state and a deadline.
struct ProcessManagerSpec {
  std::string name;
  std::vector<std::string> event_topics;  // events and rejections it reads
  std::string type_field = "type";
  // The instance an event belongs to (roots: event, meta), e.g.
  // event.orderId. Events are repartitioned by it through
  // `<application.id>-<name>-repartition`.
  ExpressionSpec id;
  std::string store;  // one document per instance
  // The deadline's default length, for reactions that start one.
  int64_t deadline_ms = 30000;
  // How long an ended instance is kept, so that late events still find its
  // state (a payment after a cancellation is refunded); then it is deleted.
  // 0 keeps ended instances for ever. Measured on the deadline's clock.
  int64_t ended_retention_ms = int64_t{7} * 24 * 3'600'000;
  // What deadlines are measured against: the wall clock (default), or the
  // task's stream time (the largest record timestamp it has processed).
  enum class Time { kWallClock, kStreamTime };
  Time time = Time::kWallClock;
  std::vector<std::pair<std::string, std::vector<ReactionSpec>>> events;  // by type
  std::vector<ReactionSpec> on_deadline;
  SourcePosition where;
};

struct StoreSpec {
  std::string name;
  enum class Kind { kRocksDb, kMemory };
  Kind kind = Kind::kRocksDb;
  SourcePosition where;
};

// What happens to a record that cannot be processed (bad JSON, no type, an
// unknown type, a missing aggregate id, a failing snippet).
struct ErrorPolicy {
  enum class OnError { kDeadLetter, kFail };
  OnError on_error = OnError::kDeadLetter;
  // Default: <application.id>-dlq.
  std::string dead_letter_topic;
};

struct TopologySpec {
  std::vector<AggregateSpec> aggregates;
  std::vector<ProjectionSpec> projections;
  std::vector<CustomProcessorSpec> processors;
  std::vector<TransformSpec> transforms;
  std::vector<ProcessManagerSpec> process_managers;
  std::vector<StoreSpec> stores;  // optional settings of named stores
  ErrorPolicy errors;
};

}  // namespace kcqrs

#endif  // KCQRS_TOPOLOGY_SPEC_H_
