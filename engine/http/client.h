// engine/http: an asynchronous HTTP/1.1 client, for one instance to ask
// another (a query or a command forwarded to the instance that holds its
// partition, a scan fanned out to every holder).
//
// Nothing here blocks the caller: Send() queues the request on the client's
// own I/O thread and returns; `done` is called once, on that thread, with
// the answer or a Status saying why there is none. Connections are kept
// alive and reused per host ("host:port"); a reused connection that the
// other side has closed meanwhile is replaced once, transparently, before
// anything of the request was answered. Every request is bounded: connect
// within `connect_timeout`, the whole exchange within its timeout, and a
// response no larger than `max_response_bytes`.
//
// Like server.h, this header is standard-library only: Boost.Asio/Beast are
// behind the pimpl, and nothing throws across the module boundary.
//
// Owns one I/O thread and the idle connections. Thread-safety: Send() may
// be called from any thread, concurrently; Stop() from any thread but the
// client's own (not from a `done` callback).
#ifndef KCQRS_ENGINE_HTTP_CLIENT_H_
#define KCQRS_ENGINE_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/http/tls.h"
#include "kcqrs/status.h"

namespace kcqrs::http {

struct ClientOptions {
  // Longest wait for a TCP connection to be established (name resolution
  // included), per attempt. A holder that died without closing its sockets
  // costs no more than this. Must be > 0.
  std::chrono::milliseconds connect_timeout{1000};
  // Default bound of a whole exchange (connect, send, receive), for
  // requests that do not set their own. Must be > 0.
  std::chrono::milliseconds request_timeout{30000};
  // Largest response body accepted, in bytes; a larger one fails the
  // request (and closes its connection).
  std::size_t max_response_bytes = 64u << 20;
  // Largest response status line plus headers, in bytes.
  std::size_t max_header_bytes = 64 * 1024;
  // Idle keep-alive connections kept per host; more are closed.
  std::size_t max_idle_per_host = 16;
  // An idle connection older than this is not reused (the server closes
  // idle connections after its read_timeout, 30 s by default).
  std::chrono::milliseconds max_idle_time{15000};
  // For https:// urls: whom to trust, and the certificate to present when
  // the server asks for one. The server's certificate is always verified,
  // its name against the url's host.
  ClientTlsOptions tls;
};

struct ClientRequest {
  std::string method = "GET";
  // Where the other instance listens: "http://10.0.0.5:8080",
  // "http://[::1]:8080", "https://node-2:8443" (TLS 1.2+, verified as
  // ClientOptions::tls says). A path, if any, is a prefix of `target`.
  std::string url;
  // Path and query, percent-encoded as they go on the wire: "/stores/a?x=1".
  std::string target = "/";
  // Sent as they are; Host, Content-Length and Connection are the
  // client's and ignored here.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Bound of this exchange; zero: ClientOptions::request_timeout.
  std::chrono::milliseconds timeout{0};
};

struct ClientResponse {
  int status = 0;
  std::string content_type;  // empty when the server sent none
  // Every header as received (names as sent), Content-Type included.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Value of the first header called `name` (any case), if present.
  std::optional<std::string> Header(std::string_view name) const;
};

// Called exactly once per Send, on the client's I/O thread (or, after
// Stop, on the caller's, before Send returns). Errors:
//   InvalidArgument  the url is not http[s]://host:port
//   Unavailable      cannot resolve, connect or reach the host (refused,
//                    reset, closed without an answer, client stopped), or
//                    the TLS handshake failed (the certificate not trusted,
//                    not the host's, or ours refused)
//   TimedOut         no connection within connect_timeout, or no whole
//                    answer within the request's timeout
//   IoError          the answer is not HTTP, or larger than allowed
// Each message names the url and what failed.
using ClientCallback = std::function<void(Result<ClientResponse>)>;

class Client {
 public:
  // Starts the I/O thread. InvalidArgument for bad options, naming the TLS
  // file that cannot be used.
  static Result<std::unique_ptr<Client>> Create(const ClientOptions& options);

  ~Client();  // Stop()s
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Send(ClientRequest request, ClientCallback done);

  // Fails what is in flight (Unavailable, "client stopped"), closes every
  // connection and joins the I/O thread; later Sends fail at once.
  // Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace kcqrs::http

#endif  // KCQRS_ENGINE_HTTP_CLIENT_H_
