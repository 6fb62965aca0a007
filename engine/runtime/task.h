// Task: one partition of one sub-topology, with its processors and stores.
//
// A task takes the records of its source partitions in offset order, runs
// every processor subscribed to the record's topic, and hands what they
// produce (events, rejections, repartitioned records, changelog records,
// dead letters) to a RecordCollector, which puts it in the stream thread's
// current transaction. Store writes are buffered in the task's TaskState
// until the engine commits.
//
// One record is all or nothing: its sends and store writes are held back
// until every processor has handled it; when one fails, they are dropped and
// the record goes to the dead-letter topic (or, under `errors.on_error:
// fail`, Process returns the error and the stream thread stops).
//
// Thread-safety: owned and used by one stream thread (or a test driver).
#ifndef KCQRS_ENGINE_RUNTIME_TASK_H_
#define KCQRS_ENGINE_RUNTIME_TASK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/kafka/record.h"
#include "engine/processors/command_outcome.h"
#include "engine/processors/lua_functions.h"
#include "engine/processors/process_manager.h"
#include "engine/metrics/metrics.h"
#include "kcqrs/processor.h"
#include "state/task_state.h"

namespace kcqrs::engine {

// Where a task's output goes: the stream thread's transactional producer,
// or a test driver's queues.
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  virtual Status Send(kafka::OutgoingRecord record) = 0;
  // Sends `record` without taking it: for a caller that refills one record
  // (a task's changelog records, at every commit), so that its strings keep
  // their capacity. The default copies it into Send.
  virtual Status SendCopyOf(const kafka::OutgoingRecord& record) { return Send(record); }
  // Told before the dead letter of `record` is sent, with the reason: the
  // stream thread remembers it so that a waiting POST /commands can say why.
  virtual void DeadLettered(const Record& /*record*/, const std::string& /*reason*/) {}
  // Told the outcomes a record's command handler decided, with the record's
  // other effects: the stream thread hands them to the PositionLog when the
  // commit lands, for a waiting POST /commands.
  virtual void Decided(std::vector<std::pair<std::string, CommandOutcome>> /*outcomes*/) {}
  // The headers of `record`, the record in process, when the consumer left
  // them out because no processor of its topic reads them
  // (kafka::Consumer::SkipHeaders): true and *out filled. A dead letter
  // asks, so that it still carries them.
  virtual bool SkippedHeaders(const Record& /*record*/, std::vector<Header>* /*out*/) {
    return false;
  }
};

struct TaskId {
  int subtopology = 0;
  int32_t partition = 0;

  std::string ToString() const {
    return std::to_string(subtopology) + "_" + std::to_string(partition);
  }
  auto operator<=>(const TaskId&) const = default;
};

// Bytes kept free for a record's framing in a batch, below a size limit.
inline constexpr size_t kRecordFramingBytes = 128;

// The largest record a task may produce with these Kafka client properties:
// the producer's message.max.bytes (default 1,000,000) less framing.
size_t MaxRecordBytesFor(const std::map<std::string, std::string>& kafka_properties);

struct TaskStats {
  uint64_t processed = 0;
  uint64_t dead_letters = 0;
};

class ParsedRecord;

class Task final : private state::ChangelogSink {
 public:
  static Result<std::unique_ptr<Task>> Create(TaskId id, const SubTopology& subtopology,
                                              std::shared_ptr<const CompiledTopology> topology,
                                              std::unique_ptr<state::TaskStorage> storage,
                                              RecordCollector* collector, LuaFunctions* lua,
                                              metrics::Metrics* metrics = nullptr);
  ~Task() override;

  // Initialises the processors; call after the stores are restored.
  Status Init();

  // Processes one record of a source partition of this task. OK when it was
  // processed or dead-lettered; an error means the task cannot go on.
  Status Process(const Record& record);

  // Durable timers (process managers' deadlines, ProcessorContext::SetTimer).
  bool has_timers() const { return has_timers_; }
  // Whether a timer of some node is due by its clock.
  bool TimersDue();
  // Fires the timers now due, each in its own all-or-nothing scope, in the
  // open transaction: the timer's removal and OnTimer's effects. At most
  // `max` firings, so that a burst does not hold the poll loop. OK when
  // they fired or were dead-lettered; an error means the task cannot go on.
  Status FireTimers(int max = 1000);
  // The wall clock of wall-clock timers (ms since the epoch); the test
  // driver sets its own.
  void set_wall_clock(std::function<int64_t()> clock) { wall_clock_ = std::move(clock); }
  // The task's stream time: the largest timestamp of the records it has
  // processed.
  int64_t stream_time() const { return stream_time_; }

  // Told after the task's state committed (TaskState::Commit succeeded).
  void Committed();

  // Flushes nothing; closes the processors.
  void Close();
  // Publishes what the task's hot path measured since the last call (the
  // process latency histogram); the task manager calls it once a second.
  void FlushMetrics() { latency_.Flush(); }

  // Drops everything of the open transaction: the record in flight, if a
  // failure interrupted it, and the buffered store writes.
  void Abort();

  // The largest record (key, value and headers, in bytes) the task may hand
  // to its collector; 0: no limit. An output or store value above it sends
  // the input record to the dead-letter topic instead.
  // `per_topic` (nullable; must outlive the task) lowers it for topics whose
  // own max.message.bytes is smaller.
  void set_max_record_bytes(size_t max,
                            const std::map<std::string, size_t>* per_topic = nullptr) {
    max_record_bytes_ = max;
    topic_max_record_bytes_ = per_topic;
  }

  const TaskId& id() const { return id_; }
  const std::string& name() const { return name_; }
  const SubTopology& subtopology() const { return subtopology_; }
  state::TaskState& state() { return *state_; }
  const TaskStats& stats() const { return stats_; }
  // Records each node (by name) has processed, for /stats.
  void AddNodeCounts(std::map<std::string, uint64_t>* out) const {
    for (const Bound& b : processors_) (*out)[b.name] += b.processed;
  }

  // The changelog partitions of this task's stores.
  std::vector<state::TopicPartition> ChangelogPartitions() const;
  // The store a changelog topic belongs to ("" when none).
  std::string StoreOfChangelog(const std::string& topic) const;

 private:
  class Context;
  Task(TaskId id, const SubTopology& subtopology, std::shared_ptr<const CompiledTopology> topology,
       RecordCollector* collector, metrics::Metrics* metrics);

  Status Append(const std::string& store, std::string_view key,
                std::optional<std::string_view> value) override;
  Status ProcessInScope(const Record& record);
  // The record failed in `processor` ("" after every processor ran): drops
  // its effects and dead-letters it, or returns the error under
  // `errors.on_error: fail`.
  Status Failed(const Record& record, const std::string& processor, const Status& error);
  Status DeadLetter(const Record& record, const std::string& processor, const Status& error);
  kafka::OutgoingRecord Outgoing(const std::string& topic, std::optional<std::string> key,
                                 std::optional<std::string> value, std::vector<Header> headers,
                                 int64_t timestamp_ms) const;

  TaskId id_;
  std::string name_;
  const SubTopology& subtopology_;
  std::shared_ptr<const CompiledTopology> topology_;
  RecordCollector* collector_;
  std::unique_ptr<state::TaskState> state_;
  std::unique_ptr<Context> context_;
  std::unique_ptr<ParsedRecord> parsed_;  // the record's value, parsed once
  // Per node: the processor and the topics it reads.
  struct Bound {
    std::string name;
    const Node* node;  // in subtopology_
    std::unique_ptr<Processor> processor;
    std::vector<std::string> sources;
    // Its children (nodes naming it under `parents:`), indexes into
    // processors_, in declaration order.
    std::vector<size_t> children;
    uint64_t processed = 0;
    TransactionListener* listener = nullptr;  // the processor, when it listens
    // The earliest due time of its timers (kNoTimer: none); kUnknownDue
    // until read from the timer store, and after an abort.
    int64_t next_due = kUnknownDue;
    // No timer is due before this (the last one fired; lowered when a
    // timer is set earlier; 0 after an abort). Scans of the timer store
    // start here, so that they seek past the deletions of the timers fired
    // so far instead of stepping over each of them (in the write buffer
    // and as RocksDB tombstones).
    int64_t timer_floor = 0;
  };
  // Calls b's Process, turning an exception into an error status.
  static Status CallProcess(Bound* b, const Record& record, ProcessorContext& context);
  static constexpr int64_t kUnknownDue = -1;
  static constexpr int64_t kNoTimer = INT64_MAX;
  int64_t TimerClock(const Bound& b) const {
    return b.node->stream_time_timers ? stream_time_ : wall_clock_();
  }
  // Reads the earliest due time of `b`'s timers from its store.
  Status ReadNextDue(Bound* b);
  Status FireTimer(Bound* b, const std::string& key, int64_t due);
  bool has_timers_ = false;
  int64_t stream_time_ = 0;
  std::function<int64_t()> wall_clock_;
  std::vector<Bound> processors_;
  TaskStats stats_;
  size_t max_record_bytes_ = 0;
  const std::map<std::string, size_t>* topic_max_record_bytes_ = nullptr;
  // The largest record `topic` takes (0: no limit).
  size_t MaxRecordBytes(const std::string& topic) const {
    if (topic_max_record_bytes_ != nullptr && !topic_max_record_bytes_->empty()) {
      auto it = topic_max_record_bytes_->find(topic);
      if (it != topic_max_record_bytes_->end() && it->second < max_record_bytes_) {
        return it->second;
      }
    }
    return max_record_bytes_;
  }
  metrics::Metrics* metrics_;  // nullable
  metrics::Counter processed_;
  metrics::LocalHistogram latency_;  // flushed by FlushMetrics
  // Records until the next one whose latency is measured: one in
  // kLatencySampleEvery, the first included. Two clock reads per record were
  // a fifth of the stream thread's clock reads (perf, on the broker); Kafka
  // Streams records its process latency only at the DEBUG recording level.
  static constexpr uint32_t kLatencySampleEvery = 16;
  uint32_t latency_countdown_ = 0;
  struct Consumed {
    std::string topic;
    int32_t partition = 0;
    metrics::Counter counter;
  };
  std::vector<Consumed> consumed_;
  // Store name -> changelog topic, made once rather than per write.
  std::map<std::string, std::string, std::less<>> changelog_topics_;
  // The changelog record Append refills for every write it hands on: no
  // allocation per record once its strings have grown (a commit hands on
  // thousands).
  kafka::OutgoingRecord changelog_record_;
  const std::string* changelog_record_store_ = nullptr;
  std::map<std::string, metrics::Counter> dead_letters_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_TASK_H_
