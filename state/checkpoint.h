// Checkpoint: how far a task's committed local state reaches, stored in the
// same atomic write as the state itself.
//
// After a crash the engine restores each changelog partition from the offset
// recorded here, so the checkpoint must never claim more than the state holds
// (it is written together with the state) and the state is never ahead of
// Kafka (the engine writes both only after Kafka has committed).
//
// Thread-safety: plain values.
#ifndef KCQRS_STATE_CHECKPOINT_H_
#define KCQRS_STATE_CHECKPOINT_H_

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "kcqrs/status.h"

namespace kcqrs::state {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  auto operator<=>(const TopicPartition&) const = default;
};

struct Checkpoint {
  // Per changelog partition: the next offset to read when restoring, i.e. one
  // past the last record whose effect the state already holds.
  std::map<TopicPartition, int64_t> changelog_offsets;
  // Small opaque facts the engine wants to keep atomically with the state,
  // e.g. input positions for read-your-writes. Not meant for bulk data: the
  // whole checkpoint is rewritten on every commit.
  std::map<std::string, std::string> metadata;

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// Folds `update` into `base`: each changelog offset and metadata entry of
// `update` replaces the one in `base`; entries `update` does not mention are
// kept. That is the meaning of a commit: it moves the changelogs it wrote
// and leaves the others where they were.
void MergeCheckpoint(const Checkpoint& update, Checkpoint* base);

// A versioned, length-prefixed binary encoding. DecodeCheckpoint rejects
// anything it did not produce (wrong version, truncation, trailing bytes)
// with Status::Corruption, so that a damaged state directory is wiped and
// restored rather than trusted.
std::string EncodeCheckpoint(const Checkpoint& checkpoint);
Result<Checkpoint> DecodeCheckpoint(std::string_view bytes);

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_CHECKPOINT_H_
