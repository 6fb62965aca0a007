// TaskState's transaction semantics (write buffer, Commit, Abort, changelog
// sink, restore) and the concurrency of committed Reader views, over both
// storage implementations.

#include "state/task_state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "state/task_storage.h"
#include "tests/state/state_test_util.h"

namespace kcqrs::state {
namespace {

using testing::Collect;
using testing::GetOr;
using testing::KeyValues;
using testing::SinkRecord;

struct RocksDbBackend {
  testing::TempDir dir;
  Result<std::unique_ptr<TaskStorage>> Open(
      const std::vector<std::string>& stores) {
    return TaskStorage::OpenRocksDb(dir.path(), stores, nullptr);
  }
};

struct MemoryBackend {
  Result<std::unique_ptr<TaskStorage>> Open(
      const std::vector<std::string>& stores) {
    return TaskStorage::OpenMemory(stores);
  }
};

class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, RocksDbBackend> ? "RocksDb" : "Memory";
  }
};

template <typename Backend>
class TaskStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<TaskStorage>> storage =
        backend_.Open({"orders", "views"});
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    // Every test runs with the value cache on (issue 11): what a processor
    // reads must be what storage and the buffer say, cached or not.
    state_ = std::make_unique<TaskState>(std::move(storage).value(), &sink_, 1 << 20);
    orders_ = state_->Store("orders");
    views_ = state_->Store("views");
    reader_ = state_->storage().Reader("orders");
  }

  void Put(KeyValueStore* store, std::string_view k, std::string_view v) {
    ASSERT_TRUE(store->Put(k, v).ok()) << "put " << k;
  }
  void Commit(const Checkpoint& cp = {}) {
    Status s = state_->FlushChangelog();
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = state_->Commit(cp);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Checkpoint StoredCheckpoint() {
    Result<Checkpoint> cp = state_->storage().ReadCheckpoint();
    EXPECT_TRUE(cp.ok()) << cp.status().ToString();
    return cp.ok() ? *cp : Checkpoint{};
  }

  Backend backend_;
  testing::RecordingSink sink_;
  std::unique_ptr<TaskState> state_;
  KeyValueStore* orders_ = nullptr;
  KeyValueStore* views_ = nullptr;
  std::shared_ptr<const ReadOnlyKeyValueStore> reader_;
};

using Backends = ::testing::Types<RocksDbBackend, MemoryBackend>;
TYPED_TEST_SUITE(TaskStateTest, Backends, BackendNames);

TYPED_TEST(TaskStateTest, BufferedWritesAreReadBackButNotVisibleToReaders) {
  this->Put(this->orders_, "o1", "new");
  EXPECT_TRUE(this->state_->dirty());
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "new");
  EXPECT_EQ(Collect(this->orders_->Prefix("o")), (KeyValues{{"o1", "new"}}));
  EXPECT_EQ(GetOr(*this->reader_, "o1"), "<absent>");
  EXPECT_TRUE(Collect(this->reader_->Range("", "")).empty());

  this->Commit();
  EXPECT_FALSE(this->state_->dirty());
  EXPECT_EQ(GetOr(*this->reader_, "o1"), "new");
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "new");
}

TYPED_TEST(TaskStateTest, BufferedDeletesAndPutsMergeWithCommittedData) {
  for (const char* k : {"a", "b", "c", "d"}) this->Put(this->orders_, k, "old");
  this->Commit();

  ASSERT_TRUE(this->orders_->Delete("b").ok());
  ASSERT_TRUE(this->orders_->Delete("d").ok());
  this->Put(this->orders_, "c", "new");
  this->Put(this->orders_, "bb", "new");
  this->Put(this->orders_, "e", "new");

  EXPECT_EQ(GetOr(*this->orders_, "b"), "<absent>");
  EXPECT_EQ(
      Collect(this->orders_->Range("", "")),
      (KeyValues{{"a", "old"}, {"bb", "new"}, {"c", "new"}, {"e", "new"}}));
  EXPECT_EQ(Collect(this->orders_->Range("b", "d")),
            (KeyValues{{"bb", "new"}, {"c", "new"}}));
  EXPECT_EQ(Collect(this->orders_->Prefix("b")), (KeyValues{{"bb", "new"}}));
  EXPECT_EQ(Collect(this->orders_->Range("d", "")), (KeyValues{{"e", "new"}}));
  // The committed view is untouched until Commit.
  EXPECT_EQ(
      Collect(this->reader_->Range("", "")),
      (KeyValues{{"a", "old"}, {"b", "old"}, {"c", "old"}, {"d", "old"}}));

  this->Commit();
  const KeyValues want = {
      {"a", "old"}, {"bb", "new"}, {"c", "new"}, {"e", "new"}};
  EXPECT_EQ(Collect(this->reader_->Range("", "")), want);
  EXPECT_EQ(Collect(this->orders_->Range("", "")), want);
}

TYPED_TEST(TaskStateTest, AbortDiscardsTheBuffer) {
  this->Put(this->orders_, "kept", "1");
  this->Commit();
  this->Put(this->orders_, "kept", "2");
  this->Put(this->orders_, "dropped", "1");
  ASSERT_TRUE(this->orders_->Delete("kept").ok());
  EXPECT_GT(this->state_->buffered_bytes(), 0u);

  this->state_->Abort();
  EXPECT_FALSE(this->state_->dirty());
  EXPECT_EQ(this->state_->buffered_bytes(), 0u);
  EXPECT_EQ(GetOr(*this->orders_, "kept"), "1");
  EXPECT_EQ(GetOr(*this->orders_, "dropped"), "<absent>");
  EXPECT_EQ(Collect(this->orders_->Range("", "")), (KeyValues{{"kept", "1"}}));

  // Nothing aborted leaks into the next commit.
  this->Commit();
  EXPECT_EQ(Collect(this->reader_->Range("", "")), (KeyValues{{"kept", "1"}}));
}

TYPED_TEST(TaskStateTest, CommitAppliesEveryStoreWithTheCheckpoint) {
  this->Put(this->orders_, "o1", "placed");
  this->Put(this->views_, "v1", "1 order");
  Checkpoint cp;
  cp.changelog_offsets[{"app-orders-changelog", 3}] = 10;
  cp.changelog_offsets[{"app-views-changelog", 3}] = 4;
  cp.metadata["input/commands/3"] = "77";
  this->Commit(cp);
  EXPECT_EQ(this->StoredCheckpoint(), cp);
  EXPECT_EQ(GetOr(*this->state_->storage().Reader("views"), "v1"), "1 order");
  EXPECT_EQ(GetOr(*this->reader_, "o1"), "placed");

  // A commit that wrote only orders moves only that changelog.
  this->Put(this->orders_, "o2", "placed");
  Checkpoint next;
  next.changelog_offsets[{"app-orders-changelog", 3}] = 12;
  next.metadata["input/commands/3"] = "78";
  this->Commit(next);
  Checkpoint want = cp;
  want.changelog_offsets[{"app-orders-changelog", 3}] = 12;
  want.metadata["input/commands/3"] = "78";
  EXPECT_EQ(this->StoredCheckpoint(), want);
}

// Issue 11: the changelog gets the last value of each key written in a
// commit interval, at FlushChangelog (right before the Kafka commit), not
// every write: a key moved by every record costs one changelog record per
// commit, as Kafka Streams' record cache makes it.
TYPED_TEST(TaskStateTest, TheSinkGetsTheLastValueOfEachKeyAtTheFlush) {
  this->Put(this->orders_, "o1", "a");
  this->Put(this->views_, "v1", "");
  this->Put(this->orders_, "o2", "b");
  this->Put(this->orders_, "o1", "a2");
  ASSERT_TRUE(this->orders_->Delete("o2").ok());
  EXPECT_TRUE(this->sink_.records.empty());
  ASSERT_TRUE(this->state_->FlushChangelog().ok());
  EXPECT_EQ(this->sink_.records,
            (std::vector<SinkRecord>{{"orders", "o1", "a2"},
                                     {"orders", "o2", std::nullopt},
                                     {"views", "v1", ""}}));
  // Nothing new: a second flush sends nothing.
  ASSERT_TRUE(this->state_->FlushChangelog().ok());
  EXPECT_EQ(this->sink_.records.size(), 3u);
}

// State the changelog does not have could never be restored: a commit of
// writes not flushed to the sink is refused, and the writes stay buffered.
// Issue 11: the value cache answers a key read again, and never disagrees
// with storage: a commit writes its values through (an aborted write never
// shows), a restore (storage written beneath it) is seen at once.
TYPED_TEST(TaskStateTest, TheValueCacheAnswersRereadsAndFollowsCommitsAndRestores) {
  this->Put(this->orders_, "o1", "a");
  this->Commit();
  const auto before = this->state_->cache_stats();
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "a");  // written through at the commit
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "a");
  EXPECT_EQ(GetOr(*this->orders_, "absent"), "<absent>");
  EXPECT_EQ(GetOr(*this->orders_, "absent"), "<absent>");  // absent keys are cached too
  const auto after = this->state_->cache_stats();
  EXPECT_EQ(after.hits - before.hits, 3u);
  EXPECT_EQ(after.misses - before.misses, 1u);
  EXPECT_GT(after.bytes, 0u);
  // What the engine adds to its counters: each lookup once, per store.
  const auto taken = this->state_->TakeCacheStats("orders");
  EXPECT_EQ(taken.hits, after.hits);
  EXPECT_EQ(taken.misses, after.misses);
  EXPECT_EQ(taken.bytes, after.bytes);
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "a");
  const auto next = this->state_->TakeCacheStats("orders");
  EXPECT_EQ(next.hits, 1u);
  EXPECT_EQ(next.misses, 0u);
  EXPECT_EQ(this->state_->TakeCacheStats("views").hits, 0u);
  EXPECT_EQ(this->state_->TakeCacheStats("no-such-store").bytes, 0u);

  this->Put(this->orders_, "o1", "aborted");
  this->state_->Abort();
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "a");

  this->Put(this->orders_, "absent", "now");
  ASSERT_TRUE(this->orders_->Delete("o1").ok());
  this->Commit();
  EXPECT_EQ(GetOr(*this->orders_, "absent"), "now");
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "<absent>");

  ASSERT_TRUE(this->state_
                  ->RestoreBatch("orders", {{"o1", "restored"}, {"absent", std::nullopt}},
                                 {"app-orders-changelog", 0}, 9)
                  .ok());
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "restored");
  EXPECT_EQ(GetOr(*this->orders_, "absent"), "<absent>");
}

TYPED_TEST(TaskStateTest, ACommitOfUnflushedWritesIsRefused) {
  this->Put(this->orders_, "o1", "a");
  Status s = this->state_->Commit(Checkpoint{});
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(this->state_->dirty());
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "a");
  this->Commit();
  EXPECT_FALSE(this->state_->dirty());
}

// A sink that refuses (the producer's queue is full) fails the flush with
// the store named; the engine aborts the transaction, and the buffer is
// dropped with it.
TYPED_TEST(TaskStateTest, ASinkErrorFailsTheFlushWithTheStoreNamed) {
  this->Put(this->orders_, "o1", "before");
  this->Commit();
  this->sink_.FailWith(Status::Unavailable("producer queue full"));
  this->Put(this->orders_, "o1", "after");
  Status flushed = this->state_->FlushChangelog();
  EXPECT_TRUE(flushed.IsUnavailable()) << flushed.ToString();
  EXPECT_NE(flushed.message().find("changelog of store orders"), std::string::npos)
      << flushed.ToString();
  EXPECT_NE(flushed.message().find("producer queue full"), std::string::npos);
  this->state_->Abort();
  EXPECT_EQ(GetOr(*this->orders_, "o1"), "before");
}

TYPED_TEST(TaskStateTest,
           RestoreBatchAppliesRecordsAndAdvancesTheCheckpointWithoutTheSink) {
  const TopicPartition changelog{"app-orders-changelog", 2};
  Status s = this->state_->RestoreBatch(
      "orders",
      {{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"}, {"b", std::nullopt}},
      changelog, 5);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(this->sink_.records.empty());
  EXPECT_FALSE(this->state_->dirty());
  EXPECT_EQ(Collect(this->reader_->Range("", "")),
            (KeyValues{{"a", "2"}, {"c", "1"}}));
  EXPECT_EQ(this->StoredCheckpoint().changelog_offsets.at(changelog), 5);

  s = this->state_->RestoreBatch("orders", {{"c", std::nullopt}}, changelog, 6);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Collect(this->orders_->Range("", "")), (KeyValues{{"a", "2"}}));
  EXPECT_EQ(this->StoredCheckpoint().changelog_offsets.at(changelog), 6);

  Status unknown =
      this->state_->RestoreBatch("nope", {{"k", "v"}}, changelog, 7);
  EXPECT_TRUE(unknown.IsInvalidArgument()) << unknown.ToString();
  EXPECT_EQ(this->StoredCheckpoint().changelog_offsets.at(changelog), 6);
}

TYPED_TEST(TaskStateTest, RestoreBatchIsRefusedWhileWritesAreBuffered) {
  this->Put(this->orders_, "k", "v");
  Status s =
      this->state_->RestoreBatch("orders", {{"k", "restored"}}, {"c", 0}, 1);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(GetOr(*this->orders_, "k"), "v");
}

TYPED_TEST(TaskStateTest, BufferedBytesTrackTheBuffer) {
  EXPECT_EQ(this->state_->buffered_bytes(), 0u);
  const std::string big(10000, 'x');
  this->Put(this->orders_, "k", big);
  const size_t one = this->state_->buffered_bytes();
  EXPECT_GE(one, big.size());
  this->Put(this->orders_, "k", "small");  // an overwrite replaces, not adds
  EXPECT_LT(this->state_->buffered_bytes(), one);
  this->Put(this->orders_, "k2", big);
  EXPECT_GE(this->state_->buffered_bytes(), big.size());
  this->Commit();
  EXPECT_EQ(this->state_->buffered_bytes(), 0u);
}

// Take (how a task's record scope hands its writes over, moved) is the
// same write as Put and Delete: read back, merged with committed data,
// changelogged once per key, counted in the buffer and committed.
TYPED_TEST(TaskStateTest, TakenWritesAreWritesLikeAnyOther) {
  for (const char* k : {"a", "b"}) this->Put(this->orders_, k, "old");
  this->Commit();
  this->sink_.records.clear();

  BufferedStore* orders = this->state_->Store("orders");
  ASSERT_NE(orders, nullptr);
  const std::string big(5000, 'v');
  ASSERT_TRUE(orders->Take("c", big).ok());
  const size_t one = this->state_->buffered_bytes();
  EXPECT_GE(one, big.size());
  ASSERT_TRUE(orders->Take("c", std::string("small")).ok());  // replaces, not adds
  EXPECT_LT(this->state_->buffered_bytes(), one);
  ASSERT_TRUE(orders->Take("a", std::nullopt).ok());
  EXPECT_TRUE(this->state_->dirty());

  EXPECT_EQ(GetOr(*this->orders_, "a"), "<absent>");
  EXPECT_EQ(GetOr(*this->orders_, "c"), "small");
  EXPECT_EQ(Collect(this->orders_->Range("", "")),
            (KeyValues{{"b", "old"}, {"c", "small"}}));
  EXPECT_EQ(GetOr(*this->reader_, "a"), "old");  // not committed yet

  this->Commit();
  EXPECT_EQ(this->sink_.records,
            (std::vector<SinkRecord>{{"orders", "a", std::nullopt},
                                     {"orders", "c", std::string("small")}}));
  EXPECT_EQ(Collect(this->reader_->Range("", "")),
            (KeyValues{{"b", "old"}, {"c", "small"}}));
  EXPECT_EQ(this->state_->buffered_bytes(), 0u);
}

TYPED_TEST(TaskStateTest, IteratorKeepsItsSnapshotAcrossWritesAndCommit) {
  for (const char* k : {"a", "b", "c"}) this->Put(this->orders_, k, "1");
  this->Commit();
  this->Put(this->orders_, "bb", "1");
  std::unique_ptr<KeyValueIterator> it = this->orders_->Range("", "");
  this->Put(this->orders_, "ab", "1");
  ASSERT_TRUE(this->orders_->Delete("c").ok());
  this->Commit();
  this->state_->Abort();
  KeyValues got = Collect(std::move(it));
  EXPECT_EQ(got, (KeyValues{{"a", "1"}, {"b", "1"}, {"bb", "1"}, {"c", "1"}}));
}

// A writer thread commits pairs of keys; reader threads scan the committed
// view meanwhile. Every scan must be one consistent snapshot: it never sees
// one key of a pair without the other, nor "x" and "y" (rewritten together
// by every commit) with different values.
TYPED_TEST(TaskStateTest, ReadersSeeWholeCommitsWhileAnotherThreadCommits) {
  constexpr int kCommits = 300;
  std::atomic<bool> done{false};
  std::atomic<int> scans{0};
  std::atomic<int> exited{0};
  auto scan_loop = [&] {
    int last_seen = -1;
    while (!done.load()) {
      KeyValues all = Collect(this->reader_->Range("", ""));
      int a = 0, b = 0;
      std::string x, y;
      for (const auto& [k, v] : all) {
        if (k.ends_with("/a")) ++a;
        if (k.ends_with("/b")) ++b;
        if (k == "x") x = v;
        if (k == "y") y = v;
      }
      ASSERT_EQ(a, b) << "a scan saw half a commit";
      ASSERT_EQ(x, y) << "a scan saw half a commit";
      // Commits only add pairs, so scans never go backwards.
      ASSERT_GE(a, last_seen);
      last_seen = a;
      Result<std::optional<std::string>> r = this->reader_->Get("x");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      scans.fetch_add(1);
    }
  };
  auto scan = [&] {
    scan_loop();  // returns early when an assertion fails
    exited.fetch_add(1);
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) readers.emplace_back(scan);
  for (int i = 0; i < kCommits; ++i) {
    const std::string n = std::to_string(i);
    this->Put(this->orders_,
              "pair/" + std::string(5 - n.size(), '0') + n + "/a", n);
    this->Put(this->orders_,
              "pair/" + std::string(5 - n.size(), '0') + n + "/b", n);
    this->Put(this->orders_, "x", n);
    this->Put(this->orders_, "y", n);
    Checkpoint cp;
    cp.changelog_offsets[{"app-orders-changelog", 0}] = 4 * (i + 1);
    this->Commit(cp);
  }
  // Make sure the readers overlapped at least a little before stopping them.
  while (scans.load() < 10 && exited.load() == 0) std::this_thread::yield();
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(Collect(this->reader_->Prefix("pair/")).size(), 2u * kCommits);
  EXPECT_EQ(this->StoredCheckpoint().changelog_offsets.at(
                {"app-orders-changelog", 0}),
            4 * kCommits);
}

TYPED_TEST(TaskStateTest, ReaderAfterCloseIsUnavailable) {
  this->Put(this->orders_, "k", "v");
  this->Commit();
  this->state_.reset();  // closes the storage; the view outlives it
  Result<std::optional<std::string>> r = this->reader_->Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  std::unique_ptr<KeyValueIterator> it = this->reader_->Range("", "");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsUnavailable()) << it->status().ToString();
  EXPECT_TRUE(this->reader_->Prefix("k")->status().IsUnavailable());
  EXPECT_EQ(this->reader_->ApproximateNumEntries(), 0u);
}

}  // namespace
}  // namespace kcqrs::state
