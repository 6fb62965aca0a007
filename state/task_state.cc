#include "state/task_state.h"

#include <cassert>
#include <utility>
#include <vector>

#include "state/key_ranges.h"
#include "state/value_cache.h"

namespace kcqrs::state {
namespace {

// A rough per-entry cost of a hash node holding two std::strings, so
// that buffered_bytes() tracks the heap for many small writes too.
constexpr size_t kEntryOverhead = 96;

size_t EntryBytes(std::string_view key,
                  const std::optional<std::string>& value) {
  return key.size() + (value ? value->size() : 0) + kEntryOverhead;
}

using BufferedEntries =
    std::vector<std::pair<std::string, std::optional<std::string>>>;

// Merges a copy of the buffered writes of a range with an iterator over the
// committed data of the same range. Where both have a key the buffer wins;
// a buffered delete hides the committed key.
class MergingIterator final : public KeyValueIterator {
 public:
  MergingIterator(BufferedEntries buffered,
                  std::unique_ptr<KeyValueIterator> committed)
      : buffered_(std::move(buffered)), committed_(std::move(committed)) {
    Settle();
  }

  bool Valid() const override { return current_ != Source::kNone; }

  void Next() override {
    if (current_ == Source::kBuffer) {
      AdvanceBuffer();
    } else if (current_ == Source::kCommitted) {
      committed_->Next();
    }
    Settle();
  }

  std::string_view key() const override {
    return current_ == Source::kBuffer ? std::string_view(buffered_[pos_].first)
                                       : committed_->key();
  }
  std::string_view value() const override {
    return current_ == Source::kBuffer
               ? std::string_view(*buffered_[pos_].second)
               : committed_->value();
  }
  Status status() const override { return committed_->status(); }

 private:
  enum class Source { kNone, kBuffer, kCommitted };

  // Moves past the buffered entry at pos_, and past the committed entry with
  // the same key, which it replaces or deletes.
  void AdvanceBuffer() {
    if (committed_->Valid() && committed_->key() == buffered_[pos_].first)
      committed_->Next();
    ++pos_;
  }

  // Positions on the smallest visible key of both sides.
  void Settle() {
    while (true) {
      const bool has_buffer = pos_ < buffered_.size();
      const bool has_committed = committed_->Valid();
      if (!has_buffer && !has_committed) {
        current_ = Source::kNone;
        return;
      }
      if (!has_buffer ||
          (has_committed && committed_->key() < buffered_[pos_].first)) {
        current_ = Source::kCommitted;
        return;
      }
      if (buffered_[pos_].second) {
        current_ = Source::kBuffer;
        return;
      }
      AdvanceBuffer();  // a delete: hide it and whatever it deletes
    }
  }

  BufferedEntries buffered_;
  size_t pos_ = 0;
  std::unique_ptr<KeyValueIterator> committed_;
  Source current_ = Source::kNone;
};

}  // namespace

// The KeyValueStore a processor gets: a view over one store's slice of the
// task's write buffer and the committed Reader. Owned by its TaskState;
// single-threaded like it.
class TransactionalStore final : public BufferedStore {
 public:
  TransactionalStore(TaskState* state, std::string name, StoreWrites* writes,
                     std::shared_ptr<const ReadOnlyKeyValueStore> committed,
                     size_t cache_bytes)
      : state_(state),
        name_(std::move(name)),
        writes_(writes),
        committed_(std::move(committed)),
        cache_(cache_bytes) {}

  const std::string& name() const override { return name_; }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    if (const std::optional<std::string>* written = writes_->Find(key)) return *written;
    if (const std::optional<std::string>* cached = cache_.Find(key)) return *cached;
    auto read = committed_->Get(key);
    if (read.ok()) cache_.Put(std::string(key), *read);
    return read;
  }

  ValueCache& cache() const { return cache_; }

  // Hits and misses since the previous call.
  TaskState::CacheStats TakeCacheStats() {
    TaskState::CacheStats out;
    out.hits = cache_.hits() - reported_hits_;
    out.misses = cache_.misses() - reported_misses_;
    out.bytes = cache_.bytes();
    reported_hits_ = cache_.hits();
    reported_misses_ = cache_.misses();
    return out;
  }

  std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                          std::string_view to) const override {
    BufferedEntries buffered;
    if (!EmptyRange(from, to)) {
      const auto [first, last] = writes_->RangeOf(from, to);
      const std::vector<const StoreWrites::Entry*>& sorted = writes_->Sorted();
      buffered.reserve(last - first);
      for (size_t i = first; i < last; ++i) buffered.emplace_back(*sorted[i]);
    }
    return std::make_unique<MergingIterator>(std::move(buffered),
                                             committed_->Range(from, to));
  }

  std::unique_ptr<KeyValueIterator> Prefix(
      std::string_view prefix) const override {
    return Range(prefix, PrefixSuccessor(prefix));
  }

  // Committed estimate plus buffered puts; overwrites of committed keys count
  // twice, buffered deletes are not subtracted. An estimate, as documented.
  uint64_t ApproximateNumEntries() const override {
    uint64_t n = committed_->ApproximateNumEntries();
    n += writes_->puts();
    return n;
  }

  Status Put(std::string_view key, std::string_view value) override {
    return Take(std::string(key), std::string(value));
  }

  Status Delete(std::string_view key) override { return Take(std::string(key), std::nullopt); }

  Status Take(std::string key, std::optional<std::string> value) override {
    // The changelog gets the last value of the key at FlushChangelog.
    if (state_->sink_ != nullptr) state_->unflushed_ = true;
    const size_t entry_bytes = EntryBytes(key, value);
    const size_t value_bytes = value ? value->size() : 0;
    const StoreWrites::Replaced replaced = writes_->Put(std::move(key), std::move(value));
    if (replaced.existed) {
      // The key and the entry's overhead were counted when it was added.
      state_->buffered_bytes_ += value_bytes;
      state_->buffered_bytes_ -= replaced.value_bytes;
    } else {
      state_->buffered_bytes_ += entry_bytes;
      ++state_->buffered_entries_;
    }
    return Status::OK();
  }

 private:
  TaskState* const state_;
  const std::string name_;
  StoreWrites* const writes_;  // this store's entry in state_->buffer_
  const std::shared_ptr<const ReadOnlyKeyValueStore> committed_;
  // Committed values only: the buffer is in front of it, a commit writes
  // through it, a restore clears it.
  mutable ValueCache cache_;
  uint64_t reported_hits_ = 0;
  uint64_t reported_misses_ = 0;
};

TaskState::TaskState(std::unique_ptr<TaskStorage> storage, ChangelogSink* sink,
                     size_t cache_bytes)
    : storage_(std::move(storage)), sink_(sink) {
  assert(storage_ != nullptr);
  const size_t stores = storage_->store_names().size();
  const size_t per_store = stores == 0 ? 0 : cache_bytes / stores;
  for (const std::string& name : storage_->store_names()) {
    StoreWrites* writes = &buffer_[name];
    stores_.emplace(name, std::make_unique<TransactionalStore>(
                              this, name, writes, storage_->Reader(name), per_store));
  }
}

TaskState::CacheStats TaskState::cache_stats() const {
  CacheStats out;
  for (const auto& [name, store] : stores_) {
    out.hits += store->cache().hits();
    out.misses += store->cache().misses();
    out.bytes += store->cache().bytes();
  }
  return out;
}

TaskState::CacheStats TaskState::TakeCacheStats(const std::string& store) {
  auto it = stores_.find(store);
  return it == stores_.end() ? CacheStats() : it->second->TakeCacheStats();
}

TaskState::~TaskState() = default;

BufferedStore* TaskState::Store(const std::string& name) {
  auto it = stores_.find(name);
  return it == stores_.end() ? nullptr : it->second.get();
}

Status TaskState::FlushChangelog() {
  if (sink_ == nullptr || !unflushed_) return Status::OK();
  for (const auto& [store, writes] : buffer_) {
    for (const StoreWrites::Entry* e : writes.Sorted()) {
      const auto& [key, value] = *e;
      Status s = value ? sink_->Append(store, key, std::string_view(*value))
                       : sink_->Append(store, key, std::nullopt);
      if (!s.ok()) return s.WithContext("changelog of store " + store);
    }
  }
  unflushed_ = false;
  return Status::OK();
}

Status TaskState::Commit(const Checkpoint& checkpoint) {
  if (unflushed_) {
    // State the changelog does not have could never be restored.
    return Status::FailedPrecondition(
        "commit of state whose writes were not handed to the changelog "
        "(FlushChangelog before the Kafka commit)");
  }
  KCQRS_RETURN_IF_ERROR(storage_->Apply(buffer_, checkpoint));
  // Applied: the values go on to the caches (moved, not copied), and the
  // buffer has nothing left to say.
  for (auto& [name, writes] : buffer_) {
    auto store = stores_.find(name);
    if (store == stores_.end()) continue;
    ValueCache& cache = store->second->cache();
    writes.TakeAll([&cache](std::string key, std::optional<std::string> value) {
      cache.Put(std::move(key), std::move(value));
    });
  }
  Abort();
  return Status::OK();
}

void TaskState::Abort() {
  // Clear the per-store maps but keep the entries: stores point at them.
  for (auto& [name, writes] : buffer_) writes.Clear();
  buffered_entries_ = 0;
  buffered_bytes_ = 0;
  unflushed_ = false;
}

Status TaskState::RestoreBatch(
    const std::string& store,
    const std::vector<std::pair<std::string, std::optional<std::string>>>&
        records,
    const TopicPartition& changelog, int64_t next_offset) {
  if (dirty()) {
    return Status::FailedPrecondition(
        "restore of store " + store + " from " + changelog.topic + "/" +
        std::to_string(changelog.partition) + " while writes are buffered");
  }
  WriteSet writes;
  StoreWrites& store_writes = writes[store];
  for (const auto& [key, value] : records)
    store_writes.Put(key, value);  // later records win
  Checkpoint checkpoint;
  checkpoint.changelog_offsets[changelog] = next_offset;
  // Storage changes beneath the cache.
  if (auto it = stores_.find(store); it != stores_.end()) it->second->cache().Clear();
  return storage_->Apply(writes, checkpoint)
      .WithContext("restoring store " + store + " from " + changelog.topic +
                   "/" + std::to_string(changelog.partition) +
                   " up to offset " + std::to_string(next_offset));
}

}  // namespace kcqrs::state
