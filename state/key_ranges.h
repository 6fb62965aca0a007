// Key-range helpers shared by the store implementations of state/.
//
// Keys are compared as unsigned bytes, which is what both std::string's
// operator< and RocksDB's default BytewiseComparator do.
#ifndef KCQRS_STATE_KEY_RANGES_H_
#define KCQRS_STATE_KEY_RANGES_H_

#include <string>
#include <string_view>

namespace kcqrs::state {

// The smallest key greater than every key that starts with `prefix`, or ""
// (no upper bound) when there is none: for an empty prefix, or one made only
// of 0xFF bytes. Then Prefix(p) == Range(p, PrefixSuccessor(p)) exactly.
std::string PrefixSuccessor(std::string_view prefix);

// True when a Range(from, to) cannot contain any key.
inline bool EmptyRange(std::string_view from, std::string_view to) {
  return !to.empty() && from >= to;
}

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_KEY_RANGES_H_
