// Exactly-once through broker faults: the `kcqrs` binary runs the orders
// example (exactly-once) on a 3-node KRaft cluster of the test's own while a
// producer sends a steady stream of commands. Meanwhile
//   (a) one broker is killed (SIGKILL) and restarted;
//   (b) two of the three are killed together and restarted: below
//       min.insync.replicas=2 (and without a controller quorum) nothing can
//       be committed, so no outcome may appear while they are down.
// At the end every command id has exactly one outcome on the committed
// output topics, and both read models equal an independent fold of the
// committed events. Every topic the run used must be replicated 3 times
// with min.insync.replicas 2, or the faults would prove nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "json/document.h"
#include "tests/integration/engine_test_util.h"
#include "tests/integration/kcqrs_child.h"
#include "tests/integration/orders_check.h"
#include "tests/integration/orders_example.h"
#include "tests/support/http_client.h"
#include "tests/support/kafka_io.h"
#include "tests/support/test_kafka.h"

namespace kcqrs {
namespace {

using namespace kcqrs::testing;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Runs `sh -c command`; its exit status, or -1.
int Shell(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// stdout of `sh -c command`.
std::string ShellOutput(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// A 3-node cluster of this test's own (scripts/kafka), stopped and removed
// when the test ends, pass or fail. When the test failed, the nodes' logs
// are copied out first for the post-mortem.
//
// Its directory is $KCQRS_TEST_CLUSTER_DIR (CTest's, whose cleanup fixture
// stops it even if the test is killed) or else a new one under the
// temporary directory; a cluster a killed run left there is replaced.
class OwnCluster {
 public:
  OwnCluster() : dir_(Dir()), log_(dir_ + ".script.log") {
    std::filesystem::remove(log_);
    if (Script("start --replace --brokers 3 --dir " + dir_) == 0) {
      std::ifstream in(dir_ + "/bootstrap");
      std::getline(in, bootstrap_);
    }
  }
  ~OwnCluster() {
    if (::testing::Test::HasFailure()) {
      const std::string keep = dir_ + ".logs";
      Shell("mkdir -p " + keep + " && for d in " + dir_ + "/node-*; do cp \"$d/server.log\" " +
            keep + "/$(basename \"$d\").server.log 2>/dev/null; done");
      std::cout << "broker logs kept in " << keep << ", scripts/kafka output in " << log_ << "\n";
    }
    Script("stop --dir " + dir_);
    if (!::testing::Test::HasFailure()) std::filesystem::remove(log_);
  }

  // scripts/kafka ARGS, its output appended to the script log; exit status.
  int Script(const std::string& args) const {
    return Shell(std::string(KCQRS_SOURCE_DIR) + "/scripts/kafka " + args + " >>" + log_ +
                 " 2>&1");
  }
  int KillNodes(const std::vector<int>& nodes) const {
    return Together("stop-broker --kill", nodes);
  }
  // Returns once the nodes serve metadata again and, with all three up,
  // every partition is fully replicated again.
  int StartNodes(const std::vector<int>& nodes) const { return Together("start-broker", nodes); }

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& dir() const { return dir_; }
  std::string ScriptLog() const { return ReadWholeFile(log_); }

 private:
  static std::string Dir() {
    const char* dir = std::getenv("KCQRS_TEST_CLUSTER_DIR");
    if (dir != nullptr && *dir != '\0') return dir;
    return (std::filesystem::temp_directory_path() / UniqueName("kcqrs-cluster")).string();
  }

  // One scripts/kafka call per node, all at the same time; fails if any did.
  int Together(const std::string& command, const std::vector<int>& nodes) const {
    std::string sh = "rc=0; ";
    for (int node : nodes) {
      sh += std::string(KCQRS_SOURCE_DIR) + "/scripts/kafka " + command + " --node " +
            std::to_string(node) + " --dir " + dir_ + " >>" + log_ + " 2>&1 & p" +
            std::to_string(node) + "=$!; ";
    }
    for (int node : nodes) sh += "wait $p" + std::to_string(node) + " || rc=1; ";
    sh += "exit $rc";
    return Shell("bash -c '" + sh + "'");
  }

  std::string dir_;
  std::string log_;
  std::string bootstrap_;
};

// Reads the committed outcomes (read_committed, from the start) as they
// appear, and notes when each arrived: the clock of the stall checks.
class OutcomeTail {
 public:
  OutcomeTail(std::string bootstrap, std::string events, std::string rejections)
      : bootstrap_(std::move(bootstrap)),
        events_(std::move(events)),
        rejections_(std::move(rejections)),
        thread_([this] { Run(); }) {}
  ~OutcomeTail() {
    stop_ = true;
    thread_.join();
  }

  size_t count() const {
    std::lock_guard<std::mutex> l(mu_);
    return arrivals_.size();
  }
  size_t distinct() const {
    std::lock_guard<std::mutex> l(mu_);
    return ids_.size();
  }
  // Outcomes that arrived in [from, to).
  size_t CountBetween(Clock::time_point from, Clock::time_point to) const {
    std::lock_guard<std::mutex> l(mu_);
    return std::count_if(arrivals_.begin(), arrivals_.end(),
                         [&](Clock::time_point t) { return t >= from && t < to; });
  }
  // When the first outcome at or after `from` arrived, if one did.
  std::optional<Clock::time_point> FirstAfter(Clock::time_point from) const {
    std::lock_guard<std::mutex> l(mu_);
    for (Clock::time_point t : arrivals_) {
      if (t >= from) return t;
    }
    return std::nullopt;
  }
  // The longest time without a new outcome within [from, to].
  Clock::duration LongestGap(Clock::time_point from, Clock::time_point to) const {
    std::lock_guard<std::mutex> l(mu_);
    Clock::time_point last = from;
    Clock::duration gap{};
    for (Clock::time_point t : arrivals_) {
      if (t < from || t > to) continue;
      gap = std::max(gap, t - last);
      last = t;
    }
    return std::max(gap, to - last);
  }

 private:
  void Run() {
    auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap_}});
    if (!admin.ok()) return;
    std::vector<kafka::TopicPartitionOffset> assign;
    while (!stop_ && assign.empty()) {
      auto topics = (*admin)->ListTopics(std::chrono::seconds(5));
      std::map<std::string, int> partitions;
      if (topics.ok()) {
        for (const auto& t : *topics) partitions[t.name] = t.partitions;
      }
      if (partitions.count(events_) && partitions.count(rejections_)) {
        for (const std::string& topic : {events_, rejections_}) {
          for (int p = 0; p < partitions[topic]; ++p) {
            assign.push_back({topic, p, kafka::kOffsetBeginning});
          }
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    auto consumer = kafka::Consumer::Create({{"bootstrap.servers", bootstrap_},
                                             {"isolation.level", "read_committed"},
                                             {"enable.auto.commit", "false"},
                                             {"fetch.wait.max.ms", "100"}});
    if (!consumer.ok() || !(*consumer)->Assign(assign).ok()) return;
    while (!stop_) {
      auto r = (*consumer)->Poll(std::chrono::milliseconds(100));
      if (!r.ok() || !r->has_value()) continue;
      const std::string cid = OutcomeCommandId(**r, (*r)->topic == events_);
      std::lock_guard<std::mutex> l(mu_);
      arrivals_.push_back(Clock::now());
      ids_.insert(cid);
    }
    (void)(*consumer)->Close();
  }

  const std::string bootstrap_;
  const std::string events_;
  const std::string rejections_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Clock::time_point> arrivals_;  // in arrival order
  std::set<std::string> ids_;
  std::thread thread_;
};

// A command client as an application would write one: a steady stream
// (~40 commands a second), and when its producer fails for good it resends,
// with the same command ids, whatever was not confirmed, through a new one
// (the engine deduplicates by command id). librdkafka 2.0.2's idempotent
// producer does fail for good when a killed broker comes back ("sequence
// desynchronization", librdkafka#4438, fixed in 2.3.0).
struct CommandClient {
  std::string bootstrap{};
  std::string topic{};
  const OrdersCommands* commands = nullptr;
  // Outcomes of Run.
  bool all_delivered = false;
  int producers = 0;
  size_t resent = 0;
  Clock::time_point started{};
  Clock::time_point finished{};

  void Run() {
    started = Clock::now();
    const size_t count = commands->commands.size();
    std::vector<char> delivered(count, 0);  // written only on this thread
    std::unique_ptr<kafka::Producer> producer;
    auto renew = [&] {
      // What the old producer can still confirm saves a resend. (Destroying
      // a kafka::Producer with records in flight also leaks their delivery
      // handlers: its destructor does not purge and serve them.)
      if (producer != nullptr) (void)producer->Flush(std::chrono::seconds(10));
      producer = MakeProducer(bootstrap);
      ++producers;
    };
    auto send = [&](size_t i) {
      kafka::OutgoingRecord r;
      r.topic = topic;
      r.key = commands->commands[i].first;
      r.value = commands->commands[i].second;
      return producer != nullptr &&
             producer->Send(r, [&delivered, i](const Status& s, int32_t, int64_t) {
               if (s.ok()) delivered[i] = 1;
             }).ok();
    };
    // Resends what is not confirmed among the first `upto` commands.
    auto resend = [&](size_t upto) {
      renew();
      for (size_t j = 0; j < upto; ++j) {
        if (!delivered[j] && send(j)) ++resent;
      }
    };
    renew();
    for (size_t i = 0; i < count; ++i) {
      if (!send(i)) {
        resend(i);
        send(i);
      }
      if ((i + 1) % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int round = 0; round < 4; ++round) {
      if (producer != nullptr) (void)producer->Flush(std::chrono::seconds(60));
      if (std::all_of(delivered.begin(), delivered.end(), [](char d) { return d != 0; })) {
        all_delivered = true;
        break;
      }
      resend(count);
    }
    finished = Clock::now();
  }
};

// The HTTP address the kcqrs child logs when it listens ("" until then).
std::string ChildHttpAddress(const std::string& log_text) {
  std::smatch m;
  static const std::regex listening(R"(http: listening on (\S+))");
  return std::regex_search(log_text, m, listening) ? std::string(m[1]) : "";
}

// What the cluster did with the topics of the run (name starts with `app`)
// and Kafka's internal ones: partitions with fewer than 3 replicas (as
// "topic[partition]: replicas 1,3", from kcat's metadata), topics whose
// effective min.insync.replicas is not 2 (as "topic: value", from Kafka's
// own ConfigCommand, which shows broker defaults too), and the topics seen.
struct ReplicationReport {
  std::vector<std::string> under_replicated;
  std::vector<std::string> weak_min_isr;
  std::set<std::string> topics;
};

ReplicationReport CheckReplication(const std::string& bootstrap, const std::string& cluster_dir,
                                   const std::string& app) {
  ReplicationReport report;
  auto ours = [&](const std::string& topic) {
    return topic.rfind(app, 0) == 0 || topic == "__consumer_offsets" ||
           topic == "__transaction_state";
  };
  std::regex topic_re(R"re(^\s*topic "([^"]+)" with (\d+) partitions:)re");
  std::regex partition_re(R"(^\s*partition (\d+), leader -?\d+, replicas: ([0-9,]*), isrs:)");
  std::istringstream listing(ShellOutput("kcat -L -b " + bootstrap + " 2>&1"));
  std::string line, topic;
  while (std::getline(listing, line)) {
    std::smatch m;
    if (std::regex_search(line, m, topic_re)) {
      topic = m[1];
      if (ours(topic)) report.topics.insert(topic);
    } else if (ours(topic) && std::regex_search(line, m, partition_re)) {
      const std::string replicas = m[2];
      if (std::count(replicas.begin(), replicas.end(), ',') + 1 < 3) {
        report.under_replicated.push_back(topic + "[" + std::string(m[1]) + "]: replicas " +
                                          replicas);
      }
    }
  }

  // The jars scripts/kafka runs the cluster with, and their version (its
  // cluster.env says both). Kafka 4 moved kafka-configs to kafka-tools, and
  // logs through Log4j 2.
  std::string libs, version;
  std::ifstream env(cluster_dir + "/cluster.env");
  while (std::getline(env, line)) {
    if (line.rfind("LIBS=", 0) == 0) libs = line.substr(5);
    if (line.rfind("VERSION=", 0) == 0) version = line.substr(8);
  }
  const bool kafka3 = version.rfind("3.", 0) == 0;
  const std::string tool = kafka3 ? " -Dlog4j.configuration=file:" + cluster_dir +
                                        "/tools-log4j.properties -cp '" + libs +
                                        "/*' kafka.admin.ConfigCommand"
                                  : " -Dlog4j2.configurationFile=" + cluster_dir +
                                        "/tools-log4j2.yaml -cp '" + libs +
                                        "/*' org.apache.kafka.tools.ConfigCommand";
  const char* java = std::getenv("JAVA");
  std::istringstream configs(ShellOutput(
      std::string(java != nullptr && *java != '\0' ? java : "java") +
      " -Xmx128m -XX:TieredStopAtLevel=1" + tool + " --bootstrap-server " + bootstrap +
      " --entity-type topics --describe --all 2>&1"));
  std::regex configs_re(R"(^All configs for topic (\S+) are:)");
  std::regex min_isr_re(R"(^\s*min\.insync\.replicas=(\d+))");
  std::set<std::string> described;
  while (std::getline(configs, line)) {
    std::smatch m;
    if (std::regex_search(line, m, configs_re)) {
      topic = m[1];
      if (ours(topic)) described.insert(topic);
    } else if (ours(topic) && std::regex_search(line, m, min_isr_re) && m[1] != "2") {
      report.weak_min_isr.push_back(topic + ": " + std::string(m[1]));
    }
  }
  for (const std::string& t : report.topics) {
    if (!described.count(t)) report.weak_min_isr.push_back(t + ": not described");
  }
  return report;
}

TEST(ClusterTest, BrokerKillsUnderLoadLoseNothingAndDoubleNothing) {
  const Clock::time_point t_begin = Clock::now();
  OwnCluster cluster;
  ASSERT_FALSE(cluster.bootstrap().empty())
      << "could not start a 3-node cluster:\n" << cluster.ScriptLog();
  const std::string& bootstrap = cluster.bootstrap();
  const double cluster_start_s = Seconds(Clock::now() - t_begin);

  const OrdersNames n = MakeOrdersNames(UniqueName("orders-cluster"));
  std::filesystem::remove_all(n.state_dir);
  const std::vector<std::string> sets = OrdersOverrides(n, bootstrap);
  const std::string log = n.state_dir + ".log";
  std::filesystem::remove(log);
  auto child_log = [&] {
    std::string text = ReadWholeFile(log);
    return text.size() > 20000 ? "..." + text.substr(text.size() - 20000) : text;
  };

  KcqrsChild child(KCQRS_BINARY, KCQRS_SOURCE_DIR "/examples/orders/topology.yaml", sets, log);
  OutcomeTail tail(bootstrap, n.events, n.rejections);
  // The engine creates the topics (with the broker's default replication).
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto topics = (*admin)->ListTopics(std::chrono::seconds(5));
        if (!topics.ok()) return false;
        return std::count_if(topics->begin(), topics->end(), [&](const auto& t) {
                 return t.name == n.commands || t.name == n.events || t.name == n.rejections;
               }) == 3;
      },
      std::chrono::seconds(90)))
      << "the engine did not create its topics:\n" << child_log();

  // ~2,400 commands at ~40 a second: they keep coming through both faults.
  const OrdersCommands expected = MakeOrdersCommands(1500);
  CommandClient client{bootstrap, n.commands, &expected};
  std::thread producer_thread([&] { client.Run(); });
  // A failed assertion below must not leave the thread running.
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{producer_thread};
  // The faults start once outcomes flow.
  ASSERT_TRUE(WaitFor([&] { return tail.count() > 0; }, std::chrono::seconds(90)))
      << "no outcome before any fault:\n" << child_log();

  // (a) One broker crashes and comes back.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const Clock::time_point a_down = Clock::now();
  ASSERT_EQ(cluster.KillNodes({2}), 0) << cluster.ScriptLog();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const Clock::time_point a_restart = Clock::now();
  ASSERT_EQ(cluster.StartNodes({2}), 0) << cluster.ScriptLog();
  const Clock::time_point a_up = Clock::now();
  const size_t outcomes_with_one_down = tail.CountBetween(a_down, a_up);

  // (b) Two of three crash together: no quorum of in-sync replicas (and no
  // controller quorum), so nothing can commit until they are back.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const Clock::time_point b_down = Clock::now();
  ASSERT_EQ(cluster.KillNodes({1, 3}), 0) << cluster.ScriptLog();
  // What was committed before the kill may still be on its way to the tail.
  constexpr auto kGrace = std::chrono::seconds(3);
  std::this_thread::sleep_for(std::chrono::seconds(12));
  const Clock::time_point b_restart = Clock::now();
  const size_t outcomes_while_two_down = tail.CountBetween(b_down + kGrace, b_restart);
  EXPECT_TRUE(child.Running()) << "kcqrs ended while two brokers were down:\n" << child_log();
  // It waits: alive (an orchestrator must not restart it for a Kafka
  // outage), and what /readyz says then is reported.
  const std::string http = ChildHttpAddress(ReadWholeFile(log));
  EXPECT_EQ(HttpRequest(http, "GET", "/healthz").status, 200) << "at " << http;
  const HttpResult readyz_two_down = HttpRequest(http, "GET", "/readyz");
  ASSERT_EQ(cluster.StartNodes({1, 3}), 0) << cluster.ScriptLog();
  const Clock::time_point b_up = Clock::now();
  EXPECT_EQ(outcomes_while_two_down, 0u)
      << "outcomes were committed while two of three brokers were down";

  producer_thread.join();
  ASSERT_TRUE(client.all_delivered) << "the test's client could not write every command";

  // The engine catches up: an outcome for every command id.
  const bool caught_up = WaitFor([&] { return tail.distinct() >= expected.command_ids.size(); },
                                 std::chrono::seconds(120));
  const Clock::time_point t_caught_up = Clock::now();
  EXPECT_TRUE(caught_up) << tail.distinct() << " of " << expected.command_ids.size()
                         << " command ids have an outcome; kcqrs log:\n" << child_log();
  const auto first_after_b = tail.FirstAfter(b_down + kGrace);
  ASSERT_TRUE(first_after_b.has_value()) << "no outcome after two brokers came back";
  EXPECT_TRUE(child.Running()) << child_log();
  const HttpResult stats = HttpRequest(http, "GET", "/stats");
  const auto totals = kcqrs::Json::parse(stats.body, nullptr, /*allow_exceptions=*/false);

  // A clean stop; then the committed outcomes, read from the start. The
  // settle time lets duplicates that come late be seen too.
  child.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(child.exit_status()) && WEXITSTATUS(child.exit_status()) == 0)
      << "kcqrs did not stop cleanly (status " << child.exit_status() << "):\n" << child_log();
  auto events = ReadCommitted(bootstrap, n.events, 1, std::chrono::seconds(60),
                              std::chrono::seconds(3));
  auto rejections = ReadCommitted(bootstrap, n.rejections, 1, std::chrono::seconds(60),
                                  std::chrono::seconds(2));
  EXPECT_EQ(events.size() + rejections.size(), tail.count())
      << "the tail and the final read saw different outcomes";
  const OutcomeCheck check =
      ExpectExactlyOneOutcomeEach(CountOutcomes(events, rejections), expected.command_ids);

  // The read models against the fold of the committed events. The outcomes
  // being there does not mean that the projections, one and two hops
  // downstream, have caught up: an engine on the stopped instance's state
  // directory finishes their work (it must reach the fold, and it restores
  // nothing more than a tail: the instance stopped cleanly).
  const OrdersFold fold = FoldOrderEvents(events);
  double projections_caught_up_s = 0;
  {
    const Clock::time_point t_open = Clock::now();
    auto engine = OpenEngine(LoadOrders(n, bootstrap));
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(WaitFor([&] { return engine->ready(); }, std::chrono::seconds(90)));
    EXPECT_TRUE(WaitFor([&] { return StoresMatchFold(*engine, fold); }, std::chrono::seconds(60)))
        << "the read models never reached the fold of the committed events";
    projections_caught_up_s = Seconds(Clock::now() - t_open);
    ExpectStoresMatchFold(*engine, fold);
    EXPECT_EQ(engine->stats().restored_records, 0u) << "a clean stop left state to replay";
    engine->Stop();
  }

  // Replicated 3 times, writes acknowledged by at least 2, all of them:
  // commands, events, rejections, dead letters, changelogs, the repartition
  // topic, offsets, transactions.
  const ReplicationReport replication = CheckReplication(bootstrap, cluster.dir(), n.app);
  EXPECT_TRUE(replication.under_replicated.empty())
      << "topics with fewer than 3 replicas: "
      << ::testing::PrintToString(replication.under_replicated);
  EXPECT_TRUE(replication.weak_min_isr.empty())
      << "topics whose min.insync.replicas is not 2: "
      << ::testing::PrintToString(replication.weak_min_isr);
  EXPECT_GE(replication.topics.size(), 10u)
      << "expected 8 topics of the run and 2 internal ones, saw "
      << ::testing::PrintToString(replication.topics);
  EXPECT_TRUE(replication.topics.count("__transaction_state") &&
              replication.topics.count("__consumer_offsets"));

  const std::string text = ReadWholeFile(log);
  const auto count_lines = [&](const std::string& what) {
    size_t c = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++c;
    return c;
  };
  std::cout << "cluster: start " << cluster_start_s << " s; commands "
            << expected.commands.size() << " (" << expected.command_ids.size()
            << " command ids), produced in " << Seconds(client.finished - client.started)
            << " s by " << client.producers << " producer(s), " << client.resent
            << " resent\n"
            << "outcomes: " << events.size() << " events + " << rejections.size()
            << " rejections; missing " << check.missing << ", doubled " << check.doubled
            << ", unknown " << check.unknown << "\n"
            << "(a) one broker killed: restart took " << Seconds(a_up - a_restart)
            << " s; longest gap between outcomes " << Seconds(tail.LongestGap(a_down, a_up))
            << " s; " << outcomes_with_one_down << " outcomes while it was down or restarting\n"
            << "(b) two brokers killed: down " << Seconds(b_restart - b_down)
            << " s, restart took " << Seconds(b_up - b_restart) << " s; outcomes while down "
            << outcomes_while_two_down << "; stalled " << Seconds(*first_after_b - b_down)
            << " s (kill to first new outcome), " << Seconds(*first_after_b - b_restart)
            << " s after the restart began\n"
            << "/readyz while two were down: " << readyz_two_down.status << " "
            << kcqrs::Json::parse(readyz_two_down.body, nullptr, false).value("reason", "")
            << "; engine totals at the end: "
            << (totals.is_object() && totals.contains("totals") ? totals["totals"].dump() : "?")
            << "\n"
            << "outcomes caught up " << Seconds(t_caught_up - b_up)
            << " s after the restart, read models " << projections_caught_up_s
            << " s after reopening; "
            << "kcqrs log: " << count_lines("aborting and rewinding")
            << " transactions aborted and rewound, "
            << count_lines("starting again with new Kafka clients")
            << " restarts with new Kafka clients, " << count_lines("[warning]") << " warnings, "
            << count_lines("[error]") << " errors; total " << Seconds(Clock::now() - t_begin)
            << " s\n";
  RecordProperty("commands", static_cast<int>(expected.commands.size()));
  RecordProperty("outcomes", static_cast<int>(events.size() + rejections.size()));
  RecordProperty("stalled_ms",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      *first_after_b - b_down)
                                      .count()));
  if (!::testing::Test::HasFailure()) {
    std::filesystem::remove_all(n.state_dir);
    std::filesystem::remove(log);
  } else {
    std::cout << "kcqrs log kept in " << log << "\n";
  }
}

}  // namespace
}  // namespace kcqrs
