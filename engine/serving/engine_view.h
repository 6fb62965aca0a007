// EngineView: what serving needs from the running engine, as plain data.
//
// The runtime implements it (Engine::Impl); serving alone turns what it
// returns into HTTP answers and JSON bodies, so the runtime knows nothing
// of the wire format and serving nothing of stream threads or tasks.
//
// Thread-safety: every method is called from the HTTP server's I/O threads
// and the waiter thread at once; implementations must be safe for that.
#ifndef KCQRS_ENGINE_SERVING_ENGINE_VIEW_H_
#define KCQRS_ENGINE_SERVING_ENGINE_VIEW_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/serving/instance_directory.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
#include "kcqrs/engine.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// One task of this instance, as GET /readyz lists it.
struct TaskReadiness {
  std::string task;        // "0_1"
  std::string state;       // "RESTORING" or "RUNNING"
  uint64_t restored = 0;   // changelog records replayed so far
  int64_t remaining = 0;   // changelog records still to replay (estimate)
};

// What GET /readyz answers with.
struct ReadinessReport {
  // Empty when every task is restored and running; else why not, for a
  // person ("restoring state", "Kafka is not reachable", ...).
  std::string not_ready_reason;
  std::vector<TaskReadiness> tasks;  // over every stream thread, in order
};

// What GET /stats answers with, besides the stores (which serving reads
// from the StoreRegistry itself, as GET /stores does).
struct StatsReport {
  std::string application;  // application.id
  bool ready = false;       // as EngineView::ready()
  EngineStats totals;       // summed over the stream threads, since start
  // Each stream thread's state by index: "CREATED", "STARTING", "RUNNING",
  // "STOPPING", "STOPPED" or "FAILED".
  std::vector<std::string> thread_states;
  // Records processed by each topology node, over every thread.
  std::map<std::string, uint64_t> processed_by_node;
  // Consumer lag in records: topic -> partition -> lag, for every partition
  // a stream thread holds; kLagUnknown until its end offset is known (no
  // fetch answered yet).
  std::map<std::string, std::map<int32_t, int64_t>> lag;
  static constexpr int64_t kLagUnknown = -1;
  // Per process manager, since start (active: committed, in this
  // instance's tasks).
  struct ProcessManagerCounts {
    uint64_t started = 0;
    uint64_t completed = 0;
    uint64_t compensated = 0;
    uint64_t timed_out = 0;
    int64_t active = 0;
  };
  std::map<std::string, ProcessManagerCounts> process_managers;
};

class EngineView {
 public:
  virtual ~EngineView() = default;
  // Null until the engine has resolved its topics and started its threads.
  virtual std::shared_ptr<const CompiledTopology> topology() const = 0;
  // Null until then too; lives until HttpApi::Stop().
  virtual StoreRegistry* registry() const = 0;
  // The stores of this instance's standby replicas (stale by a moment),
  // for queries whose active holder cannot answer; null without standbys.
  virtual StoreRegistry* standby_registry() const { return nullptr; }
  virtual const PositionLog& positions() const = 0;
  virtual bool ready() const = 0;
  virtual Status health() const = 0;
  // GET /readyz's body, as data (HttpApi's operations routes format it).
  virtual ReadinessReport Readiness() const = 0;
  // GET /stats's body but the stores, as data.
  virtual StatsReport Stats() const = 0;
  // The engine's metrics, served at /metrics; HTTP requests are counted in it.
  virtual metrics::Metrics* metrics() = 0;
  // The application's instances and what each holds; null until the engine
  // has started its threads (and in a process that runs alone and was told
  // so). Lives until HttpApi::Stop().
  virtual const InstanceDirectory* instances() const { return nullptr; }
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_ENGINE_VIEW_H_
