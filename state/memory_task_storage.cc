// The memory implementation of TaskStorage: same contract as RocksDB, no
// durability. For tests and the TopologyTestDriver.

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "state/key_ranges.h"
#include "state/task_storage.h"

namespace kcqrs::state {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

Status ClosedError() {
  return Status::Unavailable(
      "memory task storage is closed (the task was closed or migrated)");
}

// One version of a store's map, and how many reader snapshots hold it.
struct Version {
  explicit Version(Map m) : map(std::move(m)) {}
  Map map;
  // Snapshots of this version not yet dropped. Raised only under Shared::mu,
  // so a zero read under `mu` stays zero until `mu` is released. A snapshot
  // lowers it with release order when dropped, and Apply reads it with
  // acquire order, so the reader's last reads of `map` happen before Apply's
  // writes to it. (This replaces shared_ptr::use_count() plus a fence:
  // use_count() is a relaxed load, and ThreadSanitizer does not model
  // standalone fences, so it reported that correct pattern as a race.)
  mutable std::atomic<long> readers{0};
};

// A reader's hold on one version: what a snapshot's shared_ptr owns.
class Lease {
 public:
  explicit Lease(std::shared_ptr<const Version> version)
      : version_(std::move(version)) {
    version_->readers.fetch_add(1, std::memory_order_relaxed);
  }
  ~Lease() { version_->readers.fetch_sub(1, std::memory_order_release); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  const Map& map() const { return version_->map; }

 private:
  const std::shared_ptr<const Version> version_;
};

// The committed data, shared with the reader views. A reader takes a lease
// on a store's current version under `mu` and then reads without any lock,
// so an iterator holds a consistent snapshot for as long as it lives. Apply,
// under `mu`, changes a version in place when no reader holds it, and
// otherwise changes a copy and swaps the pointer (copy-on-write). Without the
// in-place case every commit would copy whole stores: the TopologyTestDriver
// commits after every input, which made a test of N records cost O(N^2).
struct Shared {
  mutable std::mutex mu;
  bool closed = false;  // guarded by mu
  std::map<std::string, std::shared_ptr<Version>, std::less<>>
      stores;  // guarded by mu

  // The current map of `store`, or null when closed.
  std::shared_ptr<const Map> Snapshot(const std::string& store) const {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return nullptr;
    auto lease = std::make_shared<Lease>(stores.at(store));
    return std::shared_ptr<const Map>(lease, &lease->map());
  }
};

class MapIterator final : public KeyValueIterator {
 public:
  // An iterator that is done at once, with `status`.
  explicit MapIterator(Status status) : status_(std::move(status)) {}

  MapIterator(std::shared_ptr<const Map> map, std::string_view from,
              std::string_view to)
      : map_(std::move(map)) {
    it_ = map_->lower_bound(from);
    end_ = to.empty() ? map_->end() : map_->lower_bound(to);
    if (EmptyRange(from, to)) it_ = end_;
  }

  bool Valid() const override { return map_ && it_ != end_; }
  void Next() override {
    if (Valid()) ++it_;
  }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return status_; }

 private:
  std::shared_ptr<const Map> map_;  // keeps the snapshot alive
  Map::const_iterator it_;
  Map::const_iterator end_;
  Status status_;
};

class MemoryReader final : public ReadOnlyKeyValueStore {
 public:
  MemoryReader(std::shared_ptr<const Shared> shared, std::string name)
      : shared_(std::move(shared)), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    std::shared_ptr<const Map> map = shared_->Snapshot(name_);
    if (!map) return ClosedError();
    auto it = map->find(key);
    if (it == map->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                          std::string_view to) const override {
    std::shared_ptr<const Map> map = shared_->Snapshot(name_);
    if (!map) return std::make_unique<MapIterator>(ClosedError());
    return std::make_unique<MapIterator>(std::move(map), from, to);
  }

  std::unique_ptr<KeyValueIterator> Prefix(
      std::string_view prefix) const override {
    return Range(prefix, PrefixSuccessor(prefix));
  }

  uint64_t ApproximateNumEntries() const override {
    std::shared_ptr<const Map> map = shared_->Snapshot(name_);
    return map ? map->size() : 0;
  }

 private:
  const std::shared_ptr<const Shared> shared_;
  const std::string name_;
};

class MemoryTaskStorage final : public TaskStorage {
 public:
  explicit MemoryTaskStorage(const std::vector<std::string>& store_names)
      : shared_(std::make_shared<Shared>()) {
    for (const std::string& name : store_names) {
      if (std::find(store_names_.begin(), store_names_.end(), name) !=
          store_names_.end()) {
        continue;
      }
      store_names_.push_back(name);
      shared_->stores.emplace(name, std::make_shared<Version>(Map()));
      readers_.emplace(name, std::make_shared<MemoryReader>(shared_, name));
    }
  }
  ~MemoryTaskStorage() override { (void)Close(); }

  const std::vector<std::string>& store_names() const override {
    return store_names_;
  }

  Result<Checkpoint> ReadCheckpoint() const override {
    if (closed_) return ClosedError();
    return checkpoint_;
  }

  Status Apply(const WriteSet& writes, const Checkpoint& checkpoint) override {
    if (closed_)
      return Status::FailedPrecondition("apply to closed memory task storage");
    for (const auto& [store, store_writes] : writes) {
      if (!store_writes.empty() &&
          std::find(store_names_.begin(), store_names_.end(), store) ==
              store_names_.end()) {
        return Status::InvalidArgument("apply to unknown store '" + store +
                                       "' in memory task storage");
      }
    }
    std::lock_guard<std::mutex> lock(shared_->mu);
    for (const auto& [store, store_writes] : writes) {
      if (store_writes.empty()) continue;
      std::shared_ptr<Version>& version = shared_->stores.at(store);
      // Leases are taken only under `mu`, so a count of zero cannot grow
      // meanwhile: nobody else can see this map. (The count may be stale
      // high while a reader drops its lease; then we copy needlessly.)
      if (version->readers.load(std::memory_order_acquire) != 0) {
        version = std::make_shared<Version>(version->map);
      }
      Map* map = &version->map;
      for (const StoreWrites::Entry* e : store_writes.Sorted()) {
        const auto& [key, value] = *e;
        if (value) {
          (*map)[key] = *value;
        } else {
          map->erase(key);
        }
      }
    }
    MergeCheckpoint(checkpoint, &checkpoint_);
    return Status::OK();
  }

  std::shared_ptr<const ReadOnlyKeyValueStore> Reader(
      const std::string& store) const override {
    auto it = readers_.find(store);
    if (it == readers_.end()) return nullptr;
    return it->second;
  }

  Status Close() override {
    std::lock_guard<std::mutex> lock(shared_->mu);
    closed_ = true;
    shared_->closed = true;
    return Status::OK();
  }

 private:
  const std::shared_ptr<Shared> shared_;
  std::vector<std::string> store_names_;
  Checkpoint checkpoint_;
  bool closed_ = false;  // owner thread's copy of shared_->closed
  std::map<std::string, std::shared_ptr<const ReadOnlyKeyValueStore>,
           std::less<>>
      readers_;
};

}  // namespace

std::unique_ptr<TaskStorage> TaskStorage::OpenMemory(
    const std::vector<std::string>& store_names) {
  return std::make_unique<MemoryTaskStorage>(store_names);
}

}  // namespace kcqrs::state
