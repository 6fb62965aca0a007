#include "state/write_buffer.h"

#include <algorithm>
#include <iterator>

namespace kcqrs::state {

StoreWrites::Keyed StoreWrites::KeyedOf(const Entry* e) {
  const std::string& key = e->first;
  uint64_t prefix = 0;
  const size_t n = std::min<size_t>(key.size(), 8);
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) | (i < n ? static_cast<unsigned char>(key[i]) : 0u);
  }
  return {prefix, e};
}

bool StoreWrites::KeyedLess(const Keyed& a, const Keyed& b) {
  // Equal prefixes: the keys' first eight bytes are equal, or one key is
  // shorter and padded with zero bytes; the strings decide.
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  return a.entry->first < b.entry->first;
}

const std::vector<const StoreWrites::Entry*>& StoreWrites::Sorted() const {
  if (sorted_ < keyed_.size()) {
    const auto middle = keyed_.begin() + static_cast<std::ptrdiff_t>(sorted_);
    std::sort(middle, keyed_.end(), KeyedLess);
    // Keys are unique, so the merge needs no tie-breaking.
    std::inplace_merge(keyed_.begin(), middle, keyed_.end(), KeyedLess);
    sorted_ = keyed_.size();
    index_.resize(keyed_.size());
    for (size_t i = 0; i < keyed_.size(); ++i) index_[i] = keyed_[i].entry;
  }
  return index_;
}

std::pair<size_t, size_t> StoreWrites::RangeOf(std::string_view from,
                                               std::string_view to) const {
  const std::vector<const Entry*>& sorted = Sorted();
  auto below = [](const Entry* e, std::string_view k) { return std::string_view(e->first) < k; };
  const auto first = std::lower_bound(sorted.begin(), sorted.end(), from, below);
  const auto last = to.empty() ? sorted.end() : std::lower_bound(first, sorted.end(), to, below);
  if (last <= first) return {0, 0};
  return {static_cast<size_t>(first - sorted.begin()), static_cast<size_t>(last - sorted.begin())};
}

}  // namespace kcqrs::state
