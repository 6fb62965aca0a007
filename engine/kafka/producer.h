// Producer: sends records to Kafka, plain or inside transactions.
//
// Delivery is asynchronous. Delivery reports are served on the caller's
// thread, with no background thread: Send polls without waiting after every
// kSendsPerPoll records (and whenever librdkafka's queue is full), Poll
// serves them on demand, and Flush (and CommitTransaction, which flushes)
// wait for all of them. A failed delivery is remembered and returned by the
// next Flush, so a caller that Flushes before it considers records written
// sees every failure.
//
// Transactions (set the property "transactional.id"): InitTransactions
// once, then per batch BeginTransaction, Send..., SendOffsetsToTransaction,
// CommitTransaction. What a caller does with each Status of a
// transactional call:
//   OK            go on.
//   TimedOut,     the call did not complete but may: call the SAME method
//   Unavailable   again (a CommitTransaction retried this way commits the
//                 same transaction, it does not start a new one).
//   Aborted       the transaction cannot commit: call AbortTransaction,
//                 rewind to the last committed state, begin again.
//   Fenced        another producer with the same transactional.id took
//                 over, or the producer hit a fatal error: stop the work
//                 and destroy this producer (a new one may InitTransactions
//                 if the work is still ours).
//   FailedPrecondition  a call out of order (e.g. Send with no transaction
//                 begun): a bug in the caller.
//
// Ownership: the creator owns it through std::unique_ptr; it owns its
// librdkafka handle. The destructor does not flush: records not yet
// delivered are dropped (and an open transaction is aborted by the broker
// after transaction.timeout.ms), so Flush or commit first.
//
// Thread-safety: Send, Poll and Flush may be called from several threads at
// once (the HTTP command producer sends from request threads and serves
// reports from a thread of its own); the transactional calls and
// TakeDeliveredOffsets belong to the one thread that owns a stream
// thread's producer.
#ifndef KCQRS_ENGINE_KAFKA_PRODUCER_H_
#define KCQRS_ENGINE_KAFKA_PRODUCER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/kafka/client.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/properties.h"
#include "engine/kafka/record.h"
#include "kcqrs/status.h"

struct rd_kafka_s;
struct rd_kafka_message_s;
struct rd_kafka_topic_s;

namespace kcqrs::kafka {

class Producer {
 public:
  // `properties` are librdkafka producer properties ("bootstrap.servers",
  // "transactional.id", "linger.ms", ...), passed through unchanged.
  // InvalidArgument names a bad property.
  static Result<std::unique_ptr<Producer>> Create(const Properties& properties);

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();

  // Queues `record` for delivery. When librdkafka's queue is full, serves
  // delivery reports and retries, for at most message.timeout.ms (by then
  // every queued record has been delivered or failed), then TimedOut.
  // Returns InvalidArgument (e.g. record too large), NotFound (unknown
  // topic or partition), and in a transactional producer Aborted (the
  // transaction must be aborted), Fenced, or FailedPrecondition (no
  // transaction begun).
  Status Send(const OutgoingRecord& record);

  // Called once per record with its delivery: OK with the partition and
  // offset it got, or why it failed. Runs on the thread that serves
  // delivery reports (Poll, Flush, Send).
  using DeliveryHandler =
      std::function<void(const Status& status, int32_t partition, int64_t offset)>;

  // As Send, and calls `on_delivery` when the record is delivered or has
  // failed (then it also counts for the next Flush). When Send returns an
  // error, `on_delivery` is not called.
  Status Send(const OutgoingRecord& record, DeliveryHandler on_delivery);

  // Serves delivery reports for up to `timeout` (0: only those ready). A
  // producer whose owner does not Flush regularly (the HTTP command
  // producer) calls this from a thread of its own.
  void Poll(std::chrono::milliseconds timeout);

  // Waits up to `timeout` until every queued record is delivered or failed.
  // Returns the first delivery error since the last Flush (and forgets
  // it), else TimedOut if records are still outstanding, else OK.
  Status Flush(std::chrono::milliseconds timeout);

  // Records queued or in flight, not yet reported.
  int OutstandingRecords() const;

  // Transactions; see the class comment for what each code means.
  Status InitTransactions(std::chrono::milliseconds timeout);
  Status BeginTransaction();
  // Adds `next_offsets` (last processed + 1 per partition) for the group of
  // `consumer` to the transaction; they become the group's committed
  // offsets only if the transaction commits. Empty is a no-op.
  Status SendOffsetsToTransaction(
      const std::vector<TopicPartitionOffset>& next_offsets,
      const Consumer& consumer, std::chrono::milliseconds timeout);
  Status SendOffsetsToTransaction(
      const std::vector<TopicPartitionOffset>& next_offsets,
      const ConsumerGroupMetadata& group, std::chrono::milliseconds timeout);
  Status CommitTransaction(std::chrono::milliseconds timeout);
  Status AbortTransaction(std::chrono::milliseconds timeout);

  bool transactional() const { return transactional_; }

  // The highest offset delivered per partition since the last call, and
  // forgets them. After a successful Flush or CommitTransaction every record
  // sent before it is included: the engine records the changelog offsets its
  // state has reached from this.
  std::map<std::pair<std::string, int32_t>, int64_t> TakeDeliveredOffsets();

  // Send serves delivery reports after this many records. Serving them
  // after every record cost a queue lock and a wake-up check per record;
  // librdkafka's own queue bound still applies (a full queue is served at
  // once), and Flush and CommitTransaction serve every report anyway.
  static constexpr uint32_t kSendsPerPoll = 64;

 private:
  friend struct ProducerCallbacks;  // librdkafka's C callbacks, in the .cc
  Producer() = default;
  void OnDelivery(const rd_kafka_message_s* message);
  Status SendWithOpaque(const OutgoingRecord& record, void* opaque);
  Status FatalStatus(const char* context) const;
  // The handle of topic `name`, made on its first record and kept: naming
  // the topic per record made librdkafka look it up (under its handle's
  // write lock) and reference it for every record.
  rd_kafka_topic_s* Topic(const std::string& name);

  struct TopicDeleter {
    void operator()(rd_kafka_topic_s* rkt) const;
  };
  using TopicPtr = std::unique_ptr<rd_kafka_topic_s, TopicDeleter>;
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // Delivered so far, by topic handle and partition: a delivery report
  // names its topic by handle, and the names are looked up only when taken.
  struct Delivered {
    const rd_kafka_topic_s* topic;
    int32_t partition;
    int64_t offset;
  };

  internal::HandlePtr rk_;
  bool transactional_ = false;
  bool in_transaction_ = false;
  std::chrono::milliseconds max_block_{300000};
  std::atomic<uint32_t> sends_since_poll_{0};
  // Guards the topic handles and what delivery reports record: reports are
  // served on whichever thread polls or sends.
  mutable std::mutex mu_;
  // Declared after rk_, so destroyed before it.
  std::unordered_map<std::string, TopicPtr, NameHash, std::equal_to<>> topics_;
  Status first_delivery_error_;
  std::vector<Delivered> delivered_;
  size_t last_delivered_ = 0;  // index into delivered_ of the last report
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_PRODUCER_H_
