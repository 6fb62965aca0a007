// The `kcqrs` binary as a user runs it: exit codes, messages, `describe`, and
// `run` on the embedded broker answering /healthz and stopping cleanly on SIGTERM.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka/producer.h"
#include "json/document.h"
#include "tests/support/test_certs.h"

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome RunCli(const std::string& args) {
  Outcome o;
  std::string cmd = std::string(KCQRS_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.output.append(buf, n);
  int status = pclose(p);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::string WriteTemp(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() /
              (name + "-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << content;
  return path.string();
}

TEST(KcqrsCliTest, VersionPrintsTheVersion) {
  Outcome o = RunCli("version");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.output, "kcqrs 0.1.0\n");
}

// As most command lines answer it, and as `kcqrs version` does.
TEST(KcqrsCliTest, VersionFlagPrintsTheVersion) {
  Outcome o = RunCli("--version");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.output, "kcqrs 0.1.0\n");
}

TEST(KcqrsCliTest, HelpListsTheCommands) {
  Outcome o = RunCli("--help");
  EXPECT_EQ(o.exit_code, 0);
  for (const char* word : {"run", "validate", "version", "--version", "--log-level"}) {
    EXPECT_NE(o.output.find(word), std::string::npos) << word << "\n" << o.output;
  }
}

TEST(KcqrsCliTest, UnknownCommandIsAUsageError) {
  Outcome o = RunCli("frobnicate");
  EXPECT_EQ(o.exit_code, 2);
}

TEST(KcqrsCliTest, ValidateAcceptsTheOrdersExample) {
  Outcome o = RunCli("validate " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("OK (application orders: 1 aggregate(s), 2 projection(s)"),
            std::string::npos)
      << o.output;
}

// The shop example (issue 13): a process manager besides the aggregates and
// projections, and no warning: every event its rules emit is handled by
// someone, the checkout included.
TEST(KcqrsCliTest, ValidateStrictAcceptsTheShopExample) {
  Outcome o = RunCli("validate --strict " KCQRS_SOURCE_DIR "/examples/shop/topology.yaml");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("OK (application shop: 3 aggregate(s), 3 projection(s)"),
            std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("warning"), std::string::npos) << o.output;
  // The deadline is a setting of the example.
  Outcome set = RunCli("validate --strict " KCQRS_SOURCE_DIR
                       "/examples/shop/topology.yaml --set process_managers.checkout.deadline_ms=5");
  EXPECT_EQ(set.exit_code, 0) << set.output;
}

TEST(KcqrsCliTest, ValidateReportsEveryErrorWithPlaceAndExitsTwo) {
  std::string file = WriteTemp("bad", "application:\n  idd: x\nkafka:\n  bootstrap_servers: [nohost]\n");
  Outcome o = RunCli("validate " + file);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find(file + ":2:3: unknown key 'idd' in application (did you mean 'id'?)"),
            std::string::npos) << o.output;
  EXPECT_NE(o.output.find(file + ":4:23: kafka.bootstrap_servers[0]: expected host:port"),
            std::string::npos) << o.output;
  EXPECT_NE(o.output.find("error(s); nothing was started"), std::string::npos);
  std::filesystem::remove(file);
}

// Issue 12: an event type emitted and never handled (or the reverse) is a
// warning with its place; --strict makes it an error.
TEST(KcqrsCliTest, ValidateWarnsAboutUnhandledEventTypesAndStrictFailsOnThem) {
  std::string file = WriteTemp("lint", R"(application:
  id: lint
kafka:
  bootstrap_servers: embedded
aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      CreateOrder:
        emit:
          - type: OrderCreatd
    events:
      OrderCreated:
        set: {open: "true"}
)");
  const std::string emitted = file + ":14:13: warning: aggregates.order.commands.CreateOrder."
                                     "emit[0]: event type 'OrderCreatd' is emitted, but neither";
  const std::string handled = file + ":17:9: warning: aggregates.order.events.OrderCreated: no "
                                     "command of aggregate 'order' emits event type";
  Outcome plain = RunCli("validate " + file);
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find(emitted), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find(handled), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find(": OK (application lint"), std::string::npos) << plain.output;

  Outcome strict = RunCli("validate --strict " + file);
  EXPECT_EQ(strict.exit_code, 2) << strict.output;
  EXPECT_NE(strict.output.find(emitted), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("2 warning(s), errors under --strict; nothing was started"),
            std::string::npos)
      << strict.output;
  EXPECT_EQ(strict.output.find(": OK"), std::string::npos) << strict.output;

  Outcome clean = RunCli("validate --strict " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml");
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  std::filesystem::remove(file);
}

// Issue 12: what `run` refuses before it connects, `validate` refuses too,
// with the same message (here, before: validate said OK to each of these).
TEST(KcqrsCliTest, ValidateRefusesWhatRunRefusesWithTheSameMessage) {
  std::string file = WriteTemp("refused", R"(application:
  id: refused
  state_dir: /tmp/kcqrs-cli-refused
kafka:
  bootstrap_servers: embedded
http:
  listen: 127.0.0.1:0
aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      CreateOrder:
        emit:
          - type: OrderCreated
    events:
      OrderCreated:
        set: {open: "true"}
)");
  struct Case {
    std::string sets;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"--set 'kafka.bootstrap_servers=\"\"'",
            "--set kafka.bootstrap_servers=\"\": kafka.bootstrap_servers: expected host:port, "
            "a list of them, or 'embedded', found nothing"},
           {"--set kafka.properties.nonsense=1",
            "kafka.properties: property 'nonsense' = '1': No such configuration property"},
           {"--set kafka.properties.acks=sometimes",
            "kafka.properties: property 'acks' = 'sometimes': Invalid value"},
           {"--set application.threads=many",
            "--set application.threads=many: application.threads: expected an integer, "
            "found 'many'"}}) {
    Outcome validate = RunCli("validate " + file + " " + c.sets);
    Outcome run = RunCli("run " + file + " " + c.sets);
    EXPECT_EQ(validate.exit_code, 2) << c.sets << "\n" << validate.output;
    EXPECT_EQ(run.exit_code, 2) << c.sets << "\n" << run.output;
    EXPECT_NE(validate.output.find(c.message), std::string::npos) << validate.output;
    EXPECT_NE(run.output.find(c.message), std::string::npos) << run.output;
    EXPECT_EQ(validate.output.find(file + ":1:1"), std::string::npos) << validate.output;
    EXPECT_EQ(run.output.find("HTTP server listening"), std::string::npos) << run.output;
  }
  std::filesystem::remove(file);
}

TEST(KcqrsCliTest, RunWithABadFileStartsNothingAndExitsTwo) {
  std::string file = WriteTemp("bad-run", "application: {}\n");
  Outcome o = RunCli("run " + file);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find("'id' is required"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("HTTP server listening"), std::string::npos) << o.output;
  std::filesystem::remove(file);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A loopback port nothing listens on (free a moment ago).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Waits for `pid` to exit, `limit` at most; its wait status, or nullopt
// (and then it is killed).
std::optional<int> WaitExit(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return std::nullopt;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  return resp;
}

TEST(KcqrsCliTest, RunServesHealthzOnTheEmbeddedBrokerAndStopsOnSigterm) {
  auto log = std::filesystem::temp_directory_path() /
             ("kcqrs-run-" + std::to_string(getpid()) + ".log");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out == nullptr) _exit(99);
    dup2(fileno(stdout), STDERR_FILENO);
    execl(KCQRS_BINARY, KCQRS_BINARY, "run",
          KCQRS_SOURCE_DIR "/examples/orders/topology.yaml", "--set",
          "http.listen=127.0.0.1:0", "--set", "kafka.bootstrap_servers=embedded",
          static_cast<char*>(nullptr));
    _exit(98);
  }
  // The engine logs the port it bound; wait for that line.
  std::regex listening(R"(HTTP server listening on http://127\.0\.0\.1:(\d+))");
  std::smatch m;
  std::string text;
  int port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    if (std::regex_search(text, m, listening)) {
      port = std::stoi(m[1]);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(port, 0) << "kcqrs did not start listening:\n" << text;
  EXPECT_NE(text.find("embedded Kafka"), std::string::npos) << text;
  EXPECT_NE(text.find("keeps nothing on disk"), std::string::npos) << text;

  std::string resp = HttpGet(port, "/healthz");
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_NE(resp.find(R"({"status":"UP"})"), std::string::npos) << resp;

  // Ready once the topics exist and the tasks run.
  std::string ready;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    ready = HttpGet(port, "/readyz");
    if (ready.rfind("HTTP/1.1 200", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(ready.rfind("HTTP/1.1 200", 0), 0u) << ready;
  {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  EXPECT_NE(text.find("created topic orders.commands (3 partitions)"), std::string::npos)
      << text;

  // A command through the embedded broker reaches the read model.
  std::smatch b;
  ASSERT_TRUE(std::regex_search(text, b, std::regex(R"(listening on (127\.0\.0\.1:\d+) \(try)")))
      << text;
  auto producer = kcqrs::kafka::Producer::Create({{"bootstrap.servers", b[1].str()}});
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  kcqrs::kafka::OutgoingRecord command;
  command.topic = "orders.commands";
  command.key = "o-1";
  command.value =
      R"({"type":"CreateOrder","orderId":"o-1","product":"widget","quantity":3,"commandId":"c-1"})";
  ASSERT_TRUE((*producer)->Send(command).ok());
  ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(10)).ok());
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    resp = HttpGet(port, "/stores/orders/keys/o-1");
    if (resp.rfind("HTTP/1.1 200", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp;
  EXPECT_NE(resp.find(R"("status":"CREATED")"), std::string::npos) << resp;

  // A record no rule can read goes to the dead-letter topic, and the log
  // says so: where it was and why.
  command.key = "o-2";
  command.value = "not json";
  ASSERT_TRUE((*producer)->Send(command).ok());
  ASSERT_TRUE((*producer)->Flush(std::chrono::seconds(10)).ok());
  std::regex dead(R"(dead letter: orders\.commands-\d+@\d+ went to orders-dlq: .+)");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    text = ReadFile(log);
    if (std::regex_search(text, dead)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(std::regex_search(text, dead)) << text;

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  bool exited = false;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "kcqrs did not stop within 30 s of SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::filesystem::remove(log);
}

TEST(KcqrsCliTest, DescribeTextListsTheSubTopologiesOfTheOrdersExample) {
  Outcome o = RunCli("describe " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.output.rfind("Topology: orders\n  Sub-topology: 0 (partitions: 3)\n", 0), 0u)
      << o.output;
  for (const char* line : {
           "    Processor: order (aggregate, stores: [order-aggregates])\n"
           "      --> orders.events, orders.rejections, orders-dlq\n"
           "      <-- orders.commands\n",
           "  Sub-topology: 2 (partitions: 3)\n"
           "    Source: orders-product_totals-repartition\n"
           "      --> product_totals\n",
           "    Store: orders (rocksdb, changelog: orders-orders-changelog)\n",
       }) {
    EXPECT_NE(o.output.find(line), std::string::npos) << line << "\n" << o.output;
  }
  EXPECT_EQ(RunCli("describe --format text " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml")
                .output,
            o.output);
}

TEST(KcqrsCliTest, DescribeJsonIsTheTopologyDocument) {
  Outcome o = RunCli("describe " KCQRS_SOURCE_DIR
                     "/examples/orders/topology.yaml --format json --set application.id=shop");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  ASSERT_TRUE(kcqrs::Json::accept(o.output)) << o.output;
  auto doc = kcqrs::Json::parse(o.output);
  EXPECT_EQ(doc["application"], "shop");
  EXPECT_EQ(doc["dead_letter_topic"], "shop-dlq");
  ASSERT_EQ(doc["subtopologies"].size(), 3u) << doc.dump(2);
  EXPECT_EQ(doc["subtopologies"][0]["partitions"], 3);
  EXPECT_EQ(doc["subtopologies"][0]["nodes"][0]["name"], "order");
  EXPECT_EQ(doc["subtopologies"][0]["nodes"][0]["kind"], "aggregate");
  EXPECT_EQ(doc["subtopologies"][2]["sources"],
            kcqrs::Json::parse(R"(["shop-product_totals-repartition"])"));
  EXPECT_EQ(doc["stores"][1], kcqrs::Json::parse(
      R"({"name":"orders","kind":"rocksdb","changelog":"shop-orders-changelog"})"));
}

TEST(KcqrsCliTest, DescribeMermaidIsAGraph) {
  Outcome o = RunCli("describe --format mermaid " KCQRS_SOURCE_DIR
                     "/examples/orders/topology.yaml");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.output.rfind("graph TD;\n", 0), 0u) << o.output;
  for (const char* line : {"  t_orders_commands([\"orders.commands\"]);\n",
                           "    s_product_totals[(\"product_totals\")];\n",
                           "  t_orders_commands -->|commands| n_order;\n",
                           "  n_order <-->|state| s_order_aggregates;\n"}) {
    EXPECT_NE(o.output.find(line), std::string::npos) << line << "\n" << o.output;
  }
}

TEST(KcqrsCliTest, DescribeWithAnUnknownFormatIsAUsageError) {
  Outcome o = RunCli("describe --format dot " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml");
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("--format"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("dot"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("Topology:"), std::string::npos) << o.output;
}

// The live instances are read from Kafka (tests/integration/instances_test.cc
// lists them); the embedded broker lives inside `kcqrs run` and cannot be
// asked from here, and that is said, not a hang or an empty list.
TEST(KcqrsCliTest, DescribeLiveOnTheEmbeddedBrokerSaysWhyNotAndExitsTwo) {
  Outcome o = RunCli("describe --live " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml");
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("kafka.bootstrap_servers is 'embedded'"), std::string::npos)
      << o.output;
  Outcome m = RunCli("describe --live --format mermaid " KCQRS_SOURCE_DIR
                     "/examples/orders/topology.yaml");
  EXPECT_EQ(m.exit_code, 2) << m.output;
  EXPECT_NE(m.output.find("--live: expected --format text or json"), std::string::npos)
      << m.output;
}

TEST(KcqrsCliTest, DescribeABadFilePrintsPositionedErrorsAndExitsTwo) {
  std::string file = WriteTemp("bad-describe", "application:\n  idd: x\nkafka:\n  bootstrap_servers: [nohost]\n");
  Outcome o = RunCli("describe " + file);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find(file + ":2:3: unknown key 'idd' in application (did you mean 'id'?)"),
            std::string::npos) << o.output;
  EXPECT_NE(o.output.find("error(s); nothing was started"), std::string::npos) << o.output;
  std::filesystem::remove(file);

  // A topology error (here in an expression) is positioned too.
  file = WriteTemp("bad-describe-expr", R"(application:
  id: shop
kafka:
  bootstrap_servers: embedded
aggregates:
  order:
    command_topics: [orders.commands]
    event_topic: orders.events
    rejection_topic: orders.rejections
    store: order-aggregates
    commands:
      CreateOrder:
        require:
          - that: comand.quantity > 0
            code: bad
        emit:
          - type: OrderCreated
            with: {orderId: command.orderId}
)");
  o = RunCli("describe --format mermaid " + file);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.output.find(file + ":14:19: aggregates.order.commands.CreateOrder.require[0].that: "
                                 "unknown name 'comand'"),
            std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("graph TD;"), std::string::npos) << o.output;
  std::filesystem::remove(file);
}

}  // namespace

namespace {

// Ctrl-C while Kafka cannot be reached (the first admin call of the start
// is under way) stops at once, not when that call times out (it took 22 s).
TEST(KcqrsCliTest, SigintStopsWithinSecondsWhenKafkaIsUnreachable) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kcqrs-unreachable-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto log = dir / "kcqrs.log";
  const std::string bootstrap = "kafka.bootstrap_servers=127.0.0.1:" + std::to_string(UnusedPort());
  const std::string state = "application.state_dir=" + (dir / "state").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out == nullptr) _exit(99);
    dup2(fileno(stdout), STDERR_FILENO);
    execl(KCQRS_BINARY, KCQRS_BINARY, "run", KCQRS_SOURCE_DIR "/examples/orders/topology.yaml",
          "--set", "http.listen=127.0.0.1:0", "--set", bootstrap.c_str(), "--set",
          state.c_str(), static_cast<char*>(nullptr));
    _exit(98);
  }
  // Started: the HTTP server is up and the start waits for Kafka.
  std::string text;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       std::chrono::steady_clock::now() < deadline;) {
    text = ReadFile(log);
    if (text.find("serving: curl") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(text.find("serving: curl"), std::string::npos) << text;

  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(pid, SIGINT), 0);
  std::optional<int> status = WaitExit(pid, std::chrono::seconds(30));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - sent);
  text = ReadFile(log);
  ASSERT_TRUE(status.has_value()) << "still running 30 s after SIGINT\n" << text;
  EXPECT_LT(took, std::chrono::seconds(3)) << took.count() << " ms\n" << text;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << "\n" << text;
  EXPECT_NE(text.find("received SIGINT, stopping"), std::string::npos) << text;
  EXPECT_NE(text.find("] stopped"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

// `make demo` on its first run: the log the script reads for the broker's
// address is made by `tee`, which may start after the script first looks
// (here it is made to: a `tee` that waits 1 s comes first on PATH). The
// script said "sed: can't read .../kcqrs.log" and ended.
TEST(KcqrsCliTest, DemoScriptPrintsTheBrokerAddressEvenWhenItsLogComesLate) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kcqrs-demo-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "bin");
  {
    std::ofstream tee(dir / "bin" / "tee");
    tee << "#!/bin/sh\nsleep 1\nexec /usr/bin/tee \"$@\"\n";
  }
  std::filesystem::permissions(dir / "bin" / "tee", std::filesystem::perms::owner_all);
  const auto out = dir / "demo.out";
  const std::string path = (dir / "bin").string() + ":" + std::getenv("PATH");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);  // the demo, its kcqrs and its tee: one group to stop
    FILE* o = std::freopen(out.c_str(), "w", stdout);
    if (o == nullptr) _exit(99);
    dup2(fileno(stdout), STDERR_FILENO);
    setenv("PATH", path.c_str(), 1);
    setenv("KCQRS_HTTP_LISTEN", "127.0.0.1:0", 1);
    execl("/bin/bash", "bash", KCQRS_SOURCE_DIR "/scripts/demo", KCQRS_BINARY,
          KCQRS_SOURCE_DIR "/examples/orders/topology.yaml", static_cast<char*>(nullptr));
    _exit(98);
  }
  std::string text;
  int status = 0;
  bool ended = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       std::chrono::steady_clock::now() < deadline;) {
    text = ReadFile(out);
    if (text.find("kcqrs demo:") != std::string::npos) break;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      ended = true;
      text = ReadFile(out);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(ended) << "the demo ended with status " << status << ":\n" << text;
  EXPECT_EQ(text.find("can't read"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(kcqrs demo: .* on the embedded Kafka broker at 127\.0\.0\.1:\d+)")))
      << text;
  if (!ended) {
    // Ctrl-C, as a user stops it: the script stops kcqrs and cleans up.
    kill(-pid, SIGINT);
    EXPECT_TRUE(WaitExit(pid, std::chrono::seconds(30)).has_value()) << ReadFile(out);
  }
  kill(-pid, SIGKILL);  // whatever is left of the group
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// `kcqrs run` with http.tls, client certificates required and a query
// token, as an operator configures it: curl with the run's CA and a client
// certificate is served over HTTPS, the stores need the token, the probes
// do not, and plain HTTP gets nothing.
TEST(KcqrsCliTest, RunServesHttpsWithClientCertificatesAndAQueryToken) {
  kcqrs::testing::TestCerts certs;
  const std::string log = certs.File("run.log");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out == nullptr) _exit(99);
    dup2(fileno(stdout), STDERR_FILENO);
    setenv("KCQRS_QUERY_TOKEN", "q-secret", 1);
    const std::string cert = "http.tls.cert_file=" + certs.File("server.crt");
    const std::string key = "http.tls.key_file=" + certs.File("server.key");
    const std::string ca = "http.tls.ca_file=" + certs.File("ca.crt");
    // Its own state directory and broker port: other tests run the orders
    // example at the same time.
    const std::string state = "application.state_dir=" + certs.File("state");
    execl(KCQRS_BINARY, KCQRS_BINARY, "run", KCQRS_SOURCE_DIR "/examples/orders/topology.yaml",
          "--set", "http.listen=127.0.0.1:0", "--set", "kafka.bootstrap_servers=embedded",
          "--set", "kafka.embedded_port=0", "--set", state.c_str(),
          "--set", cert.c_str(), "--set", key.c_str(), "--set", ca.c_str(), "--set",
          "http.tls.client_auth=required", "--set", "http.query_token=${KCQRS_QUERY_TOKEN}",
          static_cast<char*>(nullptr));
    _exit(98);
  }
  std::regex listening(R"(HTTP server listening on https://127\.0\.0\.1:(\d+))");
  std::smatch m;
  std::string text;
  int port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    text = ReadFile(log);
    if (std::regex_search(text, m, listening)) {
      port = std::stoi(m[1]);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (port == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_GT(port, 0) << "kcqrs did not start listening:\n" << text;
  const std::string url = "'https://127.0.0.1:" + std::to_string(port);
  const std::string tls = "--noproxy '*' --cacert '" + certs.File("ca.crt") + "' ";
  const std::string client =
      tls + "--cert '" + certs.File("client.crt") + "' --key '" + certs.File("client.key") + "' ";
  using kcqrs::testing::Curl;

  EXPECT_EQ(Curl(client + url + "/healthz'").status, 200);
  EXPECT_EQ(Curl(client + url + "/metrics'").status, 200);
  EXPECT_EQ(Curl(tls + url + "/healthz'").status, 0);  // no client certificate
  EXPECT_EQ(Curl("--noproxy '*' 'http://127.0.0.1:" + std::to_string(port) + "/healthz'").status,
            0);
  auto denied = Curl(client + url + "/stores/orders/keys/o-1'");
  EXPECT_EQ(denied.status, 401) << denied.body;
  EXPECT_NE(denied.body.find("Authorization: Bearer"), std::string::npos) << denied.body;
  // With the token: the store answers (404: no such order yet).
  auto allowed =
      Curl(client + "-H 'Authorization: Bearer q-secret' " + url + "/stores/orders/keys/o-1'");
  EXPECT_TRUE(allowed.status == 404 || allowed.status == 503) << allowed.status << allowed.body;

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  auto status = WaitExit(pid, std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "kcqrs did not stop within 30 s of SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST(KcqrsCliTest, RunWithAKeyThatIsNotTheCertificatesNamesItAndStartsNothing) {
  kcqrs::testing::TestCerts certs;
  Outcome o = RunCli("run " KCQRS_SOURCE_DIR "/examples/orders/topology.yaml --set "
                     "http.listen=127.0.0.1:0 --set kafka.bootstrap_servers=embedded --set "
                     "kafka.embedded_port=0 --set application.state_dir=" + certs.File("state") +
                     " --set http.tls.cert_file=" + certs.File("server.crt") +
                     " --set http.tls.key_file=" + certs.File("client.key"));
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.output.find("http.tls key_file '" + certs.File("client.key") +
                          "': is not the private key of the certificate in '" +
                          certs.File("server.crt") + "'"),
            std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("HTTP server listening"), std::string::npos) << o.output;
}

// `--log-format json` (issue 14): every log line is one JSON object with
// ts, level, logger, thread and msg, so that a log shipper needs no
// pattern. The engine is made to fail at once (an address no interface
// has), which logs at info and at error and ends the run.
TEST(KcqrsCliTest, LogFormatJsonWritesOneObjectPerLine) {
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("kcqrs-log-json-" + std::to_string(getpid()));
  std::string file = WriteTemp("log-json", R"(application:
  id: logs
  state_dir: )" + dir + R"(
kafka:
  bootstrap_servers: embedded
http:
  listen: 192.0.2.1:8080
transforms:
  copy:
    from: [in]
    to: out
)");
  Outcome o = RunCli("--log-format json run " + file);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  std::istringstream lines(o.output);
  std::string line;
  int objects = 0;
  bool saw_error = false;
  while (std::getline(lines, line)) {
    auto doc = kcqrs::Json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(doc.is_object()) << "not a JSON object: " << line << "\n" << o.output;
    for (const char* key : {"ts", "level", "logger", "msg"}) {
      EXPECT_TRUE(doc.contains(key) && doc[key].is_string()) << key << " in " << line;
    }
    EXPECT_TRUE(doc.contains("thread") && doc["thread"].is_number()) << line;
    EXPECT_TRUE(std::regex_match(doc.value("ts", ""),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << line;
    if (doc.value("level", "") == "error") {
      saw_error = true;
      EXPECT_NE(doc.value("msg", "").find("cannot start"), std::string::npos) << line;
    }
    ++objects;
  }
  EXPECT_GE(objects, 2) << o.output;
  EXPECT_TRUE(saw_error) << o.output;
  std::filesystem::remove(file);
  std::filesystem::remove_all(dir);

  Outcome bad = RunCli("--log-format xml version");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--log-format"), std::string::npos) << bad.output;
}

}  // namespace
