// Tests of engine/metrics: what a scrape of /metrics shows after the engine
// moved its counters, gauges and histograms; that handles are shared, exact
// under concurrency and safe after removal; and that Prometheus' own checker
// (promtool) accepts the exposition and finds no lint problems in it.

#include "engine/metrics/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics/process_stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kcqrs::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The sample lines of `text` (no comments), to match whole lines.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The value of the sample whose name and labels are exactly `series`
// (e.g. `kcqrs_records_processed_total{task="0_1"}`), or NaN when absent.
double Sample(const std::string& text, const std::string& series) {
  for (const std::string& line : Lines(text)) {
    if (line.size() > series.size() &&
        line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

bool HasSeries(const std::string& text, const std::string& series) {
  return !std::isnan(Sample(text, series));
}

TEST(MetricsTest, EmptyRegistryReportsOnlyProcessMetrics) {
  Metrics metrics;
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_")));
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter"));
}

// Alerting reads readiness from the scrape: a gauge without labels.
TEST(MetricsTest, ReadyIsAGaugeWithoutLabels) {
  Metrics metrics;
  metrics.Ready().Set(0);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("# TYPE kcqrs_ready gauge\nkcqrs_ready 0\n"));
  metrics.Ready().Set(1);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\nkcqrs_ready 1\n"));
  EXPECT_EQ(metrics.RemoveThread("0") + metrics.RemoveTask("0_0"), 0u);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("\nkcqrs_ready 1\n"));
}

TEST(MetricsTest, CountersGaugesAndHistogramsShowWithTheirLabels) {
  Metrics metrics;
  metrics.RecordsConsumed("orders-commands", 3, "0_3").Increment();
  metrics.RecordsConsumed("orders-commands", 3, "0_3").Increment(4);
  metrics.CommandsRejected("order", "PlaceOrder", "out_of_stock").Increment(2);
  metrics.HttpRequests("/stores/{store}/keys/{key}", "GET", 404).Increment();
  const Gauge lag = metrics.ConsumerLag("orders-commands", 3);
  lag.Set(10);
  lag.Decrement(3);
  lag.Increment(0.5);
  metrics.TasksRunning("1").Set(4);
  metrics.TasksRestoring("1").Set(2);
  const Histogram latency = metrics.ProcessLatency("0_3");
  latency.Observe(0.00002);  // 20 µs: in the 25 µs bucket
  latency.Observe(0.3);      // in the 0.5 s bucket
  latency.Observe(7);        // above every bucket: only +Inf

  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("# HELP kcqrs_records_consumed_total "));
  EXPECT_THAT(text, HasSubstr("# TYPE kcqrs_records_consumed_total counter\n"));
  EXPECT_EQ(
      Sample(
          text,
          R"(kcqrs_records_consumed_total{topic="orders-commands",partition="3",task="0_3"})"),
      5);
  EXPECT_EQ(
      Sample(
          text,
          R"(kcqrs_commands_rejected_total{aggregate="order",type="PlaceOrder",code="out_of_stock"})"),
      2);
  EXPECT_EQ(
      Sample(
          text,
          R"(kcqrs_http_requests_total{route="/stores/{store}/keys/{key}",method="GET",status="404"})"),
      1);
  EXPECT_THAT(text, HasSubstr("# TYPE kcqrs_consumer_lag_records gauge\n"));
  EXPECT_EQ(
      Sample(
          text,
          R"(kcqrs_consumer_lag_records{topic="orders-commands",partition="3"})"),
      7.5);
  EXPECT_EQ(Sample(text, R"(kcqrs_tasks{thread="1",state="running"})"), 4);
  EXPECT_EQ(Sample(text, R"(kcqrs_tasks{thread="1",state="restoring"})"), 2);

  EXPECT_THAT(text,
              HasSubstr("# TYPE kcqrs_process_latency_seconds histogram\n"));
  const std::string bucket =
      R"(kcqrs_process_latency_seconds_bucket{task="0_3",le=)";
  EXPECT_EQ(Sample(text, bucket + R"("1e-05"})"), 0);
  EXPECT_EQ(Sample(text, bucket + R"("2.5e-05"})"), 1);
  EXPECT_EQ(Sample(text, bucket + R"("0.25"})"), 1);
  EXPECT_EQ(Sample(text, bucket + R"("0.5"})"), 2);
  EXPECT_EQ(Sample(text, bucket + R"("1"})"), 2);
  EXPECT_EQ(Sample(text, bucket + R"("+Inf"})"), 3);
  EXPECT_EQ(Sample(text, R"(kcqrs_process_latency_seconds_count{task="0_3"})"),
            3);
  EXPECT_NEAR(Sample(text, R"(kcqrs_process_latency_seconds_sum{task="0_3"})"),
              7.30002, 1e-9);

  // Families nobody used are left out.
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_store_puts_total")));
}

TEST(MetricsTest, HistogramBucketsSpanTheDocumentedRanges) {
  Metrics metrics;
  metrics.ProcessLatency("t").Observe(0);
  metrics.CommitLatency("0").Observe(0);
  metrics.HttpDuration("/healthz").Observe(0);
  const std::string text = metrics.Serialize();
  const auto first_and_last = [&](const std::string& series, const char* low,
                                  const char* high) {
    EXPECT_EQ(Sample(text, series + "le=\"" + low + "\"}"), 1) << series;
    EXPECT_EQ(Sample(text, series + "le=\"" + high + "\"}"), 1) << series;
  };
  first_and_last(R"(kcqrs_process_latency_seconds_bucket{task="t",)", "1e-05",
                 "1");
  first_and_last(R"(kcqrs_commit_latency_seconds_bucket{thread="0",)", "0.001",
                 "10");
  first_and_last(
      R"(kcqrs_http_request_duration_seconds_bucket{route="/healthz",)",
      "0.0001", "10");
}

TEST(MetricsTest, ALocalHistogramShowsWhatItObservedOnceFlushed) {
  Metrics metrics;
  const std::string bucket = R"(kcqrs_process_latency_seconds_bucket{task="0_1",le=)";
  const std::string count = R"(kcqrs_process_latency_seconds_count{task="0_1"})";
  {
    LocalHistogram local(metrics.ProcessLatency("0_1"));
    // Exactly on a bound counts in that bound's bucket, as prometheus-cpp
    // counts it.
    local.Observe(1e-5);
    local.Observe(3e-5);
    local.Observe(0.5);
    local.Observe(7);
    EXPECT_EQ(Sample(metrics.Serialize(), count), 0);  // not flushed yet
    local.Flush();
    std::string text = metrics.Serialize();
    EXPECT_EQ(Sample(text, bucket + R"("1e-05"})"), 1);
    EXPECT_EQ(Sample(text, bucket + R"("2.5e-05"})"), 1);
    EXPECT_EQ(Sample(text, bucket + R"("5e-05"})"), 2);
    EXPECT_EQ(Sample(text, bucket + R"("0.5"})"), 3);
    EXPECT_EQ(Sample(text, bucket + R"("1"})"), 3);
    EXPECT_EQ(Sample(text, bucket + R"("+Inf"})"), 4);
    EXPECT_EQ(Sample(text, count), 4);
    EXPECT_NEAR(Sample(text, R"(kcqrs_process_latency_seconds_sum{task="0_1"})"), 7.50004,
                1e-12);

    // A flush with nothing new adds nothing; a moved histogram carries what
    // it had not flushed, once.
    local.Flush();
    local.Observe(0.002);
    LocalHistogram moved(std::move(local));
    local.Flush();
    EXPECT_EQ(Sample(metrics.Serialize(), count), 4);
  }  // `moved` flushes as it goes
  EXPECT_EQ(Sample(metrics.Serialize(), count), 5);
  // 1e-5, 3e-5 and 0.002 are at or below 2.5 ms; 0.5 and 7 are not.
  EXPECT_EQ(Sample(metrics.Serialize(), bucket + R"("0.0025"})"), 3);

  LocalHistogram detached;
  detached.Observe(1);
  detached.Flush();
}

TEST(MetricsTest, TheSameLabelsReturnTheSameChild) {
  Metrics metrics;
  const Counter a = metrics.StorePuts("orders");
  const Counter b = metrics.StorePuts("orders");
  const Counter other = metrics.StorePuts("customers");
  a.Increment(2);
  b.Increment(3);
  EXPECT_EQ(a.Value(), 5);
  EXPECT_EQ(b.Value(), 5);
  EXPECT_EQ(other.Value(), 0);
  // Partitions are labels: the same store in another partition is another
  // child.
  metrics.StoreKeys("orders", 0).Set(10);
  metrics.StoreKeys("orders", 1).Set(20);
  EXPECT_EQ(metrics.StoreKeys("orders", 0).Value(), 10);
  EXPECT_EQ(metrics.StoreKeys("orders", 1).Value(), 20);
  // A copy is the same child too.
  const Counter copy = a;
  copy.Increment();
  EXPECT_EQ(metrics.StorePuts("orders").Value(), 6);
}

TEST(MetricsTest, CountersNeverGoDown) {
  Metrics metrics;
  const Counter c = metrics.Rebalances("0");
  c.Increment(2);
  c.Increment(-1);
  c.Increment(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.Value(), 2);
  EXPECT_EQ(
      Sample(metrics.Serialize(), R"(kcqrs_rebalances_total{thread="0"})"), 2);
}

TEST(MetricsTest, DetachedHandlesCountNothing) {
  const Counter c;
  const Gauge g;
  const Histogram h;
  c.Increment();
  g.Set(3);
  h.Observe(1);
  EXPECT_FALSE(c.attached());
  EXPECT_EQ(c.Value(), 0);
  EXPECT_EQ(g.Value(), 0);
  Metrics metrics;
  EXPECT_TRUE(metrics.RecordsProcessed("0_0").attached());
}

TEST(MetricsTest, ConcurrentIncrementsAndChildCreationAreExact) {
  Metrics metrics;
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  const Counter shared = metrics.RecordsProduced("events");
  const Gauge gauge = metrics.ConsumerLag("commands", 0);
  const Histogram histogram = metrics.CommitLatency("all");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Counter own = metrics.RecordsProcessed("task_" + std::to_string(t));
      for (int i = 0; i < kIterations; ++i) {
        shared.Increment();
        own.Increment();
        gauge.Increment();
        histogram.Observe(0.002);
        if (i % 100 == 0) {
          // Creating (and finding) children while others count and scrape.
          metrics.StoreGets("store_" + std::to_string(i % 700)).Increment();
          metrics.DeadLetters("task_" + std::to_string(t), "p").Increment();
        }
        if (t == 0 && i % 2000 == 0) {
          EXPECT_FALSE(metrics.Serialize().empty());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(shared.Value(), kThreads * kIterations);
  EXPECT_EQ(gauge.Value(), kThreads * kIterations);
  const std::string text = metrics.Serialize();
  EXPECT_EQ(Sample(text, R"(kcqrs_records_produced_total{topic="events"})"),
            kThreads * kIterations);
  EXPECT_EQ(Sample(text, R"(kcqrs_commit_latency_seconds_count{thread="all"})"),
            kThreads * kIterations);
  EXPECT_EQ(
      Sample(
          text,
          R"(kcqrs_commit_latency_seconds_bucket{thread="all",le="0.0025"})"),
      kThreads * kIterations);
  double store_gets = 0;
  for (int s = 0; s < 700; s += 100) {
    store_gets += Sample(text, R"(kcqrs_store_gets_total{store="store_)" +
                                   std::to_string(s) + R"("})");
  }
  EXPECT_EQ(store_gets, kThreads * kIterations / 100);
  for (int t = 0; t < kThreads; ++t) {
    const std::string task = "task_" + std::to_string(t);
    EXPECT_EQ(Sample(text, R"(kcqrs_records_processed_total{task=")" + task +
                               R"("})"),
              kIterations);
    EXPECT_EQ(Sample(text, R"(kcqrs_dead_letters_total{task=")" + task +
                               R"(",processor="p"})"),
              kIterations / 100);
  }
}

TEST(MetricsTest, RemoveTaskTakesOnlyThatTasksChildren) {
  Metrics metrics;
  const Counter gone = metrics.RecordsProcessed("0_1");
  metrics.RecordsConsumed("commands", 1, "0_1").Increment();
  metrics.DeadLetters("0_1", "order").Increment();
  metrics.ProcessLatency("0_1").Observe(0.001);
  metrics.RecordsProcessed("0_2").Increment(7);
  metrics.RecordsConsumed("commands", 2, "0_2").Increment();
  gone.Increment(3);

  EXPECT_EQ(metrics.RemoveTask("0_1"), 4u);
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, Not(HasSubstr(R"(task="0_1")")));
  EXPECT_EQ(Sample(text, R"(kcqrs_records_processed_total{task="0_2"})"), 7);
  EXPECT_TRUE(HasSeries(
      text,
      R"(kcqrs_records_consumed_total{topic="commands",partition="2",task="0_2"})"));
  // No family has dead letters or latencies left: they are left out whole.
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_dead_letters_total")));
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_process_latency_seconds")));

  // A handle held across the removal stays safe to use but is not reported;
  // the task coming back starts from zero.
  gone.Increment();
  EXPECT_EQ(gone.Value(), 4);
  EXPECT_EQ(metrics.RecordsProcessed("0_1").Value(), 0);
  EXPECT_EQ(metrics.RemoveTask("0_1"), 1u);
  EXPECT_EQ(metrics.RemoveTask("0_1"), 0u);
}

TEST(MetricsTest, RemovePartitionAndStorePartitionMatchBothLabels) {
  Metrics metrics;
  const Gauge lag = metrics.ConsumerLag("commands", 1);
  lag.Set(100);
  metrics.ConsumerLag("commands", 2).Set(200);
  metrics.ConsumerLag("other", 1).Set(300);
  metrics.RecordsConsumed("commands", 1, "0_1").Increment();
  metrics.RecordsProduced("commands").Increment();  // topic but no partition
  metrics.StoreKeys("orders", 1).Set(5);
  metrics.StoreKeys("orders", 2).Set(6);
  metrics.RestoreRemaining("orders", 1).Set(50);
  metrics.StorePuts("orders").Increment();  // store but no partition

  EXPECT_EQ(metrics.RemovePartition("commands", 1), 2u);
  EXPECT_EQ(metrics.RemoveStorePartition("orders", 1), 2u);
  const std::string text = metrics.Serialize();
  EXPECT_FALSE(HasSeries(
      text, R"(kcqrs_consumer_lag_records{topic="commands",partition="1"})"));
  EXPECT_EQ(
      Sample(text,
             R"(kcqrs_consumer_lag_records{topic="commands",partition="2"})"),
      200);
  EXPECT_EQ(
      Sample(text,
             R"(kcqrs_consumer_lag_records{topic="other",partition="1"})"),
      300);
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_records_consumed_total")));
  EXPECT_EQ(Sample(text, R"(kcqrs_records_produced_total{topic="commands"})"),
            1);
  EXPECT_FALSE(
      HasSeries(text, R"(kcqrs_store_keys{store="orders",partition="1"})"));
  EXPECT_EQ(Sample(text, R"(kcqrs_store_keys{store="orders",partition="2"})"),
            6);
  EXPECT_THAT(text, Not(HasSubstr("kcqrs_restore_remaining_records")));
  EXPECT_EQ(Sample(text, R"(kcqrs_store_puts_total{store="orders"})"), 1);
  lag.Set(1);  // still safe after removal
  EXPECT_EQ(lag.Value(), 1);
}

TEST(MetricsTest, RemoveThreadTakesItsTransactionsAndTasks) {
  Metrics metrics;
  metrics.TransactionsCommitted("0").Increment();
  metrics.TransactionAborts("0").Increment();
  metrics.CommitLatency("0").Observe(0.01);
  metrics.Rebalances("0").Increment();
  metrics.TasksRunning("0").Set(1);
  metrics.TasksRestoring("0").Set(1);
  metrics.TransactionsCommitted("1").Increment();
  EXPECT_EQ(metrics.RemoveThread("0"), 6u);
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, Not(HasSubstr(R"(thread="0")")));
  EXPECT_EQ(Sample(text, R"(kcqrs_transactions_committed_total{thread="1"})"),
            1);
}

TEST(MetricsTest, HandlesOutliveTheirMetrics) {
  Counter c;
  {
    Metrics metrics;
    c = metrics.CommandsAccepted("order", "PlaceOrder");
  }
  c.Increment();
  EXPECT_EQ(c.Value(), 1);
}

TEST(MetricsTest, ProcessStatsArePlausible) {
  const ProcessStats p = ReadProcessStats();
  ASSERT_TRUE(p.cpu_seconds && p.resident_bytes && p.virtual_bytes &&
              p.start_time_seconds && p.open_fds);
  EXPECT_GE(*p.cpu_seconds, 0);
  EXPECT_GT(*p.resident_bytes, 1 << 20);
  EXPECT_GE(*p.virtual_bytes, *p.resident_bytes);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(*p.start_time_seconds, now + 1);
  EXPECT_GT(*p.start_time_seconds, now - 3600)
      << "this test process started within the hour";
  EXPECT_GE(*p.open_fds, 3);  // stdin, stdout, stderr

  const std::string text = Metrics().Serialize();
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_start_time_seconds", "process_open_fds"}) {
    EXPECT_TRUE(HasSeries(text, name)) << name << " missing from\n" << text;
  }
}

// Where promtool is on PATH, or "" when it is not.
std::string FindPromtool() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/promtool";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `promtool check metrics` on `text`; returns its exit code and output.
std::pair<int, std::string> PromtoolCheck(const std::string& promtool,
                                          const std::string& text) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("kcqrs-metrics-" + std::to_string(getpid()) + ".prom");
  std::ofstream(file) << text;
  const std::string command =
      "'" + promtool + "' check metrics < '" + file.string() + "' 2>&1";
  std::string output;
  int status = -1;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buf[4096];
    while (const size_t n = fread(buf, 1, sizeof buf, pipe))
      output.append(buf, n);
    status = pclose(pipe);
  }
  std::filesystem::remove(file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Every family with children, including label values that need escaping.
void UseEveryFamily(Metrics& m) {
  m.RecordsConsumed("orders-commands", 0, "0_0").Increment();
  m.RecordsProcessed("0_0").Increment();
  m.RecordsProduced("orders-events").Increment();
  m.DeadLetters("0_0", "order \"aggregate\"\\ with\nnewline").Increment();
  m.ProcessLatency("0_0").Observe(0.0001);
  m.CommandsAccepted("order", "PlaceOrder").Increment();
  m.CommandsRejected("order", "PlaceOrder", "out_of_stock").Increment();
  m.CommandsDuplicate("order", "PlaceOrder").Increment();
  m.CommitLatency("0").Observe(0.02);
  m.TransactionsCommitted("0").Increment();
  m.TransactionAborts("0").Increment();
  m.Rebalances("0").Increment();
  m.TasksRunning("0").Set(3);
  m.TasksRestoring("0").Set(1);
  m.ConsumerLag("orders-commands", 0).Set(12);
  m.StorePuts("orders").Increment();
  m.StoreGets("orders").Increment();
  m.StoreKeys("orders", 0).Set(1000);
  m.RestoredRecords("orders").Increment(10);
  m.RestoreRemaining("orders", 0).Set(0);
  m.HttpRequests("/stores/{store}/keys/{key}", "GET", 200).Increment();
  m.HttpDuration("/stores/{store}/keys/{key}").Observe(0.003);
  m.Ready().Set(1);
}

TEST(MetricsTest, PromtoolAcceptsTheExpositionWithoutLintProblems) {
  const std::string promtool = FindPromtool();
  ASSERT_FALSE(promtool.empty())
      << "promtool is not on PATH; run scripts/setup (it installs Debian's "
         "prometheus "
         "package, which provides promtool)";
  Metrics metrics;
  UseEveryFamily(metrics);
  const std::string text = metrics.Serialize();
  ASSERT_THAT(text, HasSubstr("kcqrs_http_request_duration_seconds_bucket"));
  ASSERT_THAT(text, HasSubstr("process_resident_memory_bytes"));
  const auto [code, output] = PromtoolCheck(promtool, text);
  EXPECT_EQ(code, 0) << output << "\n--- exposition ---\n" << text;
  EXPECT_EQ(output, "") << "--- exposition ---\n" << text;
}

// The checker itself must be able to fail, or the test above proves nothing.
TEST(MetricsTest, PromtoolRejectsABrokenExposition) {
  const std::string promtool = FindPromtool();
  ASSERT_FALSE(promtool.empty())
      << "promtool is not on PATH; run scripts/setup";
  const auto [code, output] =
      PromtoolCheck(promtool,
                    "# HELP kcqrs_things Things.\n# TYPE kcqrs_things "
                    "counter\nkcqrs_things 1\n");
  EXPECT_NE(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("_total"));
}

}  // namespace
}  // namespace kcqrs::metrics
