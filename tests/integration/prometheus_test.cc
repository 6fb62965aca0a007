// deploy/prometheus/alerts.yml in the real Prometheus server (Debian's
// `prometheus`, installed by scripts/setup), scraping the `kcqrs` binary
// running the orders example on a broker of the test's own: the metrics
// arrive, every query of deploy/grafana/kcqrs.json runs on them, and when
// the broker goes away KcqrsNotReady fires; when the engine goes away,
// KcqrsDown fires.
//
// The rules are the shipped file with every `for:` set to 0s (a test cannot
// wait minutes); their expressions are unchanged. Prometheus scrapes and
// evaluates every second.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "json/document.h"
#include "tests/integration/kcqrs_child.h"
#include "tests/integration/orders_example.h"
#include "tests/integration/own_broker.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;
using json = kcqrs::Json;
using Clock = std::chrono::steady_clock;

bool WaitUntil(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return condition();
}

// A loopback port nothing listens on right now.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// The Prometheus server as a child process, output to `log`, killed with
// the test (see KcqrsChild).
class PrometheusChild {
 public:
  PrometheusChild(const std::vector<std::string>& args, const std::string& log) {
    const pid_t parent = getpid();
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(97);
      if (std::freopen(log.c_str(), "a", stdout) == nullptr) _exit(99);
      dup2(fileno(stdout), STDERR_FILENO);
      std::vector<std::string> a = args;
      std::vector<char*> argv;
      for (std::string& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(98);
    }
  }
  PrometheusChild(const PrometheusChild&) = delete;
  PrometheusChild& operator=(const PrometheusChild&) = delete;
  ~PrometheusChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The shipped rules with every `for:` duration set to 0s.
std::string RulesWithoutFor() {
  const std::string shipped =
      ReadWholeFile(std::string(KCQRS_SOURCE_DIR) + "/deploy/prometheus/alerts.yml");
  return std::regex_replace(shipped, std::regex(R"((\n\s+for:)\s*\S+)"), "$1 0s");
}

TEST(PrometheusTest, MetricsArriveAndNotReadyFiresWhenKafkaGoesAway) {
  ASSERT_EQ(access("/usr/bin/prometheus", X_OK), 0)
      << "/usr/bin/prometheus is missing: run scripts/setup (Debian's prometheus package)";
  const std::string unique = UniqueName("prometheus");
  const std::string dir = (std::filesystem::temp_directory_path() / ("kcqrs-" + unique)).string();
  std::filesystem::create_directories(dir);
  const auto started = Clock::now();

  OwnBroker broker(dir + "-kafka");
  ASSERT_FALSE(broker.bootstrap().empty()) << "could not start a broker of its own";
  const auto broker_up = Clock::now();

  // The engine: the orders example, as users run it.
  const OrdersNames n = MakeOrdersNames(unique);
  const std::string engine_log = dir + "/kcqrs.log";
  auto engine = std::make_unique<KcqrsChild>(
      KCQRS_BINARY, std::string(KCQRS_SOURCE_DIR) + "/examples/orders/topology.yaml",
      OrdersOverrides(n, broker.bootstrap()), engine_log);
  std::string engine_address;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::smatch m;
        const std::string text = ReadWholeFile(engine_log);
        if (!std::regex_search(text, m, std::regex(R"(http: listening on (127\.0\.0\.1:\d+))"))) {
          return false;
        }
        engine_address = m[1];
        return true;
      },
      std::chrono::seconds(30)))
      << ReadWholeFile(engine_log);

  // Prometheus: scrapes the engine and evaluates the rules every second.
  const std::string rules = dir + "/alerts.yml";
  std::ofstream(rules) << RulesWithoutFor();
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << "global:\n"
                           "  scrape_interval: 1s\n"
                           "  scrape_timeout: 1s\n"
                           "  evaluation_interval: 1s\n"
                           "rule_files: ['"
                        << rules
                        << "']\n"
                           "scrape_configs:\n"
                           "  - job_name: kcqrs\n"
                           "    static_configs:\n"
                           "      - targets: ['"
                        << engine_address << "']\n";
  const std::string prometheus = "127.0.0.1:" + std::to_string(FreePort());
  const std::string prometheus_log = dir + "/prometheus.log";
  PrometheusChild server({"/usr/bin/prometheus", "--config.file=" + config,
                          "--storage.tsdb.path=" + dir + "/data",
                          "--web.listen-address=" + prometheus, "--log.level=warn"},
                         prometheus_log);

  auto query = [&](const std::string& promql) {
    HttpResult r = HttpRequest(prometheus, "GET", "/api/v1/query?query=" + UrlEncode(promql));
    if (r.status != 200) return json::array();
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || body.value("status", "") != "success") return json::array();
    return body["data"]["result"];
  };
  // value of the first sample of `promql`, or -1.
  auto value = [&](const std::string& promql) {
    json result = query(promql);
    if (!result.is_array() || result.empty()) return -1.0;
    return std::stod(result[0]["value"][1].get<std::string>());
  };
  // name -> state ("pending", "firing") of the alerts Prometheus has now.
  auto alerts = [&] {
    std::map<std::string, std::string> out;
    HttpResult r = HttpRequest(prometheus, "GET", "/api/v1/alerts");
    json body = json::parse(r.body, nullptr, false);
    if (r.status != 200 || body.is_discarded()) return out;
    for (const json& a : body["data"]["alerts"]) {
      out[a["labels"]["alertname"].get<std::string>()] = a["state"].get<std::string>();
    }
    return out;
  };
  auto describe = [&] {
    std::string s;
    for (const auto& [name, state] : alerts()) s += name + "=" + state + " ";
    return s + "\n--- prometheus log ---\n" + ReadWholeFile(prometheus_log).substr(0, 4000) +
           "\n--- kcqrs log (tail) ---\n" + [&] {
             std::string t = ReadWholeFile(engine_log);
             return t.substr(t.size() > 4000 ? t.size() - 4000 : 0);
           }();
  };

  // The metrics arrive: the engine is scraped, up and ready; a command
  // through its HTTP API shows in the command and transaction counters.
  EXPECT_TRUE(WaitUntil([&] { return value(R"(up{job="kcqrs"})") == 1; },
                        std::chrono::seconds(30)))
      << describe();
  EXPECT_TRUE(WaitUntil([&] { return value(R"(kcqrs_ready{job="kcqrs"})") == 1; },
                        std::chrono::seconds(60)))
      << describe();
  HttpResult posted = HttpRequest(engine_address, "POST", "/commands/order?wait=true",
                                  CreateOrder("o-1", "widget", 2, "c-1"),
                                  {{"Content-Type", "application/json"}});
  EXPECT_EQ(posted.status, 200) << posted.body;
  EXPECT_TRUE(WaitUntil(
      [&] {
        return value(R"(sum(kcqrs_commands_accepted_total{job="kcqrs", type="CreateOrder"}))") ==
                   1 &&
               value(R"(sum(kcqrs_transactions_committed_total{job="kcqrs"}))") > 0;
      },
      std::chrono::seconds(20)))
      << describe();
  EXPECT_EQ(value(R"(sum(kcqrs_tasks{job="kcqrs", state="running"}))"), 9) << describe();
  const auto ready = Clock::now();

  // Every query of the Grafana dashboard runs against the live data without
  // an error (a vector matching error shows only on real series), and most
  // return something.
  {
    json dashboard = json::parse(
        ReadWholeFile(std::string(KCQRS_SOURCE_DIR) + "/deploy/grafana/kcqrs.json"), nullptr,
        false);
    ASSERT_FALSE(dashboard.is_discarded());
    int queries = 0, with_data = 0;
    std::function<void(const json&)> walk = [&](const json& panels) {
      for (const json& p : panels) {
        for (const json& t : p.value("targets", json::array())) {
          std::string expr = t.value("expr", "");
          expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "5s");
          expr = std::regex_replace(expr, std::regex(R"(\$\{?\w+\}?)"), ".*");
          HttpResult r = HttpRequest(prometheus, "GET", "/api/v1/query?query=" + UrlEncode(expr));
          json body = json::parse(r.body, nullptr, false);
          EXPECT_EQ(r.status, 200) << p.value("title", "") << ": " << expr << "\n" << r.body;
          ++queries;
          if (!body.is_discarded() && !body["data"]["result"].empty()) ++with_data;
        }
        walk(p.value("panels", json::array()));
      }
    };
    walk(dashboard["panels"]);
    EXPECT_GT(queries, 40);
    EXPECT_GT(with_data, queries / 2) << with_data << " of " << queries << " queries had data";
    std::printf("dashboard: %d of %d queries have data\n", with_data, queries);
  }
  // Ready and reachable: neither alert.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(alerts().count("KcqrsNotReady"), 0u) << describe();
  EXPECT_EQ(alerts().count("KcqrsDown"), 0u) << describe();

  // Kafka goes away: the engine stays up but is not ready.
  ASSERT_EQ(KafkaScript("stop-broker --dir " + broker.dir() + " --node 1 --kill >/dev/null"), 0);
  const auto broker_down = Clock::now();
  const bool fired = WaitUntil([&] { return alerts()["KcqrsNotReady"] == "firing"; },
                               std::chrono::seconds(30));
  EXPECT_TRUE(fired) << describe();
  const auto not_ready_fired = Clock::now();
  EXPECT_EQ(value(R"(up{job="kcqrs"})"), 1) << describe();
  EXPECT_EQ(alerts().count("KcqrsDown"), 0u) << describe();

  // The engine goes away: KcqrsDown.
  engine->Kill(SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return alerts()["KcqrsDown"] == "firing"; },
                        std::chrono::seconds(20)))
      << describe();

  using std::chrono::duration;
  const auto secs = [](Clock::duration d) { return duration<double>(d).count(); };
  std::printf(
      "broker started in %.1f s; engine ready and scraped %.1f s later; KcqrsNotReady %s "
      "%.1f s after the broker was killed; total %.1f s\n",
      secs(broker_up - started), secs(ready - broker_up), fired ? "fired" : "had not fired",
      secs(not_ready_fired - broker_down), secs(Clock::now() - started));
  RecordProperty("not_ready_alert_seconds", std::to_string(secs(not_ready_fired - broker_down)));
  if (!HasFailure()) {
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(n.state_dir);
  }
}

}  // namespace
}  // namespace kcqrs
