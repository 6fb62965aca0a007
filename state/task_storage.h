// TaskStorage: the committed local state of one task — every store of the
// task plus the checkpoint saying how far that state reaches.
//
// The RocksDB implementation keeps ONE database per task directory, with one
// column family per store and a private column family for the checkpoint, so
// that a commit (all stores' writes plus the new checkpoint) is one atomic
// RocksDB WriteBatch. The memory implementation has the same contract
// without durability; it serves tests and the TopologyTestDriver.
//
// Owner: the stream thread that owns the task (normally through TaskState).
// Thread-safety: Apply, ReadCheckpoint and Close are for the owning thread
// only. Reader() views are safe for concurrent use from any number of
// threads (HTTP queries) while the owner applies commits, and stay safe
// after Close or destruction: they then answer Status::Unavailable.
#ifndef KCQRS_STATE_TASK_STORAGE_H_
#define KCQRS_STATE_TASK_STORAGE_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kcqrs/key_value_store.h"
#include "kcqrs/status.h"
#include "state/checkpoint.h"
#include "state/rocksdb_env.h"
#include "state/write_buffer.h"

namespace kcqrs::state {

// Writes per store name (StoreWrites: state/write_buffer.h).
using WriteSet = std::map<std::string, StoreWrites, std::less<>>;

class TaskStorage {
 public:
  // Opens (or creates) the task database in `dir`, with a column family for
  // each of `store_names` (created when missing; column families of stores no
  // longer named are kept, not dropped, so a topology rollback finds them).
  // A missing or empty directory gives empty state and an empty checkpoint.
  // A directory that is not a kcqrs state database, a damaged database, or an
  // unparseable checkpoint gives Status::Corruption naming `dir`: the engine
  // then calls Destroy(dir) and restores from the changelog. A directory
  // still open elsewhere gives Status::FailedPrecondition. `env` may be null
  // (a private RocksDbEnv with default options is then created).
  static Result<std::unique_ptr<TaskStorage>> OpenRocksDb(
      const std::string& dir, const std::vector<std::string>& store_names,
      std::shared_ptr<RocksDbEnv> env);

  // Empty state held in memory; nothing survives destruction.
  static std::unique_ptr<TaskStorage> OpenMemory(
      const std::vector<std::string>& store_names);

  // Removes `dir` and everything in it (RocksDB files or garbage alike). OK
  // when `dir` does not exist. The database must not be open.
  static Status Destroy(const std::string& dir);

  virtual ~TaskStorage() = default;
  TaskStorage(const TaskStorage&) = delete;
  TaskStorage& operator=(const TaskStorage&) = delete;

  // The stores this storage serves, in the order given at open.
  virtual const std::vector<std::string>& store_names() const = 0;

  // The checkpoint written by the last successful Apply (or found at open).
  virtual Result<Checkpoint> ReadCheckpoint() const = 0;

  // Applies `writes` and merges `checkpoint` into the stored checkpoint (see
  // MergeCheckpoint) in one atomic write: after a crash either all of it is
  // there or none of it. RocksDB: no WAL, since Kafka's changelog already
  // holds every commit; the memtables of all the stores and the checkpoint
  // are flushed to files together (atomic flush): past
  // RocksDbEnvOptions::max_unflushed_writes writes, when a memtable is full,
  // and on Close. So a killed process (or a power loss) falls back to the
  // last flush: the newest commits are lost, but always as a whole, together
  // with their checkpoint, and the changelog tail past the surviving
  // checkpoint restores them. A write set naming an unknown store gives
  // InvalidArgument and writes nothing.
  virtual Status Apply(const WriteSet& writes,
                       const Checkpoint& checkpoint) = 0;

  // A read-only view of the COMMITTED data of `store` (never the write
  // buffer), or nullptr when the store is unknown. Get reads the latest
  // commit; Range and Prefix iterate one consistent snapshot (a commit
  // happening during the scan is either wholly in it or wholly not). The
  // view holds the database alive by shared ownership; after Close, calls
  // return Status::Unavailable (iterators: !Valid() with that status) — a
  // view never outlives into a reopened database, so query code fetches a
  // fresh view after a rebalance.
  virtual std::shared_ptr<const ReadOnlyKeyValueStore> Reader(
      const std::string& store) const = 0;

  // Closes the database: waits for reads in flight, invalidates open
  // iterators, releases files and the directory lock. Idempotent; the
  // destructor calls it. Apply after Close gives FailedPrecondition.
  virtual Status Close() = 0;

 protected:
  TaskStorage() = default;
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_TASK_STORAGE_H_
