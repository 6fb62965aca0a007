// ChangelogSink: where TaskState sends every state write so that the store
// can be rebuilt from Kafka.
//
// The engine implements it by producing to the compacted changelog topic
// `<application.id>-<store>-changelog`, partition = the task's partition,
// inside the task's open Kafka transaction. The record is therefore committed
// or aborted together with the output and the input offsets.
//
// Owner: the engine (one per stream thread or per task); TaskState only
// borrows it. Thread-safety: called only from the stream thread that owns
// the TaskState.
#ifndef KCQRS_STATE_CHANGELOG_SINK_H_
#define KCQRS_STATE_CHANGELOG_SINK_H_

#include <optional>
#include <string>
#include <string_view>

#include "kcqrs/status.h"

namespace kcqrs::state {

class ChangelogSink {
 public:
  virtual ~ChangelogSink() = default;

  // Hands one write to the changelog. `value` is nullopt for a delete (a
  // tombstone, which compaction eventually removes). The views are only
  // valid during the call. A non-OK Status refuses the write: TaskState then
  // does not buffer it, and returns the Status to the processor.
  virtual Status Append(const std::string& store, std::string_view key,
                        std::optional<std::string_view> value) = 0;
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_CHANGELOG_SINK_H_
