// Forwarder: how an instance asks the instance that holds a partition
// (internal to engine/serving; docs/http-api.md "Any instance answers").
//
// A query or command for a partition this instance does not host goes, one
// hop, to the instance the InstanceDirectory names as the active holder of
// the partition's task, marked `Kcqrs-Forwarded-By: <self id>`. A request so
// marked is never forwarded again: a directory a moment behind a rebalance
// costs a 503 with Retry-After, never a loop. Every answer of a store says
// who served it (`Kcqrs-Served-By`).
//
// Owns the http::Client the requests go through (its own I/O thread;
// connect timeout ~1 s, so a dead holder is noticed fast). Owned by
// HttpApi. Thread-safety: every method is safe from any thread; callbacks
// run on the client's I/O thread and must not block.
#ifndef KCQRS_ENGINE_SERVING_FORWARDING_H_
#define KCQRS_ENGINE_SERVING_FORWARDING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/http/client.h"
#include "engine/http/server.h"
#include "engine/serving/engine_view.h"

namespace kcqrs::engine {

inline constexpr char kForwardedByHeader[] = "Kcqrs-Forwarded-By";
inline constexpr char kServedByHeader[] = "Kcqrs-Served-By";
// On a request between instances: a standby's copy may answer it.
inline constexpr char kStandbyOkHeader[] = "Kcqrs-Standby-Ok";
// On an answer: it came from a standby copy, a moment behind the holder.
inline constexpr char kStandbyHeader[] = "Kcqrs-Standby";

// "<sub-topology>_<partition>", the task id the directory lists (as the
// runtime's TaskId prints it).
std::string TaskIdOf(const SubTopology& st, int32_t partition);

// Percent-encodes a query parameter's name or value (RFC 3986 unreserved
// characters stay).
std::string UrlEncode(std::string_view s);

class Forwarder {
 public:
  // `engine` must outlive the Forwarder; `fallback_id` names this instance
  // when the engine has no directory (HttpApiOptions::instance_id);
  // `query_token` (may be empty) goes on every GET it forwards, since the
  // holder checks it as this instance did.
  Forwarder(EngineView* engine, std::string fallback_id, std::string query_token,
            std::unique_ptr<http::Client> client)
      : engine_(engine),
        fallback_id_(std::move(fallback_id)),
        query_token_(std::move(query_token)),
        client_(std::move(client)) {}

  // The directory, or null (a process alone).
  const InstanceDirectory* directory() const { return engine_->instances(); }
  // This instance's id: the directory's, else the fallback; may be empty.
  std::string SelfId() const;
  // Adds Kcqrs-Served-By: SelfId() (when there is one) to a local answer.
  http::Response ServedHere(http::Response r) const;
  // The request came from another instance: answer here or 503, never on.
  static bool WasForwarded(const http::Request& req);
  // Who holds `task` as an active task, if another instance does. nullopt
  // when there is no directory, nobody holds it, or this instance does.
  std::optional<InstanceInfo> OtherHolder(const std::string& task) const;

  // Sends `method target` to `holder`, marked as forwarded by this
  // instance, with `headers` and `body`; `done` gets the holder's answer or
  // why there is none (called once, on the client's thread).
  void Send(const InstanceInfo& holder, std::string method, std::string target,
            std::vector<std::pair<std::string, std::string>> headers, std::string body,
            std::chrono::milliseconds timeout, http::ClientCallback done) const;

  // The holder's answer as this instance's: its status, body, content type
  // and the headers a client needs (Kcqrs-Served-By, Retry-After,
  // WWW-Authenticate, Allow). Served-By is the holder's id when it sent none.
  static http::Response Relay(const http::ClientResponse& answer, const InstanceInfo& holder);

  // Fails what is in flight and stops the client. Idempotent.
  void Stop() { client_->Stop(); }

 private:
  EngineView* const engine_;
  const std::string fallback_id_;
  const std::string query_token_;
  const std::unique_ptr<http::Client> client_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_FORWARDING_H_
