// KafkaClientSupplier: clients.h on engine/kafka's clients, call for call.
#include <memory>

#include "engine/kafka/consumer.h"
#include "engine/kafka/producer.h"
#include "engine/runtime/clients.h"

namespace kcqrs::engine {
namespace {

class KafkaConsumer final : public ThreadConsumer {
 public:
  explicit KafkaConsumer(std::unique_ptr<kafka::Consumer> c) : c_(std::move(c)) {}
  const kafka::Consumer& consumer() const { return *c_; }

  Status Subscribe(const std::vector<std::string>& topics,
                   kafka::RebalanceListener* listener) override {
    return c_->Subscribe(topics, listener);
  }
  Status Assign(const std::vector<kafka::TopicPartitionOffset>& partitions) override {
    return c_->Assign(partitions);
  }
  Result<std::optional<kafka::ConsumedRecord>> Poll(std::chrono::milliseconds timeout) override {
    return c_->Poll(timeout);
  }
  Result<bool> PollInto(std::chrono::milliseconds timeout, Record* out) override {
    return c_->PollInto(timeout, out);
  }
  void SkipHeaders(std::set<std::string> topics) override { c_->SkipHeaders(std::move(topics)); }
  bool SkippedHeaders(const Record& record, std::vector<Header>* out) const override {
    return c_->SkippedHeaders(record, out);
  }
  Status CommitSync(const std::vector<kafka::TopicPartitionOffset>& offsets) override {
    return c_->CommitSync(offsets);
  }
  Result<std::vector<kafka::TopicPartitionOffset>> Committed(
      const std::vector<kafka::TopicPartitionOffset>& partitions,
      std::chrono::milliseconds timeout) override {
    return c_->Committed(partitions, timeout);
  }
  Result<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic, int32_t partition,
                                                      std::chrono::milliseconds timeout) override {
    return c_->QueryWatermarks(topic, partition, timeout);
  }
  Result<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                       int32_t partition) const override {
    return c_->CachedWatermarks(topic, partition);
  }
  Result<int64_t> Position(const std::string& topic, int32_t partition) const override {
    return c_->Position(topic, partition);
  }
  Status Seek(const kafka::TopicPartitionOffset& position,
              std::chrono::milliseconds timeout) override {
    return c_->Seek(position, timeout);
  }
  Status Pause(const std::vector<kafka::TopicPartitionOffset>& partitions) override {
    return c_->Pause(partitions);
  }
  Status Resume(const std::vector<kafka::TopicPartitionOffset>& partitions) override {
    return c_->Resume(partitions);
  }
  Status LeaveGroup(std::chrono::milliseconds timeout) override {
    return c_->LeaveGroup(timeout);
  }
  Status Close() override { return c_->Close(); }

 private:
  std::unique_ptr<kafka::Consumer> c_;
};

class KafkaProducer final : public ThreadProducer {
 public:
  explicit KafkaProducer(std::unique_ptr<kafka::Producer> p) : p_(std::move(p)) {}

  Status InitTransactions(std::chrono::milliseconds timeout) override {
    return p_->InitTransactions(timeout);
  }
  Status BeginTransaction() override { return p_->BeginTransaction(); }
  Status Send(const kafka::OutgoingRecord& record) override { return p_->Send(record); }
  Status Flush(std::chrono::milliseconds timeout) override { return p_->Flush(timeout); }
  Status SendOffsetsToTransaction(const std::vector<kafka::TopicPartitionOffset>& offsets,
                                  ThreadConsumer& consumer,
                                  std::chrono::milliseconds timeout) override {
    // Only this supplier's consumers go with this supplier's producers.
    return p_->SendOffsetsToTransaction(offsets, static_cast<KafkaConsumer&>(consumer).consumer(),
                                        timeout);
  }
  Status CommitTransaction(std::chrono::milliseconds timeout) override {
    return p_->CommitTransaction(timeout);
  }
  Status AbortTransaction(std::chrono::milliseconds timeout) override {
    return p_->AbortTransaction(timeout);
  }
  std::map<std::pair<std::string, int32_t>, int64_t> TakeDeliveredOffsets() override {
    return p_->TakeDeliveredOffsets();
  }

 private:
  std::unique_ptr<kafka::Producer> p_;
};

class Supplier final : public ClientSupplier {
 public:
  Result<std::unique_ptr<ThreadProducer>> GetProducer(
      const kafka::Properties& properties) override {
    auto p = kafka::Producer::Create(properties);
    if (!p.ok()) return p.status();
    return std::unique_ptr<ThreadProducer>(new KafkaProducer(std::move(p).value()));
  }
  Result<std::unique_ptr<ThreadConsumer>> GetConsumer(
      const kafka::Properties& properties) override {
    auto c = kafka::Consumer::Create(properties);
    if (!c.ok()) return c.status();
    return std::unique_ptr<ThreadConsumer>(new KafkaConsumer(std::move(c).value()));
  }
};

}  // namespace

std::shared_ptr<ClientSupplier> KafkaClientSupplier() { return std::make_shared<Supplier>(); }

}  // namespace kcqrs::engine
