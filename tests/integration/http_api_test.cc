// The HTTP API against the engine on the real broker, with a real HTTP
// client: commands in through POST /commands, read-your-writes queries,
// scans with paging, the store list, readiness, and bad requests of every
// kind answered with problem JSON.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "engine/serving/position_log.h"
#include "json/document.h"
#include "tests/integration/engine_test_util.h"
#include "tests/integration/orders_example.h"
#include "tests/support/chromium.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;
using namespace kcqrs::testing;

constexpr char kToken[] = "s3cret-token";

class HttpApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bootstrap_ = new std::string(TestBootstrapServers());
    names_ = new OrdersNames(MakeOrdersNames(UniqueName("orders-http")));
    std::filesystem::remove_all(names_->state_dir);
    EngineOptions options = LoadOrders(*names_, *bootstrap_);
    options.http.command_token = kToken;
    engine_ = OpenEngine(options).release();
    ASSERT_NE(engine_, nullptr);
    ASSERT_TRUE(WaitFor([] { return engine_->ready(); }, std::chrono::seconds(90)));
  }
  static void TearDownTestSuite() {
    if (engine_) engine_->Stop();
    delete engine_;
    engine_ = nullptr;
    std::filesystem::remove_all(names_->state_dir);
  }

  HttpResult Get(const std::string& target) {
    return HttpRequest(engine_->http_address(), "GET", target);
  }
  HttpResult Post(const std::string& target, const std::string& body, bool auth = true) {
    std::map<std::string, std::string> h;
    if (auth) h["Authorization"] = std::string("Bearer ") + kToken;
    return HttpRequest(engine_->http_address(), "POST", target, body, h);
  }

  // A problem response: status, content type and the RFC 9457 members.
  static void ExpectProblem(const HttpResult& r, int status, const std::string& detail_part) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
              "application/problem+json")
        << r.body;
    json p = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(p.is_object()) << r.body;
    EXPECT_EQ(p.value("status", 0), status);
    EXPECT_FALSE(p.value("type", "").empty());
    EXPECT_FALSE(p.value("title", "").empty());
    EXPECT_NE(p.value("detail", "").find(detail_part), std::string::npos) << r.body;
  }

  static std::string* bootstrap_;
  static OrdersNames* names_;
  static Engine* engine_;
};

std::string* HttpApiTest::bootstrap_ = nullptr;
OrdersNames* HttpApiTest::names_ = nullptr;
Engine* HttpApiTest::engine_ = nullptr;

TEST_F(HttpApiTest, PostedCommandIsReadBackWithItsPositionOnTheFirstTry) {
  HttpResult posted =
      Post("/commands/order", R"({"type":"CreateOrder","orderId":"o-1","product":"widget","quantity":3})");
  ASSERT_EQ(posted.status, 202) << posted.body;
  json accepted = json::parse(posted.body);
  EXPECT_TRUE(std::regex_match(accepted["commandId"].get<std::string>(),
                               std::regex("[0-9a-f]{32}")))
      << "a command without an id gets one: " << posted.body;
  const std::string position = accepted["position"];

  HttpResult order = Get("/stores/orders/keys/o-1?position=" + position);
  ASSERT_EQ(order.status, 200) << order.body;
  EXPECT_EQ(json::parse(order.body), (json{{"orderId", "o-1"}, {"product", "widget"},
                                           {"quantity", 3}, {"status", "CREATED"}}));
  // Two hops away (through the repartition topic), still on the first try.
  HttpResult totals = Get("/stores/product_totals/keys/widget?position=" + position);
  ASSERT_EQ(totals.status, 200) << totals.body;
  EXPECT_EQ(json::parse(totals.body)["orders"], 1);
}

TEST_F(HttpApiTest, WaitAnswersWithTheEventsOrTheRejection) {
  HttpResult created = Post("/commands/order?wait=true",
                            R"({"type":"CreateOrder","orderId":"o-2","product":"gadget",)"
                            R"("quantity":2,"commandId":"w-1"})");
  ASSERT_EQ(created.status, 200) << created.body;
  json body = json::parse(created.body);
  EXPECT_EQ(body["commandId"], "w-1");
  ASSERT_EQ(body["events"].size(), 1u);
  EXPECT_EQ(body["events"][0]["type"], "OrderCreated");

  HttpResult again = Post("/commands/order?wait=true",
                          R"({"type":"CreateOrder","orderId":"o-2","product":"gadget",)"
                          R"("quantity":2,"commandId":"w-2"})");
  ExpectProblem(again, 409, "order o-2 already exists");
  EXPECT_EQ(json::parse(again.body)["code"], "already_exists");

  // The same command id again: its original outcome, nothing emitted twice.
  HttpResult retried = Post("/commands/order?wait=true",
                            R"({"type":"CreateOrder","orderId":"o-2","product":"gadget",)"
                            R"("quantity":2,"commandId":"w-1"})");
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(json::parse(retried.body)["events"][0]["type"], "OrderCreated");

  // A command its rules cannot evaluate is dead-lettered: the answer says
  // why, as the dead letter's kcqrs.error header does.
  HttpResult dead = Post("/commands/order?wait=true",
                         R"({"type":"CreateOrder","orderId":"o-3","product":"gadget",)"
                         R"("quantity":"many","commandId":"w-3"})");
  ASSERT_EQ(dead.status, 422) << dead.body;
  json problem = json::parse(dead.body);
  EXPECT_EQ(problem["commandId"], "w-3");
  EXPECT_NE(problem["reason"].get<std::string>().find("order.CreateOrder.require[1]"),
            std::string::npos)
      << dead.body;
}

TEST_F(HttpApiTest, ScansPageInKeyOrder) {
  std::string position;
  for (int i = 10; i < 15; ++i) {
    HttpResult r = Post("/commands/order",
                        json{{"type", "CreateOrder"}, {"orderId", "s-" + std::to_string(i)},
                             {"product", "bolt"}, {"quantity", 1}}
                            .dump());
    ASSERT_EQ(r.status, 202) << r.body;
    position = json::parse(r.body)["position"];
  }
  // Wait for the last one (same partition order is not guaranteed across
  // keys, so wait for each page's keys through their own positions).
  std::vector<std::string> keys;
  std::string target = "/stores/orders/keys?prefix=s-&limit=2";
  for (int page = 0; page < 5; ++page) {
    HttpResult r;
    ASSERT_TRUE(WaitFor([&] {
      r = Get(target);
      return r.status == 200;
    }, std::chrono::seconds(30)));
    json body = json::parse(r.body);
    for (const json& item : body["items"]) keys.push_back(item["key"]);
    if (body["next"].is_null()) break;
    target = "/stores/orders/keys?prefix=s-&limit=2&cursor=" + body["next"].get<std::string>();
  }
  // Eventually all five are there, in order, two per page.
  ASSERT_TRUE(WaitFor([&] {
    HttpResult all = Get("/stores/orders/keys?prefix=s-&limit=10");
    return all.status == 200 && json::parse(all.body)["items"].size() == 5;
  }, std::chrono::seconds(30)));
  keys.clear();
  target = "/stores/orders/keys?prefix=s-&limit=2";
  int pages = 0;
  for (;;) {
    HttpResult r = Get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    json body = json::parse(r.body);
    EXPECT_LE(body["items"].size(), 2u);
    for (const json& item : body["items"]) keys.push_back(item["key"]);
    ++pages;
    if (body["next"].is_null()) break;
    target = "/stores/orders/keys?prefix=s-&limit=2&cursor=" + body["next"].get<std::string>();
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(keys, (std::vector<std::string>{"s-10", "s-11", "s-12", "s-13", "s-14"}));

  HttpResult range = Get("/stores/orders/keys?from=s-11&to=s-13");
  ASSERT_EQ(range.status, 200);
  json items = json::parse(range.body)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["key"], "s-11");
  EXPECT_EQ(items[1]["value"]["status"], "CREATED");
}

TEST_F(HttpApiTest, StoresReadinessAndHealth) {
  // Each test may run in a process of its own: make something happen here.
  ASSERT_EQ(Post("/commands/order?wait=true",
                 R"({"type":"CreateOrder","orderId":"h-1","product":"cog","quantity":1})")
                .status,
            200);
  HttpResult stores = Get("/stores");
  ASSERT_EQ(stores.status, 200) << stores.body;
  std::set<std::string> names;
  const json listed = json::parse(stores.body);
  for (const json& s : listed["stores"]) {
    names.insert(s["name"]);
    EXPECT_EQ(s["partitions"], 3);
    EXPECT_EQ(s["hosted_partitions"].size(), 3u);
    EXPECT_TRUE(s.contains("approximate_keys"));
    EXPECT_TRUE(s["positions"].is_object());
  }
  EXPECT_EQ(names, (std::set<std::string>{"order-aggregates", "orders", "product_totals"}));

  HttpResult ready = Get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  json r = json::parse(ready.body);
  EXPECT_EQ(r["status"], "READY");
  EXPECT_EQ(r["tasks"].size(), 9u);
  EXPECT_EQ(Get("/healthz").status, 200);

  HttpResult topology = Get("/topology");
  ASSERT_EQ(topology.status, 200) << topology.body;
  json t = json::parse(topology.body);
  EXPECT_EQ(t["subtopologies"].size(), 3u);
  EXPECT_EQ(t["subtopologies"][0]["partitions"], 3);
  HttpResult mermaid = Get("/topology?format=mermaid");
  ASSERT_EQ(mermaid.status, 200);
  EXPECT_EQ(mermaid.body.rfind("graph TD;", 0), 0u) << mermaid.body;
  ExpectProblem(Get("/topology?format=dot"), 400, "format");
  HttpResult page = Get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<title>"), std::string::npos);
  EXPECT_NE(page.body.find("topology"), std::string::npos);

  HttpResult stats = Get("/stats");
  ASSERT_EQ(stats.status, 200);
  json st = json::parse(stats.body);
  EXPECT_TRUE(st["ready"].get<bool>());
  EXPECT_GT(st["totals"]["records_processed"].get<int>(), 0);
  EXPECT_EQ(st["stores"].size(), 3u);
}

// What the page shows of the stores and the lag. An aggregate decided twice
// is one key (RocksDB's estimate-num-keys counted each write in the memtable
// again), and every partition the instance holds has a lag, also those no
// record reached yet (they were left out: a topic of 3 partitions showed 2).
TEST_F(HttpApiTest, StatsCountEachKeyOnceAndGiveEveryPartitionHeldALag) {
  for (const char* type : {"CreateOrder", "CancelOrder"}) {
    ASSERT_EQ(Post("/commands/order?wait=true",
                   json{{"type", type}, {"orderId", "k-1"}, {"product", "nut"}, {"quantity", 1}}
                       .dump())
                  .status,
              200);
  }
  HttpResult scan = Get("/stores/order-aggregates/keys?limit=1000");
  ASSERT_EQ(scan.status, 200) << scan.body;
  const size_t keys = json::parse(scan.body)["items"].size();
  ASSERT_GE(keys, 1u);

  HttpResult stats = Get("/stats");
  ASSERT_EQ(stats.status, 200);
  const json st = json::parse(stats.body);
  bool found = false;
  for (const json& store : st["stores"]) {
    if (store["name"] != "order-aggregates") continue;
    found = true;
    EXPECT_EQ(store["keys"], keys) << store.dump();
    EXPECT_EQ(store["keys_exact"], true) << store.dump();
  }
  EXPECT_TRUE(found) << stats.body;
  // The stream thread updates the lag once a second; a command topic of 3
  // partitions has 3 entries from the first update on.
  json lag;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < until;) {
    lag = json::parse(Get("/stats").body)["lag"][names_->commands];
    if (lag.size() == 3u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(lag.size(), 3u) << lag.dump();
  for (const char* p : {"0", "1", "2"}) EXPECT_TRUE(lag.contains(p)) << p << " " << lag.dump();
}

TEST_F(HttpApiTest, BadRequestsGetProblemJson) {
  ExpectProblem(Get("/stores/nope/keys/x"), 404, "no store named 'nope'");
  ExpectProblem(Get("/stores/orders/keys/never-created"), 404, "no key 'never-created'");
  ExpectProblem(Get("/stores/orders/keys?limit=0"), 400, "limit");
  ExpectProblem(Get("/stores/orders/keys?limit=abc"), 400, "limit");
  ExpectProblem(Get("/stores/orders/keys?cursor=***"), 400, "cursor");
  ExpectProblem(Get("/stores/orders/keys?colour=red"), 400, "unknown parameter 'colour'");
  ExpectProblem(Get("/stores/orders/keys/o-1?position=garbage!"), 400, "position");
  ExpectProblem(Get("/stores/orders/keys/o-1?timeout_ms=-5"), 400, "timeout_ms");
  ExpectProblem(Post("/commands/order", "{not json"), 400, "JSON object");
  ExpectProblem(Post("/commands/order", R"({"orderId":"o-9"})"), 400, "'type'");
  ExpectProblem(Post("/commands/order", R"({"type":"ShipOrder","orderId":"o-9"})"), 400,
                "unknown command type 'ShipOrder'");
  ExpectProblem(Post("/commands/order", R"({"type":"CreateOrder","quantity":1})"), 400,
                "'orderId'");
  ExpectProblem(Post("/commands/invoice", R"({"type":"X"})"), 404, "no aggregate named");
  HttpResult unauthorized = Post("/commands/order", R"({"type":"CreateOrder","orderId":"o-9"})",
                                 /*auth=*/false);
  ExpectProblem(unauthorized, 401, "Bearer");
  EXPECT_EQ(unauthorized.headers["www-authenticate"], "Bearer");
  HttpResult wrong_method = HttpRequest(engine_->http_address(), "DELETE", "/stores");
  ExpectProblem(wrong_method, 405, "");
  EXPECT_NE(wrong_method.headers["allow"].find("GET"), std::string::npos);
  HttpResult huge = Post("/commands/order", std::string(2 << 20, 'x'));
  EXPECT_EQ(huge.status, 413);
  // A position no commit has reached yet: a clear error after the timeout,
  // never an answer presented as fresh.
  const std::string future =
      engine::EncodePositionToken(engine::RecordPosition{names_->commands, 0, 1'000'000'000});
  HttpResult late = Get("/stores/orders/keys/o-1?position=" + future + "&timeout_ms=300");
  ExpectProblem(late, 503, "has not applied the position within 300 ms");
  EXPECT_EQ(late.headers["retry-after"], "1");
}

}  // namespace
}  // namespace kcqrs

namespace kcqrs {
namespace {

// The sum of the samples of `metric` whose labels contain each of `labels`
// (-1 when there is none).
double Sum(const std::string& text, const std::string& metric,
           std::initializer_list<std::string> labels) {
  std::istringstream in(text);
  double sum = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0 && line.rfind(metric + " ", 0) != 0) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// The value of the first sample of `metric` whose labels contain each of
// `labels` (one "name=\"value\"" each; "" matches any).
double Sample(const std::string& text, const std::string& metric,
              std::initializer_list<std::string> labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0 && line.rfind(metric + " ", 0) != 0) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

TEST_F(HttpApiTest, MetricsPassPromtoolAndMoveWhenCommandsFlow) {
  auto scrape = [&] { return Get("/metrics"); };
  HttpResult before = scrape();
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.headers["content-type"].rfind("text/plain; version=0.0.4", 0), 0u);
  const double accepted_before = std::max(
      0.0, Sample(before.body, "kcqrs_commands_accepted_total", {R"(type="CreateOrder")"}));

  HttpResult posted = Post("/commands/order?wait=true",
                           R"({"type":"CreateOrder","orderId":"m-1","product":"nut","quantity":1})");
  ASSERT_EQ(posted.status, 200) << posted.body;
  HttpResult rejected = Post("/commands/order?wait=true",
                             R"({"type":"CreateOrder","orderId":"m-2","product":"nut","quantity":0})");
  ASSERT_EQ(rejected.status, 409) << rejected.body;
  // m-1 again: its aggregate was committed into the store's cache with the
  // first command, so this read is a cache hit (and a rejection).
  HttpResult again = Post("/commands/order?wait=true",
                          R"({"type":"CreateOrder","orderId":"m-1","product":"nut","quantity":1})");
  ASSERT_EQ(again.status, 409) << again.body;

  // The cache counters are brought up to date once a second.
  HttpResult after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = scrape();
        return Sum(after.body, "kcqrs_store_cache_hits_total",
                   {R"(store="order-aggregates")"}) >= 1 &&
               Sum(after.body, "kcqrs_store_cache_misses_total",
                   {R"(store="order-aggregates")"}) >= 2;
      },
      std::chrono::seconds(10)))
      << after.body.substr(0, 3000);
  EXPECT_GT(Sum(after.body, "kcqrs_store_cache_bytes", {R"(store="order-aggregates")"}), 0);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(Sample(after.body, "kcqrs_commands_accepted_total", {R"(type="CreateOrder")"}),
            accepted_before + 1);
  EXPECT_GE(Sum(after.body, "kcqrs_commands_rejected_total", {R"(code="invalid")"}), 1);
  EXPECT_GT(Sum(after.body, "kcqrs_records_consumed_total", {"topic=\"" + names_->commands}), 0);
  EXPECT_GT(Sample(after.body, "kcqrs_transactions_committed_total", {R"(thread="0")"}), 0);
  EXPECT_GT(Sample(after.body, "kcqrs_http_requests_total",
                   {R"(method="POST")", R"(route="/commands/{aggregate}")", R"(status="200")"}),
            0)
      << after.body.substr(0, 3000);
  EXPECT_GT(Sum(after.body, "kcqrs_process_latency_seconds_count", {"task="}), 0);
  EXPECT_GT(Sample(after.body, "process_resident_memory_bytes", {""}), 0);

  // promtool (Debian's prometheus package, installed by scripts/setup).
  const std::string file = names_->state_dir + "-metrics.txt";
  std::ofstream(file) << after.body;
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0) << "promtool is missing: run scripts/setup";
  const std::string cmd = "/usr/bin/promtool check metrics < " + file + " > " + file + ".out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(file + ".out");
  std::string report((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << report;
  EXPECT_EQ(report, "") << "promtool lint findings";
  std::filesystem::remove(file);
  std::filesystem::remove(file + ".out");
}

}  // namespace
}  // namespace kcqrs

namespace kcqrs {
namespace {

// The page the engine serves, in headless Chromium, against the engine
// itself: it draws the running topology and the live stats.
TEST_F(HttpApiTest, PageShowsTheRunningTopologyInChromium) {
  ASSERT_EQ(access("/usr/bin/chromium", X_OK), 0) << "chromium is missing: run scripts/setup";
  Browser b = RunChromium("/usr/bin/chromium", "http://" + engine_->http_address() + "/",
                          "--dump-dom");
  ASSERT_EQ(b.exit_code, 0) << b.log.substr(0, 2000);
  const size_t svg = b.dom.find("<svg");
  ASSERT_NE(svg, std::string::npos) << b.dom.substr(0, 3000);
  for (const std::string& name :
       {std::string("order"), std::string("product_totals"), names_->commands, names_->events}) {
    EXPECT_NE(b.dom.find(name, svg), std::string::npos) << name;
  }
  EXPECT_NE(b.dom.find("<span id=\"ready\" class=\"badge ok\">ready</span>"), std::string::npos)
      << "the readiness badge";
}

}  // namespace
}  // namespace kcqrs
