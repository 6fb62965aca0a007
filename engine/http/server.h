// engine/http: a small HTTP/1.1 server for the read side (store queries), the
// command API, /metrics, /healthz, /readyz and /topology.
//
// This header is standard-library only: Boost.Asio/Beast live behind
// Server's pimpl, so nothing that includes it sees Boost. Nothing here throws
// across the module boundary; Server::Start reports failure as a Status, and
// exceptions thrown by handlers become 500 responses.
//
// Usage:
//   http::Router router;
//   router.Add("GET", "/stores/{store}/keys/{key}", [](const http::Request& r)
//   {
//     return http::Response::Json(200, Lookup(r.path_params.at("store"),
//                                             r.path_params.at("key")));
//   });
//   auto server = http::Server::Start(options, std::move(router));
//   if (!server.ok()) return server.status();
#ifndef KCQRS_ENGINE_HTTP_SERVER_H_
#define KCQRS_ENGINE_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/http/tls.h"
#include "kcqrs/status.h"

namespace kcqrs::http {

// How a Server listens and how much it accepts. Plain values; copy freely.
struct ServerOptions {
  // "host:port" to bind. host is an IPv4 literal, a bracketed IPv6 literal
  // ("[::1]:8080") or a name that resolves locally ("localhost:8080"). Port 0
  // picks a free port; Server::port() tells which.
  std::string listen = "127.0.0.1:8080";
  // I/O threads. Synchronous handlers run on them, so a handler that blocks
  // holds one of them; use AddAsync for anything that waits. Must be >= 1.
  int threads = 2;
  // Largest request body accepted, in bytes; a larger one is answered 413
  // and the connection closed.
  std::size_t max_body_bytes = 1 << 20;
  // Deadline for receiving one whole request (headers and body), counted
  // from when the server starts waiting for it; also the idle timeout of a
  // keep-alive connection and the deadline for writing a response. Guards
  // against slowloris clients. Must be > 0.
  std::chrono::milliseconds read_timeout{30000};
  // Open connections beyond this are answered 503 and closed. Must be >= 1.
  std::size_t max_connections = 1024;
  // Largest request line plus header fields, in bytes; more is answered 431.
  std::size_t max_header_bytes = 16 * 1024;
  // HTTPS when tls.cert_file is set: every connection must complete a TLS
  // 1.2+ handshake (within read_timeout) before its first request; a client
  // speaking plain HTTP to it is disconnected. Plain HTTP otherwise.
  ServerTlsOptions tls;
};

// One parsed request, as handlers see it.
struct Request {
  std::string method;  // "GET", as sent (methods are case-sensitive)
  // Raw request target as sent: "/stores/orders/keys/o%2F1?position=x".
  std::string target;
  // Raw path of the target, still percent-encoded, without the query:
  // "/stores/orders/keys/o%2F1". Routing matches on its raw '/'-separated
  // segments and decodes each path parameter afterwards, so an encoded slash
  // stays inside one parameter.
  std::string path;
  // {name} -> percent-decoded segment: {"store": "orders", "key": "o/1"}.
  std::map<std::string, std::string> path_params;
  // Query parameters, percent-decoded ('+' is a space), in the order sent.
  // "a" and "a=" both give an empty value.
  std::multimap<std::string, std::string> query;
  // Header names lower-cased; repeated fields joined with ", ".
  std::map<std::string, std::string> headers;
  std::string body;

  // First value of query parameter `name`, if present.
  std::optional<std::string> Query(std::string_view name) const;
  // Value of header `name` (any case), if present.
  std::optional<std::string> Header(std::string_view name) const;
};

// What a handler answers. The server adds Content-Length, Server: kcqrs and
// Connection; headers named Content-Length, Transfer-Encoding or Connection
// in `headers` are ignored, and ones holding CR, LF or NUL are dropped.
struct Response {
  int status = 200;  // 200..599; anything else is answered 500
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  // RFC 9457 problem details: application/problem+json with type, title,
  // status and detail. Strings are JSON-escaped; invalid UTF-8 becomes U+FFFD.
  static Response Problem(int status, std::string_view title,
                          std::string_view detail,
                          std::string_view type = "about:blank");
};

// Returns `s` as a JSON string literal, quotes included. Control characters
// are escaped and invalid UTF-8 is replaced by U+FFFD, so the result is
// always valid JSON.
std::string JsonQuote(std::string_view s);

// A synchronous handler. Runs on an I/O thread and must not block for long.
// May throw: the client then gets a 500 problem and the error is logged.
using Handler = std::function<Response(const Request&)>;

// Delivers the response of an asynchronous handler. Call it exactly once,
// from any thread, now or later. Copies share one state: a second call is
// ignored (and logged). If every copy is destroyed without a call, the client
// gets a 500 problem, so a lost Responder never hangs a connection. After the
// Server has stopped, calling it does nothing.
using Responder = std::function<void(Response)>;

// An asynchronous handler, for handlers that must wait (read-your-writes,
// POST /commands?wait=true) without blocking an I/O thread. It is called on
// an I/O thread and should return quickly, keeping `respond` for later.
// `request` stays valid until respond is called or its last copy destroyed.
// The connection is idle until `respond` is called: the server applies no
// timeout of its own to the wait, so the handler must bound it.
using AsyncHandler = std::function<void(const Request&, Responder respond)>;

// Maps (method, path pattern) to handlers. Build it on one thread, then move
// it into Server::Start; the Server only reads it afterwards, from all of its
// I/O threads at once.
//
// Patterns are '/'-separated segments, each either a literal or a {name}
// parameter that matches one non-empty segment: "/stores/{store}/keys/{key}".
// When several patterns match a path, the one whose first differing segment
// is a literal wins ("/stores/_all" beats "/stores/{store}"). A path matching
// some pattern but not with this method is answered 405 with an Allow header;
// a path matching none, 404. HEAD is served by the GET handler (body omitted)
// unless HEAD is registered. Patterns are split into segments once, here;
// routing a request compares segments and uses no regex.
//
// A malformed pattern or a duplicate (method, pattern) does not fail Add;
// it is recorded, and Server::Start returns it as InvalidArgument.
class Router {
 public:
  // `method` is upper-cased.
  void Add(std::string method, std::string pattern, Handler handler);
  void AddAsync(std::string method, std::string pattern, AsyncHandler handler);

  // OK, or the first error recorded by Add/AddAsync.
  Status status() const;

  // The outcome of routing one request. Used by Server; public so that it can
  // be exercised without sockets.
  struct Match {
    enum class Kind { kFound, kNotFound, kMethodNotAllowed, kBadRequest };
    Kind kind = Kind::kNotFound;
    const Handler* handler = nullptr;             // kFound, synchronous route
    const AsyncHandler* async_handler = nullptr;  // kFound, asynchronous route
    std::string allow;  // kMethodNotAllowed: "GET, HEAD, POST"
    std::string error;  // kBadRequest: why the target was rejected
  };
  // Matches request->method against request->target and fills in path,
  // path_params and query. Pointers in the result live as long as the Router.
  Match Resolve(Request* request) const;

 private:
  struct Segment {
    bool is_param = false;
    std::string text;  // the literal, or the parameter's name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    AsyncHandler async_handler;
  };

  void AddRoute(std::string method, std::string pattern, Handler handler,
                AsyncHandler async_handler);

  std::vector<Route> routes_;
  std::string first_error_;
};

// An HTTP/1.1 server on its own pool of I/O threads, with keep-alive and
// pipelining, per-request deadlines and a connection cap.
//
// Owns its threads, sockets and the Router. Start() returns a running server;
// destroying it stops it. Stop(), port() and local_address() may be called
// from any thread, concurrently; Stop() must not be called from a handler (it
// joins the I/O threads, so it logs and returns without stopping there).
class Server {
 public:
  // Binds options.listen and starts serving. InvalidArgument for bad options,
  // a malformed listen address, a bad route or unusable TLS files (naming
  // the file, as CheckServerTls); Unavailable when the address
  // is in use; IoError for other bind/listen failures. Messages name the
  // address.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                               Router router);

  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually bound: "127.0.0.1:41234", "[::1]:41234".
  std::string local_address() const;
  uint16_t port() const;

  // Stops accepting, closes every connection (idle, mid-request or waiting
  // on an async handler; their Responders become no-ops) and joins the I/O
  // threads. Waits for synchronous handlers already running. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kcqrs::http

#endif  // KCQRS_ENGINE_HTTP_SERVER_H_
