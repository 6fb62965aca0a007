// StateDirectory: which task directories under application.state_dir this
// process uses, and the removal of the others once they have been left
// alone long enough (Kafka Streams: StateDirectory and
// state.cleanup.delay.ms).
//
// Why remove them: a task directory left behind when its task moved to
// another instance holds state as of then. If the task comes back much
// later, restoring only the changelog tail past that checkpoint would bring
// back keys whose tombstones compaction has removed meanwhile. Removing a
// directory once it has been unused for the cleanup delay (default 10
// minutes, well inside the changelogs' delete.retention.ms of 24 hours)
// makes a later owner restore in full. A task that comes back sooner keeps
// its directory and restores only the tail.
//
// Stream threads Claim a task's directory before opening its storage and
// Release it after closing it; CleanUp removes directories named like tasks
// ("<subtopology>_<partition>") that are not claimed and were released (or,
// for directories found from an earlier run, last modified) longer than the
// delay ago. Other files (kcqrs.instance, kcqrs.lock) are never touched.
//
// Thread-safety: all methods lock; called from every stream thread.
#ifndef KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_
#define KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kcqrs::engine {

class StateDirectory {
 public:
  explicit StateDirectory(std::string dir) : dir_(std::move(dir)) {}

  // The directory of task `task` ("0_1"); claimed until Release.
  std::string Claim(const std::string& task);
  void Release(const std::string& task);

  // Removes the task directories unclaimed for longer than `delay`; returns
  // the names removed (a crash in the middle leaves a partly removed
  // directory, which the next open finds damaged, wipes and restores).
  std::vector<std::string> CleanUp(std::chrono::milliseconds delay);

 private:
  const std::string dir_;
  std::mutex mu_;
  std::set<std::string> claimed_;
  std::map<std::string, std::chrono::system_clock::time_point> released_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_
