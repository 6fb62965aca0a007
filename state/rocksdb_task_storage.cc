// The RocksDB implementation of TaskStorage, and RocksDbEnv. The only
// translation unit of kcqrs that includes RocksDB.

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "state/key_ranges.h"
#include "state/rocksdb_layout.h"
#include "state/task_storage.h"

namespace kcqrs::state {

struct RocksDbEnv::Rep {
  RocksDbEnvOptions options;
  std::shared_ptr<rocksdb::Cache> block_cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager;
};

RocksDbEnv::RocksDbEnv(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
RocksDbEnv::~RocksDbEnv() = default;

std::shared_ptr<RocksDbEnv> RocksDbEnv::Create(
    const RocksDbEnvOptions& options) {
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  rep->block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rep->write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      options.write_buffer_manager_bytes);
  return std::shared_ptr<RocksDbEnv>(new RocksDbEnv(std::move(rep)));
}

const RocksDbEnvOptions& RocksDbEnv::options() const { return rep_->options; }

namespace {

rocksdb::CompressionType ToRocksDb(RocksDbCompression c) {
  switch (c) {
    case RocksDbCompression::kSnappy:
      return rocksdb::kSnappyCompression;
    case RocksDbCompression::kLz4:
      return rocksdb::kLZ4Compression;
    case RocksDbCompression::kZstd:
      return rocksdb::kZSTD;
    case RocksDbCompression::kNone:
      break;
  }
  return rocksdb::kNoCompression;
}

}  // namespace

bool RocksDbSupports(RocksDbCompression compression) {
  const rocksdb::CompressionType type = ToRocksDb(compression);
  if (type == rocksdb::kNoCompression) return true;
  for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions()) {
    if (t == type) return true;
  }
  return false;
}

namespace {

namespace layout = rocksdb_layout;

Status FromRocksDb(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNotFound() || s.IsPathNotFound())
    return Status::NotFound(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  if (s.IsNotSupported()) return Status::NotSupported(std::move(msg));
  if (s.IsBusy() || s.IsTryAgain() || s.IsIncomplete())
    return Status::Unavailable(std::move(msg));
  if (s.IsTimedOut()) return Status::TimedOut(std::move(msg));
  if (s.IsIOError()) return Status::IoError(std::move(msg));
  return Status::Internal(std::move(msg));
}

// Opening an existing database fails mostly because its files are damaged or
// missing (a half-written or foreign directory). Those become Corruption, the
// code on which the engine wipes the directory and restores from the
// changelog. A held lock and plain I/O failures (disk full, permissions)
// are not healed by wiping, so they keep their own codes.
Status OpenError(const rocksdb::Status& s, const std::string& dir) {
  const std::string context = "opening state directory " + dir;
  const std::string text = s.ToString();
  if (s.IsIOError() && (text.find("lock") != std::string::npos ||
                        text.find("LOCK") != std::string::npos)) {
    return Status::FailedPrecondition(context + ": " + text +
                                      " (the directory is open elsewhere)");
  }
  if (s.IsCorruption() || s.IsNotFound() || s.IsPathNotFound() ||
      s.IsInvalidArgument() || s.IsNotSupported()) {
    return Status::Corruption(context + ": " + text);
  }
  return FromRocksDb(s, context);
}

// Commits and restores skip RocksDB's WAL: Kafka's changelog is the log,
// and a write to both costs a write() and a checksum per commit.
rocksdb::WriteOptions NoWal() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return wo;
}

// Writes the memtables of `cfs` to files, all together (atomic_flush).
// Without `wait` the memtables are switched now and written out by RocksDB's
// background threads.
rocksdb::Status FlushAll(rocksdb::DB* db,
                         const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
                         bool wait = true) {
  rocksdb::FlushOptions fo;
  fo.wait = wait;
  fo.allow_write_stall = !wait;
  return db->Flush(fo, cfs);
}

Status ClosedError(const std::string& dir) {
  return Status::Unavailable("state directory " + dir +
                             " is closed (the task was closed or migrated)");
}

class RocksIterator;

// The open database, shared by the TaskStorage and every Reader view, so a
// view can never touch a freed DB. Close (owner thread) takes `mu`
// exclusively: it waits for reads in flight, then releases the RocksDB
// iterators still held by views (RocksDB requires that before closing) and
// the database itself, after which views answer Unavailable.
class DbHandle {
 public:
  DbHandle(std::shared_ptr<RocksDbEnv> env, std::string dir)
      : env_(std::move(env)), dir_(std::move(dir)) {}
  ~DbHandle() { (void)Close(); }
  DbHandle(const DbHandle&) = delete;
  DbHandle& operator=(const DbHandle&) = delete;

  const std::string& dir() const { return dir_; }

  // Set once, before the handle is shared.
  void Adopt(rocksdb::DB* db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles) {
    db_.reset(db);
    cf_handles_ = std::move(handles);
  }
  const std::vector<rocksdb::ColumnFamilyHandle*>& cf_handles() const {
    return cf_handles_;
  }

  // The database; only while `mu()` is held (shared is enough) and !closed(),
  // or from the owner thread, which is the only one that closes.
  rocksdb::DB* db() const { return db_.get(); }
  std::shared_mutex& mu() const { return mu_; }
  bool closed() const { return closed_; }

  void Register(RocksIterator* it) {
    std::lock_guard<std::mutex> lock(iterators_mu_);
    iterators_.insert(it);
  }
  void Unregister(RocksIterator* it) {
    std::lock_guard<std::mutex> lock(iterators_mu_);
    iterators_.erase(it);
  }

  Status Close();

 private:
  // Declared first so it is destroyed last: the cache and write buffer
  // manager must outlive the database that uses them.
  std::shared_ptr<RocksDbEnv> env_;
  const std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*>
      cf_handles_;  // owned; freed by Close

  mutable std::shared_mutex mu_;  // shared: a read in flight; exclusive: Close
  bool closed_ = false;           // written under exclusive mu_

  std::mutex iterators_mu_;  // taken inside mu_ (either mode), never around it
  std::set<RocksIterator*> iterators_;
};

// An iterator over one snapshot of one column family: RocksDB iterators pin
// the sequence number current at creation. key() and value() are copies, so
// they stay valid even when Close releases the RocksDB iterator underneath.
// Used by one thread at a time, like any iterator; Close may run on another.
class RocksIterator final : public KeyValueIterator {
 public:
  RocksIterator(std::shared_ptr<DbHandle> handle,
                rocksdb::ColumnFamilyHandle* cf, std::string_view from,
                std::string_view to)
      : handle_(std::move(handle)), upper_(to) {
    if (EmptyRange(from, to)) return;
    std::shared_lock<std::shared_mutex> lock(handle_->mu());
    if (handle_->closed()) {
      status_ = ClosedError(handle_->dir());
      return;
    }
    rocksdb::ReadOptions ro;
    if (!upper_.empty()) {
      upper_slice_ = rocksdb::Slice(upper_);
      ro.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(handle_->db()->NewIterator(ro, cf));
    handle_->Register(this);
    registered_ = true;
    it_->Seek(rocksdb::Slice(from.data(), from.size()));
    Load();
  }

  ~RocksIterator() override {
    if (!registered_) return;
    std::shared_lock<std::shared_mutex> lock(handle_->mu());
    handle_->Unregister(this);
    it_.reset();
  }

  bool Valid() const override { return valid_; }

  void Next() override {
    if (!valid_) return;
    std::shared_lock<std::shared_mutex> lock(handle_->mu());
    if (!it_) {
      valid_ = false;
      status_ = ClosedError(handle_->dir());
      return;
    }
    it_->Next();
    Load();
  }

  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

  // Called by DbHandle::Close with mu held exclusively.
  void ReleaseForClose() { it_.reset(); }

 private:
  void Load() {
    valid_ = it_->Valid();
    if (valid_) {
      key_.assign(it_->key().data(), it_->key().size());
      value_.assign(it_->value().data(), it_->value().size());
    } else {
      status_ = FromRocksDb(it_->status(),
                            "iterating state directory " + handle_->dir());
    }
  }

  const std::shared_ptr<DbHandle> handle_;
  const std::string upper_;
  rocksdb::Slice upper_slice_;             // points into upper_; outlives it_
  std::unique_ptr<rocksdb::Iterator> it_;  // guarded by handle_->mu()
  bool registered_ = false;
  bool valid_ = false;
  std::string key_;
  std::string value_;
  Status status_;
};

Status DbHandle::Close() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  if (!db_) return Status::OK();
  {
    std::lock_guard<std::mutex> iterators_lock(iterators_mu_);
    for (RocksIterator* it : iterators_) it->ReleaseForClose();
  }
  // Without a WAL the memtables hold the newest commits only in memory:
  // written to files here, so that a clean close (a rebalance, a shutdown)
  // leaves nothing for the changelog to restore. RocksDB would flush them
  // on Close too; done here so that a failure is reported.
  rocksdb::Status result = FlushAll(db_.get(), cf_handles_);
  for (rocksdb::ColumnFamilyHandle* cf : cf_handles_) {
    rocksdb::Status s = db_->DestroyColumnFamilyHandle(cf);
    if (result.ok()) result = s;
  }
  cf_handles_.clear();
  rocksdb::Status s = db_->Close();
  if (result.ok()) result = s;
  db_.reset();
  return FromRocksDb(result, "closing state directory " + dir_);
}

// A read-only view of one store's committed data. Each call takes the
// handle's lock in shared mode, so any number of query threads read in
// parallel with each other and with the owner's commits (RocksDB's own
// concurrency), and only Close waits for them.
class RocksReader final : public ReadOnlyKeyValueStore {
 public:
  RocksReader(std::shared_ptr<DbHandle> handle, rocksdb::ColumnFamilyHandle* cf,
              std::string name)
      : handle_(std::move(handle)), cf_(cf), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    std::shared_lock<std::shared_mutex> lock(handle_->mu());
    if (handle_->closed()) return ClosedError(handle_->dir());
    rocksdb::PinnableSlice value;
    rocksdb::Status s =
        handle_->db()->Get(rocksdb::ReadOptions(), cf_,
                           rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok())
      return FromRocksDb(s, "reading store " + name_ + " in " + handle_->dir());
    return std::optional<std::string>(value.ToString());
  }

  std::unique_ptr<KeyValueIterator> Range(std::string_view from,
                                          std::string_view to) const override {
    return std::make_unique<RocksIterator>(handle_, cf_, from, to);
  }

  std::unique_ptr<KeyValueIterator> Prefix(
      std::string_view prefix) const override {
    return Range(prefix, PrefixSuccessor(prefix));
  }

  uint64_t ApproximateNumEntries() const override {
    std::shared_lock<std::shared_mutex> lock(handle_->mu());
    if (handle_->closed()) return 0;
    uint64_t n = 0;
    if (!handle_->db()->GetIntProperty(cf_, "rocksdb.estimate-num-keys", &n))
      return 0;
    return n;
  }

 private:
  const std::shared_ptr<DbHandle> handle_;
  rocksdb::ColumnFamilyHandle* const
      cf_;  // owned by handle_; used only while open
  const std::string name_;
};

class RocksDbTaskStorage final : public TaskStorage {
 public:
  RocksDbTaskStorage(
      std::shared_ptr<DbHandle> handle, std::vector<std::string> store_names,
      std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>>
          store_cfs,
      rocksdb::ColumnFamilyHandle* meta_cf, Checkpoint checkpoint,
      uint64_t max_unflushed_writes)
      : handle_(std::move(handle)),
        store_names_(std::move(store_names)),
        store_cfs_(std::move(store_cfs)),
        meta_cf_(meta_cf),
        max_unflushed_writes_(max_unflushed_writes),
        checkpoint_(std::move(checkpoint)) {
    for (const auto& [name, cf] : store_cfs_) {
      readers_.emplace(name, std::make_shared<RocksReader>(handle_, cf, name));
    }
  }
  ~RocksDbTaskStorage() override { (void)Close(); }

  const std::vector<std::string>& store_names() const override {
    return store_names_;
  }

  Result<Checkpoint> ReadCheckpoint() const override {
    if (handle_->closed()) return ClosedError(handle_->dir());
    return checkpoint_;
  }

  Status Apply(const WriteSet& writes, const Checkpoint& checkpoint) override {
    if (handle_->closed()) {
      return Status::FailedPrecondition("apply to closed state directory " +
                                        handle_->dir());
    }
    rocksdb::WriteBatch batch;
    uint64_t count = 0;
    for (const auto& [store, store_writes] : writes) {
      if (store_writes.empty()) continue;
      count += store_writes.size();
      auto cf = store_cfs_.find(store);
      if (cf == store_cfs_.end()) {
        return Status::InvalidArgument("apply to unknown store '" + store +
                                       "' in " + handle_->dir());
      }
      // In key order: RocksDB's memtable insert hint walks on from the
      // previous key (the column families' insert-with-hint option).
      for (const StoreWrites::Entry* e : store_writes.Sorted()) {
        const auto& [key, value] = *e;
        rocksdb::Status s = value ? batch.Put(cf->second, key, *value)
                                  : batch.Delete(cf->second, key);
        if (!s.ok())
          return FromRocksDb(s, "batching a write to store " + store);
      }
    }
    Checkpoint merged = checkpoint_;
    MergeCheckpoint(checkpoint, &merged);
    rocksdb::Status s = batch.Put(meta_cf_,
                                  rocksdb::Slice(layout::kCheckpointKey.data(),
                                                 layout::kCheckpointKey.size()),
                                  EncodeCheckpoint(merged));
    if (!s.ok()) return FromRocksDb(s, "batching the checkpoint");

    // No WAL: the changelog is the log (see TaskStorage::Apply).
    s = handle_->db()->Write(NoWal(), &batch);
    if (!s.ok())
      return FromRocksDb(s, "committing to state directory " + handle_->dir());
    checkpoint_ = std::move(merged);
    // What only the memtables hold is what a kill -9 makes the task restore
    // from its changelogs: bounded by flushing, in the background.
    unflushed_writes_ += count;
    if (max_unflushed_writes_ > 0 && unflushed_writes_ >= max_unflushed_writes_) {
      s = FlushAll(handle_->db(), handle_->cf_handles(), /*wait=*/false);
      if (!s.ok())
        return FromRocksDb(s, "flushing state directory " + handle_->dir());
      unflushed_writes_ = 0;
    }
    return Status::OK();
  }

  std::shared_ptr<const ReadOnlyKeyValueStore> Reader(
      const std::string& store) const override {
    auto it = readers_.find(store);
    if (it == readers_.end()) return nullptr;
    return it->second;
  }

  Status Close() override { return handle_->Close(); }

 private:
  const std::shared_ptr<DbHandle> handle_;
  const std::vector<std::string> store_names_;
  const std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>>
      store_cfs_;
  rocksdb::ColumnFamilyHandle* const meta_cf_;
  const uint64_t max_unflushed_writes_;  // 0: RocksDB flushes when full
  uint64_t unflushed_writes_ = 0;        // store writes since the last flush
  Checkpoint
      checkpoint_;  // what the database holds; kept to merge without a read
  std::map<std::string, std::shared_ptr<const ReadOnlyKeyValueStore>,
           std::less<>>
      readers_;
};

rocksdb::BlockBasedTableOptions TableOptions(const RocksDbEnv::Rep& env) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = env.block_cache;
  // Index and filter blocks count against the shared cache too; otherwise
  // they grow outside the budget with the data.
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // Processors mostly Get by aggregate id: a bloom filter saves disk reads.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  return t;
}

rocksdb::ColumnFamilyOptions StoreOptions(const RocksDbEnv::Rep& env) {
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(TableOptions(env)));
  cf.write_buffer_size = env.options.write_buffer_bytes;
  // A commit writes each store's keys in key order (the write set is
  // sorted), so each insert lands just after the previous one. Without a
  // hint, the skiplist searches such an insert again from the top (57 key
  // comparisons an insert in micro_bench); with one hint shared by every key
  // (the empty prefix), it walks on from the last insert (31). Measured: a
  // commit 37% fewer instructions (docs/benchmarks.md).
  cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewCappedPrefixTransform(0));
  cf.compression = ToRocksDb(env.options.compression);
  // A whole-key bloom filter in the memtable: a key that is not there (an
  // aggregate's first command, a view's first event, a 404 over HTTP) is
  // known absent without a skiplist search. 2% of the memtable (about 50
  // bits a key for documents of a few hundred bytes); measured: reads of
  // absent keys through RocksDB 66% fewer instructions, commits unchanged.
  cf.memtable_prefix_bloom_size_ratio = 0.02;
  cf.memtable_whole_key_filtering = true;
  return cf;
}

rocksdb::ColumnFamilyOptions MetaOptions(const RocksDbEnv::Rep& env) {
  rocksdb::ColumnFamilyOptions cf = StoreOptions(env);
  // One small key rewritten per commit.
  cf.write_buffer_size = size_t{1} << 20;
  return cf;
}

rocksdb::DBOptions DbOptions(const RocksDbEnv::Rep& env, bool create) {
  rocksdb::DBOptions o;
  o.create_if_missing = create;
  o.create_missing_column_families = true;
  o.write_buffer_manager = env.write_buffer_manager;
  // Writes skip the WAL (TaskStorage::Apply), so what survives a crash is
  // what the memtables last flushed to files. Flushing every column family
  // of the database together keeps that a state some commit left: the
  // stores' data and the checkpoint in kcqrs.meta from the same commit.
  o.atomic_flush = true;
  // Only the WAL an older kcqrs wrote, replayed once at open: every commit
  // in it is one WriteBatch carrying its own checkpoint, so recovering up to
  // the last intact batch is consistent.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.max_open_files = env.options.max_open_files_per_db;
  o.max_background_jobs = env.options.max_background_jobs;
  // RocksDB's info LOG lives in each task directory; keep it small.
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.keep_log_file_num = 2;
  o.max_log_file_size = size_t{1} << 20;
  return o;
}

std::vector<std::string> Dedup(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const std::string& n : names) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

// Creates `dir` when missing. Sets *existing_db when it holds a RocksDB
// database (a CURRENT file). A directory with files but no CURRENT is not one
// RocksDB would refuse: it would quietly create a new database beside the
// debris. Call it Corruption instead, so that the engine wipes it and
// restores fully.
Status PrepareDirectory(const std::string& dir, bool* existing_db) {
  namespace fs = std::filesystem;
  const fs::path path(dir);
  std::error_code ec;
  auto io_error = [&](std::string_view what) {
    return Status::IoError(std::string(what) + " state directory " + dir +
                           ": " + ec.message());
  };
  const fs::file_status st = fs::status(path, ec);
  if (ec && st.type() != fs::file_type::not_found)
    return io_error("inspecting");
  if (st.type() == fs::file_type::not_found) {
    fs::create_directories(path, ec);
    if (ec) return io_error("creating");
    *existing_db = false;
    return Status::OK();
  }
  if (st.type() != fs::file_type::directory) {
    return Status::Corruption("state directory " + dir +
                              " exists but is not a directory");
  }
  *existing_db = fs::exists(path / "CURRENT", ec);
  if (ec) return io_error("inspecting");
  if (*existing_db) return Status::OK();
  const bool empty = fs::is_empty(path, ec);
  if (ec) return io_error("inspecting");
  if (!empty) {
    return Status::Corruption(
        "state directory " + dir +
        " has files but no RocksDB CURRENT file: not a kcqrs state "
        "directory, or its creation was cut short");
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<TaskStorage>> TaskStorage::OpenRocksDb(
    const std::string& dir, const std::vector<std::string>& store_names,
    std::shared_ptr<RocksDbEnv> env) {
  if (!env) env = RocksDbEnv::Create();
  bool existing_db = false;
  KCQRS_RETURN_IF_ERROR(PrepareDirectory(dir, &existing_db));

  const RocksDbEnv::Rep& rep = env->rep();
  const rocksdb::DBOptions db_options = DbOptions(rep, /*create=*/!existing_db);
  const std::string meta_name(layout::kMetaColumnFamily);

  std::set<std::string> cf_names = {rocksdb::kDefaultColumnFamilyName,
                                    meta_name};
  if (existing_db) {
    std::vector<std::string> existing;
    rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(db_options, dir, &existing);
    if (!s.ok()) return OpenError(s, dir);
    if (std::find(existing.begin(), existing.end(), meta_name) ==
        existing.end()) {
      return Status::Corruption(
          "state directory " + dir + " holds a RocksDB database without the '" +
          meta_name +
          "' column family: a damaged MANIFEST, or not a kcqrs state "
          "directory");
    }
    cf_names.insert(existing.begin(), existing.end());
  }
  const std::vector<std::string> stores = Dedup(store_names);
  for (const std::string& store : stores)
    cf_names.insert(layout::StoreColumnFamily(store));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : cf_names) {
    descriptors.emplace_back(
        name, name == meta_name ? MetaOptions(rep) : StoreOptions(rep));
  }
  rocksdb::DB* raw_db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, dir, descriptors, &handles, &raw_db);
  if (!s.ok()) return OpenError(s, dir);
  auto handle = std::make_shared<DbHandle>(env, dir);
  handle->Adopt(
      raw_db, handles);  // from here on, the handle closes the DB on every path

  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name;
  for (size_t i = 0; i < descriptors.size(); ++i)
    by_name[descriptors[i].name] = handles[i];
  rocksdb::ColumnFamilyHandle* meta_cf = by_name.at(meta_name);
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> store_cfs;
  for (const std::string& store : stores) {
    store_cfs[store] = by_name.at(layout::StoreColumnFamily(store));
  }

  auto read_meta = [&](std::string_view key, std::string* value) {
    return raw_db->Get(rocksdb::ReadOptions(), meta_cf,
                       rocksdb::Slice(key.data(), key.size()), value);
  };
  Checkpoint checkpoint;
  if (existing_db) {
    std::string format;
    s = read_meta(layout::kFormatKey, &format);
    if (s.IsNotFound() || (s.ok() && format != layout::kFormatValue)) {
      return Status::Corruption(
          "state directory " + dir + ": format marker is '" + format +
          "', expected '" + std::string(layout::kFormatValue) + "'");
    }
    if (!s.ok()) return OpenError(s, dir);
    std::string encoded;
    s = read_meta(layout::kCheckpointKey, &encoded);
    if (s.IsNotFound()) {
      return Status::Corruption("state directory " + dir +
                                " has no checkpoint");
    }
    if (!s.ok()) return OpenError(s, dir);
    Result<Checkpoint> decoded = DecodeCheckpoint(encoded);
    if (!decoded.ok())
      return decoded.status().WithContext("state directory " + dir);
    checkpoint = std::move(decoded).value();
  } else {
    // Marker and empty checkpoint in one batch: a crash before this write
    // leaves a database without a marker, which the next open calls
    // Corruption, which wipes a directory that held nothing anyway.
    rocksdb::WriteBatch batch;
    s = batch.Put(
        meta_cf,
        rocksdb::Slice(layout::kFormatKey.data(), layout::kFormatKey.size()),
        rocksdb::Slice(layout::kFormatValue.data(),
                       layout::kFormatValue.size()));
    if (s.ok()) {
      s = batch.Put(meta_cf,
                    rocksdb::Slice(layout::kCheckpointKey.data(),
                                   layout::kCheckpointKey.size()),
                    EncodeCheckpoint(Checkpoint{}));
    }
    if (s.ok()) s = raw_db->Write(NoWal(), &batch);
    if (s.ok()) s = FlushAll(raw_db, handle->cf_handles());
    if (!s.ok()) return FromRocksDb(s, "initializing state directory " + dir);
  }
  return std::unique_ptr<TaskStorage>(
      new RocksDbTaskStorage(std::move(handle), stores, std::move(store_cfs),
                             meta_cf, std::move(checkpoint),
                             env->options().max_unflushed_writes));
}

Status TaskStorage::Destroy(const std::string& dir) {
  // Not rocksdb::DestroyDB: it leaves files it does not know, and a damaged
  // directory is exactly what Destroy is for.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec)
    return Status::IoError("removing state directory " + dir + ": " +
                           ec.message());
  return Status::OK();
}

}  // namespace kcqrs::state
