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
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kcqrs/key_value_store.h"
#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs {

// Counters since Open(), summed over the stream threads.
struct EngineStats {
  uint64_t records_processed = 0;  // input records handled (dead letters included)
  uint64_t dead_letters = 0;
  // Input records the Kafka consumer handed over again below what was
  // already processed; skipped, not processed twice.
  uint64_t records_redelivered = 0;
  uint64_t commits = 0;            // transactions committed (or offset commits)
  uint64_t aborts = 0;
  uint64_t restored_records = 0;   // changelog records replayed into local state
  uint64_t rebalances = 0;
  int running_tasks = 0;
  int restoring_tasks = 0;
};

// Where an engine is in its life, as Kafka Streams' KafkaStreams.State:
//
//   kCreated -> kStarting -> kRebalancing <-> kRunning
//                    \            \              |
//                     +-> kError <-+------------+
//   any -> kStopping -> kStopped  (Stop(), the destructor)
//
// kStarting: waiting for Kafka, creating the topics, starting the threads.
// kRebalancing: the stream threads run, but a rebalance is under way, a
// task restores its stores, or Kafka has not answered for a while; ready()
// is false. kRunning: ready() is true. kError: health() is not OK (a stream
// thread failed under `errors.on_error: fail`, the topics do not fit the
// topology, ...); the engine stays there until stopped.
enum class EngineState { kCreated, kStarting, kRebalancing, kRunning, kError, kStopping, kStopped };

// "CREATED", "STARTING", "REBALANCING", "RUNNING", "ERROR", "STOPPING",
// "STOPPED".
std::string_view EngineStateName(EngineState state);

// Called on every change of state, with the new state and the one before.
// Calls come one at a time, in order, from a thread of the engine (kStopping
// and kStopped from the thread that calls Stop()); a listener must not call
// Stop() or destroy the engine itself. The engine samples its state every
// 50 ms, so a state that lasts less (a short rebalance) may not be reported.
using StateListener = std::function<void(EngineState new_state, EngineState old_state)>;

namespace engine {
struct EngineInternals;  // engine/runtime/engine_internals.h
}  // namespace engine

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  // As above, with `listener` told of every state change from kStarting on
  // (Kafka Streams' setStateListener), instead of polling health().
  static Result<std::unique_ptr<Engine>> Open(const EngineOptions& options,
                                              StateListener listener);

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

  // The state now (see EngineState).
  EngineState state() const;

  // A read-only view of a store's committed state over the partitions this
  // instance hosts (interactive queries); nullptr for an unknown store or
  // before the engine has started its threads. Safe from any thread.
  std::shared_ptr<const ReadOnlyKeyValueStore> GetStore(const std::string& name) const;

  // The address the HTTP server is bound to ("127.0.0.1:8080"); empty when
  // http.enabled is false.
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
