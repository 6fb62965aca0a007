// The orders example on a secured broker, as production runs Kafka: a
// SASL_SSL listener, the standard authorizer, and an application user that
// may do only what the ACLs of docs/operations.md grant it. The `kcqrs`
// binary decides commands under exactly-once with exactly those ACLs; with
// one of them taken away it must say which resource it was denied, and end
// or stay not-ready instead of hanging or crashing in a loop.
//
// It needs its own broker (`scripts/kafka start --secure`), in
// $KCQRS_TEST_SECURE_KAFKA_DIR, which CTest's kafka_secure_stop removes even
// when the test is killed on its time-out.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/engine_test_util.h"
#include "tests/integration/kcqrs_child.h"
#include "tests/integration/orders_example.h"
#include "tests/support/http_client.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;

constexpr char kScript[] = KCQRS_SOURCE_DIR "/scripts/kafka";
constexpr char kTopology[] = KCQRS_SOURCE_DIR "/examples/orders/topology.yaml";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs scripts/kafka with `args`, its output appended to `log`; the exit code.
int RunScript(const std::vector<std::string>& args, const std::string& log) {
  std::string cmd = Quote(kScript);
  for (const std::string& a : args) cmd += " " + Quote(a);
  cmd += " >>" + Quote(log) + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// key=value lines, comments skipped.
std::map<std::string, std::string> ReadProperties(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// The ACLs docs/operations.md says an application needs, for the principal
// `User:kcqrs` and every resource whose name starts with `prefix` (the
// application id, which its topics here also start with).
std::vector<std::vector<std::string>> ApplicationAcls(const std::string& prefix) {
  const std::vector<std::string> base = {"--allow-principal", "User:kcqrs",
                                         "--resource-pattern-type", "prefixed"};
  auto acl = [&](std::vector<std::string> rest) {
    std::vector<std::string> a = base;
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
  };
  return {
      acl({"--topic", prefix, "--operation", "Read", "--operation", "Write", "--operation",
           "Create", "--operation", "Describe", "--operation", "DescribeConfigs"}),
      acl({"--group", prefix, "--operation", "Read", "--operation", "Describe"}),
      acl({"--transactional-id", prefix, "--operation", "Write", "--operation", "Describe"}),
  };
}

class SecureKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("KCQRS_TEST_SECURE_KAFKA_DIR");
    dir_ = env != nullptr && *env != '\0'
               ? std::string(env)
               : (std::filesystem::temp_directory_path() / UniqueName("kcqrs-secure")).string();
    log_ = dir_ + ".log";
    std::filesystem::remove(log_);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(RunScript({"start", "--secure", "--replace", "--dir", dir_}, log_), 0)
        << ReadWholeFile(log_);
    started_ = true;
    std::printf("secure broker up in %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::ifstream in(dir_ + "/bootstrap");
    std::getline(in, bootstrap_);
    ASSERT_FALSE(bootstrap_.empty());
  }
  void TearDown() override {
    if (started_) RunScript({"stop", "--dir", dir_}, log_);
  }

  // `scripts/kafka acl` for each of `acls` at once (each is a JVM start).
  void Acl(const std::string& verb, const std::vector<std::vector<std::string>>& acls) {
    std::vector<std::future<int>> runs;
    for (const auto& a : acls) {
      std::vector<std::string> args = {"acl", "--dir", dir_, verb};
      if (verb == "--remove") args.push_back("--force");
      args.insert(args.end(), a.begin(), a.end());
      runs.push_back(std::async(std::launch::async, [args, this] { return RunScript(args, log_); }));
    }
    for (auto& r : runs) ASSERT_EQ(r.get(), 0) << ReadWholeFile(log_);
  }

  std::string dir_, log_, bootstrap_;
  bool started_ = false;
};

// Waits for the child's HTTP address in its log; "" when it did not come.
std::string WaitHttp(const std::string& log, KcqrsChild* child) {
  static const std::regex listening(R"(http: listening on (\S+))");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && child->Running()) {
    std::smatch m;
    const std::string text = ReadWholeFile(log);
    if (std::regex_search(text, m, listening)) return m[1];
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "";
}

TEST_F(SecureKafkaTest, OrdersRunWithTheDocumentedAclsAndAMissingAclIsNamed) {
  const std::map<std::string, std::string> client = ReadProperties(dir_ + "/client.properties");
  ASSERT_EQ(client.count("sasl.username"), 1u) << "no client.properties in " << dir_;
  const OrdersNames n = MakeOrdersNames(UniqueName("sec-orders"));
  std::filesystem::remove_all(n.state_dir);
  Acl("--add", ApplicationAcls(n.app));

  std::vector<std::string> sets = OrdersOverrides(n, bootstrap_);
  std::string props;
  for (const auto& [k, v] : client) props += (props.empty() ? "" : ", ") + k + ": " + v;
  sets.push_back("kafka.properties={" + props + "}");

  // 1. With the documented ACLs: a command is decided and its view is read.
  {
    const std::string log = n.state_dir + ".run1.log";
    std::filesystem::remove(log);
    KcqrsChild child(KCQRS_BINARY, kTopology, sets, log);
    const std::string http = WaitHttp(log, &child);
    ASSERT_FALSE(http.empty()) << "kcqrs did not start:\n" << ReadWholeFile(log);
    HttpResult decided;
    ASSERT_TRUE(WaitFor(
        [&] {
          decided = HttpRequest(http, "POST", "/commands/order?wait=true",
                                CreateOrder("o-1", "widget", 3, "c-1"));
          return decided.status == 200 || !child.Running();
        },
        std::chrono::seconds(60)))
        << decided.status << " " << decided.body << "\n" << ReadWholeFile(log);
    ASSERT_EQ(decided.status, 200) << decided.body << "\n" << ReadWholeFile(log);
    EXPECT_NE(decided.body.find("OrderCreated"), std::string::npos) << decided.body;
    HttpResult read;
    EXPECT_TRUE(WaitFor(
        [&] {
          read = HttpRequest(http, "GET", "/stores/orders/keys/o-1");
          return read.status == 200;
        },
        std::chrono::seconds(30)))
        << read.status << " " << read.body;
    EXPECT_NE(read.body.find("widget"), std::string::npos) << read.body;
    child.Kill(SIGTERM);
    EXPECT_EQ(ReadWholeFile(log).find("AUTHORIZATION_FAILED"), std::string::npos)
        << ReadWholeFile(log);
  }

  // 2. Without the transactional-id ACL: the engine names the transactional
  // id it was denied and the ACL to grant, and ends with a non-zero exit
  // code; it neither hangs nor makes new clients in a loop (a new client
  // would be denied the same way).
  Acl("--remove", {ApplicationAcls(n.app)[2]});
  {
    const std::string log = n.state_dir + ".run2.log";
    std::filesystem::remove(log);
    KcqrsChild child(KCQRS_BINARY, kTopology, sets, log);
    const auto t0 = std::chrono::steady_clock::now();
    const bool ended = WaitFor([&] { return !child.Running(); }, std::chrono::seconds(60));
    const std::string text = ReadWholeFile(log);
    ASSERT_TRUE(ended) << "kcqrs still runs without the transactional-id ACL:\n" << text;
    std::printf("ended %.1f s after start without the transactional-id ACL\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_TRUE(WIFEXITED(child.exit_status()) && WEXITSTATUS(child.exit_status()) != 0)
        << "status " << child.exit_status() << "\n" << text;
    EXPECT_NE(text.find("the engine stopped: FailedPrecondition: init transactions of "
                        "transactional id '" + n.app + "-"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("(TRANSACTIONAL_ID_AUTHORIZATION_FAILED); not authorized: the principal "
                        "needs Write and Describe on the transactional ids"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("starting again with new Kafka clients"), std::string::npos) << text;
  }
  std::filesystem::remove_all(n.state_dir);
  if (!HasFailure()) {  // kept for post-mortem otherwise
    std::filesystem::remove(n.state_dir + ".run1.log");
    std::filesystem::remove(n.state_dir + ".run2.log");
  }
}

}  // namespace
}  // namespace kcqrs
