#include "state/key_ranges.h"

namespace kcqrs::state {

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  // Trailing 0xFF bytes cannot be incremented; drop them and carry left.
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xFF)
    s.pop_back();
  if (!s.empty())
    s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

}  // namespace kcqrs::state
