// TaskState: the transactional local state of one task, as processors see it.
//
// During a Kafka transaction every write goes to an in-memory write buffer
// (so the processor reads its own writes). Before the transaction commits,
// FlushChangelog hands the buffer's last value of each key to the
// ChangelogSink (so the changelog records join the same Kafka transaction):
// a key written many times in one commit interval (a product total moved
// by every order) costs one changelog record, as Kafka Streams' record
// cache makes it. Nothing reaches
// TaskStorage until the engine, after Kafka has committed the transaction,
// calls Commit with the new checkpoint; Abort (an aborted or fenced
// transaction) throws the buffer away. Local state is therefore never ahead
// of Kafka, and restore after a crash replays only the changelog tail past
// the checkpoint.
//
// Owner: the task, owned by exactly one stream thread. TaskState owns its
// TaskStorage and borrows the sink. Thread-safety: none; use only from the
// owning stream thread. Queries from other threads go through
// storage().Reader(), which sees committed data only.
#ifndef KCQRS_STATE_TASK_STATE_H_
#define KCQRS_STATE_TASK_STATE_H_

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kcqrs/key_value_store.h"
#include "kcqrs/status.h"
#include "state/changelog_sink.h"
#include "state/checkpoint.h"
#include "state/task_storage.h"

namespace kcqrs::state {

class TransactionalStore;

// What TaskState::Store returns: a KeyValueStore that can also take a write
// over. The task's per-record scope hands each record's writes on with
// Take, so a value is not copied once more on its way into the buffer.
class BufferedStore : public KeyValueStore {
 public:
  // Put (`value` set) or Delete (nullopt), taking `key` and `value` over.
  virtual Status Take(std::string key, std::optional<std::string> value) = 0;
};

class TaskState {
 public:
  // `storage` must be non-null. `sink` may be null, meaning the stores are
  // not changelogged (tests; state that need not survive the instance); it
  // must otherwise outlive the TaskState. `cache_bytes` bounds the
  // committed values kept in memory in front of storage (value_cache.h),
  // split evenly among the stores; 0 reads storage every time.
  TaskState(std::unique_ptr<TaskStorage> storage, ChangelogSink* sink,
            size_t cache_bytes = 0);
  ~TaskState();
  TaskState(const TaskState&) = delete;
  TaskState& operator=(const TaskState&) = delete;

  // The transactional store named `name`, or nullptr when the task has no
  // such store. Valid as long as the TaskState. Get reads the write buffer,
  // then committed data. Put and Delete buffer the write. Range
  // and Prefix merge buffer and committed data in key order, buffered
  // deletes hiding committed keys; an iterator works on a copy of the
  // buffered part and a snapshot of the committed part taken when it was
  // created, so later writes, Commit and Abort do not disturb it.
  BufferedStore* Store(const std::string& name);

  // Hands each buffered write (the last value of each key written since the
  // last Commit or Abort) to the sink, store by store in key order. Call it
  // right before the Kafka transaction commits; an error leaves that
  // transaction to be aborted. Writes after it need another flush.
  Status FlushChangelog();

  // Applies every store's buffered writes and merges `checkpoint` into the
  // stored one in one atomic write, then empties the buffer. Call it only
  // after Kafka has committed the transaction that carried the changelog
  // records (FailedPrecondition when writes were not flushed to the sink).
  // On error the buffer is kept (a retry may succeed); the engine may
  // instead close the task and restore: the changelog holds the writes.
  Status Commit(const Checkpoint& checkpoint);

  // Discards the buffered writes (the transaction was aborted or fenced).
  void Abort();

  // True when writes are buffered that Commit has not applied yet.
  bool dirty() const { return buffered_entries_ > 0; }

  // Hits and misses of the stores' value caches, and the bytes they hold.
  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t bytes = 0;
  };
  CacheStats cache_stats() const;
  // The value cache of `store` (zeros for an unknown store): hits and
  // misses since the previous call for that store, so that the engine can
  // add them to its counters, and the bytes it holds now.
  CacheStats TakeCacheStats(const std::string& store);

  // Approximate heap bytes the write buffer holds (keys, values and a
  // per-entry overhead), so the engine can commit early when it grows.
  size_t buffered_bytes() const { return buffered_bytes_; }

  // Applies records read back from `changelog` (nullopt value = tombstone;
  // a later record for a key wins) to committed storage, and sets the
  // checkpoint of `changelog` to `next_offset`, in one atomic write. Used by
  // the engine's changelog reader during restore; never calls the sink.
  // FailedPrecondition while writes are buffered: restore happens before
  // processing, never in the middle of a transaction.
  Status RestoreBatch(
      const std::string& store,
      const std::vector<std::pair<std::string, std::optional<std::string>>>&
          records,
      const TopicPartition& changelog, int64_t next_offset);

  TaskStorage& storage() { return *storage_; }
  const TaskStorage& storage() const { return *storage_; }

 private:
  friend class TransactionalStore;

  std::unique_ptr<TaskStorage> storage_;
  ChangelogSink* sink_;  // not owned; may be null
  // One (possibly empty) entry per store, created up front so that each
  // TransactionalStore can keep a stable pointer to its own writes.
  WriteSet buffer_;
  std::map<std::string, std::unique_ptr<TransactionalStore>, std::less<>>
      stores_;
  size_t buffered_entries_ = 0;
  size_t buffered_bytes_ = 0;
  bool unflushed_ = false;  // writes the sink has not been handed yet
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_TASK_STATE_H_
