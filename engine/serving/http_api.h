// HttpApi: the read side and the command API over HTTP (docs/http-api.md).
//
//   GET  /stores                          stores, key estimates, positions
//   GET  /stores/{store}/keys/{key}       one value (?position=TOKEN waits)
//   GET  /stores/{store}/keys             prefix / range scans with paging
//   POST /commands/{aggregate}            produce a command (?wait=true)
//   GET  /healthz, /readyz, /stats, /metrics, /topology, /  (the page)
//
// One class for the runtime to construct; the routes live in families of
// their own: query_routes.h, command_routes.h, operations_routes.h.
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

#include <chrono>
#include <memory>
#include <string>

#include "engine/codec/json_codec.h"
#include "engine/http/server.h"
#include "engine/kafka/properties.h"
#include "engine/serving/engine_view.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

struct HttpApiOptions {
  std::string bootstrap_servers;
  kafka::Properties kafka_properties;
  std::string application_id;
  // When set, POST /commands needs "Authorization: Bearer <token>".
  std::string command_token;
  // When set, reading stores (GET /stores...) needs "Authorization: Bearer
  // <token>"; requests forwarded to other instances carry it.
  std::string query_token;
  // How requests are forwarded to https:// instances: the CA to trust and
  // the certificate to present (mTLS).
  http::ClientTlsOptions forward_tls;
  // ?timeout_ms for waits: default and maximum.
  std::chrono::milliseconds default_wait{10000};
  std::chrono::milliseconds max_wait{60000};
  // Scans: default and maximum page size.
  int default_limit = 100;
  int max_limit = 1000;
  // This instance's id in answers (Kcqrs-Served-By, GET /instances) when
  // the engine has no InstanceDirectory; the directory's self_id wins.
  std::string instance_id;
  // Requests forwarded to the instance that holds a partition: how long
  // to wait for a connection (a dead holder costs no more), and the
  // longest answer taken from it, in bytes.
  std::chrono::milliseconds forward_connect_timeout{1000};
  size_t forward_max_response_bytes = 64u << 20;
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
