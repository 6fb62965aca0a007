// Helpers shared by the state/ tests.
#ifndef KCQRS_TESTS_STATE_STATE_TEST_UTIL_H_
#define KCQRS_TESTS_STATE_STATE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kcqrs/key_value_store.h"
#include "state/changelog_sink.h"

namespace kcqrs::state::testing {

// A fresh directory path under the test temp dir, removed on destruction.
// The directory itself is not created: opening must create it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = ::testing::TempDir() + "kcqrs_state_test_" +
            std::to_string(::getpid()) + "_" + std::to_string(counter++);
    std::filesystem::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct SinkRecord {
  std::string store;
  std::string key;
  std::optional<std::string> value;
  friend bool operator==(const SinkRecord&, const SinkRecord&) = default;
};

// Records what TaskState hands to the changelog; fails on demand.
class RecordingSink : public ChangelogSink {
 public:
  Status Append(const std::string& store, std::string_view key,
                std::optional<std::string_view> value) override {
    if (!fail_with_.ok()) return fail_with_;
    records.push_back(
        SinkRecord{store, std::string(key),
                   value ? std::optional<std::string>(std::string(*value))
                         : std::nullopt});
    return Status::OK();
  }
  void FailWith(Status s) { fail_with_ = std::move(s); }

  std::vector<SinkRecord> records;

 private:
  Status fail_with_;
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// Drains an iterator; a non-OK final status fails the calling test.
inline KeyValues Collect(std::unique_ptr<KeyValueIterator> it) {
  KeyValues out;
  for (; it->Valid(); it->Next())
    out.emplace_back(std::string(it->key()), std::string(it->value()));
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

// The value under `key`, "<absent>", or "<error: ...>".
inline std::string GetOr(const ReadOnlyKeyValueStore& store,
                         std::string_view key) {
  Result<std::optional<std::string>> r = store.Get(key);
  if (!r.ok()) return "<error: " + r.status().ToString() + ">";
  return r.value() ? *r.value() : "<absent>";
}

}  // namespace kcqrs::state::testing

#endif  // KCQRS_TESTS_STATE_STATE_TEST_UTIL_H_
