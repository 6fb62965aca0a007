#include "state/checkpoint.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace kcqrs::state {
namespace {

// Bumped when the encoding changes; an unknown version is Corruption, which
// makes the engine restore from the changelog instead of guessing.
constexpr uint8_t kFormatVersion = 1;

// Fixed-width little-endian integers: simple, and a checkpoint is small.
void PutFixed32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutFixed64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutBytes(std::string_view s, std::string* out) {
  PutFixed32(static_cast<uint32_t>(s.size()), out);
  out->append(s);
}

// Reads from the front of `in_`, remembering the first failure.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool Fixed32(uint32_t* v) {
    if (in_.size() < 4) return Fail();
    *v = 0;
    for (int i = 0; i < 4; ++i)
      *v |= uint32_t{static_cast<uint8_t>(in_[i])} << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (in_.size() < 8) return Fail();
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= uint64_t{static_cast<uint8_t>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(std::string* s) {
    uint32_t n = 0;
    if (!Fixed32(&n)) return false;
    if (in_.size() < n) return Fail();
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool Byte(uint8_t* b) {
    if (in_.empty()) return Fail();
    *b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  bool Fail() { return false; }
  std::string_view in_;
};

}  // namespace

void MergeCheckpoint(const Checkpoint& update, Checkpoint* base) {
  for (const auto& [tp, offset] : update.changelog_offsets)
    base->changelog_offsets[tp] = offset;
  for (const auto& [key, value] : update.metadata) base->metadata[key] = value;
}

std::string EncodeCheckpoint(const Checkpoint& checkpoint) {
  std::string out;
  out.push_back(static_cast<char>(kFormatVersion));
  PutFixed32(static_cast<uint32_t>(checkpoint.changelog_offsets.size()), &out);
  for (const auto& [tp, offset] : checkpoint.changelog_offsets) {
    PutBytes(tp.topic, &out);
    PutFixed32(static_cast<uint32_t>(tp.partition), &out);
    PutFixed64(static_cast<uint64_t>(offset), &out);
  }
  PutFixed32(static_cast<uint32_t>(checkpoint.metadata.size()), &out);
  for (const auto& [key, value] : checkpoint.metadata) {
    PutBytes(key, &out);
    PutBytes(value, &out);
  }
  return out;
}

Result<Checkpoint> DecodeCheckpoint(std::string_view bytes) {
  const size_t total = bytes.size();
  Reader in(bytes);
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption("checkpoint of " + std::to_string(total) +
                              " bytes: " + std::string(what) + " (" +
                              std::to_string(total - in.remaining()) +
                              " bytes read)");
  };

  uint8_t version = 0;
  if (!in.Byte(&version))
    return corrupt("empty, expected a format version byte");
  if (version != kFormatVersion) {
    return corrupt("format version " + std::to_string(version) + ", expected " +
                   std::to_string(kFormatVersion));
  }
  Checkpoint cp;
  uint32_t n = 0;
  if (!in.Fixed32(&n)) return corrupt("truncated changelog offset count");
  for (uint32_t i = 0; i < n; ++i) {
    TopicPartition tp;
    uint32_t partition = 0;
    uint64_t offset = 0;
    if (!in.Bytes(&tp.topic) || !in.Fixed32(&partition) ||
        !in.Fixed64(&offset)) {
      return corrupt("truncated changelog offset entry " + std::to_string(i));
    }
    tp.partition = static_cast<int32_t>(partition);
    if (!cp.changelog_offsets
             .emplace(std::move(tp), static_cast<int64_t>(offset))
             .second) {
      return corrupt("duplicate changelog partition in entry " +
                     std::to_string(i));
    }
  }
  if (!in.Fixed32(&n)) return corrupt("truncated metadata count");
  for (uint32_t i = 0; i < n; ++i) {
    std::string key, value;
    if (!in.Bytes(&key) || !in.Bytes(&value)) {
      return corrupt("truncated metadata entry " + std::to_string(i));
    }
    if (!cp.metadata.emplace(std::move(key), std::move(value)).second) {
      return corrupt("duplicate metadata key in entry " + std::to_string(i));
    }
  }
  if (in.remaining() != 0)
    return corrupt("trailing bytes after the last entry");
  return cp;
}

}  // namespace kcqrs::state
