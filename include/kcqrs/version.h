// The kcqrs release this header belongs to.
#ifndef KCQRS_VERSION_H_
#define KCQRS_VERSION_H_

#include <string_view>

namespace kcqrs {

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;
inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace kcqrs

#endif  // KCQRS_VERSION_H_
