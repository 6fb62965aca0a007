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
// twice). Without ?wait=true it is answered 202 with its position, saying
// why. With ?wait=true, the instance then watches the directory, within the
// request's timeout, for the partition's next holder and asks it for the
// command's outcome (`outcome_at=<position>`: the holder waits for the
// decision of that command id at that position, as a local wait does, and
// never writes the command again); only when the timeout passes is the
// answer 202 with the position.
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
  // A command written, by this instance or the one it was forwarded to,
  // whose decider was unknown or did not answer: what a client with
  // ?wait=true is owed its outcome by.
  struct OutcomeWatch;

  void PostCommand(const http::Request& req, http::Responder respond);
  // Parks `watch` on the waiter until the directory names a holder of its
  // task (not before `not_before`), then asks it; at the deadline, 202.
  void WatchForHolder(std::shared_ptr<OutcomeWatch> watch, Clock::time_point not_before);
  void AskHolder(std::shared_ptr<OutcomeWatch> watch, const InstanceInfo& holder);
  // Writes the command to its partition and answers. `not_here`: why the
  // command is produced here although its partition's holder is elsewhere
  // (unknown, unreachable); the answer then says so instead of waiting for
  // a decision this instance cannot see, or, given a `watch`, asking the
  // partition's next holder for it.
  void Produce(kafka::OutgoingRecord record, std::string command_id, bool wait,
               std::chrono::milliseconds timeout,
               std::shared_ptr<const CompiledTopology> topology, const CompiledAggregate* agg,
               std::string id, std::string not_here, http::Responder respond,
               std::shared_ptr<OutcomeWatch> watch);
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
