// StreamsProducer: a stream thread's producer and its transactions in one
// place (Kafka Streams: StreamsProducer). Under exactly-once it begins a
// transaction with the first record of a commit interval, and commits the
// consumed offsets with it; at-least-once it flushes and then commits the
// offsets through the consumer. Send failures are remembered: the
// transaction they belong to cannot commit, and the stream thread aborts it
// at its next record (error()).
//
// Thread-safety: the stream thread's only.
#ifndef KCQRS_ENGINE_RUNTIME_STREAMS_PRODUCER_H_
#define KCQRS_ENGINE_RUNTIME_STREAMS_PRODUCER_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/metrics/metrics.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/fault_injector.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class StreamsProducer {
 public:
  // `producer` must be initialised (InitTransactions under exactly-once).
  // `metrics` and `faults` may be null; `stop` is the thread's stop flag
  // (retries end when it is set).
  StreamsProducer(std::unique_ptr<ThreadProducer> producer, bool exactly_once,
                  metrics::Metrics* metrics, FaultInjector* faults, const std::atomic<bool>* stop,
                  int thread_index);

  bool exactly_once() const { return exactly_once_; }
  bool in_transaction() const { return in_transaction_; }
  // The first Send failure of the open transaction (OK when none).
  const Status& error() const { return error_; }

  // Begins a transaction unless one is open (exactly-once); marks the
  // interval open either way.
  Status MaybeBeginTransaction();
  Status Send(const kafka::OutgoingRecord& record);

  // Commits the open transaction with `offsets` (next offsets to read) for
  // `consumer`'s group. Retriable failures of the offset send and of the
  // commit are retried (a coordinator moving after a broker died). On
  // failure the transaction is still open: Abort() it, or drop the clients.
  Status Commit(const std::vector<kafka::TopicPartitionOffset>& offsets,
                ThreadConsumer& consumer);
  // Aborts the open transaction (exactly-once) and forgets the send failure
  // and the delivered offsets. A non-OK Status (fenced, fatal) means new
  // clients.
  Status Abort();
  // Forgets the open transaction without telling Kafka: for when the
  // clients are dropped anyway (the broker aborts it when the next
  // incarnation fences this one, or it times out).
  void Forget();

  // Highest offset delivered per partition since the last call.
  std::map<std::pair<std::string, int32_t>, int64_t> TakeDeliveredOffsets() {
    return producer_->TakeDeliveredOffsets();
  }

 private:
  Status FaultPoint(FaultInjector::Point point) {
    return faults_ != nullptr ? faults_->Check(point) : Status::OK();
  }

  std::unique_ptr<ThreadProducer> producer_;
  const bool exactly_once_;
  metrics::Metrics* metrics_;
  FaultInjector* faults_;
  const std::atomic<bool>* stop_;
  const int thread_index_;
  bool in_transaction_ = false;
  Status error_;
  std::map<std::string, metrics::Counter, std::less<>> produced_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STREAMS_PRODUCER_H_
