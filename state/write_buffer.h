// StoreWrites: the writes of one store buffered since the last commit, a
// value to put or nullopt to delete, by key.
//
// A task reads its own writes on every record (an aggregate before its
// command, a view before its event) and writes on most, so lookups are
// hashed: a std::map's key comparisons, about a dozen per lookup in a
// buffer of a few thousand keys, were 7% of a command's instructions in
// micro_bench (callgrind). Key order, which a commit needs (RocksDB inserts
// a sorted batch into its memtable fastest, the changelog gets it in key
// order) and so does a range scan over the buffer, comes from an index of
// the entries sorted on demand: keys added since the last sort are sorted
// on their own and merged in, so a scan after every write (timers) sorts
// each key once, and pays a linear merge rather than a sort of the whole.
//
// Entries are never erased one by one (a delete is a nullopt value), only
// all at once by Clear or TakeAll, so the index's pointers stay valid: a
// node of std::unordered_map does not move on rehash.
//
// Thread-safety: none; the owning stream thread only.
#ifndef KCQRS_STATE_WRITE_BUFFER_H_
#define KCQRS_STATE_WRITE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kcqrs::state {

class StoreWrites {
 public:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, std::optional<std::string>, StringHash,
                                 std::equal_to<>>;
  using Entry = Map::value_type;

  StoreWrites() = default;
  // Not copyable: the index points into the map.
  StoreWrites(const StoreWrites&) = delete;
  StoreWrites& operator=(const StoreWrites&) = delete;

  // The buffered write of `key` (nullopt inside: a delete), or null when the
  // key was not written. Valid until the next Put, Clear or TakeAll.
  const std::optional<std::string>* Find(std::string_view key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }

  // Buffers `value` for `key` (nullopt: a delete), replacing an earlier
  // write of the key. Returns the write it replaced, when there was one, so
  // the caller can keep its byte count.
  struct Replaced {
    bool existed = false;
    size_t value_bytes = 0;  // of the replaced value
  };
  Replaced Put(std::string key, std::optional<std::string> value) {
    auto [it, inserted] = map_.try_emplace(std::move(key));
    Replaced out;
    if (!inserted) {
      out.existed = true;
      out.value_bytes = it->second ? it->second->size() : 0;
    } else {
      keyed_.push_back(KeyedOf(&*it));
    }
    it->second = std::move(value);
    return out;
  }

  size_t size() const { return map_.size(); }
  // Entries that put a value (not deletes).
  size_t puts() const {
    size_t n = 0;
    for (const auto& [key, value] : map_) n += value.has_value() ? 1 : 0;
    return n;
  }
  bool empty() const { return map_.empty(); }

  // Every entry, in key order. Valid until the next Put, Clear or TakeAll.
  const std::vector<const Entry*>& Sorted() const;

  // The entries with from <= key < to (`to` empty: no upper bound), in key
  // order, as [first, last) of Sorted().
  std::pair<size_t, size_t> RangeOf(std::string_view from, std::string_view to) const;

  // Hands every entry to `take` (key and value moved out, in no particular
  // order) and empties the buffer.
  template <typename F>
  void TakeAll(F&& take) {
    keyed_.clear();
    index_.clear();
    sorted_ = 0;
    while (!map_.empty()) {
      auto node = map_.extract(map_.begin());
      take(std::move(node.key()), std::move(node.mapped()));
    }
  }

  void Clear() {
    map_.clear();
    keyed_.clear();
    index_.clear();
    sorted_ = 0;
  }

 private:
  // An entry with the first eight bytes of its key as a big-endian number,
  // so that sorting compares integers and reads the key itself only on a
  // tie (a commit's sort took 1,500 instructions a command comparing the
  // strings).
  struct Keyed {
    uint64_t prefix;
    const Entry* entry;
  };
  static Keyed KeyedOf(const Entry* e);
  static bool KeyedLess(const Keyed& a, const Keyed& b);

  Map map_;
  // Every entry of map_; [0, sorted_) in key order, the rest in the order
  // they were added.
  mutable std::vector<Keyed> keyed_;
  mutable size_t sorted_ = 0;
  // The entries of keyed_ once sorted, as Sorted() returns them.
  mutable std::vector<const Entry*> index_;
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_WRITE_BUFFER_H_
