#include "engine/runtime/streams_producer.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};
constexpr int kMaxRetries = 10;

bool Retriable(const Status& s) { return s.IsUnavailable() || s.IsTimedOut(); }

}  // namespace

StreamsProducer::StreamsProducer(std::unique_ptr<ThreadProducer> producer, bool exactly_once,
                                 metrics::Metrics* metrics, FaultInjector* faults,
                                 const std::atomic<bool>* stop, int thread_index)
    : producer_(std::move(producer)),
      exactly_once_(exactly_once),
      metrics_(metrics),
      faults_(faults),
      stop_(stop),
      thread_index_(thread_index) {}

Status StreamsProducer::MaybeBeginTransaction() {
  if (exactly_once_ && !in_transaction_) {
    KCQRS_RETURN_IF_ERROR(producer_->BeginTransaction());
  }
  in_transaction_ = true;
  return Status::OK();
}

Status StreamsProducer::Send(const kafka::OutgoingRecord& record) {
  if (!error_.ok()) return error_;
  Status s = FaultPoint(FaultInjector::Point::kSend);
  if (s.ok()) s = producer_->Send(record);
  if (!s.ok()) {
    error_ = s;
    return s;
  }
  if (metrics_ != nullptr) {
    auto it = produced_.find(record.topic);
    if (it == produced_.end()) {
      it = produced_.emplace(record.topic, metrics_->RecordsProduced(record.topic)).first;
    }
    it->second.Increment();
  }
  return s;
}

Status StreamsProducer::Commit(const std::vector<kafka::TopicPartitionOffset>& offsets,
                               ThreadConsumer& consumer) {
  Status s;
  if (exactly_once_) {
    s = FaultPoint(FaultInjector::Point::kSendOffsets);
    if (s.ok()) s = producer_->SendOffsetsToTransaction(offsets, consumer, kKafkaTimeout);
    // librdkafka says when the call may be retried (a coordinator moving
    // after a broker died): retrying keeps the transaction, where new
    // clients would cost a rejoin and seconds of stall.
    for (int attempt = 0; Retriable(s) && attempt < kMaxRetries && !*stop_; ++attempt) {
      spdlog::warn("stream-thread-{}: sending offsets: {}; retrying", thread_index_, s.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(100) * (attempt + 1));
      s = producer_->SendOffsetsToTransaction(offsets, consumer, kKafkaTimeout);
    }
    if (s.ok()) s = FaultPoint(FaultInjector::Point::kCommit);
    if (s.ok()) {
      s = producer_->CommitTransaction(kKafkaTimeout);
      // A commit that timed out may be retried: it is idempotent.
      for (int attempt = 0; Retriable(s) && attempt < kMaxRetries && !s.IsFenced(); ++attempt) {
        spdlog::warn("stream-thread-{}: commit: {}; retrying", thread_index_, s.message());
        s = producer_->CommitTransaction(kKafkaTimeout);
      }
    }
  } else {
    s = producer_->Flush(kKafkaTimeout);
    if (s.ok()) s = FaultPoint(FaultInjector::Point::kCommit);
    if (s.ok()) s = consumer.CommitSync(offsets);
  }
  if (s.ok()) in_transaction_ = false;
  return s;
}

Status StreamsProducer::Abort() {
  error_ = Status::OK();
  Status s;
  if (exactly_once_ && in_transaction_) s = producer_->AbortTransaction(kKafkaTimeout);
  in_transaction_ = false;
  if (s.ok()) (void)producer_->TakeDeliveredOffsets();
  return s;
}

void StreamsProducer::Forget() {
  in_transaction_ = false;
  error_ = Status::OK();
}

}  // namespace kcqrs::engine
