// Engine: one running kcqrs application in this process.
//
// Open() validates the options and the topology (every expression and Lua
// snippet is compiled), starts the embedded cluster when asked and the HTTP
// server, and returns. In the background the engine then waits for Kafka
// (retrying while it is unreachable), creates the topics it needs, and
// starts the stream threads; ready() says when every task is restored and
// running. Stop() (or the destructor) finishes the open transactions and
// shuts everything down in reverse order. `kcqrs run` is Open() followed by
// a wait for SIGINT/SIGTERM.
//
// Thread-safety: Stop() and the accessors may be called from any thread;
// Stop() is idempotent.
#ifndef KCQRS_ENGINE_H_
#define KCQRS_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "kcqrs/key_value_store.h"
#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs {

// Counters since Open(), summed over the stream threads.
struct EngineStats {
  uint64_t records_processed = 0;  // input records handled (dead letters included)
  uint64_t dead_letters = 0;
  uint64_t commits = 0;            // transactions committed (or offset commits)
  uint64_t aborts = 0;
  uint64_t restored_records = 0;   // changelog records replayed into local state
  uint64_t rebalances = 0;
  int running_tasks = 0;
  int restoring_tasks = 0;
};

namespace engine {
struct EngineInternals;  // engine/runtime/engine_internals.h
}  // namespace engine

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);

  // Checks options and topology without starting anything: every problem,
  // one per line as "file:line:col: message", in an InvalidArgument.
  static Status Validate(const EngineOptions& options);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Stops the stream threads (each commits its open transaction), the HTTP
  // server, and then the embedded cluster, if any.
  void Stop();

  // True when the topics exist, every stream thread runs and every task
  // assigned to this instance has restored its stores.
  bool ready() const;

  // OK while the engine runs or waits for Kafka; the error that stopped it
  // otherwise (a stream thread failed under `errors.on_error: fail`, the
  // topics do not fit the topology, ...).
  Status health() const;

  EngineStats stats() const;

  // A read-only view of a store's committed state over the partitions this
  // instance hosts (interactive queries); nullptr for an unknown store or
  // before the engine has started its threads. Safe from any thread.
  std::shared_ptr<const ReadOnlyKeyValueStore> GetStore(const std::string& name) const;

  // The address the HTTP server is bound to ("127.0.0.1:8080").
  std::string http_address() const;
  // The Kafka bootstrap servers in use, comma-separated (for the embedded
  // cluster, its loopback address).
  std::string bootstrap_servers() const;

 private:
  friend struct engine::EngineInternals;
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kcqrs

#endif  // KCQRS_ENGINE_H_
