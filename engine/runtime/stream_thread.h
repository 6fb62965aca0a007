// StreamThread: one thread of consume-process-produce, as in Kafka Streams.
//
// A stream thread alone owns its Kafka clients (a consumer in the
// application's group, a producer, transactional under exactly-once, and a
// restore consumer), its Lua runtime, and through its TaskManager the tasks
// the group assigns it with their stores. Nothing of it is shared with other
// threads except through the StoreRegistry (committed-data readers) and
// atomics for status.
//
// This class is the loop and the lives of the clients; the parts are:
//   client_configs.h    what each client is configured with
//   StreamsProducer     the producer and its transactions
//   TaskManager         the tasks: assign, revoke, route, commit locally
//   ChangelogReader     restore from changelogs
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
// Thread-safety: Start/Stop/accessors from any thread; everything else runs
// on the thread itself.
#ifndef KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_
#define KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/kafka/consumer.h"
#include "engine/metrics/metrics.h"
#include "engine/processors/lua_functions.h"
#include "engine/runtime/changelog_reader.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/fault_injector.h"
#include "engine/runtime/state_directory.h"
#include "engine/runtime/streams_producer.h"
#include "engine/runtime/task_manager.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
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
  StoreRegistry* standby_registry = nullptr;  // not owned; nullable (TaskManagerConfig)
  PositionLog* positions = nullptr;   // not owned; outlives the thread
  metrics::Metrics* metrics = nullptr;  // not owned; nullable
  std::shared_ptr<FaultInjector> faults;  // tests only; nullable
  StateDirectory* state_directory = nullptr;  // not owned; outlives the thread
  // Topics whose max.message.bytes is below the producer's limit, with the
  // largest record each takes (InternalTopics::RecordLimits).
  std::map<std::string, size_t> topic_max_record_bytes;
  // Where the clients come from; null: the real ones (KafkaClientSupplier).
  std::shared_ptr<ClientSupplier> clients;
};

struct StreamThreadStats {
  std::atomic<uint64_t> records_processed{0};
  std::atomic<uint64_t> dead_letters{0};
  // Records the consumer handed over again below what was processed
  // (TaskManager::Process), skipped.
  std::atomic<uint64_t> records_redelivered{0};
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

class StreamThread final : private kafka::RebalanceListener {
 public:
  enum class State { kCreated, kStarting, kRunning, kStopping, kStopped, kFailed };

  explicit StreamThread(StreamThreadConfig config);
  ~StreamThread() override;

  void Start();
  // Asks the thread to finish its transaction and stop, without waiting
  // (an engine asks all its threads first, then waits for each).
  void RequestStop() { stop_ = true; }
  // RequestStop, and waits for the thread.
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
  void Main();
  // One life of the clients: returns when stopping (OK) or when the clients
  // must be recreated (Fenced, fatal errors), or with a fatal error.
  Status RunClients();
  Status CreateClients();
  // Ends a life of the clients: what is open is discarded unless `clean`.
  void DropClients(bool clean);
  Status Process(const Record& record);
  // Fires the durable timers now due (process managers' deadlines) in the
  // open transaction, beginning one if needed.
  Status FireTimers();
  // Commits when the interval is up at `now` or the transaction buffers
  // too much state.
  Status MaybeCommit(std::chrono::steady_clock::time_point now);
  Status Commit();
  // Discards the open transaction (Kafka's and the tasks'), rewinds the
  // consumer to the committed offsets and backs off; `why` is logged once
  // per burst of aborts.
  Status AbortTransaction(const std::string& why);
  // Gives restoring tasks a slice of the thread: all of it when no record
  // came (`idle`), a share of it between records otherwise.
  Status RestorePending(bool idle);
  // While Kafka is unreachable, asks it something cheap now and then to
  // notice when it is back, even when no record flows.
  void ProbeKafka();
  void KafkaAnswered(std::chrono::steady_clock::time_point now);
  void KafkaAnswered() { KafkaAnswered(std::chrono::steady_clock::now()); }
  // Lag and store sizes, at most once a second.
  void UpdateGauges(std::chrono::steady_clock::time_point now);
  // Thread 0 removes task directories unused for the cleanup delay.
  void MaybeCleanUpStateDirectory(std::chrono::steady_clock::time_point now);
  void SyncTaskCounts();

  // kafka::RebalanceListener
  void OnPartitionsAssigned(const std::vector<kafka::TopicPartitionOffset>& parts) override;
  void OnPartitionsRevoked(const std::vector<kafka::TopicPartitionOffset>& parts) override;
  void OnPartitionsLost(const std::vector<kafka::TopicPartitionOffset>& parts) override;

  bool exactly_once() const {
    return config_.options.application.guarantee == Guarantee::kExactlyOnce;
  }

  StreamThreadConfig config_;
  std::thread thread_;
  std::atomic<State> state_{State::kCreated};
  std::atomic<bool> stop_{false};
  mutable std::mutex error_mu_;
  Status error_;
  std::string last_abort_reason_;  // guarded by error_mu_
  StreamThreadStats stats_;

  // Owned by the thread while it runs. The clients live for one life
  // (RunClients); the task manager for the thread's.
  std::unique_ptr<LuaFunctions> lua_;
  std::unique_ptr<TaskManager> tasks_;
  std::unique_ptr<ThreadConsumer> consumer_;
  // The record being processed, polled into again for the next one: its
  // strings keep their capacity, so consuming allocates nothing per record.
  Record polled_;
  std::unique_ptr<StreamsProducer> producer_;
  std::unique_ptr<ChangelogReader> reader_;
  bool assigned_ = false;  // between an assignment and the next revocation
  int aborts_in_burst_ = 0;
  Status rebalance_error_;
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::time_point last_probe_;
  std::chrono::steady_clock::time_point last_kafka_ok_;
  std::chrono::steady_clock::time_point last_gauges_;
  std::chrono::steady_clock::time_point last_cleanup_;
  std::chrono::steady_clock::time_point last_restore_;
  // Turns of the loop since the buffered state was last summed.
  uint32_t records_since_size_check_ = 0;
  struct ThreadMetrics {
    metrics::Histogram commit_latency;
    metrics::Counter committed;
    metrics::Counter aborted;
    metrics::Counter rebalances;
    metrics::Counter redelivered;
    metrics::Gauge running;
    metrics::Gauge restoring;
  } m_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STREAM_THREAD_H_
