// The web page at GET / (engine/serving/ui_page.h) as a browser shows it: served by a
// kcqrs::http::Server with fake /topology (the real Describe output of the
// orders example), /stats and /stores/{store}/keys/{key}, rendered by
// Debian's headless Chromium, and checked in the DOM it leaves.
//
// KCQRS_UI_SCREENSHOT=1 also writes docs/ui.png (KCQRS_UI_SCREENSHOT=PATH:
// there), the screenshot the docs show.
#include "engine/serving/ui_page.h"

#include <gtest/gtest.h>

#include "tests/support/chromium.h"
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "engine/graph/compiled_topology.h"
#include "engine/graph/describe.h"
#include "engine/http/server.h"
#include "json/document.h"

namespace kcqrs {
namespace {

using json = kcqrs::Json;

std::string OrdersTopologyJson() {
  config::LoadOptions load;
  load.getenv = [](const std::string&) { return std::optional<std::string>(); };
  auto options = config::LoadEngineOptionsFromFile(
      KCQRS_SOURCE_DIR "/examples/orders/topology.yaml", load);
  if (!options.ok()) return "";
  auto compiled = engine::CompiledTopology::Compile(*options);
  if (!compiled.ok()) return "";
  if (!(*compiled)->ResolvePartitions({{"orders.commands", 3}}).ok()) return "";
  return engine::Describe(**compiled, engine::DescribeFormat::kJson);
}

enum class Mode {
  kReady,        // every endpoint answers
  kStarting,     // /stats says ready: false
  kUnavailable,  // /topology and /stats answer 503
};

// A stand-in for the engine's HTTP API. Counters grow on every /stats call,
// as a running engine's do, so that the page shows rates.
class FakeEngine {
 public:
  // `query_token`: when set, store reads need it, as http.query_token.
  explicit FakeEngine(Mode mode, std::string query_token = "")
      : mode_(mode), query_token_(std::move(query_token)) {}

  Status Start() {
    topology_ = OrdersTopologyJson();
    if (topology_.empty())
      return Status::InvalidArgument("cannot describe the orders example");
    http::Router router;
    router.Add("GET", "/", [](const http::Request&) {
      return http::Response::Text(200, std::string(engine::UiPageHtml()),
                                  "text/html; charset=utf-8");
    });
    router.Add("GET", "/topology", [this](const http::Request&) {
      if (mode_ == Mode::kUnavailable) return Unavailable();
      return http::Response::Json(200, topology_);
    });
    router.Add("GET", "/stats", [this](const http::Request&) {
      if (mode_ == Mode::kUnavailable) return Unavailable();
      return http::Response::Json(200, Stats(++stats_calls_).dump());
    });
    router.Add("GET", "/stores/{store}/keys/{key}", [this](const http::Request& r) {
      if (!query_token_.empty() && r.Header("authorization") != "Bearer " + query_token_) {
        return http::Response::Problem(401, "Unauthorized",
                                       "GET /stores needs 'Authorization: Bearer <token>'");
      }
      const std::string& store = r.path_params.at("store");
      const std::string& key = r.path_params.at("key");
      if (store == "orders" && key == "o-1") {
        // User data with markup in it: the page must show it as text.
        return http::Response::Json(
            200, R"({"orderId":"o-1","product":"<img src=x onerror=alert(1)>",)"
                 R"("quantity":3,"status":"CREATED"})");
      }
      return http::Response::Problem(
          404, "Not Found", "no key '" + key + "' in store '" + store + "'");
    });
    http::ServerOptions options;
    options.listen = "127.0.0.1:0";
    auto server = http::Server::Start(options, std::move(router));
    if (!server.ok()) return server.status();
    server_ = std::move(server).value();
    return Status::OK();
  }

  std::string Url(const std::string& query = "") const {
    return "http://" + server_->local_address() + "/" + query;
  }

 private:
  static http::Response Unavailable() {
    return http::Response::Problem(
        503, "Service Unavailable",
        "the engine is starting: no stream thread is running yet");
  }

  json Stats(int call) const {
    const int64_t n = call;
    json s = {{"application", "orders"},
              {"ready", mode_ == Mode::kReady},
              {"threads", json::array({{{"index", 0}, {"state", "RUNNING"}},
                                       {{"index", 1}, {"state", "RUNNING"}}})},
              {"totals",
               {{"records_processed", 48210 + 900 * n},
                {"dead_letters", 4 + (n / 2)},
                {"commits", 5120 + 20 * n},
                {"aborts", 1},
                {"restored_records", 1204},
                {"rebalances", 2}}},
              {"nodes",
               {{"order", {{"processed", 16050 + 300 * n}}},
                {"orders", {{"processed", 16020 + 296 * n}}},
                {"product_totals", {{"processed", 16140 + 304 * n}}}}},
              {"lag",
               // As the engine reports them: every partition a thread
               // holds, null while its end offset is not known yet; this
               // instance holds two of the three partitions of the events.
               {{"orders.commands", {{"0", 12}, {"1", nullptr}, {"2", 7}}},
                {"orders.events", {{"0", 3}, {"2", 1}}},
                {"orders-product_totals-repartition",
                 {{"0", 0}, {"1", 2}, {"2", 0}}}}},
              {"stores", json::array({
                             {{"name", "order-aggregates"},
                              {"keys", 1204},
                              {"keys_exact", true},
                              {"partitions", 3},
                              {"hosted", {0, 1, 2}}},
                             {{"name", "orders"},
                              {"keys", 250000},
                              {"keys_exact", false},
                              {"partitions", 3},
                              {"hosted", {0, 1, 2}}},
                             {{"name", "product_totals"},
                              {"keys", 7},
                              {"keys_exact", true},
                              {"partitions", 3},
                              {"hosted", {0, 1, 2}}},
                         })}};
    return s;
  }

  Mode mode_;
  const std::string query_token_;
  std::string topology_;
  std::atomic<int> stats_calls_{0};
  std::unique_ptr<http::Server> server_;
};

using kcqrs::testing::Browser;

Browser RunChromium(const std::string& url, const std::string& extra) {
  return kcqrs::testing::RunChromium(KCQRS_CHROMIUM, url, extra);
}

Browser DumpDom(const std::string& url) {
  return RunChromium(url, "--dump-dom");
}

// The <svg>...</svg> the page drew, or "".
std::string Svg(const std::string& dom) {
  size_t begin = dom.find("<svg");
  size_t end = dom.find("</svg>", begin);
  return begin == std::string::npos || end == std::string::npos
             ? ""
             : dom.substr(begin, end - begin);
}

class UiPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(KCQRS_CHROMIUM)) << KCQRS_CHROMIUM
        " is missing: run scripts/setup (it installs Debian's chromium)";
  }
};

TEST_F(UiPageTest, ShowsTheTopologyRatesStoreSizesReadinessAndALookup) {
  FakeEngine fake(Mode::kReady);
  ASSERT_TRUE(fake.Start().ok());
  const std::string url = fake.Url("?store=orders&key=o-1");
  Browser b = DumpDom(url);
  ASSERT_EQ(b.exit_code, 0) << b.log;

  // The graph: processors, topics and stores from GET /topology.
  std::string svg = Svg(b.dom);
  ASSERT_FALSE(svg.empty()) << b.dom;
  for (const char* text :
       {">order<", ">orders<", ">product_totals<", ">orders.commands<",
        ">orders.events<", ">orders.rejections<",
        ">orders-product_totals-repartition<", ">orders-dlq<",
        ">order-aggregates<", ">aggregate · sub-topology 0<",
        ">repartition · sub-topology 1<", ">projection · sub-topology 2<"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text << "\n" << svg;
  }
  // Store sizes, consumer lag and rates from GET /stats.
  EXPECT_NE(svg.find(">1,204 keys<"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">7 keys<"), std::string::npos) << svg;
  // An estimate says so; a count does not.
  EXPECT_NE(svg.find(">≈250,000 keys<"), std::string::npos) << svg;
  // A topic has the partitions its sub-topology says, whatever the lag map
  // holds: a partition without a lag yet, or one held by another instance.
  EXPECT_NE(svg.find(">lag 19 · 3 partitions<"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">lag 4 · 3 partitions (2 here)<"), std::string::npos) << svg;
  EXPECT_NE(b.dom.find("<td class=\"nowrap\">product_totals</td><td "
                       "class=\"muted\">rocksdb</td>"
                       "<td class=\"num\" title=\"counted\">7</td>"),
            std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("<td class=\"nowrap\">orders</td><td class=\"muted\">rocksdb</td>"
                       "<td class=\"num\" title=\"RocksDB's estimate"),
            std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find(">≈250,000</td>"), std::string::npos) << b.dom;
  // Every partition held is a column of the lag table, known or not.
  EXPECT_NE(
      b.dom.find(
          "<td class=\"nowrap\">orders.commands</td><td class=\"num\">19</td>"
          "<td class=\"muted\"><span class=\"part\">p0 12</span>"
          "<span class=\"part\">p1 –</span><span class=\"part\">p2 7</span>"),
      std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("restored records"), std::string::npos) << b.dom;
  EXPECT_NE(b.dom.find("/s<"), std::string::npos) << b.dom;
  EXPECT_EQ(b.dom.find(">–/s<"), std::string::npos)
      << "no rate computed after two refreshes\n"
      << b.dom;
  // Readiness and threads.
  EXPECT_NE(b.dom.find("<span id=\"ready\" class=\"badge ok\">ready</span>"),
            std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("thread 1 · RUNNING"), std::string::npos) << b.dom;
  // The lookup ran and shows the value as text: its markup is escaped, not
  // parsed.
  EXPECT_NE(b.dom.find("GET /stores/orders/keys/o-1"), std::string::npos)
      << b.dom;
  size_t value = b.dom.find("<pre id=\"lookup-value\">");
  ASSERT_NE(value, std::string::npos) << b.dom;
  EXPECT_NE(
      b.dom.find("\"product\": \"&lt;img src=x onerror=alert(1)&gt;\"", value),
      std::string::npos)
      << b.dom;
  EXPECT_EQ(b.dom.find("<img"), std::string::npos) << b.dom;

  if (const char* shot = std::getenv("KCQRS_UI_SCREENSHOT");
      shot != nullptr && *shot) {
    const std::string path = std::string(shot) == "1"
                                 ? std::string(KCQRS_DOCS_DIR "/ui.png")
                                 : std::string(shot);
    std::filesystem::remove(path);
    Browser s = RunChromium(
        url, "--hide-scrollbars --window-size=1280,900 --screenshot=" + path);
    EXPECT_EQ(s.exit_code, 0) << s.log;
    ASSERT_TRUE(std::filesystem::exists(path)) << s.log;
    EXPECT_GT(std::filesystem::file_size(path), 20000u) << path;
  }
}

// What a browser shows before the script has run (or when it cannot run)
// is neither ready nor not ready: the engine may well be ready.
TEST(UiPageHtmlTest, SaysNothingAboutReadinessBeforeItsScriptRuns) {
  const std::string html(engine::UiPageHtml());
  const size_t badge = html.find("<span id=\"ready\"");
  ASSERT_NE(badge, std::string::npos) << html.substr(0, 4000);
  const std::string tag = html.substr(badge, html.find("</span>", badge) - badge);
  EXPECT_EQ(tag, "<span id=\"ready\" class=\"badge wait\">…");
}

TEST_F(UiPageTest, ShowsTheProblemDetailOfAMissingKey) {
  FakeEngine fake(Mode::kReady);
  ASSERT_TRUE(fake.Start().ok());
  Browser b = DumpDom(fake.Url("?store=product_totals&key=%3Cb%3Enope"));
  ASSERT_EQ(b.exit_code, 0) << b.log;
  size_t problem = b.dom.find("<div class=\"problem\" id=\"lookup-problem\">");
  ASSERT_NE(problem, std::string::npos) << b.dom;
  EXPECT_NE(
      b.dom.find("<div class=\"title\">Not Found</div>"
                 "<div>no key '&lt;b&gt;nope' in store 'product_totals'</div>",
                 problem),
      std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("GET /stores/product_totals/keys/%3Cb%3Enope"),
            std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("<span class=\"status bad\">404</span>"),
            std::string::npos)
      << b.dom;
}

// With http.query_token set, the lookup sends the token typed in (or given
// in the URL's fragment, which never reaches the server) and says which
// field a missing or wrong one goes in.
TEST_F(UiPageTest, LooksUpWithTheQueryToken) {
  FakeEngine fake(Mode::kReady, "s3cret");
  ASSERT_TRUE(fake.Start().ok());
  Browser with = DumpDom(fake.Url("?store=orders&key=o-1#token=s3cret"));
  ASSERT_EQ(with.exit_code, 0) << with.log;
  EXPECT_NE(with.dom.find("<span class=\"status ok\">200</span>"), std::string::npos)
      << with.dom;
  EXPECT_NE(with.dom.find("<pre id=\"lookup-value\">"), std::string::npos) << with.dom;
  // The token is neither in the markup nor left in the address.
  EXPECT_EQ(with.dom.find("s3cret"), std::string::npos) << with.dom;

  Browser without = DumpDom(fake.Url("?store=orders&key=o-1"));
  ASSERT_EQ(without.exit_code, 0) << without.log;
  EXPECT_NE(without.dom.find("<span class=\"status bad\">401</span>"), std::string::npos)
      << without.dom;
  EXPECT_NE(without.dom.find("This server needs the query token"), std::string::npos)
      << without.dom;
  EXPECT_NE(without.dom.find("Type the query token (http.query_token) in the field next to "
                             "the key."),
            std::string::npos)
      << without.dom;

  Browser wrong = DumpDom(fake.Url("?store=orders&key=o-1#token=guess"));
  ASSERT_EQ(wrong.exit_code, 0) << wrong.log;
  EXPECT_NE(wrong.dom.find("The query token was refused"), std::string::npos) << wrong.dom;
  EXPECT_EQ(wrong.dom.find("<pre id=\"lookup-value\">"), std::string::npos) << wrong.dom;
}

TEST_F(UiPageTest, SaysNotReadyWhileTheEngineStarts) {
  FakeEngine fake(Mode::kStarting);
  ASSERT_TRUE(fake.Start().ok());
  Browser b = DumpDom(fake.Url());
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_NE(
      b.dom.find("<span id=\"ready\" class=\"badge warn\">not ready</span>"),
      std::string::npos)
      << b.dom;
  EXPECT_NE(Svg(b.dom).find(">orders.commands<"), std::string::npos) << b.dom;
}

TEST_F(UiPageTest, SaysNotReadyWhenTheEndpointsAnswer503) {
  FakeEngine fake(Mode::kUnavailable);
  ASSERT_TRUE(fake.Start().ok());
  Browser b = DumpDom(fake.Url());
  ASSERT_EQ(b.exit_code, 0) << b.log;
  EXPECT_NE(
      b.dom.find("<span id=\"ready\" class=\"badge bad\">not ready</span>"),
      std::string::npos)
      << b.dom;
  EXPECT_NE(
      b.dom.find("GET /stats: 503 Service Unavailable (the engine is starting: "
                 "no stream thread is running yet)"),
      std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find("Topology not available: not ready."), std::string::npos)
      << b.dom;
  EXPECT_EQ(b.dom.find("<svg"), std::string::npos) << b.dom;
}

}  // namespace
}  // namespace kcqrs
