// Several instances of one application as one: each a `kcqrs run` child
// process of the orders example on the real broker, on its own state
// directory and HTTP port, learning about the others through Kafka only.
// What a user behind a load balancer would notice is checked from outside,
// over HTTP:
//   - any instance answers any key, scan and command, with the holder's
//     answer, and a position token from one is followed on another;
//   - kill -9 of one of three under load, and a scale 1 -> 3 -> 1 while
//     commands flow: every command has exactly one outcome, the read models
//     every instance serves equal an independent fold of the committed
//     events, and every key is answerable from every instance left.
// The failover times are printed (and recorded as test properties):
// kill -9 until every key is answerable again from the survivors, a clean
// stop until its partitions are processed elsewhere.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/codec/partitioner.h"
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

using json = kcqrs::Json;
using namespace kcqrs::testing;
using Clock = std::chrono::steady_clock;

constexpr char kTopology[] = KCQRS_SOURCE_DIR "/examples/orders/topology.yaml";
// More partitions than instances, so that every instance holds several.
constexpr int kPartitions = 6;
// Latency bounds stretch under ThreadSanitizer, which slows the engine
// several times over; what they bound is the same.
#if defined(__SANITIZE_THREAD__)
constexpr int kSlowdown = 2;
#else
constexpr int kSlowdown = 1;
#endif
// Every store of the example: the aggregate's, a projection, and a
// projection behind a repartition topic.
const std::vector<std::string> kStores = {"order-aggregates", "orders", "product_totals"};

long long MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

json ParseJson(const std::string& s) { return json::parse(s, nullptr, false); }

std::string Header(const HttpResult& r, const std::string& lower_name) {
  auto it = r.headers.find(lower_name);
  return it == r.headers.end() ? "" : it->second;
}

// One instance of the application: a `kcqrs run` child on its own state
// directory; restarted on the same directory it is the same instance.
struct Instance {
  std::string name;
  std::string state_dir;
  std::unique_ptr<KcqrsChild> child;
  int runs = 0;
  std::string log;   // of the current run
  std::string http;  // "127.0.0.1:port" of the current run
  std::string id;    // as GET /instances lists it
};

// A store's partitions and which running instance hosts each, as every
// instance's GET /stores says.
struct Layout {
  std::map<std::string, int> partitions;                           // store -> count
  std::map<std::string, std::map<int, const Instance*>> holder;  // store -> partition -> who
  const Instance* Holder(const std::string& store, const std::string& key) const {
    auto s = holder.find(store);
    if (s == holder.end() || !partitions.count(store)) return nullptr;
    auto h = s->second.find(engine::PartitionForKey(key, partitions.at(store)));
    return h == s->second.end() ? nullptr : h->second;
  }
};

// Every item of a store, read page by page through one instance.
struct Scan {
  int status = 0;    // the first status other than 200, else 200
  std::string body;  // of the answer that was not 200
  int pages = 0;
  std::vector<std::pair<std::string, json>> items;
  std::set<std::string> served_by;  // Kcqrs-Served-By of the pages
  int standby_pages = 0;            // pages with Kcqrs-Standby: true
};

// `headers`: sent with every page's request (Kcqrs-Standby-Ok).
Scan ScanAll(const std::string& http, const std::string& store, int limit,
             const std::map<std::string, std::string>& headers = {}) {
  Scan s;
  std::string cursor;
  for (;;) {
    HttpResult r = HttpRequest(http, "GET",
                               "/stores/" + store + "/keys?limit=" + std::to_string(limit) +
                                   (cursor.empty() ? "" : "&cursor=" + cursor),
                               "", headers);
    s.status = r.status;
    if (r.status != 200) {
      s.body = r.body;
      return s;
    }
    ++s.pages;
    s.served_by.insert(Header(r, "kcqrs-served-by"));
    if (Header(r, "kcqrs-standby") == "true") ++s.standby_pages;
    json page = ParseJson(r.body);
    if (!page.is_object() || !page["items"].is_array()) {
      s.status = -1;
      s.body = r.body;
      return s;
    }
    for (const json& item : page["items"]) {
      s.items.emplace_back(item.value("key", ""), item["value"]);
    }
    if (!page["next"].is_string()) return s;
    cursor = page["next"].get<std::string>();
  }
}

// Empty when `scan` holds exactly `want` in key order; else what differs.
std::string ScanDiff(const Scan& scan, const std::map<std::string, json>& want) {
  if (scan.status != 200) {
    return "answered " + std::to_string(scan.status) + ": " + scan.body.substr(0, 500);
  }
  std::string diff;
  auto w = want.begin();
  for (const auto& [key, value] : scan.items) {
    if (w == want.end() || key != w->first) {
      return "at key '" + key + "' expected '" + (w == want.end() ? "(end)" : w->first) +
             "' (" + std::to_string(scan.items.size()) + " items, " +
             std::to_string(want.size()) + " wanted)";
    }
    if (value != w->second) return key + " is " + value.dump() + ", fold says " + w->second.dump();
    ++w;
  }
  if (w != want.end()) {
    return "ends before '" + w->first + "' (" + std::to_string(scan.items.size()) + " items, " +
           std::to_string(want.size()) + " wanted)";
  }
  return "";
}

// Commands straight to the command topic, as another service would send
// them: the example's stream (creates, cancels, retries, poison records) at
// about `per_second`, until stopped or the stream ends. Remembers the
// command id of every record it sent.
class KafkaCommands {
 public:
  KafkaCommands(std::string bootstrap, std::string topic, int per_second)
      : bootstrap_(std::move(bootstrap)), topic_(std::move(topic)), per_second_(per_second) {}
  ~KafkaCommands() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::set<std::string> command_ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  size_t sent() const { return sent_; }

 private:
  void Run() {
    auto producer = MakeProducer(bootstrap_);
    ASSERT_NE(producer, nullptr);
    const OrdersCommands stream = MakeOrdersCommands(5000);
    const auto gap = std::chrono::microseconds(1000000 / per_second_);
    auto next = Clock::now();
    for (const auto& [key, value] : stream.commands) {
      if (stop_) break;
      json v = ParseJson(value);
      if (v.is_object() && v.contains("commandId")) {
        std::lock_guard<std::mutex> lock(mu_);
        ids_.insert(v["commandId"].get<std::string>());
      }
      Produce(producer.get(), topic_, key, value);
      ++sent_;
      next += gap;
      std::this_thread::sleep_until(next);
    }
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  }

  const std::string bootstrap_;
  const std::string topic_;
  const int per_second_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> sent_{0};
  mutable std::mutex mu_;
  std::set<std::string> ids_;
  std::thread thread_;
};

// Commands through the HTTP API of whichever instances are up, round robin,
// as clients behind a load balancer send them: a command that gets no 2xx
// (its instance died under it, or said 503) is sent again with the same
// command id to the next instance, so that it may reach Kafka more than
// once and must still be decided once.
class HttpCommands {
 public:
  explicit HttpCommands(std::string prefix) : prefix_(std::move(prefix)) {}
  ~HttpCommands() { Stop(); }

  void SetTargets(std::vector<std::string> addresses) {
    std::lock_guard<std::mutex> lock(mu_);
    targets_ = std::move(addresses);
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::set<std::string> command_ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  int resent() const { return resent_; }
  int taken() const { return taken_; }
  std::string failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

 private:
  void Run() {
    for (int i = 0; !stop_; ++i) {
      const std::string order = prefix_ + std::to_string(i);
      Post(CreateOrder(order, "p-" + std::to_string(i % 4), 1 + i % 3, prefix_ + "c" +
                                                                          std::to_string(i)));
      if (i % 4 == 1) Post(CancelOrder(order, prefix_ + "x" + std::to_string(i)));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void Post(const std::string& body) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ids_.insert(ParseJson(body)["commandId"].get<std::string>());
    }
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    HttpResult last;
    std::string target;
    while (Clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!targets_.empty()) target = targets_[next_++ % targets_.size()];
      }
      last = HttpRequest(target, "POST", "/commands/order", body);
      if (last.status == 200 || last.status == 202) {
        ++taken_;
        return;
      }
      ++resent_;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.empty()) {
      failure_ = "no instance took " + body + " within 60 s; last answer from " + target + ": " +
                 std::to_string(last.status) + " " + last.body;
    }
  }

  const std::string prefix_;
  std::atomic<bool> stop_{false};
  std::atomic<int> resent_{0};
  std::atomic<int> taken_{0};
  mutable std::mutex mu_;
  std::vector<std::string> targets_;
  size_t next_ = 0;
  std::set<std::string> ids_;
  std::string failure_;
  std::thread thread_;
};

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = TestBootstrapServers();
    ASSERT_FALSE(bootstrap_.empty());
    names_ = MakeOrdersNames(UniqueName("orders-scale"));
    const std::string p = "{partitions: " + std::to_string(kPartitions) + "}";
    for (std::string& o : OrdersOverrides(names_, bootstrap_)) {
      if (o.rfind("topics=", 0) == 0) {
        o = "topics={" + names_.commands + ": " + p + ", " + names_.events + ": " + p + ", " +
            names_.rejections + ": " + p + "}";
      }
      if (o.rfind("application.state_dir=", 0) == 0) continue;  // one per instance
      overrides_.push_back(o);
    }
  }

  void TearDown() override {
    for (auto& [name, inst] : instances_) {
      inst->child.reset();  // SIGKILL if still running
      if (HasFailure()) {
        // The end of each run's log, for the post-mortem.
        for (int run = 1; run <= inst->runs; ++run) {
          const std::string log = LogOf(*inst, run);
          const std::string text = ReadWholeFile(log);
          std::printf("---- %s (run %d), last 3000 bytes ----\n%s\n", name.c_str(), run,
                      text.substr(text.size() > 3000 ? text.size() - 3000 : 0).c_str());
        }
      }
      for (int run = 1; run <= inst->runs; ++run) std::filesystem::remove(LogOf(*inst, run));
      std::filesystem::remove_all(inst->state_dir);
    }
  }

  static std::string LogOf(const Instance& inst, int run) {
    return inst.state_dir + "." + std::to_string(run) + ".log";
  }

  // Starts instance `name` (again, on its state directory, when it ran
  // before) and waits until its HTTP API says who it is.
  Instance* Start(const std::string& name) {
    auto& slot = instances_[name];
    if (!slot) {
      slot = std::make_unique<Instance>();
      slot->name = name;
      slot->state_dir = names_.state_dir + "-" + name;
      std::filesystem::remove_all(slot->state_dir);
    }
    Instance* inst = slot.get();
    inst->runs++;
    inst->log = LogOf(*inst, inst->runs);
    std::filesystem::remove(inst->log);
    std::vector<std::string> sets = overrides_;
    sets.push_back("application.state_dir=" + inst->state_dir);
    inst->child = std::make_unique<KcqrsChild>(KCQRS_BINARY, kTopology, sets, inst->log);
    inst->http.clear();
    static const std::regex listening(R"(http: listening on (\S+))");
    bool up = WaitFor(
        [&] {
          std::smatch m;
          const std::string text = ReadWholeFile(inst->log);
          if (!std::regex_search(text, m, listening)) return false;
          inst->http = m[1];
          json listed = ParseJson(HttpRequest(inst->http, "GET", "/instances").body);
          if (!listed.is_object() || !listed["instances"].is_array()) return false;
          for (const json& i : listed["instances"]) {
            if (i.value("self", false)) inst->id = i.value("id", "");
          }
          return !inst->id.empty();
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(up) << name << " did not start:\n" << ReadWholeFile(inst->log);
    return up ? inst : nullptr;
  }

  // The group has settled on `running`: each is ready, each lists exactly
  // these instances with the same active tasks, and the hosted partitions
  // of every store cover it once. `why` says what is not so yet.
  bool Settled(const std::vector<Instance*>& running, std::string* why, Layout* layout) {
    std::set<std::string> ids;
    for (const Instance* i : running) ids.insert(i->id);
    std::optional<std::map<std::string, json>> agreed;
    Layout l;
    for (const Instance* i : running) {
      HttpResult ready = HttpRequest(i->http, "GET", "/readyz");
      if (ready.status != 200) {
        *why = i->name + " /readyz " + std::to_string(ready.status) + " " + ready.body;
        return false;
      }
      json listed = ParseJson(HttpRequest(i->http, "GET", "/instances").body);
      if (!listed.is_object() || !listed["instances"].is_array()) {
        *why = i->name + " /instances did not answer";
        return false;
      }
      std::map<std::string, json> tasks;
      for (const json& e : listed["instances"]) tasks[e.value("id", "")] = e["active_tasks"];
      std::set<std::string> seen;
      for (const auto& [id, t] : tasks) seen.insert(id);
      if (seen != ids) {
        *why = i->name + " lists " + std::to_string(seen.size()) + " instance(s), not " +
               std::to_string(ids.size());
        return false;
      }
      if (agreed && *agreed != tasks) {
        *why = i->name + " disagrees on who holds what";
        return false;
      }
      agreed = tasks;
      json stores = ParseJson(HttpRequest(i->http, "GET", "/stores").body);
      if (!stores.is_object() || !stores["stores"].is_array()) {
        *why = i->name + " /stores did not answer";
        return false;
      }
      for (const json& s : stores["stores"]) {
        const std::string name = s["name"];
        l.partitions[name] = s["partitions"];
        for (const json& p : s["hosted_partitions"]) {
          const Instance*& h = l.holder[name][p.get<int>()];
          if (h != nullptr) {
            *why = "partition " + p.dump() + " of " + name + " is hosted by " + h->name +
                   " and " + i->name;
            return false;
          }
          h = i;
        }
      }
    }
    for (const std::string& store : kStores) {
      if (l.partitions[store] != kPartitions ||
          l.holder[store].size() != static_cast<size_t>(kPartitions)) {
        *why = store + ": " + std::to_string(l.holder[store].size()) + " of " +
               std::to_string(l.partitions[store]) + " partitions hosted";
        return false;
      }
    }
    if (layout != nullptr) *layout = l;
    return true;
  }

  // Waits until Settled; the time it took (ms), or -1 after `timeout`.
  long long WaitSettled(const std::vector<Instance*>& running, Layout* layout,
                        std::chrono::seconds timeout = std::chrono::seconds(90)) {
    const auto t0 = Clock::now();
    std::string why;
    if (WaitFor([&] { return Settled(running, &why, layout); }, timeout)) return MsSince(t0);
    ADD_FAILURE() << "the group did not settle on " << running.size()
                  << " instance(s) within " << timeout.count() << " s: " << why;
    return -1;
  }

  // Every key of `keys` (store, key) answers 200 from every one of
  // `running`; `why` names the first that does not. Each answer other than
  // 200 is counted in `tally` by status and problem type; one that is not
  // an honest "not now" (a 503 with Retry-After) also in `dishonest`: a
  // 404 for a key that exists, a 500, no answer from a running instance.
  static bool AllAnswer(const std::vector<Instance*>& running,
                        const std::vector<std::pair<std::string, std::string>>& keys,
                        std::string* why, std::map<std::string, int>* tally = nullptr,
                        std::vector<std::string>* dishonest = nullptr, bool scans = true) {
    auto note = [&](const Instance* i, const std::string& what, const HttpResult& r) {
      json problem = ParseJson(r.body);
      const std::string type = problem.is_object() ? problem.value("type", "") : "";
      if (tally != nullptr) {
        (*tally)[std::to_string(r.status) + " " + type.substr(type.rfind(':') + 1)]++;
      }
      if (dishonest != nullptr && (r.status != 503 || Header(r, "retry-after").empty())) {
        dishonest->push_back(i->name + " " + what + ": " + std::to_string(r.status) + " " +
                             r.body.substr(0, 300));
      }
    };
    // Every key and scan is asked each round (not only up to the first
    // miss), so that the tally sees every answer of the failover.
    bool all = true;
    auto miss = [&](const Instance* i, const std::string& what, const HttpResult& r) {
      note(i, what, r);
      if (all) {
        *why = i->name + ": " + what + " answered " + std::to_string(r.status) + " " +
               r.body.substr(0, 300);
      }
      all = false;
    };
    for (const Instance* i : running) {
      for (const auto& [store, key] : keys) {
        HttpResult r = HttpRequest(i->http, "GET", "/stores/" + store + "/keys/" + key);
        if (r.status != 200) miss(i, store + "/" + key, r);
      }
      // A scan that sees every partition.
      for (const std::string& store : kStores) {
        if (!scans) break;
        HttpResult r = HttpRequest(i->http, "GET", "/stores/" + store + "/keys?limit=1");
        if (r.status != 200) miss(i, "a scan of " + store, r);
      }
    }
    return all;
  }

  // For each partition of `orders` and `order-aggregates`, one key that
  // exists, and every product: what a failover must make answerable again.
  // Waits (up to 60 s) for the orders to cover every partition: on a slow
  // machine (ThreadSanitizer) the first seconds of load may not.
  std::vector<std::pair<std::string, std::string>> SampleKeys(const Instance& from) {
    std::vector<std::pair<std::string, std::string>> out;
    std::set<int> covered;
    Scan orders;
    std::string totals_missing;
    WaitFor(
        [&] {
          out.clear();
          covered.clear();
          orders = ScanAll(from.http, "orders", 500);
          for (const auto& [key, value] : orders.items) {
            if (covered.insert(engine::PartitionForKey(key, kPartitions)).second) {
              out.emplace_back("orders", key);
              out.emplace_back("order-aggregates", key);
            }
          }
          // The four products' totals, one repartition hop behind the
          // orders: each has folded an order by now, or soon.
          totals_missing.clear();
          for (int p = 0; p < 4; ++p) {
            const std::string product = "p-" + std::to_string(p);
            HttpResult r = HttpRequest(from.http, "GET", "/stores/product_totals/keys/" + product);
            if (r.status != 200) totals_missing = product + ": " + std::to_string(r.status);
          }
          return orders.status == 200 && covered.size() == static_cast<size_t>(kPartitions) &&
                 totals_missing.empty();
        },
        std::chrono::seconds(60));
    EXPECT_EQ(orders.status, 200) << orders.body;
    EXPECT_EQ(covered.size(), static_cast<size_t>(kPartitions))
        << "too few orders after 60 s to cover every partition";
    EXPECT_EQ(totals_missing, "") << "a product's totals not answered after 60 s";
    for (int p = 0; p < 4; ++p) out.emplace_back("product_totals", "p-" + std::to_string(p));
    return out;
  }

  // The end of a run under load: every command has exactly one outcome on
  // the committed topics, and every instance of `running` serves read models
  // equal to the fold of the committed events, every key of them.
  void ExpectOneApplication(const std::vector<Instance*>& running,
                            const std::set<std::string>& command_ids) {
    std::vector<kafka::ConsumedRecord> events, rejections;
    std::map<std::string, int> outcomes;
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline) {
      events = ReadCommitted(bootstrap_, names_.events, 1, std::chrono::seconds(60),
                             std::chrono::seconds(2));
      rejections = ReadCommitted(bootstrap_, names_.rejections, 0, std::chrono::seconds(60),
                                 std::chrono::seconds(1));
      outcomes = CountOutcomes(events, rejections);
      bool all = true;
      for (const std::string& cid : command_ids) all = all && outcomes.count(cid);
      if (all) break;
    }
    ExpectExactlyOneOutcomeEach(outcomes, command_ids);

    const OrdersFold fold = FoldOrderEvents(events);
    for (const Instance* i : running) {
      std::string orders_diff, totals_diff;
      WaitFor(
          [&] {
            orders_diff = ScanDiff(ScanAll(i->http, "orders", 400), fold.orders);
            totals_diff = ScanDiff(ScanAll(i->http, "product_totals", 400), fold.totals);
            return orders_diff.empty() && totals_diff.empty();
          },
          std::chrono::seconds(60));
      EXPECT_EQ(orders_diff, "") << "orders as " << i->name << " serves it";
      EXPECT_EQ(totals_diff, "") << "product_totals as " << i->name << " serves it";
    }
    // Every key, from every instance, by key: the forwarded lookups.
    Layout layout;
    std::string why;
    ASSERT_TRUE(Settled(running, &why, &layout)) << why;
    size_t asked = 0;
    for (const Instance* i : running) {
      for (const auto& [store, want] :
           {std::pair{std::string("orders"), &fold.orders},
            std::pair{std::string("product_totals"), &fold.totals}}) {
        for (const auto& [key, value] : *want) {
          HttpResult r = HttpRequest(i->http, "GET", "/stores/" + store + "/keys/" + key);
          ++asked;
          ASSERT_EQ(r.status, 200) << i->name << " " << store << "/" << key << ": " << r.body;
          EXPECT_EQ(ParseJson(r.body), value) << i->name << " " << store << "/" << key;
          EXPECT_EQ(Header(r, "kcqrs-served-by"), layout.Holder(store, key)->id)
              << i->name << " " << store << "/" << key;
        }
      }
    }
    std::printf("%zu command ids, %zu events, %zu rejections, %zu orders; %zu lookups by key\n",
                command_ids.size(), events.size(), rejections.size(), fold.orders.size(), asked);
  }

  // What the stream threads of `i` restored from changelogs since it
  // started, as GET /stats says (standby copies kept warm are not counted:
  // the standby thread's reading is not a stream thread's restore).
  static long long RestoredByStreamThreads(const Instance& i) {
    json stats = ParseJson(HttpRequest(i.http, "GET", "/stats").body);
    if (!stats.is_object() || !stats["totals"].is_object()) return -1;
    return stats["totals"].value("restored_records", -1LL);
  }

  static std::vector<std::string> Addresses(const std::vector<Instance*>& running) {
    std::vector<std::string> out;
    for (const Instance* i : running) out.push_back(i->http);
    return out;
  }

  std::string bootstrap_;
  OrdersNames names_;
  std::vector<std::string> overrides_;
  std::map<std::string, std::unique_ptr<Instance>> instances_;
};

TEST_F(ScaleOutTest, AnyOfThreeInstancesAnswersEveryKeyScanCommandAndToken) {
  Instance* a = Start("a");
  Instance* b = Start("b");
  Instance* c = Start("c");
  ASSERT_TRUE(a && b && c);
  const std::vector<Instance*> all = {a, b, c};
  Layout layout;
  const long long settle_ms = WaitSettled(all, &layout);
  ASSERT_GE(settle_ms, 0);
  std::printf("three instances settled %lld ms after the last started\n", settle_ms);

  // Commands with ?wait=true, each sent to an instance that does not hold
  // its partition: decided by the holder, whose answer comes back.
  std::map<std::string, json> orders;
  std::map<std::string, json> totals;
  std::map<std::string, std::string> positions;
  auto count = [&](const std::string& product, int quantity) {
    json& t = totals[product];
    if (t.is_null()) t = {{"product", product}, {"orders", 0}, {"quantity", 0}};
    t["orders"] = t["orders"].get<int>() + 1;
    t["quantity"] = t["quantity"].get<int>() + quantity;
  };
  for (int i = 0; i < 18; ++i) {
    const std::string key = "o-" + std::to_string(i);
    const std::string product = "p-" + std::to_string(i % 4);
    const int quantity = 1 + i % 5;
    const Instance* holder = layout.Holder("order-aggregates", key);
    ASSERT_NE(holder, nullptr);
    const Instance* via = all[i % 3] == holder ? all[(i + 1) % 3] : all[i % 3];
    HttpResult r = HttpRequest(via->http, "POST", "/commands/order?wait=true",
                               CreateOrder(key, product, quantity, "c-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << "via " << via->name << ": " << r.body;
    EXPECT_EQ(Header(r, "kcqrs-served-by"), holder->id) << key << " via " << via->name;
    json answer = ParseJson(r.body);
    ASSERT_TRUE(answer.is_object() && answer["events"].is_array()) << r.body;
    ASSERT_EQ(answer["events"].size(), 1u) << r.body;
    EXPECT_EQ(answer["events"][0]["type"], "OrderCreated") << r.body;
    positions[key] = answer["position"];
    orders[key] = {{"orderId", key}, {"product", product}, {"quantity", quantity},
                   {"status", "CREATED"}};
    count(product, quantity);
  }
  // A rejection comes back the same way, from the holder.
  {
    const Instance* holder = layout.Holder("order-aggregates", "o-3");
    const Instance* via = holder == a ? b : a;
    HttpResult r = HttpRequest(via->http, "POST", "/commands/order?wait=true",
                               CreateOrder("o-3", "p-0", 1, "c-again"));
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(ParseJson(r.body)["code"], "already_exists") << r.body;
    EXPECT_EQ(Header(r, "kcqrs-served-by"), holder->id);
  }

  // A position token taken on one instance and used on the others. The
  // topics have equal partition counts, so an order's command and event
  // partitions are held together; its product's totals, behind the
  // repartition topic, are held elsewhere. Posted on the third instance,
  // the order is asked on the totals' holder and the totals on the order's
  // holder: each forwarded, each waiting for a commit of another instance.
  const Instance* totals_holder = layout.Holder("product_totals", "p-1");
  ASSERT_NE(totals_holder, nullptr);
  std::string key;
  const Instance* decider = nullptr;
  for (int j = 0; j < 200 && key.empty(); ++j) {
    const std::string k = "t-" + std::to_string(j);
    decider = layout.Holder("order-aggregates", k);
    if (decider != totals_holder) key = k;
  }
  ASSERT_FALSE(key.empty());
  ASSERT_EQ(layout.Holder("orders", key), decider);
  const Instance* post_to = nullptr;
  for (const Instance* i : all) {
    if (i != decider && i != totals_holder) post_to = i;
  }
  ASSERT_NE(post_to, nullptr);
  HttpResult posted =
      HttpRequest(post_to->http, "POST", "/commands/order", CreateOrder(key, "p-1", 7, "c-t"));
  ASSERT_EQ(posted.status, 202) << posted.body;
  const std::string token = ParseJson(posted.body)["position"];
  count("p-1", 7);
  const auto asked_totals = Clock::now();
  HttpResult total = HttpRequest(
      decider->http, "GET", "/stores/product_totals/keys/p-1?position=" + token + "&timeout_ms=10000");
  const long long ryw_totals_ms = MsSince(asked_totals);
  ASSERT_EQ(total.status, 200) << total.body;
  EXPECT_EQ(ParseJson(total.body), totals["p-1"]) << "the token two hops away, behind a repartition";
  EXPECT_EQ(Header(total, "kcqrs-served-by"), totals_holder->id);
  const auto asked = Clock::now();
  HttpResult seen = HttpRequest(totals_holder->http, "GET",
                                "/stores/orders/keys/" + key + "?position=" + token +
                                    "&timeout_ms=10000");
  const long long ryw_ms = MsSince(asked);
  ASSERT_EQ(seen.status, 200) << seen.body;
  EXPECT_EQ(ParseJson(seen.body)["quantity"], 7);
  EXPECT_EQ(Header(seen, "kcqrs-served-by"), decider->id);
  std::printf(
      "token posted on %s; its product's totals asked on %s, served by %s after %lld ms; "
      "the order asked on %s, served by %s after %lld ms more\n",
      post_to->name.c_str(), decider->name.c_str(), totals_holder->name.c_str(), ryw_totals_ms,
      totals_holder->name.c_str(), decider->name.c_str(), ryw_ms);
  orders[key] = {{"orderId", key}, {"product", "p-1"}, {"quantity", 7}, {"status", "CREATED"}};

  // Every key, from every instance: the same answer, served by its holder.
  for (const auto& [k, want] : orders) {
    for (const Instance* i : all) {
      HttpResult r = HttpRequest(i->http, "GET", "/stores/orders/keys/" + k);
      ASSERT_EQ(r.status, 200) << i->name << " " << k << ": " << r.body;
      EXPECT_EQ(ParseJson(r.body), want) << i->name << " " << k;
      EXPECT_EQ(Header(r, "kcqrs-served-by"), layout.Holder("orders", k)->id) << i->name << k;
      HttpResult agg = HttpRequest(i->http, "GET", "/stores/order-aggregates/keys/" + k);
      ASSERT_EQ(agg.status, 200) << i->name << " " << k << ": " << agg.body;
      EXPECT_EQ(Header(agg, "kcqrs-served-by"), layout.Holder("order-aggregates", k)->id);
    }
  }
  for (const auto& [product, want] : totals) {
    for (const Instance* i : all) {
      HttpResult r = HttpRequest(i->http, "GET", "/stores/product_totals/keys/" + product);
      ASSERT_EQ(r.status, 200) << i->name << " " << product << ": " << r.body;
      EXPECT_EQ(ParseJson(r.body), want) << i->name << " " << product;
      EXPECT_EQ(Header(r, "kcqrs-served-by"), layout.Holder("product_totals", product)->id);
    }
  }
  // A key nobody wrote: the holder's 404, from everywhere (not a 503, not
  // a 404 made up by an instance that does not hold it).
  for (const Instance* i : all) {
    HttpResult r = HttpRequest(i->http, "GET", "/stores/orders/keys/o-none");
    EXPECT_EQ(r.status, 404) << i->name << ": " << r.body;
    EXPECT_EQ(Header(r, "kcqrs-served-by"), layout.Holder("orders", "o-none")->id) << i->name;
  }

  // Scans from every instance, in small pages: every key once, in order,
  // across the partitions of all three.
  for (const Instance* i : all) {
    Scan s = ScanAll(i->http, "orders", 4);
    EXPECT_EQ(ScanDiff(s, orders), "") << "orders scanned through " << i->name;
    EXPECT_GE(s.pages, static_cast<int>(orders.size() / 4));
    Scan t = ScanAll(i->http, "product_totals", 3);
    EXPECT_EQ(ScanDiff(t, totals), "") << "product_totals scanned through " << i->name;
  }

  // GET /instances: all three, at the addresses they listen on.
  for (const Instance* i : all) {
    json listed = ParseJson(HttpRequest(i->http, "GET", "/instances").body);
    ASSERT_TRUE(listed.is_object()) << i->name;
    std::map<std::string, std::string> urls;
    for (const json& e : listed["instances"]) urls[e["id"]] = e["url"];
    for (const Instance* j : all) EXPECT_EQ(urls[j->id], "http://" + j->http) << i->name;
  }
  RecordProperty("settle_ms", static_cast<int>(settle_ms));
  RecordProperty("read_your_writes_across_instances_ms", static_cast<int>(ryw_totals_ms));
}

TEST_F(ScaleOutTest, Kill9OfOneOfThreeUnderLoadLosesAndDoublesNothing) {
  Instance* a = Start("a");
  Instance* b = Start("b");
  Instance* c = Start("c");
  ASSERT_TRUE(a && b && c);
  ASSERT_GE(WaitSettled({a, b, c}, nullptr), 0);

  KafkaCommands to_kafka(bootstrap_, names_.commands, 80);
  HttpCommands over_http("h-");
  over_http.SetTargets(Addresses({a, b, c}));
  to_kafka.Start();
  over_http.Start();
  std::this_thread::sleep_for(std::chrono::seconds(5));

  // What must be answerable again after the kill: a key in each partition.
  std::vector<std::pair<std::string, std::string>> sample = SampleKeys(*a);
  std::string why;
  ASSERT_TRUE(AllAnswer({a, b, c}, sample, &why)) << "before the kill: " << why;

  // b dies mid-work: its open transaction, its group membership (static,
  // so it is not seen gone before the session time-out) and its HTTP API.
  over_http.SetTargets(Addresses({a, c}));
  const long long restored_before = RestoredByStreamThreads(*a) + RestoredByStreamThreads(*c);
  const auto killed = Clock::now();
  b->child->Kill(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(b->child->exit_status()));
  long long unlisted_ms = -1;
  int unanswered = 0;
  std::map<std::string, int> tally;
  std::vector<std::string> dishonest;
  const bool back = WaitFor(
      [&] {
        if (unlisted_ms < 0) {
          json listed = ParseJson(HttpRequest(a->http, "GET", "/instances").body);
          if (listed.is_object() && listed["instances"].size() == 2) unlisted_ms = MsSince(killed);
        }
        if (AllAnswer({a, c}, sample, &why, &tally, &dishonest)) return true;
        ++unanswered;
        return false;
      },
      std::chrono::seconds(60));
  const long long answerable_ms = MsSince(killed);
  ASSERT_TRUE(back) << "60 s after kill -9 of b, still " << why;
  std::printf(
      "kill -9 of 1 of 3: every key answerable from both survivors after %lld ms "
      "(b off their instance list after %lld ms; %d rounds saw a key or scan unanswered, "
      "last: %s)\n",
      answerable_ms, unlisted_ms, unanswered, why.c_str());
  RecordProperty("kill9_until_every_key_answerable_ms", static_cast<int>(answerable_ms));
  // Without standbys the survivors restore b's tasks from their changelogs
  // in full: the figure the standby test compares with.
  const long long restored =
      RestoredByStreamThreads(*a) + RestoredByStreamThreads(*c) - restored_before;
  std::printf("the survivors restored %lld records to take b's tasks over\n", restored);
  RecordProperty("kill9_records_restored", static_cast<int>(restored));
  std::string answers;
  for (const auto& [what, n] : tally) answers += " " + std::to_string(n) + " x " + what + ";";
  std::printf("answers other than 200 meanwhile:%s\n", answers.c_str());
  // Between owners a key is "not now" (503, Retry-After), never "no such
  // key" (404), an error, or silence from a running instance.
  EXPECT_TRUE(dishonest.empty()) << dishonest.size() << " answers, the first: "
                                 << (dishonest.empty() ? "" : dishonest.front());

  // The two carry the load a while, then b comes back on its state directory.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  b = Start("b");
  ASSERT_NE(b, nullptr);
  const long long rejoin_ms = WaitSettled({a, b, c}, nullptr);
  ASSERT_GE(rejoin_ms, 0);
  std::printf("b restarted: three settled again after %lld ms\n", rejoin_ms);
  over_http.SetTargets(Addresses({a, b, c}));
  std::this_thread::sleep_for(std::chrono::seconds(3));

  to_kafka.Stop();
  over_http.Stop();
  EXPECT_EQ(over_http.failure(), "");
  std::set<std::string> ids = to_kafka.command_ids();
  for (const std::string& id : over_http.command_ids()) ids.insert(id);
  std::printf("sent %zu records to Kafka, %d commands over HTTP (%d sent again)\n",
              to_kafka.sent(), over_http.taken(), over_http.resent());
  ExpectOneApplication({a, b, c}, ids);
}

// With application.standby_replicas=2 every instance keeps a warm copy of
// every task it does not run. kill -9 of one of three under load: every key
// of its partitions is answerable from both survivors at once (from a
// standby copy, marked Kcqrs-Standby: true, while the group has not yet
// noticed), and the survivors that take its tasks over restore only what
// their copies missed, not the changelogs; still every outcome once.
TEST_F(ScaleOutTest, Kill9WithTwoStandbysAnswersAtOnceAndRestoresOnlyTheLag) {
  overrides_.push_back("application.standby_replicas=2");
  Instance* a = Start("a");
  Instance* b = Start("b");
  Instance* c = Start("c");
  ASSERT_TRUE(a && b && c);
  ASSERT_GE(WaitSettled({a, b, c}, nullptr), 0);

  // Some thousands of orders, so that a restore in full would show.
  constexpr int kLoaded = 3000;
  std::set<std::string> loaded_ids;
  {
    auto producer = MakeProducer(bootstrap_);
    ASSERT_NE(producer, nullptr);
    for (int i = 0; i < kLoaded; ++i) {
      const std::string id = "l-" + std::to_string(i);
      loaded_ids.insert("lc-" + std::to_string(i));
      Produce(producer.get(), names_.commands, id,
              CreateOrder(id, "p-" + std::to_string(i % 4), 1 + i % 3, "lc-" + std::to_string(i)));
    }
    ASSERT_TRUE(producer->Flush(std::chrono::seconds(30)).ok());
  }
  size_t seen = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        seen = ScanAll(a->http, "orders", 1000).items.size();
        return seen >= static_cast<size_t>(kLoaded);
      },
      std::chrono::seconds(120)))
      << "only " << seen << " of " << kLoaded << " orders processed";

  // Every task with stores that one instance runs, the two others keep a
  // copy of, and each says so in GET /instances.
  std::string why;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Instance* i : {a, b, c}) {
          json listed = ParseJson(HttpRequest(i->http, "GET", "/instances").body);
          if (!listed.is_object() || listed["instances"].size() != 3) {
            why = i->name + " does not list three instances";
            return false;
          }
          std::map<std::string, int> copies;
          for (const json& e : listed["instances"]) {
            if (e["standby_tasks"].empty()) {
              why = i->name + " lists no standby task of " + e.value("id", "");
              return false;
            }
            for (const json& t : e["standby_tasks"]) copies[t.get<std::string>()]++;
          }
          for (const auto& [task, n] : copies) {
            if (n != 2) {
              why = i->name + ": task " + task + " has " + std::to_string(n) + " standby(s)";
              return false;
            }
          }
        }
        return true;
      },
      std::chrono::seconds(60)))
      << why;
  Layout layout;
  ASSERT_GE(WaitSettled({a, b, c}, &layout), 0);

  // What a restore in full of b's partitions would read: the records of
  // their changelogs (as they are before the kill; more come under load).
  long long changelog_records = 0;
  for (const std::string& store : kStores) {
    std::set<int> held;
    for (const auto& [p, who] : layout.holder[store]) {
      if (who == b) held.insert(p);
    }
    for (const kafka::ConsumedRecord& r :
         ReadCommitted(bootstrap_, names_.app + "-" + store + "-changelog", 0,
                       std::chrono::seconds(60), std::chrono::seconds(2))) {
      if (held.count(r.partition)) ++changelog_records;
    }
  }
  ASSERT_GT(changelog_records, kLoaded / 3) << "b holds too little to tell";

  KafkaCommands to_kafka(bootstrap_, names_.commands, 80);
  HttpCommands over_http("h-");
  over_http.SetTargets(Addresses({a, b, c}));
  to_kafka.Start();
  over_http.Start();
  std::this_thread::sleep_for(std::chrono::seconds(3));

  // A key in each partition of b's, of every store.
  std::vector<std::pair<std::string, std::string>> sample;
  for (const auto& [store, key] : SampleKeys(*a)) {
    if (layout.Holder(store, key) == b) sample.emplace_back(store, key);
  }
  ASSERT_FALSE(sample.empty());
  ASSERT_TRUE(AllAnswer({a, b, c}, sample, &why)) << "before the kill: " << why;

  // The orders a scan must still show after the kill (orders are never
  // deleted; more come under load).
  std::set<std::string> orders_before;
  {
    Scan before = ScanAll(a->http, "orders", 1000);
    ASSERT_EQ(before.status, 200) << before.body;
    for (const auto& [key, value] : before.items) orders_before.insert(key);
  }

  over_http.SetTargets(Addresses({a, c}));
  const long long restored_before = RestoredByStreamThreads(*a) + RestoredByStreamThreads(*c);
  const auto killed = Clock::now();
  b->child->Kill(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(b->child->exit_status()));
  std::map<std::string, int> tally;
  std::vector<std::string> dishonest;
  int rounds = 0;
  const bool keys_back = WaitFor(
      [&] {
        ++rounds;
        return AllAnswer({a, c}, sample, &why, &tally, &dishonest, /*scans=*/false);
      },
      std::chrono::seconds(60));
  const long long keys_ms = MsSince(killed);
  ASSERT_TRUE(keys_back) << "60 s after kill -9 of b, still " << why;
  // Who answered: a standby copy, or already the new owner.
  int from_standby = 0;
  for (const Instance* i : {a, c}) {
    for (const auto& [store, key] : sample) {
      HttpResult r = HttpRequest(i->http, "GET", "/stores/" + store + "/keys/" + key);
      if (Header(r, "kcqrs-standby") == "true") ++from_standby;
    }
  }
  // A scan that allows standby data (Kcqrs-Standby-Ok) reads b's
  // partitions from the copies: every order from both survivors, without
  // waiting for the group.
  std::string scan_why;
  int standby_pages = 0;
  int scan_rounds = 0;
  const bool scans_from_copies = WaitFor(
      [&] {
        ++scan_rounds;
        standby_pages = 0;
        for (const Instance* i : {a, c}) {
          Scan s = ScanAll(i->http, "orders", 1000, {{"Kcqrs-Standby-Ok", "1"}});
          if (s.status != 200) {
            scan_why = i->name + " answered " + std::to_string(s.status) + ": " + s.body;
            return false;
          }
          std::set<std::string> keys;
          for (const auto& [key, value] : s.items) keys.insert(key);
          for (const std::string& key : orders_before) {
            if (!keys.count(key)) {
              scan_why = i->name + ": the scan lacks order " + key;
              return false;
            }
          }
          standby_pages += s.standby_pages;
        }
        return true;
      },
      std::chrono::seconds(60));
  const long long standby_scan_ms = MsSince(killed);
  ASSERT_TRUE(scans_from_copies) << "60 s after kill -9 of b, a scan with Kcqrs-Standby-Ok: "
                                 << scan_why;
  std::printf(
      "kill -9: a scan with Kcqrs-Standby-Ok showed all %zu orders from both survivors after "
      "%lld ms (%d rounds; %d pages marked Kcqrs-Standby)\n",
      orders_before.size(), standby_scan_ms, scan_rounds, standby_pages);
  RecordProperty("kill9_standby_until_standby_ok_scans_answer_ms",
                 static_cast<int>(standby_scan_ms));
  EXPECT_LE(standby_scan_ms, 5000 * kSlowdown)
      << "standby copies should answer a scan for the dead holder";
  EXPECT_GT(standby_pages, 0) << "the scans did not say they read standby copies";

  // Scans without Kcqrs-Standby-Ok merge every partition's owner; they
  // wait for the group. The keys are asked on: answerable once, they stay
  // answerable while their tasks move to the survivors (a copy answers
  // while its owner restores).
  std::map<std::string, int> moving;
  const bool all_back =
      WaitFor([&] { return AllAnswer({a, c}, sample, &why, &moving, &dishonest); },
              std::chrono::seconds(60));
  int keys_unanswered = 0;
  for (const auto& [what, n] : moving) {
    if (what.find("partitions-unavailable") == std::string::npos) keys_unanswered += n;
    tally[what] += n;
  }
  const long long all_ms = MsSince(killed);
  ASSERT_TRUE(all_back) << "60 s after kill -9 of b, still " << why;
  std::string answers;
  for (const auto& [what, n] : tally) answers += " " + std::to_string(n) + " x " + what + ";";
  std::printf(
      "kill -9 of 1 of 3 with 2 standbys: %zu keys of b's partitions answerable from both "
      "survivors after %lld ms (%d rounds; %d of %zu answers then from a standby copy); "
      "scans too after %lld ms; answers other than 200 meanwhile:%s\n",
      sample.size(), keys_ms, rounds, from_standby, 2 * sample.size(), all_ms, answers.c_str());
  RecordProperty("kill9_standby_until_keys_answerable_ms", static_cast<int>(keys_ms));
  RecordProperty("kill9_standby_until_scans_answer_ms", static_cast<int>(all_ms));
  EXPECT_LE(keys_ms, 5000) << "a standby copy should answer for the dead holder at once";
  std::printf("key lookups not answered 200 after the first answer, until scans answer: %d\n",
              keys_unanswered);
  EXPECT_EQ(keys_unanswered, 0) << "a key of b's went unanswered while its task moved";
  EXPECT_TRUE(dishonest.empty()) << dishonest.size() << " answers, the first: "
                                 << (dishonest.empty() ? "" : dishonest.front());

  ASSERT_GE(WaitSettled({a, c}, nullptr), 0);
  const long long restored =
      RestoredByStreamThreads(*a) + RestoredByStreamThreads(*c) - restored_before;
  std::printf(
      "the survivors restored %lld records (GET /stats totals.restored_records) to take b's "
      "tasks over, whose changelogs held %lld before the kill\n",
      restored, changelog_records);
  RecordProperty("kill9_standby_records_restored", static_cast<int>(restored));
  RecordProperty("kill9_standby_changelog_records", static_cast<int>(changelog_records));
  EXPECT_GE(restored, 0);
  EXPECT_LT(restored * 10, changelog_records)
      << "the new owners restored from the changelogs, not from their standby copies";

  std::this_thread::sleep_for(std::chrono::seconds(2));
  to_kafka.Stop();
  over_http.Stop();
  EXPECT_EQ(over_http.failure(), "");
  std::set<std::string> ids = to_kafka.command_ids();
  for (const std::string& id : over_http.command_ids()) ids.insert(id);
  ids.insert(loaded_ids.begin(), loaded_ids.end());
  std::printf("loaded %d orders; sent %zu records to Kafka, %d commands over HTTP (%d sent again)\n",
              kLoaded, to_kafka.sent(), over_http.taken(), over_http.resent());
  ExpectOneApplication({a, c}, ids);
}

TEST_F(ScaleOutTest, ScaleOneToThreeToOneWhileCommandsFlow) {
  Instance* a = Start("a");
  ASSERT_NE(a, nullptr);
  ASSERT_GE(WaitSettled({a}, nullptr), 0);

  KafkaCommands to_kafka(bootstrap_, names_.commands, 80);
  HttpCommands over_http("h-");
  over_http.SetTargets(Addresses({a}));
  to_kafka.Start();
  over_http.Start();
  std::this_thread::sleep_for(std::chrono::seconds(3));

  // 1 -> 3.
  const auto scaling = Clock::now();
  Instance* b = Start("b");
  Instance* c = Start("c");
  ASSERT_TRUE(b && c);
  Layout layout;
  ASSERT_GE(WaitSettled({a, b, c}, &layout), 0);
  const long long up_ms = MsSince(scaling);
  std::printf("scale 1 -> 3: settled %lld ms after starting two more\n", up_ms);
  RecordProperty("scale_up_settled_ms", static_cast<int>(up_ms));
  over_http.SetTargets(Addresses({a, b, c}));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::string why;
  ASSERT_TRUE(AllAnswer({a, b, c}, SampleKeys(*a), &why)) << why;

  // 3 -> 1, one clean stop at a time. Each is timed from SIGTERM until a
  // command of a partition it held is decided by a survivor (the same
  // command id posted again until then: decided once), and until every
  // key is answerable from the survivors.
  std::vector<Instance*> running = {a, b, c};
  for (Instance* leaving : {c, b}) {
    std::string key;
    for (int j = 0; j < 1000 && key.empty(); ++j) {
      const std::string k = "s-" + leaving->name + "-" + std::to_string(j);
      if (layout.Holder("order-aggregates", k) == leaving) key = k;
    }
    ASSERT_FALSE(key.empty()) << leaving->name << " holds no partition of order-aggregates";
    running.erase(std::find(running.begin(), running.end(), leaving));
    over_http.SetTargets(Addresses(running));
    const std::vector<std::pair<std::string, std::string>> sample = SampleKeys(*a);

    const auto stopping = Clock::now();
    leaving->child->Signal(SIGTERM);
    long long exited_ms = -1, decided_ms = -1, answerable_ms = -1;
    int tries = 0;
    std::map<std::string, int> tally;  // answers to the command and to the keys
    std::vector<std::string> dishonest;
    const std::string body = CreateOrder(key, "p-2", 2, "stop-" + leaving->name);
    const bool done = WaitFor(
        [&] {
          if (exited_ms < 0 && !leaving->child->Running()) exited_ms = MsSince(stopping);
          if (decided_ms < 0) {
            ++tries;
            HttpResult r = HttpRequest(running[tries % running.size()]->http, "POST",
                                       "/commands/order?wait=true&timeout_ms=1000", body);
            // Decided, and by a survivor: should the leaving instance have
            // decided it on its way out, the survivor that took the
            // partition over answers the same outcome once it holds it.
            const std::string by = Header(r, "kcqrs-served-by");
            json answer = ParseJson(r.body);
            tally["command " + std::to_string(r.status) +
                  (answer.is_object() && answer.contains("decided") ? " decided=" +
                   answer["decided"].dump() : "")]++;
            // Not decided yet is 202 (written to Kafka by the instance
            // asked) or 503 with the command id; a 409 would be this command
            // id decided a second time (already_exists), anything else
            // not an answer a client can act on.
            if (r.status != 200 && r.status != 202 &&
                !(r.status == 503 && answer.is_object() && answer.contains("commandId"))) {
              dishonest.push_back("command: " + std::to_string(r.status) + " " + r.body);
            }
            if (r.status == 200 && !by.empty() && by != leaving->id) {
              decided_ms = MsSince(stopping);
            }
          }
          // Once it has exited, every answer is a survivor's.
          if (exited_ms >= 0 && answerable_ms < 0 && AllAnswer(running, sample, &why, &tally, &dishonest)) {
            answerable_ms = MsSince(stopping);
          }
          return exited_ms >= 0 && decided_ms >= 0 && answerable_ms >= 0;
        },
        std::chrono::seconds(60));
    ASSERT_TRUE(done) << leaving->name << " stopping: exited " << exited_ms << " ms, decided "
                      << decided_ms << " ms, answerable " << answerable_ms << " ms; " << why;
    EXPECT_TRUE(WIFEXITED(leaving->child->exit_status()) &&
                WEXITSTATUS(leaving->child->exit_status()) == 0)
        << leaving->name << " did not stop cleanly";
    std::printf(
        "clean stop of %s (%zu left): exited after %lld ms; a command of its partition "
        "decided elsewhere after %lld ms (%d posts); every key answerable after %lld ms\n",
        leaving->name.c_str(), running.size(), exited_ms, decided_ms, tries, answerable_ms);
    RecordProperty("clean_stop_" + leaving->name + "_until_processed_elsewhere_ms",
                   static_cast<int>(decided_ms));
    std::string answers;
    for (const auto& [what, n] : tally) answers += " " + std::to_string(n) + " x " + what + ";";
    std::printf("answers meanwhile:%s\n", answers.c_str());
    EXPECT_TRUE(dishonest.empty()) << dishonest.size() << " answers, the first: "
                                   << (dishonest.empty() ? "" : dishonest.front());
    Layout now;
    ASSERT_GE(WaitSettled(running, &now), 0);
    layout = now;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }

  to_kafka.Stop();
  over_http.Stop();
  EXPECT_EQ(over_http.failure(), "");
  std::set<std::string> ids = to_kafka.command_ids();
  for (const std::string& id : over_http.command_ids()) ids.insert(id);
  ids.insert("stop-c");
  ids.insert("stop-b");
  std::printf("sent %zu records to Kafka, %d commands over HTTP (%d sent again)\n",
              to_kafka.sent(), over_http.taken(), over_http.resent());
  ExpectOneApplication({a}, ids);
}

}  // namespace
}  // namespace kcqrs
