#include "engine/runtime/changelog_reader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};
constexpr std::chrono::milliseconds kPollTimeout{50};
// Rows written to the store (with their checkpoint) at a time.
constexpr size_t kRestoreBatch = 1000;

}  // namespace

ChangelogReader::ChangelogReader(std::unique_ptr<ThreadConsumer> restore_consumer,
                                 metrics::Metrics* metrics, const std::atomic<bool>* stop,
                                 Progress progress)
    : consumer_(std::move(restore_consumer)),
      metrics_(metrics),
      stop_(stop),
      progress_(std::move(progress)) {}

Result<int64_t> ChangelogReader::EndOffset(const std::string& topic, int32_t partition) {
  auto wm = consumer_->QueryWatermarks(topic, partition, kKafkaTimeout);
  if (!wm.ok()) return wm.status();
  return wm->second;
}

Result<uint64_t> ChangelogReader::Restore(Task* task) {
  auto checkpoint = task->state().storage().ReadCheckpoint();
  if (!checkpoint.ok()) return checkpoint.status().WithContext("task " + task->name());
  struct Target {
    state::TopicPartition tp;
    std::string store;
    int64_t end = 0;
    bool done = false;
  };
  std::vector<Target> targets;
  std::vector<kafka::TopicPartitionOffset> assign;
  for (const state::TopicPartition& tp : task->ChangelogPartitions()) {
    auto wm = consumer_->QueryWatermarks(tp.topic, tp.partition, kKafkaTimeout);
    if (!wm.ok()) return wm.status().WithContext("changelog " + tp.topic);
    auto c = checkpoint->changelog_offsets.find(tp);
    int64_t start = c == checkpoint->changelog_offsets.end() ? wm->first : c->second;
    if (c != checkpoint->changelog_offsets.end() && (start > wm->second || start < wm->first)) {
      return Status::FailedPrecondition(
          "the checkpoint of changelog " + tp.topic + "-" + std::to_string(tp.partition) +
          " is at offset " + std::to_string(start) + " but the changelog holds offsets " +
          std::to_string(wm->first) + " to " + std::to_string(wm->second));
    }
    if (start >= wm->second) continue;
    targets.push_back(Target{tp, task->StoreOfChangelog(tp.topic), wm->second, false});
    assign.push_back({tp.topic, tp.partition, start});
  }
  if (targets.empty()) return uint64_t{0};
  int64_t total = 0;
  for (size_t i = 0; i < targets.size(); ++i) total += targets[i].end - assign[i].offset;
  progress_(task->id(), 0, total);
  KCQRS_RETURN_IF_ERROR(consumer_->Assign(assign));
  uint64_t restored = 0;
  std::map<std::string, std::vector<std::pair<std::string, std::optional<std::string>>>> batch;
  auto flush = [&](Target& t, int64_t next) -> Status {
    auto& rows = batch[t.tp.topic];
    Status s = task->state().RestoreBatch(t.store, rows, t.tp, next);
    rows.clear();
    return s;
  };
  spdlog::info("task {}: restoring {} changelog partition(s) from the checkpoint", task->name(),
               targets.size());
  for (;;) {
    bool all_done = true;
    for (Target& t : targets) {
      if (t.done) continue;
      auto pos = consumer_->Position(t.tp.topic, t.tp.partition);
      if (pos.ok() && *pos >= t.end) {
        KCQRS_RETURN_IF_ERROR(flush(t, *pos));
        t.done = true;
      } else {
        all_done = false;
      }
    }
    if (all_done) break;
    if (*stop_) return Status::Aborted("stopping during restore");
    auto polled = consumer_->Poll(kPollTimeout);
    if (!polled.ok()) {
      if (polled.status().IsFenced()) return polled.status();
      continue;
    }
    if (!polled->has_value()) continue;
    kafka::ConsumedRecord& r = **polled;
    for (Target& t : targets) {
      if (t.tp.topic != r.topic || t.done) continue;
      if (!r.key) break;
      auto& rows = batch[r.topic];
      rows.emplace_back(std::move(*r.key), std::move(r.value));
      ++restored;
      if (metrics_ != nullptr) {
        metrics_->RestoredRecords(t.store).Increment();
        metrics_->RestoreRemaining(t.store, t.tp.partition)
            .Set(static_cast<double>(std::max<int64_t>(0, t.end - r.offset - 1)));
      }
      if (rows.size() >= kRestoreBatch) {
        KCQRS_RETURN_IF_ERROR(flush(t, r.offset + 1));
        progress_(task->id(), restored,
                  std::max<int64_t>(0, total - static_cast<int64_t>(restored)));
      }
      break;
    }
  }
  KCQRS_RETURN_IF_ERROR(consumer_->Assign({}));
  spdlog::info("task {}: restored {} records", task->name(), restored);
  return restored;
}

}  // namespace kcqrs::engine
