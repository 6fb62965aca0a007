// StreamThread: one thread of consume-process-produce, as in Kafka Streams.
//
// A stream thread alone owns its consumer (a member of the application's
// consumer group), its producer (transactional under exactly-once), a
// restore consumer, its Lua runtime, and the tasks the group assigns it with
// their stores. Nothing of it is shared with other threads except through
// the StoreRegistry (committed-data readers) and atomics for status.
//
// The loop: poll a record, run it through its task, and every
// commit_interval_ms commit: send the consumed offsets to the transaction,
// commit it, and only then apply each task's buffered state writes to its
// stores together with the changelog offsets they reach. An aborted commit
// discards the buffers and rewinds the consumer to the last committed
// offsets; a fenced producer or a lost assignment closes the tasks and
// starts over with new clients. Kafka being unreachable only makes the loop
// wait and retry.
//
// Partition assignment: the consumer uses the range assignor. Every member
// subscribes to the same topics, so for topics with equal partition counts
// the range assignor gives each member the same partition numbers of every
// topic: the co-partitioned sources of a task always land together.
//
// Thread-safety: Start/Stop/accessors from any thread; everything else runs
// on the thread itself.
#ifndef KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_
#define KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/runtime/fault_injector.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/producer.h"
#include "engine/processors/lua_functions.h"
#include "engine/metrics/metrics.h"
#include "engine/serving/position_log.h"
#include "engine/runtime/state_directory.h"
#include "engine/serving/store_registry.h"
#include "engine/runtime/task.h"
#include "kcqrs/options.h"
#include "state/rocksdb_env.h"

namespace kcqrs::engine {

struct StreamThreadConfig {
  int index = 0;
  EngineOptions options;
  std::string bootstrap_servers;
  // "<application.id>-<instance>-<thread>", stable across restarts of this
  // state directory: the transactional id under exactly-once, and the static
  // group membership id (group.instance.id), so that a restart after kill -9
  // takes over its partitions at once instead of waiting for the dead
  // member's session to expire.
  std::string member_id;
  std::shared_ptr<const CompiledTopology> topology;
  std::shared_ptr<state::RocksDbEnv> rocksdb;
  StoreRegistry* registry = nullptr;  // not owned; outlives the thread
  PositionLog* positions = nullptr;   // not owned; outlives the thread
  metrics::Metrics* metrics = nullptr;  // not owned; nullable
  std::shared_ptr<FaultInjector> faults;  // tests only; nullable
  StateDirectory* state_directory = nullptr;  // not owned; outlives the thread
  // Topics whose max.message.bytes is below the producer's limit, with the
  // largest record each takes (Engine::TopicRecordLimits).
  std::map<std::string, size_t> topic_max_record_bytes;
};

struct StreamThreadStats {
  std::atomic<uint64_t> records_processed{0};
  std::atomic<uint64_t> dead_letters{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> aborts{0};
  std::atomic<uint64_t> restored_records{0};
  std::atomic<uint64_t> rebalances{0};
  std::atomic<int> running_tasks{0};
  std::atomic<int> restoring_tasks{0};
  // Transactions aborted since the last commit: a thread that keeps
  // aborting is not ready (Engine's /readyz names the reason).
  std::atomic<int> consecutive_aborts{0};
  // False while the thread cannot reach Kafka (a poll or a commit failed for
  // lack of brokers); true again once a request succeeds.
  std::atomic<bool> kafka_reachable{false};
  // When Kafka last answered this thread (steady clock, ns): a thread stuck
  // in a commit against a vanished broker is not ready either.
  std::atomic<int64_t> kafka_ok_ns{0};
};

// What /readyz says of one task.
struct TaskStatus {
  std::string task;     // "0_1"
  std::string state;    // "RESTORING" or "RUNNING"
  uint64_t restored = 0;   // changelog records replayed so far
  int64_t remaining = 0;   // changelog records still to replay (estimate)
};

class StreamThread final : private kafka::RebalanceListener, private RecordCollector {
 public:
  enum class State { kCreated, kStarting, kRunning, kStopping, kStopped, kFailed };

  explicit StreamThread(StreamThreadConfig config);
  ~StreamThread() override;

  void Start();
  // Asks the thread to finish its transaction and stop; waits for it.
  void Stop();

  State state() const { return state_.load(); }
  // Why the thread failed (when state() == kFailed).
  Status error() const;
  const StreamThreadStats& stats() const { return stats_; }
  // Why the last transaction was aborted ("" when none was).
  std::string last_abort_reason() const;
  // The tasks this thread owns now. Safe from any thread.
  std::vector<TaskStatus> Tasks() const;
  // Records per node and lag per partition, as of the last second. Safe
  // from any thread.
  void Snapshot(std::map<std::string, uint64_t>* nodes,
                std::map<std::string, std::map<int32_t, int64_t>>* lag) const;

 private:
  using TopicPartition = std::pair<std::string, int32_t>;

  void Main();
  // One life of the clients: returns when stopping (OK) or when the clients
  // must be recreated (Fenced, fatal errors), or with a fatal error.
  Status RunClients();
  Status CreateClients();
  Status Process(kafka::ConsumedRecord record);
  Status MaybeCommit(bool force);
  Status Commit();
  // Discards the open transaction (Kafka's and the tasks'), rewinds the
  // consumer to the committed offsets and backs off; `why` is logged once
  // per burst of aborts.
  Status AbortTransaction(const std::string& why);
  Status Rewind();
  Status RestorePending();
  // While Kafka is unreachable, asks it something cheap now and then to
  // notice when it is back, even when no record flows.
  void ProbeKafka();
  // Restores the changelog tail past the task's checkpoint. FailedPrecondition
  // when the checkpoint does not fit the changelog (the state must be wiped).
  Status RestoreTask(Task* task);
  // Opens a task's storage (wiping it first when asked) and the task.
  Result<std::unique_ptr<Task>> OpenTask(const TaskId& id, const SubTopology& st, bool wipe);
  // Replaces a task that is pending restore with one on wiped storage.
  Status WipeTask(const TaskId& id);
  // The positions a restored task's state reaches, into the registry and
  // the position log.
  Status RestorePositions(Task* task);
  void CloseTasks(bool clean);
  void CloseTask(const TaskId& id);

  // kafka::RebalanceListener
  void OnPartitionsAssigned(const std::vector<kafka::TopicPartitionOffset>& parts) override;
  void OnPartitionsRevoked(const std::vector<kafka::TopicPartitionOffset>& parts) override;
  void OnPartitionsLost(const std::vector<kafka::TopicPartitionOffset>& parts) override;

  // RecordCollector
  Status Send(kafka::OutgoingRecord record) override;
  void DeadLettered(const Record& record, const std::string& reason) override;
  // What the fault injector (tests) says at `point`; OK without one.
  Status FaultPoint(FaultInjector::Point point);

  bool exactly_once() const {
    return config_.options.application.guarantee == Guarantee::kExactlyOnce;
  }
  kafka::Properties BaseProperties() const;
  // The largest output record a task may produce (key, value, headers).
  size_t MaxRecordBytes() const;

  StreamThreadConfig config_;
  std::thread thread_;
  std::atomic<State> state_{State::kCreated};
  std::atomic<bool> stop_{false};
  mutable std::mutex error_mu_;
  Status error_;
  StreamThreadStats stats_;

  // Owned by the thread while it runs.
  std::unique_ptr<LuaFunctions> lua_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<kafka::Consumer> restore_consumer_;
  std::map<TaskId, std::unique_ptr<Task>> tasks_;
  std::map<TopicPartition, Task*> task_of_partition_;
  std::set<TaskId> pending_restore_;
  bool in_transaction_ = false;
  bool assigned_ = false;  // between an assignment and the next revocation
  Status producer_error_;  // a Send failure, handled at the next commit
  // Dead letters of the open transaction: source partition -> offset ->
  // reason, handed to the PositionLog with the commit.
  std::map<TopicPartition, std::map<int64_t, std::string>> dead_letters_;
  int aborts_in_burst_ = 0;
  std::string last_abort_reason_;  // guarded by error_mu_
  // Next offsets to read: what the group has committed, and what this
  // transaction has consumed.
  std::map<TopicPartition, int64_t> committed_;
  std::map<TopicPartition, int64_t> consumed_;
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::time_point last_probe_;
  std::chrono::steady_clock::time_point last_kafka_ok_;
  void KafkaAnswered();
  Status rebalance_error_;

  // Lag and store sizes, at most once a second.
  void UpdateGauges();
  // Thread 0 removes task directories unused for the cleanup delay.
  void MaybeCleanUpStateDirectory(std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point last_gauges_;
  std::chrono::steady_clock::time_point last_cleanup_;
  struct ThreadMetrics {
    metrics::Histogram commit_latency;
    metrics::Counter committed;
    metrics::Counter aborted;
    metrics::Counter rebalances;
    metrics::Gauge running;
    metrics::Gauge restoring;
  } m_;
  std::map<std::string, metrics::Counter, std::less<>> produced_;
  std::map<std::string, uint64_t> closed_node_counts_;  // of tasks closed

  void SetTaskStatus(const TaskId& id, std::string state, uint64_t restored, int64_t remaining);
  void ClearTaskStatus(const TaskId& id);
  mutable std::mutex task_status_mu_;  // guards the three below
  std::map<TaskId, TaskStatus> task_status_;
  std::map<std::string, uint64_t> node_counts_;  // closed tasks' counts included
  std::map<std::string, std::map<int32_t, int64_t>> lag_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_
