// HttpApi: the read side and the command API over HTTP (docs/http-api.md).
//
//   GET  /stores                          stores, key estimates, positions
//   GET  /stores/{store}/keys/{key}       one value (?position=TOKEN waits)
//   GET  /stores/{store}/keys             prefix / range scans with paging
//   POST /commands/{aggregate}            produce a command (?wait=true)
//   GET  /healthz, /readyz, /stats, /metrics
//
// How stores are read concurrently and safely: handlers read committed
// state only, through StoreRegistry readers (RocksDB gets and snapshot
// iterators, safe from any thread; a shared lock keeps a store open while a
// read is in flight). Stream threads never wait for HTTP: they append to the
// PositionLog and move on. HTTP threads never wait for stream threads: a
// query that must wait for a position, or a command waiting for its
// decision, is parked with the Waiter (a thread of its own that re-checks
// parked requests whenever a commit lands) and answered from there, so no
// I/O thread blocks.
//
// Thread-safety: Register once; handlers run on the server's I/O threads
// and on the waiter thread. Stop() before the engine's parts go away.
#ifndef KCQRS_ENGINE_SERVING_HTTP_API_H_
#define KCQRS_ENGINE_SERVING_HTTP_API_H_

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "engine/graph/compiled_topology.h"
#include "engine/http/server.h"
#include "engine/codec/json_codec.h"
#include "engine/kafka/properties.h"
#include "engine/metrics/metrics.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// What the HTTP API needs from the running engine; implemented by the
// engine. Every method is safe from any thread.
class EngineView {
 public:
  virtual ~EngineView() = default;
  // Null until the engine has resolved its topics and started its threads.
  virtual std::shared_ptr<const CompiledTopology> topology() const = 0;
  virtual StoreRegistry* registry() const = 0;
  virtual const PositionLog& positions() const = 0;
  virtual bool ready() const = 0;
  virtual Status health() const = 0;
  // /readyz's body: {"status", "reason", "tasks": [{task, state, restored, remaining}]}.
  virtual nlohmann::json Readiness() const = 0;
  // /stats's body (see engine/ui_page.h).
  virtual nlohmann::json Stats() const = 0;
  // The engine's metrics, served at /metrics; HTTP requests are counted in it.
  virtual metrics::Metrics* metrics() = 0;
};

struct HttpApiOptions {
  std::string bootstrap_servers;
  kafka::Properties kafka_properties;
  std::string application_id;
  // When set, POST /commands needs "Authorization: Bearer <token>".
  std::string command_token;
  // ?timeout_ms for waits: default and maximum.
  std::chrono::milliseconds default_wait{10000};
  std::chrono::milliseconds max_wait{60000};
  // Scans: default and maximum page size.
  int default_limit = 100;
  int max_limit = 1000;
  // POST /commands bodies: EngineOptions::limits. Deeper is answered 400,
  // larger 413 (the server's own body limit should be the same, so that a
  // larger body is not even read).
  JsonLimits limits;
};

class HttpApi {
 public:
  static Result<std::unique_ptr<HttpApi>> Create(EngineView* engine, HttpApiOptions options);
  ~HttpApi();

  void Register(http::Router& router);

  // Answers parked requests (503) and stops the waiter and producer threads.
  void Stop();

 private:
  class Impl;
  explicit HttpApi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_HTTP_API_H_
