#include "engine/serving/store_registry.h"

#include <queue>

#include "engine/codec/partitioner.h"

namespace kcqrs::engine {
namespace {

// Merges the iterators of several partitions in key order. Keys are unique
// across partitions (each key lives in one), so no de-duplication is needed.
class MergingIterator final : public KeyValueIterator {
 public:
  explicit MergingIterator(std::vector<std::unique_ptr<KeyValueIterator>> parts)
      : parts_(std::move(parts)) {
    for (size_t i = 0; i < parts_.size(); ++i) {
      if (parts_[i]->Valid()) {
        heap_.push(i);
      } else if (!parts_[i]->status().ok() && status_.ok()) {
        status_ = parts_[i]->status();
      }
    }
  }

  bool Valid() const override { return status_.ok() && !heap_.empty(); }
  void Next() override {
    size_t i = heap_.top();
    heap_.pop();
    parts_[i]->Next();
    if (parts_[i]->Valid()) {
      heap_.push(i);
    } else if (!parts_[i]->status().ok() && status_.ok()) {
      status_ = parts_[i]->status();
    }
  }
  std::string_view key() const override { return parts_[heap_.top()]->key(); }
  std::string_view value() const override { return parts_[heap_.top()]->value(); }
  Status status() const override { return status_; }

 private:
  struct Greater {
    const MergingIterator* self;
    bool operator()(size_t a, size_t b) const {
      return self->parts_[a]->key() > self->parts_[b]->key();
    }
  };
  std::vector<std::unique_ptr<KeyValueIterator>> parts_;
  std::priority_queue<size_t, std::vector<size_t>, Greater> heap_{Greater{this}};
  Status status_;
};

class RoutingView final : public ReadOnlyKeyValueStore {
 public:
  RoutingView(std::string name, int partitions,
              std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>> hosted)
      : name_(std::move(name)), partitions_(partitions), hosted_(std::move(hosted)) {}

  const std::string& name() const override { return name_; }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    const int32_t p = partitions_ > 0 ? PartitionForKey(key, partitions_) : 0;
    auto it = hosted_.find(p);
    if (it != hosted_.end()) {
      auto v = it->second->Get(key);
      if (!v.ok() || v->has_value()) return v;
    }
    // Producers that do not partition by murmur2 (librdkafka's default is
    // CRC32) put keys elsewhere; look in the other hosted partitions.
    for (const auto& [partition, reader] : hosted_) {
      if (partition == p) continue;
      auto v = reader->Get(key);
      if (!v.ok() || v->has_value()) return v;
    }
    if (it == hosted_.end() && hosted_.size() < static_cast<size_t>(partitions_)) {
      return Status::Unavailable("partition " + std::to_string(p) + " of store " + name_ +
                                 " is not hosted by this instance (restoring, or owned by "
                                 "another instance)");
    }
    return std::optional<std::string>();
  }

  std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                          std::string_view to) const override {
    std::vector<std::unique_ptr<KeyValueIterator>> parts;
    for (const auto& [p, reader] : hosted_) parts.push_back(reader->Range(from, to));
    return std::make_unique<MergingIterator>(std::move(parts));
  }

  std::unique_ptr<KeyValueIterator> Prefix(std::string_view prefix) const override {
    std::vector<std::unique_ptr<KeyValueIterator>> parts;
    for (const auto& [p, reader] : hosted_) parts.push_back(reader->Prefix(prefix));
    return std::make_unique<MergingIterator>(std::move(parts));
  }

  uint64_t ApproximateNumEntries() const override {
    uint64_t n = 0;
    for (const auto& [p, reader] : hosted_) n += reader->ApproximateNumEntries();
    return n;
  }

 private:
  std::string name_;
  int partitions_;
  std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>> hosted_;
};

}  // namespace

void StoreRegistry::Add(const std::string& store, int32_t partition,
                        std::shared_ptr<const ReadOnlyKeyValueStore> reader) {
  std::lock_guard<std::mutex> lock(mu_);
  readers_[store][partition] = std::move(reader);
  views_.erase(store);
}

void StoreRegistry::Remove(const std::string& store, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = readers_.find(store);
  if (it != readers_.end()) it->second.erase(partition);
  views_.erase(store);
  auto p = positions_.find(store);
  if (p != positions_.end()) {
    for (auto& [topic, parts] : p->second) parts.erase(partition);
  }
}

void StoreRegistry::SetPosition(const std::string& store, int32_t partition,
                                const std::string& topic, int64_t next_offset) {
  std::lock_guard<std::mutex> lock(mu_);
  positions_[store][topic][partition] = next_offset;
}

std::map<std::string, std::map<int32_t, int64_t>> StoreRegistry::Positions(
    const std::string& store) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find(store);
  if (it == positions_.end()) return {};
  return it->second;
}

std::shared_ptr<const ReadOnlyKeyValueStore> StoreRegistry::View(
    const std::string& store, std::vector<int32_t>* missing) const {
  missing->clear();
  auto p = partitions_.find(store);
  if (p == partitions_.end()) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  auto readers = readers_.find(store);
  for (int32_t partition = 0; partition < p->second; ++partition) {
    if (readers == readers_.end() || !readers->second.count(partition)) {
      missing->push_back(partition);
    }
  }
  return ViewLocked(store, p->second);
}

std::shared_ptr<const ReadOnlyKeyValueStore> StoreRegistry::ViewOf(
    const std::string& store, const std::set<int32_t>& only,
    std::vector<int32_t>* missing) const {
  missing->clear();
  auto p = partitions_.find(store);
  if (p == partitions_.end()) return nullptr;
  std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>> hosted;
  std::lock_guard<std::mutex> lock(mu_);
  auto readers = readers_.find(store);
  for (int32_t partition : only) {
    if (readers != readers_.end()) {
      auto r = readers->second.find(partition);
      if (r != readers->second.end()) {
        hosted.emplace(partition, r->second);
        continue;
      }
    }
    missing->push_back(partition);
  }
  return std::make_shared<RoutingView>(store, p->second, std::move(hosted));
}

std::shared_ptr<const ReadOnlyKeyValueStore> StoreRegistry::View(const std::string& store) const {
  auto p = partitions_.find(store);
  if (p == partitions_.end()) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  return ViewLocked(store, p->second);
}

std::shared_ptr<const ReadOnlyKeyValueStore> StoreRegistry::ViewLocked(const std::string& store,
                                                                       int partitions) const {
  auto cached = views_.find(store);
  if (cached != views_.end()) return cached->second;
  auto readers = readers_.find(store);
  auto view = std::make_shared<RoutingView>(
      store, partitions,
      readers == readers_.end()
          ? std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>>()
          : readers->second);
  views_[store] = view;
  return view;
}

std::map<int32_t, std::shared_ptr<const ReadOnlyKeyValueStore>> StoreRegistry::Hosted(
    const std::string& store) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = readers_.find(store);
  if (it == readers_.end()) return {};
  return it->second;
}

int StoreRegistry::partitions(const std::string& store) const {
  auto it = partitions_.find(store);
  return it == partitions_.end() ? 0 : it->second;
}

std::vector<std::string> StoreRegistry::stores() const {
  std::vector<std::string> out;
  for (const auto& [name, n] : partitions_) out.push_back(name);
  return out;
}

}  // namespace kcqrs::engine
