// The JSON document type of kcqrs's internal modules: nlohmann::basic_json
// with objects kept as one sorted vector of members instead of std::map.
//
// Why: a command and the events it causes are parsed, changed and dumped as
// documents on every record, and std::map allocates one tree node per
// member, compares keys through pointer chases and frees node by node. A
// sorted vector allocates once per object (short keys stay in the string's
// own buffer), finds a key by binary search over contiguous memory, and
// keeps std::map's semantics where they matter: members iterate in key
// order (so DumpJson's canonical text is unchanged), each key once, and
// comparisons (==, <) agree with std::map's.
//
// What differs from std::map:
//   - inserting a member may move the others: a reference or iterator to a
//     member of an object is invalidated by inserting into or erasing from
//     that same object (as for nlohmann::ordered_json). Members of other
//     objects, nested ones included, stay where they are.
//   - a key inserted before the last one costs a move of the members after
//     it. Builders that add many members in no particular order (a parser,
//     a Lua table) append them with AppendUnsorted and call SortMembers once
//     when the object is complete, which keeps large, reverse-ordered input
//     O(n log n).
//
// Thread-safety: a value type; as std::vector.
#ifndef KCQRS_JSON_DOCUMENT_H_
#define KCQRS_JSON_DOCUMENT_H_

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace kcqrs {

// Byte-wise key order, as std::string's operator<. Most keys of a record
// differ in their first byte, which is compared here before a call to
// memcmp: lookups and insertions compare keys a few times each.
inline bool KeyLess(std::string_view a, std::string_view b) {
  if (!a.empty() && !b.empty() && a[0] != b[0]) {
    return static_cast<unsigned char>(a[0]) < static_cast<unsigned char>(b[0]);
  }
  return a < b;
}

// The object type nlohmann::basic_json instantiates as
// ObjectType<Key, T, Compare, Allocator>; Compare and Allocator are
// nlohmann's defaults and not used: keys compare as bytes (std::less<>), as
// std::map<std::string, ...> compares them.
template <class Key, class T, class IgnoredCompare = std::less<>, class IgnoredAllocator = void>
class SortedMembers : public std::vector<std::pair<Key, T>> {
  // Key types: whatever converts to a string_view (std::string, const
  // char*, std::string_view), which excludes iterators.
  template <class K>
  using Keyish = std::enable_if_t<std::is_convertible_v<const K&, std::string_view>>;

 public:
  using Container = std::vector<std::pair<Key, T>>;
  using key_type = Key;
  using mapped_type = T;
  using key_compare = std::less<>;
  using value_type = typename Container::value_type;
  using size_type = typename Container::size_type;
  using iterator = typename Container::iterator;
  using const_iterator = typename Container::const_iterator;

  SortedMembers() = default;
  template <class It>
  SortedMembers(It first, It last) {
    for (; first != last; ++first) AppendUnsorted(first->first, first->second);
    SortMembers();
  }
  SortedMembers(std::initializer_list<value_type> init) : SortedMembers(init.begin(), init.end()) {}

  // The member with `key`, or end().
  template <class K, class = Keyish<K>>
  iterator find(const K& key) {
    auto it = LowerBound(key);
    return it != this->end() && std::string_view(it->first) == std::string_view(key) ? it
                                                                                  : this->end();
  }
  template <class K, class = Keyish<K>>
  const_iterator find(const K& key) const {
    return const_cast<SortedMembers*>(this)->find(key);
  }
  template <class K, class = Keyish<K>>
  size_type count(const K& key) const {
    return find(key) == this->end() ? 0 : 1;
  }
  template <class K, class = Keyish<K>>
  bool contains(const K& key) const {
    return find(key) != this->end();
  }

  template <class K, class = Keyish<K>>
  T& at(const K& key) {
    auto it = find(key);
    if (it == this->end()) throw std::out_of_range("key not found");
    return it->second;
  }
  template <class K, class = Keyish<K>>
  const T& at(const K& key) const {
    return const_cast<SortedMembers*>(this)->at(key);
  }

  template <class K, class = Keyish<K>>
  T& operator[](K&& key) {
    return emplace(std::forward<K>(key)).first->second;
  }

  // As std::map::emplace: inserts {key, T(args...)} unless `key` is there.
  // Appending in key order is O(1).
  template <class K, class... Args, class = Keyish<K>>
  std::pair<iterator, bool> emplace(K&& key, Args&&... args) {
    const std::string_view k(key);
    if (this->empty() || KeyLess(this->back().first, k)) {
      ReserveFirst();
      this->Container::emplace_back(std::piecewise_construct,
                                    std::forward_as_tuple(std::forward<K>(key)),
                                    std::forward_as_tuple(std::forward<Args>(args)...));
      return {std::prev(this->end()), true};
    }
    auto it = LowerBound(k);
    if (std::string_view(it->first) == k) return {it, false};
    it = Container::emplace(it, std::piecewise_construct,
                            std::forward_as_tuple(std::forward<K>(key)),
                            std::forward_as_tuple(std::forward<Args>(args)...));
    return {it, true};
  }
  template <class K, class... Args, class = Keyish<K>>
  iterator emplace_hint(const_iterator, K&& key, Args&&... args) {
    return emplace(std::forward<K>(key), std::forward<Args>(args)...).first;
  }
  std::pair<iterator, bool> insert(const value_type& v) { return emplace(v.first, v.second); }
  std::pair<iterator, bool> insert(value_type&& v) {
    return emplace(std::move(v.first), std::move(v.second));
  }
  template <class It, class = typename std::iterator_traits<It>::iterator_category>
  void insert(It first, It last) {
    for (; first != last; ++first) insert(*first);
  }

  using Container::erase;
  template <class K, class = Keyish<K>>
  size_type erase(const K& key) {
    auto it = find(key);
    if (it == this->end()) return 0;
    Container::erase(it);
    return 1;
  }

  // For builders (see the file comment): adds a member without looking for
  // its key; the object is not valid until SortMembers().
  template <class K, class... Args>
  T& AppendUnsorted(K&& key, Args&&... args) {
    ReserveFirst();
    return this->Container::emplace_back(std::piecewise_construct,
                                         std::forward_as_tuple(std::forward<K>(key)),
                                         std::forward_as_tuple(std::forward<Args>(args)...))
        .second;
  }
  // Orders the members by key and, of members with the same key, keeps the
  // one appended last (the last duplicate wins, as in a JSON parser).
  void SortMembers() {
    const auto out_of_order = [](const value_type& a, const value_type& b) {
      return !KeyLess(a.first, b.first);
    };
    if (std::adjacent_find(this->begin(), this->end(), out_of_order) == this->end()) return;
    const auto less = [](const value_type& a, const value_type& b) {
      return KeyLess(a.first, b.first);
    };
    if (this->size() <= kInsertionSortMax) {
      // A record's few members: an insertion sort (stable, allocates
      // nothing), where std::stable_sort would allocate a buffer.
      for (auto it = std::next(this->begin()); it != this->end(); ++it) {
        if (!less(*it, *std::prev(it))) continue;
        value_type moved = std::move(*it);
        auto hole = it;
        do {
          *hole = std::move(*std::prev(hole));
          --hole;
        } while (hole != this->begin() && less(moved, *std::prev(hole)));
        *hole = std::move(moved);
      }
    } else {
      std::stable_sort(this->begin(), this->end(), less);
    }
    // Of each run of equal keys, keep the last.
    auto out = this->begin();
    for (auto it = this->begin(); it != this->end();) {
      auto next = std::next(it);
      while (next != this->end() && next->first == it->first) it = next++;
      if (out != it) *out = std::move(*it);
      ++out;
      it = next;
    }
    this->Container::erase(out, this->end());
  }

 private:
  // Room for the members of a typical record (a command, an event, a
  // view's row) at the first insertion, rather than growing 1, 2, 4, 8
  // and moving the members at each step.
  void ReserveFirst() {
    if (this->capacity() == 0) this->reserve(kFirstCapacity);
  }
  static constexpr size_t kFirstCapacity = 8;
  static constexpr size_t kInsertionSortMax = 16;

  iterator LowerBound(std::string_view key) {
    return std::lower_bound(this->begin(), this->end(), key,
                            [](const value_type& v, std::string_view k) {
                              return KeyLess(v.first, k);
                            });
  }
};

// The document type: nlohmann's JSON with SortedMembers objects.
using Json = nlohmann::basic_json<SortedMembers>;

}  // namespace kcqrs

NLOHMANN_JSON_NAMESPACE_BEGIN

// How a kcqrs::Json value frees what it holds. nlohmann's own version moves
// every member of an object or array to a heap-allocated stack before
// freeing it, so that destroying a deeply nested document never recurses:
// one allocation (and a move of each member) for every container freed,
// which made destruction a tenth of a command's instructions. Here only
// containers nested in the one being freed go to such a stack, and their
// own nested containers with them, so a flat object (a command, an event,
// a view's row) frees without allocating and nothing recurses deeper than
// one level, however deep the document. Declared before any use of the type
// instantiates nlohmann's version (this header is the only way to it).
template <>
inline void basic_json<kcqrs::SortedMembers>::json_value::destroy(value_t t) {
  using Self = basic_json<kcqrs::SortedMembers>;
  if (t == value_t::object || t == value_t::array) {
    std::vector<Self> stack;
    const auto take_nested = [&stack](Self::object_t* members, Self::array_t* items) {
      const auto take = [&stack](Self& child) {
        if (child.is_structured() && !child.empty()) stack.push_back(std::move(child));
      };
      if (members != nullptr) {
        for (auto& member : *members) take(member.second);
      } else {
        for (Self& item : *items) take(item);
      }
    };
    if (t == value_t::object) {
      take_nested(object, nullptr);
    } else {
      take_nested(nullptr, array);
    }
    while (!stack.empty()) {
      Self item(std::move(stack.back()));
      stack.pop_back();
      take_nested(item.get_ptr<Self::object_t*>(), item.get_ptr<Self::array_t*>());
      // `item` now holds no non-empty container: freeing it does not recurse.
    }
  }
  // Each value was made by nlohmann's create<T>() with std::allocator<T>.
  const auto release = [](auto* value) {
    std::allocator<std::remove_pointer_t<decltype(value)>> alloc;
    std::allocator_traits<decltype(alloc)>::destroy(alloc, value);
    std::allocator_traits<decltype(alloc)>::deallocate(alloc, value, 1);
  };
  switch (t) {
    case value_t::object: release(object); break;
    case value_t::array: release(array); break;
    case value_t::string: release(string); break;
    case value_t::binary: release(binary); break;
    default: break;  // null, booleans, numbers and discarded hold nothing
  }
}

NLOHMANN_JSON_NAMESPACE_END

#endif  // KCQRS_JSON_DOCUMENT_H_
