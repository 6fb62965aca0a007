// TaskManager: the tasks of one stream thread (Kafka Streams: TaskManager
// with its Tasks). It opens a task when the group assigns its partitions
// (RESTORING, its partitions paused on the consumer, until the
// ChangelogReader has brought its stores up to date beside the poll loop),
// closes it when they are revoked or lost, routes each polled record to its
// task, and carries the commit's local half: the offsets a transaction
// consumed, and, once Kafka has committed, the state writes and positions
// each task applies. It is the tasks' RecordCollector: their sends go to the
// StreamsProducer, their dead letters into the open transaction's account.
//
// Thread-safety: the stream thread's only, except Statuses() and Snapshot(),
// which any thread may call.
#ifndef KCQRS_ENGINE_RUNTIME_TASK_MANAGER_H_
#define KCQRS_ENGINE_RUNTIME_TASK_MANAGER_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/processors/lua_functions.h"
#include "engine/runtime/changelog_reader.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/dead_letter_log.h"
#include "engine/runtime/fault_injector.h"
#include "engine/runtime/state_directory.h"
#include "engine/runtime/streams_producer.h"
#include "engine/runtime/task.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
#include "kcqrs/options.h"
#include "state/rocksdb_env.h"

namespace kcqrs::engine {

// What /readyz says of one task.
struct TaskStatus {
  std::string task;     // "0_1"
  std::string state;    // "RESTORING" or "RUNNING"
  uint64_t restored = 0;   // changelog records replayed so far
  int64_t remaining = 0;   // changelog records still to replay (estimate)
};

struct TaskManagerConfig {
  EngineOptions options;
  std::shared_ptr<const CompiledTopology> topology;
  std::shared_ptr<state::RocksDbEnv> rocksdb;  // null: memory stores only
  StoreRegistry* registry = nullptr;          // not owned; outlives the manager
  // Copies that answer reads a moment behind (Kcqrs-Standby): a task taken
  // over from this process's standby copy is listed there while it restores
  // the copy's small lag. Not owned; null without standby replicas.
  StoreRegistry* standby_registry = nullptr;
  PositionLog* positions = nullptr;           // not owned; nullable
  metrics::Metrics* metrics = nullptr;        // not owned; nullable
  FaultInjector* faults = nullptr;            // not owned; nullable
  StateDirectory* state_directory = nullptr;  // not owned; nullable
  // Topics whose max.message.bytes is below the producer's limit, with the
  // largest record each takes.
  std::map<std::string, size_t> topic_max_record_bytes;
};

class TaskManager final : private RecordCollector {
 public:
  using TopicPartition = std::pair<std::string, int32_t>;

  explicit TaskManager(TaskManagerConfig config);
  ~TaskManager() override;

  // The thread's Lua runtime, made on the thread before any task opens.
  void set_lua(LuaFunctions* lua) { lua_ = lua; }

  // The clients of the current life of the thread (none owned); cleared
  // with nullptr after CloseAll.
  void SetClients(ThreadConsumer* consumer, StreamsProducer* producer, ChangelogReader* reader);

  // The group's decisions. Assignment opens the new tasks (to restore),
  // resumes the suspended ones it gives back, closes the other suspended
  // ones, and reads the group's committed offsets of its partitions.
  // Revocation and loss close the tasks of `parts`; the caller has committed
  // (revocation) or discarded (loss) the open transaction first. With
  // `suspend` (a revocation whose commit succeeded), running tasks are
  // suspended instead (Kafka Streams' eager-protocol suspension): their
  // stores stay open and keep answering queries with what was committed,
  // and the assignment that follows resumes them without reopening or
  // restoring anything. The range assignor's rebalances are eager: without
  // this, every rebalance closed and reopened every task of every instance.
  Status HandleAssignment(const std::vector<kafka::TopicPartitionOffset>& parts);
  void HandleRevocation(const std::vector<kafka::TopicPartitionOffset>& parts,
                        bool suspend = false);

  // Restores the tasks still RESTORING for up to `budget`, and makes those
  // whose stores are up to date RUNNING (their partitions resumed). Returns
  // the records replayed.
  Result<uint64_t> RestoreStep(std::chrono::milliseconds budget);
  // The ChangelogReader's progress on a restoring task, for /readyz.
  void RestoreProgress(const TaskId& id, uint64_t restored, int64_t remaining) {
    SetStatus(id, "RESTORING", restored, remaining);
  }

  // The task of a polled record's partition (null: revoked meanwhile), and
  // whether it is still restoring.
  Task* TaskFor(const std::string& topic, int32_t partition) const;
  bool Restoring(const TaskId& id) const { return restoring_.count(id) != 0; }

  // Runs one record through its task, within the open transaction, and
  // sets *processed. A record below its partition's next offset (what this
  // transaction consumed, else the last commit) was processed already: the
  // consumer moved back on its own (librdkafka's stale offset lookup, see
  // the .cc). It is skipped, *processed is false, and the consumer is put
  // back on the next offset; unless the partition's log now ends below
  // that offset (the topic was recreated), when the record is new.
  Status Process(Task* task, const Record& record, bool* processed);
  // Whether a running task has a timer due (process managers' deadlines),
  // and firing them in the open transaction (begun by the caller).
  bool TimersDue();
  Status FireTimers();

  // Hands every task's buffered store writes to its changelog (the last
  // value of each key), into the open transaction: right before it commits.
  Status FlushChangelogs();

  // The offsets the open transaction commits: each consumed partition's
  // next offset, or the consumer's position where that is further (past
  // transaction markers).
  std::vector<kafka::TopicPartitionOffset> OffsetsToCommit();
  // After Kafka committed: each task applies its buffered writes with the
  // changelog offsets they reach (from `delivered`), queries see the new
  // positions, and the position log learns what the commit consumed and
  // produced. Aborted when a task cannot apply (its state is restored from
  // the changelog with new clients).
  Status CompleteCommit(const std::map<TopicPartition, int64_t>& delivered);
  // The open transaction is discarded: every task drops its buffered work.
  void AbortAll();
  // Puts the consumer back on the committed offset of every owned partition
  // (on the first record processed of one the group has not committed yet;
  // a partition nothing was processed of stays where it is).
  Status Rewind();
  // Closes every task; `clean` false discards their open work first.
  void CloseAll(bool clean);

  size_t BufferedBytes() const;
  bool HasTasks() const { return !task_of_partition_.empty(); }
  // Any partition owned, for a cheap probe of the group coordinator.
  std::optional<TopicPartition> AnyPartition() const;
  int suspended() const { return static_cast<int>(suspended_.size()); }
  int running() const { return static_cast<int>(tasks_.size() - restoring_.size()); }
  int restoring() const { return static_cast<int>(restoring_.size()); }

  // Lag, node counts and store sizes, into the snapshot and the metrics.
  void UpdateGauges();

  // Safe from any thread.
  std::vector<TaskStatus> Statuses() const;
  void Snapshot(std::map<std::string, uint64_t>* nodes,
                std::map<std::string, std::map<int32_t, int64_t>>* lag) const;

 private:
  // RecordCollector
  Status Send(kafka::OutgoingRecord record) override;
  Status SendCopyOf(const kafka::OutgoingRecord& record) override;
  void DeadLettered(const Record& record, const std::string& reason) override;
  bool SkippedHeaders(const Record& record, std::vector<Header>* out) override;
  void Decided(std::vector<std::pair<std::string, CommandOutcome>> outcomes) override;

  bool exactly_once() const {
    return config_.options.application.guarantee == Guarantee::kExactlyOnce;
  }
  // Whether the partition's log, as the consumer last fetched it, ends
  // below `offset`.
  bool LogEndsBelow(const std::string& topic, int32_t partition, int64_t offset) const;
  // Opens a task's storage (wiping it first when asked) and the task.
  Result<std::unique_ptr<Task>> OpenTask(const TaskId& id, const SubTopology& st, bool wipe);
  // Replaces a task that is restoring with one on wiped storage.
  Status WipeTask(const TaskId& id);
  // The positions a restored task's state reaches, into the registry and
  // the position log.
  Status RestorePositions(Task* task);
  void CloseTask(const TaskId& id);
  // Pauses or resumes fetching the source partitions of a task.
  Status PauseTask(Task* task, bool pause);
  // Moves a running task's partitions out and the task to suspended_.
  void SuspendTask(const TaskId& id);
  // Closes every suspended task (the assignment did not give it back).
  void CloseSuspended();
  // Lists (or unlists) a restoring task's stores as a copy that answers
  // reads a moment behind.
  void ListWarm(const TaskId& id, Task* task);
  void UnlistWarm(const TaskId& id);
  void SetStatus(const TaskId& id, std::string state, uint64_t restored, int64_t remaining);
  // RUNNING, keeping the count of records its restore replayed.
  void SetRunning(const TaskId& id);

  TaskManagerConfig config_;
  DeadLetterLog dead_letter_log_;  // says in the log what went to the dead-letter topic
  LuaFunctions* lua_ = nullptr;  // the thread's
  ThreadConsumer* consumer_ = nullptr;
  StreamsProducer* producer_ = nullptr;
  ChangelogReader* reader_ = nullptr;

  std::map<TaskId, std::unique_ptr<Task>> tasks_;
  bool has_timers_ = false;  // some node of the topology has timers
  // Revoked with their work committed, until the next assignment says
  // whether they come back; none of their partitions is in
  // task_of_partition_.
  std::map<TaskId, std::unique_ptr<Task>> suspended_;
  std::map<TopicPartition, Task*> task_of_partition_;
  std::set<TaskId> restoring_;
  std::set<TaskId> to_register_;  // restoring, not yet given to the reader
  // Restoring from a standby copy, listed in config_.standby_registry.
  std::set<TaskId> warm_;
  // Next offsets to read: what the group has committed, and what the open
  // transaction has consumed.
  std::map<TopicPartition, int64_t> committed_;
  // The first record processed of each partition the group has committed
  // nothing of yet: where a rewind puts the consumer back. Everything
  // before it in the log is not for this application (transaction markers
  // and aborted records, or history before auto.offset.reset's choice), and
  // a seek to an absolute offset avoids librdkafka 2.0.2's logical-offset
  // lookup, whose stale retry can move the partition later on its own
  // (confluentinc/librdkafka#2256).
  std::map<TopicPartition, int64_t> first_processed_;
  std::map<TopicPartition, int64_t> consumed_;
  // Dead letters of the open transaction: source partition -> offset ->
  // reason, handed to the PositionLog with the commit.
  std::map<TopicPartition, std::map<int64_t, std::string>> dead_letters_;
  // Outcomes decided since the last commit (for PositionLog::DecidedOutcome).
  std::vector<std::pair<std::string, CommandOutcome>> outcomes_;
  std::map<std::string, uint64_t> closed_node_counts_;  // of tasks closed

  mutable std::mutex status_mu_;  // guards the three below
  std::map<TaskId, TaskStatus> status_;
  std::map<std::string, uint64_t> node_counts_;  // closed tasks' counts included
  std::map<std::string, std::map<int32_t, int64_t>> lag_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_TASK_MANAGER_H_
