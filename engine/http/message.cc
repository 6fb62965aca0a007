// Request lookups, Response factories and JSON string quoting.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "engine/http/server.h"
#include "util/utf8.h"

namespace kcqrs::http {
namespace {

char ToLowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

std::string JsonQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n =
          util::Utf8SequenceLength(s.data() + i, s.data() + s.size());
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

std::optional<std::string> Request::Query(std::string_view name) const {
  // lower_bound, not find: among equal keys a multimap keeps insertion order,
  // and the first one sent is the one callers expect.
  auto it = query.lower_bound(std::string(name));
  if (it == query.end() || it->first != name) return std::nullopt;
  return it->second;
}

std::optional<std::string> Request::Header(std::string_view name) const {
  std::string key(name);
  for (char& c : key) c = ToLowerAscii(c);
  auto it = headers.find(key);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body,
                        std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::Problem(int status, std::string_view title,
                           std::string_view detail, std::string_view type) {
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body.reserve(64 + title.size() + detail.size() + type.size());
  r.body += "{\"type\":";
  r.body += JsonQuote(type);
  r.body += ",\"title\":";
  r.body += JsonQuote(title);
  r.body += ",\"status\":";
  r.body += std::to_string(status);
  r.body += ",\"detail\":";
  r.body += JsonQuote(detail);
  r.body += "}";
  return r;
}

}  // namespace kcqrs::http
