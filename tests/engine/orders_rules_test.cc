// The rules of the orders example (examples/orders/topology.yaml), run
// through the broker-free TopologyTestDriver: what a user of the example
// would see on the event, rejection and dead-letter topics and in the stores.
#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "json/document.h"
#include "tests/support/examples.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using testing::TopologyTestDriver;

EngineOptions LoadExample() { return testing::LoadExample("orders"); }

std::string Header(const Record& r, const std::string& name) {
  const kcqrs::Header* h = r.FindHeader(name);
  return h && h->value ? *h->value : "<none>";
}

class OrdersRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto driver = TopologyTestDriver::Create(LoadExample());
    ASSERT_TRUE(driver.ok()) << driver.status().ToString();
    driver_ = std::move(driver).value();
  }

  void Command(const json& command) {
    ASSERT_TRUE(driver_->PipeInput("orders.commands", command.value("orderId", ""),
                                   command.dump())
                    .ok());
  }

  json Get(const std::string& store, const std::string& key) {
    auto s = driver_->GetStore(store);
    EXPECT_NE(s, nullptr) << store;
    if (!s) return nullptr;
    auto v = s->Get(key);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok() || !v->has_value()) return nullptr;
    return json::parse(**v);
  }

  std::vector<json> Values(const std::string& topic) {
    std::vector<json> out;
    for (const Record& r : driver_->ReadOutput(topic)) out.push_back(json::parse(*r.value));
    return out;
  }

  // Dead letters are never expected in these tests unless read explicitly;
  // when one shows up, its error explains the failure.
  void TearDown() override {
    if (!driver_) return;
    for (const Record& r : driver_->ReadOutput("orders-dlq")) {
      ADD_FAILURE() << "unexpected dead letter: " << Header(r, "kcqrs.error");
    }
  }

  std::unique_ptr<TopologyTestDriver> driver_;
};

json Create(const std::string& id, const std::string& product, int quantity,
            const std::string& command_id) {
  return {{"type", "CreateOrder"}, {"orderId", id}, {"product", product},
          {"quantity", quantity}, {"commandId", command_id}};
}

json Cancel(const std::string& id, const std::string& command_id) {
  return {{"type", "CancelOrder"}, {"orderId", id}, {"commandId", command_id}};
}

TEST_F(OrdersRulesTest, CreateOrderEmitsOrderCreatedAndFillsBothViews) {
  Command(Create("o-1", "widget", 3, "c-1"));
  std::vector<Record> events = driver_->ReadOutput("orders.events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(*events[0].key, "o-1");
  EXPECT_EQ(json::parse(*events[0].value),
            (json{{"type", "OrderCreated"}, {"orderId", "o-1"}, {"product", "widget"},
                  {"quantity", 3}}));
  EXPECT_EQ(Header(events[0], "kcqrs.type"), "OrderCreated");
  EXPECT_EQ(Header(events[0], "kcqrs.version"), "1");
  EXPECT_EQ(Header(events[0], "kcqrs.command.id"), "c-1");
  EXPECT_EQ(Header(events[0], "kcqrs.aggregate.id"), "o-1");
  EXPECT_TRUE(driver_->ReadOutput("orders.rejections").empty());

  EXPECT_EQ(Get("orders", "o-1"), (json{{"orderId", "o-1"}, {"product", "widget"},
                                        {"quantity", 3}, {"status", "CREATED"}}));
  EXPECT_EQ(Get("product_totals", "widget"),
            (json{{"product", "widget"}, {"orders", 1}, {"quantity", 3}}));
}

TEST_F(OrdersRulesTest, CreateTwiceIsRejectedAsAlreadyExists) {
  Command(Create("o-1", "widget", 3, "c-1"));
  Command(Create("o-1", "gadget", 1, "c-2"));
  EXPECT_EQ(Values("orders.events").size(), 1u);
  std::vector<json> rejections = Values("orders.rejections");
  ASSERT_EQ(rejections.size(), 1u);
  EXPECT_EQ(rejections[0]["code"], "already_exists");
  EXPECT_EQ(rejections[0]["commandId"], "c-2");
  EXPECT_EQ(rejections[0]["reason"], "order o-1 already exists");
  EXPECT_EQ(Get("orders", "o-1")["product"], "widget");
}

TEST_F(OrdersRulesTest, NonPositiveQuantityIsInvalid) {
  Command(Create("o-1", "widget", 0, "c-1"));
  Command(Create("o-2", "widget", -4, "c-2"));
  std::vector<json> rejections = Values("orders.rejections");
  ASSERT_EQ(rejections.size(), 2u);
  EXPECT_EQ(rejections[0]["code"], "invalid");
  EXPECT_EQ(rejections[0]["reason"], "quantity must be greater than 0, got 0");
  EXPECT_EQ(rejections[1]["code"], "invalid");
  EXPECT_TRUE(Values("orders.events").empty());
  EXPECT_EQ(Get("orders", "o-1"), nullptr);
}

TEST_F(OrdersRulesTest, CancelRulesInLua) {
  Command(Cancel("o-9", "c-1"));
  Command(Create("o-1", "widget", 3, "c-2"));
  Command(Create("o-2", "widget", 2, "c-3"));
  Command(Cancel("o-1", "c-4"));
  Command(Cancel("o-1", "c-5"));

  std::vector<json> rejections = Values("orders.rejections");
  ASSERT_EQ(rejections.size(), 2u);
  EXPECT_EQ(rejections[0]["code"], "not_found");
  EXPECT_EQ(rejections[0]["reason"], "order o-9 does not exist");
  EXPECT_EQ(rejections[1]["code"], "already_cancelled");
  EXPECT_EQ(rejections[1]["commandId"], "c-5");

  std::vector<json> events = Values("orders.events");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2], (json{{"type", "OrderCancelled"}, {"orderId", "o-1"},
                             {"product", "widget"}, {"quantity", 3}}));
  EXPECT_EQ(Get("orders", "o-1")["status"], "CANCELLED");
  EXPECT_EQ(Get("orders", "o-2")["status"], "CREATED");
  // Cancelled orders leave the totals.
  EXPECT_EQ(Get("product_totals", "widget"),
            (json{{"product", "widget"}, {"orders", 1}, {"quantity", 2}}));
}

TEST_F(OrdersRulesTest, ARetriedCommandIdEmitsNothingAgain) {
  Command(Create("o-1", "widget", 3, "c-1"));
  Command(Create("o-1", "widget", 3, "c-1"));  // the producer retried
  Command(Cancel("o-1", "c-2"));
  Command(Cancel("o-1", "c-2"));
  EXPECT_EQ(Values("orders.events").size(), 2u);
  EXPECT_TRUE(Values("orders.rejections").empty());
  EXPECT_EQ(Get("product_totals", "widget")["orders"], 0);
}

TEST_F(OrdersRulesTest, PoisonRecordsGoToTheDeadLetterTopicAndTheRestFlows) {
  struct Poison {
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::string error;
  };
  const std::vector<Poison> poison = {
      {"o-1", "{not json", "the command is not valid JSON"},
      {"o-1", R"({"orderId":"o-1"})", "has no 'type' field"},
      {"o-1", R"({"type":"ShipOrder","orderId":"o-1"})",
       "unknown command type 'ShipOrder' for aggregate 'order' (known: CreateOrder, CancelOrder)"},
      {std::nullopt, R"({"type":"CreateOrder","product":"x","quantity":1})",
       "missing aggregate id: the command has no 'orderId' field"},
      {"o-1", R"([1,2])", "expected a JSON object, found a list"},
      {"o-1", std::nullopt, "has no value"},
      {"o-7", R"({"type":"CreateOrder","orderId":"o-1","quantity":1})",
       "the record key 'o-7' is not the aggregate id 'o-1'"},
      {"o-1", R"({"type":"CreateOrder","orderId":"o-1","quantity":"many"})",
       "CreateOrder.require[1]"},
  };
  for (const Poison& p : poison) {
    ASSERT_TRUE(driver_->PipeInput("orders.commands", p.key, p.value).ok());
  }
  Command(Create("o-1", "widget", 3, "c-1"));

  std::vector<Record> dead = driver_->ReadOutput("orders-dlq");
  ASSERT_EQ(dead.size(), poison.size());
  for (size_t i = 0; i < poison.size(); ++i) {
    EXPECT_NE(Header(dead[i], "kcqrs.error").find(poison[i].error), std::string::npos)
        << i << ": " << Header(dead[i], "kcqrs.error");
    EXPECT_EQ(Header(dead[i], "kcqrs.source.topic"), "orders.commands");
    EXPECT_EQ(Header(dead[i], "kcqrs.source.partition"), "0");
    EXPECT_EQ(Header(dead[i], "kcqrs.source.offset"), std::to_string(i));
    EXPECT_EQ(dead[i].value, poison[i].value) << "the original record is kept";
  }
  EXPECT_EQ(Values("orders.events").size(), 1u);
  EXPECT_EQ(Get("orders", "o-1")["status"], "CREATED");
}

TEST(TopologyTestDriverTest, RunawayLuaBecomesADeadLetterNotAHang) {
  EngineOptions options = LoadExample();
  AggregateSpec& order = options.topology.aggregates[0];
  for (auto& [type, decide] : order.commands) {
    if (type == "CancelOrder") decide.lua->code = "while true do end";
  }
  auto driver = TopologyTestDriver::Create(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  ASSERT_TRUE((*driver)->PipeInput("orders.commands", "o-1",
                                   R"({"type":"CancelOrder","orderId":"o-1"})")
                  .ok());
  std::vector<Record> dead = (*driver)->ReadOutput("orders-dlq");
  ASSERT_EQ(dead.size(), 1u);
  const kcqrs::Header* error = dead[0].FindHeader("kcqrs.error");
  ASSERT_NE(error, nullptr);
  EXPECT_NE(error->value->find("instruction budget"), std::string::npos) << *error->value;
}

TEST(TopologyTestDriverTest, FailPolicyStopsInsteadOfDeadLettering) {
  EngineOptions options = LoadExample();
  options.topology.errors.on_error = ErrorPolicy::OnError::kFail;
  auto driver = TopologyTestDriver::Create(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  Status s = (*driver)->PipeInput("orders.commands", "o-1", "{not json");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("orders.commands-0@0"), std::string::npos) << s.ToString();
  EXPECT_TRUE((*driver)->ReadOutput("orders-dlq").empty());
}

}  // namespace
}  // namespace kcqrs

namespace kcqrs {
namespace {

// The second example (examples/bank), written from docs/topology.md.
TEST(BankRulesTest, OverdraftLimitIsEnforced) {
  const EngineOptions options = testing::LoadExample("bank");
  ASSERT_FALSE(options.topology.aggregates.empty());
  auto driver = testing::TopologyTestDriver::Create(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto send = [&](const json& c) {
    ASSERT_TRUE((*driver)->PipeInput("bank.commands", c["accountId"].get<std::string>(), c.dump())
                    .ok());
  };
  send({{"type", "OpenAccount"}, {"accountId", "a-1"}, {"owner", "ada"},
        {"overdraftLimit", 100}, {"commandId", "k-1"}});
  send({{"type", "Deposit"}, {"accountId", "a-1"}, {"amount", 50}, {"commandId", "k-2"}});
  send({{"type", "Withdraw"}, {"accountId", "a-1"}, {"amount", 120}, {"commandId", "k-3"}});
  send({{"type", "Withdraw"}, {"accountId", "a-1"}, {"amount", 31}, {"commandId", "k-4"}});
  send({{"type", "Withdraw"}, {"accountId", "a-2"}, {"amount", 1}, {"commandId", "k-5"}});

  auto rejections = (*driver)->ReadOutput("bank.rejections");
  ASSERT_EQ(rejections.size(), 2u);
  json r0 = json::parse(*rejections[0].value);
  EXPECT_EQ(r0["code"], "insufficient_funds");
  EXPECT_EQ(r0["commandId"], "k-4");
  EXPECT_EQ(r0["reason"], "balance -70 and overdraft 100 do not cover 31");
  EXPECT_EQ(json::parse(*rejections[1].value)["code"], "not_found");
  EXPECT_EQ((*driver)->ReadOutput("bank.events").size(), 3u);
  auto balance = (*driver)->GetStore("balances")->Get("a-1");
  ASSERT_TRUE(balance.ok() && balance->has_value());
  EXPECT_EQ(json::parse(**balance),
            (json{{"accountId", "a-1"}, {"owner", "ada"}, {"balance", -70}}));
  EXPECT_TRUE((*driver)->ReadOutput("bank-dlq").empty());
}

// Issue 12's money cases, through the example's rules as a user writes them.
TEST(BankRulesTest, MoneyIsExactAndWrongAmountsAreRejectedWithACode) {
  const EngineOptions options = testing::LoadExample("bank");
  auto driver = testing::TopologyTestDriver::Create(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  int n = 0;
  // Raw text: the amounts must reach kcqrs as written, not through a double.
  auto send = [&](const std::string& account, const std::string& fields) {
    const std::string text = R"({"accountId":")" + account + R"(","commandId":"m-)" +
                             std::to_string(++n) + "\"," + fields + "}";
    ASSERT_TRUE((*driver)->PipeInput("bank.commands", account, text).ok()) << text;
  };
  send("a-1", R"("type":"OpenAccount","owner":"ada")");
  send("a-1", R"("type":"Deposit","amount":0.10)");
  send("a-1", R"("type":"Deposit","amount":0.20)");
  send("a-1", R"("type":"Withdraw","amount":0.30)");
  send("a-1", R"("type":"CloseAccount")");                            // m-5: closes
  send("a-1", R"("type":"Deposit","amount":1)");                      // m-6: closed
  send("a-2", R"("type":"OpenAccount","owner":"bob","overdraftLimit":50.5)");
  send("a-2", R"("type":"Deposit","amount":"12.50")");               // m-8: a string
  send("a-2", R"("type":"Deposit","amount":10.005)");                // m-9: not cents
  send("a-2", R"("type":"Deposit","amount":99999999999999999999)");  // m-10: too much
  send("a-2", R"("type":"Deposit","amount":1000000.00)");            // m-11: the maximum
  send("a-2", R"("type":"Deposit","amount":19.99)");
  send("a-2", R"("type":"PayInterest","ratePercent":1.5)");          // m-13
  send("a-2", R"("type":"CloseAccount")");                           // m-14: not zero
  send("a-2", R"("type":"Withdraw","amount":1000000.00)");           // m-15
  send("a-2", R"("type":"Withdraw","amount":15070.79)");             // m-16: to -50.50
  send("a-2", R"("type":"Withdraw","amount":0.01)");                 // m-17: past it
  send("a-2", R"("type":"PayInterest","ratePercent":"x")");          // m-18

  std::map<std::string, json> rejected;
  for (const auto& r : (*driver)->ReadOutput("bank.rejections")) {
    json v = json::parse(*r.value);
    rejected[v["commandId"]] = v;
  }
  auto code = [&](const std::string& id) {
    return rejected.count(id) ? rejected[id]["code"].get<std::string>() : "accepted";
  };
  EXPECT_EQ(code("m-5"), "accepted") << "0.10 + 0.20 - 0.30 must be exactly zero";
  EXPECT_EQ(code("m-6"), "not_found");
  EXPECT_EQ(code("m-8"), "invalid_amount");
  EXPECT_EQ(rejected["m-8"]["reason"], "the amount must be a number, found a string");
  EXPECT_EQ(code("m-9"), "invalid_amount");
  EXPECT_EQ(rejected["m-9"]["reason"], "the amount 10.005 is not a whole number of cents");
  EXPECT_EQ(code("m-10"), "out_of_range");
  EXPECT_EQ(code("m-11"), "accepted");
  EXPECT_EQ(code("m-13"), "accepted");
  EXPECT_EQ(code("m-14"), "balance_not_zero");
  EXPECT_EQ(rejected["m-14"]["reason"],
            "the balance is 1015020.29: withdraw or deposit it first");
  EXPECT_EQ(code("m-15"), "accepted");
  EXPECT_EQ(code("m-16"), "accepted") << "-50.50 is exactly the overdraft limit 50.5";
  EXPECT_EQ(code("m-17"), "insufficient_funds");
  EXPECT_EQ(rejected["m-17"]["reason"], "balance -50.50 and overdraft 50.5 do not cover 0.01");
  EXPECT_EQ(code("m-18"), "invalid_rate");
  EXPECT_EQ(rejected.size(), 7u);

  // The interest: 1000019.99 * 1.5 / 100 = 15000.29985, half-even to cents.
  std::string interest;
  for (const auto& e : (*driver)->ReadOutput("bank.events")) {
    if (e.value->find("InterestPaid") != std::string::npos) interest = *e.value;
  }
  EXPECT_EQ(interest, R"({"accountId":"a-2","amount":15000.30,"type":"InterestPaid"})");
  // Balances keep their cents, in the aggregate and in the view.
  auto view = (*driver)->GetStore("balances")->Get("a-2");
  ASSERT_TRUE(view.ok() && view->has_value());
  EXPECT_EQ(**view, R"({"accountId":"a-2","balance":-50.50,"owner":"bob"})");
  auto closed = (*driver)->GetStore("balances")->Get("a-1");
  ASSERT_TRUE(closed.ok() && closed->has_value());
  EXPECT_EQ(**closed, R"({"accountId":"a-1","balance":0.00,"closed":true,"owner":"ada"})");
  EXPECT_TRUE((*driver)->ReadOutput("bank-dlq").empty());
}

// Issue 12: a view can carry the aggregate version of the event it folded
// (meta.version, from the kcqrs.version header), so that a client reading
// the view knows which version to expect in If-Match; keyed differently
// (through the repartition topic) as well, and in Lua.
TEST(ProjectionMetaTest, AViewCarriesTheAggregateVersionOfItsLastEvent) {
  constexpr char kYaml[] = R"(application:
  id: notes
kafka:
  bootstrap_servers: embedded
aggregates:
  note:
    command_topics: [notes.commands]
    id_field: noteId
    event_topic: notes.events
    rejection_topic: notes.rejections
    store: notes
    commands:
      Write:
        emit:
          - type: Written
            with: {noteId: command.noteId, author: command.author, text: command.text}
    events:
      Written:
        set: {text: event.text}
projections:
  note_view:
    event_topics: [notes.events]
    store: note-view
    events:
      Written:
        upsert: {text: event.text, version: meta.version}
  by_author:
    event_topics: [notes.events]
    store: by-author
    key: event.author
    events:
      Written:
        lua: |
          view = view or {}
          view[event.noteId] = meta.version
          return view
)";
  auto options = config::LoadEngineOptionsFromString(kYaml, "notes.yaml", {});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto driver = testing::TopologyTestDriver::Create(*options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto write = [&](const std::string& id, const std::string& text) {
    json c = {{"type", "Write"}, {"noteId", id}, {"author", "ada"}, {"text", text}};
    ASSERT_TRUE((*driver)->PipeInput("notes.commands", id, c.dump()).ok());
  };
  write("n-1", "a");
  write("n-1", "b");
  write("n-2", "c");
  write("n-1", "d");
  auto get = [&](const std::string& store, const std::string& key) {
    auto v = (*driver)->GetStore(store)->Get(key);
    EXPECT_TRUE(v.ok() && v->has_value()) << store << " " << key;
    return v.ok() && v->has_value() ? json::parse(**v) : json();
  };
  EXPECT_EQ(get("note-view", "n-1"), (json{{"text", "d"}, {"version", 3}}));
  EXPECT_EQ(get("note-view", "n-2"), (json{{"text", "c"}, {"version", 1}}));
  EXPECT_EQ(get("notes", "n-1")["version"], 3);  // the ETag a GET of n-1 shows
  EXPECT_EQ(get("by-author", "ada"), (json{{"n-1", 3}, {"n-2", 1}}));
  EXPECT_TRUE((*driver)->ReadOutput("notes-dlq").empty());
}

}  // namespace
}  // namespace kcqrs
