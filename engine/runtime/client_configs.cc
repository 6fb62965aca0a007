#include "engine/runtime/client_configs.h"

namespace kcqrs::engine {
namespace {

// Defaults first, then the user's properties over them.
ClientConfig Base(const EngineOptions& options, const std::string& bootstrap_servers,
                  const std::string& client_id, const kafka::Properties& defaults) {
  ClientConfig c;
  c.properties = defaults;
  for (const auto& [k, v] : options.kafka.properties) c.properties[k] = v;
  c.properties["bootstrap.servers"] = bootstrap_servers;
  c.properties["client.id"] = client_id;
  return c;
}

// A setting the runtime depends on; a different user value is overridden
// and named.
void Require(ClientConfig* c, const EngineOptions& options, const std::string& key,
             const std::string& value, const char* why) {
  auto user = options.kafka.properties.find(key);
  if (user != options.kafka.properties.end() && user->second != value) {
    c->overridden.push_back(key + "=" + user->second + " (kcqrs needs " + value + ": " + why +
                            ")");
  }
  c->properties[key] = value;
}

std::string ThreadClientId(const EngineOptions& options, const StreamThreadIdentity& who) {
  return options.application.id + "-stream-" + std::to_string(who.thread_index);
}

bool ExactlyOnce(const EngineOptions& options) {
  return options.application.guarantee == Guarantee::kExactlyOnce;
}

// The prefetch bound of a stream thread's consumer. In librdkafka 2.0.2
// (Debian 12) a high-level consumer's partitions forward their fetch queues
// to the one consumer queue, and the fetcher compares that whole queue
// (rd_kafka_q_len/q_size follow the forward, rdkafka_queue.h:618-648)
// against queued.min.messages and queued.max.messages.kbytes before
// fetching any partition (rd_kafka_toppar_fetch_decide,
// rdkafka_fetcher.c:1023-1033): both bound the consumer, not each
// partition. The bytes count values only (rko_len = value length,
// rdkafka_op.c:782), so a small record costs several times its value: a
// backlog of 100-byte records prefetched to the 64 MB default held 273 MB
// of RSS with 1 or 4 partitions, 324 MB with 16 (docs/benchmarks.md). Over
// the bound, a partition is fetched again only when the broker thread next
// wakes, up to 1 s later (rd_kafka_max_block_ms, rdkafka_broker.c:79), so
// the queue must hold a second of what a thread can drain, or the thread
// idles (100,000 messages capped stateless at about 125,000 records/s).
//
// The main consumer: 350,000 messages, a second of the fastest stateless
// run (339,000 records/s of 200-byte values, where the 64 MB bound stops
// it first anyway), and 10 s of the orders workload, whose 91-byte
// commands no longer fill the queue to 64 MB (about 150 MB of RSS instead
// of 270 MB under a preloaded backlog).
constexpr const char* kMainQueuedMinMessages = "350000";
// Both bounds stated, since both apply to the whole queue: 64 MB of values
// (librdkafka's default), overshot by at most one fetch response.
constexpr const char* kQueuedMaxKbytes = "65536";
constexpr const char* kMainFetchMinBytes = "65536";
constexpr const char* kMainFetchWaitMaxMs = "10";
// The restore consumer reads changelogs to their end as fast as it can and
// is not reading a backlog of inputs meanwhile; its records are larger, so
// the byte bound is the one that binds there.
constexpr const char* kRestoreQueuedMinMessages = "1000000";

}  // namespace

ClientConfig ProducerConfig(const EngineOptions& options, const StreamThreadIdentity& who) {
  ClientConfig c = Base(options, who.bootstrap_servers, ThreadClientId(options, who),
                        {
                            // Small batches, soon: a command's answer waits
                            // for its transaction, not for a full batch.
                            {"linger.ms", "5"},
                            // A crashed instance's open transaction blocks
                            // read_committed readers until it times out;
                            // keep that short.
                            {"transaction.timeout.ms", "10000"},
                        });
  Require(&c, options, "enable.idempotence", "true",
          "a retried send must not duplicate a record");
  if (ExactlyOnce(options)) {
    // Fences a previous incarnation of this thread (same member id) and
    // aborts its open transaction.
    Require(&c, options, "transactional.id", who.member_id, "exactly-once");
  } else if (!options.kafka.properties.count("transaction.timeout.ms")) {
    c.properties.erase("transaction.timeout.ms");  // kcqrs' default is for transactions
  }
  return c;
}

ClientConfig MainConsumerConfig(const EngineOptions& options, const StreamThreadIdentity& who) {
  ClientConfig c = Base(options, who.bootstrap_servers, ThreadClientId(options, who),
                        {
                            // Static membership: a restart after kill -9
                            // takes its partitions back at once instead of
                            // waiting for the dead member's session.
                            {"group.instance.id", who.member_id},
                            // How long a vanished instance keeps its
                            // partitions (librdkafka's default is 45 s).
                            {"session.timeout.ms", "10000"},
                            // How soon the others learn of a rebalance: a
                            // cleanly stopped instance leaves the group,
                            // and its partitions wait for this (librdkafka's
                            // default is 3 s).
                            {"heartbeat.interval.ms", "1000"},
                            {"queued.min.messages", kMainQueuedMinMessages},
                            {"queued.max.messages.kbytes", kQueuedMaxKbytes},
                            // Fewer, fuller fetches. With librdkafka's
                            // fetch.min.bytes of 1 a thread that reads the
                            // events it wrote itself is woken for a fetch
                            // per produce batch: the broker thread was a
                            // fifth of the process's CPU. 64 KB or 10 ms,
                            // whichever comes first: at 5,000 commands/s
                            // a quarter less CPU for 4 ms more at the
                            // median; idle, 100 fetches a second per
                            // broker, about 3% of a core
                            // (docs/benchmarks.md).
                            {"fetch.min.bytes", kMainFetchMinBytes},
                            {"fetch.wait.max.ms", kMainFetchWaitMaxMs},
                        });
  Require(&c, options, "group.id", options.application.id, "one group per application");
  Require(&c, options, "enable.auto.commit", "false",
          "offsets commit with the transaction that processed them");
  Require(&c, options, "enable.auto.offset.store", "false",
          "offsets commit with the transaction that processed them");
  // A fresh application reads its inputs from the start: commands already
  // in the topic are decided, not skipped.
  Require(&c, options, "auto.offset.reset", "earliest",
          "a new application processes what is already in its topics");
  Require(&c, options, "isolation.level", "read_committed",
          "aborted transactions must not be processed");
  // Every member subscribes to the same topics, so for topics with equal
  // partition counts the range assignor gives each member the same
  // partition numbers of every topic: co-partitioned sources land together.
  Require(&c, options, "partition.assignment.strategy", "range",
          "co-partitioned sources of a task must land on one thread");
  return c;
}

ClientConfig RestoreConsumerConfig(const EngineOptions& options,
                                   const StreamThreadIdentity& who) {
  ClientConfig c = Base(options, who.bootstrap_servers, ThreadClientId(options, who) + "-restore",
                        {
                            // Restore reads to the end and stops: do not let
                            // the broker hold an empty fetch for the default
                            // 500 ms at every task.
                            {"fetch.wait.max.ms", "10"},
                            {"queued.min.messages", kRestoreQueuedMinMessages},
                            {"queued.max.messages.kbytes", kQueuedMaxKbytes},
                        });
  // librdkafka wants a group id for offset calls; assigned by hand, the
  // restore consumer never joins it.
  c.properties["group.id"] = options.application.id + "-restore";
  c.properties.erase("group.instance.id");
  Require(&c, options, "enable.auto.commit", "false", "the restore consumer commits nothing");
  Require(&c, options, "auto.offset.reset", "earliest", "a changelog is replayed from its start");
  Require(&c, options, "isolation.level", "read_committed",
          "aborted state writes must not be restored");
  c.properties["enable.partition.eof"] = "true";
  return c;
}

ClientConfig MetadataProducerConfig(const EngineOptions& options,
                                    const std::string& bootstrap_servers,
                                    const std::string& who) {
  ClientConfig c = Base(options, bootstrap_servers, who,
                        {
                            // A commit's record is what another instance's
                            // read-your-writes waits for: send it soon.
                            {"linger.ms", "5"},
                        });
  Require(&c, options, "enable.idempotence", "true",
          "a retried send must not duplicate or reorder what an instance says");
  c.properties.erase("transactional.id");
  c.properties.erase("transaction.timeout.ms");
  return c;
}

ClientConfig MetadataConsumerConfig(const EngineOptions& options,
                                    const std::string& bootstrap_servers,
                                    const std::string& who) {
  ClientConfig c = Base(options, bootstrap_servers, who,
                        {
                            // Another instance's commit is waited for by a
                            // request: do not let the broker hold an empty
                            // fetch for the default 500 ms.
                            {"fetch.wait.max.ms", "50"},
                        });
  c.properties.erase("group.id");
  c.properties.erase("group.instance.id");
  c.properties["enable.auto.commit"] = "false";
  c.properties["enable.partition.eof"] = "false";
  return c;
}

ClientConfig AdminConfig(const EngineOptions& options, const std::string& bootstrap_servers) {
  return Base(options, bootstrap_servers, options.application.id + "-admin", {});
}

}  // namespace kcqrs::engine
