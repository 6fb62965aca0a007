// kbench: the benchmark harness of bench/WORKLOADS.md. Generates the input
// topics, computes the expected outcome, checks a system's output against it,
// offers load at a fixed rate, measures end-to-end latency, and watches a
// consumer group's progress. Every subcommand prints one line of JSON to
// stdout; errors go to stderr with exit code 1 (README.md lists the usage).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kafka_util.h"
#include "workloads.h"

namespace kbench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kPartitions = 4;  // WORKLOADS.md: every topic has 4 partitions

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

void PrintJson(const json& j) { std::cout << j.dump() << std::endl; }

json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw Error(path + " is not JSON");
  return j;
}

void WriteJsonFile(const std::string& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error("cannot write " + path);
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string_view KeyOf(const rd_kafka_message_t& m) {
  return m.key ? std::string_view(static_cast<const char*>(m.key), m.key_len)
               : std::string_view();
}
std::string_view ValueOf(const rd_kafka_message_t& m) {
  return m.payload
             ? std::string_view(static_cast<const char*>(m.payload), m.len)
             : std::string_view();
}

// ---------------------------------------------------------------------------
// Producing.

// A producer of keyed records to one topic that counts what the broker
// acknowledged. Delivery reports are served on the calling thread (inside
// Send and Flush), so the counters need no synchronization.
class RecordProducer {
 public:
  RecordProducer(const std::string& bootstrap, const std::string& topic,
                 const Config& config) {
    rk_ = NewHandle(
        RD_KAFKA_PRODUCER, bootstrap, config, [this](rd_kafka_conf_t* conf) {
          rd_kafka_conf_set_opaque(conf, this);
          rd_kafka_conf_set_dr_msg_cb(conf, &RecordProducer::OnDelivery);
        });
    topic_.reset(rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr));
  }

  rd_kafka_t* handle() { return rk_.get(); }

  void Send(std::string_view key, std::string_view value) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_RKT(topic_.get()),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw Error(std::string("produce: ") + rd_kafka_err2str(err));
      }
      // The local queue is full: wait for batches to be acknowledged.
      rd_kafka_poll(rk_.get(), 5);
    }
    bytes_ += key.size() + value.size();
    if (++sent_ % 1024 == 0) rd_kafka_poll(rk_.get(), 0);
    if (failed_ > 0) throw Error("delivery failed: " + first_error_);
  }

  void Poll() { rd_kafka_poll(rk_.get(), 0); }

  void Flush() {
    while (rd_kafka_outq_len(rk_.get()) > 0) {
      rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), 60000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR &&
          err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
        throw Error(std::string("flush: ") + rd_kafka_err2str(err));
      }
    }
    if (failed_ > 0) {
      throw Error(std::to_string(failed_) +
                  " records failed, first: " + first_error_);
    }
  }

  uint64_t sent() const { return sent_; }
  uint64_t acked() const { return acked_; }
  uint64_t failed() const { return failed_; }
  uint64_t bytes() const { return bytes_; }

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m,
                         void* opaque) {
    auto* self = static_cast<RecordProducer*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->acked_;
    } else if (self->failed_++ == 0) {
      self->first_error_ = rd_kafka_err2str(m->err);
    }
  }

  Handle rk_;
  Topic topic_;
  uint64_t sent_ = 0;
  uint64_t acked_ = 0;
  uint64_t failed_ = 0;
  uint64_t bytes_ = 0;
  std::string first_error_;
};

// Bulk loading: large batches, no compression (WORKLOADS.md), and the same
// murmur2 partitioner as Kafka's Java clients so that every system sees the
// same keys in the same partitions.
Config BulkProducerConfig() {
  return {{"acks", "all"},
          {"enable.idempotence", "true"},
          {"compression.type", "none"},
          {"partitioner", "murmur2_random"},
          {"linger.ms", "20"},
          {"batch.size", "1000000"},
          {"batch.num.messages", "100000"},
          {"queue.buffering.max.messages", "1000000"},
          {"queue.buffering.max.kbytes", "1048576"}};
}

// Makes sure the topic exists with 4 partitions and, unless appending, is
// empty, so that a rerun does not silently double the input.
bool PrepareInputTopic(rd_kafka_t* rk, const std::string& topic, int partitions,
                       bool append) {
  bool created = EnsureTopic(rk, topic, partitions);
  if (!append && !created) {
    int64_t records = 0;
    for (const Watermark& w : Watermarks(rk, topic)) records += w.high - w.low;
    if (records > 0) {
      throw Error("topic " + topic + " already holds " +
                  std::to_string(records) +
                  " records; delete it first (or pass --append)");
    }
  }
  return created;
}

struct GenOptions {
  std::string topic;
  uint64_t count = 0;  // records, or orders for the orders workloads
  std::string bootstrap;
  uint64_t start = 0;
  int partitions = kPartitions;
  bool append = false;
};

// Produces `count` records made by `make(i, key, value)` and prints the
// summary.
int Generate(
    const GenOptions& o, const char* workload,
    const std::function<void(uint64_t, std::string*, std::string*)>& make) {
  RecordProducer producer(o.bootstrap, o.topic, BulkProducerConfig());
  bool created =
      PrepareInputTopic(producer.handle(), o.topic, o.partitions, o.append);
  const auto start = Clock::now();
  std::string key, value;
  for (uint64_t i = 0; i < o.count; ++i) {
    make(i, &key, &value);
    producer.Send(key, value);
  }
  producer.Flush();
  const double seconds = SecondsSince(start);
  PrintJson({{"workload", workload},
             {"topic", o.topic},
             {"records", producer.acked()},
             {"bytes", producer.bytes()},
             {"created_topic", created},
             {"seconds", Round3(seconds)},
             {"records_per_s",
              std::llround(static_cast<double>(producer.acked()) / seconds)}});
  return 0;
}

int GenStateless(const GenOptions& o) {
  return Generate(o, "stateless",
                  [](uint64_t i, std::string* k, std::string* v) {
                    StatelessRecord(i, k, v);
                  });
}

int GenOrders(const GenOptions& o) {
  const OrderNaming naming;
  const uint64_t orders = o.count;
  GenOptions g = o;
  g.count = orders * 10;
  // Step-major: all orders' step 0, then step 1, ...
  return Generate(g, "orders", [&](uint64_t i, std::string* k, std::string* v) {
    OrderCommand c =
        OrderStep(naming, i % orders, static_cast<int>(i / orders));
    *k = c.order_id;
    *v = CommandValue(c);
  });
}

int GenRecovery(GenOptions o) {
  if (o.start > 0) o.append = true;  // a continuation of an earlier load
  const uint64_t first = o.start;
  return Generate(o, "recovery",
                  [&](uint64_t i, std::string* k, std::string* v) {
                    OrderCommand c = RecoveryCommand(first + i);
                    *k = c.order_id;
                    *v = CommandValue(c);
                  });
}

// ---------------------------------------------------------------------------
// Expected outcomes.

json ExpectedStateless(uint64_t records) {
  Digest input, output;
  std::string key, value;
  json out;
  for (uint64_t n = 0; n < records; ++n) {
    StatelessRecord(n, &key, &value);
    input.Add(key, value);
    if (StatelessTransform(n, &out)) output.Add(key, out.dump());
  }
  return {{"workload", "stateless"},
          {"records", records},
          {"output", {{"count", output.count()}, {"digest", output.Hex()}}},
          {"input", {{"count", input.count()}, {"digest", input.Hex()}}}};
}

// "PREFIX:SENT" of --offered.
OfferedRun ParseOffered(const std::string& spec) {
  const size_t colon = spec.rfind(':');
  OfferedRun run;
  if (colon == std::string::npos || colon == 0) {
    throw Error("--offered " + spec + ": expected PREFIX:SENT");
  }
  run.prefix = spec.substr(0, colon);
  const std::string sent = spec.substr(colon + 1);
  if (sent.empty() ||
      sent.find_first_not_of("0123456789") != std::string::npos) {
    throw Error("--offered " + spec + ": SENT must be a count, not '" + sent +
                "'");
  }
  run.sent = std::stoull(sent);
  return run;
}

int Expect(const std::string& workload, uint64_t count,
           const std::string& out_path, uint64_t recovery = 0,
           const std::vector<std::string>& offered = {}) {
  const auto start = Clock::now();
  json expected;
  if (workload == "orders") {
    std::vector<OfferedRun> runs;
    for (const std::string& spec : offered) runs.push_back(ParseOffered(spec));
    expected = ExpectedCommands(count, recovery, runs);
  } else {
    expected = ExpectedStateless(count);
  }
  WriteJsonFile(out_path, expected);
  json summary = expected;
  summary["out"] = out_path;
  summary["seconds"] = Round3(SecondsSince(start));
  PrintJson(summary);
  return 0;
}

// ---------------------------------------------------------------------------
// Checks.

// Collects "what: expected X, got Y" lines.
class Comparison {
 public:
  template <typename T>
  void Equal(const std::string& what, const T& expected, const T& got) {
    if (!(expected == got)) {
      mismatches_.push_back(what + ": expected " + json(expected).dump() +
                            ", got " + json(got).dump());
    }
  }
  void Note(const std::string& mismatch) { mismatches_.push_back(mismatch); }
  // Every key of either map, compared as counts (a missing key counts 0).
  void Counts(const std::string& what, const json& expected, const json& got) {
    std::set<std::string> keys;
    for (auto it = expected.begin(); it != expected.end(); ++it)
      keys.insert(it.key());
    for (auto it = got.begin(); it != got.end(); ++it) keys.insert(it.key());
    for (const std::string& k : keys) {
      Equal(what + "." + k, expected.value(k, uint64_t{0}),
            got.value(k, uint64_t{0}));
    }
  }
  bool ok() const { return mismatches_.empty(); }
  const std::vector<std::string>& mismatches() const { return mismatches_; }

 private:
  std::vector<std::string> mismatches_;
};

int CheckStateless(const std::string& bootstrap, const std::string& topic,
                   const std::string& expected_path, bool copy, int timeout_s) {
  json expected = ReadJsonFile(expected_path);
  if (expected.value("workload", "") != "stateless") {
    throw Error(expected_path +
                " is not an expected outcome of the stateless workload");
  }
  const json& want = expected.at(copy ? "input" : "output");
  const auto start = Clock::now();
  Digest digest;
  uint64_t unparseable = 0;
  Handle probe = NewHandle(RD_KAFKA_PRODUCER, bootstrap, {});
  Comparison cmp;
  if (PartitionCount(probe.get(), topic) == 0) {
    cmp.Note("topic " + topic + " does not exist");
  } else {
    ReadToEnd(
        bootstrap, {topic},
        [&](const rd_kafka_message_t& m) {
          if (copy) {
            // The raw pipe must copy bytes, so bytes are compared.
            digest.Add(KeyOf(m), ValueOf(m));
            return;
          }
          try {
            digest.Add(KeyOf(m), CanonicalJson(ValueOf(m)));
          } catch (const std::invalid_argument&) {
            ++unparseable;
          }
        },
        std::chrono::seconds(timeout_s));
  }
  cmp.Equal("count", want.at("count").get<uint64_t>(), digest.count());
  cmp.Equal("digest", want.at("digest").get<std::string>(), digest.Hex());
  cmp.Equal("unparseable", uint64_t{0}, unparseable);
  PrintJson({{"ok", cmp.ok()},
             {"mismatches", cmp.mismatches()},
             {"topic", topic},
             {"mode", copy ? "copy" : "transform"},
             {"count", digest.count()},
             {"digest", digest.Hex()},
             {"expected", want},
             {"seconds", Round3(SecondsSince(start))}});
  return cmp.ok() ? 0 : 1;
}

struct CheckOrdersOptions {
  std::string bootstrap;
  std::string run;
  std::string app_id;
  std::string expected;
  int timeout_s = 300;
};

// The headers of a record, in order.
OrdersHeaderCheck::Headers HeadersOf(const rd_kafka_message_t& m) {
  OrdersHeaderCheck::Headers out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(&m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return out;  // none
  }
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    if (value == nullptr) {
      out.emplace_back(name, std::nullopt);
    } else {
      out.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
  }
  return out;
}

int CheckOrders(const CheckOrdersOptions& o) {
  json expected = ReadJsonFile(o.expected);
  if (expected.value("workload", "") != "orders") {
    throw Error(o.expected +
                " is not an expected outcome of the orders workload");
  }
  const auto start = Clock::now();
  const std::string events_topic = o.run + ".orders.events";
  const std::string rejections_topic = o.run + ".orders.rejections";
  const std::string orders_changelog = o.app_id + "-orders-changelog";
  const std::string totals_changelog = o.app_id + "-product_totals-changelog";

  Comparison cmp;
  Handle probe = NewHandle(RD_KAFKA_PRODUCER, o.bootstrap, {});
  std::vector<std::string> topics;
  for (const std::string& t :
       {events_topic, rejections_topic, orders_changelog, totals_changelog}) {
    if (PartitionCount(probe.get(), t) == 0) {
      cmp.Note("topic " + t + " does not exist");
    } else {
      topics.push_back(t);
    }
  }
  probe.reset();

  std::map<std::string, uint64_t> by_type, by_code;
  Digest events, rejections;
  ChangelogFold orders_store, totals_store;
  OrdersHeaderCheck headers;
  uint64_t unparseable = 0;
  const uint64_t read = ReadToEnd(
      o.bootstrap, topics,
      [&](const rd_kafka_message_t& m) {
        const std::string topic = rd_kafka_topic_name(m.rkt);
        const std::string_view key = KeyOf(m);
        if (topic == orders_changelog || topic == totals_changelog) {
          std::string value(ValueOf(m));
          (topic == orders_changelog ? orders_store : totals_store)
              .Put(key, m.payload ? &value : nullptr);
          return;
        }
        json v = json::parse(ValueOf(m), nullptr, false);
        if (v.is_discarded() || !v.is_object()) {
          ++unparseable;
          return;
        }
        if (topic == events_topic) {
          ++by_type[v.value("type", "<none>")];
          OrdersModel::AddEvent(&events, key, v);
          headers.Event(topic, m.partition, m.offset, key, v, HeadersOf(m));
        } else {
          ++by_code[v.value("code", "<none>")];
          headers.Rejection(topic, m.partition, m.offset, key, v, HeadersOf(m));
          rejections.Add(
              key, Canonicalize(OrdersModel::RejectionIdentity(v)).dump());
        }
      },
      std::chrono::seconds(o.timeout_s));

  json got_stores;
  try {
    got_stores = {{"orders", orders_store.Summary()},
                  {"product_totals", totals_store.Summary()}};
  } catch (const std::invalid_argument& e) {
    cmp.Note(std::string("a changelog value is not JSON: ") + e.what());
    got_stores = {{"orders", {{"keys", 0}, {"digest", ""}}},
                  {"product_totals", {{"keys", 0}, {"digest", ""}}}};
  }
  const json& want_events = expected.at("events");
  const json& want_rejections = expected.at("rejections");
  cmp.Equal("events.total", want_events.at("total").get<uint64_t>(),
            events.count());
  cmp.Counts("events.by_type", want_events.at("by_type"), json(by_type));
  cmp.Equal("events.digest", want_events.at("digest").get<std::string>(),
            events.Hex());
  // Headers (WORKLOADS.md §2): every bad record counts, the first few say
  // what was wrong where.
  cmp.Equal("headers.bad_records", uint64_t{0}, headers.bad_records());
  for (const std::string& p : headers.problems()) cmp.Note("headers: " + p);
  if (!want_events.contains("headers_digest")) {
    cmp.Note(o.expected + " has no events.headers_digest: it was made by an "
             "older kbench expect; run kbench expect again");
  } else {
    cmp.Equal("events.headers_digest",
              want_events.at("headers_digest").get<std::string>(),
              headers.event_headers().Hex());
  }
  cmp.Equal("rejections.total", want_rejections.at("total").get<uint64_t>(),
            rejections.count());
  cmp.Counts("rejections.by_code", want_rejections.at("by_code"),
             json(by_code));
  cmp.Equal("rejections.digest",
            want_rejections.at("digest").get<std::string>(), rejections.Hex());
  for (const char* store : {"orders", "product_totals"}) {
    const json& want = expected.at("stores").at(store);
    const json& got = got_stores.at(store);
    cmp.Equal(std::string("stores.") + store + ".keys",
              want.at("keys").get<uint64_t>(), got.at("keys").get<uint64_t>());
    cmp.Equal(std::string("stores.") + store + ".digest",
              want.at("digest").get<std::string>(),
              got.at("digest").get<std::string>());
  }
  cmp.Equal("unparseable", uint64_t{0}, unparseable);

  PrintJson({{"ok", cmp.ok()},
             {"mismatches", cmp.mismatches()},
             {"events",
              {{"total", events.count()},
               {"by_type", by_type},
               {"digest", events.Hex()},
               {"headers_digest", headers.event_headers().Hex()}}},
             {"rejections",
              {{"total", rejections.count()},
               {"by_code", by_code},
               {"digest", rejections.Hex()}}},
             {"headers", {{"bad_records", headers.bad_records()}}},
             {"stores", got_stores},
             {"records_read", read},
             {"seconds", Round3(SecondsSince(start))}});
  return cmp.ok() ? 0 : 1;
}

// ---------------------------------------------------------------------------
// Offered load and latency.

struct OfferOptions {
  std::string bootstrap;
  std::string topic = "bench.orders.commands";
  std::string prefix = "L1";
  double rate = 5000;
  double seconds = 30;
  int linger_ms = 1;
};

int Offer(const OfferOptions& o) {
  Config config = {{"acks", "all"},
                   {"enable.idempotence", "true"},
                   {"compression.type", "none"},
                   {"partitioner", "murmur2_random"},
                   {"linger.ms", std::to_string(o.linger_ms)}};
  RecordProducer producer(o.bootstrap, o.topic, config);
  EnsureTopic(producer.handle(), o.topic, kPartitions);
  // Blocks of 100 orders, step-major within a block (OfferedCommand).
  auto command = [&](uint64_t i) { return OfferedCommand(o.prefix, i); };

  const uint64_t total =
      static_cast<uint64_t>(std::llround(o.rate * o.seconds));
  const auto start = Clock::now();
  const auto tick = std::chrono::milliseconds(1);
  uint64_t sent = 0, max_behind = 0;
  for (uint64_t t = 1; sent < total; ++t) {
    // Everything due by now: rate × elapsed, sent in 1 ms slices rather than a
    // second's worth at once, so the offered load is smooth.
    const double elapsed = SecondsSince(start);
    const uint64_t due =
        std::min(total, static_cast<uint64_t>(elapsed * o.rate));
    if (due > sent) max_behind = std::max(max_behind, due - sent);
    while (sent < due) {
      OrderCommand c = command(sent);
      producer.Send(c.order_id, CommandValue(c));
      ++sent;
    }
    producer.Poll();
    std::this_thread::sleep_until(start + t * tick);
  }
  const double send_seconds = SecondsSince(start);
  producer.Flush();
  PrintJson({{"topic", o.topic},
             {"prefix", o.prefix},
             {"target_rate", o.rate},
             {"seconds", Round3(send_seconds)},
             {"sent", sent},
             {"acked", producer.acked()},
             {"orders", (sent + 9) / 10},
             {"achieved_rate",
              std::llround(static_cast<double>(sent) / send_seconds)},
             {"max_burst", max_behind}});
  return producer.acked() == sent ? 0 : 1;
}

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct LatencyOptions {
  std::string bootstrap;
  std::string topics;
  double seconds = 60;
  uint64_t expect = 0;
  bool from_beginning = false;
  std::string prefix;  // only outcomes of orders o-<prefix>-… count
};

int Latency(const LatencyOptions& o) {
  Handle consumer = NewHandle(RD_KAFKA_CONSUMER, o.bootstrap,
                              {{"group.id", PrivateGroupId("latency")},
                               {"isolation.level", "read_committed"},
                               {"enable.auto.commit", "false"},
                               {"fetch.wait.max.ms", "5"},
                               {"fetch.error.backoff.ms", "5"}});
  rd_kafka_poll_set_consumer(consumer.get());
  const std::vector<std::string> topics = SplitCommas(o.topics);
  PartitionList assignment(rd_kafka_topic_partition_list_new(16));
  for (const std::string& topic : topics) {
    // Assigned at the high watermarks of now, so only records written from
    // here on count.
    for (const Watermark& w : Watermarks(consumer.get(), topic)) {
      rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(),
                                        w.partition)
          ->offset = o.from_beginning ? w.low : w.high;
    }
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(consumer.get(), assignment.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(std::string("assign: ") + rd_kafka_err2str(err));
  std::cerr << "kbench latency: ready, reading " << o.topics << std::endl;

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::vector<double> samples;
  samples.reserve(1 << 20);
  uint64_t skipped = 0, other_prefix = 0;
  const std::string key_prefix = o.prefix.empty() ? "" : "o-" + o.prefix + "-";
  const auto start = Clock::now();
  while (!g_stop && SecondsSince(start) < o.seconds &&
         (o.expect == 0 || samples.size() < o.expect)) {
    Message m(rd_kafka_consumer_poll(consumer.get(), 50));
    if (!m) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      throw Error(std::string("consuming: ") +
                  rd_kafka_message_errstr(m.get()));
    }
    const double now_ms = NowUs() / 1000.0;
    // Outcomes of other commands (a warm-up's tail) are not measured.
    if (!key_prefix.empty() && !KeyOf(*m).starts_with(key_prefix)) {
      ++other_prefix;
      continue;
    }
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(m.get(), &type);
    // Only the producer's clock says when the command was offered; a broker
    // append time would measure from the output's write instead.
    if (type != RD_KAFKA_TIMESTAMP_CREATE_TIME) {
      ++skipped;
      continue;
    }
    samples.push_back(now_ms - static_cast<double>(ts));
  }
  const double seconds = SecondsSince(start);
  CloseConsumer(std::move(consumer));

  std::sort(samples.begin(), samples.end());
  // Nearest-rank percentiles of the exact samples.
  auto pct = [&](double p) -> json {
    if (samples.empty()) return nullptr;
    size_t rank = static_cast<size_t>(
        std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    return Round3(samples[std::max<size_t>(rank, 1) - 1]);
  };
  double sum = 0;
  for (double s : samples) sum += s;
  PrintJson(
      {{"topics", topics},
       {"count", samples.size()},
       {"skipped_not_create_time", skipped},
       {"prefix", o.prefix},
       {"skipped_other_prefix", other_prefix},
       {"seconds", Round3(seconds)},
       {"min", samples.empty() ? json(nullptr) : json(Round3(samples.front()))},
       {"mean", samples.empty()
                    ? json(nullptr)
                    : json(Round3(sum / static_cast<double>(samples.size())))},
       {"p50", pct(50)},
       {"p90", pct(90)},
       {"p99", pct(99)},
       {"p999", pct(99.9)},
       {"max",
        samples.empty() ? json(nullptr) : json(Round3(samples.back()))}});
  return o.expect > 0 && samples.size() < o.expect ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Consumer group progress.

// Reads a group's committed offsets without joining it: the handle carries
// the group.id (OffsetFetch needs it) but never subscribes or commits, so the
// group's members see no rebalance.
class GroupWatcher {
 public:
  GroupWatcher(const std::string& bootstrap, const std::string& group,
               const std::string& topic)
      : topic_(topic) {
    // read_uncommitted: librdkafka then fetches offsets without
    // require_stable, which would make the broker hold the answer back while
    // a transactional commit is pending.
    rk_ = NewHandle(RD_KAFKA_CONSUMER, bootstrap,
                    {{"group.id", group},
                     {"enable.auto.commit", "false"},
                     {"isolation.level", "read_uncommitted"}});
    partitions_ = PartitionCount(rk_.get(), topic);
    if (partitions_ == 0) throw Error("topic " + topic + " does not exist");
  }
  ~GroupWatcher() { CloseConsumer(std::move(rk_)); }

  struct Progress {
    std::vector<int64_t> committed;  // 0 where nothing is committed
    std::vector<int64_t> end;
    int64_t committed_sum = 0;
    int64_t end_sum = 0;
    bool done() const { return committed == end; }
  };

  Progress Poll() {
    Progress p;
    PartitionList list(rd_kafka_topic_partition_list_new(partitions_));
    for (int32_t i = 0; i < partitions_; ++i) {
      rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), i);
    }
    // A group coordinator that moves or is still loading the offsets
    // (a broker just started, a leader elected) answers for a moment with
    // an error the next try does not get: asked again, for up to 30 s.
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0;; ++attempt) {
      err = rd_kafka_committed(rk_.get(), list.get(), 10000);
      const bool transient = err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
                             err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
                             err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
                             err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                             err == RD_KAFKA_RESP_ERR__TRANSPORT;
      if (!transient || attempt >= 300) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(std::string("committed offsets: ") + rd_kafka_err2str(err));
    }
    p.committed.assign(static_cast<size_t>(partitions_), 0);
    for (int i = 0; i < list->cnt; ++i) {
      const auto& tp = list->elems[i];
      if (tp.offset >= 0)
        p.committed[static_cast<size_t>(tp.partition)] = tp.offset;
    }
    p.end = EndOffsets(rk_.get(), topic_, partitions_);
    for (int64_t c : p.committed) p.committed_sum += c;
    for (int64_t e : p.end) p.end_sum += e;
    return p;
  }

 private:
  Handle rk_;
  std::string topic_;
  int partitions_ = 0;
};

int Lag(const std::string& bootstrap, const std::string& group,
        const std::string& topic) {
  GroupWatcher watcher(bootstrap, group, topic);
  GroupWatcher::Progress p = watcher.Poll();
  PrintJson({{"group", group},
             {"topic", topic},
             {"committed", p.committed_sum},
             {"end", p.end_sum},
             {"lag", p.end_sum - p.committed_sum},
             {"done", p.done()},
             {"partitions", {{"committed", p.committed}, {"end", p.end}}}});
  return 0;
}

// The low and high watermarks of each partition of each topic: how many
// offsets a restore of those partitions reads (transaction markers included).
int Offsets(const std::string& bootstrap, const std::vector<std::string>& topics) {
  Handle h = NewHandle(RD_KAFKA_PRODUCER, bootstrap, {});
  json out = json::object();
  for (const std::string& topic : topics) {
    json partitions = json::array();
    for (const Watermark& w : Watermarks(h.get(), topic)) {
      partitions.push_back({{"partition", w.partition}, {"low", w.low}, {"high", w.high}});
    }
    out[topic] = std::move(partitions);
  }
  PrintJson({{"topics", std::move(out)}});
  return 0;
}

// Waits until `group` has committed the end of every topic of `topics`. The
// first is the input; the others are topics the engine itself writes and
// reads again (events, repartition topics), so "done" means the whole
// pipeline has caught up, not only its first stage. Those may not exist yet
// when this starts: they are looked for again on every poll.
//
// With `progress`, every poll also prints {"progress":true,"ms","committed",
// "end"} of the input, so that a caller can sample CPU along the way and
// measure a window of the run.
int WaitDone(const std::string& bootstrap, const std::string& group,
             const std::vector<std::string>& topics, double timeout_s, int poll_ms,
             bool progress) {
  const int64_t start_ms = NowMs();
  std::vector<std::unique_ptr<GroupWatcher>> watchers(topics.size());
  json first_progress = nullptr;
  int64_t first_committed = 0;
  uint64_t polls = 0;
  const auto start = Clock::now();
  for (;;) {
    bool done = true;
    int64_t input_end = 0, input_committed = 0, all_committed = 0;
    json per_topic = json::object();
    for (size_t i = 0; i < topics.size(); ++i) {
      if (!watchers[i]) {
        try {
          watchers[i] = std::make_unique<GroupWatcher>(bootstrap, group, topics[i]);
        } catch (const Error&) {
          if (i == 0) throw;  // the input must exist
          done = false;
          per_topic[topics[i]] = "missing";
          continue;
        }
      }
      GroupWatcher::Progress p;
      try {
        p = watchers[i]->Poll();
      } catch (const Error&) {
        // A topic the engine has just created may not have a leader yet
        // (followed early with --progress): not done, asked again next poll.
        if (i == 0) throw;
        done = false;
        per_topic[topics[i]] = "unavailable";
        if (!progress) break;
        continue;
      }
      if (i == 0) {
        input_end = p.end_sum;
        input_committed = p.committed_sum;
      }
      per_topic[topics[i]] = {{"committed", p.committed_sum}, {"end", p.end_sum}};
      all_committed += p.committed_sum;
      // A topic read by a later stage is done only when the stage has
      // committed something on every partition that holds records.
      done = done && p.done();
      // Later topics are polled once the earlier are done, unless progress
      // is followed: then every stage's commits count.
      if (!done && !progress) break;
    }
    ++polls;
    const int64_t now = NowMs();
    if (progress) {
      PrintJson({{"progress", true},
                 {"ms", now},
                 {"committed", input_committed},
                 {"end", input_end},
                 {"all_committed", all_committed}});
    }
    if (first_progress.is_null() && input_committed > 0) {
      first_progress = now;
      first_committed = input_committed;
    }
    if (done || SecondsSince(start) > timeout_s) {
      PrintJson({{"group", group},
                 {"topics", per_topic},
                 {"done", done},
                 {"start_ms", start_ms},
                 {"first_progress_ms", first_progress},
                 {"first_committed", first_committed},
                 {"done_ms", done ? json(now) : json(nullptr)},
                 {"records", input_end},
                 {"committed", input_committed},
                 {"all_committed", all_committed},
                 {"polls", polls}});
      return done ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

// The records (read_committed; transaction markers are not records) of each
// topic, and, with `expect`, whether each holds exactly that many.
int Count(const std::string& bootstrap, const std::vector<std::string>& topics,
          int64_t expect, int timeout_s) {
  const auto start = Clock::now();
  Handle probe = NewHandle(RD_KAFKA_PRODUCER, bootstrap, {});
  Comparison cmp;
  std::vector<std::string> present;
  std::map<std::string, uint64_t> counts;
  for (const std::string& t : topics) {
    counts[t] = 0;
    if (PartitionCount(probe.get(), t) == 0) {
      cmp.Note("topic " + t + " does not exist");
    } else {
      present.push_back(t);
    }
  }
  probe.reset();
  if (!present.empty()) {
    ReadToEnd(
        bootstrap, present,
        [&](const rd_kafka_message_t& m) { ++counts[rd_kafka_topic_name(m.rkt)]; },
        std::chrono::seconds(timeout_s));
  }
  if (expect >= 0) {
    for (const auto& [t, n] : counts) {
      cmp.Equal("records of " + t, static_cast<uint64_t>(expect), n);
    }
  }
  PrintJson({{"ok", cmp.ok()},
             {"mismatches", cmp.mismatches()},
             {"counts", counts},
             {"expect", expect >= 0 ? json(expect) : json(nullptr)},
             {"seconds", Round3(SecondsSince(start))}});
  return cmp.ok() ? 0 : 1;
}

int Main(int argc, char** argv) {
  CLI::App app{"kbench: the benchmark harness of bench/WORKLOADS.md"};
  app.require_subcommand(1);
  std::string bootstrap;
  std::function<int()> run;

  auto add_bootstrap = [&](CLI::App* c) {
    c->add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")
        ->required();
  };

  // gen
  CLI::App* gen = app.add_subcommand("gen", "produce a workload's input topic");
  gen->require_subcommand(1);
  GenOptions gs, go, gr;
  gs.topic = "bench.stateless.in";
  gs.count = 2000000;
  go.topic = "bench.orders.commands";
  go.count = 100000;
  gr.topic = "bench.recovery.commands";
  gr.count = 1000000;
  auto gen_common = [&](CLI::App* c, GenOptions* o) {
    add_bootstrap(c);
    c->add_option("--topic", o->topic, "input topic")->capture_default_str();
    c->add_option("--partitions", o->partitions,
                  "partitions when creating the topic")
        ->capture_default_str();
    c->add_flag("--append", o->append,
                "allow producing into a non-empty topic");
  };
  CLI::App* gen_stateless =
      gen->add_subcommand("stateless", "bench.stateless.in");
  gen_common(gen_stateless, &gs);
  gen_stateless->add_option("--records", gs.count, "records")
      ->capture_default_str();
  gen_stateless->final_callback([&] {
    run = [&] {
      gs.bootstrap = bootstrap;
      return GenStateless(gs);
    };
  });
  CLI::App* gen_orders =
      gen->add_subcommand("orders", "bench.orders.commands (10 per order)");
  gen_common(gen_orders, &go);
  gen_orders->add_option("--orders", go.count, "orders")->capture_default_str();
  gen_orders->final_callback([&] {
    run = [&] {
      go.bootstrap = bootstrap;
      return GenOrders(go);
    };
  });
  CLI::App* gen_recovery =
      gen->add_subcommand("recovery", "bench.recovery.commands (1 per order)");
  gen_common(gen_recovery, &gr);
  gen_recovery->add_option("--orders", gr.count, "orders")
      ->capture_default_str();
  gen_recovery->add_option("--start", gr.start,
                           "first order number (implies --append)");
  gen_recovery->final_callback([&] {
    run = [&] {
      gr.bootstrap = bootstrap;
      return GenRecovery(gr);
    };
  });

  // expect
  CLI::App* expect =
      app.add_subcommand("expect", "write a workload's expected outcome");
  expect->require_subcommand(1);
  std::string expect_out;
  uint64_t expect_orders_n = 100000, expect_records_n = 2000000;
  CLI::App* expect_orders =
      expect->add_subcommand("orders", "the orders workload");
  expect_orders->add_option("--orders", expect_orders_n, "orders")
      ->capture_default_str();
  expect_orders->add_option("--out", expect_out, "expected.json")->required();
  uint64_t expect_recovery_n = 0;
  std::vector<std::string> expect_offered;
  expect_orders
      ->add_option("--recovery", expect_recovery_n,
                   "also recovery orders 0..N-1 (kbench gen recovery)")
      ->capture_default_str();
  expect_orders
      ->add_option("--offered", expect_offered,
                   "also the first SENT commands of kbench offer --prefix "
                   "PREFIX, as PREFIX:SENT (repeatable, comma-separated)")
      ->delimiter(',');
  expect_orders->callback([&] {
    run = [&] {
      return Expect("orders", expect_orders_n, expect_out, expect_recovery_n,
                    expect_offered);
    };
  });
  CLI::App* expect_stateless =
      expect->add_subcommand("stateless", "the stateless workload");
  expect_stateless->add_option("--records", expect_records_n, "records")
      ->capture_default_str();
  expect_stateless->add_option("--out", expect_out, "expected.json")
      ->required();
  expect_stateless->callback([&] {
    run = [&] { return Expect("stateless", expect_records_n, expect_out); };
  });

  // check
  CLI::App* check =
      app.add_subcommand("check", "compare a system's output to the expected");
  check->require_subcommand(1);
  CheckOrdersOptions co;
  CLI::App* check_orders =
      check->add_subcommand("orders", "events, rejections, changelogs");
  add_bootstrap(check_orders);
  check_orders
      ->add_option("--run", co.run,
                   "the run's topic prefix (<run>.orders.events)")
      ->required();
  check_orders
      ->add_option("--app-id", co.app_id,
                   "application.id (<id>-orders-changelog)")
      ->required();
  check_orders
      ->add_option("--expected", co.expected, "from kbench expect orders")
      ->required();
  check_orders->add_option("--timeout", co.timeout_s, "seconds")
      ->capture_default_str();
  check_orders->callback([&] {
    co.bootstrap = bootstrap;
    run = [&] { return CheckOrders(co); };
  });
  CLI::App* check_stateless =
      check->add_subcommand("stateless", "the output topic");
  std::string cs_topic, cs_expected;
  bool cs_copy = false;
  int cs_timeout = 300;
  add_bootstrap(check_stateless);
  check_stateless->add_option("--topic", cs_topic, "output topic")->required();
  check_stateless
      ->add_option("--expected", cs_expected, "from kbench expect stateless")
      ->required();
  check_stateless->add_flag(
      "--copy", cs_copy,
      "raw pipe: the output must equal the input byte for byte");
  check_stateless->add_option("--timeout", cs_timeout, "seconds")
      ->capture_default_str();
  check_stateless->callback([&] {
    run = [&] {
      return CheckStateless(bootstrap, cs_topic, cs_expected, cs_copy,
                            cs_timeout);
    };
  });

  // offer
  OfferOptions oo;
  CLI::App* offer =
      app.add_subcommand("offer", "produce orders commands at a fixed rate");
  add_bootstrap(offer);
  offer->add_option("--topic", oo.topic)->capture_default_str();
  offer->add_option("--rate", oo.rate, "commands per second")
      ->capture_default_str();
  offer->add_option("--seconds", oo.seconds)->capture_default_str();
  offer->add_option("--prefix", oo.prefix, "orders are o-<prefix>-%07d")
      ->capture_default_str();
  offer->add_option("--linger-ms", oo.linger_ms)->capture_default_str();
  offer->callback([&] {
    oo.bootstrap = bootstrap;
    run = [&] { return Offer(oo); };
  });

  // latency
  LatencyOptions lo;
  CLI::App* latency = app.add_subcommand(
      "latency", "now - CreateTime of records as they commit");
  add_bootstrap(latency);
  latency->add_option("--topics", lo.topics, "comma-separated")->required();
  bool from_now = true;
  latency->add_flag("--from-now", from_now,
                    "start at the end offsets (the default)");
  latency->add_flag("--from-beginning", lo.from_beginning,
                    "start at the beginning instead");
  latency->add_option("--seconds", lo.seconds, "stop after this long")
      ->capture_default_str();
  latency->add_option("--expect", lo.expect,
                      "stop after this many records (exit 1 if fewer)");
  latency->add_option("--prefix", lo.prefix,
                      "count only outcomes of orders o-<prefix>-… (the "
                      "measured kbench offer --prefix)");
  latency->callback([&] {
    lo.bootstrap = bootstrap;
    run = [&] { return Latency(lo); };
  });

  // create-topic
  std::string ct_topic;
  int ct_partitions = kPartitions;
  CLI::App* create =
      app.add_subcommand("create-topic", "create a topic unless it exists");
  add_bootstrap(create);
  create->add_option("--topic", ct_topic)->required();
  create->add_option("--partitions", ct_partitions)->capture_default_str();
  create->callback([&] {
    run = [&] {
      Handle h = NewHandle(RD_KAFKA_PRODUCER, bootstrap, {});
      const bool created = EnsureTopic(h.get(), ct_topic, ct_partitions);
      PrintJson({{"topic", ct_topic},
                 {"partitions", ct_partitions},
                 {"created", created}});
      return 0;
    };
  });

  // lag, wait-done
  std::string group, topic;
  CLI::App* lag = app.add_subcommand(
      "lag", "a group's committed offsets vs the end offsets");
  add_bootstrap(lag);
  lag->add_option("--group", group)->required();
  lag->add_option("--topic", topic)->required();
  lag->callback([&] { run = [&] { return Lag(bootstrap, group, topic); }; });
  double wait_timeout = 600;
  int poll_ms = 50;
  CLI::App* wait = app.add_subcommand(
      "wait-done", "wait until a group committed the topic's end");
  add_bootstrap(wait);
  wait->add_option("--group", group)->required();
  std::vector<std::string> wait_topics;
  wait->add_option("--topics,--topic", wait_topics,
                   "the input topic, then topics the engine writes and reads again")
      ->required()
      ->delimiter(',');
  wait->add_option("--timeout", wait_timeout, "seconds")->capture_default_str();
  wait->add_option("--poll-ms", poll_ms)->capture_default_str();
  bool wait_progress = false;
  wait->add_flag("--progress", wait_progress,
                 "print the input's committed offsets at every poll");
  wait->callback([&] {
    run = [&] {
      return WaitDone(bootstrap, group, wait_topics, wait_timeout, poll_ms,
                      wait_progress);
    };
  });

  std::vector<std::string> count_topics;
  int64_t count_expect = -1;
  int count_timeout = 300;
  CLI::App* count = app.add_subcommand(
      "count", "the committed records of topics (exit 1 unless --expect holds)");
  add_bootstrap(count);
  count->add_option("--topics,--topic", count_topics)->required()->delimiter(',');
  count->add_option("--expect", count_expect,
                    "records every topic must hold");
  count->add_option("--timeout", count_timeout, "seconds")->capture_default_str();
  count->callback([&] {
    run = [&] {
      return Count(bootstrap, count_topics, count_expect, count_timeout);
    };
  });

  std::vector<std::string> offsets_topics;
  CLI::App* offsets = app.add_subcommand(
      "offsets", "the low and high watermarks of topics' partitions");
  add_bootstrap(offsets);
  offsets->add_option("--topics,--topic", offsets_topics)->required()->delimiter(',');
  offsets->callback([&] { run = [&] { return Offsets(bootstrap, offsets_topics); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "kbench: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace
}  // namespace kbench

int main(int argc, char** argv) { return kbench::Main(argc, argv); }
