// ChangelogReader: brings a task's stores up to the end of their changelogs
// (Kafka Streams: StoreChangelogReader). It reads from the task's
// checkpoint (or the changelog's start without one) to the end, on the
// thread's restore consumer, which is assigned by hand and never joins the
// group.
//
// A checkpoint outside the changelog's offsets (the topic was recreated,
// truncated, or compacted away below it) is FailedPrecondition: the local
// state does not belong to the changelog as it is now, and the task manager
// wipes it and restores in full (Kafka Streams: TaskCorruptedException).
//
// Thread-safety: the stream thread's only.
#ifndef KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_
#define KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/metrics/metrics.h"
#include "engine/runtime/clients.h"
#include "engine/runtime/task.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class ChangelogReader {
 public:
  // Called as a restore moves on: records replayed so far, records left.
  using Progress = std::function<void(const TaskId&, uint64_t restored, int64_t remaining)>;

  // `metrics` may be null; `stop` is the thread's stop flag.
  ChangelogReader(std::unique_ptr<ThreadConsumer> restore_consumer, metrics::Metrics* metrics,
                  const std::atomic<bool>* stop, Progress progress);

  // Restores `task`'s stores from their changelogs to the ends they have
  // now; returns the records replayed. Aborted when stopping midway (the
  // batches applied so far stay, with their checkpoint).
  Result<uint64_t> Restore(Task* task);

  // The offset after the last record of a partition (its end), asked of
  // the leader.
  Result<int64_t> EndOffset(const std::string& topic, int32_t partition);

 private:
  std::unique_ptr<ThreadConsumer> consumer_;
  metrics::Metrics* metrics_;
  const std::atomic<bool>* stop_;
  Progress progress_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_CHANGELOG_READER_H_
