// What only the RocksDB storage promises: durability across reopen and
// process death, detection of damaged directories, the directory lock, and
// reader views that survive Close.

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "state/rocksdb_layout.h"
#include "state/task_state.h"
#include "state/task_storage.h"
#include "tests/state/crash_child.h"
#include "tests/state/state_test_util.h"

extern char** environ;

namespace kcqrs::state {
namespace {

namespace fs = std::filesystem;
using testing::Collect;
using testing::GetOr;
using testing::KeyValues;

const std::vector<std::string> kStores = {"orders", "views"};

Checkpoint SampleCheckpoint(int64_t offset) {
  Checkpoint cp;
  cp.changelog_offsets[{"app-orders-changelog", 1}] = offset;
  cp.metadata["input/commands/1"] = std::to_string(offset * 10);
  return cp;
}

class RocksDbTaskStorageTest : public ::testing::Test {
 protected:
  std::unique_ptr<TaskStorage> MustOpen(
      const std::vector<std::string>& stores = kStores) {
    Result<std::unique_ptr<TaskStorage>> r =
        TaskStorage::OpenRocksDb(dir_.path(), stores, env_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<TaskState> MustOpenState(
      const std::vector<std::string>& stores = kStores) {
    std::unique_ptr<TaskStorage> storage = MustOpen(stores);
    if (!storage) return nullptr;
    return std::make_unique<TaskState>(std::move(storage), &sink_);
  }
  Status OpenStatus() {
    return TaskStorage::OpenRocksDb(dir_.path(), kStores, env_).status();
  }
  // Writes "o1" and "v1" and commits them with SampleCheckpoint(offset).
  void WriteAndCommit(TaskState* state, int64_t offset) {
    ASSERT_TRUE(state->Store("orders")->Put("o1", "placed").ok());
    ASSERT_TRUE(state->Store("views")->Put("v1", "1 order").ok());
    ASSERT_TRUE(state->FlushChangelog().ok());
    Status s = state->Commit(SampleCheckpoint(offset));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  testing::TempDir dir_;
  std::shared_ptr<RocksDbEnv> env_ = RocksDbEnv::Create();
  testing::RecordingSink sink_;
};

TEST_F(RocksDbTaskStorageTest, MissingDirectoryIsCreatedWithEmptyState) {
  ASSERT_FALSE(fs::exists(dir_.path()));
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_TRUE(fs::is_directory(dir_.path()));
  Result<Checkpoint> cp = storage->ReadCheckpoint();
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(*cp, Checkpoint{});
  EXPECT_TRUE(Collect(storage->Reader("orders")->Range("", "")).empty());
  EXPECT_EQ(storage->store_names(), kStores);
}

TEST_F(RocksDbTaskStorageTest, CommittedStateAndCheckpointSurviveReopen) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
  }
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(GetOr(*storage->Reader("orders"), "o1"), "placed");
  EXPECT_EQ(GetOr(*storage->Reader("views"), "v1"), "1 order");
  Result<Checkpoint> cp = storage->ReadCheckpoint();
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(*cp, SampleCheckpoint(7));
}

TEST_F(RocksDbTaskStorageTest, UncommittedWritesDoNotSurviveReopen) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
    ASSERT_TRUE(state->Store("orders")->Put("o2", "buffered only").ok());
    ASSERT_TRUE(state->Store("orders")->Delete("o1").ok());
  }
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(Collect(storage->Reader("orders")->Range("", "")),
            (KeyValues{{"o1", "placed"}}));
  EXPECT_EQ(storage->ReadCheckpoint().value(), SampleCheckpoint(7));
}

// Runs state_crash_child: it commits `commits` transactions of values of
// `value_bytes` bytes and is then killed with SIGKILL, holding the database
// open and one write buffered.
void RunCrashChild(const std::string& dir, int commits, size_t value_bytes,
                   uint64_t max_unflushed_writes = RocksDbEnvOptions().max_unflushed_writes) {
  const std::string commits_arg = std::to_string(commits);
  const std::string bytes_arg = std::to_string(value_bytes);
  const std::string unflushed_arg = std::to_string(max_unflushed_writes);
  std::vector<char*> argv = {const_cast<char*>(KCQRS_STATE_CRASH_CHILD),
                             const_cast<char*>(dir.c_str()),
                             const_cast<char*>(commits_arg.c_str()),
                             const_cast<char*>(bytes_arg.c_str()),
                             const_cast<char*>(unflushed_arg.c_str()), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, KCQRS_STATE_CRASH_CHILD, nullptr, nullptr,
                        argv.data(), environ),
            0)
      << "cannot start " << KCQRS_STATE_CRASH_CHILD;
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus))
      << "the child failed before the kill, exit code "
      << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);
}

// What a killed child left: the commits 1..k of its `commits`, whole, with
// the checkpoint of commit k, and nothing else (no later commit in part, no
// uncommitted write). Returns k.
int64_t SurvivingCommits(TaskStorage* storage, int commits) {
  const Checkpoint cp = storage->ReadCheckpoint().value();
  int64_t k = 0;
  if (cp != Checkpoint{}) {
    auto it = cp.changelog_offsets.find({"app-orders-changelog", 1});
    EXPECT_NE(it, cp.changelog_offsets.end());
    if (it != cp.changelog_offsets.end()) k = it->second;
    EXPECT_EQ(cp, testing::CrashChildCheckpoint(k));
  }
  EXPECT_GE(k, 0);
  EXPECT_LE(k, commits);
  const KeyValues orders = Collect(storage->Reader("orders")->Range("", ""));
  const KeyValues views = Collect(storage->Reader("views")->Range("", ""));
  EXPECT_EQ(orders.size(), static_cast<size_t>(k));
  EXPECT_EQ(views.size(), static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    EXPECT_EQ(GetOr(*storage->Reader("orders"), "o" + std::to_string(i)).substr(0, 9),
              "committed") << "o" << i << " of " << k << " surviving commits";
    EXPECT_EQ(GetOr(*storage->Reader("views"), "v" + std::to_string(i)).substr(0, 9),
              "committed") << "v" << i << " of " << k << " surviving commits";
  }
  EXPECT_EQ(GetOr(*storage->Reader("orders"), "o-last"), "<absent>");
  return k;
}

// Commits skip RocksDB's WAL (the changelog is the log): a process killed
// with few commits since the last flush of its memtables falls back to that
// flush, a consistent state with its own checkpoint, which the engine then
// brings forward from the changelog. Here nothing was flushed since the
// directory was created.
TEST_F(RocksDbTaskStorageTest, Kill9FallsBackToTheLastFlushWithItsCheckpoint) {
  ASSERT_NO_FATAL_FAILURE(RunCrashChild(dir_.path(), 100, 9));
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(SurvivingCommits(storage.get(), 100), 0)
      << "100 small commits (200 writes) neither fill a memtable nor reach "
         "max_unflushed_writes, so none was flushed";
}

// What a kill -9 loses is bounded by the memtables: once a store's memtable
// is full (write_buffer_bytes, 8 MiB by default) all the column families of
// the task are flushed together, so the commits that survive are all but
// the last memtable or two (one may still be on its way to disk). 1,200
// writes stay below the default max_unflushed_writes: the memtables bound.
TEST_F(RocksDbTaskStorageTest, Kill9LosesAtMostTheLastMemtablesOfCommits) {
  const int commits = 600;
  const size_t value_bytes = 64 * 1024;  // 75 MB in all: many flushes
  ASSERT_NO_FATAL_FAILURE(RunCrashChild(dir_.path(), commits, value_bytes));
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  const int64_t per_memtable = static_cast<int64_t>(RocksDbEnvOptions().write_buffer_bytes /
                                                    value_bytes);
  const int64_t k = SurvivingCommits(storage.get(), commits);
  EXPECT_GE(k, commits - 2 * per_memtable - 1)
      << "the restore tail is bounded by two memtables of " << per_memtable << " commits";
}

// max_unflushed_writes bounds the loss in writes, whatever their size:
// here a flush every 25 commits (two writes each), in the background, so at
// most the last two such runs of commits are lost.
TEST_F(RocksDbTaskStorageTest, Kill9LosesAtMostMaxUnflushedWrites) {
  const int commits = 300;
  const uint64_t max_unflushed = 50;
  ASSERT_NO_FATAL_FAILURE(RunCrashChild(dir_.path(), commits, 9, max_unflushed));
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  const int64_t k = SurvivingCommits(storage.get(), commits);
  EXPECT_GE(k, commits - 2 * static_cast<int64_t>(max_unflushed / 2) - 1);
}

// A clean close writes the memtables out: nothing is left to restore.
TEST_F(RocksDbTaskStorageTest, CloseKeepsEveryCommitWithoutAWal) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    for (int64_t i = 1; i <= 50; ++i) WriteAndCommit(state.get(), i);
  }
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->ReadCheckpoint().value(), SampleCheckpoint(50));
  EXPECT_EQ(GetOr(*storage->Reader("orders"), "o1"), "placed");
  // No WAL file holds anything: the commits are in the flushed files.
  for (const fs::directory_entry& e : fs::directory_iterator(dir_.path())) {
    if (e.path().extension() == ".log") {
      EXPECT_EQ(e.file_size(), 0u) << e.path() << " holds a WAL record";
    }
  }
}

TEST_F(RocksDbTaskStorageTest,
       GarbageOverTheFilesIsCorruptionAndDestroyRecovers) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
  }
  int overwritten = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_.path())) {
    if (!e.is_regular_file()) continue;
    std::ofstream out(e.path(), std::ios::binary | std::ios::trunc);
    out << std::string(4096, '\xAB');
    ++overwritten;
  }
  ASSERT_GT(overwritten, 3);

  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_.path()), std::string::npos) << s.ToString();

  ASSERT_TRUE(TaskStorage::Destroy(dir_.path()).ok());
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->ReadCheckpoint().value(), Checkpoint{});
  EXPECT_TRUE(Collect(storage->Reader("orders")->Range("", "")).empty());
}

TEST_F(RocksDbTaskStorageTest, DamagedManifestIsCorruption) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
  }
  int overwritten = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_.path())) {
    if (e.path().filename().string().starts_with("MANIFEST-")) {
      std::ofstream out(e.path(), std::ios::binary | std::ios::trunc);
      out << "garbage";
      ++overwritten;
    }
  }
  ASSERT_GT(overwritten, 0);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_.path()), std::string::npos) << s.ToString();
}

TEST_F(RocksDbTaskStorageTest, DirectoryWithForeignFilesIsCorruption) {
  fs::create_directories(dir_.path());
  std::ofstream(fs::path(dir_.path()) / "notes.txt") << "not a database";
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_.path()), std::string::npos) << s.ToString();
  // Nothing was created beside the debris.
  EXPECT_FALSE(fs::exists(fs::path(dir_.path()) / "CURRENT"));
}

TEST_F(RocksDbTaskStorageTest, PathThatIsAFileIsCorruption) {
  std::ofstream(dir_.path()) << "a file";
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
}

TEST_F(RocksDbTaskStorageTest, ForeignRocksDbIsCorruption) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  ASSERT_TRUE(db->Close().ok());
  db.reset();

  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_.path()), std::string::npos) << s.ToString();
}

// Rewrites the checkpoint behind TaskStorage's back, through RocksDB itself.
void OverwriteCheckpoint(const std::string& dir, const std::string& bytes) {
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& n : names)
    descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(rocksdb::DBOptions(), dir, descriptors, &handles, &raw)
          .ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == rocksdb_layout::kMetaColumnFamily) {
      EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i],
                          std::string(rocksdb_layout::kCheckpointKey), bytes)
                      .ok());
    }
  }
  for (rocksdb::ColumnFamilyHandle* h : handles)
    EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  EXPECT_TRUE(db->Close().ok());
}

TEST_F(RocksDbTaskStorageTest, UnparseableCheckpointIsCorruption) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
  }
  OverwriteCheckpoint(dir_.path(), "\x01garbage");
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(dir_.path()), std::string::npos) << s.ToString();
}

TEST_F(RocksDbTaskStorageTest, DestroyThenReopenIsEmpty) {
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    WriteAndCommit(state.get(), 7);
  }
  ASSERT_TRUE(TaskStorage::Destroy(dir_.path()).ok());
  EXPECT_FALSE(fs::exists(dir_.path()));
  EXPECT_TRUE(TaskStorage::Destroy(dir_.path()).ok())
      << "destroying nothing is fine";
  std::unique_ptr<TaskStorage> storage = MustOpen();
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->ReadCheckpoint().value(), Checkpoint{});
  EXPECT_EQ(GetOr(*storage->Reader("orders"), "o1"), "<absent>");
}

TEST_F(RocksDbTaskStorageTest,
       SecondOpenIsRefusedAndCloseReleasesTheDirectoryDespiteLiveViews) {
  std::unique_ptr<TaskStorage> first = MustOpen();
  ASSERT_NE(first, nullptr);
  Status s = OpenStatus();
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();

  // A query thread still holds a view and an iterator: the task migrates
  // away and back, and the directory must open again regardless.
  std::shared_ptr<const ReadOnlyKeyValueStore> view = first->Reader("orders");
  std::unique_ptr<KeyValueIterator> it = view->Range("", "");
  first.reset();
  std::unique_ptr<TaskStorage> second = MustOpen();
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(view->Get("k").status().IsUnavailable());
}

TEST_F(RocksDbTaskStorageTest, CloseInvalidatesOpenIterators) {
  std::unique_ptr<TaskState> state = MustOpenState();
  ASSERT_NE(state, nullptr);
  for (const char* k : {"a", "b", "c"})
    ASSERT_TRUE(state->Store("orders")->Put(k, k).ok());
  ASSERT_TRUE(state->FlushChangelog().ok());
  ASSERT_TRUE(state->Commit({}).ok());
  std::shared_ptr<const ReadOnlyKeyValueStore> view =
      state->storage().Reader("orders");
  std::unique_ptr<KeyValueIterator> it = view->Range("", "");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");

  ASSERT_TRUE(state->storage().Close().ok());
  EXPECT_TRUE(state->storage().Close().ok()) << "Close is idempotent";
  EXPECT_EQ(it->key(), "a") << "the current entry stays readable";
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsUnavailable()) << it->status().ToString();

  Status commit = state->Commit({});
  EXPECT_EQ(commit.code(), Status::Code::kFailedPrecondition)
      << commit.ToString();
  EXPECT_TRUE(state->storage().ReadCheckpoint().status().IsUnavailable());
}

// Query threads hammer a view while the owner closes the storage: they must
// see data, then Unavailable, and never crash (ASan checks the rest).
TEST_F(RocksDbTaskStorageTest, ReadsRacingWithCloseAreSafe) {
  std::unique_ptr<TaskState> state = MustOpenState();
  ASSERT_NE(state, nullptr);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(state->Store("orders")->Put("k" + std::to_string(i), "v").ok());
  }
  ASSERT_TRUE(state->FlushChangelog().ok() && state->Commit({}).ok());
  std::shared_ptr<const ReadOnlyKeyValueStore> view =
      state->storage().Reader("orders");

  std::atomic<int> reads_ok{0};
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (true) {
        std::unique_ptr<KeyValueIterator> it = view->Range("", "");
        int n = 0;
        for (; it->Valid(); it->Next()) ++n;
        Result<std::optional<std::string>> r = view->Get("k1");
        if (!r.ok() || !it->status().ok()) {
          if (r.status().IsUnavailable() || it->status().IsUnavailable())
            unavailable++;
          return;
        }
        EXPECT_EQ(n, 200);
        reads_ok++;
      }
    });
  }
  while (reads_ok.load() < 20) std::this_thread::yield();
  state.reset();
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(unavailable.load(), 3);
}

TEST_F(RocksDbTaskStorageTest, StoresCanBeAddedAndAreKeptWhenNotNamed) {
  {
    std::unique_ptr<TaskState> state = MustOpenState({"orders"});
    ASSERT_NE(state, nullptr);
    ASSERT_TRUE(state->Store("orders")->Put("o1", "placed").ok());
    ASSERT_TRUE(state->FlushChangelog().ok() && state->Commit({}).ok());
  }
  {
    std::unique_ptr<TaskStorage> storage =
        MustOpen({"views"});  // orders not named
    ASSERT_NE(storage, nullptr);
    EXPECT_EQ(storage->Reader("orders"), nullptr);
    EXPECT_NE(storage->Reader("views"), nullptr);
  }
  std::unique_ptr<TaskStorage> storage = MustOpen({"orders", "views"});
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(GetOr(*storage->Reader("orders"), "o1"), "placed");
}

TEST_F(RocksDbTaskStorageTest, ManyTaskDatabasesShareOneEnv) {
  RocksDbEnvOptions options;
  options.block_cache_bytes = size_t{4} << 20;
  options.write_buffer_manager_bytes = size_t{1} << 20;
  options.write_buffer_bytes = size_t{256} << 10;
  std::shared_ptr<RocksDbEnv> env = RocksDbEnv::Create(options);
  EXPECT_EQ(env->options().block_cache_bytes, options.block_cache_bytes);

  std::vector<testing::TempDir> dirs(6);
  std::vector<std::unique_ptr<TaskState>> tasks;
  for (testing::TempDir& d : dirs) {
    Result<std::unique_ptr<TaskStorage>> r =
        TaskStorage::OpenRocksDb(d.path(), kStores, env);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    tasks.push_back(std::make_unique<TaskState>(std::move(r).value(), nullptr));
  }
  // Enough data to pass the shared 1 MiB memtable cap several times over.
  const std::string value(1024, 'v');
  for (int round = 0; round < 5; ++round) {
    for (size_t t = 0; t < tasks.size(); ++t) {
      for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(tasks[t]
                        ->Store("orders")
                        ->Put(std::to_string(round * 1000 + i), value)
                        .ok());
      }
      ASSERT_TRUE(tasks[t]->FlushChangelog().ok() && tasks[t]->Commit({}).ok());
    }
  }
  for (auto& task : tasks) {
    EXPECT_EQ(Collect(task->storage().Reader("orders")->Range("", "")).size(),
              1000u);
  }
  tasks.clear();
  env.reset();  // the databases are closed; the env may go first or last
}

// application.rocksdb.compression: every kind the docs offer is in Debian's
// RocksDB, and stores written through flushes in it read back after a
// reopen.
// The stores' memtables take one insert hint for every key (a commit writes
// its keys in order) and a whole-key bloom filter (absent keys). Neither may
// change what is read: interleaved commits, overwrites, keys that are
// prefixes of others, absent keys, range scans over the memtable and after
// a reopen.
TEST_F(RocksDbTaskStorageTest, MemtableHintAndBloomFilterChangeNothingRead) {
  std::map<std::string, std::string> expected;
  {
    std::unique_ptr<TaskState> state = MustOpenState();
    ASSERT_NE(state, nullptr);
    for (int round = 0; round < 6; ++round) {
      // Odd keys one round, even the next, descending every third: inserts
      // before, after and between what the memtable holds.
      for (int i = 0; i < 300; ++i) {
        const int k = round % 3 == 2 ? 299 - i : i;
        if (k % 2 != round % 2) continue;
        const std::string key = "o" + std::to_string(k);
        const std::string value = key + "@" + std::to_string(round);
        ASSERT_TRUE(state->Store("orders")->Put(key, value).ok());
        expected[key] = value;
      }
      ASSERT_TRUE(state->FlushChangelog().ok());
      Status s = state->Commit(SampleCheckpoint(round));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE(state->Store("orders")->Delete("o7").ok());
    expected.erase("o7");
    ASSERT_TRUE(state->FlushChangelog().ok());
    Status s = state->Commit(SampleCheckpoint(6));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    SCOPED_TRACE(reopen);
    std::unique_ptr<TaskStorage> storage = MustOpen();
    ASSERT_NE(storage, nullptr);
    auto reader = storage->Reader("orders");
    EXPECT_EQ(Collect(reader->Range("", "")), KeyValues(expected.begin(), expected.end()));
    EXPECT_EQ(GetOr(*reader, "o10"), "o10@4");
    EXPECT_EQ(GetOr(*reader, "o1"), "o1@5");
    for (const std::string absent : {"o", "o7", "o300", "o1000", "p", ""}) {
      auto v = reader->Get(absent);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_FALSE(v->has_value()) << absent;
    }
    EXPECT_EQ(Collect(reader->Range("o29", "o3")).size(), 11u);  // o29, o290..o299
  }
  // What RocksDB recorded for the store's column family.
  std::string options_text;
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    if (e.path().filename().string().rfind("OPTIONS-", 0) != 0) continue;
    std::ifstream in(e.path());
    options_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t orders =
      options_text.find("[CFOptions \"" + rocksdb_layout::StoreColumnFamily("orders") + "\"]");
  ASSERT_NE(orders, std::string::npos) << options_text;
  const std::string section = options_text.substr(orders, options_text.find("[TableOptions", orders) - orders);
  EXPECT_NE(section.find("memtable_insert_with_hint_prefix_extractor=rocksdb.CappedPrefix.0"),
            std::string::npos) << section;
  EXPECT_NE(section.find("memtable_whole_key_filtering=true"), std::string::npos) << section;
  EXPECT_NE(section.find("memtable_prefix_bloom_size_ratio=0.02"), std::string::npos) << section;
}

TEST_F(RocksDbTaskStorageTest, EveryOfferedCompressionWritesFilesThatReadBack) {
  for (RocksDbCompression c : {RocksDbCompression::kNone, RocksDbCompression::kSnappy,
                               RocksDbCompression::kLz4, RocksDbCompression::kZstd}) {
    SCOPED_TRACE(static_cast<int>(c));
    ASSERT_TRUE(RocksDbSupports(c));
    RocksDbEnvOptions options;
    options.write_buffer_manager_bytes = size_t{1} << 20;
    options.write_buffer_bytes = size_t{256} << 10;
    options.compression = c;
    std::shared_ptr<RocksDbEnv> env = RocksDbEnv::Create(options);
    testing::TempDir dir;
    const std::string value(512, 'c');
    {
      auto r = TaskStorage::OpenRocksDb(dir.path(), kStores, env);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      TaskState state(std::move(r).value(), nullptr);
      // Several times the memtable size: files are written.
      for (int i = 0; i < 4000; ++i) {
        ASSERT_TRUE(state.Store("orders")->Put(std::to_string(i), value).ok());
        if (i % 500 == 499) {
          ASSERT_TRUE(state.Commit({}).ok());
        }
      }
    }
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      files += e.path().extension() == ".sst" ? 1 : 0;
    }
    EXPECT_GT(files, 0u);
    auto r = TaskStorage::OpenRocksDb(dir.path(), kStores, env);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Collect((*r)->Reader("orders")->Range("", "")).size(), 4000u);
    EXPECT_EQ(GetOr(*(*r)->Reader("orders"), "3999"), value);
  }
}

}  // namespace
}  // namespace kcqrs::state
