// ValueCache: committed values of one store kept in memory in front of its
// TaskStorage, so that a key read again soon (an aggregate's next command, a
// view's next event) costs a hash lookup instead of a RocksDB read, whose
// memtable and block lookups were a fifth of a command's time.
//
// Holds what storage holds, absent keys included (a new aggregate's first
// read is a miss too). TaskState keeps it true: a miss read from storage is
// added, a commit writes its applied values through, a restore clears it.
//
// Bounded by bytes with two generations, an approximate LRU that costs no
// list node per entry: new and re-read entries go to the young map; when it
// holds half the budget it becomes the old map and the previous old map is
// dropped, and a hit in the old map moves the entry back to the young one.
// Memory stays below the budget plus the hash tables' own overhead, which
// the per-entry estimate includes.
//
// Thread-safety: none; the owning stream thread only.
#ifndef KCQRS_STATE_VALUE_CACHE_H_
#define KCQRS_STATE_VALUE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kcqrs::state {

class ValueCache {
 public:
  // A budget of 0 caches nothing.
  explicit ValueCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The cached value of `key` (nullopt inside: cached as absent), or null
  // when it is not cached. Valid until the next call.
  const std::optional<std::string>* Find(std::string_view key);

  // Caches `value` for `key`, replacing what was cached.
  void Put(std::string key, std::optional<std::string> value);

  // Forgets everything (storage changed beneath it).
  void Clear();

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  size_t bytes() const { return young_bytes_ + old_bytes_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, std::optional<std::string>, Hash, std::equal_to<>>;

  static size_t EntryBytes(const std::string& key, const std::optional<std::string>& value);
  void AgeIfFull();

  const size_t budget_;
  Map young_;
  Map old_;
  size_t young_bytes_ = 0;
  size_t old_bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_VALUE_CACHE_H_
