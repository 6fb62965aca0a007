// ApplicationReset: `kcqrs reset`, so that an application reprocesses its
// input from a chosen point with nothing of its past state left (Kafka
// Streams: the kafka-streams-application-reset tool plus
// KafkaStreams#cleanUp for the local state).
//
// What it does, with every instance stopped:
//   - input topics (the topics the application reads and does not write:
//     its command topics, also when a process manager sends to them, and
//     events other applications publish) get the group's committed
//     offsets set to the target: earliest, latest, a timestamp, or an
//     offset (clamped to what the partition holds);
//   - topics the application both writes and reads (the event topics its
//     aggregates write and its projections read; a transform's output read
//     further on) are set to their end, as Kafka Streams' tool treats
//     intermediate topics: the rerun writes them anew, and reading the old
//     copy as well would fold every event twice;
//   - internal topics are deleted: every store's changelog (timer stores
//     included) and every repartition topic. The next run creates them;
//   - the local state directory's task directories are removed.
//
// What it refuses: a group with members (an instance still runs, or one
// stopped by kill -9 whose session has not expired: static members are
// kept for session.timeout.ms), a state directory that a running kcqrs
// holds, and the embedded broker (it keeps nothing between runs).
//
// Not touched: output topics nothing in the application reads (rejections,
// dead letters), whose old records stay; `<app>-instances` and
// `<app>-commits`, which describe instances and hold no state.
//
// Each instance has its own state directory: on every other machine, run
// `kcqrs reset --local-state-only` too (as Kafka Streams asks cleanUp() of
// every instance), or the instance would restore its old state.
#ifndef KCQRS_ENGINE_RUNTIME_APPLICATION_RESET_H_
#define KCQRS_ENGINE_RUNTIME_APPLICATION_RESET_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

struct ResetOptions {
  enum class Target { kEarliest, kLatest, kTimestamp, kOffset };
  Target target = Target::kEarliest;
  int64_t timestamp_ms = 0;  // kTimestamp: ms since the epoch
  int64_t offset = 0;        // kOffset: the same offset for every input partition
  // Only the local state directory: for the other machines of an
  // application whose Kafka side was reset from one of them.
  bool local_state_only = false;
  std::chrono::milliseconds timeout{30000};
};

struct ResetPlan {
  struct OffsetChange {
    std::string topic;
    int32_t partition = 0;
    int64_t from = -1001;  // the committed offset; -1001: none
    int64_t to = 0;
    bool intermediate = false;  // written by the application: to the end
  };
  std::string group;
  std::vector<OffsetChange> offsets;
  std::vector<std::string> delete_topics;  // internal topics that exist
  std::vector<std::string> absent_topics;  // topics of the topology not found
  std::string state_dir;
  std::vector<std::string> state_entries;  // task directories to remove
};

// "2026-11-30T12:00:00Z", "2026-11-30T12:00:00.250+01:00" or, without a
// zone, UTC: milliseconds since the epoch. InvalidArgument says what is
// expected.
Result<int64_t> ParseDateTime(std::string_view text);

// Reads what is, and decides what to change, changing nothing. Errors:
// InvalidArgument (embedded broker, no bootstrap servers),
// FailedPrecondition (the group has members: named), Kafka errors.
Result<ResetPlan> PlanReset(const EngineOptions& options, const ResetOptions& reset);

// Carries out `plan`: offsets, then topic deletion, then the local state
// (under the state directory's lock, so a kcqrs running on it is refused).
Status ApplyReset(const EngineOptions& options, const ResetPlan& plan,
                  const ResetOptions& reset);

// The plan as lines for a person, e.g. "orders.commands-0: 120 -> 0".
std::string FormatResetPlan(const ResetPlan& plan, bool dry_run);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_APPLICATION_RESET_H_
