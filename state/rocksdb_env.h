// RocksDbEnv: the RocksDB pieces that all task databases of a process share,
// so that memory stays within one budget however many tasks an instance
// owns.
//
// Every task has its own RocksDB database (see TaskStorage). Left alone, each
// database would get its own block cache and its own memtables, and memory
// would grow with the number of tasks. Instead, all databases opened with the
// same RocksDbEnv share one LRU block cache (which also holds index and
// filter blocks) and one WriteBufferManager (which caps the memtables of all
// of them together, flushing the largest when the cap is reached). The
// memory bound is then roughly block_cache_bytes + write_buffer_manager_bytes
// plus per-database overhead, as with Kafka Streams'
// BoundedMemoryRocksDBConfig.
//
// Owner: the engine creates one per process and hands a shared_ptr to each
// TaskStorage; it lives as long as the last database using it.
// Thread-safety: immutable after Create; safe to share across threads.
#ifndef KCQRS_STATE_ROCKSDB_ENV_H_
#define KCQRS_STATE_ROCKSDB_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace kcqrs::state {

enum class RocksDbCompression { kNone, kSnappy, kLz4, kZstd };

// Whether this build of RocksDB can write files compressed so.
bool RocksDbSupports(RocksDbCompression compression);

struct RocksDbEnvOptions {
  // Bytes of the LRU block cache shared by every task database: data, index
  // and filter blocks. Default 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;

  // Bytes of memtables allowed across all task databases together. When the
  // total passes this, RocksDB flushes. Default 64 MiB.
  size_t write_buffer_manager_bytes = size_t{64} << 20;

  // Bytes of one memtable of one store (column family) before it is
  // switched and flushed. Default 8 MiB: small, because a process may have
  // many tasks times many stores, and the shared cap above binds first.
  size_t write_buffer_bytes = size_t{8} << 20;

  // Writes (Apply and RestoreBatch) a task database takes without a WAL
  // before it flushes its memtables, in the background: the most a kill -9
  // makes the task restore from its changelogs. 0: only when a memtable is
  // full. Default 10,000.
  uint64_t max_unflushed_writes = 10'000;

  // Open SST file handles kept per task database; -1 keeps all open.
  // Default 256, so that hundreds of tasks do not exhaust file descriptors.
  int max_open_files_per_db = 256;

  // Background flush and compaction jobs per task database. Default 2.
  int max_background_jobs = 2;

  // Compression of the SST files of every store. Default none: the values
  // are small documents, read back mostly from the caches in front.
  RocksDbCompression compression = RocksDbCompression::kNone;
};

class RocksDbEnv {
 public:
  // Never fails: creating a cache and a write buffer manager only allocates.
  static std::shared_ptr<RocksDbEnv> Create(
      const RocksDbEnvOptions& options = {});

  ~RocksDbEnv();
  RocksDbEnv(const RocksDbEnv&) = delete;
  RocksDbEnv& operator=(const RocksDbEnv&) = delete;

  const RocksDbEnvOptions& options() const;

  // The RocksDB objects; defined in rocksdb_task_storage.cc, the only
  // translation unit that includes RocksDB.
  struct Rep;
  const Rep& rep() const { return *rep_; }

 private:
  explicit RocksDbEnv(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace kcqrs::state

#endif  // KCQRS_STATE_ROCKSDB_ENV_H_
