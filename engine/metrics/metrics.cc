#include "engine/metrics/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/metrics/process_stats.h"

namespace kcqrs::metrics {

void Counter::Increment(double v) const noexcept {
  // prometheus-cpp ignores negative increments but would add a NaN.
  if (impl_ != nullptr && v >= 0) impl_->Increment(v);
}
double Counter::Value() const noexcept {
  return impl_ != nullptr ? impl_->Value() : 0;
}

void Gauge::Set(double v) const noexcept {
  if (impl_ != nullptr) impl_->Set(v);
}
void Gauge::Increment(double v) const noexcept {
  if (impl_ != nullptr) impl_->Increment(v);
}
void Gauge::Decrement(double v) const noexcept {
  if (impl_ != nullptr) impl_->Decrement(v);
}
double Gauge::Value() const noexcept {
  return impl_ != nullptr ? impl_->Value() : 0;
}

void Histogram::Observe(double seconds) const noexcept {
  if (impl_ != nullptr) impl_->Observe(seconds);
}

LocalHistogram::LocalHistogram(Histogram shared) : shared_(std::move(shared)) {
  if (shared_.impl_ != nullptr && shared_.bounds_ != nullptr) {
    counts_.assign(shared_.bounds_->size() + 1, 0.0);
  }
}

LocalHistogram& LocalHistogram::operator=(LocalHistogram&& other) noexcept {
  if (this == &other) return *this;
  Flush();
  shared_ = std::exchange(other.shared_, Histogram());
  counts_ = std::exchange(other.counts_, {});
  sum_ = std::exchange(other.sum_, 0.0);
  pending_ = std::exchange(other.pending_, false);
  return *this;
}

void LocalHistogram::Observe(double seconds) noexcept {
  if (counts_.empty()) return;
  // The bucket prometheus-cpp would pick: the first bound at or above.
  const std::vector<double>& bounds = *shared_.bounds_;
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  counts_[i] += 1;
  sum_ += seconds;
  pending_ = true;
}

void LocalHistogram::Flush() noexcept {
  if (!pending_) return;
  try {
    shared_.impl_->ObserveMultiple(counts_, sum_);
  } catch (...) {
    // Sizes match by construction; nothing else throws.
  }
  std::fill(counts_.begin(), counts_.end(), 0.0);
  sum_ = 0;
  pending_ = false;
}

namespace {

using Buckets = std::vector<double>;
using LabelValues = std::vector<std::string>;
// (label name, value) pairs that a child must all carry to be removed.
using Match =
    std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Bucket upper bounds in seconds: 1, 2.5, 5 per decade.
const Buckets& ProcessBuckets() {  // 10 µs .. 1 s
  static const Buckets b{1e-5, 2.5e-5, 5e-5,  1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
                         5e-3, 0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1};
  return b;
}
const Buckets& CommitBuckets() {  // 1 ms .. 10 s
  static const Buckets b{1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1,
                         0.25, 0.5,    1,    2.5,  5,     10};
  return b;
}
const Buckets& HttpBuckets() {  // 100 µs .. 10 s
  static const Buckets b{1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
                         0.05, 0.1,    0.25, 0.5,  1,      2.5,  5,    10};
  return b;
}

// One metric family: its name, help, label names and children by label
// values. Not synchronized: Metrics::Impl's mutex guards every family.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help,
             std::vector<std::string> labels)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)) {}
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  virtual void Collect(std::vector<prometheus::MetricFamily>* out) const = 0;
  virtual std::size_t RemoveWhere(Match match) = 0;

 protected:
  // For each (name, value) of `match`, the index of that label in this
  // family; nullopt when the family lacks one of them.
  std::optional<std::vector<std::pair<std::size_t, std::string_view>>> Resolve(
      Match match) const {
    std::vector<std::pair<std::size_t, std::string_view>> resolved;
    for (const auto& [label, value] : match) {
      std::size_t i = 0;
      while (i < labels_.size() && labels_[i] != label) ++i;
      if (i == labels_.size()) return std::nullopt;
      resolved.emplace_back(i, value);
    }
    return resolved;
  }

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> labels_;
};

template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::vector<std::string> labels,
         const Buckets* buckets = nullptr)
      : FamilyBase(std::move(name), std::move(help), std::move(labels)),
        buckets_(buckets) {}

  std::shared_ptr<T> Get(LabelValues values) {
    auto it = children_.find(values);
    if (it == children_.end()) {
      std::shared_ptr<T> child;
      if constexpr (std::is_same_v<T, prometheus::Histogram>) {
        child = std::make_shared<T>(*buckets_);
      } else {
        child = std::make_shared<T>();
      }
      it = children_.emplace(std::move(values), std::move(child)).first;
    }
    return it->second;
  }

  const Buckets* buckets() const { return buckets_; }

  void Collect(std::vector<prometheus::MetricFamily>* out) const override {
    if (children_.empty()) return;
    prometheus::MetricFamily family;
    family.name = name_;
    family.help = help_;
    family.type = T::metric_type;
    family.metric.reserve(children_.size());
    for (const auto& [values, child] : children_) {
      prometheus::ClientMetric m = child->Collect();
      m.label.reserve(labels_.size());
      for (std::size_t i = 0; i < labels_.size(); ++i) {
        m.label.push_back({labels_[i], values[i]});
      }
      family.metric.push_back(std::move(m));
    }
    out->push_back(std::move(family));
  }

  std::size_t RemoveWhere(Match match) override {
    const auto resolved = Resolve(match);
    if (!resolved) return 0;
    return std::erase_if(children_, [&](const auto& child) {
      for (const auto& [i, value] : *resolved) {
        if (child.first[i] != value) return false;
      }
      return true;
    });
  }

 private:
  const Buckets* const buckets_;
  std::map<LabelValues, std::shared_ptr<T>> children_;
};

using CounterFamily = Family<prometheus::Counter>;
using GaugeFamily = Family<prometheus::Gauge>;
using HistogramFamily = Family<prometheus::Histogram>;

void AddProcessMetric(std::vector<prometheus::MetricFamily>* out,
                      const char* name, const char* help,
                      prometheus::MetricType type,
                      std::optional<double> value) {
  if (!value) return;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = *value;
  } else {
    m.gauge.value = *value;
  }
  out->push_back(prometheus::MetricFamily{name, help, type, {std::move(m)}});
}

}  // namespace

struct Metrics::Impl {
  mutable std::mutex mu;

  CounterFamily records_consumed{
      "kcqrs_records_consumed_total",
      "Records read from a source topic partition by a task.",
      {"topic", "partition", "task"}};
  CounterFamily records_processed{"kcqrs_records_processed_total",
                                  "Records a task processed to the end, "
                                  "successfully or into the dead-letter topic.",
                                  {"task"}};
  CounterFamily records_produced{"kcqrs_records_produced_total",
                                 "Records sent to an output topic (events, "
                                 "rejections, dead letters, repartition, "
                                 "changelogs).",
                                 {"topic"}};
  CounterFamily dead_letters{"kcqrs_dead_letters_total",
                             "Records sent to the dead-letter topic, by the "
                             "task and processor that failed them.",
                             {"task", "processor"}};
  HistogramFamily process_latency{
      "kcqrs_process_latency_seconds",
      "Time a task spent processing one record through its sub-topology.",
      {"task"},
      &ProcessBuckets()};
  CounterFamily commands_accepted{
      "kcqrs_commands_accepted_total",
      "Commands an aggregate accepted (they emitted events).",
      {"aggregate", "type"}};
  CounterFamily commands_rejected{
      "kcqrs_commands_rejected_total",
      "Commands an aggregate rejected, by rejection code.",
      {"aggregate", "type", "code"}};
  CounterFamily commands_duplicate{
      "kcqrs_commands_duplicate_total",
      "Commands skipped because their command id was already decided.",
      {"aggregate", "type"}};
  CounterFamily commands_misrouted{
      "kcqrs_commands_misrouted_total",
      "Commands found on a partition other than the one their aggregate id hashes to "
      "(murmur2), by what was done: forwarded or dead_lettered.",
      {"aggregate", "action"}};
  CounterFamily pm_started{
      "kcqrs_process_manager_started_total",
      "Process manager instances started (the first event of an instance).",
      {"process_manager"}};
  CounterFamily pm_ended{
      "kcqrs_process_manager_ended_total",
      "Process manager instances ended, by outcome: completed or compensated.",
      {"process_manager", "outcome"}};
  CounterFamily pm_deadlines{
      "kcqrs_process_manager_deadlines_fired_total",
      "Deadlines of process manager instances that passed (timed out) and fired.",
      {"process_manager"}};
  GaugeFamily pm_active{
      "kcqrs_process_manager_active",
      "Process manager instances started and not ended, in the tasks of this instance "
      "(committed).",
      {"process_manager"}};
  HistogramFamily commit_latency{"kcqrs_commit_latency_seconds",
                                 "Time a stream thread took to commit one "
                                 "transaction (offsets and outputs).",
                                 {"thread"},
                                 &CommitBuckets()};
  CounterFamily transactions_committed{
      "kcqrs_transactions_committed_total",
      "Kafka transactions a stream thread committed.",
      {"thread"}};
  CounterFamily transactions_aborted{
      "kcqrs_transactions_aborted_total",
      "Kafka transactions a stream thread aborted (it then rewound to the last "
      "commit).",
      {"thread"}};
  CounterFamily rebalances{
      "kcqrs_rebalances_total",
      "Consumer group rebalances a stream thread took part in.",
      {"thread"}};
  CounterFamily records_redelivered{
      "kcqrs_records_redelivered_total",
      "Input records the Kafka consumer handed over again below what a stream "
      "thread had processed; skipped, and the consumer sought back.",
      {"thread"}};
  GaugeFamily tasks{
      "kcqrs_tasks",
      "Tasks a stream thread owns, by state (running or restoring).",
      {"thread", "state"}};
  GaugeFamily consumer_lag{"kcqrs_consumer_lag_records",
                           "Records in a source topic partition not yet "
                           "consumed (end offset minus position).",
                           {"topic", "partition"}};
  CounterFamily store_puts{"kcqrs_store_puts_total",
                           "Writes (puts and deletes) to a state store.",
                           {"store"}};
  CounterFamily store_gets{"kcqrs_store_gets_total",
                           "Reads of single keys from a state store.",
                           {"store"}};
  GaugeFamily store_keys{"kcqrs_store_keys",
                         "Estimated number of keys in a state store partition.",
                         {"store", "partition"}};
  CounterFamily store_cache_hits{
      "kcqrs_store_cache_hits_total",
      "Reads of a state store answered by its cache of committed values.",
      {"store"}};
  CounterFamily store_cache_misses{
      "kcqrs_store_cache_misses_total",
      "Reads of a state store its cache could not answer (read from storage).",
      {"store"}};
  GaugeFamily store_cache_bytes{
      "kcqrs_store_cache_bytes",
      "Approximate bytes held by the cache of a state store partition.",
      {"store", "partition"}};
  CounterFamily restored_records{
      "kcqrs_restored_records_total",
      "Changelog records applied to a state store while restoring it.",
      {"store"}};
  GaugeFamily restore_remaining{
      "kcqrs_restore_remaining_records",
      "Changelog records still to restore into a state store partition.",
      {"store", "partition"}};
  CounterFamily http_requests{
      "kcqrs_http_requests_total",
      "HTTP requests answered, by route pattern, method and status code.",
      {"route", "method", "status"}};
  HistogramFamily http_duration{
      "kcqrs_http_request_duration_seconds",
      "Time from reading an HTTP request to finishing its response.",
      {"route"},
      &HttpBuckets()};
  GaugeFamily ready{"kcqrs_ready",
                    "1 when the instance is ready (/readyz answers 200), else 0.",
                    {}};

  // Every family, in the order Serialize() reports them.
  const std::vector<FamilyBase*> all{&records_consumed,
                                     &records_processed,
                                     &records_produced,
                                     &dead_letters,
                                     &process_latency,
                                     &commands_accepted,
                                     &commands_rejected,
                                     &commands_duplicate,
                                     &commands_misrouted,
                                     &pm_started,
                                     &pm_ended,
                                     &pm_deadlines,
                                     &pm_active,
                                     &commit_latency,
                                     &transactions_committed,
                                     &transactions_aborted,
                                     &rebalances,
                                     &records_redelivered,
                                     &tasks,
                                     &consumer_lag,
                                     &store_puts,
                                     &store_gets,
                                     &store_keys,
                                     &store_cache_hits,
                                     &store_cache_misses,
                                     &store_cache_bytes,
                                     &restored_records,
                                     &restore_remaining,
                                     &http_requests,
                                     &http_duration,
                                     &ready};

  template <typename Handle, typename T>
  Handle Get(Family<T>& family,
             std::initializer_list<std::string_view> values) noexcept {
    try {
      LabelValues key(values.begin(), values.end());
      std::lock_guard lock(mu);
      if constexpr (std::is_same_v<Handle, Histogram>) {
        return Handle(family.Get(std::move(key)), family.buckets());
      } else {
        return Handle(family.Get(std::move(key)));
      }
    } catch (...) {
      return Handle();  // out of memory: a detached handle counts nothing
    }
  }

  std::size_t Remove(Match match) noexcept {
    std::lock_guard lock(mu);
    std::size_t removed = 0;
    for (FamilyBase* family : all) removed += family->RemoveWhere(match);
    return removed;
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

Counter Metrics::RecordsConsumed(std::string_view topic, int32_t partition,
                                 std::string_view task) noexcept {
  return impl_->Get<Counter>(impl_->records_consumed,
                             {topic, std::to_string(partition), task});
}
Counter Metrics::RecordsProcessed(std::string_view task) noexcept {
  return impl_->Get<Counter>(impl_->records_processed, {task});
}
Counter Metrics::RecordsProduced(std::string_view topic) noexcept {
  return impl_->Get<Counter>(impl_->records_produced, {topic});
}
Counter Metrics::DeadLetters(std::string_view task,
                             std::string_view processor) noexcept {
  return impl_->Get<Counter>(impl_->dead_letters, {task, processor});
}
Histogram Metrics::ProcessLatency(std::string_view task) noexcept {
  return impl_->Get<Histogram>(impl_->process_latency, {task});
}
Counter Metrics::CommandsAccepted(std::string_view aggregate,
                                  std::string_view type) noexcept {
  return impl_->Get<Counter>(impl_->commands_accepted, {aggregate, type});
}
Counter Metrics::CommandsRejected(std::string_view aggregate,
                                  std::string_view type,
                                  std::string_view code) noexcept {
  return impl_->Get<Counter>(impl_->commands_rejected, {aggregate, type, code});
}
Counter Metrics::CommandsMisrouted(std::string_view aggregate,
                                   std::string_view action) noexcept {
  return impl_->Get<Counter>(impl_->commands_misrouted, {aggregate, action});
}

Counter Metrics::ProcessManagerStarted(std::string_view process_manager) noexcept {
  return impl_->Get<Counter>(impl_->pm_started, {process_manager});
}
Counter Metrics::ProcessManagerEnded(std::string_view process_manager,
                                     std::string_view outcome) noexcept {
  return impl_->Get<Counter>(impl_->pm_ended, {process_manager, outcome});
}
Counter Metrics::ProcessManagerDeadlinesFired(std::string_view process_manager) noexcept {
  return impl_->Get<Counter>(impl_->pm_deadlines, {process_manager});
}
Gauge Metrics::ProcessManagerActive(std::string_view process_manager) noexcept {
  return impl_->Get<Gauge>(impl_->pm_active, {process_manager});
}

Counter Metrics::CommandsDuplicate(std::string_view aggregate,
                                   std::string_view type) noexcept {
  return impl_->Get<Counter>(impl_->commands_duplicate, {aggregate, type});
}
Histogram Metrics::CommitLatency(std::string_view thread) noexcept {
  return impl_->Get<Histogram>(impl_->commit_latency, {thread});
}
Counter Metrics::TransactionsCommitted(std::string_view thread) noexcept {
  return impl_->Get<Counter>(impl_->transactions_committed, {thread});
}
Counter Metrics::TransactionAborts(std::string_view thread) noexcept {
  return impl_->Get<Counter>(impl_->transactions_aborted, {thread});
}
Counter Metrics::Rebalances(std::string_view thread) noexcept {
  return impl_->Get<Counter>(impl_->rebalances, {thread});
}
Counter Metrics::RecordsRedelivered(std::string_view thread) noexcept {
  return impl_->Get<Counter>(impl_->records_redelivered, {thread});
}
Gauge Metrics::TasksRunning(std::string_view thread) noexcept {
  return impl_->Get<Gauge>(impl_->tasks, {thread, "running"});
}
Gauge Metrics::TasksRestoring(std::string_view thread) noexcept {
  return impl_->Get<Gauge>(impl_->tasks, {thread, "restoring"});
}
Gauge Metrics::ConsumerLag(std::string_view topic, int32_t partition) noexcept {
  return impl_->Get<Gauge>(impl_->consumer_lag,
                           {topic, std::to_string(partition)});
}
Counter Metrics::StorePuts(std::string_view store) noexcept {
  return impl_->Get<Counter>(impl_->store_puts, {store});
}
Counter Metrics::StoreGets(std::string_view store) noexcept {
  return impl_->Get<Counter>(impl_->store_gets, {store});
}
Gauge Metrics::StoreKeys(std::string_view store, int32_t partition) noexcept {
  return impl_->Get<Gauge>(impl_->store_keys,
                           {store, std::to_string(partition)});
}
Counter Metrics::StoreCacheHits(std::string_view store) noexcept {
  return impl_->Get<Counter>(impl_->store_cache_hits, {store});
}
Counter Metrics::StoreCacheMisses(std::string_view store) noexcept {
  return impl_->Get<Counter>(impl_->store_cache_misses, {store});
}
Gauge Metrics::StoreCacheBytes(std::string_view store, int32_t partition) noexcept {
  return impl_->Get<Gauge>(impl_->store_cache_bytes, {store, std::to_string(partition)});
}
Counter Metrics::RestoredRecords(std::string_view store) noexcept {
  return impl_->Get<Counter>(impl_->restored_records, {store});
}
Gauge Metrics::RestoreRemaining(std::string_view store,
                                int32_t partition) noexcept {
  return impl_->Get<Gauge>(impl_->restore_remaining,
                           {store, std::to_string(partition)});
}
Counter Metrics::HttpRequests(std::string_view route, std::string_view method,
                              int status) noexcept {
  return impl_->Get<Counter>(impl_->http_requests,
                             {route, method, std::to_string(status)});
}
Histogram Metrics::HttpDuration(std::string_view route) noexcept {
  return impl_->Get<Histogram>(impl_->http_duration, {route});
}
Gauge Metrics::Ready() noexcept { return impl_->Get<Gauge>(impl_->ready, {}); }

std::size_t Metrics::RemoveTask(std::string_view task) noexcept {
  return impl_->Remove({{"task", task}});
}
std::size_t Metrics::RemovePartition(std::string_view topic,
                                     int32_t partition) noexcept {
  const std::string p = std::to_string(partition);
  return impl_->Remove({{"topic", topic}, {"partition", p}});
}
std::size_t Metrics::RemoveStorePartition(std::string_view store,
                                          int32_t partition) noexcept {
  const std::string p = std::to_string(partition);
  return impl_->Remove({{"store", store}, {"partition", p}});
}
std::size_t Metrics::RemoveThread(std::string_view thread) noexcept {
  return impl_->Remove({{"thread", thread}});
}

std::string Metrics::Serialize() const noexcept {
  try {
    std::vector<prometheus::MetricFamily> families;
    {
      std::lock_guard lock(impl_->mu);
      families.reserve(impl_->all.size() + 6);
      for (const FamilyBase* family : impl_->all) family->Collect(&families);
    }
    using prometheus::MetricType;
    const ProcessStats p = ReadProcessStats();
    AddProcessMetric(&families, "process_cpu_seconds_total",
                     "Total user and system CPU time spent in seconds.",
                     MetricType::Counter, p.cpu_seconds);
    AddProcessMetric(&families, "process_resident_memory_bytes",
                     "Resident memory size in bytes.", MetricType::Gauge,
                     p.resident_bytes);
    AddProcessMetric(&families, "process_virtual_memory_bytes",
                     "Virtual memory size in bytes.", MetricType::Gauge,
                     p.virtual_bytes);
    AddProcessMetric(&families, "process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.",
                     MetricType::Gauge, p.start_time_seconds);
    AddProcessMetric(&families, "process_open_fds",
                     "Number of open file descriptors.", MetricType::Gauge,
                     p.open_fds);
    AddProcessMetric(&families, "process_max_fds",
                     "Maximum number of open file descriptors.",
                     MetricType::Gauge, p.max_fds);
    return prometheus::TextSerializer().Serialize(families);
  } catch (const std::exception& e) {
    return std::string("# kcqrs: metrics could not be serialized: ") +
           e.what() + "\n";
  } catch (...) {
    return "# kcqrs: metrics could not be serialized\n";
  }
}

}  // namespace kcqrs::metrics
