#include "state/checkpoint.h"

#include <gtest/gtest.h>

#include <string>

#include "state/key_ranges.h"

namespace kcqrs::state {
namespace {

using namespace std::string_literals;

Checkpoint Sample() {
  Checkpoint cp;
  cp.changelog_offsets[{"app-orders-changelog", 3}] = 42;
  cp.changelog_offsets[{"app-views-changelog", 3}] = 0;
  cp.changelog_offsets[{"app-views-changelog", 2147483647}] =
      9223372036854775807;
  cp.metadata["input/orders/3"] = "1001";
  cp.metadata["binary\0key"s] = "\xFF\x00value"s;
  return cp;
}

TEST(CheckpointTest, EncodingRoundTrips) {
  const Checkpoint cp = Sample();
  Result<Checkpoint> decoded = DecodeCheckpoint(EncodeCheckpoint(cp));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, cp);

  Result<Checkpoint> empty = DecodeCheckpoint(EncodeCheckpoint(Checkpoint{}));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, Checkpoint{});
}

TEST(CheckpointTest, DamagedEncodingIsCorruption) {
  const std::string good = EncodeCheckpoint(Sample());
  // Every truncation, an unknown version, trailing bytes, and plain garbage.
  for (size_t n = 0; n < good.size(); ++n) {
    Result<Checkpoint> r = DecodeCheckpoint(good.substr(0, n));
    ASSERT_FALSE(r.ok()) << "truncated to " << n << " bytes";
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption)
        << r.status().ToString();
  }
  std::string bad_version = good;
  bad_version[0] = 7;
  EXPECT_EQ(DecodeCheckpoint(bad_version).status().code(),
            Status::Code::kCorruption);
  EXPECT_EQ(DecodeCheckpoint(good + "x").status().code(),
            Status::Code::kCorruption);
  Result<Checkpoint> garbage = DecodeCheckpoint("not a checkpoint at all");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), Status::Code::kCorruption);
}

TEST(CheckpointTest, MergeReplacesNamedEntriesAndKeepsOthers) {
  Checkpoint base;
  base.changelog_offsets[{"c", 0}] = 10;
  base.changelog_offsets[{"d", 0}] = 20;
  base.metadata["a"] = "1";
  Checkpoint update;
  update.changelog_offsets[{"c", 0}] = 11;
  update.changelog_offsets[{"c", 1}] = 5;
  update.metadata["b"] = "2";
  MergeCheckpoint(update, &base);

  Checkpoint want;
  want.changelog_offsets[{"c", 0}] = 11;
  want.changelog_offsets[{"c", 1}] = 5;
  want.changelog_offsets[{"d", 0}] = 20;
  want.metadata["a"] = "1";
  want.metadata["b"] = "2";
  EXPECT_EQ(base, want);
}

TEST(KeyRangesTest, PrefixSuccessorIsTheFirstKeyPastThePrefix) {
  EXPECT_EQ(PrefixSuccessor("abc"), "abd");
  EXPECT_EQ(PrefixSuccessor("ab\xFF"), "ac");
  EXPECT_EQ(PrefixSuccessor("a\xFF\xFF"), "b");
  EXPECT_EQ(PrefixSuccessor("a\x7F"), "a\x80");
  EXPECT_EQ(PrefixSuccessor("\0"s), "\x01");
  // No key is greater than all keys starting with these: unbounded.
  EXPECT_EQ(PrefixSuccessor(""), "");
  EXPECT_EQ(PrefixSuccessor("\xFF\xFF"), "");
}

}  // namespace
}  // namespace kcqrs::state
