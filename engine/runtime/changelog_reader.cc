#include "engine/runtime/changelog_reader.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kKafkaTimeout{30000};
// One restore consumer poll; a Step polls until its budget is spent.
constexpr std::chrono::milliseconds kPollTimeout{10};
// Rows written to the store (with their checkpoint) at a time.
constexpr size_t kRestoreBatch = 1000;

}  // namespace

ChangelogReader::ChangelogReader(std::unique_ptr<ThreadConsumer> restore_consumer,
                                 metrics::Metrics* metrics, Progress progress)
    : consumer_(std::move(restore_consumer)), metrics_(metrics), progress_(std::move(progress)) {}

Result<int64_t> ChangelogReader::EndOffset(const std::string& topic, int32_t partition) {
  auto wm = consumer_->QueryWatermarks(topic, partition, kKafkaTimeout);
  if (!wm.ok()) return wm.status();
  return wm->second;
}

RestoreTarget RestoreTarget::Of(Task* task) {
  RestoreTarget t;
  t.id = task->id();
  t.name = task->name();
  t.state = &task->state();
  for (const state::TopicPartition& tp : task->ChangelogPartitions()) {
    t.changelogs.emplace_back(tp, task->StoreOfChangelog(tp.topic));
  }
  return t;
}

Status ChangelogReader::Register(const RestoreTarget& target, bool standby) {
  auto checkpoint = target.state->storage().ReadCheckpoint();
  if (!checkpoint.ok()) return checkpoint.status().WithContext("task " + target.name);
  Restoring r;
  r.target = target;
  r.standby = standby;
  for (const auto& [tp, store] : target.changelogs) {
    auto wm = consumer_->QueryWatermarks(tp.topic, tp.partition, kKafkaTimeout);
    if (!wm.ok()) return wm.status().WithContext("changelog " + tp.topic);
    auto c = checkpoint->changelog_offsets.find(tp);
    const int64_t start = c == checkpoint->changelog_offsets.end() ? wm->first : c->second;
    if (c != checkpoint->changelog_offsets.end() && (start > wm->second || start < wm->first)) {
      return Status::FailedPrecondition(
          "the checkpoint of changelog " + tp.topic + "-" + std::to_string(tp.partition) +
          " is at offset " + std::to_string(start) + " but the changelog holds offsets " +
          std::to_string(wm->first) + " to " + std::to_string(wm->second));
    }
    Changelog cl;
    cl.tp = tp;
    cl.store = store;
    cl.end = wm->second;
    cl.next = start;
    cl.done = !standby && start >= wm->second;
    r.total += std::max<int64_t>(0, wm->second - start);
    if (!cl.done) owner_[{tp.topic, tp.partition}] = target.id;
    r.changelogs.push_back(std::move(cl));
  }
  if (r.total > 0) {
    spdlog::info("{} {}: restoring {} records from its changelog(s)",
                 standby ? "standby" : "task", target.name, r.total);
  }
  if (progress_) progress_(target.id, 0, r.total);
  tasks_[target.id] = std::move(r);
  reassign_ = true;
  return Status::OK();
}

Status ChangelogReader::Unregister(const TaskId& id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return Status::OK();
  for (const Changelog& c : it->second.changelogs) owner_.erase({c.tp.topic, c.tp.partition});
  tasks_.erase(it);
  reassign_ = true;
  return Status::OK();
}

Status ChangelogReader::Reassign() {
  std::vector<kafka::TopicPartitionOffset> assign;
  for (const auto& [id, r] : tasks_) {
    for (const Changelog& c : r.changelogs) {
      if (!c.done) assign.push_back({c.tp.topic, c.tp.partition, c.next});
    }
  }
  reassign_ = false;
  KCQRS_RETURN_IF_ERROR(consumer_->Assign(assign));
  // A changelog finished earlier was paused (Step); assigned again (its task
  // came back), it must fetch.
  return assign.empty() ? Status::OK() : consumer_->Resume(assign);
}

Status ChangelogReader::Flush(Restoring& r, Changelog& c) {
  if (c.rows.empty()) return Status::OK();
  Status s = r.target.state->RestoreBatch(c.store, c.rows, c.tp, c.next);
  c.rows.clear();
  return s;
}

Result<std::vector<TaskId>> ChangelogReader::Step(std::chrono::milliseconds budget) {
  std::vector<TaskId> completed;
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    std::vector<kafka::TopicPartitionOffset> finished;
    // Changelogs at their end are written and done; tasks whose changelogs
    // are all done are restored.
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      Restoring& r = it->second;
      if (r.standby) {
        ++it;
        continue;
      }
      bool all_done = true;
      for (Changelog& c : r.changelogs) {
        if (c.done) continue;
        auto pos = consumer_->Position(c.tp.topic, c.tp.partition);
        // Past the last record there may be transaction markers the
        // consumer skips: its position says where reading really stands.
        if (pos.ok() && *pos > c.next) c.next = *pos;
        if (c.next >= c.end) {
          KCQRS_RETURN_IF_ERROR(Flush(r, c));
          c.done = true;
          owner_.erase({c.tp.topic, c.tp.partition});
          finished.push_back({c.tp.topic, c.tp.partition, c.next});
        } else {
          all_done = false;
        }
      }
      if (all_done) {
        if (r.restored > 0) {
          spdlog::info("task {}: restored {} records", r.target.name, r.restored);
        }
        if (progress_) progress_(r.target.id, r.restored, 0);
        completed.push_back(it->first);
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
    // A finished changelog is paused, not unassigned: assigning the rest
    // anew would restart every fetch in flight, a fetch wait (up to
    // fetch.wait.max.ms) per finished changelog, which made a restore of a
    // few thousand records over nine tasks take half a second. Once nothing
    // is left to read, the assignment is emptied (nothing to restart).
    if (!finished.empty()) {
      if (owner_.empty()) {
        reassign_ = true;
      } else if (!reassign_) {
        KCQRS_RETURN_IF_ERROR(consumer_->Pause(finished));
      }
    }
    if (reassign_) KCQRS_RETURN_IF_ERROR(Reassign());
    if (owner_.empty() || std::chrono::steady_clock::now() >= deadline) break;
    auto polled = consumer_->Poll(kPollTimeout);
    if (!polled.ok()) {
      if (polled.status().IsFenced()) return polled.status();
      continue;  // a broker is away: librdkafka retries, the next Step goes on
    }
    if (!polled->has_value()) {
      if (!active_left()) break;  // standbys only, and they are caught up
      continue;
    }
    kafka::ConsumedRecord& rec = **polled;
    auto owner = owner_.find({rec.topic, rec.partition});
    if (owner == owner_.end()) continue;  // unassigned meanwhile
    Restoring& r = tasks_.at(owner->second);
    for (Changelog& c : r.changelogs) {
      if (c.tp.topic != rec.topic || c.tp.partition != rec.partition) continue;
      c.next = rec.offset + 1;
      if (!rec.key) break;  // not a store record: nothing to restore
      c.rows.emplace_back(std::move(*rec.key), std::move(rec.value));
      ++r.restored;
      ++restored_records_;
      if (metrics_ != nullptr) {
        metrics_->RestoredRecords(c.store).Increment();
        metrics_->RestoreRemaining(c.store, c.tp.partition)
            .Set(static_cast<double>(std::max<int64_t>(0, c.end - c.next)));
      }
      if (c.rows.size() >= kRestoreBatch) {
        KCQRS_RETURN_IF_ERROR(Flush(r, c));
        if (progress_) {
          progress_(r.target.id, r.restored,
                    std::max<int64_t>(0, r.total - static_cast<int64_t>(r.restored)));
        }
      }
      break;
    }
  }
  // What this step read is kept (with its checkpoint) even if the thread
  // stops before the next.
  for (auto& [id, r] : tasks_) {
    for (Changelog& c : r.changelogs) KCQRS_RETURN_IF_ERROR(Flush(r, c));
  }
  return completed;
}

}  // namespace kcqrs::engine
