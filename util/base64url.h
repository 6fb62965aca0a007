// Base64url (RFC 4648 section 5, no padding), for opaque tokens that travel
// in URLs: position tokens and scan cursors.
#ifndef KCQRS_UTIL_BASE64URL_H_
#define KCQRS_UTIL_BASE64URL_H_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace kcqrs::util {

inline constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

inline std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kBase64UrlAlphabet[(buf >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kBase64UrlAlphabet[(buf << (6 - bits)) & 0x3f];
  return out;
}

// nullopt for a character outside the alphabet.
inline std::optional<std::string> Base64UrlDecode(std::string_view in) {
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = c == '\0' ? nullptr : std::strchr(kBase64UrlAlphabet, c);
    if (p == nullptr) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(p - kBase64UrlAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace kcqrs::util

#endif  // KCQRS_UTIL_BASE64URL_H_
