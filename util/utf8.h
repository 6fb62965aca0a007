// UTF-8: encoding one code point, for the parsers that decode \u escapes
// (the expression language's string literals, engine/json_codec); and the one
// validity check (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF, which is also what nlohmann::json accepts) used by the JSON
// codec, the command handler (aggregate ids) and the HTTP API for bytes that
// go into JSON or Kafka.
#ifndef KCQRS_UTIL_UTF8_H_
#define KCQRS_UTIL_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kcqrs::util {

// Appends code point `cp` (at most 0x10FFFF) to `out` as UTF-8.
inline void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The length of the UTF-8 sequence that starts at p (< end, *p >= 0x80), or
// 0 when the bytes there are not one. ASCII is the caller's fast path.
inline size_t Utf8SequenceLength(const char* p, const char* end) {
  auto at = [&](size_t i, unsigned lo, unsigned hi) {
    if (p + i >= end) return false;
    const auto c = static_cast<unsigned char>(p[i]);
    return c >= lo && c <= hi;
  };
  const auto c = static_cast<unsigned char>(p[0]);
  if (c >= 0xC2 && c <= 0xDF) return at(1, 0x80, 0xBF) ? 2 : 0;
  if (c == 0xE0) return at(1, 0xA0, 0xBF) && at(2, 0x80, 0xBF) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    return at(1, 0x80, 0xBF) && at(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (c == 0xED) return at(1, 0x80, 0x9F) && at(2, 0x80, 0xBF) ? 3 : 0;  // no surrogates
  if (c == 0xF0) return at(1, 0x90, 0xBF) && at(2, 0x80, 0xBF) && at(3, 0x80, 0xBF) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) {
    return at(1, 0x80, 0xBF) && at(2, 0x80, 0xBF) && at(3, 0x80, 0xBF) ? 4 : 0;
  }
  if (c == 0xF4) return at(1, 0x80, 0x8F) && at(2, 0x80, 0xBF) && at(3, 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// The offset of the first byte of `s` that does not start a valid UTF-8
// sequence, or npos when all of `s` is valid UTF-8.
inline size_t FindInvalidUtf8(std::string_view s) {
  const char* const begin = s.data();
  const char* const end = begin + s.size();
  const char* p = begin;
  while (p < end) {
    if (static_cast<unsigned char>(*p) < 0x80) {
      ++p;
      continue;
    }
    const size_t n = Utf8SequenceLength(p, end);
    if (n == 0) return static_cast<size_t>(p - begin);
    p += n;
  }
  return std::string_view::npos;
}

inline bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

}  // namespace kcqrs::util

#endif  // KCQRS_UTIL_UTF8_H_
