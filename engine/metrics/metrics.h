// kcqrs::metrics: the engine's Prometheus metrics, and their text exposition.
//
// Metrics is the registry: one per Engine, made before the stream threads
// and the HTTP server and destroyed after them. Each accessor below names one
// metric family (see docs/metrics.md) and returns the child for one set of
// label values, creating it on first use. The lookup takes a lock and builds
// the label key, so callers look a child up once (per task, per topic, per
// store...) and keep the handle; the handle's own operations are lock-free
// atomics (Histogram::Observe takes a per-child mutex inside prometheus-cpp,
// uncontended as long as one thread observes a child).
//
// Handles (Counter, Gauge, Histogram) are small copyable values that share
// ownership of their child, so they never dangle: a child that Remove*()
// took out of the registry, or that outlived its Metrics, keeps counting
// but is no longer reported; asking the registry again for the same labels
// then makes a fresh child that starts at zero. A default-constructed handle
// is detached: it counts nothing and reads 0, so code under test can run
// without a Metrics.
//
// Serialize() renders every family in the Prometheus text exposition format
// 0.0.4 (serve it with kContentType), plus the process_* metrics of this
// process from /proc/self. Families without children are left out.
//
// Label values are free text (the exposition escapes them), but every
// distinct value is a time series kept until it is removed: pass route
// patterns ("/stores/{store}/keys/{key}"), never raw paths, and bounded
// values (rejection codes from the topology, not reasons).
//
// This header is standard-library only; prometheus-cpp is linked PRIVATE.
// Nothing throws: if memory runs out while a child is created, the accessor
// returns a detached handle; Serialize() returns a comment line instead.
//
// Thread-safety: every method of Metrics and of the handles may be called
// from any thread without external synchronization.
#ifndef KCQRS_ENGINE_METRICS_METRICS_H_
#define KCQRS_ENGINE_METRICS_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace kcqrs::metrics {

class Metrics;

// A monotonically increasing count. Increments that are negative or NaN are
// ignored (a counter never goes down).
class Counter {
 public:
  Counter() = default;  // detached
  void Increment(double v = 1) const noexcept;
  double Value() const noexcept;
  bool attached() const noexcept { return impl_ != nullptr; }

 private:
  friend class Metrics;
  explicit Counter(std::shared_ptr<prometheus::Counter> impl)
      : impl_(std::move(impl)) {}
  std::shared_ptr<prometheus::Counter> impl_;
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;  // detached
  void Set(double v) const noexcept;
  void Increment(double v = 1) const noexcept;
  void Decrement(double v = 1) const noexcept;
  double Value() const noexcept;
  bool attached() const noexcept { return impl_ != nullptr; }

 private:
  friend class Metrics;
  explicit Gauge(std::shared_ptr<prometheus::Gauge> impl)
      : impl_(std::move(impl)) {}
  std::shared_ptr<prometheus::Gauge> impl_;
};

// A distribution of durations, in fixed buckets (see docs/metrics.md).
class Histogram {
 public:
  Histogram() = default;  // detached
  void Observe(double seconds) const noexcept;
  bool attached() const noexcept { return impl_ != nullptr; }

 private:
  friend class Metrics;
  friend class LocalHistogram;
  Histogram(std::shared_ptr<prometheus::Histogram> impl, const std::vector<double>* bounds)
      : impl_(std::move(impl)), bounds_(bounds) {}
  std::shared_ptr<prometheus::Histogram> impl_;
  const std::vector<double>* bounds_ = nullptr;  // the family's, static
};

// A Histogram observed on one thread's hot path: Observe counts into
// buckets of its own, without the shared histogram's lock, and Flush hands
// them over in one locked step. /metrics lags by what is not flushed yet,
// so the owner flushes often (a task: once a second and when it closes).
// Thread-compatible: one thread observes and flushes.
class LocalHistogram {
 public:
  LocalHistogram() = default;  // detached
  explicit LocalHistogram(Histogram shared);
  LocalHistogram(LocalHistogram&& other) noexcept { *this = std::move(other); }
  LocalHistogram& operator=(LocalHistogram&& other) noexcept;
  ~LocalHistogram() { Flush(); }
  void Observe(double seconds) noexcept;
  void Flush() noexcept;

 private:
  Histogram shared_;
  std::vector<double> counts_;  // per bucket of shared_, +Inf last
  double sum_ = 0;
  bool pending_ = false;
};

class Metrics {
 public:
  // The Content-Type of Serialize()'s output.
  static constexpr std::string_view kContentType =
      "text/plain; version=0.0.4; charset=utf-8";

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Records. `task` is the task id ("<sub>_<partition>").
  Counter RecordsConsumed(std::string_view topic, int32_t partition,
                          std::string_view task) noexcept;
  Counter RecordsProcessed(std::string_view task) noexcept;
  Counter RecordsProduced(std::string_view topic) noexcept;
  Counter DeadLetters(std::string_view task,
                      std::string_view processor) noexcept;
  Histogram ProcessLatency(std::string_view task) noexcept;  // seconds/record

  // Commands, per aggregate and command type. `code` is the rejection code.
  Counter CommandsAccepted(std::string_view aggregate,
                           std::string_view type) noexcept;
  Counter CommandsRejected(std::string_view aggregate, std::string_view type,
                           std::string_view code) noexcept;
  Counter CommandsDuplicate(std::string_view aggregate,
                            std::string_view type) noexcept;
  // action: "forwarded" or "dead_lettered".
  Counter CommandsMisrouted(std::string_view aggregate, std::string_view action) noexcept;

  // Process managers (sagas).
  Counter ProcessManagerStarted(std::string_view process_manager) noexcept;
  // `outcome`: completed or compensated.
  Counter ProcessManagerEnded(std::string_view process_manager, std::string_view outcome) noexcept;
  Counter ProcessManagerDeadlinesFired(std::string_view process_manager) noexcept;
  Gauge ProcessManagerActive(std::string_view process_manager) noexcept;

  // Transactions and the consumer group, per stream thread.
  Histogram CommitLatency(std::string_view thread) noexcept;  // seconds
  Counter TransactionsCommitted(std::string_view thread) noexcept;
  Counter TransactionAborts(std::string_view thread) noexcept;
  Counter Rebalances(std::string_view thread) noexcept;
  Counter RecordsRedelivered(std::string_view thread) noexcept;
  Gauge TasksRunning(std::string_view thread) noexcept;
  Gauge TasksRestoring(std::string_view thread) noexcept;
  Gauge ConsumerLag(std::string_view topic, int32_t partition) noexcept;

  // State stores.
  Counter StorePuts(std::string_view store) noexcept;
  Counter StoreGets(std::string_view store) noexcept;
  Gauge StoreKeys(std::string_view store, int32_t partition) noexcept;
  // The cache of committed values in front of a store
  // (application.cache_max_bytes): lookups it answered, lookups that went
  // on to storage, and the bytes it holds per store partition.
  Counter StoreCacheHits(std::string_view store) noexcept;
  Counter StoreCacheMisses(std::string_view store) noexcept;
  Gauge StoreCacheBytes(std::string_view store, int32_t partition) noexcept;
  Counter RestoredRecords(std::string_view store) noexcept;
  Gauge RestoreRemaining(std::string_view store, int32_t partition) noexcept;

  // The HTTP server. `route` is the router's pattern, not the request path.
  Counter HttpRequests(std::string_view route, std::string_view method,
                       int status) noexcept;
  Histogram HttpDuration(std::string_view route) noexcept;  // seconds

  // 1 when the instance is ready (/readyz answers 200), 0 when not. The
  // /metrics route sets it at each scrape, so that alerting can see
  // readiness without probing /readyz itself.
  Gauge Ready() noexcept;

  // Take children out of the report when their work moved away, so that
  // /metrics shows no stale gauges. Each returns how many children it removed.
  // A task was closed: every child labelled task=`task`.
  std::size_t RemoveTask(std::string_view task) noexcept;
  // A topic partition was revoked: every child labelled with both
  // topic=`topic` and partition=`partition` (consumed records, lag).
  std::size_t RemovePartition(std::string_view topic,
                              int32_t partition) noexcept;
  // A store partition was closed: every child labelled with both
  // store=`store` and partition=`partition` (keys, restore remaining).
  std::size_t RemoveStorePartition(std::string_view store,
                                   int32_t partition) noexcept;
  // A stream thread stopped: every child labelled thread=`thread`.
  std::size_t RemoveThread(std::string_view thread) noexcept;

  // Every family with at least one child, then the process_* metrics, in the
  // text exposition format 0.0.4. Families come in a fixed order and
  // children sorted by label values, so the output is deterministic.
  std::string Serialize() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kcqrs::metrics

#endif  // KCQRS_ENGINE_METRICS_METRICS_H_
