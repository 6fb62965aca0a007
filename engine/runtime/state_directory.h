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
// Lock() takes the process-wide lock on the directory (kcqrs.lock), and
// InstanceId() the id this directory gives its instance (kcqrs.instance).
//
// Thread-safety: all methods lock; called from every stream thread.
#ifndef KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_
#define KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_

#include <chrono>
#include <condition_variable>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kcqrs/status.h"

namespace kcqrs::engine {

// An exclusive lock on a state directory for an engine's lifetime. Two
// processes on one directory share its instance id, so their stream threads
// have the same transactional ids and fence each other forever; and both
// would write the same task databases. flock() is released by the kernel
// when the process dies, so kill -9 leaves no stale lock behind.
class StateDirectoryLock {
 public:
  ~StateDirectoryLock();  // releases the lock
  StateDirectoryLock(const StateDirectoryLock&) = delete;
  StateDirectoryLock& operator=(const StateDirectoryLock&) = delete;

 private:
  friend class StateDirectory;
  explicit StateDirectoryLock(int fd) : fd_(fd) {}
  int fd_;
};

class StateDirectory {
 public:
  explicit StateDirectory(std::string dir) : dir_(std::move(dir)) {}

  // Locks the directory (creating it) for this process, or says which
  // process holds it (FailedPrecondition).
  Result<std::unique_ptr<StateDirectoryLock>> Lock();

  // The id of this instance: stable across restarts of the directory, so
  // that the transactional ids derived from it fence the previous
  // incarnation at once (rather than waiting for its transaction to time
  // out). Made on first use.
  Result<std::string> InstanceId();

  // The directory of task `task` ("0_1") for an active task; claimed until
  // Release. A standby of this process that holds it is asked to let go,
  // and Claim waits for it (up to `wait`): the active task then starts
  // from the standby's copy.
  std::string Claim(const std::string& task,
                    std::chrono::milliseconds wait = std::chrono::seconds(30));
  void Release(const std::string& task);

  // The directory for a standby of `task`, unless an active task of this
  // process holds it or waits for it (Claim). Released with Release.
  std::optional<std::string> ClaimStandby(const std::string& task);
  // Whether a standby of this process holds `task`'s directory.
  bool HeldByStandby(const std::string& task) const;
  // Whether an active task waits for the standby of `task` to let go.
  bool ReleaseRequested(const std::string& task) const;

  // Removes the task directories unclaimed for longer than `delay`; returns
  // the names removed (a crash in the middle leaves a partly removed
  // directory, which the next open finds damaged, wipes and restores).
  std::vector<std::string> CleanUp(std::chrono::milliseconds delay);

 private:
  const std::string dir_;
  mutable std::mutex mu_;
  std::condition_variable released_cv_;
  std::set<std::string> claimed_;
  std::set<std::string> standby_;            // claimed by a standby
  std::set<std::string> release_requested_;  // standbys asked to let go
  std::map<std::string, std::chrono::system_clock::time_point> released_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_STATE_DIRECTORY_H_
