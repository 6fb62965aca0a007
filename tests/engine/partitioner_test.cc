#include "engine/codec/partitioner.h"

#include <gtest/gtest.h>

namespace kcqrs::engine {
namespace {

// The vectors of Apache Kafka's own UtilsTest.testMurmur2: a key must land in
// the partition a Java producer would choose.
TEST(PartitionerTest, Murmur2MatchesKafkasJavaClient) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

TEST(PartitionerTest, PartitionIsStableAndInRange) {
  for (int n : {1, 3, 7, 64}) {
    for (const char* key : {"", "o-1", "o-2", "widget", "\xff\x00"}) {
      int32_t p = PartitionForKey(key, n);
      EXPECT_GE(p, 0);
      EXPECT_LT(p, n);
      EXPECT_EQ(p, PartitionForKey(key, n));
    }
  }
}

}  // namespace
}  // namespace kcqrs::engine
