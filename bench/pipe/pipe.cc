// kbench_pipe: the raw librdkafka pipe, the floor under every engine's
// throughput (README.md). It consumes the input topic and produces every
// record unchanged (key, value, timestamp, headers) to the same partition of
// the output topic, committing every --commit-ms: with --mode eos inside
// transactions (consumer offsets sent to the transaction, as Kafka Streams'
// exactly_once_v2 does with its one producer per thread), with --mode alos by
// flushing the producer and then committing the offsets.
//
// No parsing, no state, no recovery: an engine can only add work on top of
// this, so its throughput is an upper bound for theirs on the same broker.
// One thread owns both clients; librdkafka's own threads do the I/O.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kafka_util.h"

namespace kbench {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct PipeOptions {
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

class Pipe {
 public:
  explicit Pipe(const PipeOptions& o) : o_(o), eos_(o.mode == "eos") {}

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
    // Same partition numbers as the input, so the output needs as many.
    EnsureTopic(producer_.get(), o_.output, partitions);
    out_.reset(rd_kafka_topic_new(producer_.get(), o_.output.c_str(), nullptr));
    if (eos_)
      ThrowIf(rd_kafka_init_transactions(producer_.get(), 60000),
              "init_transactions");

    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), o_.input.c_str(),
                                      RD_KAFKA_PARTITION_UA);
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
        std::cerr << "kbench_pipe: " << records_ << " records, "
                  << static_cast<uint64_t>(
                         static_cast<double>(records_ - reported) / dt)
                  << "/s, " << commits_ << " commits of " << MeanCommitMs()
                  << " ms on average" << std::endl;
        last_report = now;
        reported = records_;
      }
    }
    // Signalled: hand over what is done. Closing the consumer revokes the
    // partitions, which commits again (a no-op by then).
    Commit(/*final=*/true);
    rd_kafka_queue_destroy(queue);
    CloseConsumer(std::move(consumer_));
    rd_kafka_flush(producer_.get(), 10000);
    out_.reset();
    producer_.reset();
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << nlohmann::json{{"mode", o_.mode},
                                {"records", records_},
                                {"commits", commits_},
                                {"mean_commit_ms", MeanCommitMs()},
                                {"seconds", seconds}}
                     .dump()
              << std::endl;
    return 0;
  }

 private:
  void Forward(const rd_kafka_message_t& m) {
    if (eos_ && !in_transaction_) {
      ThrowIf(rd_kafka_begin_transaction(producer_.get()), "begin_transaction");
      in_transaction_ = true;
    }
    rd_kafka_timestamp_type_t ts_type;
    const int64_t ts = rd_kafka_message_timestamp(&m, &ts_type);
    rd_kafka_headers_t* in_headers = nullptr;
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(&m, &in_headers) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      headers = rd_kafka_headers_copy(in_headers);
    }
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_RKT(out_.get()),
          RD_KAFKA_V_PARTITION(m.partition), RD_KAFKA_V_KEY(m.key, m.key_len),
          RD_KAFKA_V_VALUE(m.payload, m.len),
          RD_KAFKA_V_TIMESTAMP(ts >= 0 ? ts : 0), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        break;  // the producer owns the headers now
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (headers) rd_kafka_headers_destroy(headers);
        throw Error(std::string("produce: ") + rd_kafka_err2str(err));
      }
      rd_kafka_poll(producer_.get(), 5);
    }
    next_offsets_[m.partition] = m.offset + 1;
    ++records_;
  }

  // Commits the records forwarded since the last commit, with their input
  // offsets. `final` (shutdown, revocation) waits for the offset commit in
  // alos mode too, since the partitions are about to be someone else's.
  void Commit(bool final = false) {
    if (next_offsets_.empty()) return;
    const auto started = Clock::now();
    PartitionList offsets(rd_kafka_topic_partition_list_new(
        static_cast<int>(next_offsets_.size())));
    for (const auto& [partition, offset] : next_offsets_) {
      rd_kafka_topic_partition_list_add(offsets.get(), o_.input.c_str(),
                                        partition)
          ->offset = offset;
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
    next_offsets_.clear();
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
      self->Commit(/*final=*/true);
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
  Topic out_;
  std::map<int32_t, int64_t>
      next_offsets_;  // input partition -> offset to commit
  bool in_transaction_ = false;
  uint64_t records_ = 0;
  uint64_t commits_ = 0;
  double commit_seconds_ = 0;  // time spent blocked in Commit()
  uint64_t delivery_failures_ = 0;
  std::string first_delivery_error_;
};

int Main(int argc, char** argv) {
  CLI::App app{
      "kbench_pipe: the raw librdkafka pipe (copy input to output), the "
      "throughput floor"};
  PipeOptions o;
  app.add_option("--bootstrap", o.bootstrap, "Kafka bootstrap servers")
      ->required();
  app.add_option("--input", o.input, "input topic")->required();
  app.add_option("--output", o.output,
                 "output topic (created like the input if absent)")
      ->required();
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
