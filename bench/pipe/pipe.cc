// kbench_pipe: the raw librdkafka pipe, the floor under every engine's
// throughput (README.md). It consumes its source topics and produces copies
// of the records (key, value, timestamp, and headers where the engine's
// records carry them) to its output topics, committing every --commit-ms:
// with --mode eos inside transactions (consumer offsets sent to the
// transaction, as Kafka Streams' exactly_once_v2 does with its one producer
// per thread), with --mode alos by flushing the producer and then committing
// the offsets.
//
// Two shapes. `copy` (the stateless floor): each input record to the same
// partition of --output. `orders` (the orders floor): the Kafka record
// operations the orders topology does per command, as if every command were
// accepted (README.md counts them): a command becomes an event and an
// aggregate changelog record; an event, read back, becomes an orders
// changelog record and a re-keyed repartition record; that, read back,
// becomes a product_totals changelog record. `orders-fused`: the same
// records, but the `orders` view and the repartition record come from the
// command's own step instead of from its event read back, as a projection
// run in the aggregate's task would make them (and as the tuned Kafka
// Streams version does): one consume fewer per command.
//
// No parsing, no state, no recovery: an engine can only add work on top of
// this, so its throughput is an upper bound for theirs on the same broker.
// One thread owns both clients, as one stream thread does; librdkafka's own
// threads do the I/O.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "kafka_util.h"

namespace kbench {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct PipeOptions {
  std::string shape = "copy";
  std::string run;  // names the orders shape's topics: RUN.floor.*
  std::string bootstrap;
  std::string input;
  std::string output;
  std::string group;
  std::string mode = "eos";
  int commit_ms = 100;
  int linger_ms = 5;
  int batch = 10000;
  int batch_wait_ms = 5;
};

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using TxnError = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

void ThrowIf(rd_kafka_error_t* raw, const std::string& what) {
  TxnError e(raw);
  if (e) throw Error(what + ": " + rd_kafka_error_string(e.get()));
}

// The orders shape re-keys its repartition records by this many bytes of the
// value, as the orders topology re-keys by the product (a field of the
// event): the partitioner then hashes a key that varies per record.
constexpr size_t kRepartitionKeyBytes = 8;

class Pipe {
 public:
  explicit Pipe(const PipeOptions& o) : o_(o), eos_(o.mode == "eos") {}

  // An error ended the run: the consumer is closed here, while the members
  // its rebalance callback reads still exist, and without committing (the
  // producer may be fenced; the next run takes over from the last commit).
  ~Pipe() {
    failed_ = true;
    if (consumer_) CloseConsumer(std::move(consumer_));
  }

  int Run() {
    // The consumer's group is the application id: a fresh group starts at the
    // earliest offset of the preloaded input.
    consumer_ = NewHandle(
        RD_KAFKA_CONSUMER, o_.bootstrap,
        {{"group.id", o_.group},
         {"enable.auto.commit", "false"},
         {"enable.auto.offset.store", "false"},
         {"auto.offset.reset", "earliest"},
         {"isolation.level", eos_ ? "read_committed" : "read_uncommitted"}},
        [this](rd_kafka_conf_t* conf) {
          rd_kafka_conf_set_opaque(conf, this);
          rd_kafka_conf_set_rebalance_cb(conf, &Pipe::OnRebalance);
        });
    Config producer_config = {{"compression.type", "none"},
                              {"linger.ms", std::to_string(o_.linger_ms)},
                              {"queue.buffering.max.messages", "1000000"},
                              {"queue.buffering.max.kbytes", "1048576"}};
    if (eos_) {
      producer_config["transactional.id"] = o_.group + "-pipe";
    } else {
      producer_config["enable.idempotence"] = "true";
      producer_config["acks"] = "all";
    }
    producer_ =
        NewHandle(RD_KAFKA_PRODUCER, o_.bootstrap, producer_config,
                  [this](rd_kafka_conf_t* conf) {
                    rd_kafka_conf_set_opaque(conf, this);
                    rd_kafka_conf_set_dr_msg_cb(conf, &Pipe::OnDelivery);
                  });
    const int partitions = PartitionCount(producer_.get(), o_.input);
    if (partitions == 0)
      throw Error("input topic " + o_.input + " does not exist");
    // Outputs keep the input's partition numbers, so they need as many.
    if (o_.shape == "copy") {
      AddRoute(o_.input, Output(o_.output, partitions, Keying::kSame,
                                /*headers=*/true, /*compact=*/false));
    } else {
      const std::string prefix = o_.run + ".floor.";
      const std::string events = prefix + "events";
      const std::string repartition = prefix + "repartition";
      // The aggregate: its event (with the command's headers, as an event
      // carries the command's) and its stored state's changelog record.
      AddRoute(o_.input, Output(events, partitions, Keying::kSame, true, false));
      AddRoute(o_.input, Output(prefix + "aggregates-changelog", partitions,
                                Keying::kSame, false, true));
      // The projections of the events: `orders` (same key) and the
      // repartition for `product_totals` (keyed by the product), from the
      // events read back, or fused into the command's step.
      const std::string& projected = o_.shape == "orders-fused" ? o_.input : events;
      AddRoute(projected, Output(prefix + "orders-changelog", partitions,
                                 Keying::kSame, false, true));
      AddRoute(projected, Output(repartition, partitions, Keying::kValueSlice,
                                 true, false));
      // `product_totals` reading its repartition topic.
      AddRoute(repartition, Output(prefix + "totals-changelog", partitions,
                                   Keying::kSame, false, true));
    }
    if (eos_)
      ThrowIf(rd_kafka_init_transactions(producer_.get(), 60000),
              "init_transactions");

    PartitionList topics(
        rd_kafka_topic_partition_list_new(static_cast<int>(routes_.size())));
    for (const auto& [source, outputs] : routes_) {
      rd_kafka_topic_partition_list_add(topics.get(), source.c_str(),
                                        RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_poll_set_consumer(consumer_.get());
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(std::string("subscribe: ") + rd_kafka_err2str(err));
    }
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer_.get());
    std::vector<rd_kafka_message_t*> batch(static_cast<size_t>(o_.batch));

    const auto start = Clock::now();
    auto last_commit = start, last_report = start;
    uint64_t reported = 0;
    while (!g_stop) {
      const ssize_t n = rd_kafka_consume_batch_queue(
          queue, o_.batch_wait_ms, batch.data(), batch.size());
      for (ssize_t i = 0; i < n; ++i) {
        Message m(batch[static_cast<size_t>(i)]);
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            std::cerr << "kbench_pipe: consume: "
                      << rd_kafka_message_errstr(m.get()) << std::endl;
          }
          continue;
        }
        Forward(*m);
      }
      rd_kafka_poll(producer_.get(), 0);  // delivery reports
      if (delivery_failures_ > 0)
        throw Error("delivery failed: " + first_delivery_error_);
      const auto now = Clock::now();
      if (now - last_commit >= std::chrono::milliseconds(o_.commit_ms)) {
        Commit();
        last_commit = now;
      }
      if (now - last_report >= std::chrono::seconds(5)) {
        const double dt =
            std::chrono::duration<double>(now - last_report).count();
        std::cerr << "kbench_pipe: " << records_ << " input records, "
                  << static_cast<uint64_t>(
                         static_cast<double>(records_ - reported) / dt)
                  << "/s, " << consumed_ << " consumed, " << produced_
                  << " produced, " << commits_ << " commits of "
                  << MeanCommitMs() << " ms on average" << std::endl;
        last_report = now;
        reported = records_;
      }
    }
    // Signalled: hand over what is done. Closing the consumer revokes the
    // partitions, which then has nothing left to commit.
    Commit(/*final=*/true);
    next_offsets_.clear();
    committed_.clear();
    rd_kafka_queue_destroy(queue);
    CloseConsumer(std::move(consumer_));
    rd_kafka_flush(producer_.get(), 10000);
    routes_.clear();  // the topic handles go before their producer
    producer_.reset();
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << nlohmann::json{{"shape", o_.shape},
                                {"mode", o_.mode},
                                {"records", records_},
                                {"consumed", consumed_},
                                {"produced", produced_},
                                {"commits", commits_},
                                {"mean_commit_ms", MeanCommitMs()},
                                {"seconds", seconds}}
                     .dump()
              << std::endl;
    return 0;
  }

 private:
  enum class Keying {
    kSame,        // the record's key, to its partition number
    kValueSlice,  // re-keyed by a slice of the value; the partitioner decides
  };
  struct Route {
    Topic topic;
    Keying keying;
    bool headers;  // copies the consumed record's headers
  };

  // Creates `topic` unless it exists (compacted, as a changelog is, when
  // `compact`) and opens its handle once, so no send builds a topic name.
  Route Output(const std::string& topic, int partitions, Keying keying,
               bool headers, bool compact) {
    Config config;
    if (compact) config["cleanup.policy"] = "compact";
    EnsureTopic(producer_.get(), topic, partitions, config);
    return Route{
        Topic(rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr)),
        keying, headers};
  }

  void AddRoute(const std::string& source, Route output) {
    routes_[source].push_back(std::move(output));
  }

  void Forward(const rd_kafka_message_t& m) {
    if (eos_ && !in_transaction_) {
      ThrowIf(rd_kafka_begin_transaction(producer_.get()), "begin_transaction");
      in_transaction_ = true;
    }
    const char* source = rd_kafka_topic_name(m.rkt);
    auto route = routes_.find(source);
    if (route == routes_.end())
      throw Error(std::string("consumed a record of unknown topic ") + source);
    for (const Route& out : route->second) Produce(m, out);
    next_offsets_[{route->first, m.partition}] = m.offset + 1;
    ++consumed_;
    if (route->first == o_.input) ++records_;
  }

  void Produce(const rd_kafka_message_t& m, const Route& out) {
    rd_kafka_timestamp_type_t ts_type;
    const int64_t ts = rd_kafka_message_timestamp(&m, &ts_type);
    rd_kafka_headers_t* headers = nullptr;
    if (out.headers) {
      rd_kafka_headers_t* in_headers = nullptr;
      if (rd_kafka_message_headers(&m, &in_headers) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        headers = rd_kafka_headers_copy(in_headers);
      }
    }
    int32_t partition = m.partition;
    const void* key = m.key;
    size_t key_len = m.key_len;
    if (out.keying == Keying::kValueSlice) {
      partition = RD_KAFKA_PARTITION_UA;
      const size_t n = std::min(m.len, kRepartitionKeyBytes);
      key = static_cast<const char*>(m.payload) + (m.len - n) / 2;
      key_len = n;
    }
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_RKT(out.topic.get()),
          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, key_len),
          RD_KAFKA_V_VALUE(m.payload, m.len),
          RD_KAFKA_V_TIMESTAMP(ts >= 0 ? ts : 0), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;  // the producer owns the headers now
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (headers) rd_kafka_headers_destroy(headers);
        throw Error(std::string("produce to ") +
                    rd_kafka_topic_name(out.topic.get()) + ": " +
                    rd_kafka_err2str(err));
      }
      rd_kafka_poll(producer_.get(), 5);
    }
    ++produced_;
  }

  // Commits the records forwarded since the last commit, with their input
  // offsets. `final` (shutdown, revocation) waits for the offset commit in
  // alos mode too, since the partitions are about to be someone else's.
  void Commit(bool final = false) {
    // A transactional source (the orders shape reads back its own events)
    // ends each transaction with a marker that takes an offset but is never
    // delivered: "last record + 1" would stay one short of the end forever,
    // and `kbench wait-done` would never see the run done. Every record
    // consumed is forwarded at once, so a position beyond it has only
    // skipped markers (or aborted records): commit the position, as the
    // engines do (KAFKA-6607).
    PartitionList positions(rd_kafka_topic_partition_list_new(
        static_cast<int>(next_offsets_.size())));
    for (const auto& [where, offset] : next_offsets_) {
      rd_kafka_topic_partition_list_add(positions.get(), where.first.c_str(),
                                        where.second);
    }
    if (positions->cnt > 0 &&
        rd_kafka_position(consumer_.get(), positions.get()) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int i = 0; i < positions->cnt; ++i) {
        const rd_kafka_topic_partition_t& p = positions->elems[i];
        int64_t& next = next_offsets_[{p.topic, p.partition}];
        if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR && p.offset > next)
          next = p.offset;
      }
    }
    PartitionList offsets(rd_kafka_topic_partition_list_new(
        static_cast<int>(next_offsets_.size())));
    for (const auto& [where, offset] : next_offsets_) {
      auto done = committed_.find(where);
      if (done != committed_.end() && done->second == offset) continue;
      rd_kafka_topic_partition_list_add(offsets.get(), where.first.c_str(),
                                        where.second)
          ->offset = offset;
    }
    if (offsets->cnt == 0) return;
    const auto started = Clock::now();
    if (eos_ && !in_transaction_) {  // only markers were passed
      ThrowIf(rd_kafka_begin_transaction(producer_.get()), "begin_transaction");
      in_transaction_ = true;
    }
    if (eos_) {
      rd_kafka_consumer_group_metadata_t* group =
          rd_kafka_consumer_group_metadata(consumer_.get());
      rd_kafka_error_t* e = rd_kafka_send_offsets_to_transaction(
          producer_.get(), offsets.get(), group, -1);
      rd_kafka_consumer_group_metadata_destroy(group);
      // A floor needs no recovery: a failed transaction ends the run, and the
      // checker would see the gap.
      ThrowIf(e, "send_offsets_to_transaction");
      ThrowIf(rd_kafka_commit_transaction(producer_.get(), -1),
              "commit_transaction");
      in_transaction_ = false;
    } else {
      // At least once: the offsets are committed only after every record
      // before them is acknowledged.
      rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), 60000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw Error(std::string("flush: ") + rd_kafka_err2str(err));
      if (delivery_failures_ > 0)
        throw Error("delivery failed: " + first_delivery_error_);
      err = rd_kafka_commit(consumer_.get(), offsets.get(),
                            /*async=*/final ? 0 : 1);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw Error(std::string("commit: ") + rd_kafka_err2str(err));
    }
    for (int i = 0; i < offsets->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = offsets->elems[i];
      committed_[{p.topic, p.partition}] = p.offset;
    }
    ++commits_;
    commit_seconds_ +=
        std::chrono::duration<double>(Clock::now() - started).count();
  }

  double MeanCommitMs() const {
    return commits_ ? 1000.0 * commit_seconds_ / commits_ : 0.0;
  }

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions,
                          void* opaque) {
    auto* self = static_cast<Pipe*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, partitions);
      std::cerr << "kbench_pipe: assigned " << partitions->cnt << " partitions"
                << std::endl;
    } else {
      // What was forwarded from revoked partitions is committed while they
      // are still ours.
      if (!self->failed_) self->Commit(/*final=*/true);
      // The next owner commits these partitions from here on.
      self->next_offsets_.clear();
      self->committed_.clear();
      rd_kafka_assign(rk, nullptr);
    }
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m,
                         void* opaque) {
    auto* self = static_cast<Pipe*>(opaque);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        self->delivery_failures_++ == 0) {
      self->first_delivery_error_ = rd_kafka_err2str(m->err);
    }
  }

  const PipeOptions o_;
  const bool eos_;
  Handle consumer_;
  Handle producer_;
  // Source topic -> what each of its records becomes.
  std::map<std::string, std::vector<Route>, std::less<>> routes_;
  // (source topic, partition) -> offset to commit, and the offset last
  // committed, for the partitions consumed since the assignment.
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets_;
  std::map<std::pair<std::string, int32_t>, int64_t> committed_;
  bool in_transaction_ = false;
  bool failed_ = false;  // set when the run ends with an error
  uint64_t records_ = 0;  // input records (commands, in the orders shape)
  uint64_t consumed_ = 0;  // records of every source topic
  uint64_t produced_ = 0;
  uint64_t commits_ = 0;
  double commit_seconds_ = 0;  // time spent blocked in Commit()
  uint64_t delivery_failures_ = 0;
  std::string first_delivery_error_;
};

int Main(int argc, char** argv) {
  CLI::App app{
      "kbench_pipe: the raw librdkafka pipe, the throughput floor (copy input "
      "to output, or the orders topology's record operations)"};
  PipeOptions o;
  app.add_option("--shape", o.shape,
                 "copy: input to --output; orders: the orders topology's "
                 "Kafka record operations on RUN.floor.* topics; "
                 "orders-fused: the same, the projections fused into the "
                 "aggregate's step")
      ->check(CLI::IsMember({"copy", "orders", "orders-fused"}))
      ->capture_default_str();
  app.add_option("--run", o.run,
                 "orders shape: prefix of its topics (RUN.floor.events, ...)");
  app.add_option("--bootstrap", o.bootstrap, "Kafka bootstrap servers")
      ->required();
  app.add_option("--input", o.input, "input topic")->required();
  app.add_option("--output", o.output,
                 "copy shape: output topic (created like the input if absent)");
  app.add_option("--group", o.group,
                 "consumer group (and transactional.id prefix)")
      ->required();
  app.add_option("--mode", o.mode, "eos or alos")
      ->check(CLI::IsMember({"eos", "alos"}))
      ->capture_default_str();
  app.add_option("--commit-ms", o.commit_ms, "commit interval")
      ->capture_default_str();
  app.add_option("--linger-ms", o.linger_ms, "producer linger.ms")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "records per consume batch")
      ->capture_default_str();
  app.add_option("--batch-wait-ms", o.batch_wait_ms,
                 "longest wait to fill a batch")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.shape == "copy" && (o.output.empty() || !o.run.empty())) {
    std::cerr << "kbench_pipe: --shape copy needs --output and takes no --run"
              << std::endl;
    return 2;
  }
  if (o.shape != "copy" && (o.run.empty() || !o.output.empty())) {
    std::cerr << "kbench_pipe: --shape " << o.shape << " needs --run (its topics are "
                 "RUN.floor.*) and takes no --output"
              << std::endl;
    return 2;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  try {
    Pipe pipe(o);
    return pipe.Run();
  } catch (const std::exception& e) {
    std::cerr << "kbench_pipe: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace
}  // namespace kbench

int main(int argc, char** argv) { return kbench::Main(argc, argv); }
