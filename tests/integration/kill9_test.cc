// Exactly-once through kill -9: the `kcqrs` binary runs the orders example on
// the real broker while commands keep coming; it is killed with SIGKILL in
// the middle of its work and started again, several times. At the end every
// command's outcome must appear exactly once in events or rejections, and
// the stores must equal an independent fold of the committed events.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "kcqrs/engine.h"
#include "tests/integration/orders_example.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using nlohmann::json;
using namespace kcqrs::testing;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One run of the kcqrs binary.
class Child {
 public:
  Child(const std::vector<std::string>& sets, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* out = std::freopen(log.c_str(), "a", stdout);
      if (out == nullptr) _exit(99);
      dup2(fileno(stdout), STDERR_FILENO);
      std::vector<std::string> args = {KCQRS_BINARY, "run",
                                       KCQRS_SOURCE_DIR "/examples/orders/topology.yaml"};
      for (const std::string& s : sets) {
        args.push_back("--set");
        args.push_back(s);
      }
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(KCQRS_BINARY, argv.data());
      _exit(98);
    }
  }

  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_status_ = status;
    pid_ = -1;
  }
  int exit_status() const { return exit_status_; }
  ~Child() { Kill(SIGKILL); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

struct Expected {
  std::vector<std::pair<std::string, std::string>> commands;  // key, value (in order)
  std::set<std::string> command_ids;                          // each needs one outcome
};

// The command stream: creates (some invalid), cancels, double cancels,
// producer-style retries of the same command id, and poison records.
Expected MakeCommands(int orders) {
  Expected e;
  for (int i = 0; i < orders; ++i) {
    const std::string id = "o-" + std::to_string(i);
    const std::string cid = "c-" + std::to_string(i);
    e.commands.emplace_back(id, CreateOrder(id, "p-" + std::to_string(i % 4), i % 5, cid));
    e.command_ids.insert(cid);
    if (i % 10 == 0) e.commands.emplace_back(id, CreateOrder(id, "p-0", 1, cid));  // retry
    if (i % 3 == 0) {
      e.commands.emplace_back(id, CancelOrder(id, "x-" + std::to_string(i)));
      e.command_ids.insert("x-" + std::to_string(i));
    }
    if (i % 9 == 0) {
      e.commands.emplace_back(id, CancelOrder(id, "y-" + std::to_string(i)));
      e.command_ids.insert("y-" + std::to_string(i));
    }
    if (i % 25 == 0) e.commands.emplace_back(id, "garbage-" + std::to_string(i));
  }
  return e;
}

TEST(Kill9Test, EveryCommandHasExactlyOneOutcomeAndStoresMatchTheEvents) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName("orders-kill9"));
  std::filesystem::remove_all(n.state_dir);
  const std::vector<std::string> sets = OrdersOverrides(n, bootstrap);
  const std::string log = n.state_dir + ".log";
  std::filesystem::remove(log);

  const Expected expected = MakeCommands(1200);
  std::atomic<bool> produced{false};
  std::thread producer_thread([&] {
    auto producer = MakeProducer(bootstrap);
    ASSERT_NE(producer, nullptr);
    // ~150 commands a second: spread over the kill cycles below.
    size_t i = 0;
    for (const auto& [key, value] : expected.commands) {
      Produce(producer.get(), n.commands, key, value);
      if (++i % 15 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
    produced = true;
  });

  std::mt19937 rng(42);
  int kills = 0;
  for (int cycle = 0; cycle < 5; ++cycle) {
    Child child(sets, log);
    // Let it get going (start, restore, process) and then kill it mid-work.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500 + rng() % 2000));
    child.Kill(SIGKILL);
    ++kills;
    ASSERT_TRUE(WIFSIGNALED(child.exit_status()))
        << "the child exited on its own before the kill:\n" << ReadFile(log);
  }
  producer_thread.join();
  ASSERT_TRUE(produced);

  // The last run finishes the work; then everything is read back.
  Child last(sets, log);
  auto events = ReadCommitted(bootstrap, n.events, 1, std::chrono::seconds(180),
                              std::chrono::seconds(8));
  auto rejections = ReadCommitted(bootstrap, n.rejections, 1, std::chrono::seconds(60),
                                  std::chrono::seconds(4));
  std::map<std::string, int> outcomes;
  for (const auto& e : events) outcomes[HeaderValue(e, "kcqrs.command.id")]++;
  for (const auto& r : rejections) outcomes[json::parse(*r.value)["commandId"]]++;
  size_t missing = 0, doubled = 0;
  for (const std::string& cid : expected.command_ids) {
    auto it = outcomes.find(cid);
    if (it == outcomes.end()) {
      ++missing;
    } else if (it->second != 1) {
      ++doubled;
      ADD_FAILURE() << cid << " has " << it->second << " outcomes";
    }
  }
  EXPECT_EQ(missing, 0u) << "commands without an outcome (after " << kills << " kills)";
  EXPECT_EQ(doubled, 0u);
  EXPECT_EQ(outcomes.size(), expected.command_ids.size()) << "outcomes for unknown commands";

  // Stop the last run cleanly and read its stores through an engine on the
  // same state directory.
  last.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(last.exit_status()) && WEXITSTATUS(last.exit_status()) == 0)
      << ReadFile(log).substr(0, 20000);

  // The independent fold: per order the last state, per product the totals.
  std::map<std::string, json> orders;
  std::map<std::string, json> totals;
  for (const auto& e : events) {
    json v = json::parse(*e.value);
    const std::string id = v["orderId"];
    const std::string product = v["product"];
    json& t = totals[product];
    if (t.is_null()) t = {{"product", product}, {"orders", 0}, {"quantity", 0}};
    if (v["type"] == "OrderCreated") {
      orders[id] = {{"orderId", id}, {"product", product}, {"quantity", v["quantity"]},
                    {"status", "CREATED"}};
      t["orders"] = t["orders"].get<int>() + 1;
      t["quantity"] = t["quantity"].get<int>() + v["quantity"].get<int>();
    } else {
      orders[id]["status"] = "CANCELLED";
      t["orders"] = t["orders"].get<int>() - 1;
      t["quantity"] = t["quantity"].get<int>() - v["quantity"].get<int>();
    }
  }
  EngineOptions options = LoadOrders(n, bootstrap);
  auto engine = Engine::Open(options);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!(*engine)->ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE((*engine)->ready());
  // The last run stopped cleanly: nothing to replay.
  EXPECT_EQ((*engine)->stats().restored_records, 0u);

  auto view = (*engine)->GetStore("orders");
  ASSERT_NE(view, nullptr);
  size_t rows = 0;
  for (auto it = view->Range("", ""); it->Valid(); it->Next(), ++rows) {
    auto want = orders.find(std::string(it->key()));
    ASSERT_NE(want, orders.end()) << "store has an order no event created: " << it->key();
    EXPECT_EQ(json::parse(it->value()), want->second) << it->key();
  }
  EXPECT_EQ(rows, orders.size());
  auto product_totals = (*engine)->GetStore("product_totals");
  ASSERT_NE(product_totals, nullptr);
  for (const auto& [product, want] : totals) {
    auto got = product_totals->Get(product);
    ASSERT_TRUE(got.ok() && got->has_value()) << product;
    EXPECT_EQ(json::parse(**got), want) << product;
  }
  (*engine)->Stop();

  // Each restart after a kill replayed only a tail: the log says how much.
  const std::string text = ReadFile(log);
  std::regex restored(R"(restored (\d+) records)");
  uint64_t replayed = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), restored);
       it != std::sregex_iterator(); ++it) {
    replayed += std::stoull((*it)[1]);
  }
  // A full restore would replay at least one changelog record per order.
  EXPECT_LT(replayed, orders.size()) << "a restart replayed more than a tail";
  RecordProperty("kills", kills);
  RecordProperty("events", static_cast<int>(events.size()));
  RecordProperty("changelog_records_replayed_over_all_restarts", static_cast<int>(replayed));
  std::cout << "kills=" << kills << " events=" << events.size()
            << " rejections=" << rejections.size() << " replayed=" << replayed << "\n";
  std::filesystem::remove_all(n.state_dir);
}

}  // namespace
}  // namespace kcqrs
