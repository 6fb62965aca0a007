// Levenshtein distance and "did you mean" suggestions, for error messages
// that name the key, name or function the user probably meant.
// Header-only, standard library only: shared by config/ and topology/.
#ifndef KCQRS_UTIL_EDIT_DISTANCE_H_
#define KCQRS_UTIL_EDIT_DISTANCE_H_

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kcqrs::util {

inline size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace kcqrs::util

#endif  // KCQRS_UTIL_EDIT_DISTANCE_H_
