// CommandRoutes: the command side of HttpApi.
//
//   POST /commands/{aggregate}   validate, produce to the aggregate's command
//                                topic, answer 202 with a position token; with
//                                ?wait=true, answer once the command is decided
//                                (its events 200, its rejection 409, dead-
//                                lettered 422), read from the aggregate's
//                                remembered outcomes
//
// A command whose partition another instance holds is forwarded to it (one
// hop, forwarding.h), which answers; when the holder is unknown or does not
// answer, the command is written here anyway (it is safe in Kafka, and its
// commandId, set here before forwarding, keeps a retry from deciding it
// twice) and answered 202 with its position, saying why.
//
// Owns the idempotent producer of commands and the thread that polls it
// (delivery reports answer the requests). Owned by HttpApi.
// Thread-safety: handlers run on the server's I/O threads, delivery
// callbacks on the poll thread, decisions on the Waiter's; Start() and
// Stop() once each, from the owner.
#ifndef KCQRS_ENGINE_SERVING_COMMAND_ROUTES_H_
#define KCQRS_ENGINE_SERVING_COMMAND_ROUTES_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/kafka/producer.h"
#include "engine/serving/engine_view.h"
#include "engine/serving/forwarding.h"
#include "engine/serving/http_api.h"
#include "engine/serving/route_helpers.h"
#include "engine/serving/waiter.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class CommandRoutes {
 public:
  // Every argument must outlive the routes.
  CommandRoutes(EngineView* engine, const HttpApiOptions* options, Waiter* waiter,
                const Forwarder* forwarder)
      : engine_(engine), options_(options), waiter_(waiter), forwarder_(forwarder) {}
  ~CommandRoutes() { Stop(); }

  // Creates the producer and starts its poll thread.
  [[nodiscard]] Status Start();
  // Flushes what is in flight (up to 5 s) and ends the producer. Stop the
  // waiter first, so that no decision is parked after. Idempotent.
  void Stop();

  void Register(RouteTable& routes);

 private:
  void PostCommand(const http::Request& req, http::Responder respond);
  // Writes the command to its partition and answers. `not_here`: why the
  // command is produced here although its partition's holder is elsewhere
  // (unknown, unreachable); the answer then says so instead of waiting for
  // a decision this instance cannot see.
  void Produce(kafka::OutgoingRecord record, std::string command_id, bool wait,
               std::chrono::milliseconds timeout,
               std::shared_ptr<const CompiledTopology> topology, const CompiledAggregate* agg,
               std::string id, std::string not_here, http::Responder respond);
  void AwaitDecision(std::shared_ptr<http::Responder> respond, RecordPosition position,
                     std::string token, std::string command_id, const CompiledAggregate& agg,
                     std::string id, std::shared_ptr<const CompiledTopology> topology,
                     std::chrono::milliseconds timeout);

  // The idempotent producer of POST /commands. librdkafka can end one for
  // good (a fatal idempotence error, e.g. librdkafka 2.0.2's sequence
  // desynchronization after a broker restart, librdkafka#4438): the first
  // request that sees it replaces it, so that commands flow again instead of
  // answering 503 until a restart. Requests in flight on the old one are
  // answered (503, retry with the same commandId) when it goes.
  Result<std::unique_ptr<kafka::Producer>> NewProducer() const;
  std::shared_ptr<kafka::Producer> Producer() const;
  // Replaces `failed` unless another request has already done so.
  void ReplaceProducer(const kafka::Producer* failed);

  EngineView* engine_;
  const HttpApiOptions* options_;
  Waiter* waiter_;
  const Forwarder* forwarder_;
  mutable std::mutex producer_mu_;
  std::shared_ptr<kafka::Producer> producer_;  // guarded by producer_mu_
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_COMMAND_ROUTES_H_
