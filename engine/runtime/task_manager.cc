#include "engine/runtime/task_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/serving/engine_view.h"

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};

}  // namespace

TaskManager::TaskManager(TaskManagerConfig config)
    : config_(std::move(config)),
      dead_letter_log_(config_.topology ? config_.topology->errors().dead_letter_topic
                                        : std::string()) {
  if (config_.topology) {
    for (const SubTopology& st : config_.topology->subtopologies()) {
      for (const Node& n : st.nodes) has_timers_ = has_timers_ || !n.timer_store.empty();
    }
  }
}

TaskManager::~TaskManager() { CloseAll(/*clean=*/false); }

void TaskManager::SetClients(ThreadConsumer* consumer, StreamsProducer* producer,
                             ChangelogReader* reader) {
  consumer_ = consumer;
  producer_ = producer;
  reader_ = reader;
}

Status TaskManager::HandleAssignment(const std::vector<kafka::TopicPartitionOffset>& parts) {
  std::vector<kafka::TopicPartitionOffset> query;
  std::vector<kafka::TopicPartitionOffset> pause;
  // Tasks this process keeps standby copies of: taken over from them, one
  // at a time (each copy answers until its own Claim, rather than all
  // letting go at once and waiting for every open before them).
  std::set<TaskId> from_copy;
  if (config_.state_directory != nullptr) {
    for (const kafka::TopicPartitionOffset& p : parts) {
      const SubTopology* st = config_.topology->SubTopologyOf(p.topic);
      if (st == nullptr) continue;
      const TaskId id{st->id, p.partition};
      if (tasks_.count(id) || suspended_.count(id)) continue;
      if (config_.state_directory->HeldByStandby(id.ToString())) from_copy.insert(id);
    }
  }
  for (const kafka::TopicPartitionOffset& p : parts) {
    const SubTopology* st = config_.topology->SubTopologyOf(p.topic);
    if (st == nullptr) continue;
    TaskId id{st->id, p.partition};
    if (auto back = suspended_.find(id); back != suspended_.end()) {
      tasks_.emplace(id, std::move(back->second));
      suspended_.erase(back);
    }
    auto it = tasks_.find(id);
    if (it == tasks_.end()) {
      auto task = OpenTask(id, *st, /*wipe=*/false);
      if (!task.ok()) return task.status();
      it = tasks_.emplace(id, std::move(task).value()).first;
      restoring_.insert(id);
      to_register_.insert(id);
      SetStatus(id, "RESTORING", 0, 0);
      // The standby's copy, now this task's, goes on answering reads a
      // moment behind while its lag is restored (Kafka Streams'
      // enableStaleStores reads restoring tasks too). Only a copy: a task
      // restoring from nothing would answer 404 for keys not yet restored.
      if (from_copy.count(id)) ListWarm(id, it->second.get());
    }
    task_of_partition_[{p.topic, p.partition}] = it->second.get();
    query.push_back({p.topic, p.partition, kafka::kOffsetInvalid});
    // Nothing of a task is processed before its stores are restored; the
    // thread keeps polling (and processing its other tasks) meanwhile.
    if (restoring_.count(id)) pause.push_back({p.topic, p.partition, kafka::kOffsetInvalid});
  }
  CloseSuspended();
  if (!pause.empty()) KCQRS_RETURN_IF_ERROR(consumer_->Pause(pause));
  auto committed = consumer_->Committed(query, kKafkaTimeout);
  if (!committed.ok()) return committed.status().WithContext("reading committed offsets");
  for (const kafka::TopicPartitionOffset& c : *committed) {
    if (c.offset >= 0) committed_[{c.topic, c.partition}] = c.offset;
  }
  return Status::OK();
}

void TaskManager::HandleRevocation(const std::vector<kafka::TopicPartitionOffset>& parts,
                                   bool suspend) {
  std::set<TaskId> closing;
  for (const kafka::TopicPartitionOffset& p : parts) {
    auto it = task_of_partition_.find({p.topic, p.partition});
    if (it != task_of_partition_.end()) closing.insert(it->second->id());
  }
  for (const TaskId& id : closing) {
    // A restoring task is closed: its restore registration is per life of
    // the assignment, and nothing of it answers queries yet anyway.
    if (suspend && !restoring_.count(id)) {
      SuspendTask(id);
    } else {
      CloseTask(id);
    }
  }
}

void TaskManager::SuspendTask(const TaskId& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Task* task = it->second.get();
  for (auto p = task_of_partition_.begin(); p != task_of_partition_.end();) {
    if (p->second == task) {
      // Read again from the group when the partition is assigned back.
      committed_.erase(p->first);
      first_processed_.erase(p->first);
      consumed_.erase(p->first);
      p = task_of_partition_.erase(p);
    } else {
      ++p;
    }
  }
  suspended_.emplace(id, std::move(it->second));
  tasks_.erase(it);
}

void TaskManager::ListWarm(const TaskId& id, Task* task) {
  if (config_.standby_registry == nullptr) return;
  for (const std::string& store : task->subtopology().stores) {
    config_.standby_registry->Add(store, id.partition, task->state().storage().Reader(store));
  }
  warm_.insert(id);
}

void TaskManager::UnlistWarm(const TaskId& id) {
  if (!warm_.erase(id)) return;
  const Task* task = tasks_.count(id) ? tasks_.at(id).get() : nullptr;
  if (task == nullptr) return;
  for (const std::string& store : task->subtopology().stores) {
    config_.standby_registry->Remove(store, id.partition);
  }
}

void TaskManager::CloseSuspended() {
  while (!suspended_.empty()) {
    auto it = suspended_.begin();
    const TaskId id = it->first;
    tasks_.emplace(id, std::move(it->second));
    suspended_.erase(it);
    CloseTask(id);
  }
}

Task* TaskManager::TaskFor(const std::string& topic, int32_t partition) const {
  auto it = task_of_partition_.find({topic, partition});
  return it == task_of_partition_.end() ? nullptr : it->second;
}

std::optional<TaskManager::TopicPartition> TaskManager::AnyPartition() const {
  if (task_of_partition_.empty()) return std::nullopt;
  return task_of_partition_.begin()->first;
}

Status TaskManager::Process(Task* task, const Record& record, bool* processed) {
  *processed = false;
  const TopicPartition tp{record.topic, record.partition};
  auto consumed = consumed_.find(tp);
  int64_t expected = kafka::kOffsetInvalid;
  if (consumed != consumed_.end()) {
    expected = consumed->second;
  } else if (auto c = committed_.find(tp); c != committed_.end()) {
    expected = c->second;
  }
  if (record.offset < expected && LogEndsBelow(record.topic, record.partition, expected)) {
    // Not a position moved back: the topic was deleted and made again (or
    // truncated) under the running application. Its records are new.
    spdlog::error("task {}: {}[{}] now ends below offset {}, where this thread stood: the "
                  "topic was recreated or truncated; processing it from offset {}",
                  task->name(), record.topic, record.partition, expected, record.offset);
  } else if (record.offset < expected) {
    // librdkafka (2.0.2, and as late as its 2.x sources) can move a fetch
    // position back on its own: an offset lookup for auto.offset.reset that
    // a pause, resume or seek made outdated arms a retry timer, which
    // nothing stops once the partition fetches again; it fires after our
    // seek to an absolute offset and sends the partition back to the
    // beginning (confluentinc/librdkafka#2256, whose advice is this
    // check). Processing those records again would commit their outputs
    // twice: skip them, and seek back to where this thread is.
    spdlog::warn("task {}: {}[{}] came again from offset {} though {} is the next to "
                 "process (the Kafka consumer moved back on its own); not processed twice, "
                 "seeking back to it",
                 task->name(), record.topic, record.partition, record.offset, expected);
    return consumer_->Seek({record.topic, record.partition, expected}, kKafkaTimeout);
  }
  if (expected == kafka::kOffsetInvalid) first_processed_.try_emplace(tp, record.offset);
  KCQRS_RETURN_IF_ERROR(task->Process(record));
  if (consumed != consumed_.end()) {
    consumed->second = record.offset + 1;
  } else {
    consumed_.emplace(tp, record.offset + 1);
  }
  *processed = true;
  return Status::OK();
}

bool TaskManager::LogEndsBelow(const std::string& topic, int32_t partition,
                               int64_t offset) const {
  // The watermarks of the fetch that brought the record: no request.
  auto marks = consumer_->CachedWatermarks(topic, partition);
  return marks.ok() && marks->second >= 0 && marks->second < offset;
}

bool TaskManager::TimersDue() {
  if (!has_timers_) return false;
  for (auto& [id, task] : tasks_) {
    if (task->has_timers() && !restoring_.count(id) && task->TimersDue()) return true;
  }
  return false;
}

Status TaskManager::FireTimers() {
  for (auto& [id, task] : tasks_) {
    if (!task->has_timers() || restoring_.count(id) || !task->TimersDue()) continue;
    KCQRS_RETURN_IF_ERROR(task->FireTimers());
  }
  return Status::OK();
}

Status TaskManager::Send(kafka::OutgoingRecord record) { return producer_->Send(record); }

// The producer copies what it sends (librdkafka's RD_KAFKA_MSG_F_COPY):
// nothing here keeps the record.
Status TaskManager::SendCopyOf(const kafka::OutgoingRecord& record) {
  return producer_->Send(record);
}

bool TaskManager::SkippedHeaders(const Record& record, std::vector<Header>* out) {
  return consumer_ != nullptr && consumer_->SkippedHeaders(record, out);
}

void TaskManager::DeadLettered(const Record& record, const std::string& reason) {
  dead_letters_[{record.topic, record.partition}][record.offset] = reason;
  dead_letter_log_.Add(record.topic, record.partition, record.offset, reason,
                       DeadLetterLog::Clock::now());
}

void TaskManager::Decided(std::vector<std::pair<std::string, CommandOutcome>> outcomes) {
  if (config_.positions == nullptr) return;
  if (outcomes_.empty()) {
    outcomes_ = std::move(outcomes);
  } else {
    for (auto& o : outcomes) outcomes_.push_back(std::move(o));
  }
}

size_t TaskManager::BufferedBytes() const {
  size_t buffered = 0;
  for (const auto& [id, task] : tasks_) buffered += task->state().buffered_bytes();
  return buffered;
}

Status TaskManager::FlushChangelogs() {
  for (auto& [id, task] : tasks_) {
    KCQRS_RETURN_IF_ERROR(task->state().FlushChangelog().WithContext("task " + task->name()));
  }
  return Status::OK();
}

std::vector<kafka::TopicPartitionOffset> TaskManager::OffsetsToCommit() {
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
  return offsets;
}

Status TaskManager::CompleteCommit(const std::map<TopicPartition, int64_t>& delivered) {
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
    Status applied = config_.faults != nullptr
                         ? config_.faults->Check(FaultInjector::Point::kApplyState)
                         : Status::OK();
    if (applied.ok()) applied = task->state().Commit(cp);
    if (applied.ok()) task->Committed();
    if (!applied.ok()) {
      // Kafka holds the writes, and the local checkpoint still names where
      // this state ends: new clients and a new assignment restore the tail
      // from the changelog. Nothing of this transaction is open any more.
      consumed_.clear();
      dead_letters_.clear();
      outcomes_.clear();
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
    entry.outcomes = std::move(outcomes_);
    for (const auto& [tp, last] : delivered) {
      if (config_.topology->SubTopologyOf(tp.first) != nullptr) entry.produced_last[tp] = last;
    }
    config_.positions->Append(std::move(entry));
  }
  for (const auto& [tp, next] : consumed_) {
    committed_[tp] = next;
    first_processed_.erase(tp);
  }
  consumed_.clear();
  dead_letters_.clear();
  outcomes_.clear();
  return Status::OK();
}

void TaskManager::AbortAll() {
  for (auto& [id, task] : tasks_) task->Abort();
  consumed_.clear();
  dead_letters_.clear();
  outcomes_.clear();
}

Status TaskManager::Rewind() {
  for (const auto& [tp, task] : task_of_partition_) {
    int64_t offset;
    if (auto c = committed_.find(tp); c != committed_.end()) {
      offset = c->second;
    } else if (auto f = first_processed_.find(tp); f != first_processed_.end()) {
      offset = f->second;
    } else {
      continue;  // nothing of it processed: nothing to read again
    }
    KCQRS_RETURN_IF_ERROR(consumer_->Seek({tp.first, tp.second, offset}, kKafkaTimeout));
  }
  return Status::OK();
}

void TaskManager::CloseAll(bool clean) {
  if (!clean) AbortAll();
  CloseSuspended();
  std::vector<TaskId> ids;
  for (const auto& [id, task] : tasks_) ids.push_back(id);
  for (const TaskId& id : ids) CloseTask(id);
  consumed_.clear();
  committed_.clear();
  first_processed_.clear();
}

void TaskManager::CloseTask(const TaskId& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Task* task = it->second.get();
  for (const std::string& store : task->subtopology().stores) {
    config_.registry->Remove(store, id.partition);
  }
  if (restoring_.erase(id) && reader_ != nullptr) (void)reader_->Unregister(id);
  to_register_.erase(id);
  UnlistWarm(id);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_.erase(id);
  }
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
      first_processed_.erase(p->first);
      p = task_of_partition_.erase(p);
    } else {
      ++p;
    }
  }
  tasks_.erase(it);
}

Result<std::unique_ptr<Task>> TaskManager::OpenTask(const TaskId& id, const SubTopology& st,
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
  auto task =
      Task::Create(id, st, config_.topology, std::move(storage), this, lua_, config_.metrics);
  if (!task.ok()) return task.status();
  (*task)->set_max_record_bytes(MaxRecordBytesFor(config_.options.kafka.properties),
                                &config_.topic_max_record_bytes);
  return task;
}

Status TaskManager::WipeTask(const TaskId& id) {
  auto it = tasks_.find(id);
  Task* old = it->second.get();
  const SubTopology& st = old->subtopology();
  UnlistWarm(id);  // the copy did not fit its changelog: nothing to answer with
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

Status TaskManager::PauseTask(Task* task, bool pause) {
  std::vector<kafka::TopicPartitionOffset> parts;
  for (const auto& [tp, t] : task_of_partition_) {
    if (t == task) parts.push_back({tp.first, tp.second, kafka::kOffsetInvalid});
  }
  if (parts.empty()) return Status::OK();
  return pause ? consumer_->Pause(parts) : consumer_->Resume(parts);
}

Result<uint64_t> TaskManager::RestoreStep(std::chrono::milliseconds budget) {
  for (const TaskId& id : std::set<TaskId>(to_register_)) {
    Status registered = reader_->Register(RestoreTarget::Of(tasks_.at(id).get()));
    if (registered.code() == Status::Code::kFailedPrecondition) {
      // The local state does not belong to the changelog as it is now
      // (recreated, truncated, or deleted below the checkpoint): reusing it
      // would serve and decide against stale state. Kafka Streams does the
      // same (TaskCorruptedException): wipe it and restore from scratch.
      spdlog::warn("task {}: {}; wiping the local state and restoring it from the changelog",
                   id.ToString(), registered.message());
      KCQRS_RETURN_IF_ERROR(WipeTask(id));
      registered = reader_->Register(RestoreTarget::Of(tasks_.at(id).get()));
    }
    KCQRS_RETURN_IF_ERROR(registered);
    to_register_.erase(id);
  }
  const uint64_t before = reader_->restored_records();
  auto done = reader_->Step(budget);
  if (!done.ok()) return done.status();
  for (const TaskId& id : *done) {
    Task* task = tasks_.at(id).get();
    KCQRS_RETURN_IF_ERROR(task->Init());
    KCQRS_RETURN_IF_ERROR(RestorePositions(task));
    for (const std::string& store : task->subtopology().stores) {
      config_.registry->Add(store, id.partition, task->state().storage().Reader(store));
    }
    UnlistWarm(id);  // after the Add: always one or the other answers
    restoring_.erase(id);
    SetRunning(id);
    KCQRS_RETURN_IF_ERROR(PauseTask(task, /*pause=*/false));
  }
  return reader_->restored_records() - before;
}

Status TaskManager::RestorePositions(Task* task) {
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
      auto end = reader_->EndOffset(topic, p);
      if (!end.ok()) return end.status().WithContext("the end of " + topic);
      // Under exactly-once every transaction that wrote here ends with its
      // commit marker, so the records committed before now lie below the
      // last offset (the marker), which no consumer position ever passes
      // for certain; without transactions the last offset is a record.
      const int64_t last = *end - (exactly_once() ? 2 : 1);
      if (last >= 0) entry.produced_last[{topic, p}] = last;
    }
  }
  config_.positions->Append(std::move(entry));
  return Status::OK();
}

void TaskManager::SetStatus(const TaskId& id, std::string state, uint64_t restored,
                            int64_t remaining) {
  std::lock_guard<std::mutex> lock(status_mu_);
  status_[id] = TaskStatus{id.ToString(), std::move(state), restored, remaining};
}

void TaskManager::SetRunning(const TaskId& id) {
  std::lock_guard<std::mutex> lock(status_mu_);
  // The count its restore replayed stays: /readyz shows what a restart cost.
  auto it = status_.find(id);
  const uint64_t restored = it == status_.end() ? 0 : it->second.restored;
  status_[id] = TaskStatus{id.ToString(), "RUNNING", restored, 0};
}

std::vector<TaskStatus> TaskManager::Statuses() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  std::vector<TaskStatus> out;
  for (const auto& [id, status] : status_) out.push_back(status);
  return out;
}

void TaskManager::Snapshot(std::map<std::string, uint64_t>* nodes,
                           std::map<std::string, std::map<int32_t, int64_t>>* lag) const {
  std::lock_guard<std::mutex> lock(status_mu_);
  for (const auto& [name, n] : node_counts_) (*nodes)[name] += n;
  for (const auto& [topic, parts] : lag_) {
    for (const auto& [p, l] : parts) (*lag)[topic][p] = l;
  }
}

void TaskManager::UpdateGauges() {
  for (auto& [id, task] : tasks_) task->FlushMetrics();
  // Lag from the watermarks the consumer already knows (no request), for
  // every partition held. librdkafka knows a position only once a record of
  // the partition was consumed, so an idle partition (none yet since the
  // assignment) counts from what was consumed or committed, and a partition
  // the group never committed from its start (auto.offset.reset=earliest).
  // Leaving such partitions out made /stats and the page show a topic of
  // three partitions with two, and drop one from the lag table.
  std::map<std::string, std::map<int32_t, int64_t>> lag;
  for (const auto& [tp, task] : task_of_partition_) {
    if (consumer_ == nullptr) break;
    int64_t& l = lag[tp.first][tp.second];
    l = StatsReport::kLagUnknown;
    auto wm = consumer_->CachedWatermarks(tp.first, tp.second);
    if (!wm.ok() || wm->second < 0) continue;
    auto pos = consumer_->Position(tp.first, tp.second);
    int64_t next = pos.ok() ? *pos : kafka::kOffsetInvalid;
    if (next < 0) {
      auto consumed = consumed_.find(tp);
      auto committed = committed_.find(tp);
      if (consumed != consumed_.end()) {
        next = consumed->second;
      } else if (committed != committed_.end()) {
        next = committed->second;
      } else if (wm->first >= 0) {
        next = wm->first;
      } else if (wm->second == 0) {
        next = 0;  // empty and never written
      } else {
        continue;
      }
    }
    l = std::max<int64_t>(0, wm->second - std::max(next, wm->first));
    if (config_.metrics != nullptr) {
      config_.metrics->ConsumerLag(tp.first, tp.second).Set(static_cast<double>(l));
    }
  }
  dead_letter_log_.Flush(DeadLetterLog::Clock::now());
  std::map<std::string, uint64_t> nodes = closed_node_counts_;
  for (const auto& [id, task] : tasks_) task->AddNodeCounts(&nodes);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    node_counts_ = std::move(nodes);
    lag_ = std::move(lag);
  }
  if (config_.metrics == nullptr) return;
  for (const auto& [id, task] : tasks_) {
    if (restoring_.count(id)) continue;
    for (const std::string& store : task->subtopology().stores) {
      auto reader = task->state().storage().Reader(store);
      if (reader) {
        config_.metrics->StoreKeys(store, id.partition)
            .Set(static_cast<double>(reader->ApproximateNumEntries()));
      }
      const state::TaskState::CacheStats cache = task->state().TakeCacheStats(store);
      config_.metrics->StoreCacheHits(store).Increment(static_cast<double>(cache.hits));
      config_.metrics->StoreCacheMisses(store).Increment(static_cast<double>(cache.misses));
      config_.metrics->StoreCacheBytes(store, id.partition)
          .Set(static_cast<double>(cache.bytes));
    }
  }
}

}  // namespace kcqrs::engine
