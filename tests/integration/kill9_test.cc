// Exactly-once through kill -9: the `kcqrs` binary runs the orders example on
// the real broker while commands keep coming; it is killed with SIGKILL in
// the middle of its work and started again, several times. At the end every
// command's outcome must appear exactly once in events or rejections, and
// the stores must equal an independent fold of the committed events.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "kcqrs/engine.h"
#include "tests/integration/kcqrs_child.h"
#include "tests/integration/orders_check.h"
#include "tests/integration/orders_example.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;

constexpr char kTopology[] = KCQRS_SOURCE_DIR "/examples/orders/topology.yaml";

constexpr char kAssigned[] = "stream-thread-0: assigned";
constexpr char kStarting[] = "starting application";

size_t CountInFile(const std::string& path, const std::string& what) {
  const std::string text = ReadWholeFile(path);
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Commits skip RocksDB's WAL: a kill loses what the task databases' memtables
// held since their last flush, and the restart restores it from the
// changelogs. Runs the kill cycles with `max_unflushed_writes` and returns
// what each run replayed, from its log (the first run's nothing included).
struct RunRestore {
  uint64_t total = 0;
  std::map<std::string, uint64_t> by_task;  // tasks whose restore finished
};

void KillNineCycles(const std::string& name, int max_unflushed_writes,
                    std::vector<RunRestore>* per_run) {
  const std::string bootstrap = TestBootstrapServers();
  ASSERT_FALSE(bootstrap.empty());
  const OrdersNames n = MakeOrdersNames(UniqueName(name));
  std::filesystem::remove_all(n.state_dir);
  std::vector<std::string> sets = OrdersOverrides(n, bootstrap);
  sets.push_back("application.rocksdb.max_unflushed_writes=" +
                 std::to_string(max_unflushed_writes));
  const std::string log = n.state_dir + ".log";
  std::filesystem::remove(log);

  const OrdersCommands expected = MakeOrdersCommands(1200);
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

  // When each run is killed. Fixed, so that a failure replays: run 2 in
  // the middle of its start (joining the group, fencing the killed run's
  // transaction), run 3 about when its restore ends, the others a while
  // into their work. Counted from the run's assignment, not from its
  // start: a start on a loaded machine takes seconds, and a fixed delay
  // from it would leave a run no time to commit anything. Run 2's is
  // counted from its first log line: before it, a loaded machine may still
  // be loading the binary, and a kill there leaves no run in the log.
  struct Kill {
    bool after_assignment;
    int ms;
  };
  constexpr Kill kKills[] = {{true, 2000}, {true, 1500}, {false, 700}, {true, 400}, {true, 2000}};
  int kills = 0;
  for (int cycle = 0; cycle < 5; ++cycle) {
    const char* from = kKills[cycle].after_assignment ? kAssigned : kStarting;
    const size_t seen_before = CountInFile(log, from);
    KcqrsChild child(KCQRS_BINARY, kTopology, sets, log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (CountInFile(log, from) == seen_before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(CountInFile(log, from), seen_before)
        << "run " << cycle << " did not log '" << from << "' in 90 s:\n"
        << ReadWholeFile(log).substr(0, 20000);
    std::this_thread::sleep_for(std::chrono::milliseconds(kKills[cycle].ms));
    child.Kill(SIGKILL);
    ++kills;
    ASSERT_TRUE(WIFSIGNALED(child.exit_status()))
        << "the child exited on its own before the kill:\n" << ReadWholeFile(log);
  }
  producer_thread.join();
  ASSERT_TRUE(produced);

  // The last run finishes the work; then everything is read back.
  KcqrsChild last(KCQRS_BINARY, kTopology, sets, log);
  auto events = ReadCommitted(bootstrap, n.events, 1, std::chrono::seconds(180),
                              std::chrono::seconds(8));
  auto rejections = ReadCommitted(bootstrap, n.rejections, 1, std::chrono::seconds(60),
                                  std::chrono::seconds(4));
  const OutcomeCheck check =
      ExpectExactlyOneOutcomeEach(CountOutcomes(events, rejections), expected.command_ids);
  EXPECT_EQ(check.missing, 0u) << "commands without an outcome (after " << kills << " kills)";

  // Stop the last run cleanly and read its stores through an engine on the
  // same state directory.
  last.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(last.exit_status()) && WEXITSTATUS(last.exit_status()) == 0)
      << ReadWholeFile(log).substr(0, 20000);

  const OrdersFold fold = FoldOrderEvents(events);
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

  ExpectStoresMatchFold(**engine, fold);
  (*engine)->Stop();

  // What each restart replayed: the log says.
  const std::string text = ReadWholeFile(log);
  std::regex restored(R"(task (\S+): restored (\d+) records)");
  uint64_t replayed = 0;
  size_t run_begin = text.find("starting application");
  while (run_begin != std::string::npos) {
    const size_t next = text.find("starting application", run_begin + 1);
    const std::string run = text.substr(run_begin, next == std::string::npos
                                                       ? std::string::npos
                                                       : next - run_begin);
    RunRestore in_run;
    for (auto it = std::sregex_iterator(run.begin(), run.end(), restored);
         it != std::sregex_iterator(); ++it) {
      const uint64_t records = std::stoull((*it)[2]);
      in_run.by_task[(*it)[1]] += records;
      in_run.total += records;
    }
    replayed += in_run.total;
    per_run->push_back(std::move(in_run));
    run_begin = next;
  }
  ::testing::Test::RecordProperty("kills", kills);
  ::testing::Test::RecordProperty("events", static_cast<int>(events.size()));
  ::testing::Test::RecordProperty("changelog_records_replayed_over_all_restarts",
                                  static_cast<int>(replayed));
  std::cout << "kills=" << kills << " events=" << events.size()
            << " rejections=" << rejections.size() << " replayed=" << replayed << "\n";
  std::filesystem::remove_all(n.state_dir);
}

// A small bound on unflushed writes: each restart replays only a short
// tail. Per task at most the writes since the last flush and the one apply
// that reached the bound (a commit, or a restore batch), 9 tasks.
TEST(Kill9Test, EveryCommandHasExactlyOneOutcomeAndStoresMatchTheEvents) {
  constexpr int kMaxUnflushed = 5;
  std::vector<RunRestore> per_run;
  ASSERT_NO_FATAL_FAILURE(KillNineCycles("orders-kill9", kMaxUnflushed, &per_run));
  ASSERT_EQ(per_run.size(), 6u);  // five killed runs and the last
  for (size_t i = 0; i < per_run.size(); ++i) {
    EXPECT_LE(per_run[i].total, 9u * (kMaxUnflushed + 60))
        << "run " << i << " replayed more than the unflushed tail";
  }
}

// Nothing flushed before a memtable fills (max_unflushed_writes 0, and this
// run is far below 8 MiB): every kill loses all the local state written
// since the start, and every restart restores it from the changelogs before
// it goes on. The hardest path for exactly-once.
TEST(Kill9Test, ExactlyOnceWhenEveryRestartRestoresEverything) {
  std::vector<RunRestore> per_run;
  ASSERT_NO_FATAL_FAILURE(KillNineCycles("orders-kill9-full", 0, &per_run));
  ASSERT_EQ(per_run.size(), 6u);
  EXPECT_EQ(per_run[0].total, 0u) << "the first run starts from nothing";
  // A changelog only grows, and nothing local survives a kill: each
  // finished restore of a task replays at least what its previous one did.
  // (A run killed mid-restore logs only the tasks it finished.)
  std::map<std::string, uint64_t> previous;
  for (size_t i = 1; i < per_run.size(); ++i) {
    for (const auto& [task, records] : per_run[i].by_task) {
      EXPECT_GE(records, previous[task])
          << "run " << i << " restored task " << task << " from less than an earlier run did";
      previous[task] = records;
    }
  }
  // The runs between the first restore and the last did work: the last
  // restores the state they committed too.
  EXPECT_GT(per_run.back().total, per_run[1].total)
      << "the last run restored no more than the second: no run in between committed anything";
}

}  // namespace
}  // namespace kcqrs
