#include "state/value_cache.h"

#include <utility>

namespace kcqrs::state {

// A hash node with two std::strings and its bucket slot, roughly; small
// values are mostly this overhead, so it must count.
size_t ValueCache::EntryBytes(const std::string& key, const std::optional<std::string>& value) {
  constexpr size_t kNodeOverhead = 112;
  return kNodeOverhead + key.capacity() + (value ? value->capacity() : 0);
}

const std::optional<std::string>* ValueCache::Find(std::string_view key) {
  if (budget_ == 0) return nullptr;
  if (auto it = young_.find(key); it != young_.end()) {
    ++hits_;
    return &it->second;
  }
  auto old = old_.find(key);
  if (old == old_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  // Read again: young once more, moved without copying.
  auto node = old_.extract(old);
  const size_t bytes = EntryBytes(node.key(), node.mapped());
  old_bytes_ -= bytes;
  young_bytes_ += bytes;
  auto inserted = young_.insert(std::move(node));
  const std::optional<std::string>* found = &inserted.position->second;
  if (young_bytes_ * 2 > budget_) {
    // Ageing drops the old map and moves the young one (node addresses stay).
    AgeIfFull();
  }
  return found;
}

void ValueCache::Put(std::string key, std::optional<std::string> value) {
  if (budget_ == 0) return;
  const size_t bytes = EntryBytes(key, value);
  if (bytes * 2 > budget_) {  // larger than a generation: never cached
    if (auto it = young_.find(key); it != young_.end()) {
      young_bytes_ -= EntryBytes(it->first, it->second);
      young_.erase(it);
    } else if (auto old = old_.find(key); old != old_.end()) {
      old_bytes_ -= EntryBytes(old->first, old->second);
      old_.erase(old);
    }
    return;
  }
  // A key is in one generation at most, and a commit's keys were mostly
  // just read (so young): one lookup for them, where there were three.
  // try_emplace leaves `key` alone when it finds it.
  auto [it, inserted] = young_.try_emplace(std::move(key));
  if (!inserted) {
    young_bytes_ -= EntryBytes(it->first, it->second);
    it->second = std::move(value);
    young_bytes_ += EntryBytes(it->first, it->second);
  } else {
    if (auto old = old_.find(it->first); old != old_.end()) {
      old_bytes_ -= EntryBytes(old->first, old->second);
      old_.erase(old);
    }
    it->second = std::move(value);
    young_bytes_ += bytes;
  }
  AgeIfFull();
}

void ValueCache::AgeIfFull() {
  if (young_bytes_ * 2 <= budget_) return;
  old_ = std::move(young_);
  old_bytes_ = young_bytes_;
  young_ = Map();
  young_bytes_ = 0;
}

void ValueCache::Clear() {
  young_ = Map();
  old_ = Map();
  young_bytes_ = 0;
  old_bytes_ = 0;
}

}  // namespace kcqrs::state
