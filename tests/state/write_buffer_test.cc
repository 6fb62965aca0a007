// StoreWrites: one store's buffered writes, hashed for lookups and sorted on
// demand for commits and range scans.
#include "state/write_buffer.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace kcqrs::state {
namespace {

std::vector<std::string> SortedKeys(const StoreWrites& w) {
  std::vector<std::string> out;
  for (const StoreWrites::Entry* e : w.Sorted()) out.push_back(e->first);
  return out;
}

std::vector<std::string> RangeKeys(const StoreWrites& w, std::string_view from,
                                   std::string_view to) {
  const auto [first, last] = w.RangeOf(from, to);
  std::vector<std::string> out;
  for (size_t i = first; i < last; ++i) out.push_back(w.Sorted()[i]->first);
  return out;
}

TEST(StoreWritesTest, FindsTheLastWriteOfAKeyDeletesIncluded) {
  StoreWrites w;
  EXPECT_EQ(w.Find("a"), nullptr);
  EXPECT_FALSE(w.Put("a", std::string("1")).existed);
  EXPECT_FALSE(w.Put("gone", std::nullopt).existed);
  const StoreWrites::Replaced r = w.Put("a", std::string("22"));
  EXPECT_TRUE(r.existed);
  EXPECT_EQ(r.value_bytes, 1u);
  ASSERT_NE(w.Find("a"), nullptr);
  EXPECT_EQ(*w.Find("a"), std::optional<std::string>("22"));
  ASSERT_NE(w.Find("gone"), nullptr);
  EXPECT_FALSE(w.Find("gone")->has_value());
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.puts(), 1u);  // "gone" is a delete
  EXPECT_EQ(w.Put("gone", std::string("back")).value_bytes, 0u);  // a delete held no bytes
  EXPECT_EQ(w.puts(), 2u);
}

// Keys written in any order, with sorted reads between the writes (as a
// timer scan after every record makes them), read back in key order, the
// same as a std::map of the same writes, whole and by range.
TEST(StoreWritesTest, ReadsBackInKeyOrderHoweverTheWritesAndReadsInterleave) {
  std::mt19937 rng(7);
  StoreWrites w;
  std::map<std::string, std::optional<std::string>> model;
  for (int i = 0; i < 3000; ++i) {
    std::string key = "k" + std::to_string(rng() % 1000);
    std::optional<std::string> value;
    if (rng() % 4 != 0) value = std::to_string(i);
    model[key] = value;
    w.Put(key, value);
    if (rng() % 50 == 0) {
      std::vector<std::string> expected;
      for (const auto& [k, v] : model) expected.push_back(k);
      ASSERT_EQ(SortedKeys(w), expected) << "after " << i << " writes";
    }
  }
  std::vector<std::string> all;
  for (const auto& [k, v] : model) {
    all.push_back(k);
    ASSERT_NE(w.Find(k), nullptr);
    EXPECT_EQ(*w.Find(k), v) << k;
  }
  EXPECT_EQ(SortedKeys(w), all);

  auto expect_range = [&](std::string from, std::string to) {
    std::vector<std::string> expected;
    for (auto it = model.lower_bound(from);
         it != model.end() && (to.empty() || it->first < to); ++it) {
      expected.push_back(it->first);
    }
    EXPECT_EQ(RangeKeys(w, from, to), expected) << "[" << from << ", " << to << ")";
  };
  expect_range("", "");
  expect_range("k2", "k3");
  expect_range("k5", "");
  expect_range("k50", "k500");
  expect_range("k9", "k1");  // empty: to before from
  expect_range("z", "");
}

TEST(StoreWritesTest, TakeAllHandsOnEveryWriteAndEmptiesTheBuffer) {
  StoreWrites w;
  w.Put("b", std::string("2"));
  w.Put("a", std::string("1"));
  w.Put("c", std::nullopt);
  (void)w.Sorted();
  std::map<std::string, std::optional<std::string>> taken;
  w.TakeAll([&](std::string k, std::optional<std::string> v) { taken[std::move(k)] = std::move(v); });
  EXPECT_EQ(taken, (std::map<std::string, std::optional<std::string>>{
                       {"a", "1"}, {"b", "2"}, {"c", std::nullopt}}));
  EXPECT_TRUE(w.empty());
  EXPECT_TRUE(w.Sorted().empty());
  w.Put("d", std::string("4"));  // usable again
  EXPECT_EQ(SortedKeys(w), std::vector<std::string>{"d"});
  w.Clear();
  EXPECT_EQ(w.Find("d"), nullptr);
  EXPECT_TRUE(w.Sorted().empty());
}

}  // namespace
}  // namespace kcqrs::state
