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

// The headers kcqrs writes on an event (engine/processors/command_handler.cc),
// in its order.
OrdersHeaderCheck::Headers EventHeaders(const std::string& type, const std::string& id,
                                        const std::string& command_type,
                                        const std::string& command_id,
                                        const std::string& version) {
  return {{"kcqrs.aggregate", "order"},      {"kcqrs.aggregate.id", id},
          {"kcqrs.command.type", command_type}, {"kcqrs.command.id", command_id},
          {"kcqrs.type", type},               {"kcqrs.version", version}};
}

OrdersHeaderCheck::Headers Without(OrdersHeaderCheck::Headers h, const std::string& name) {
  std::erase_if(h, [&](const auto& kv) { return kv.first == name; });
  return h;
}

const json kCreated = {{"type", "OrderCreated"}, {"orderId", "o-000001"},
                       {"product", "p-919"}, {"quantity", 6}};
const json kAdjusted = {{"type", "QuantityAdjusted"}, {"orderId", "o-000001"},
                        {"product", "p-919"}, {"delta", 2}, {"quantity", 8}};
const json kRejection = {{"commandId", "c-000001-9"}, {"commandType", "CreateOrder"},
                         {"aggregate", "order"},      {"aggregateId", "o-000001"},
                         {"code", "already_exists"},  {"reason", "order o-000001 already exists"},
                         {"timestamp", 1}};
const OrdersHeaderCheck::Headers kRejectionHeaders = {
    {"kcqrs.aggregate", "order"},          {"kcqrs.aggregate.id", "o-000001"},
    {"kcqrs.command.type", "CreateOrder"}, {"kcqrs.command.id", "c-000001-9"},
    {"kcqrs.type", "Rejected"}};

TEST(WorkloadsTest, KcqrsHeadersPassTheCheckAndMatchTheModel) {
  OrdersModel model;
  const OrderNaming naming;
  model.Apply(OrderStep(naming, 1, 0));  // OrderCreated, version 1
  OrdersHeaderCheck check;
  check.Event("r.orders.events", 2, 10, "o-000001", kCreated,
              EventHeaders("OrderCreated", "o-000001", "CreateOrder", "c-000001-0", "1"));
  check.Rejection("r.orders.rejections", 2, 4, "o-000001", kRejection, kRejectionHeaders);
  EXPECT_EQ(check.bad_records(), 0u);
  EXPECT_TRUE(check.problems().empty());
  EXPECT_EQ(check.event_headers().Hex(),
            model.Summary()["events"]["headers_digest"].get<std::string>());

  // A different command id or version digests differently.
  OrdersHeaderCheck other;
  other.Event("r.orders.events", 2, 10, "o-000001", kCreated,
              EventHeaders("OrderCreated", "o-000001", "CreateOrder", "c-000001-1", "1"));
  EXPECT_EQ(other.bad_records(), 0u);
  EXPECT_NE(other.event_headers().Hex(), check.event_headers().Hex());
}

TEST(WorkloadsTest, AMissingEventHeaderFailsWithWhereAndWhat) {
  OrdersHeaderCheck check;
  check.Event("r.orders.events", 3, 17, "o-000001", kCreated,
              Without(EventHeaders("OrderCreated", "o-000001", "CreateOrder", "c-000001-0",
                                   "1"),
                      "kcqrs.command.id"));
  EXPECT_EQ(check.bad_records(), 1u);
  ASSERT_EQ(check.problems().size(), 1u);
  EXPECT_EQ(check.problems()[0],
            "r.orders.events partition 3 offset 17 (key \"o-000001\"): header "
            "kcqrs.command.id is missing");
  EXPECT_EQ(check.event_headers().count(), 0u);  // so the headers digest differs too

  OrdersHeaderCheck none;  // what the Kafka Streams peers wrote before
  none.Event("r.orders.events", 0, 0, "o-000001", kCreated, {});
  none.Rejection("r.orders.rejections", 0, 0, "o-000001", kRejection, {});
  EXPECT_EQ(none.bad_records(), 2u);
  ASSERT_EQ(none.problems().size(), 2u);
  EXPECT_NE(none.problems()[0].find("header kcqrs.type is missing; header kcqrs.aggregate "
                                    "is missing"),
            std::string::npos)
      << none.problems()[0];
  EXPECT_NE(none.problems()[1].find("r.orders.rejections partition 0 offset 0"),
            std::string::npos);
}

TEST(WorkloadsTest, WrongEventHeaderValuesFail) {
  OrdersHeaderCheck check;
  // Type not the event's, command type not the one that makes an OrderCreated.
  check.Event("e", 0, 0, "o-000001", kCreated,
              EventHeaders("OrderCancelled", "o-000001", "AdjustQuantity", "c-1", "1"));
  ASSERT_EQ(check.problems().size(), 1u);
  EXPECT_NE(check.problems()[0].find("header kcqrs.type is \"OrderCancelled\", not "
                                     "\"OrderCreated\" (the event's type)"),
            std::string::npos)
      << check.problems()[0];
  EXPECT_NE(check.problems()[0].find("header kcqrs.command.type is \"AdjustQuantity\", not "
                                     "\"CreateOrder\""),
            std::string::npos)
      << check.problems()[0];

  // aggregate.id not the key; an empty command id; a duplicated header.
  OrdersHeaderCheck ids;
  auto h = EventHeaders("OrderCreated", "o-000002", "CreateOrder", "", "1");
  h.emplace_back("kcqrs.aggregate", "order");
  ids.Event("e", 0, 0, "o-000001", kCreated, h);
  ASSERT_EQ(ids.problems().size(), 1u);
  EXPECT_NE(ids.problems()[0].find("header kcqrs.aggregate appears 2 times"), std::string::npos);
  EXPECT_NE(ids.problems()[0].find("header kcqrs.aggregate.id is \"o-000002\", not "
                                   "\"o-000001\" (the record key)"),
            std::string::npos);
  EXPECT_NE(ids.problems()[0].find("header kcqrs.command.id is empty"), std::string::npos);
}

TEST(WorkloadsTest, EventVersionsMustCountFromOneInOffsetOrder) {
  json adjusted2 = kAdjusted, adjusted3 = kAdjusted;
  adjusted2["orderId"] = "o-000002";
  adjusted3["orderId"] = "o-000003";
  OrdersHeaderCheck check;
  check.Event("e", 1, 5, "o-000001", kCreated,
              EventHeaders("OrderCreated", "o-000001", "CreateOrder", "c-0", "1"));
  check.Event("e", 1, 9, "o-000001", kAdjusted,
              EventHeaders("QuantityAdjusted", "o-000001", "AdjustQuantity", "c-1", "3"));
  check.Event("e", 1, 12, "o-000001", kAdjusted,
              EventHeaders("QuantityAdjusted", "o-000001", "AdjustQuantity", "c-2", "4"));
  check.Event("e", 1, 13, "o-000002", adjusted2,  // another order: starts at 1
              EventHeaders("QuantityAdjusted", "o-000002", "AdjustQuantity", "c-3", "2"));
  check.Event("e", 1, 14, "o-000003", adjusted3,
              EventHeaders("QuantityAdjusted", "o-000003", "AdjustQuantity", "c-4", "01"));
  check.Event("e", 2, 0, "o-000001", kAdjusted,
              EventHeaders("QuantityAdjusted", "o-000001", "AdjustQuantity", "c-5", "5"));
  ASSERT_EQ(check.problems().size(), 4u);
  EXPECT_EQ(check.problems()[0],
            "e partition 1 offset 9 (key \"o-000001\"): header kcqrs.version is 3, not 2 "
            "(the order's previous event made version 1)");
  // A gap is one problem, not one per later event: offset 12 (4 after 3) passes.
  EXPECT_NE(check.problems()[1].find("offset 13 (key \"o-000002\"): header kcqrs.version "
                                     "is 2, not 1 (the order's first event)"),
            std::string::npos)
      << check.problems()[1];
  EXPECT_NE(check.problems()[2].find("header kcqrs.version is \"01\", not a version"),
            std::string::npos)
      << check.problems()[2];
  EXPECT_NE(check.problems()[3].find("this order's events are in partitions 1 and 2"),
            std::string::npos)
      << check.problems()[3];
}

TEST(WorkloadsTest, WrongRejectionHeadersFail) {
  OrdersHeaderCheck check;
  auto h = kRejectionHeaders;
  h[4].second = "OrderCreated";           // kcqrs.type
  h[3].second = "c-000001-8";             // kcqrs.command.id
  h.emplace_back("kcqrs.version", "2");   // only events have one
  check.Rejection("r", 0, 7, "o-000001", kRejection, h);
  ASSERT_EQ(check.problems().size(), 1u);
  EXPECT_EQ(check.problems()[0],
            "r partition 0 offset 7 (key \"o-000001\"): header kcqrs.type is "
            "\"OrderCreated\", not \"Rejected\" (a rejection); header kcqrs.command.id is "
            "\"c-000001-8\", not \"c-000001-9\" (the rejection's commandId); header "
            "kcqrs.version is there (only events have it)");

  OrdersHeaderCheck null_value;
  auto n = kRejectionHeaders;
  n[2].second = std::nullopt;
  null_value.Rejection("r", 0, 8, "o-000001", kRejection, n);
  ASSERT_EQ(null_value.problems().size(), 1u);
  EXPECT_NE(null_value.problems()[0].find("header kcqrs.command.type has a null value"),
            std::string::npos);
}

TEST(WorkloadsTest, HeaderProblemsAreCountedAllButListedOnlyFirst) {
  OrdersHeaderCheck check;
  for (int i = 0; i < 30; ++i) check.Rejection("r", 0, i, "o-000001", kRejection, {});
  EXPECT_EQ(check.bad_records(), 30u);
  EXPECT_EQ(check.problems().size(), OrdersHeaderCheck::kMaxProblems);
}

}  // namespace
}  // namespace kbench
