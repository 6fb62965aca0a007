// HTTP request parsing and routing, as the server does it: raw bytes are
// written to a real http::Server on loopback, so they go through Beast's
// parser, the session (keep-alive, pipelining, 100-continue, limits, HEAD),
// the Router and the handlers. The routes are the engine's own patterns
// (engine/serving/http_api.cc) with handlers that read every part of the request
// (path parameters, query, headers, body) and echo them back, so what the
// Router decodes is used; a query parameter "throw" makes a handler throw,
// "drop" makes an asynchronous one lose its Responder, "later" answers from
// another thread.
//
// Input: the bytes a client sends on one connection; the client then shuts
// its sending side and reads until the server closes. What must hold: no
// crash or sanitizer report in the server, whatever the server writes back
// starts as an HTTP/1.x response, and the server answers and closes within
// 10 s (its read timeout is 2 s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "engine/http/server.h"

namespace {

using kcqrs::http::Request;
using kcqrs::http::Responder;
using kcqrs::http::Response;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "http_fuzzer: %s\n", what.c_str());
  std::abort();
}

// Everything the Router and the server decoded, as JSON.
std::string Echo(const Request& r) {
  std::string out = "{\"method\":" + kcqrs::http::JsonQuote(r.method) +
                    ",\"path\":" + kcqrs::http::JsonQuote(r.path) + ",\"params\":{";
  const char* sep = "";
  for (const auto& [k, v] : r.path_params) {
    out += sep + kcqrs::http::JsonQuote(k) + ":" + kcqrs::http::JsonQuote(v);
    sep = ",";
  }
  out += "},\"query\":[";
  sep = "";
  for (const auto& [k, v] : r.query) {
    out += sep + kcqrs::http::JsonQuote(k) + "," + kcqrs::http::JsonQuote(v);
    sep = ",";
  }
  out += "],\"headers\":" + std::to_string(r.headers.size()) +
         ",\"body\":" + kcqrs::http::JsonQuote(r.body) + "}";
  (void)r.Header("authorization");
  (void)r.Query("position");
  return out;
}

Response Sync(const Request& r) {
  if (r.Query("throw")) throw std::runtime_error("handler threw on purpose");
  return Response::Json(200, Echo(r));
}

void Async(const Request& r, Responder respond) {
  if (r.Query("throw")) throw std::runtime_error("handler threw on purpose");
  if (r.Query("drop")) return;  // the last copy of respond dies: a 500
  Response response = Response::Problem(404, "Not Found", "no key " + Echo(r));
  if (r.Query("later")) {
    std::thread([respond = std::move(respond), response = std::move(response)]() mutable {
      respond(std::move(response));
    }).detach();
    return;
  }
  respond(std::move(response));
  respond(Response::Json(200, "{}"));  // a second call is ignored
}

kcqrs::http::Server* StartServer() {
  // Handler failures are logged by design; at thousands of runs a second
  // the log would cost more than the run.
  spdlog::set_level(spdlog::level::off);
  kcqrs::http::Router router;
  for (const char* path : {"/healthz", "/readyz", "/stats", "/metrics", "/stores", "/topology", "/"}) {
    router.Add("GET", path, Sync);
  }
  router.AddAsync("GET", "/stores/{store}/keys/{key}", Async);
  router.AddAsync("GET", "/stores/{store}/keys", Async);
  router.AddAsync("POST", "/commands/{aggregate}", Async);
  kcqrs::http::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  // Small limits, so that short inputs reach the 413 and 431 answers.
  options.max_body_bytes = 512;
  options.max_header_bytes = 1024;
  options.read_timeout = std::chrono::milliseconds(2000);
  auto server = kcqrs::http::Server::Start(options, std::move(router));
  if (!server.ok()) Fail("cannot start the server: " + server.status().ToString());
  return server->release();  // lives as long as the process
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kcqrs::http::Server* server = StartServer();

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Fail("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Fail("connect failed");

  // Write and read together: a server that answers before it has read
  // everything (413, 431, 400) must not deadlock a large input.
  std::string received;
  size_t sent = 0;
  bool shut = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (sent == size && !shut) {
      shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 100) < 0) Fail("poll failed");
    if (p.revents & POLLOUT) {
      const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else {
        sent = size;  // the server closed its side; stop sending
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      Fail("the server neither answered nor closed within 10 s");
    }
  }
  close(fd);

  if (!received.empty() && received.compare(0, 7, "HTTP/1.") != 0) {
    Fail("the server wrote something that is not an HTTP response: " + received.substr(0, 200));
  }
  return 0;
}
