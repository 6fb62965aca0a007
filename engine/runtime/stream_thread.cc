#include "engine/runtime/stream_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};
constexpr std::chrono::milliseconds kPollTimeout{50};
constexpr std::chrono::milliseconds kRetryBackoff{1000};
// Commit early when a transaction buffers this much state.
constexpr size_t kMaxBufferedBytes = 64u << 20;
constexpr size_t kRestoreBatch = 1000;

Record ToRecord(kafka::ConsumedRecord&& c) {
  Record r;
  r.topic = std::move(c.topic);
  r.partition = c.partition;
  r.offset = c.offset;
  r.key = std::move(c.key);
  r.value = std::move(c.value);
  r.headers.reserve(c.headers.size());
  for (kafka::Header& h : c.headers) r.headers.push_back({std::move(h.key), std::move(h.value)});
  r.timestamp_ms = c.timestamp_ms;
  return r;
}

bool Retriable(const Status& s) { return s.IsUnavailable() || s.IsTimedOut(); }

}  // namespace

StreamThread::StreamThread(StreamThreadConfig config) : config_(std::move(config)) {
  if (config_.metrics != nullptr) {
    const std::string t = std::to_string(config_.index);
    m_.commit_latency = config_.metrics->CommitLatency(t);
    m_.committed = config_.metrics->TransactionsCommitted(t);
    m_.aborted = config_.metrics->TransactionAborts(t);
    m_.rebalances = config_.metrics->Rebalances(t);
    m_.running = config_.metrics->TasksRunning(t);
    m_.restoring = config_.metrics->TasksRestoring(t);
  }
}

StreamThread::~StreamThread() { Stop(); }

void StreamThread::Start() {
  state_ = State::kStarting;
  thread_ = std::thread([this] { Main(); });
}

void StreamThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<TaskStatus> StreamThread::Tasks() const {
  std::lock_guard<std::mutex> lock(task_status_mu_);
  std::vector<TaskStatus> out;
  for (const auto& [id, status] : task_status_) out.push_back(status);
  return out;
}

void StreamThread::SetTaskStatus(const TaskId& id, std::string state, uint64_t restored,
                                 int64_t remaining) {
  std::lock_guard<std::mutex> lock(task_status_mu_);
  task_status_[id] = TaskStatus{id.ToString(), std::move(state), restored, remaining};
}

void StreamThread::ClearTaskStatus(const TaskId& id) {
  std::lock_guard<std::mutex> lock(task_status_mu_);
  task_status_.erase(id);
}

Status StreamThread::error() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return error_;
}

size_t StreamThread::MaxRecordBytes() const {
  return MaxRecordBytesFor(config_.options.kafka.properties);
}

kafka::Properties StreamThread::BaseProperties() const {
  kafka::Properties p = config_.options.kafka.properties;
  p["bootstrap.servers"] = config_.bootstrap_servers;
  p["client.id"] = config_.options.application.id + "-stream-" + std::to_string(config_.index);
  return p;
}

void StreamThread::Main() {
  const std::string name = "stream-thread-" + std::to_string(config_.index);
  auto lua = LuaFunctions::Create(*config_.topology, lua::Limits{});
  if (!lua.ok()) {
    std::lock_guard<std::mutex> lock(error_mu_);
    error_ = lua.status();
    state_ = State::kFailed;
    return;
  }
  lua_ = std::move(lua).value();
  while (!stop_) {
    Status s = RunClients();
    if (!s.ok() && in_transaction_ && producer_ && exactly_once()) {
      // Nothing of a failed transaction may commit, not even from the
      // revocation that closing the consumer triggers.
      (void)producer_->AbortTransaction(kKafkaTimeout);
    }
    if (!s.ok()) {
      in_transaction_ = false;
      consumed_.clear();
    }
    CloseTasks(/*clean=*/s.ok());
    if (consumer_) {
      Status c = consumer_->Close();
      if (!c.ok()) spdlog::warn("{}: closing the consumer: {}", name, c.ToString());
    }
    consumer_.reset();
    restore_consumer_.reset();
    producer_.reset();
    in_transaction_ = false;
    consumed_.clear();
    committed_.clear();
    if (s.ok()) break;
    if (s.IsFenced() || Retriable(s) || s.IsAborted()) {
      state_ = State::kStarting;
      if (Retriable(s)) stats_.kafka_reachable = false;
      spdlog::warn("{}: {}; starting again with new Kafka clients", name, s.ToString());
      std::this_thread::sleep_for(kRetryBackoff);
      continue;
    }
    spdlog::error("{}: stopped: {}", name, s.ToString());
    std::lock_guard<std::mutex> lock(error_mu_);
    error_ = s;
    state_ = State::kFailed;
    return;
  }
  state_ = State::kStopped;
}

Status StreamThread::CreateClients() {
  kafka::Properties pp = BaseProperties();
  pp["enable.idempotence"] = "true";
  pp["linger.ms"] = "5";
  if (exactly_once()) {
    pp["transactional.id"] = config_.member_id;
    // A crashed instance's open transaction blocks read_committed readers
    // until it times out; keep that short.
    if (!pp.count("transaction.timeout.ms")) pp["transaction.timeout.ms"] = "10000";
  }
  auto producer = kafka::Producer::Create(pp);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(producer).value();
  if (exactly_once()) {
    // Fences a previous incarnation with the same transactional id and
    // aborts its open transaction, so restore is not held up by it.
    for (;;) {
      Status s = producer_->InitTransactions(kKafkaTimeout);
      if (s.ok()) break;
      if (!Retriable(s) || stop_) return s;
      spdlog::warn("stream-thread-{}: Kafka is not reachable yet ({}); retrying",
                   config_.index, s.message());
    }
  }

  kafka::Properties cp = BaseProperties();
  cp["group.id"] = config_.options.application.id;
  cp["enable.auto.commit"] = "false";
  cp["enable.auto.offset.store"] = "false";
  cp["auto.offset.reset"] = "earliest";
  cp["isolation.level"] = "read_committed";
  cp["partition.assignment.strategy"] = "range";
  if (!cp.count("group.instance.id")) cp["group.instance.id"] = config_.member_id;
  // How long a vanished instance keeps its partitions (librdkafka's
  // default is 45 s).
  if (!cp.count("session.timeout.ms")) cp["session.timeout.ms"] = "10000";
  // librdkafka stops fetching a partition once 100,000 messages wait
  // locally and then backs off; a stream thread drains that in well under
  // the back-off, so it sat idle and capped a stateless topology at about
  // 125,000 records/s (3x more with this; docs/benchmarks.md). Memory stays
  // bounded by queued.max.messages.kbytes, per partition: under a backlog
  // that is what a thread holds (docs/benchmarks.md has the cost).
  if (!cp.count("queued.min.messages")) cp["queued.min.messages"] = "1000000";
  auto consumer = kafka::Consumer::Create(cp);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(consumer).value();

  kafka::Properties rp = BaseProperties();
  rp["client.id"] += "-restore";
  rp["group.id"] = config_.options.application.id + "-restore";  // never joins: assign only
  rp["enable.auto.commit"] = "false";
  rp["auto.offset.reset"] = "earliest";
  rp["isolation.level"] = "read_committed";
  rp["enable.partition.eof"] = "true";
  // Restore reads to the end and stops: do not let the broker hold an
  // empty fetch for the default 500 ms at every task.
  rp["fetch.wait.max.ms"] = "10";
  rp["queued.min.messages"] = cp["queued.min.messages"];  // as above: restore is a drain too
  auto restore = kafka::Consumer::Create(rp);
  if (!restore.ok()) return restore.status();
  restore_consumer_ = std::move(restore).value();

  return consumer_->Subscribe(config_.topology->SourceTopics(), this);
}

Status StreamThread::RunClients() {
  KCQRS_RETURN_IF_ERROR(CreateClients());
  state_ = State::kRunning;
  last_commit_ = std::chrono::steady_clock::now();
  Status last_poll_error;
  while (!stop_) {
    auto polled = consumer_->Poll(kPollTimeout);
    if (!rebalance_error_.ok()) {
      Status s = rebalance_error_;
      rebalance_error_ = Status::OK();
      return s;
    }
    if (!polled.ok()) {
      if (polled.status().IsFenced()) return polled.status();
      if (polled.status().IsUnavailable() || polled.status().IsTimedOut()) {
        stats_.kafka_reachable = false;
      }
      if (!(polled.status() == last_poll_error)) {
        spdlog::warn("stream-thread-{}: {}", config_.index, polled.status().ToString());
        last_poll_error = polled.status();
      }
      continue;
    }
    if (polled->has_value()) {
      KafkaAnswered();
      last_poll_error = Status::OK();
    } else {
      ProbeKafka();
    }
    KCQRS_RETURN_IF_ERROR(RestorePending());
    if (polled->has_value()) {
      KCQRS_RETURN_IF_ERROR(Process(std::move(**polled)));
    }
    KCQRS_RETURN_IF_ERROR(MaybeCommit(/*force=*/false));
    UpdateGauges();
  }
  state_ = State::kStopping;
  // Graceful stop: finish the open transaction.
  return Commit();
}

void StreamThread::KafkaAnswered() {
  last_kafka_ok_ = std::chrono::steady_clock::now();
  stats_.kafka_reachable = true;
  stats_.kafka_ok_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(last_kafka_ok_.time_since_epoch())
          .count();
}

void StreamThread::ProbeKafka() {
  // librdkafka reports lost brokers only through its log, and an idle
  // consumer notices nothing: so when nothing has come from Kafka for a
  // second, ask the group coordinator (what commits need) for an offset.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_kafka_ok_ < std::chrono::seconds(1)) return;
  if (now - last_probe_ < std::chrono::seconds(1)) return;
  last_probe_ = now;
  std::vector<kafka::TopicPartitionOffset> probe;
  for (const auto& [tp, task] : task_of_partition_) {
    probe.push_back({tp.first, tp.second, kafka::kOffsetInvalid});
    break;
  }
  if (probe.empty()) {
    // A member the group gave nothing (more threads than tasks) has nothing
    // to wait for; one that has not been given its assignment yet is not
    // ready.
    if (assigned_) KafkaAnswered();
    return;
  }
  const bool ok = consumer_->Committed(probe, std::chrono::milliseconds(1000)).ok();
  if (ok) KafkaAnswered();
  if (ok != stats_.kafka_reachable.load()) {
    if (ok) {
      spdlog::info("stream-thread-{}: Kafka is reachable again", config_.index);
    } else {
      spdlog::warn("stream-thread-{}: Kafka is not reachable; not ready until it is",
                   config_.index);
    }
  }
  stats_.kafka_reachable = ok;
}

Status StreamThread::Process(kafka::ConsumedRecord record) {
  TopicPartition tp{record.topic, record.partition};
  auto it = task_of_partition_.find(tp);
  if (it == task_of_partition_.end()) return Status::OK();  // revoked meanwhile
  if (stop_ || pending_restore_.count(it->second->id())) {
    // Not processed (stopping before its task was restored): put the
    // consumer back on it, so that the commit's position (Commit() takes the
    // consumer's) does not skip it.
    return consumer_->Seek({record.topic, record.partition, record.offset}, kKafkaTimeout);
  }
  if (exactly_once() && !in_transaction_) {
    KCQRS_RETURN_IF_ERROR(producer_->BeginTransaction());
  }
  in_transaction_ = true;
  const int64_t next = record.offset + 1;
  Task* task = it->second;
  const uint64_t dead_before = task->stats().dead_letters;
  Status s = task->Process(ToRecord(std::move(record)));
  if (!producer_error_.ok()) {
    // The transaction cannot commit; abort it and go back to the last
    // committed offsets.
    return AbortTransaction("producing failed: " + producer_error_.ToString());
  }
  if (!s.ok()) return s;  // errors.on_error: fail
  consumed_[tp] = next;
  stats_.records_processed++;
  stats_.dead_letters += task->stats().dead_letters - dead_before;
  return Status::OK();
}

void StreamThread::DeadLettered(const Record& record, const std::string& reason) {
  dead_letters_[{record.topic, record.partition}][record.offset] = reason;
}

Status StreamThread::FaultPoint(FaultInjector::Point point) {
  return config_.faults ? config_.faults->Check(point) : Status::OK();
}

Status StreamThread::Send(kafka::OutgoingRecord record) {
  if (!producer_error_.ok()) return producer_error_;
  Status s = FaultPoint(FaultInjector::Point::kSend);
  if (s.ok()) s = producer_->Send(record);
  if (!s.ok()) {
    producer_error_ = s;
    return s;
  }
  if (config_.metrics != nullptr) {
    auto it = produced_.find(record.topic);
    if (it == produced_.end()) {
      it = produced_.emplace(record.topic, config_.metrics->RecordsProduced(record.topic)).first;
    }
    it->second.Increment();
  }
  return s;
}

void StreamThread::Snapshot(std::map<std::string, uint64_t>* nodes,
                            std::map<std::string, std::map<int32_t, int64_t>>* lag) const {
  std::lock_guard<std::mutex> lock(task_status_mu_);
  for (const auto& [name, n] : node_counts_) (*nodes)[name] += n;
  for (const auto& [topic, parts] : lag_) {
    for (const auto& [p, l] : parts) (*lag)[topic][p] = l;
  }
}

void StreamThread::UpdateGauges() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_gauges_ < std::chrono::seconds(1)) return;
  last_gauges_ = now;
  MaybeCleanUpStateDirectory(now);
  // Lag from the watermarks the consumer already knows (no request).
  std::map<std::string, std::map<int32_t, int64_t>> lag;
  for (const auto& [tp, task] : task_of_partition_) {
    auto wm = consumer_->CachedWatermarks(tp.first, tp.second);
    auto pos = consumer_->Position(tp.first, tp.second);
    if (wm.ok() && pos.ok() && *pos >= 0 && wm->second >= 0) {
      const int64_t l = std::max<int64_t>(0, wm->second - *pos);
      lag[tp.first][tp.second] = l;
      if (config_.metrics != nullptr) {
        config_.metrics->ConsumerLag(tp.first, tp.second).Set(static_cast<double>(l));
      }
    }
  }
  std::map<std::string, uint64_t> nodes = closed_node_counts_;
  for (const auto& [id, task] : tasks_) task->AddNodeCounts(&nodes);
  {
    std::lock_guard<std::mutex> lock(task_status_mu_);
    node_counts_ = std::move(nodes);
    lag_ = std::move(lag);
  }
  if (config_.metrics == nullptr) return;
  for (const auto& [id, task] : tasks_) {
    if (pending_restore_.count(id)) continue;
    for (const std::string& store : task->subtopology().stores) {
      auto reader = task->state().storage().Reader(store);
      if (reader) {
        config_.metrics->StoreKeys(store, id.partition)
            .Set(static_cast<double>(reader->ApproximateNumEntries()));
      }
    }
  }
  m_.running.Set(stats_.running_tasks.load());
  m_.restoring.Set(stats_.restoring_tasks.load());
}

void StreamThread::MaybeCleanUpStateDirectory(std::chrono::steady_clock::time_point now) {
  // One thread is enough to sweep the directory; once a minute (or sooner
  // for a shorter delay) is soon enough.
  if (config_.index != 0 || config_.state_directory == nullptr) return;
  const std::chrono::milliseconds delay(config_.options.application.state_cleanup_delay_ms);
  if (now - last_cleanup_ < std::min<std::chrono::milliseconds>(delay, std::chrono::minutes(1))) {
    return;
  }
  last_cleanup_ = now;
  (void)config_.state_directory->CleanUp(delay);
}

Status StreamThread::MaybeCommit(bool force) {
  if (!in_transaction_) return Status::OK();
  const auto now = std::chrono::steady_clock::now();
  bool due = force || now - last_commit_ >= std::chrono::milliseconds(
                                                config_.options.application.commit_interval_ms);
  if (!due) {
    size_t buffered = 0;
    for (auto& [id, task] : tasks_) buffered += task->state().buffered_bytes();
    due = buffered >= kMaxBufferedBytes;
  }
  return due ? Commit() : Status::OK();
}

Status StreamThread::Commit() {
  if (!in_transaction_) {
    last_commit_ = std::chrono::steady_clock::now();
    return Status::OK();
  }
  // A transactional input ends every transaction with a commit marker that
  // takes an offset but is never handed to us. Committing "last record + 1"
  // would leave a lag of one record per partition forever, and tools that
  // wait for a group to catch up (or alert on lag) would never see it done
  // (KAFKA-6607). Every record polled is processed before the next poll, so
  // a consumer position beyond `next` can only have skipped markers and
  // aborted records: commit the position.
  for (auto& [tp, next] : consumed_) {
    auto pos = consumer_->Position(tp.first, tp.second);
    if (pos.ok() && *pos > next) next = *pos;
  }
  std::vector<kafka::TopicPartitionOffset> offsets;
  for (const auto& [tp, next] : consumed_) offsets.push_back({tp.first, tp.second, next});

  const auto commit_start = std::chrono::steady_clock::now();
  Status s;
  if (exactly_once()) {
    s = FaultPoint(FaultInjector::Point::kSendOffsets);
    if (s.ok()) s = producer_->SendOffsetsToTransaction(offsets, *consumer_, kKafkaTimeout);
    // librdkafka says when the call may be retried (a coordinator moving
    // after a broker died): retrying keeps the transaction, where new
    // clients would cost a rejoin and seconds of stall.
    for (int attempt = 0; Retriable(s) && attempt < 10 && !stop_; ++attempt) {
      spdlog::warn("stream-thread-{}: sending offsets: {}; retrying", config_.index,
                   s.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(100) * (attempt + 1));
      s = producer_->SendOffsetsToTransaction(offsets, *consumer_, kKafkaTimeout);
    }
    if (s.ok()) s = FaultPoint(FaultInjector::Point::kCommit);
    if (s.ok()) {
      s = producer_->CommitTransaction(kKafkaTimeout);
      // A commit that timed out may be retried: it is idempotent.
      for (int attempt = 0; Retriable(s) && attempt < 10 && !s.IsFenced(); ++attempt) {
        spdlog::warn("stream-thread-{}: commit: {}; retrying", config_.index, s.message());
        s = producer_->CommitTransaction(kKafkaTimeout);
      }
    }
  } else {
    s = producer_->Flush(kKafkaTimeout);
    if (s.ok()) s = FaultPoint(FaultInjector::Point::kCommit);
    if (s.ok()) s = consumer_->CommitSync(offsets);
  }
  if (!s.ok()) {
    if (Retriable(s)) stats_.kafka_reachable = false;
    if (s.IsAborted() || (!exactly_once() && !s.IsFenced())) {
      return AbortTransaction("commit failed: " + s.message());
    }
    for (auto& [id, task] : tasks_) task->Abort();
    in_transaction_ = false;
    stats_.aborts++;
    return s;  // Fenced or fatal: new clients
  }

  m_.commit_latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count());
  m_.committed.Increment();
  // Kafka has committed: now, and only now, local state catches up.
  const auto delivered = producer_->TakeDeliveredOffsets();
  for (auto& [id, task] : tasks_) {
    state::Checkpoint cp;
    for (const state::TopicPartition& tp : task->ChangelogPartitions()) {
      auto d = delivered.find({tp.topic, tp.partition});
      if (d != delivered.end()) cp.changelog_offsets[tp] = d->second + 1;
    }
    for (const std::string& source : task->subtopology().sources) {
      auto c = consumed_.find({source, id.partition});
      if (c != consumed_.end()) {
        cp.metadata["position." + source + "." + std::to_string(id.partition)] =
            std::to_string(c->second);
      }
    }

    Status applied = FaultPoint(FaultInjector::Point::kApplyState);
    if (applied.ok()) applied = task->state().Commit(cp);
    if (!applied.ok()) {
      // Kafka holds the writes, and the local checkpoint still names where
      // this state ends: new clients and a new assignment restore the tail
      // from the changelog. Nothing of this transaction is open any more.
      in_transaction_ = false;
      consumed_.clear();
      dead_letters_.clear();
      return Status::Aborted("task " + task->name() + ": applying committed state: " +
                             applied.ToString() + "; restoring it from the changelog");
    }
    // Only now may queries see the new positions.
    for (const std::string& source : task->subtopology().sources) {
      auto c = consumed_.find({source, id.partition});
      if (c == consumed_.end()) continue;
      for (const std::string& store : task->subtopology().stores) {
        config_.registry->SetPosition(store, id.partition, source, c->second);
      }
    }
  }
  if (config_.positions != nullptr) {
    // For read-your-writes: what this commit consumed, and what it produced
    // on topics that some task reads.
    PositionLog::Entry entry;
    entry.consumed_next = consumed_;
    entry.dead_letters = std::move(dead_letters_);
    for (const auto& [tp, last] : delivered) {
      if (config_.topology->SubTopologyOf(tp.first) != nullptr) entry.produced_last[tp] = last;
    }
    config_.positions->Append(std::move(entry));
  }
  for (const auto& [tp, next] : consumed_) committed_[tp] = next;
  consumed_.clear();
  dead_letters_.clear();
  in_transaction_ = false;
  stats_.commits++;
  if (aborts_in_burst_ > 0) {
    spdlog::info("stream-thread-{}: committing again after {} aborted transaction(s)",
                 config_.index, aborts_in_burst_);
    aborts_in_burst_ = 0;
    stats_.consecutive_aborts = 0;
  }
  KafkaAnswered();
  last_commit_ = std::chrono::steady_clock::now();
  return Status::OK();
}

Status StreamThread::AbortTransaction(const std::string& why) {
  stats_.aborts++;
  m_.aborted.Increment();
  ++aborts_in_burst_;
  stats_.consecutive_aborts = aborts_in_burst_;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    last_abort_reason_ = why;
  }
  // Once per burst, not once per record: a thread that keeps aborting says
  // so once, then backs off, and /readyz says why.
  if (aborts_in_burst_ == 1) {
    spdlog::warn("stream-thread-{}: {}; aborting the transaction and rewinding", config_.index,
                 why);
  } else if ((aborts_in_burst_ & (aborts_in_burst_ - 1)) == 0) {
    spdlog::warn("stream-thread-{}: {} aborted transactions in a row; last: {}", config_.index,
                 aborts_in_burst_, why);
  }
  for (auto& [id, task] : tasks_) task->Abort();
  consumed_.clear();
  dead_letters_.clear();
  producer_error_ = Status::OK();
  if (exactly_once() && in_transaction_) {
    Status s = producer_->AbortTransaction(kKafkaTimeout);
    in_transaction_ = false;
    if (!s.ok()) return s;  // fenced or fatal: new clients
  }
  in_transaction_ = false;
  (void)producer_->TakeDeliveredOffsets();
  Status rewound = Rewind();
  if (!rewound.ok()) return rewound;
  // Back off before the same records come again: 100 ms, doubling up to
  // 10 s, so that a cause that persists costs little.
  const auto backoff = std::chrono::milliseconds(
      std::min<int64_t>(10'000, int64_t{100} << std::min(aborts_in_burst_ - 1, 7)));
  for (auto until = std::chrono::steady_clock::now() + backoff;
       !stop_ && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::OK();
}

std::string StreamThread::last_abort_reason() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_abort_reason_;
}

Status StreamThread::Rewind() {
  for (const auto& [tp, task] : task_of_partition_) {
    auto c = committed_.find(tp);
    int64_t offset = c == committed_.end() ? kafka::kOffsetBeginning : c->second;
    Status s = consumer_->Seek({tp.first, tp.second, offset}, kKafkaTimeout);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

void StreamThread::OnPartitionsAssigned(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = true;
  stats_.rebalances++;
  m_.rebalances.Increment();
  std::vector<kafka::TopicPartitionOffset> query;
  for (const kafka::TopicPartitionOffset& p : parts) {
    const SubTopology* st = config_.topology->SubTopologyOf(p.topic);
    if (st == nullptr) continue;
    TaskId id{st->id, p.partition};
    auto it = tasks_.find(id);
    if (it == tasks_.end()) {
      auto task = OpenTask(id, *st, /*wipe=*/false);
      if (!task.ok()) {
        rebalance_error_ = task.status();
        return;
      }
      it = tasks_.emplace(id, std::move(task).value()).first;
      pending_restore_.insert(id);
      stats_.restoring_tasks++;
      SetTaskStatus(id, "RESTORING", 0, 0);
    }
    task_of_partition_[{p.topic, p.partition}] = it->second.get();
    query.push_back({p.topic, p.partition, kafka::kOffsetInvalid});
  }
  auto committed = consumer_->Committed(query, kKafkaTimeout);
  if (!committed.ok()) {
    rebalance_error_ = committed.status().WithContext("reading committed offsets");
    return;
  }
  for (const kafka::TopicPartitionOffset& c : *committed) {
    if (c.offset >= 0) committed_[{c.topic, c.partition}] = c.offset;
  }
  KafkaAnswered();
  spdlog::info("stream-thread-{}: assigned {} partitions, {} tasks", config_.index, parts.size(),
               tasks_.size());
}

void StreamThread::OnPartitionsRevoked(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = false;
  // Commit what was processed so the next owner starts after it.
  Status s = Commit();
  if (!s.ok()) {
    spdlog::warn("stream-thread-{}: commit on revocation failed: {}", config_.index,
                 s.ToString());
    for (auto& [id, task] : tasks_) task->Abort();
    in_transaction_ = false;
    consumed_.clear();
    if (!s.IsAborted()) rebalance_error_ = s;
  }
  std::set<TaskId> revoked;
  for (const kafka::TopicPartitionOffset& p : parts) {
    auto it = task_of_partition_.find({p.topic, p.partition});
    if (it != task_of_partition_.end()) revoked.insert(it->second->id());
  }
  for (const TaskId& id : revoked) CloseTask(id);
}

void StreamThread::OnPartitionsLost(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = false;
  // Someone else owns these now: nothing of the open transaction may commit.
  if (in_transaction_ && exactly_once()) (void)producer_->AbortTransaction(kKafkaTimeout);
  for (auto& [id, task] : tasks_) task->Abort();
  in_transaction_ = false;
  consumed_.clear();
  std::set<TaskId> lost;
  for (const kafka::TopicPartitionOffset& p : parts) {
    auto it = task_of_partition_.find({p.topic, p.partition});
    if (it != task_of_partition_.end()) lost.insert(it->second->id());
  }
  for (const TaskId& id : lost) CloseTask(id);
}

void StreamThread::CloseTask(const TaskId& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Task* task = it->second.get();
  for (const std::string& store : task->subtopology().stores) {
    config_.registry->Remove(store, id.partition);
  }
  if (pending_restore_.erase(id)) {
    stats_.restoring_tasks--;
  } else {
    stats_.running_tasks--;
  }
  ClearTaskStatus(id);
  task->AddNodeCounts(&closed_node_counts_);
  if (config_.metrics != nullptr) {
    // Gauges of work that moved away must not linger in /metrics.
    config_.metrics->RemoveTask(task->name());
    for (const std::string& store : task->subtopology().stores) {
      config_.metrics->RemoveStorePartition(store, id.partition);
    }
    for (const std::string& source : task->subtopology().sources) {
      config_.metrics->RemovePartition(source, id.partition);
    }
  }
  task->Close();
  task->Abort();
  Status s = task->state().storage().Close();
  if (!s.ok()) spdlog::warn("task {}: closing its stores: {}", task->name(), s.ToString());
  if (config_.state_directory != nullptr) config_.state_directory->Release(task->name());
  for (auto p = task_of_partition_.begin(); p != task_of_partition_.end();) {
    if (p->second == task) {
      committed_.erase(p->first);
      p = task_of_partition_.erase(p);
    } else {
      ++p;
    }
  }
  tasks_.erase(it);
}

void StreamThread::CloseTasks(bool clean) {
  if (!clean) {
    for (auto& [id, task] : tasks_) task->Abort();
  }
  std::vector<TaskId> ids;
  for (const auto& [id, task] : tasks_) ids.push_back(id);
  for (const TaskId& id : ids) CloseTask(id);
}

Result<std::unique_ptr<Task>> StreamThread::OpenTask(const TaskId& id, const SubTopology& st,
                                                     bool wipe) {
  std::unique_ptr<state::TaskStorage> storage;
  const std::string dir =
      config_.state_directory != nullptr
          ? config_.state_directory->Claim(id.ToString())
          : config_.options.application.state_dir + "/" + id.ToString();
  bool memory = std::all_of(st.stores.begin(), st.stores.end(), [&](const std::string& s) {
    return config_.topology->Store(s).kind == StoreSpec::Kind::kMemory;
  });
  if (memory) {
    storage = state::TaskStorage::OpenMemory(st.stores);
  } else {
    if (wipe) (void)state::TaskStorage::Destroy(dir);
    auto opened = state::TaskStorage::OpenRocksDb(dir, st.stores, config_.rocksdb);
    if (!opened.ok() && opened.status().code() == Status::Code::kCorruption) {
      spdlog::warn("task {}: local state is damaged ({}); wiping it and restoring from "
                   "the changelog", id.ToString(), opened.status().message());
      (void)state::TaskStorage::Destroy(dir);
      opened = state::TaskStorage::OpenRocksDb(dir, st.stores, config_.rocksdb);
    }
    if (!opened.ok()) return opened.status().WithContext("task " + id.ToString());
    storage = std::move(opened).value();
  }
  auto task = Task::Create(id, st, config_.topology, std::move(storage), this, lua_.get(),
                           config_.metrics);
  if (!task.ok()) return task.status();
  (*task)->set_max_record_bytes(MaxRecordBytes(), &config_.topic_max_record_bytes);
  return task;
}

Status StreamThread::WipeTask(const TaskId& id) {
  auto it = tasks_.find(id);
  Task* old = it->second.get();
  const SubTopology& st = old->subtopology();
  old->Close();
  old->Abort();
  (void)old->state().storage().Close();
  auto task = OpenTask(id, st, /*wipe=*/true);
  if (!task.ok()) return task.status();
  for (auto& [tp, t] : task_of_partition_) {
    if (t == old) t = task->get();
  }
  it->second = std::move(task).value();
  return Status::OK();
}

Status StreamThread::RestorePending() {
  while (!pending_restore_.empty() && !stop_) {
    TaskId id = *pending_restore_.begin();
    Task* task = tasks_.at(id).get();
    Status restored = RestoreTask(task);
    if (restored.code() == Status::Code::kFailedPrecondition) {
      // The local state does not belong to the changelog as it is now
      // (recreated, truncated, or deleted below the checkpoint): reusing it
      // would serve and decide against stale state. Kafka Streams does the
      // same (TaskCorruptedException): wipe it and restore from scratch.
      spdlog::warn("task {}: {}; wiping the local state and restoring it from the changelog",
                   task->name(), restored.message());
      KCQRS_RETURN_IF_ERROR(WipeTask(id));
      task = tasks_.at(id).get();
      restored = RestoreTask(task);
    }
    KCQRS_RETURN_IF_ERROR(restored);
    KCQRS_RETURN_IF_ERROR(task->Init());
    KCQRS_RETURN_IF_ERROR(RestorePositions(task));
    for (const std::string& store : task->subtopology().stores) {
      config_.registry->Add(store, id.partition, task->state().storage().Reader(store));
    }
    pending_restore_.erase(id);
    stats_.restoring_tasks--;
    stats_.running_tasks++;
    SetTaskStatus(id, "RUNNING", 0, 0);
  }
  return Status::OK();
}

Status StreamThread::RestorePositions(Task* task) {
  // After a restart (or a move) the position log knows nothing of this
  // task: without an entry, the first new commit past a token's record
  // would answer for it, although that record was processed earlier (by the
  // previous incarnation or another instance), whose outputs the new commit
  // does not name. The restored state reaches the group's committed offsets,
  // and whatever the records before them produced lies below the current end
  // of the topics the task writes: an entry saying so is a safe upper bound.
  PositionLog::Entry entry;
  for (const std::string& source : task->subtopology().sources) {
    auto c = committed_.find({source, task->id().partition});
    if (c == committed_.end()) continue;
    entry.consumed_next[c->first] = c->second;
    for (const std::string& store : task->subtopology().stores) {
      config_.registry->SetPosition(store, c->first.second, source, c->second);
    }
  }
  if (config_.positions == nullptr || entry.consumed_next.empty()) return Status::OK();
  std::set<std::string> outputs;
  for (const Node& node : task->subtopology().nodes) {
    for (const std::string& sink : node.sinks) {
      if (config_.topology->SubTopologyOf(sink) != nullptr) outputs.insert(sink);
    }
  }
  for (const std::string& topic : outputs) {
    for (int32_t p = 0; p < config_.topology->partitions(topic); ++p) {
      auto wm = restore_consumer_->QueryWatermarks(topic, p, kKafkaTimeout);
      if (!wm.ok()) return wm.status().WithContext("the end of " + topic);
      // Under exactly-once every transaction that wrote here ends with its
      // commit marker, so the records committed before now lie below the
      // last offset (the marker), which no consumer position ever passes
      // for certain; without transactions the last offset is a record.
      const int64_t last = wm->second - (exactly_once() ? 2 : 1);
      if (last >= 0) entry.produced_last[{topic, p}] = last;
    }
  }
  config_.positions->Append(std::move(entry));
  return Status::OK();
}

Status StreamThread::RestoreTask(Task* task) {
  auto checkpoint = task->state().storage().ReadCheckpoint();
  if (!checkpoint.ok()) return checkpoint.status().WithContext("task " + task->name());
  struct Target {
    state::TopicPartition tp;
    std::string store;
    int64_t end = 0;
    bool done = false;
  };
  std::vector<Target> targets;
  std::vector<kafka::TopicPartitionOffset> assign;
  for (const state::TopicPartition& tp : task->ChangelogPartitions()) {
    auto wm = restore_consumer_->QueryWatermarks(tp.topic, tp.partition, kKafkaTimeout);
    if (!wm.ok()) return wm.status().WithContext("changelog " + tp.topic);
    auto c = checkpoint->changelog_offsets.find(tp);
    int64_t start = c == checkpoint->changelog_offsets.end() ? wm->first : c->second;
    if (c != checkpoint->changelog_offsets.end() && (start > wm->second || start < wm->first)) {
      return Status::FailedPrecondition(
          "the checkpoint of changelog " + tp.topic + "-" + std::to_string(tp.partition) +
          " is at offset " + std::to_string(start) + " but the changelog holds offsets " +
          std::to_string(wm->first) + " to " + std::to_string(wm->second));
    }
    if (start >= wm->second) continue;
    targets.push_back(Target{tp, task->StoreOfChangelog(tp.topic), wm->second, false});
    assign.push_back({tp.topic, tp.partition, start});
  }
  if (targets.empty()) return Status::OK();
  int64_t total = 0;
  for (size_t i = 0; i < targets.size(); ++i) total += targets[i].end - assign[i].offset;
  SetTaskStatus(task->id(), "RESTORING", 0, total);
  KCQRS_RETURN_IF_ERROR(restore_consumer_->Assign(assign));
  uint64_t restored = 0;
  std::map<std::string, std::vector<std::pair<std::string, std::optional<std::string>>>> batch;
  std::map<std::string, int64_t> batch_next;  // changelog topic -> next offset
  auto flush = [&](Target& t, int64_t next) -> Status {
    auto& rows = batch[t.tp.topic];
    Status s = task->state().RestoreBatch(t.store, rows, t.tp, next);
    rows.clear();
    return s;
  };
  spdlog::info("task {}: restoring {} changelog partition(s) from the checkpoint", task->name(),
               targets.size());
  for (;;) {
    bool all_done = true;
    for (Target& t : targets) {
      if (t.done) continue;
      auto pos = restore_consumer_->Position(t.tp.topic, t.tp.partition);
      if (pos.ok() && *pos >= t.end) {
        KCQRS_RETURN_IF_ERROR(flush(t, *pos));
        t.done = true;
      } else {
        all_done = false;
      }
    }
    if (all_done) break;
    if (stop_) return Status::Aborted("stopping during restore");
    auto polled = restore_consumer_->Poll(kPollTimeout);
    if (!polled.ok()) {
      if (polled.status().IsFenced()) return polled.status();
      continue;
    }
    if (!polled->has_value()) continue;
    kafka::ConsumedRecord& r = **polled;
    for (Target& t : targets) {
      if (t.tp.topic != r.topic || t.done) continue;
      if (!r.key) break;
      auto& rows = batch[r.topic];
      rows.emplace_back(std::move(*r.key), std::move(r.value));
      ++restored;
      if (config_.metrics != nullptr) {
        config_.metrics->RestoredRecords(t.store).Increment();
        config_.metrics->RestoreRemaining(t.store, t.tp.partition)
            .Set(static_cast<double>(std::max<int64_t>(0, t.end - r.offset - 1)));
      }
      if (rows.size() >= kRestoreBatch) {
        KCQRS_RETURN_IF_ERROR(flush(t, r.offset + 1));
        SetTaskStatus(task->id(), "RESTORING", restored,
                      std::max<int64_t>(0, total - static_cast<int64_t>(restored)));
      }
      break;
    }
  }
  KCQRS_RETURN_IF_ERROR(restore_consumer_->Assign({}));
  stats_.restored_records += restored;
  spdlog::info("task {}: restored {} records", task->name(), restored);
  return Status::OK();
}

}  // namespace kcqrs::engine
