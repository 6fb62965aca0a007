#include "workloads.h"

#include <gtest/gtest.h>

#include <string>

namespace kbench {
namespace {

using nlohmann::json;

TEST(WorkloadsTest, SplitMix64IsThePublishedGenerator) {
  // The first output of splitmix64 seeded with 0 (Vigna's reference code).
  EXPECT_EQ(SplitMix64(0), 0xe220a8397b1dcdafULL);
}

TEST(WorkloadsTest, StatelessRecordIsByteExact) {
  std::string key, value;
  StatelessRecord(1, &key, &value);
  EXPECT_EQ(key, "u-02465");
  EXPECT_EQ(value,
            "{\"id\":\"r-0000001\",\"user\":\"u-02465\",\"kind\":\"buy\","
            "\"amount\":253,"
            "\"country\":\"IN\",\"ts\":1764300000001,\"session\":\"s-"
            "5e41ab087439611e\","
            "\"agent\":\"Mozilla/5.0 (X11; Linux x86_64) kbench\"}");
}

TEST(WorkloadsTest, StatelessTransformKeepsNonViewsOfAtLeast100) {
  json out;
  ASSERT_TRUE(StatelessTransform(1, &out));  // buy, 253
  EXPECT_EQ(
      out.dump(),
      R"({"cents":25300,"country":"IN","id":"r-0000001","kind":"buy","user":"u-02465"})");
  EXPECT_FALSE(StatelessTransform(6, &out));  // a view
}

TEST(WorkloadsTest, OrderCommandsAreByteExact) {
  const OrderNaming naming;
  EXPECT_EQ(
      CommandValue(OrderStep(naming, 42, 0)),
      R"({"type":"CreateOrder","orderId":"o-000042","product":"p-598","quantity":6,"commandId":"c-000042-0"})");
  EXPECT_EQ(
      CommandValue(OrderStep(naming, 42, 3)),
      R"({"type":"AdjustQuantity","orderId":"o-000042","delta":4,"commandId":"c-000042-3"})");
  // 42 % 4 != 0: step 8 adjusts; 42 is even: step 9 cancels.
  EXPECT_EQ(OrderStep(naming, 42, 8).type, CommandType::kAdjustQuantity);
  EXPECT_EQ(
      CommandValue(OrderStep(naming, 42, 9)),
      R"({"type":"CancelOrder","orderId":"o-000042","commandId":"c-000042-9"})");
  // Every 20th order is created with quantity 0; odd orders end with a create.
  EXPECT_EQ(OrderStep(naming, 40, 0).quantity, 0);
  EXPECT_EQ(OrderStep(naming, 40, 8).type, CommandType::kCancelOrder);
  EXPECT_EQ(OrderStep(naming, 41, 9).type, CommandType::kCreateOrder);
  EXPECT_EQ(RecoveryCommand(1).order_id, "o-R0000001");
  EXPECT_EQ(
      CommandValue(RecoveryCommand(1)),
      R"({"type":"CreateOrder","orderId":"o-R0000001","product":"p-919","quantity":6,"commandId":"c-R0000001"})");
  OrderNaming offer{"o-L1-", "c-L1-", 7};
  EXPECT_EQ(OrderStep(offer, 3, 2).command_id, "c-L1-0000003-2");
}

TEST(WorkloadsTest, ExpectedOrdersMatchTheRulesWorkedOutByHand) {
  // Of 20,000 orders: every 20th is rejected at creation (invalid) and then
  // not_found 9 times; odd orders exist at step 9 (already_exists); orders
  // with k % 4 == 0 are cancelled at step 8 and again at step 9, the other
  // even ones at step 9; products that are multiples of 20 only get the
  // never-created orders (7919 is invertible mod 1000).
  json e = ExpectedOrders(20000);
  EXPECT_EQ(e["commands"], 200000);
  EXPECT_EQ(e["events"]["by_type"]["OrderCreated"], 19000);
  EXPECT_EQ(e["events"]["by_type"]["OrderCancelled"], 4000 + 5000);
  EXPECT_EQ(e["rejections"]["by_code"]["already_exists"], 10000);
  EXPECT_EQ(e["rejections"]["by_code"]["already_cancelled"], 4000);
  EXPECT_EQ(e["rejections"]["by_code"]["not_found"], 1000 * 9);
  EXPECT_EQ(e["events"]["total"].get<uint64_t>() +
                e["rejections"]["total"].get<uint64_t>(),
            200000u);
  EXPECT_EQ(e["stores"]["orders"]["keys"], 19000);
  EXPECT_EQ(e["stores"]["product_totals"]["keys"], 950);
}

TEST(WorkloadsTest, ARepeatedCommandIdProducesNothing) {
  OrdersModel model;
  const OrderNaming naming;
  model.Apply(OrderStep(naming, 1, 0));
  model.Apply(OrderStep(naming, 1, 0));  // a retry of the same command
  json s = model.Summary();
  EXPECT_EQ(s["events"]["total"], 1);
  EXPECT_EQ(s["rejections"]["total"], 0);
}

TEST(WorkloadsTest, DigestIgnoresOrderButCountsDuplicates) {
  Digest a, b, c;
  a.Add("k1", "v1");
  a.Add("k2", "v2");
  b.Add("k2", "v2");
  b.Add("k1", "v1");
  c.Add("k1", "v1");
  c.Add("k1", "v1");
  EXPECT_EQ(a.Hex(), b.Hex());
  EXPECT_NE(a.Hex(), c.Hex());
  Digest swapped;  // the key/value boundary matters
  swapped.Add("k", "1\nv1");
  Digest plain;
  plain.Add("k1", "v1");
  EXPECT_NE(swapped.Hex(), plain.Hex());
}

TEST(WorkloadsTest, CanonicalJsonSortsKeysAndWritesIntegralFloatsAsIntegers) {
  EXPECT_EQ(CanonicalJson(R"({ "b": 3.0, "a": [1.0, 2.5] })"),
            R"({"a":[1,2.5],"b":3})");
  EXPECT_THROW(CanonicalJson("{not json"), std::invalid_argument);
}

TEST(WorkloadsTest, ChangelogFoldKeepsTheLastValueAndDropsTombstones) {
  ChangelogFold fold;
  const std::string v1 = R"({"n":1})", v2 = R"({"n":2})";
  fold.Put("a", &v1);
  fold.Put("a", &v2);
  fold.Put("b", &v1);
  fold.Put("b", nullptr);
  json s = fold.Summary();
  Digest want;
  want.Add("a", v2);
  EXPECT_EQ(s["keys"], 1);
  EXPECT_EQ(s["digest"], want.Hex());

  // Kafka Streams' timestamped stores: 8-byte timestamp, then the document.
  ChangelogFold ks;
  const std::string prefixed =
      std::string("\0\0\x01\x9a\xbc\xde\xf0\x12", 8) + v2;
  ks.Put("a", &prefixed);
  json t = ks.Summary();
  EXPECT_EQ(t["digest"], want.Hex());
  EXPECT_EQ(t["timestamped_values"], 1);
}

TEST(WorkloadsTest, OfferedCommandsGoBlockByBlockStepMajor) {
  // The first 100 commands are step 0 of orders 0..99, the next 100 step 1.
  OrderCommand first = OfferedCommand("M1", 0);
  EXPECT_EQ(first.order_id, "o-M1-0000000");
  EXPECT_EQ(first.command_id, "c-M1-0000000-0");
  EXPECT_EQ(first.type, CommandType::kCreateOrder);
  EXPECT_EQ(OfferedCommand("M1", 99).order_id, "o-M1-0000099");
  EXPECT_EQ(OfferedCommand("M1", 100).command_id, "c-M1-0000000-1");
  EXPECT_EQ(OfferedCommand("M1", 1000).order_id, "o-M1-0000100");
}

TEST(WorkloadsTest, ExpectedCommandsGivesEveryCommandOneOutcome) {
  // What the latency and recovery checks rely on: every command of every
  // family yields exactly one event or one rejection.
  json e = ExpectedCommands(7, 50, {{"W1", 1234}, {"M1", 250}});
  EXPECT_EQ(e["commands"].get<uint64_t>(), 70u + 50u + 1234u + 250u);
  EXPECT_EQ(e["events"]["total"].get<uint64_t>() +
                e["rejections"]["total"].get<uint64_t>(),
            70u + 50u + 1234u + 250u);
  // Recovery orders each create one order; offered orders 0..123 (W1, 1234
  // commands reach order 123's step 2) and 0..99 (M1) make up the rest.
  EXPECT_EQ(e["stores"]["orders"]["keys"].get<uint64_t>(),
            ExpectedOrders(7)["stores"]["orders"]["keys"].get<uint64_t>() + 50u +
                ExpectedCommands(0, 0, {{"W1", 1234}})["stores"]["orders"]["keys"]
                    .get<uint64_t>() +
                ExpectedCommands(0, 0, {{"M1", 250}})["stores"]["orders"]["keys"]
                    .get<uint64_t>());
  // Without recovery or offered commands it is the orders workload's outcome.
  json plain = ExpectedCommands(7, 0, {});
  EXPECT_EQ(plain["events"], ExpectedOrders(7)["events"]);
  EXPECT_EQ(plain["stores"], ExpectedOrders(7)["stores"]);
}

}  // namespace
}  // namespace kbench
