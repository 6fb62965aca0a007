// EngineOptions: everything an Engine needs to run, as plain structs.
//
// The YAML topology file (docs/topology.md) maps onto these structs key for
// key: `application.commit_interval_ms` in YAML is
// EngineOptions::application.commit_interval_ms here. Embedders fill them in
// code; `kcqrs run` fills them from the file.
#ifndef KCQRS_OPTIONS_H_
#define KCQRS_OPTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kcqrs/topology_spec.h"

namespace kcqrs {

enum class Guarantee {
  kExactlyOnce,   // Kafka transactions: events, state and offsets together
  kAtLeastOnce,   // offsets committed after processing; may repeat on failure
};

// How RocksDB keeps the stores of a process's tasks. One budget for the
// whole process, shared by every task database it opens (as Kafka Streams'
// BoundedMemoryRocksDBConfig), so memory does not grow with the number of
// tasks. The changelog topics, not RocksDB, are what makes state durable.
struct RocksDbOptions {
  enum class Compression { kNone, kSnappy, kLz4, kZstd };
  // Bytes of the LRU block cache (data, index and filter blocks).
  // Default: 64 MiB.
  int64_t block_cache_bytes = int64_t{64} << 20;
  // Bytes of memtables of all task databases together; past it RocksDB
  // flushes the largest. Default: 64 MiB.
  int64_t memtable_bytes = int64_t{64} << 20;
  // Bytes of one store's memtable before it is flushed. Default: 8 MiB.
  int64_t write_buffer_bytes = int64_t{8} << 20;
  // Store writes a task database may hold in its memtables only. Commits
  // skip RocksDB's write-ahead log (the changelog is the log), so what a
  // kill -9 loses locally is restored from the changelogs: past this many
  // writes since its last flush, the task database is flushed in the
  // background, which bounds that restore. 0: only when a memtable is full.
  // Default: 10,000 (the changelog delta at which Kafka Streams writes its
  // checkpoint).
  int64_t max_unflushed_writes = 10'000;
  // Compression of the files RocksDB writes. Default: none, as Kafka
  // Streams: the values are small JSON documents, and snappy cost about 1%
  // of the engine's CPU in the orders benchmark for tens of MB saved.
  Compression compression = Compression::kNone;
};

struct ApplicationOptions {
  // Consumer group id, transactional id prefix and changelog topic prefix.
  // Required; changing it orphans the application's state and offsets.
  std::string id;
  // Default: exactly once.
  Guarantee guarantee = Guarantee::kExactlyOnce;
  // How often a stream thread commits its transaction, in milliseconds.
  // Default: 100 (as Kafka Streams under exactly-once).
  int64_t commit_interval_ms = 100;
  // Where the local state stores live. Default: /tmp/kcqrs/<id>.
  std::string state_dir;
  // Stream threads in this process. Default: 1.
  int threads = 1;
  // How long a task directory under state_dir that no stream thread of this
  // process uses is kept before it is removed, in milliseconds (Kafka
  // Streams: state.cleanup.delay.ms). A task that comes back within it
  // restores only the changelog tail. Default: 600000 (10 minutes).
  int64_t state_cleanup_delay_ms = 600'000;
  // Warm copies of each task's stores that other instances keep, following
  // its changelogs, so that an instance taking the task over restores only
  // what its copy missed (Kafka Streams: num.standby.replicas). Capped at
  // the number of other live instances. Default: 0.
  int standby_replicas = 0;
  // Bytes of committed store values a process keeps in memory in front of
  // RocksDB, for keys read again soon (Kafka Streams:
  // statestore.cache.max.bytes). Split evenly among every task of the
  // topology, so a process holding only some tasks uses less. 0 turns it
  // off. Default: 256 MiB, an upper bound: only state that exists fills it.
  int64_t cache_max_bytes = int64_t{256} << 20;
  // RocksDB's memory and files (see RocksDbOptions).
  RocksDbOptions rocksdb;
  // The command field of the expected aggregate version, for every
  // aggregate that does not name its own (AggregateSpec::
  // expected_version_field). Default: "expectedVersion".
  std::string expected_version_field = "expectedVersion";
};

struct KafkaOptions {
  // Broker addresses ("host:port"). Empty with embedded = true means the
  // in-process mock cluster (see `embedded`).
  std::vector<std::string> bootstrap_servers;
  // True for `bootstrap_servers: embedded`: start librdkafka's built-in mock
  // cluster inside the process. For trying kcqrs out only: it keeps nothing
  // on disk and does not enforce transactional isolation.
  bool embedded = false;
  // Brokers in the embedded cluster. Default: 1.
  int embedded_brokers = 1;
  // The loopback port clients bootstrap from on the embedded cluster, so
  // that its address (and the kcat lines `make demo` prints) stays the same
  // from one start to the next. When it is in use, a port the kernel picks,
  // with a warning; 0: always such a port. Default: 9092 (Kafka's, and
  // kcat's default broker).
  int embedded_port = 9092;
  // librdkafka properties passed through unchanged to every client
  // (for example security.protocol, sasl.mechanisms).
  std::map<std::string, std::string> properties;
};

// HTTPS for the HTTP API (the `http.tls` section). Paths are PEM files, as
// given (relative ones from the working directory).
struct HttpTlsOptions {
  // The server's certificate chain (leaf first) and private key. Setting
  // cert_file turns HTTPS on (key_file is then required); empty: plain HTTP.
  std::string cert_file;
  std::string key_file;
  // CA certificates that client certificates (mTLS) and, when requests are
  // forwarded between instances, the other instances' certificates must
  // chain to. Required when client_auth is not kNone; when empty,
  // forwarding trusts the system's CA store.
  std::string ca_file;
  // Whether clients must present a certificate signed by ca_file.
  // kRequired also makes an instance present its own certificate to the
  // others when it forwards a request (it must allow clientAuth use).
  enum class ClientAuth { kNone, kOptional, kRequired };
  ClientAuth client_auth = ClientAuth::kNone;

  bool enabled() const { return !cert_file.empty(); }
};

struct HttpOptions {
  // Whether the engine starts its HTTP server (queries, commands, /metrics,
  // /healthz, the page). A program that embeds the engine and reads stores
  // through Engine::GetStore may turn it off; then http_address() is empty
  // and other instances cannot forward queries to this one. Default: true.
  bool enabled = true;
  // host:port the HTTP server listens on. Default: loopback only, port 8080.
  // Port 0 picks a free port (logged at start).
  std::string listen = "127.0.0.1:8080";
  // I/O threads of the HTTP server. Default: 2.
  int threads = 2;
  // When not empty, POST /commands requires "Authorization: Bearer <token>".
  // Default: empty (no check). Read it from the environment:
  // `command_token: ${KCQRS_COMMAND_TOKEN}`.
  std::string command_token;
  // When not empty, reading stores (GET /stores, /stores/{store}/keys...)
  // requires "Authorization: Bearer <token>"; /healthz, /readyz, /metrics,
  // /stats, /instances and /topology stay open for probes and scrapers.
  // Separate from command_token. Default: empty (no check). Read it from
  // the environment: `query_token: ${KCQRS_QUERY_TOKEN}`.
  std::string query_token;
  // HTTPS (and mTLS); off unless tls.cert_file is set.
  HttpTlsOptions tls;
  // The base URL other instances of the application (and `kcqrs describe
  // --live`) use to reach this instance's HTTP API, as
  // "http[s]://host[:port]", no path: set it when instances see each other
  // through a container network or NAT ("http://orders-1.orders:8080").
  // Default: empty, meaning "http://" (with tls, "https://") + the
  // address the server is bound to; when it listens on every interface (0.0.0.0 or [::]), the
  // machine's hostname with the bound port instead.
  std::string advertised_url;
};

// Bounds on what kcqrs accepts from outside: the values of the records it
// consumes (commands, events, any record a built-in processor parses) and
// the bodies of HTTP requests. Input over a limit is refused with a reason
// that names the limit: a record goes to the dead-letter topic, an HTTP
// request gets 400 (depth) or 413 (size). Nothing over a limit is
// processed in part, and no input can exhaust the stack.
struct LimitsOptions {
  // Deepest nesting of objects and arrays accepted in a JSON document:
  // `{}` is 1 level, `{"a":[1]}` 2. Default: 64; 1 to 1000.
  // Commands and events are rarely deeper than 10 levels; 64 leaves room
  // for any real document while the documents kcqrs builds around them
  // (the aggregate document keeps each command's events, a few levels
  // down) stay shallow. Copying, comparing and writing a document recurse
  // once per level, so the bound is what keeps a hostile document (a POST
  // body of [[[[...100,000 deep) from overflowing a thread's stack.
  int max_json_depth = 64;
  // Largest document accepted, in bytes: a record value, a POST body.
  // Default: 1048576 (1 MiB, Kafka's default maximum message size, so a
  // command accepted over HTTP also fits the command topic); 1024 to
  // 104857600 (100 MiB). Raise it together with the topics'
  // max.message.bytes and the clients' message.max.bytes.
  int64_t max_document_bytes = 1048576;
};

struct EngineOptions {
  ApplicationOptions application;
  KafkaOptions kafka;
  HttpOptions http;
  LimitsOptions limits;
  // Partition counts of topics the engine creates when they are missing
  // (the file's `topics:` section). A topic the topology uses that is not
  // listed gets the partition count of the topics it is co-partitioned with,
  // else 1 (docs/topology.md).
  std::map<std::string, int> topics;
  // Aggregates, projections, custom processors, stores, error policy.
  TopologySpec topology;
};

}  // namespace kcqrs

#endif  // KCQRS_OPTIONS_H_
