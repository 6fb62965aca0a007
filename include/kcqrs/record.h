// Record: one Kafka record as a processor sees it.
#ifndef KCQRS_RECORD_H_
#define KCQRS_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kcqrs {

struct Header {
  std::string key{};
  std::optional<std::string> value{};  // nullopt: a null header value

  friend bool operator==(const Header&, const Header&) = default;
};

struct Record {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;    // nullopt: a null key
  std::optional<std::string> value;  // nullopt: a tombstone
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;  // milliseconds since the epoch

  // The first header named `key`, if any.
  const Header* FindHeader(const std::string& name) const {
    for (const Header& h : headers) {
      if (h.key == name) return &h;
    }
    return nullptr;
  }
};

}  // namespace kcqrs

#endif  // KCQRS_RECORD_H_
