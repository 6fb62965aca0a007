// The Kafka clients of a stream thread, as interfaces (Kafka Streams:
// KafkaClientSupplier, and the Producer and Consumer interfaces its
// MockProducer and MockConsumer implement). The runtime runs on the real
// clients of engine/kafka (KafkaClientSupplier()); unit tests script these
// interfaces to drive the commit, abort, rewind, fence, wipe and restore
// paths of a running stream thread without a broker
// (tests/engine/stream_thread_test.cc).
//
// Each method means what the engine/kafka method of the same name means
// (engine/kafka/consumer.h, producer.h), Status codes included.
#ifndef KCQRS_ENGINE_RUNTIME_CLIENTS_H_
#define KCQRS_ENGINE_RUNTIME_CLIENTS_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/kafka/consumer.h"
#include "engine/kafka/properties.h"
#include "engine/kafka/record.h"
#include "kcqrs/record.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class ThreadConsumer {
 public:
  virtual ~ThreadConsumer() = default;
  virtual Status Subscribe(const std::vector<std::string>& topics,
                           kafka::RebalanceListener* listener) = 0;
  virtual Status Assign(const std::vector<kafka::TopicPartitionOffset>& partitions) = 0;
  virtual Result<std::optional<kafka::ConsumedRecord>> Poll(std::chrono::milliseconds timeout) = 0;
  // As Poll, into *out: true when a record was stored there. Kafka's
  // consumer reuses the record's buffers (kafka::Consumer::PollInto); this
  // default, for other clients, moves a polled record in.
  virtual Result<bool> PollInto(std::chrono::milliseconds timeout, Record* out) {
    auto polled = Poll(timeout);
    if (!polled.ok()) return polled.status();
    if (!polled->has_value()) return false;
    kafka::ConsumedRecord& c = **polled;
    out->topic = std::move(c.topic);
    out->partition = c.partition;
    out->offset = c.offset;
    out->key = std::move(c.key);
    out->value = std::move(c.value);
    out->headers = std::move(c.headers);
    out->timestamp_ms = c.timestamp_ms;
    return true;
  }
  // Records of these topics may come from PollInto without their headers;
  // SkippedHeaders gives them for the record last polled
  // (kafka::Consumer::SkipHeaders). Other clients keep every header.
  virtual void SkipHeaders(std::set<std::string> /*topics*/) {}
  virtual bool SkippedHeaders(const Record& /*record*/, std::vector<Header>* /*out*/) const {
    return false;
  }
  virtual Status CommitSync(const std::vector<kafka::TopicPartitionOffset>& offsets) = 0;
  virtual Result<std::vector<kafka::TopicPartitionOffset>> Committed(
      const std::vector<kafka::TopicPartitionOffset>& partitions,
      std::chrono::milliseconds timeout) = 0;
  virtual Result<std::pair<int64_t, int64_t>> QueryWatermarks(
      const std::string& topic, int32_t partition, std::chrono::milliseconds timeout) = 0;
  virtual Result<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                               int32_t partition) const = 0;
  virtual Result<int64_t> Position(const std::string& topic, int32_t partition) const = 0;
  virtual Status Seek(const kafka::TopicPartitionOffset& position,
                      std::chrono::milliseconds timeout) = 0;
  virtual Status Pause(const std::vector<kafka::TopicPartitionOffset>& partitions) = 0;
  virtual Status Resume(const std::vector<kafka::TopicPartitionOffset>& partitions) = 0;
  virtual Status LeaveGroup(std::chrono::milliseconds timeout) = 0;
  virtual Status Close() = 0;
};

class ThreadProducer {
 public:
  virtual ~ThreadProducer() = default;
  virtual Status InitTransactions(std::chrono::milliseconds timeout) = 0;
  virtual Status BeginTransaction() = 0;
  virtual Status Send(const kafka::OutgoingRecord& record) = 0;
  virtual Status Flush(std::chrono::milliseconds timeout) = 0;
  // `consumer` is the thread's main consumer (its group metadata goes with
  // the offsets).
  virtual Status SendOffsetsToTransaction(const std::vector<kafka::TopicPartitionOffset>& offsets,
                                          ThreadConsumer& consumer,
                                          std::chrono::milliseconds timeout) = 0;
  virtual Status CommitTransaction(std::chrono::milliseconds timeout) = 0;
  virtual Status AbortTransaction(std::chrono::milliseconds timeout) = 0;
  virtual std::map<std::pair<std::string, int32_t>, int64_t> TakeDeliveredOffsets() = 0;
};

// Makes a stream thread's clients from their configuration
// (client_configs.h). Called again for each new life of the clients (after
// a fence or a fatal error); may be shared by threads.
class ClientSupplier {
 public:
  virtual ~ClientSupplier() = default;
  virtual Result<std::unique_ptr<ThreadProducer>> GetProducer(
      const kafka::Properties& properties) = 0;
  virtual Result<std::unique_ptr<ThreadConsumer>> GetConsumer(
      const kafka::Properties& properties) = 0;
};

// The real clients (engine/kafka, librdkafka).
std::shared_ptr<ClientSupplier> KafkaClientSupplier();

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_CLIENTS_H_
