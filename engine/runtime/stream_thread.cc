#include "engine/runtime/stream_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/processors/processors.h"
#include "engine/runtime/client_configs.h"

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};
constexpr std::chrono::milliseconds kPollTimeout{50};
// Leaving is local work (revoke, unassign) and one request; a stop does not
// wait longer than this for it.
constexpr std::chrono::milliseconds kLeaveTimeout{5000};
// Restore beside processing: with records flowing, a restore step of
// kBusyRestoreBudget at most every kBusyRestoreInterval (a third of the
// thread); with none, steps of kIdleRestoreBudget back to back.
constexpr std::chrono::milliseconds kBusyRestoreBudget{10};
constexpr std::chrono::milliseconds kBusyRestoreInterval{30};
constexpr std::chrono::milliseconds kIdleRestoreBudget{50};
constexpr std::chrono::milliseconds kRetryBackoff{1000};
// Commit early when a transaction buffers this much state.
constexpr size_t kMaxBufferedBytes = 64u << 20;
// The sum of every task's buffer is taken every this many turns of the loop
// (records, while they flow), not every turn: the bound is a soft one, and a
// record adds at most a message's size (1 MB by default), so it is
// overshot by a few MB at most.
constexpr uint32_t kRecordsPerSizeCheck = 16;

bool Retriable(const Status& s) { return s.IsUnavailable() || s.IsTimedOut(); }

void LogOverridden(int thread, const char* client, const ClientConfig& c) {
  for (const std::string& o : c.overridden) {
    spdlog::warn("stream-thread-{}: {}: kafka.properties {} is overridden", thread, client, o);
  }
}

}  // namespace

StreamThread::StreamThread(StreamThreadConfig config) : config_(std::move(config)) {
  if (!config_.clients) config_.clients = KafkaClientSupplier();
  TaskManagerConfig tm;
  tm.options = config_.options;
  tm.topology = config_.topology;
  tm.rocksdb = config_.rocksdb;
  tm.registry = config_.registry;
  tm.standby_registry = config_.standby_registry;
  tm.positions = config_.positions;
  tm.metrics = config_.metrics;
  tm.faults = config_.faults.get();
  tm.state_directory = config_.state_directory;
  tm.topic_max_record_bytes = config_.topic_max_record_bytes;
  tasks_ = std::make_unique<TaskManager>(std::move(tm));
  if (config_.metrics != nullptr) {
    const std::string t = std::to_string(config_.index);
    m_.commit_latency = config_.metrics->CommitLatency(t);
    m_.committed = config_.metrics->TransactionsCommitted(t);
    m_.aborted = config_.metrics->TransactionAborts(t);
    m_.rebalances = config_.metrics->Rebalances(t);
    m_.redelivered = config_.metrics->RecordsRedelivered(t);
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

std::vector<TaskStatus> StreamThread::Tasks() const { return tasks_->Statuses(); }

void StreamThread::Snapshot(std::map<std::string, uint64_t>* nodes,
                            std::map<std::string, std::map<int32_t, int64_t>>* lag) const {
  tasks_->Snapshot(nodes, lag);
}

Status StreamThread::error() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return error_;
}

std::string StreamThread::last_abort_reason() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_abort_reason_;
}

void StreamThread::SyncTaskCounts() {
  stats_.running_tasks = tasks_->running();
  stats_.restoring_tasks = tasks_->restoring();
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
  tasks_->set_lua(lua_.get());
  while (!stop_) {
    Status s = RunClients();
    DropClients(/*clean=*/s.ok());
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

void StreamThread::DropClients(bool clean) {
  if (!clean && producer_ && producer_->in_transaction()) {
    // Nothing of a failed transaction may commit, not even from the
    // revocation that closing the consumer triggers.
    (void)producer_->Abort();
  }
  if (producer_) producer_->Forget();
  if (clean && consumer_) {
    // A clean stop is a member going away (scale-down, redeploy): leave the
    // group now, or the static member keeps its partitions, unprocessed,
    // until session.timeout.ms. Its tasks close in the revocation, as in a
    // rebalance. A thread that stops on an error does not leave: it comes
    // back at once as the same static member and takes them back.
    Status left = consumer_->LeaveGroup(kLeaveTimeout);
    if (!left.ok()) {
      spdlog::warn("stream-thread-{}: {}; the group hands this thread's partitions over when "
                   "its session times out",
                   config_.index, left.ToString());
    }
  }
  tasks_->CloseAll(clean);
  SyncTaskCounts();
  if (consumer_) {
    Status c = consumer_->Close();
    if (!c.ok()) spdlog::warn("stream-thread-{}: closing the consumer: {}", config_.index,
                              c.ToString());
  }
  tasks_->SetClients(nullptr, nullptr, nullptr);
  consumer_.reset();
  reader_.reset();
  producer_.reset();
}

Status StreamThread::CreateClients() {
  const StreamThreadIdentity who{config_.bootstrap_servers, config_.index, config_.member_id};
  const ClientConfig pc = ProducerConfig(config_.options, who);
  const ClientConfig cc = MainConsumerConfig(config_.options, who);
  const ClientConfig rc = RestoreConsumerConfig(config_.options, who);
  LogOverridden(config_.index, "producer", pc);
  LogOverridden(config_.index, "consumer", cc);
  LogOverridden(config_.index, "restore consumer", rc);

  auto producer = config_.clients->GetProducer(pc.properties);
  if (!producer.ok()) return producer.status();
  if (exactly_once()) {
    // Fences a previous incarnation with the same transactional id and
    // aborts its open transaction, so restore is not held up by it.
    for (;;) {
      Status s = (*producer)->InitTransactions(kKafkaTimeout);
      if (s.ok()) break;
      if (!Retriable(s) || stop_) return s;
      spdlog::warn("stream-thread-{}: Kafka is not reachable yet ({}); retrying",
                   config_.index, s.message());
    }
  }
  producer_ = std::make_unique<StreamsProducer>(std::move(producer).value(), exactly_once(),
                                                config_.metrics, config_.faults.get(), &stop_,
                                                config_.index);
  auto consumer = config_.clients->GetConsumer(cc.properties);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(consumer).value();
  consumer_->SkipHeaders(TopicsReadWithoutHeaders(*config_.topology));
  auto restore = config_.clients->GetConsumer(rc.properties);
  if (!restore.ok()) return restore.status();
  TaskManager* tasks = tasks_.get();
  reader_ = std::make_unique<ChangelogReader>(
      std::move(restore).value(), config_.metrics,
      [tasks](const TaskId& id, uint64_t restored, int64_t remaining) {
        tasks->RestoreProgress(id, restored, remaining);
      });
  tasks_->SetClients(consumer_.get(), producer_.get(), reader_.get());
  return consumer_->Subscribe(config_.topology->SourceTopics(), this);
}

Status StreamThread::RunClients() {
  KCQRS_RETURN_IF_ERROR(CreateClients());
  state_ = State::kRunning;
  last_commit_ = std::chrono::steady_clock::now();
  Status last_poll_error;
  while (!stop_) {
    // While tasks restore, the poll only looks: the restore step waits.
    auto polled = consumer_->PollInto(
        tasks_->restoring() > 0 ? std::chrono::milliseconds(0) : kPollTimeout, &polled_);
    if (!rebalance_error_.ok()) {
      Status s = rebalance_error_;
      rebalance_error_ = Status::OK();
      return s;
    }
    if (!polled.ok()) {
      if (polled.status().IsFenced()) return polled.status();
      if (Retriable(polled.status())) stats_.kafka_reachable = false;
      if (!(polled.status() == last_poll_error)) {
        spdlog::warn("stream-thread-{}: {}", config_.index, polled.status().ToString());
        last_poll_error = polled.status();
      }
      continue;
    }
    // One clock read serves the whole iteration.
    const auto now = std::chrono::steady_clock::now();
    if (*polled) {
      KafkaAnswered(now);
      last_poll_error = Status::OK();
    } else {
      ProbeKafka();
    }
    KCQRS_RETURN_IF_ERROR(RestorePending(/*idle=*/!*polled));
    if (*polled) KCQRS_RETURN_IF_ERROR(Process(polled_));
    KCQRS_RETURN_IF_ERROR(FireTimers());
    KCQRS_RETURN_IF_ERROR(MaybeCommit(now));
    UpdateGauges(now);
  }
  state_ = State::kStopping;
  // Graceful stop: finish the open transaction.
  return Commit();
}

void StreamThread::KafkaAnswered(std::chrono::steady_clock::time_point now) {
  last_kafka_ok_ = now;
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
  const auto any = tasks_->AnyPartition();
  if (!any) {
    // A member the group gave nothing (more threads than tasks) has nothing
    // to wait for; one that has not been given its assignment yet is not
    // ready.
    if (assigned_) KafkaAnswered();
    return;
  }
  const bool ok =
      consumer_->Committed({{any->first, any->second, kafka::kOffsetInvalid}},
                           std::chrono::milliseconds(1000))
          .ok();
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

Status StreamThread::Process(const Record& record) {
  Task* task = tasks_->TaskFor(record.topic, record.partition);
  if (task == nullptr) return Status::OK();  // revoked meanwhile
  if (stop_ || tasks_->Restoring(task->id())) {
    // Not processed (stopping before its task was restored): put the
    // consumer back on it, so that the commit's position (OffsetsToCommit
    // takes the consumer's) does not skip it.
    return consumer_->Seek({record.topic, record.partition, record.offset}, kKafkaTimeout);
  }
  KCQRS_RETURN_IF_ERROR(producer_->MaybeBeginTransaction());
  const uint64_t dead_before = task->stats().dead_letters;
  bool processed = false;
  Status s = tasks_->Process(task, record, &processed);
  if (!producer_->error().ok()) {
    // The transaction cannot commit; abort it and go back to the last
    // committed offsets.
    return AbortTransaction("producing failed: " + producer_->error().ToString());
  }
  if (!s.ok()) return s;  // errors.on_error: fail
  if (!processed) {
    stats_.records_redelivered++;
    m_.redelivered.Increment();
    return Status::OK();
  }
  stats_.records_processed++;
  stats_.dead_letters += task->stats().dead_letters - dead_before;
  return Status::OK();
}

Status StreamThread::FireTimers() {
  if (stop_ || !tasks_->TimersDue()) return Status::OK();
  KCQRS_RETURN_IF_ERROR(producer_->MaybeBeginTransaction());
  Status s = tasks_->FireTimers();
  if (!producer_->error().ok()) {
    return AbortTransaction("producing failed: " + producer_->error().ToString());
  }
  return s;  // errors.on_error: fail
}

void StreamThread::UpdateGauges(std::chrono::steady_clock::time_point now) {
  if (now - last_gauges_ < std::chrono::seconds(1)) return;
  last_gauges_ = now;
  MaybeCleanUpStateDirectory(now);
  tasks_->UpdateGauges();
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

Status StreamThread::MaybeCommit(std::chrono::steady_clock::time_point now) {
  if (!producer_->in_transaction()) return Status::OK();
  bool due = now - last_commit_ >=
             std::chrono::milliseconds(config_.options.application.commit_interval_ms);
  if (!due && ++records_since_size_check_ >= kRecordsPerSizeCheck) {
    records_since_size_check_ = 0;
    due = tasks_->BufferedBytes() >= kMaxBufferedBytes;
  }
  return due ? Commit() : Status::OK();
}

Status StreamThread::Commit() {
  if (!producer_ || !producer_->in_transaction()) {
    last_commit_ = std::chrono::steady_clock::now();
    return Status::OK();
  }
  const auto commit_start = std::chrono::steady_clock::now();
  Status s = tasks_->FlushChangelogs();
  if (!s.ok()) return AbortTransaction("handing state to the changelogs failed: " + s.message());
  s = producer_->Commit(tasks_->OffsetsToCommit(), *consumer_);
  if (!s.ok()) {
    if (Retriable(s)) stats_.kafka_reachable = false;
    if (s.IsAborted() || (!exactly_once() && !s.IsFenced())) {
      return AbortTransaction("commit failed: " + s.message());
    }
    tasks_->AbortAll();
    producer_->Forget();
    stats_.aborts++;
    return s;  // Fenced or fatal: new clients
  }
  m_.commit_latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count());
  m_.committed.Increment();
  // Kafka has committed: now, and only now, local state catches up.
  KCQRS_RETURN_IF_ERROR(tasks_->CompleteCommit(producer_->TakeDeliveredOffsets()));
  stats_.commits++;
  if (aborts_in_burst_ > 0) {
    spdlog::info("stream-thread-{}: committing again after {} aborted transaction(s)",
                 config_.index, aborts_in_burst_);
    aborts_in_burst_ = 0;
    stats_.consecutive_aborts = 0;
  }
  KafkaAnswered();
  // The interval runs from the start of this commit, as in Kafka Streams,
  // so that an outcome waits for commit_interval_ms and not that plus the
  // commit's own time (under exactly-once, what a reader waits for). A
  // commit slower than half the interval still leaves half of one to work
  // in before the next, so that a slow broker does not shrink transactions
  // to a record or two.
  const auto committed = std::chrono::steady_clock::now();
  last_commit_ = std::max(commit_start,
                          committed - std::chrono::milliseconds(
                                          config_.options.application.commit_interval_ms / 2));
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
  tasks_->AbortAll();
  KCQRS_RETURN_IF_ERROR(producer_->Abort());  // fenced or fatal: new clients
  KCQRS_RETURN_IF_ERROR(tasks_->Rewind());
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

Status StreamThread::RestorePending(bool idle) {
  if (tasks_->restoring() == 0 || stop_) return Status::OK();
  const auto now = std::chrono::steady_clock::now();
  if (!idle && now - last_restore_ < kBusyRestoreInterval) return Status::OK();
  last_restore_ = now;
  auto restored = tasks_->RestoreStep(idle ? kIdleRestoreBudget : kBusyRestoreBudget);
  SyncTaskCounts();
  if (!restored.ok()) return restored.status();
  stats_.restored_records += *restored;
  return Status::OK();
}

void StreamThread::OnPartitionsAssigned(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = true;
  stats_.rebalances++;
  m_.rebalances.Increment();
  Status s = tasks_->HandleAssignment(parts);
  SyncTaskCounts();
  if (!s.ok()) {
    rebalance_error_ = s;
    return;
  }
  KafkaAnswered();
  spdlog::info("stream-thread-{}: assigned {} partitions, {} tasks", config_.index, parts.size(),
               tasks_->running() + tasks_->restoring());
}

void StreamThread::OnPartitionsRevoked(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = false;
  // Commit what was processed so the next owner starts after it.
  Status s = Commit();
  if (!s.ok()) {
    spdlog::warn("stream-thread-{}: commit on revocation failed: {}", config_.index,
                 s.ToString());
    tasks_->AbortAll();
    producer_->Forget();
    if (!s.IsAborted()) rebalance_error_ = s;
  }
  // Committed: the tasks are suspended, to resume if the assignment that
  // follows gives them back (an eager rebalance revokes everything).
  tasks_->HandleRevocation(parts, /*suspend=*/s.ok());
  SyncTaskCounts();
}

void StreamThread::OnPartitionsLost(const std::vector<kafka::TopicPartitionOffset>& parts) {
  assigned_ = false;
  // Someone else owns these now: nothing of the open transaction may commit.
  (void)producer_->Abort();
  tasks_->AbortAll();
  tasks_->HandleRevocation(parts);
  SyncTaskCounts();
}

}  // namespace kcqrs::engine
