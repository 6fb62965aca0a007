// FakeKafka: scripted Kafka clients for engine/runtime/clients.h (as Kafka
// Streams tests use MockConsumer and MockProducer), so that a real
// StreamThread runs its commit, abort, rewind, fence, wipe and restore
// paths in a unit test, with failures injected exactly where a test wants.
//
// What it models, and no more: partitions as dense logs (no transaction
// markers), one consumer group with its committed offsets, transactions
// whose records and offsets become visible only at commit, a rebalance
// listener driven from Poll, a restore consumer reading the committed logs.
// Every client of one FakeKafka shares its state under one mutex.
#ifndef KCQRS_TESTS_SUPPORT_FAKE_KAFKA_H_
#define KCQRS_TESTS_SUPPORT_FAKE_KAFKA_H_

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "engine/runtime/clients.h"

namespace kcqrs::testing {

class FakeKafka : public std::enable_shared_from_this<FakeKafka> {
 public:
  using TopicPartition = std::pair<std::string, int32_t>;

  // Appends a committed record to a topic's partition (a producer outside
  // the application); returns its offset.
  int64_t Produce(const std::string& topic, int32_t partition, std::optional<std::string> key,
                  std::optional<std::string> value) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& log = logs_[{topic, partition}];
    kafka::ConsumedRecord r;
    r.topic = topic;
    r.partition = partition;
    r.offset = static_cast<int64_t>(log.size());
    r.key = std::move(key);
    r.value = std::move(value);
    log.push_back(std::move(r));
    return static_cast<int64_t>(log.size()) - 1;
  }

  // The committed records of a partition.
  std::vector<kafka::ConsumedRecord> Read(const std::string& topic, int32_t partition = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_[{topic, partition}];
  }
  // The group's committed offset (next to read); -1 when none.
  int64_t GroupOffset(const std::string& topic, int32_t partition) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = group_.find({topic, partition});
    return it == group_.end() ? -1 : it->second;
  }

  // Every main consumer is assigned `parts` (from the group's committed
  // offsets) at its first Poll, as the only member of its group.
  void SetAssignment(std::vector<TopicPartition> parts) {
    std::lock_guard<std::mutex> lock(mu_);
    assignment_ = std::move(parts);
  }
  // Runs once, inside the Poll of the next assignment, after the listener.
  void OnNextAssignment(std::function<void()> then) {
    std::lock_guard<std::mutex> lock(mu_);
    after_assignment_ = std::move(then);
  }

  // An eager rebalance at the next Poll of every main consumer: all its
  // partitions are revoked, `between` runs, then `parts` are assigned (from
  // the group's committed offsets), as with the range assignor.
  void Rebalance(std::vector<TopicPartition> parts, std::function<void()> between) {
    std::lock_guard<std::mutex> lock(mu_);
    assignment_ = std::move(parts);
    between_ = std::move(between);
    ++generation_;
  }

  // Each record a restore consumer returns takes this long (a big
  // changelog, a slow network).
  void SetRestoreDelay(std::chrono::microseconds per_record) {
    std::lock_guard<std::mutex> lock(mu_);
    restore_delay_ = per_record;
  }

  // The next CommitTransaction calls return these, in order (then OK).
  void FailCommits(std::vector<Status> results) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Status& s : results) commit_results_.push_back(std::move(s));
  }

  // What happened, for assertions.
  int producers_created() const { std::lock_guard<std::mutex> l(mu_); return producers_; }
  int commits() const { std::lock_guard<std::mutex> l(mu_); return commits_; }
  int aborts() const { std::lock_guard<std::mutex> l(mu_); return aborts_; }
  // How many main consumers left their group (ThreadConsumer::LeaveGroup).
  int group_leaves() const { std::lock_guard<std::mutex> l(mu_); return leaves_; }
  // Every Seek of a main consumer: partition -> offsets sought, in order.
  std::vector<kafka::TopicPartitionOffset> seeks() const {
    std::lock_guard<std::mutex> l(mu_);
    return seeks_;
  }

  // At its next Poll, every main consumer's position on `tp` goes back to
  // `offset` by itself, as librdkafka's stale offset lookup can do after a
  // seek (confluentinc/librdkafka#2256).
  void MovePositionBack(TopicPartition tp, int64_t offset) {
    std::lock_guard<std::mutex> lock(mu_);
    move_back_[std::move(tp)] = offset;
  }

  // The topic is deleted and made again: its logs are empty, the group's
  // offsets stay (as Kafka keeps them). A consumer whose position is past
  // a log's end starts it over, as auto.offset.reset=earliest does.
  void RecreateTopic(const std::string& topic) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = logs_.begin(); it != logs_.end();) {
      it = it->first.first == topic ? logs_.erase(it) : std::next(it);
    }
  }

  // A newer incarnation with the same transactional id appears: every
  // producer made so far is fenced.
  void Fence() {
    std::lock_guard<std::mutex> lock(mu_);
    ++producer_epoch_;
  }

  std::shared_ptr<engine::ClientSupplier> Supplier();

 private:
  class Consumer;
  class Producer;
  class Supply;

  mutable std::mutex mu_;
  std::map<TopicPartition, std::vector<kafka::ConsumedRecord>> logs_;
  std::map<TopicPartition, int64_t> group_;
  std::vector<TopicPartition> assignment_;
  std::function<void()> after_assignment_;
  std::function<void()> between_;
  int generation_ = 0;
  std::deque<Status> commit_results_;
  std::chrono::microseconds restore_delay_{0};
  int producers_ = 0;
  int commits_ = 0;
  int aborts_ = 0;
  int leaves_ = 0;
  std::vector<kafka::TopicPartitionOffset> seeks_;
  std::map<TopicPartition, int64_t> move_back_;  // MovePositionBack
  // The transactional id of the newest producer: an older one is fenced.
  int producer_epoch_ = 0;
};

class FakeKafka::Consumer final : public engine::ThreadConsumer {
 public:
  Consumer(std::shared_ptr<FakeKafka> k, bool group) : k_(std::move(k)), group_(group) {}

  Status Subscribe(const std::vector<std::string>&, kafka::RebalanceListener* l) override {
    listener_ = l;
    return Status::OK();
  }
  Status Assign(const std::vector<kafka::TopicPartitionOffset>& parts) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    position_.clear();
    for (const auto& p : parts) {
      position_[{p.topic, p.partition}] = p.offset < 0 ? 0 : p.offset;
    }
    return Status::OK();
  }
  Result<std::optional<kafka::ConsumedRecord>> Poll(std::chrono::milliseconds) override {
    std::vector<kafka::TopicPartitionOffset> assigned;
    std::function<void()> then;
    std::function<void()> between;
    std::vector<kafka::TopicPartitionOffset> revoked;
    {
      std::lock_guard<std::mutex> lock(k_->mu_);
      if (group_ && listener_ != nullptr && joined_ && generation_ != k_->generation_) {
        for (const auto& [tp, pos] : position_) revoked.push_back({tp.first, tp.second, pos});
        position_.clear();
        paused_.clear();
        joined_ = false;
        between = std::move(k_->between_);
        k_->between_ = nullptr;
      }
      generation_ = k_->generation_;
    }
    if (!revoked.empty()) listener_->OnPartitionsRevoked(revoked);
    if (between) between();
    {
      std::lock_guard<std::mutex> lock(k_->mu_);
      if (group_ && listener_ != nullptr && !joined_) {
        joined_ = true;
        for (const auto& tp : k_->assignment_) {
          auto c = k_->group_.find(tp);
          position_[tp] = c == k_->group_.end() ? 0 : c->second;
          assigned.push_back({tp.first, tp.second, kafka::kOffsetInvalid});
        }
        then = std::move(k_->after_assignment_);
        k_->after_assignment_ = nullptr;
      }
    }
    if (!assigned.empty()) {
      listener_->OnPartitionsAssigned(assigned);
      if (then) then();
    }
    std::chrono::microseconds delay{0};
    std::optional<kafka::ConsumedRecord> record;
    {
      std::lock_guard<std::mutex> lock(k_->mu_);
      if (group_) {
        for (auto it = k_->move_back_.begin(); it != k_->move_back_.end();) {
          auto p = position_.find(it->first);
          if (p == position_.end()) {
            ++it;
            continue;
          }
          p->second = it->second;
          it = k_->move_back_.erase(it);
        }
      }
      for (auto& [tp, pos] : position_) {
        if (paused_.count(tp)) continue;
        auto& log = k_->logs_[tp];
        // Out of range (RecreateTopic): auto.offset.reset=earliest.
        if (group_ && pos > static_cast<int64_t>(log.size())) pos = 0;
        if (pos < static_cast<int64_t>(log.size())) {
          record = log[static_cast<size_t>(pos++)];
          if (!group_) delay = k_->restore_delay_;
          break;
        }
      }
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return record;
  }
  Status CommitSync(const std::vector<kafka::TopicPartitionOffset>& offsets) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    for (const auto& o : offsets) k_->group_[{o.topic, o.partition}] = o.offset;
    return Status::OK();
  }
  Result<std::vector<kafka::TopicPartitionOffset>> Committed(
      const std::vector<kafka::TopicPartitionOffset>& parts, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    std::vector<kafka::TopicPartitionOffset> out;
    for (const auto& p : parts) {
      auto c = k_->group_.find({p.topic, p.partition});
      out.push_back({p.topic, p.partition, c == k_->group_.end() ? kafka::kOffsetInvalid
                                                                  : c->second});
    }
    return out;
  }
  Result<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic, int32_t partition,
                                                      std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    return std::make_pair(int64_t{0}, static_cast<int64_t>(k_->logs_[{topic, partition}].size()));
  }
  Result<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                       int32_t partition) const override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    return std::make_pair(int64_t{0}, static_cast<int64_t>(k_->logs_[{topic, partition}].size()));
  }
  Result<int64_t> Position(const std::string& topic, int32_t partition) const override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    auto it = position_.find({topic, partition});
    if (it == position_.end()) return kafka::kOffsetInvalid;
    return it->second;
  }
  Status Seek(const kafka::TopicPartitionOffset& p, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    position_[{p.topic, p.partition}] = p.offset < 0 ? 0 : p.offset;
    if (group_) k_->seeks_.push_back(p);
    return Status::OK();
  }
  Status Pause(const std::vector<kafka::TopicPartitionOffset>& parts) override {
    for (const auto& p : parts) paused_.insert({p.topic, p.partition});
    return Status::OK();
  }
  Status Resume(const std::vector<kafka::TopicPartitionOffset>& parts) override {
    for (const auto& p : parts) paused_.erase({p.topic, p.partition});
    return Status::OK();
  }
  Status LeaveGroup(std::chrono::milliseconds) override {
    {
      std::lock_guard<std::mutex> lock(k_->mu_);
      if (group_) ++k_->leaves_;
    }
    return Close();
  }
  Status Close() override {
    std::vector<kafka::TopicPartitionOffset> revoked;
    for (const auto& [tp, pos] : position_) revoked.push_back({tp.first, tp.second, pos});
    if (group_ && listener_ != nullptr && !revoked.empty()) listener_->OnPartitionsRevoked(revoked);
    position_.clear();
    return Status::OK();
  }

 private:
  std::shared_ptr<FakeKafka> k_;
  const bool group_;
  kafka::RebalanceListener* listener_ = nullptr;
  bool joined_ = false;
  int generation_ = 0;  // of the group's rebalances this consumer has seen
  std::map<TopicPartition, int64_t> position_;
  std::set<TopicPartition> paused_;
};

class FakeKafka::Producer final : public engine::ThreadProducer {
 public:
  Producer(std::shared_ptr<FakeKafka> k, int epoch) : k_(std::move(k)), epoch_(epoch) {}

  Status InitTransactions(std::chrono::milliseconds) override { return Status::OK(); }
  Status BeginTransaction() override { return Fenced(); }
  Status Send(const kafka::OutgoingRecord& r) override {
    KCQRS_RETURN_IF_ERROR(Fenced());
    std::lock_guard<std::mutex> lock(k_->mu_);
    const int32_t p = r.partition < 0 ? 0 : r.partition;
    kafka::ConsumedRecord c;
    c.topic = r.topic;
    c.partition = p;
    c.key = r.key;
    c.value = r.value;
    for (const auto& h : r.headers) c.headers.push_back(h);
    // The offset it will have if this transaction commits.
    int64_t offset = static_cast<int64_t>(k_->logs_[{r.topic, p}].size());
    for (const auto& q : pending_) {
      if (q.topic == r.topic && q.partition == p) ++offset;
    }
    c.offset = offset;
    delivered_[{r.topic, p}] = offset;
    pending_.push_back(std::move(c));
    return Status::OK();
  }
  Status Flush(std::chrono::milliseconds) override { return Commit(); }
  Status SendOffsetsToTransaction(const std::vector<kafka::TopicPartitionOffset>& offsets,
                                  engine::ThreadConsumer&, std::chrono::milliseconds) override {
    KCQRS_RETURN_IF_ERROR(Fenced());
    for (const auto& o : offsets) offsets_[{o.topic, o.partition}] = o.offset;
    return Status::OK();
  }
  Status CommitTransaction(std::chrono::milliseconds) override {
    KCQRS_RETURN_IF_ERROR(Fenced());
    {
      std::lock_guard<std::mutex> lock(k_->mu_);
      if (!k_->commit_results_.empty()) {
        Status s = k_->commit_results_.front();
        k_->commit_results_.pop_front();
        if (!s.ok()) return s;  // the transaction stays open, as librdkafka's
      }
    }
    return Commit();
  }
  Status AbortTransaction(std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    ++k_->aborts_;
    pending_.clear();
    offsets_.clear();
    delivered_.clear();
    return Status::OK();
  }
  std::map<std::pair<std::string, int32_t>, int64_t> TakeDeliveredOffsets() override {
    return std::exchange(delivered_, {});
  }

 private:
  Status Fenced() const {
    std::lock_guard<std::mutex> lock(k_->mu_);
    if (epoch_ != k_->producer_epoch_) {
      return Status::Fenced("a newer producer with the same transactional id exists");
    }
    return Status::OK();
  }
  Status Commit() {
    std::lock_guard<std::mutex> lock(k_->mu_);
    for (auto& c : pending_) k_->logs_[{c.topic, c.partition}].push_back(std::move(c));
    for (const auto& [tp, o] : offsets_) k_->group_[tp] = o;
    pending_.clear();
    offsets_.clear();
    ++k_->commits_;
    return Status::OK();
  }

  std::shared_ptr<FakeKafka> k_;
  const int epoch_;
  std::vector<kafka::ConsumedRecord> pending_;
  std::map<TopicPartition, int64_t> offsets_;
  std::map<std::pair<std::string, int32_t>, int64_t> delivered_;
};

class FakeKafka::Supply final : public engine::ClientSupplier {
 public:
  explicit Supply(std::shared_ptr<FakeKafka> k) : k_(std::move(k)) {}
  Result<std::unique_ptr<engine::ThreadProducer>> GetProducer(const kafka::Properties&) override {
    std::lock_guard<std::mutex> lock(k_->mu_);
    ++k_->producers_;
    return std::unique_ptr<engine::ThreadProducer>(new Producer(k_, ++k_->producer_epoch_));
  }
  Result<std::unique_ptr<engine::ThreadConsumer>> GetConsumer(
      const kafka::Properties& properties) override {
    // The restore consumer is the one that never joins the group.
    const bool group = properties.at("group.id").find("-restore") == std::string::npos;
    return std::unique_ptr<engine::ThreadConsumer>(new Consumer(k_, group));
  }

 private:
  std::shared_ptr<FakeKafka> k_;
};

inline std::shared_ptr<engine::ClientSupplier> FakeKafka::Supplier() {
  return std::make_shared<Supply>(shared_from_this());
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_FAKE_KAFKA_H_
