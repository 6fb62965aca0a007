// StandbyThread: this instance's standby replicas (Kafka Streams:
// StandbyTask, kept up to date by the StateUpdater thread of KIP-869). A
// standby is a warm copy of another instance's task's stores, kept in the
// task's own directory under state_dir, checkpoint included, by following
// its changelogs (read_committed, so only what the owner committed). When
// the group later gives the task to this instance, the stream thread that
// gets it asks the standby to let go (StateDirectory::Claim), opens the same
// directory and restores only what the copy missed.
//
// One thread for all standbys of the instance, with its own restore
// consumer: a standby never holds up a stream thread's records, and a
// stream thread taking a task over only waits for this thread to close it.
// Which tasks to keep comes from `desired` (standby_assignor.h over the
// InstanceDirectory), asked every second.
//
// Thread-safety: Start/Stop/Tasks from any thread.
#ifndef KCQRS_ENGINE_RUNTIME_STANDBY_THREAD_H_
#define KCQRS_ENGINE_RUNTIME_STANDBY_THREAD_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/runtime/changelog_reader.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/state_directory.h"
#include "engine/serving/store_registry.h"
#include "kcqrs/options.h"
#include "state/rocksdb_env.h"
#include "state/task_state.h"

namespace kcqrs::engine {

struct StandbyThreadConfig {
  EngineOptions options;
  std::string bootstrap_servers;
  std::string member_id;  // "<application.id>-<instance>": client ids
  std::shared_ptr<const CompiledTopology> topology;
  std::shared_ptr<state::RocksDbEnv> rocksdb;
  StateDirectory* state_directory = nullptr;  // not owned; outlives the thread
  // Where the standbys' stores are offered to queries whose holder cannot
  // answer (serving marks such answers). Not owned; nullable.
  StoreRegistry* registry = nullptr;
  metrics::Metrics* metrics = nullptr;        // not owned; nullable
  std::shared_ptr<ClientSupplier> clients;    // null: the real ones
  // The tasks ("0_1") to keep standbys of now; called from this thread.
  std::function<std::set<std::string>()> desired;
};

// One standby as GET /instances and the metadata show it.
struct StandbyStatus {
  std::string task;
  uint64_t restored = 0;  // changelog records applied since it opened
};

class StandbyThread {
 public:
  explicit StandbyThread(StandbyThreadConfig config);
  ~StandbyThread();

  void Start();
  void RequestStop() { stop_ = true; }
  void Stop();

  // The standbys held now. Safe from any thread.
  std::vector<std::string> Tasks() const;

 private:
  struct Standby {
    TaskId id;
    std::vector<std::string> stores;
    std::unique_ptr<state::TaskState> state;
  };

  void Main();
  Status RunClients();
  // Opens the standbys newly desired and closes the others, and those an
  // active task of this process waits for.
  Status Reconcile(bool ask);
  Status Open(const std::string& task);
  void Close(const std::string& task);
  const SubTopology* SubTopologyOfTask(const std::string& task, TaskId* id) const;

  StandbyThreadConfig config_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<ChangelogReader> reader_;
  std::map<std::string, Standby> standbys_;
  std::set<std::string> desired_;
  mutable std::mutex mu_;
  std::vector<std::string> held_;  // guarded by mu_
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STANDBY_THREAD_H_
