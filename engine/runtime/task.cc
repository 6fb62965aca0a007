#include "engine/runtime/task.h"

#include <algorithm>
#include <charconv>
#include <chrono>

#include "engine/codec/headers.h"
#include "engine/codec/partitioner.h"
#include "engine/processors/processors.h"

namespace kcqrs::engine {

// The ProcessorContext of one task. While a record is processed, its sends
// and store writes are held here (per-record scope); Task::Process releases
// them when every processor succeeded and drops them otherwise.
class Task::Context final : public ProcessorContext, public OutcomeRecorder {
 public:
  Context(Task* task) : task_(task) {}

  KeyValueStore* GetStateStore(const std::string& name) override {
    auto it = scoped_.find(name);
    if (it != scoped_.end()) return it->second.get();
    state::BufferedStore* inner = task_->state_->Store(name);
    if (inner == nullptr) return nullptr;
    metrics::Metrics* m = task_->metrics_;
    auto scoped = std::make_unique<ScopedStore>(inner, m ? m->StoreGets(name) : metrics::Counter(),
                                                m ? m->StorePuts(name) : metrics::Counter());
    KeyValueStore* p = scoped.get();
    scoped_.emplace(name, std::move(scoped));
    return p;
  }

  Status Send(const std::string& topic, std::optional<std::string> key,
              std::optional<std::string> value, std::vector<Header> headers) override {
    return SendAt(topic, record_timestamp_, std::move(key), std::move(value), std::move(headers));
  }

  Status SendWithTimestamp(const std::string& topic, int64_t timestamp_ms,
                           std::optional<std::string> key, std::optional<std::string> value,
                           std::vector<Header> headers) override {
    if (timestamp_ms < 0) {
      return Status::InvalidArgument("a record sent to '" + topic +
                                     "' needs a timestamp of 0 or more, found " +
                                     std::to_string(timestamp_ms));
    }
    return SendAt(topic, timestamp_ms, std::move(key), std::move(value), std::move(headers));
  }

  Status SendAt(const std::string& topic, int64_t timestamp_ms, std::optional<std::string> key,
                std::optional<std::string> value, std::vector<Header> headers) {
    // Every topic a node writes is known (declared or inferred) before the
    // first record, so that it exists: a send anywhere else would fail in
    // the producer and abort the whole transaction, again and again.
    // A node may also write back to its own sources (a command forwarded to
    // its aggregate's partition).
    auto has = [&topic](const std::vector<std::string>& v) {
      return std::find(v.begin(), v.end(), topic) != v.end();
    };
    if (node_ != nullptr && !has(node_->sinks) && !has(node_->sources)) {
      std::string declared;
      for (const std::string& t : node_->sinks) declared += (declared.empty() ? "" : ", ") + t;
      return Status::InvalidArgument("'" + node_->name + "' sends to topic '" + topic +
                                     "', which it does not declare as an output (declared: " +
                                     declared + ")");
    }
    sends_.push_back(task_->Outgoing(topic, std::move(key), std::move(value),
                                     std::move(headers), timestamp_ms));
    return Status::OK();
  }

  size_t MaxRecordBytes(const std::string& topic) const override {
    return task_->MaxRecordBytes(topic);
  }

  void RecordOutcome(std::string command_id, CommandOutcome outcome) override {
    outcomes_.emplace_back(std::move(command_id), std::move(outcome));
  }

  Status SetTimer(std::string_view key, int64_t due_ms) override {
    KeyValueStore* timers = TimerStore();
    if (timers == nullptr) return NoTimers();
    if (key.empty()) return Status::InvalidArgument("a timer needs a non-empty key");
    due_ms = std::max<int64_t>(due_ms, 0);
    const std::string k = TimerKey(key);
    auto old = timers->Get(k);
    if (!old.ok()) return old.status();
    if (old->has_value()) {
      KCQRS_RETURN_IF_ERROR(timers->Delete(DueKey(ParseDue(**old), key)));
    }
    KCQRS_RETURN_IF_ERROR(timers->Put(k, std::to_string(due_ms)));
    KCQRS_RETURN_IF_ERROR(timers->Put(DueKey(due_ms, key), ""));
    // Earlier is safe: a check that finds nothing due reads the store again.
    if (bound_->next_due != kUnknownDue && due_ms < bound_->next_due) bound_->next_due = due_ms;
    if (due_ms < bound_->timer_floor) bound_->timer_floor = due_ms;
    return Status::OK();
  }

  Status CancelTimer(std::string_view key) override {
    KeyValueStore* timers = TimerStore();
    if (timers == nullptr) return NoTimers();
    const std::string k = TimerKey(key);
    auto old = timers->Get(k);
    if (!old.ok()) return old.status();
    if (!old->has_value()) return Status::OK();
    KCQRS_RETURN_IF_ERROR(timers->Delete(DueKey(ParseDue(**old), key)));
    return timers->Delete(k);
  }

  int64_t TimerClockMs() const override {
    return bound_ != nullptr ? task_->TimerClock(*bound_) : task_->wall_clock_();
  }

  Status Forward(Record record) override {
    KCQRS_RETURN_IF_ERROR(CanForward());
    Bound* parent = bound_;
    for (size_t i : parent->children) {
      KCQRS_RETURN_IF_ERROR(RunChild(&task_->processors_[i], record));
    }
    return Status::OK();
  }

  Status ForwardTo(const std::string& child, Record record) override {
    KCQRS_RETURN_IF_ERROR(CanForward());
    for (size_t i : bound_->children) {
      Bound& c = task_->processors_[i];
      if (c.name == child) return RunChild(&c, std::move(record));
    }
    std::string children;
    for (size_t i : bound_->children) {
      children += (children.empty() ? "" : ", ") + task_->processors_[i].name;
    }
    return Status::NotFound("'" + bound_->name + "' has no child '" + child + "' (children: " +
                            (children.empty() ? "none" : children) +
                            "; a child names its parents under processors.<child>.parents)");
  }

  // The first child that failed for the record in scope, if any: the record
  // fails with it even when its parent went on.
  const std::optional<std::pair<std::string, Status>>& child_failure() const {
    return child_failure_;
  }

  const std::string& application_id() const override {
    return task_->topology_->application_id();
  }
  const std::string& task_id() const override { return task_->name_; }
  int32_t partition() const override { return task_->id_.partition; }

  // A record (or a timer firing, `input` null) comes into scope.
  void Begin(int64_t timestamp_ms, const Record* input) {
    record_timestamp_ = timestamp_ms;
    input_ = input;
    child_failure_.reset();
  }
  // The node whose Process runs now (its declared outputs, its timers), or
  // null.
  void SetNode(Bound* bound) {
    bound_ = bound;
    node_ = bound != nullptr ? bound->node : nullptr;
  }

  // The timer store's two keys per timer: "k<key>" -> due, so that a timer
  // is found by its key, and "d<due, 20 digits><key>", so that the earliest
  // is the first key of the prefix "d".
  static std::string TimerKey(std::string_view key) {
    std::string k = "k";
    k += key;
    return k;
  }
  static std::string DueKey(int64_t due_ms, std::string_view key) {
    std::string digits = std::to_string(due_ms);
    std::string k = "d";
    k.append(kDueDigits - std::min(digits.size(), kDueDigits), '0');
    k += digits;
    k += key;
    return k;
  }
  static int64_t ParseDue(std::string_view text) {
    int64_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  }
  static constexpr size_t kDueDigits = 20;
  // The range of the due index from `floor` on.
  static std::string DueFrom(int64_t floor) { return DueKey(floor, ""); }
  static constexpr char kDueEnd[] = "e";  // the successor of the prefix "d"

  // Whether every output and store write of the record fits in one Kafka
  // message: the producer would refuse a larger one only when the
  // transaction commits, and the abort and rewind would meet the same
  // record again, forever.
  Status CheckSizes() const {
    if (task_->max_record_bytes_ == 0) return Status::OK();
    for (const kafka::OutgoingRecord& r : sends_) {
      const size_t max = task_->MaxRecordBytes(r.topic);
      size_t size = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
      for (const kafka::Header& h : r.headers) size += h.key.size() + (h.value ? h.value->size() : 0);
      if (size > max) {
        return Status::InvalidArgument("the record for topic '" + r.topic + "' would be " +
                                       std::to_string(size) +
                                       " bytes, above the maximum message size of " +
                                       std::to_string(max) + " bytes");
      }
    }
    for (const auto& [name, store] : scoped_) {
      auto changelog = task_->changelog_topics_.find(name);
      const size_t max = changelog != task_->changelog_topics_.end()
                             ? task_->MaxRecordBytes(changelog->second)
                             : task_->max_record_bytes_;
      if (auto big = store->Oversized(max)) {
        return Status::InvalidArgument("the new value of '" + *big + "' in store '" + name +
                                       "' would be above the maximum message size of " +
                                       std::to_string(max) +
                                       " bytes (its changelog record could not be written)");
      }
    }
    return Status::OK();
  }

  // Writes the record's store changes to the task's transactional stores
  // (which changelog them) and hands its sends to the collector. On failure
  // nothing of the record stays here: the transaction is aborted and the
  // record comes again after the rewind, to be decided against the state
  // without it.
  Status Release() {
    Status s = ReleaseAll();
    Drop();
    return s;
  }

  void Drop() {
    for (auto& [name, store] : scoped_) store->Drop();
    sends_.clear();
    outcomes_.clear();
  }

 private:
  Status CanForward() const {
    if (bound_ == nullptr) {
      return Status::FailedPrecondition(
          "records can be forwarded only from Process or OnTimer (not from Init or Close)");
    }
    return Status::OK();
  }

  // Runs `child` on `record` as the node in scope, then gives the scope
  // back to its parent.
  Status RunChild(Bound* child, Record record) {
    // The record has failed already: nothing more of it runs.
    if (child_failure_) return child_failure_->second;
    if (input_ != nullptr) {
      record.topic = input_->topic;
      record.partition = input_->partition;
      record.offset = input_->offset;
    } else {
      record.topic.clear();
      record.partition = task_->id_.partition;
      record.offset = -1;
    }
    Bound* parent = bound_;
    const int64_t parent_timestamp = record_timestamp_;
    SetNode(child);
    record_timestamp_ = record.timestamp_ms;
    ++child->processed;
    Status s = CallProcess(child, record, *this);
    SetNode(parent);
    record_timestamp_ = parent_timestamp;
    if (!s.ok() && !child_failure_) child_failure_.emplace(child->name, s);
    return s;
  }

 private:
  // A store whose writes wait for the end of the record.
  class ScopedStore final : public KeyValueStore {
   public:
    ScopedStore(state::BufferedStore* inner, metrics::Counter gets, metrics::Counter puts)
        : inner_(inner), gets_(gets), puts_(puts) {}

    const std::string& name() const override { return inner_->name(); }

    Result<std::optional<std::string>> Get(std::string_view key) const override {
      gets_.Increment();
      auto it = pending_.find(key);
      if (it != pending_.end()) return it->second;
      return inner_->Get(key);
    }

    std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                            std::string_view to) const override {
      if (pending_.empty()) return inner_->Range(from, to);
      return Merged(inner_->Range(from, to), [&](const std::string& k) {
        return k >= from && (to.empty() || k < to);
      });
    }

    std::unique_ptr<KeyValueIterator> Prefix(std::string_view prefix) const override {
      if (pending_.empty()) return inner_->Prefix(prefix);
      return Merged(inner_->Prefix(prefix), [&](const std::string& k) {
        return k.compare(0, prefix.size(), prefix) == 0;
      });
    }

    uint64_t ApproximateNumEntries() const override { return inner_->ApproximateNumEntries(); }

    Status Put(std::string_view key, std::string_view value) override {
      puts_.Increment();
      pending_[std::string(key)] = std::string(value);
      return Status::OK();
    }
    Status Delete(std::string_view key) override {
      pending_[std::string(key)] = std::nullopt;
      return Status::OK();
    }

    // Hands the pending writes over to the task's buffer (moved, not
    // copied: a value is an aggregate or view of hundreds of bytes).
    Status Release() {
      while (!pending_.empty()) {
        auto node = pending_.extract(pending_.begin());
        Status s = inner_->Take(std::move(node.key()), std::move(node.mapped()));
        if (!s.ok()) {
          pending_.clear();
          return s;
        }
      }
      return Status::OK();
    }
    void Drop() { pending_.clear(); }

    // A key whose pending value exceeds `max` bytes with its key, if any.
    std::optional<std::string> Oversized(size_t max) const {
      for (const auto& [key, value] : pending_) {
        if (value && key.size() + value->size() > max) return key.substr(0, 64);
      }
      return std::nullopt;
    }

   private:
    // Rare path (a processor scanning what it wrote for the same record):
    // materialise the merge of the inner range and the pending writes.
    class VectorIterator final : public KeyValueIterator {
     public:
      VectorIterator(std::vector<std::pair<std::string, std::string>> rows, Status status)
          : rows_(std::move(rows)), status_(std::move(status)) {}
      bool Valid() const override { return i_ < rows_.size(); }
      void Next() override { ++i_; }
      std::string_view key() const override { return rows_[i_].first; }
      std::string_view value() const override { return rows_[i_].second; }
      Status status() const override { return status_; }

     private:
      std::vector<std::pair<std::string, std::string>> rows_;
      Status status_;
      size_t i_ = 0;
    };

    template <typename InRange>
    std::unique_ptr<KeyValueIterator> Merged(std::unique_ptr<KeyValueIterator> inner,
                                             InRange in_range) const {
      std::map<std::string, std::string, std::less<>> rows;
      for (; inner->Valid(); inner->Next()) {
        rows.emplace(std::string(inner->key()), std::string(inner->value()));
      }
      for (const auto& [key, value] : pending_) {
        if (!in_range(key)) continue;
        if (value) {
          rows[key] = *value;
        } else {
          rows.erase(key);
        }
      }
      return std::make_unique<VectorIterator>(
          std::vector<std::pair<std::string, std::string>>(rows.begin(), rows.end()),
          inner->status());
    }

    state::BufferedStore* inner_;
    metrics::Counter gets_;
    metrics::Counter puts_;
    std::map<std::string, std::optional<std::string>, std::less<>> pending_;
  };

  Status ReleaseAll() {
    for (auto& [name, store] : scoped_) {
      KCQRS_RETURN_IF_ERROR(store->Release());
    }
    for (kafka::OutgoingRecord& r : sends_) {
      KCQRS_RETURN_IF_ERROR(task_->collector_->Send(std::move(r)));
    }
    if (!outcomes_.empty()) task_->collector_->Decided(std::move(outcomes_));
    return Status::OK();
  }

  KeyValueStore* TimerStore() {
    if (node_ == nullptr || node_->timer_store.empty()) return nullptr;
    return GetStateStore(node_->timer_store);
  }
  Status NoTimers() const {
    return Status::FailedPrecondition(
        "'" + (node_ != nullptr ? node_->name : std::string("?")) +
        "' does not declare timers (processors.<name>.timers: wall_clock or stream_time)");
  }

  Task* task_;
  Bound* bound_ = nullptr;
  const Node* node_ = nullptr;
  std::map<std::string, std::unique_ptr<ScopedStore>> scoped_;
  std::vector<kafka::OutgoingRecord> sends_;
  std::vector<std::pair<std::string, CommandOutcome>> outcomes_;
  int64_t record_timestamp_ = 0;
  const Record* input_ = nullptr;  // the record in scope; null for a timer
  std::optional<std::pair<std::string, Status>> child_failure_;
};

Task::Task(TaskId id, const SubTopology& subtopology,
           std::shared_ptr<const CompiledTopology> topology, RecordCollector* collector,
           metrics::Metrics* metrics)
    : id_(id),
      name_(id.ToString()),
      subtopology_(subtopology),
      topology_(std::move(topology)),
      collector_(collector),
      wall_clock_([] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      }),
      metrics_(metrics) {
  if (metrics_ != nullptr) {
    processed_ = metrics_->RecordsProcessed(name_);
    latency_ = metrics::LocalHistogram(metrics_->ProcessLatency(name_));
  }
  for (const std::string& store : subtopology_.stores) {
    changelog_topics_.emplace(store, topology_->ChangelogTopic(store));
  }
}

Task::~Task() = default;

Result<std::unique_ptr<Task>> Task::Create(TaskId id, const SubTopology& subtopology,
                                           std::shared_ptr<const CompiledTopology> topology,
                                           std::unique_ptr<state::TaskStorage> storage,
                                           RecordCollector* collector, LuaFunctions* lua,
                                           metrics::Metrics* metrics) {
  std::unique_ptr<Task> task(new Task(id, subtopology, std::move(topology), collector, metrics));
  task->parsed_ = std::make_unique<ParsedRecord>(task->topology_->json_limits());
  state::ChangelogSink* sink = task.get();  // a private base: convert here
  task->state_ = std::make_unique<state::TaskState>(std::move(storage), sink,
                                                    task->topology_->CacheBytesPerTask());
  task->context_ = std::make_unique<Context>(task.get());
  for (const Node& node : subtopology.nodes) {
    auto p = MakeProcessor(node, *task->topology_, lua, metrics, task->parsed_.get());
    if (!p.ok()) return p.status().WithContext(node.name);
    Bound b{node.name, &node, std::move(p).value(), node.sources, {}};
    b.listener = dynamic_cast<TransactionListener*>(b.processor.get());
    task->has_timers_ = task->has_timers_ || !node.timer_store.empty();
    task->processors_.push_back(std::move(b));
  }
  for (size_t i = 0; i < task->processors_.size(); ++i) {
    for (const std::string& parent : task->processors_[i].node->parents) {
      for (Bound& p : task->processors_) {
        if (p.name == parent && p.node->kind == NodeKind::kCustom) p.children.push_back(i);
      }
    }
  }
  return task;
}

namespace {

// What a processor's exception says, as the status of the record it was
// processing: a custom processor or a library that throws must cost one
// record (dead-lettered with the reason), never the process.
Status FromException(const char* what) {
  return Status::Internal(std::string("threw an exception: ") + what);
}

}  // namespace

Status Task::Init() {
  for (Bound& b : processors_) {
    Status s;
    try {
      s = b.processor->Init(*context_);
    } catch (const std::exception& e) {
      s = FromException(e.what());
    } catch (...) {
      s = FromException("(not a std::exception)");
    }
    if (!s.ok()) return s.WithContext("task " + name_ + ": " + b.name);
  }
  return Status::OK();
}

Status Task::Process(const Record& record) {
  const bool timed = latency_countdown_ == 0;
  latency_countdown_ = timed ? kLatencySampleEvery - 1 : latency_countdown_ - 1;
  const auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
  if (metrics_ != nullptr) {
    // A task reads a handful of partitions: a scan finds the counter
    // without building a key.
    auto c = std::find_if(consumed_.begin(), consumed_.end(), [&](const Consumed& e) {
      return e.partition == record.partition && e.topic == record.topic;
    });
    if (c == consumed_.end()) {
      consumed_.push_back({record.topic, record.partition,
                           metrics_->RecordsConsumed(record.topic, record.partition, name_)});
      c = consumed_.end() - 1;
    }
    c->counter.Increment();
  }
  Status s = ProcessInScope(record);
  processed_.Increment();
  if (timed) {
    latency_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return s;
}

Status Task::CallProcess(Bound* b, const Record& record, ProcessorContext& context) {
  try {
    return b->processor->Process(record, context);
  } catch (const std::exception& e) {
    return FromException(e.what());
  } catch (...) {
    return FromException("(not a std::exception)");
  }
}

Status Task::ProcessInScope(const Record& record) {
  if (record.timestamp_ms > stream_time_) stream_time_ = record.timestamp_ms;
  context_->Begin(record.timestamp_ms, &record);
  parsed_->Reset();
  for (Bound& b : processors_) {
    if (std::find(b.sources.begin(), b.sources.end(), record.topic) == b.sources.end()) {
      continue;
    }
    ++b.processed;
    context_->SetNode(&b);
    Status s = CallProcess(&b, record, *context_);
    context_->SetNode(nullptr);
    if (const auto& child = context_->child_failure()) {
      return Failed(record, child->first, child->second);
    }
    if (!s.ok()) return Failed(record, b.name, s);
  }
  Status fits = context_->CheckSizes();
  if (!fits.ok()) return Failed(record, "", fits);
  ++stats_.processed;
  return context_->Release();
}

Status Task::Failed(const Record& record, const std::string& processor, const Status& error) {
  context_->Drop();
  for (Bound& b : processors_) {
    if (b.listener != nullptr) b.listener->RecordDropped();
  }
  if (topology_->errors().on_error == ErrorPolicy::OnError::kFail) {
    return error.WithContext((processor.empty() ? "" : processor + " at ") + record.topic + "-" +
                             std::to_string(record.partition) + "@" +
                             std::to_string(record.offset));
  }
  ++stats_.dead_letters;
  if (metrics_ != nullptr) {
    auto d = dead_letters_.find(processor);
    if (d == dead_letters_.end()) {
      d = dead_letters_.emplace(processor, metrics_->DeadLetters(name_, processor)).first;
    }
    d->second.Increment();
  }
  return DeadLetter(record, processor, error);
}

void Task::Close() {
  for (Bound& b : processors_) {
    try {
      b.processor->Close();
    } catch (...) {
      // Closing must go on for the other processors; the task is going away.
    }
  }
}

void Task::Abort() {
  context_->Drop();
  state_->Abort();
  for (Bound& b : processors_) {
    if (b.listener != nullptr) b.listener->Aborted();
    b.next_due = kUnknownDue;  // the aborted writes may have set or removed timers
    b.timer_floor = 0;
  }
}

void Task::Committed() {
  for (Bound& b : processors_) {
    if (b.listener != nullptr) b.listener->Committed();
  }
}

Status Task::ReadNextDue(Bound* b) {
  KeyValueStore* timers = state_->Store(b->node->timer_store);
  if (timers == nullptr) return Status::Internal("timer store " + b->node->timer_store + " is missing");
  auto it = timers->Range(Context::DueFrom(b->timer_floor), Context::kDueEnd);
  if (!it->Valid()) {
    KCQRS_RETURN_IF_ERROR(it->status());
    b->next_due = kNoTimer;
    return Status::OK();
  }
  b->next_due = Context::ParseDue(it->key().substr(1, Context::kDueDigits));
  return Status::OK();
}

bool Task::TimersDue() {
  if (!has_timers_) return false;
  for (Bound& b : processors_) {
    if (b.node->timer_store.empty()) continue;
    if (b.next_due == kUnknownDue && !ReadNextDue(&b).ok()) return true;  // FireTimers says why
    if (b.next_due != kNoTimer && b.next_due <= TimerClock(b)) return true;
  }
  return false;
}

Status Task::FireTimers(int max) {
  for (Bound& b : processors_) {
    if (b.node->timer_store.empty()) continue;
    KeyValueStore* timers = state_->Store(b.node->timer_store);
    for (int n = 0; n < max; ++n) {
      if (b.next_due == kUnknownDue) KCQRS_RETURN_IF_ERROR(ReadNextDue(&b));
      const int64_t now = TimerClock(b);
      if (b.next_due == kNoTimer || b.next_due > now) break;
      std::string key;
      int64_t due = 0;
      {
        auto it = timers->Range(Context::DueFrom(b.timer_floor), Context::kDueEnd);
        if (!it->Valid()) {
          KCQRS_RETURN_IF_ERROR(it->status());
          b.next_due = kNoTimer;
          break;
        }
        std::string_view k = it->key();
        due = Context::ParseDue(k.substr(1, Context::kDueDigits));
        key = std::string(k.substr(1 + Context::kDueDigits));
      }
      if (due > now) {
        b.next_due = due;
        break;
      }
      // Raised before the firing, which may set a timer earlier still
      // (SetTimer lowers the floor again).
      b.timer_floor = std::max(b.timer_floor, due);
      KCQRS_RETURN_IF_ERROR(FireTimer(&b, key, due));
      b.next_due = kUnknownDue;  // the firing may have set timers
    }
  }
  return Status::OK();
}

Status Task::FireTimer(Bound* b, const std::string& key, int64_t due) {
  context_->Begin(due, nullptr);
  parsed_->Reset();
  context_->SetNode(b);
  auto remove = [&]() -> Status {
    KeyValueStore* timers = context_->GetStateStore(b->node->timer_store);
    KCQRS_RETURN_IF_ERROR(timers->Delete(Context::TimerKey(key)));
    return timers->Delete(Context::DueKey(due, key));
  };
  Status s = remove();
  if (s.ok()) {
    try {
      s = b->processor->OnTimer(key, due, *context_);
    } catch (const std::exception& e) {
      s = FromException(e.what());
    } catch (...) {
      s = FromException("(not a std::exception)");
    }
    // A child it forwarded to failed: so did the firing, whatever OnTimer
    // returned.
    if (const auto& child = context_->child_failure()) {
      s = child->second.WithContext(child->first);
    }
  }
  if (s.ok()) s = context_->CheckSizes();
  if (s.ok()) {
    context_->SetNode(nullptr);
    return context_->Release();
  }
  // The effects go, the timer's removal stays: a timer that fails would
  // otherwise fire again at every poll, forever.
  context_->Drop();
  if (b->listener != nullptr) b->listener->RecordDropped();
  if (topology_->errors().on_error == ErrorPolicy::OnError::kFail) {
    context_->SetNode(nullptr);
    return s.WithContext(b->name + ", timer '" + key + "' due at " + std::to_string(due));
  }
  Status removed = remove();
  context_->SetNode(nullptr);
  KCQRS_RETURN_IF_ERROR(removed);
  KCQRS_RETURN_IF_ERROR(context_->Release());
  ++stats_.dead_letters;
  if (metrics_ != nullptr) {
    auto d = dead_letters_.find(b->name);
    if (d == dead_letters_.end()) {
      d = dead_letters_.emplace(b->name, metrics_->DeadLetters(name_, b->name)).first;
    }
    d->second.Increment();
  }
  // The dead letter names the timer: its store, key and due time.
  Record timer;
  timer.topic = b->node->timer_store;
  timer.partition = id_.partition;
  timer.offset = -1;
  timer.key = key;
  timer.value = "{\"timer\":" + kcqrs::Json(key).dump() + ",\"due\":" + std::to_string(due) + "}";
  timer.timestamp_ms = due;
  return DeadLetter(timer, b->name, s);
}

Status Task::DeadLetter(const Record& record, const std::string& processor,
                        const Status& error) {
  std::vector<Header> h = record.headers;
  if (h.empty()) collector_->SkippedHeaders(record, &h);
  h.push_back({headers::kError, error.message()});
  h.push_back({headers::kProcessor, processor});
  h.push_back({headers::kSourceTopic, record.topic});
  h.push_back({headers::kSourcePartition, std::to_string(record.partition)});
  h.push_back({headers::kSourceOffset, std::to_string(record.offset)});
  std::optional<std::string> value = record.value;
  const size_t max = MaxRecordBytes(topology_->errors().dead_letter_topic);
  if (max > 0) {
    size_t size = (record.key ? record.key->size() : 0) + (value ? value->size() : 0);
    for (const Header& x : h) size += x.key.size() + (x.value ? x.value->size() : 0);
    if (size > max) {
      // The dead letter must be writable, or the partition stalls on it: keep
      // the headers (the reason and where the record is) and drop the value,
      // which stays readable at its source offset.
      value.reset();
      h.push_back({headers::kValueDropped, "the value did not fit in a dead letter"});
    }
  }
  collector_->DeadLettered(record, error.message());
  return collector_->Send(Outgoing(topology_->errors().dead_letter_topic, record.key,
                                   std::move(value), std::move(h), record.timestamp_ms));
}

size_t MaxRecordBytesFor(const std::map<std::string, std::string>& kafka_properties) {
  // The producer refuses a record above message.max.bytes (librdkafka's
  // default 1,000,000, below the broker's default max.message.bytes of
  // 1,048,588); keep a margin for the record's framing.
  size_t max = 1'000'000;
  auto it = kafka_properties.find("message.max.bytes");
  if (it != kafka_properties.end()) {
    try {
      max = static_cast<size_t>(std::stoull(it->second));
    } catch (...) {
      // librdkafka refuses the setting itself, with its own message.
    }
  }
  return max > kRecordFramingBytes ? max - kRecordFramingBytes : max;
}

kafka::OutgoingRecord Task::Outgoing(const std::string& topic, std::optional<std::string> key,
                                     std::optional<std::string> value,
                                     std::vector<Header> headers, int64_t timestamp_ms) const {
  kafka::OutgoingRecord out;
  out.topic = topic;
  const int partitions = topology_->partitions(topic);
  if (key && partitions > 0) out.partition = PartitionForKey(*key, partitions);
  out.key = std::move(key);
  out.value = std::move(value);
  out.headers = std::move(headers);
  out.timestamp_ms = timestamp_ms;
  return out;
}

Status Task::Append(const std::string& store, std::string_view key,
                    std::optional<std::string_view> value) {
  kafka::OutgoingRecord& out = changelog_record_;
  // A commit hands on a store's writes together: the topic is looked up
  // when the store changes.
  if (changelog_record_store_ == nullptr || *changelog_record_store_ != store) {
    auto topic = changelog_topics_.find(store);
    out.topic = topic != changelog_topics_.end() ? topic->second : topology_->ChangelogTopic(store);
    changelog_record_store_ = topic != changelog_topics_.end() ? &topic->first : nullptr;
  }
  out.partition = id_.partition;
  if (!out.key) out.key.emplace();
  out.key->assign(key);
  if (value) {
    if (!out.value) out.value.emplace();
    out.value->assign(*value);
  } else {
    out.value.reset();  // a tombstone
  }
  return collector_->SendCopyOf(out);
}

std::vector<state::TopicPartition> Task::ChangelogPartitions() const {
  std::vector<state::TopicPartition> out;
  for (const std::string& store : subtopology_.stores) {
    out.push_back(state::TopicPartition{topology_->ChangelogTopic(store), id_.partition});
  }
  return out;
}

std::string Task::StoreOfChangelog(const std::string& topic) const {
  for (const std::string& store : subtopology_.stores) {
    if (topology_->ChangelogTopic(store) == topic) return store;
  }
  return "";
}

}  // namespace kcqrs::engine
