// The records and positions that cross the engine/kafka boundary.
//
// Plain values that own their bytes: a ConsumedRecord stays valid after the
// Consumer that produced it polls again or is destroyed. Absent key, value
// or header value (Kafka's null) is std::nullopt and is distinct from the
// empty string; a record with a null value is a tombstone in a compacted
// topic.
#ifndef KCQRS_ENGINE_KAFKA_RECORD_H_
#define KCQRS_ENGINE_KAFKA_RECORD_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kcqrs/record.h"

namespace kcqrs::kafka {

// The public API's header (kcqrs/record.h), so that a record's headers pass
// between a processor and the clients by moving their vector: converting
// them one by one moved two strings per header, twelve for an event.
using Header = ::kcqrs::Header;

// Let the partitioner choose (by key hash, as librdkafka's default
// "consistent_random" partitioner does).
inline constexpr int32_t kAnyPartition = -1;

// Special offsets, with librdkafka's (and Kafka's) values. They are valid in
// Consumer::Assign and Consumer::Seek; Consumer::Committed returns
// kOffsetInvalid for a partition the group has never committed.
inline constexpr int64_t kOffsetBeginning = -2;
inline constexpr int64_t kOffsetEnd = -1;
inline constexpr int64_t kOffsetStored = -1000;  // the group's committed offset
inline constexpr int64_t kOffsetInvalid = -1001;

// Every field has a default member initializer so that brace and
// designated initialization ({.topic = t, .value = v}) may leave fields out
// without GCC's -Wmissing-field-initializers.
struct OutgoingRecord {
  std::string topic{};
  int32_t partition = kAnyPartition;
  std::optional<std::string> key{};
  std::optional<std::string> value{};  // nullopt: a tombstone
  std::vector<Header> headers{};
  int64_t timestamp_ms = 0;  // milliseconds since the epoch; 0 = now
};

struct ConsumedRecord {
  std::string topic{};
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key{};
  std::optional<std::string> value{};
  std::vector<Header> headers{};
  int64_t timestamp_ms = -1;  // -1 when the record carries no timestamp

  friend bool operator==(const ConsumedRecord&,
                         const ConsumedRecord&) = default;
};

// A position in a partition. As in Kafka, an offset to commit or to send to
// a transaction is the offset of the NEXT record to read (last read + 1).
struct TopicPartitionOffset {
  std::string topic{};
  int32_t partition = 0;
  int64_t offset = kOffsetInvalid;

  friend bool operator==(const TopicPartitionOffset&,
                         const TopicPartitionOffset&) = default;
  friend auto operator<=>(const TopicPartitionOffset&,
                          const TopicPartitionOffset&) = default;
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_RECORD_H_
