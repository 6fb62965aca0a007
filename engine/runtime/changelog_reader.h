// ChangelogReader: brings tasks' stores up to the end of their changelogs
// (Kafka Streams: StoreChangelogReader), beside the stream thread's poll
// loop rather than before it: the thread calls Step() between polls, so a
// long restore neither costs the thread its group membership (it keeps
// polling) nor stops its running tasks (they keep processing). Every task
// being restored shares the thread's restore consumer, which is assigned by
// hand and never joins the group.
//
// A restore reads from the task's checkpoint (or the changelog's start
// without one) to the end the changelog had when the task was registered,
// in batches each written atomically with its checkpoint, so a stop or a
// crash midway keeps what was restored.
//
// A checkpoint outside the changelog's offsets (the topic was recreated,
// truncated, or compacted away below it) is FailedPrecondition at Register:
// the local state does not belong to the changelog as it is now, and the
// task manager wipes it and registers again (Kafka Streams:
// TaskCorruptedException).
//
// A standby (Kafka Streams: StandbyTask) is registered the same way but
// never completes: the reader follows its changelogs as they grow, so the
// copy stays warm, and a later owner restores only what it missed.
//
// Thread-safety: the owning thread's only.
#ifndef KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_
#define KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/metrics/metrics.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/task.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// What a restore needs of a task: its stores' state (the checkpoint is
// read from it, restored rows are written to it) and their changelogs.
struct RestoreTarget {
  TaskId id;
  std::string name;
  state::TaskState* state = nullptr;  // outlives the registration
  // Changelog partition, and the store it belongs to.
  std::vector<std::pair<state::TopicPartition, std::string>> changelogs;

  // An active task's.
  static RestoreTarget Of(Task* task);
};

class ChangelogReader {
 public:
  // Called as a restore moves on: records replayed so far, records left.
  using Progress = std::function<void(const TaskId&, uint64_t restored, int64_t remaining)>;

  // `metrics` may be null.
  ChangelogReader(std::unique_ptr<ThreadConsumer> restore_consumer, metrics::Metrics* metrics,
                  Progress progress);

  // Starts restoring `target`; a standby is followed until Unregister.
  // FailedPrecondition when its checkpoint does not fit the changelog.
  Status Register(const RestoreTarget& target, bool standby = false);
  // Stops restoring a task (closed before its restore ended).
  Status Unregister(const TaskId& id);
  bool restoring() const { return !tasks_.empty(); }

  // Reads for up to `budget` and returns the active tasks whose stores
  // have reached the changelog ends (and are unregistered). With only
  // standbys left, returns as soon as nothing more is there to read.
  Result<std::vector<TaskId>> Step(std::chrono::milliseconds budget);

  // Records replayed since the reader was made.
  uint64_t restored_records() const { return restored_records_; }

  // The offset after the last record of a partition (its end), asked of
  // the leader.
  Result<int64_t> EndOffset(const std::string& topic, int32_t partition);

 private:
  using Rows = std::vector<std::pair<std::string, std::optional<std::string>>>;
  struct Changelog {
    state::TopicPartition tp;
    std::string store;
    int64_t end = 0;   // restore up to here
    int64_t next = 0;  // the next offset to read
    Rows rows;         // read, not yet written
    bool done = false;
  };
  struct Restoring {
    RestoreTarget target;
    bool standby = false;
    std::vector<Changelog> changelogs;
    int64_t total = 0;  // records to replay, estimated at Register
    uint64_t restored = 0;
  };

  // Writes a changelog's rows with its checkpoint.
  Status Flush(Restoring& r, Changelog& c);
  // Assigns the restore consumer every changelog partition still to read.
  Status Reassign();
  bool active_left() const {
    for (const auto& [id, r] : tasks_) {
      if (!r.standby) return true;
    }
    return false;
  }

  std::unique_ptr<ThreadConsumer> consumer_;
  metrics::Metrics* metrics_;
  Progress progress_;
  std::map<TaskId, Restoring> tasks_;
  // (topic, partition) -> the task restoring it.
  std::map<std::pair<std::string, int32_t>, TaskId> owner_;
  bool reassign_ = false;
  uint64_t restored_records_ = 0;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_
