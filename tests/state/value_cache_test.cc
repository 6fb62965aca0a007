// ValueCache: a bounded cache of committed values in front of storage.
#include "state/value_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace kcqrs::state {
namespace {

TEST(ValueCacheTest, FindsWhatWasPutAbsentValuesIncluded) {
  ValueCache cache(1 << 20);
  EXPECT_EQ(cache.Find("a"), nullptr);
  cache.Put("a", std::string("1"));
  cache.Put("gone", std::nullopt);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(*cache.Find("a"), std::optional<std::string>("1"));
  ASSERT_NE(cache.Find("gone"), nullptr);
  EXPECT_FALSE(cache.Find("gone")->has_value());
  cache.Put("a", std::string("2"));
  EXPECT_EQ(*cache.Find("a"), std::optional<std::string>("2"));
  cache.Clear();
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.bytes(), 0u);
}

// However many keys pass through it, it holds at most its budget, and the
// keys read again recently are the ones it keeps.
TEST(ValueCacheTest, StaysWithinItsBudgetAndKeepsWhatIsReadAgain) {
  constexpr size_t kBudget = 64 << 10;
  ValueCache cache(kBudget);
  const std::string value(100, 'v');
  cache.Put("hot", value);
  for (int i = 0; i < 20'000; ++i) {
    cache.Put("k" + std::to_string(i), value);
    EXPECT_LE(cache.bytes(), kBudget);
    if (i % 50 == 0) {
      EXPECT_NE(cache.Find("hot"), nullptr) << "after " << i << " other keys";
    }
  }
  EXPECT_EQ(cache.Find("k0"), nullptr);      // long gone
  EXPECT_NE(cache.Find("k19999"), nullptr);  // just put
}

TEST(ValueCacheTest, AValueLargerThanAGenerationIsNotCachedAndAZeroBudgetCachesNothing) {
  ValueCache cache(1000);
  cache.Put("big", std::string(600, 'b'));
  EXPECT_EQ(cache.Find("big"), nullptr);
  ValueCache off(0);
  off.Put("a", std::string("1"));
  EXPECT_EQ(off.Find("a"), nullptr);
  EXPECT_EQ(off.bytes(), 0u);
}

// A commit writes through keys of either generation: a key already aged
// into the old one takes the new value once (no stale copy left behind, the
// bytes counted once), and a value too large to cache drops the cached one.
TEST(ValueCacheTest, APutReplacesAKeyOfTheOldGenerationAndALargeValueDropsIt) {
  ValueCache cache(2000);  // a generation ages past 1,000 bytes
  const std::string value(100, 'v');  // an entry of 227 bytes with a short key
  for (const char* key : {"a", "k1", "k2", "k3", "k4"}) cache.Put(key, value);
  // The fifth put aged them all: the young generation is empty.
  EXPECT_EQ(cache.bytes(), 5u * 227);
  cache.Put("a", std::string(100, 'n'));
  EXPECT_EQ(cache.bytes(), 5u * 227);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(*cache.Find("a"), std::optional<std::string>(std::string(100, 'n')));
  cache.Put("k1", std::string(1200, 'b'));
  EXPECT_EQ(cache.Find("k1"), nullptr) << "a stale value would be read";
  EXPECT_EQ(cache.bytes(), 4u * 227);
}

}  // namespace
}  // namespace kcqrs::state
