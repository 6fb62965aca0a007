// Key -> partition, exactly as Apache Kafka's Java clients compute it
// (murmur2 of the key bytes, made positive, modulo the partition count), so
// that records of one key land in the same partition whether a Java client,
// a librdkafka client set to murmur2, or kcqrs produced them.
#ifndef KCQRS_ENGINE_CODEC_PARTITIONER_H_
#define KCQRS_ENGINE_CODEC_PARTITIONER_H_

#include <cstdint>
#include <string_view>

namespace kcqrs::engine {

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
inline int32_t Murmur2(std::string_view data) {
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const size_t length = data.size();
  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length4 = length / 4;
  for (size_t i = 0; i < length4; ++i) {
    const size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4]) |
                 (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = length & ~size_t{3};
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

inline int32_t PartitionForKey(std::string_view key, int32_t num_partitions) {
  return static_cast<int32_t>(
      (static_cast<uint32_t>(Murmur2(key)) & 0x7fffffffu) %
      static_cast<uint32_t>(num_partitions));
}

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_CODEC_PARTITIONER_H_
