// The KeyValueStore contract, run against every store implementation: the
// transactional store of TaskState over RocksDB and over memory, each with
// the writes still buffered and with the writes committed (then the
// committed Reader view is checked too).

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "state/task_state.h"
#include "state/task_storage.h"
#include "tests/state/state_test_util.h"

namespace kcqrs::state {
namespace {

using namespace std::string_literals;
using testing::Collect;
using testing::GetOr;
using testing::KeyValues;

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

template <typename B, bool kCommit>
struct Config {
  using Backend = B;
  static constexpr bool kCommitWrites = kCommit;
};
using RocksDbBuffered = Config<RocksDbBackend, false>;
using RocksDbCommitted = Config<RocksDbBackend, true>;
using MemoryBuffered = Config<MemoryBackend, false>;
using MemoryCommitted = Config<MemoryBackend, true>;

class ConfigNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, RocksDbBuffered>) return "RocksDbBuffered";
    if (std::is_same_v<T, RocksDbCommitted>) return "RocksDbCommitted";
    if (std::is_same_v<T, MemoryBuffered>) return "MemoryBuffered";
    return "MemoryCommitted";
  }
};

template <typename C>
class KeyValueStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<TaskStorage>> storage =
        backend_.Open({"orders", "other"});
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    state_ = std::make_unique<TaskState>(std::move(storage).value(), &sink_);
    store_ = state_->Store("orders");
    ASSERT_NE(store_, nullptr);
    reader_ = state_->storage().Reader("orders");
    ASSERT_NE(reader_, nullptr);
  }

  void Put(std::string_view k, std::string_view v) {
    ASSERT_TRUE(store_->Put(k, v).ok()) << "put " << k;
  }
  void Delete(std::string_view k) {
    ASSERT_TRUE(store_->Delete(k).ok()) << "delete " << k;
  }

  // Ends the write phase of a test: commits in the committed configurations.
  void Settle() {
    if (C::kCommitWrites) {
      Status s = state_->FlushChangelog();
      ASSERT_TRUE(s.ok()) << s.ToString();
      s = state_->Commit(Checkpoint{});
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_FALSE(state_->dirty());
    }
  }

  // The views every read assertion applies to: the transactional store, and
  // the committed reader once writes are committed.
  std::vector<const ReadOnlyKeyValueStore*> Views() const {
    if (C::kCommitWrites) return {store_, reader_.get()};
    return {store_};
  }

  typename C::Backend backend_;
  testing::RecordingSink sink_;
  std::unique_ptr<TaskState> state_;
  KeyValueStore* store_ = nullptr;
  std::shared_ptr<const ReadOnlyKeyValueStore> reader_;
};

using Configs = ::testing::Types<RocksDbBuffered, RocksDbCommitted,
                                 MemoryBuffered, MemoryCommitted>;
TYPED_TEST_SUITE(KeyValueStoreContractTest, Configs, ConfigNames);

TYPED_TEST(KeyValueStoreContractTest, AbsentKeyIsAnEmptyOptional) {
  this->Put("present", "1");
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    Result<std::optional<std::string>> r = view->Get("absent");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r.value().has_value());
    EXPECT_EQ(view->name(), "orders");
  }
}

TYPED_TEST(KeyValueStoreContractTest, PutOverwriteAndDelete) {
  this->Put("a", "1");
  this->Put("b", "1");
  this->Put("b", "2");
  this->Put("c", "1");
  this->Delete("c");
  this->Delete("never-written");
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_EQ(GetOr(*view, "a"), "1");
    EXPECT_EQ(GetOr(*view, "b"), "2");
    EXPECT_EQ(GetOr(*view, "c"), "<absent>");
    EXPECT_EQ(GetOr(*view, "never-written"), "<absent>");
    EXPECT_EQ(Collect(view->Range("", "")),
              (KeyValues{{"a", "1"}, {"b", "2"}}));
  }
}

TYPED_TEST(KeyValueStoreContractTest, EmptyValueIsNotAbsent) {
  this->Put("empty", "");
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    Result<std::optional<std::string>> r = view->Get("empty");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r.value().has_value());
    EXPECT_EQ(*r.value(), "");
    EXPECT_EQ(Collect(view->Range("", "")), (KeyValues{{"empty", ""}}));
  }
}

TYPED_TEST(KeyValueStoreContractTest, BinaryKeysAndValuesAreBytes) {
  // Inserted out of order; expected in unsigned byte order, where \0 sorts
  // first and 0x80..0xFF sort after ASCII.
  const std::vector<std::string> sorted = {
      "a"s,    "a\0"s,  "a\0b"s, "a\x01"s,  "b"s,
      "\x7F"s, "\x80"s, "\xFF"s, "\xFF\0"s, "\xFF\xFF"s};
  std::vector<std::string> shuffled = sorted;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (const std::string& k : shuffled) this->Put(k, "v" + k + "\0\xFF"s);
  this->Settle();
  KeyValues want;
  for (const std::string& k : sorted) want.emplace_back(k, "v" + k + "\0\xFF"s);
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_EQ(GetOr(*view, "a\0b"s), "va\0b\0\xFF"s);
    EXPECT_EQ(GetOr(*view, "a\0c"s),
              "<absent>");  // \0 is part of the key, not its end
    EXPECT_EQ(Collect(view->Range("", "")), want);
  }
}

TYPED_TEST(KeyValueStoreContractTest, RangeIsHalfOpenAndEmptyToIsUnbounded) {
  for (const char* k : {"a", "b", "bb", "c", "d"}) this->Put(k, k);
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_EQ(Collect(view->Range("b", "d")),
              (KeyValues{{"b", "b"}, {"bb", "bb"}, {"c", "c"}}));
    EXPECT_EQ(Collect(view->Range("", "bb")),
              (KeyValues{{"a", "a"}, {"b", "b"}}));
    EXPECT_EQ(Collect(view->Range("bb", "")),
              (KeyValues{{"bb", "bb"}, {"c", "c"}, {"d", "d"}}));
    EXPECT_EQ(Collect(view->Range("ba", "cc")),
              (KeyValues{{"bb", "bb"}, {"c", "c"}}));
    EXPECT_EQ(Collect(view->Range("", "")).size(), 5u);
    EXPECT_TRUE(Collect(view->Range("b", "b")).empty());
    EXPECT_TRUE(Collect(view->Range("c", "b")).empty());
    EXPECT_TRUE(Collect(view->Range("e", "")).empty());
  }
}

TYPED_TEST(KeyValueStoreContractTest,
           PrefixSelectsExactlyTheKeysStartingWithIt) {
  for (const char* k : {"use", "user/1", "user/2", "user0", "user/", "v"})
    this->Put(k, k);
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_EQ(
        Collect(view->Prefix("user/")),
        (KeyValues{
            {"user/", "user/"}, {"user/1", "user/1"}, {"user/2", "user/2"}}));
    EXPECT_EQ(Collect(view->Prefix("user")).size(), 4u);
    EXPECT_EQ(Collect(view->Prefix("")).size(), 6u);
    EXPECT_TRUE(Collect(view->Prefix("w")).empty());
  }
}

TYPED_TEST(KeyValueStoreContractTest, PrefixOfOnly0xFFBytesHasNoUpperBound) {
  for (const std::string& k : {"\xFE"s, "\xFE\xFF"s, "\xFF"s, "\xFF\0"s,
                               "\xFF\xFF"s, "\xFF\xFF\x01"s, "\xFF\xFF\xFF"s}) {
    this->Put(k, "x");
  }
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_EQ(Collect(view->Prefix("\xFF\xFF")),
              (KeyValues{{"\xFF\xFF"s, "x"},
                         {"\xFF\xFF\x01"s, "x"},
                         {"\xFF\xFF\xFF"s, "x"}}));
    EXPECT_EQ(Collect(view->Prefix("\xFF")).size(), 5u);
    EXPECT_EQ(Collect(view->Prefix("\xFE")),
              (KeyValues{{"\xFE"s, "x"}, {"\xFE\xFF"s, "x"}}));
  }
}

TYPED_TEST(KeyValueStoreContractTest, IterationIsInKeyOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i)
    keys.push_back("k" + std::to_string(i * 7919 % 1000));
  std::mt19937 rng(11);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (const std::string& k : keys) this->Put(k, k);
  this->Settle();
  std::sort(keys.begin(), keys.end());
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    KeyValues got = Collect(view->Range("", ""));
    ASSERT_EQ(got.size(), keys.size());
    for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(got[i].first, keys[i]);
  }
}

TYPED_TEST(KeyValueStoreContractTest, StoresOfOneTaskAreSeparate) {
  this->Put("k", "orders");
  KeyValueStore* other = this->state_->Store("other");
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Put("k", "other").ok());
  this->Settle();
  EXPECT_EQ(GetOr(*this->store_, "k"), "orders");
  EXPECT_EQ(GetOr(*other, "k"), "other");
  EXPECT_EQ(this->state_->Store("missing"), nullptr);
  EXPECT_EQ(this->state_->storage().Reader("missing"), nullptr);
}

TYPED_TEST(KeyValueStoreContractTest, ApproximateNumEntriesCountsWrites) {
  EXPECT_EQ(this->store_->ApproximateNumEntries(), 0u);
  for (int i = 0; i < 20; ++i) this->Put("k" + std::to_string(i), "v");
  this->Settle();
  for (const ReadOnlyKeyValueStore* view : this->Views()) {
    EXPECT_GE(view->ApproximateNumEntries(), 10u);
    EXPECT_LE(view->ApproximateNumEntries(), 40u);
  }
}

}  // namespace
}  // namespace kcqrs::state
