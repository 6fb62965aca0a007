// Server: Boost.Asio/Beast behind the pimpl.
//
// TLS. With options.tls a Session is a Session<TlsStream>: an OpenSSL stream
// over the same beast::tcp_stream, whose deadlines bound the handshake and
// every read and write as they bound plain ones. The ssl::context is built
// in Start and only read afterwards (OpenSSL allows that from any thread).
//
// Threading model. One io_context runs on options.threads threads. The
// acceptor and every connection (Session) each run on their own strand, so a
// Session's members are only touched by one thread at a time and need no
// locks. What crosses threads:
//   - ServerCore, read-only after Start except for its atomics and `parked`.
//   - PendingResponse, the state behind an async handler's Responder, which
//     any thread may call. It posts the response to the Session's strand,
//     except when the handler answers before it returns, on the Session's
//     own thread (a store lookup): then the Session writes it directly,
//     without parking itself or a trip through the io_context.
//
// Lifetime. Sessions are owned by shared_ptrs held in their pending I/O
// handlers (the Beast idiom); a Session waiting on an async handler has no
// pending I/O, so it is "parked" in ServerCore::parked instead. A Responder
// holds only a weak_ptr to its Session, plus the ResponderGate: Stop closes
// the gate before tearing down the io_context, and a Responder only posts
// while holding the gate open, so nothing touches the io_context after it is
// gone, however long the engine keeps a Responder.
//
// No exception leaves this file: Asio and Beast are used through their
// error_code overloads, handlers run inside try/catch, and an I/O thread that
// sees an exception anyway logs it and keeps running.

#include "engine/http/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/http/tls_context.h"

namespace kcqrs::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// How long a connection that is being closed keeps reading (and discarding)
// what the client still sends. Closing a socket with unread input makes the
// kernel send RST, which can destroy the error response (413, 400) before the
// client reads it; draining first lets it arrive. Capped by read_timeout.
constexpr std::chrono::milliseconds kLingerTime{2000};
// Pause after a failed accept (EMFILE and the like) before trying again, so
// that a persistent failure does not spin an I/O thread.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

constexpr std::string_view kUsage =
    "expected host:port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080";

// Open while the Server runs. A Responder posts to the io_context only while
// holding `mu` shared with `open` true; Stop sets `open` false under `mu`
// exclusively before it destroys the io_context.
struct ResponderGate {
  std::shared_mutex mu;
  bool open = true;
};

class SessionBase;

// The Session whose async handler runs on this thread right now, if any. A
// response given while it is set, for that Session, is the inline answer.
thread_local SessionBase* t_answering = nullptr;

// What PendingResponse and ServerCore need of a Session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called from any thread by PendingResponse, with the gate held.
  virtual void PostAsyncResponse(uint64_t seq, Response response) = 0;
};

// What Sessions share. Owned by Server::Impl and outlives every Session.
struct ServerCore {
  ServerCore(const ServerOptions& o, Router r)
      : options(o), router(std::move(r)) {}

  const ServerOptions options;
  const Router router;
  // Set when options.tls is: every Session is then a Session<TlsStream>.
  std::shared_ptr<net::ssl::context> tls;
  const std::shared_ptr<ResponderGate> gate = std::make_shared<ResponderGate>();
  std::atomic<std::size_t> connections{0};
  // Sessions waiting on an async handler, kept alive here because no I/O
  // handler holds them. Guarded by parked_mu.
  std::mutex parked_mu;
  std::unordered_map<const SessionBase*, std::shared_ptr<SessionBase>> parked;
};

// Beast 1.74 hands out boost::string_view, which does not convert to
// std::string_view on its own.
std::string_view ToStd(beast::string_view v) { return {v.data(), v.size()}; }

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsSafeHeaderValue(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) ==
         std::string_view::npos;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a')
                                           : c;
           };
           return lower(x) == lower(y);
         });
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const net::ip::address addr = ep.address();
  std::string host = addr.to_string();
  if (addr.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

// Parses "host:port" into an endpoint; a host that is not an IP literal is
// resolved, and its first address used.
Result<tcp::endpoint> ParseListen(const std::string& listen) {
  auto invalid = [&](std::string_view why) {
    std::string msg = "listen address \"" + listen + "\": ";
    if (!why.empty()) {
      msg += why;
      msg += "; ";
    }
    msg += kUsage;
    return Status::InvalidArgument(std::move(msg));
  };
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    const std::size_t close = listen.find(']');
    if (close == std::string::npos) return invalid("missing ']'");
    host = listen.substr(1, close - 1);
    if (close + 1 >= listen.size() || listen[close + 1] != ':') {
      return invalid("missing :port after ']'");
    }
    port_text = listen.substr(close + 2);
  } else {
    const std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return invalid("missing :port");
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return invalid("an IPv6 address needs brackets");
    }
  }
  if (host.empty()) return invalid("missing host");
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid("port \"" + port_text + "\" is not a number");
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return invalid("port " + port_text + " is above 65535");

  beast::error_code ec;
  if (listen.front() == '[') {
    const net::ip::address_v6 v6 = net::ip::make_address_v6(host, ec);
    if (ec) return invalid("\"" + host + "\" is not an IPv6 address");
    return tcp::endpoint(v6, static_cast<uint16_t>(port));
  }
  const net::ip::address addr = net::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(addr, static_cast<uint16_t>(port));

  net::io_context resolver_context;
  tcp::resolver resolver(resolver_context);
  const auto results = resolver.resolve(host, port_text, ec);
  if (ec || results.empty()) {
    return invalid("host \"" + host + "\" does not resolve" +
                   (ec ? " (" + ec.message() + ")" : std::string()));
  }
  return results.begin()->endpoint();
}

// Shared state behind one async handler's Responder copies.
class PendingResponse {
 public:
  PendingResponse(Request request, std::weak_ptr<SessionBase> session,
                  std::shared_ptr<ResponderGate> gate, uint64_t seq)
      : request_(std::move(request)),
        session_(std::move(session)),
        gate_(std::move(gate)),
        seq_(seq) {}

  // A Responder that dies uncalled would leave the connection hanging;
  // answering 500 here makes that a visible handler bug instead.
  ~PendingResponse() {
    if (done_.load(std::memory_order_acquire)) return;
    try {
      {
        // After Stop nobody is waiting; dropping the Responder is expected.
        std::shared_lock<std::shared_mutex> lock(gate_->mu);
        if (!gate_->open) return;
      }
      spdlog::error(
          "http: {} {}: async handler dropped its responder "
          "without responding",
          request_.method, request_.target);
      Respond(Response::Problem(500, "Internal Server Error",
                                "the handler finished without responding"),
              false);
    } catch (...) {
      // Logging or allocation failed; the connection closes at Stop.
    }
  }

  PendingResponse(const PendingResponse&) = delete;
  PendingResponse& operator=(const PendingResponse&) = delete;

  const Request& request() const { return request_; }

  // Delivers `response` if nothing was delivered yet. warn_if_done logs a
  // second call, which is a handler bug.
  void Respond(Response response, bool warn_if_done);

 private:
  const Request request_;
  const std::weak_ptr<SessionBase> session_;
  const std::shared_ptr<ResponderGate> gate_;
  const uint64_t seq_;
  std::atomic<bool> done_{false};
};

// One connection: (TLS handshake,) reads a request, routes it, writes the
// response, repeats while keep-alive holds. Everything runs on the socket's
// strand. Stream is PlainStream or TlsStream.
template <class Stream>
class Session final : public SessionBase,
                      public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(tcp::socket&& socket, ServerCore* core, bool overloaded)
      : stream_(MakeStream(std::move(socket), core)), core_(core), overloaded_(overloaded) {
    core_->connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() override { core_->connections.fetch_sub(1, std::memory_order_relaxed); }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Run() {
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::OnStart, shared_from_this()));
  }

  void PostAsyncResponse(uint64_t seq, Response response) override {
    // t_answering first: only this Session's own thread may read its members.
    if (t_answering == this && seq == awaiting_seq_) {
      inline_response_.emplace(std::move(response));
      return;
    }
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), seq,
               response = std::move(response)]() mutable {
                self->OnAsyncResponse(seq, std::move(response));
              });
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;
  using std::enable_shared_from_this<Session<Stream>>::weak_from_this;

  static Stream MakeStream(tcp::socket&& socket, ServerCore* core) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *core->tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  // The TCP stream, whose deadlines bound every operation.
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void OnStart() {
    beast::error_code ec;
    Tcp().socket().set_option(tcp::no_delay(true), ec);  // best effort
    if constexpr (kTls) {
      // Bounded like a request: a client that connects and says nothing
      // holds the connection no longer than read_timeout.
      Tcp().expires_after(core_->options.read_timeout);
      stream_.async_handshake(
          net::ssl::stream_base::server,
          beast::bind_front_handler(&Session::OnHandshake, shared_from_this()));
    } else {
      OnReady();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      // A plain-HTTP client, a port scanner, a refused client certificate:
      // nobody to answer in HTTP. The client sees the TLS alert.
      spdlog::debug("http: TLS handshake with {} failed: {}", Peer(),
                    internal::HandshakeError(ec, stream_.native_handle()));
      return;
    }
    OnReady();
  }

  std::string Peer() {
    beast::error_code ec;
    const tcp::endpoint ep = Tcp().socket().remote_endpoint(ec);
    return ec ? std::string("a client") : FormatEndpoint(ep);
  }

  void OnReady() {
    if (overloaded_) {
      Response r = Response::Problem(
          503, "Service Unavailable",
          "the server has reached its limit of " +
              std::to_string(core_->options.max_connections) + " connections");
      r.headers.emplace_back("Retry-After", "1");
      Write(std::move(r), /*close=*/true);
      return;
    }
    ReadHeader();
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(core_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(core_->options.max_body_bytes);
    // One deadline for the whole request, header and body: it is not reset
    // before the body, so a client trickling bytes cannot extend it.
    Tcp().expires_after(core_->options.read_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnReadHeader, shared_from_this()));
  }

  void OnReadHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return HandleRequest();
    const auto& req = parser_->get();
    // curl and others wait (up to a second) for "100 Continue" before a
    // large body; answer it rather than make every such POST a second slower.
    if (req.version() >= 11 &&
        EqualsNoCase(ToStd(req[bhttp::field::expect]), "100-continue")) {
      continue_.emplace(bhttp::status::continue_, 11);
      bhttp::async_write(stream_, *continue_,
                         beast::bind_front_handler(&Session::OnContinueWritten,
                                                   shared_from_this()));
      return;
    }
    ReadBody();
  }

  void OnContinueWritten(beast::error_code ec, std::size_t) {
    continue_.reset();
    if (ec) return;  // client gone; the Session ends here
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnReadBody, shared_from_this()));
  }

  void OnReadBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    HandleRequest();
  }

  void OnReadError(beast::error_code ec) {
    // Client closed, reset, or timed out (beast closes the socket then):
    // there is nobody to answer.
    if (ec.category() !=
            bhttp::make_error_code(bhttp::error::end_of_stream).category() ||
        ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return;
    }
    version_ = 11;
    head_ = false;
    keep_alive_ = false;
    if (ec == bhttp::error::body_limit) {
      return Write(
          Response::Problem(413, "Content Too Large",
                            "the request body is larger than the limit of " +
                                std::to_string(core_->options.max_body_bytes) +
                                " bytes"),
          true);
    }
    if (ec == bhttp::error::header_limit) {
      return Write(
          Response::Problem(
              431, "Request Header Fields Too Large",
              "the request line and headers are larger than " +
                  std::to_string(core_->options.max_header_bytes) + " bytes"),
          true);
    }
    Write(Response::Problem(400, "Bad Request",
                            "malformed HTTP request: " + ec.message()),
          true);
  }

  void HandleRequest() {
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;

    Request request;
    request.method = std::string(ToStd(msg.method_string()));
    request.target = std::string(ToStd(msg.target()));
    for (const auto& field : msg) {
      std::string name(ToStd(field.name_string()));
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      const std::string_view value = ToStd(field.value());
      auto [it, inserted] = request.headers.try_emplace(std::move(name), value);
      if (!inserted) {
        it->second += ", ";
        it->second += value;
      }
    }
    request.body = std::move(msg.body());

    const Router::Match match = core_->router.Resolve(&request);
    switch (match.kind) {
      case Router::Match::Kind::kNotFound:
        return Write(Response::Problem(404, "Not Found",
                                       "no route matches " + request.method +
                                           " " + request.path),
                     false);
      case Router::Match::Kind::kBadRequest:
        return Write(Response::Problem(400, "Bad Request", match.error), false);
      case Router::Match::Kind::kMethodNotAllowed: {
        Response r =
            Response::Problem(405, "Method Not Allowed",
                              request.path + " does not support " +
                                  request.method + "; allowed: " + match.allow);
        r.headers.emplace_back("Allow", match.allow);
        return Write(std::move(r), false);
      }
      case Router::Match::Kind::kFound:
        break;
    }
    if (match.handler != nullptr) {
      return Write(CallHandler(*match.handler, request), false);
    }
    CallAsyncHandler(*match.async_handler, std::move(request));
  }

  static Response InternalError(const Request& request, std::string_view what) {
    spdlog::error("http: {} {}: handler failed: {}", request.method,
                  request.target, what);
    return Response::Problem(500, "Internal Server Error",
                             "the handler failed; see the server log");
  }

  static Response CallHandler(const Handler& handler, const Request& request) {
    try {
      return handler(request);
    } catch (const std::exception& e) {
      return InternalError(request, e.what());
    } catch (...) {
      return InternalError(request, "unknown exception");
    }
  }

  void CallAsyncHandler(const AsyncHandler& handler, Request request) {
    auto state = std::make_shared<PendingResponse>(
        std::move(request), weak_from_this(), core_->gate, ++seq_);
    awaiting_seq_ = seq_;
    SessionBase* const outer = std::exchange(t_answering, this);
    try {
      handler(state->request(),
              [state](Response r) { state->Respond(std::move(r), true); });
    } catch (const std::exception& e) {
      state->Respond(InternalError(state->request(), e.what()), false);
    } catch (...) {
      state->Respond(InternalError(state->request(), "unknown exception"),
                     false);
    }
    t_answering = outer;
    if (inline_response_) {
      awaiting_seq_ = 0;
      Response r = std::move(*inline_response_);
      inline_response_.reset();
      return Write(std::move(r), false);
    }
    // Waiting: nothing holds this Session but the handler running now, so
    // it is parked until the response is posted. A response posted from
    // another thread meanwhile runs on this strand after this returns, so
    // after the park.
    std::lock_guard<std::mutex> lock(core_->parked_mu);
    core_->parked[this] = shared_from_this();
  }

  void OnAsyncResponse(uint64_t seq, Response response) {
    if (seq != awaiting_seq_) return;  // not ours any more; cannot happen
    awaiting_seq_ = 0;
    {
      std::lock_guard<std::mutex> lock(core_->parked_mu);
      core_->parked.erase(this);
    }
    Write(std::move(response), false);
  }

  // Writes `response` to the current request; closes afterwards when `close`
  // or when the request did not ask for keep-alive.
  void Write(Response response, bool close) {
    if (response.status < 200 || response.status > 599) {
      spdlog::error("http: handler returned invalid status {}",
                    response.status);
      response = Response::Problem(500, "Internal Server Error",
                                   "the handler returned an invalid status");
    }
    // The status line and headers are written here into one reused string,
    // and the body goes out as a second buffer of the same write: Beast's
    // message serializer cost a tenth of a store lookup's CPU (its field
    // list and buffer sequences), for responses that are always one
    // complete body.
    std::string& h = head_text_;
    h.clear();
    h += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    h += std::to_string(response.status);
    h += ' ';
    const beast::string_view reason =
        bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
    h.append(reason.data(), reason.size());
    h += "\r\nServer: kcqrs\r\n";
    if (!response.content_type.empty() &&
        IsSafeHeaderValue(response.content_type)) {
      AppendField(&h, "Content-Type", response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar) ||
          !IsSafeHeaderValue(value)) {
        spdlog::warn("http: dropping malformed response header \"{}\"", name);
        continue;
      }
      // Framing is the server's business, not the handler's.
      if (EqualsNoCase(name, "content-length") ||
          EqualsNoCase(name, "transfer-encoding") ||
          EqualsNoCase(name, "connection")) {
        continue;
      }
      AppendField(&h, name, value);
    }
    body_.clear();
    // 204 and 304 carry neither a body nor (for 204) a Content-Length.
    if (response.status != 204 && response.status != 304) {
      AppendField(&h, "Content-Length", std::to_string(response.body.size()));
      if (!head_) body_ = std::move(response.body);
    }
    close_after_write_ = close || !keep_alive_;
    // As Beast's keep_alive(): HTTP/1.1 keeps the connection unless told to
    // close, HTTP/1.0 closes it unless told to keep it.
    if (version_ >= 11 && close_after_write_) {
      h += "Connection: close\r\n";
    } else if (version_ < 11 && !close_after_write_) {
      h += "Connection: keep-alive\r\n";
    }
    h += "\r\n";
    Tcp().expires_after(core_->options.read_timeout);
    const std::array<net::const_buffer, 2> buffers{net::buffer(h),
                                                   net::buffer(body_)};
    net::async_write(
        stream_, buffers,
        beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  static void AppendField(std::string* h, std::string_view name,
                          std::string_view value) {
    h->append(name);
    h->append(": ");
    h->append(value);
    h->append("\r\n");
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    // A large body (a scan) is not kept for the connection's next request.
    std::string().swap(body_);
    if (ec) return;
    if (close_after_write_) return Linger();
    ReadHeader();
  }

  // Half-closes, then discards input until the client closes or the linger
  // time passes; see kLingerTime.
  // With TLS, close_notify goes first (and the peer's is awaited, within
  // the same linger time); whatever follows is drained as raw bytes.
  void Linger() {
    Tcp().expires_after(std::min<std::chrono::milliseconds>(
        kLingerTime, core_->options.read_timeout));
    if constexpr (kTls) {
      stream_.async_shutdown(
          beast::bind_front_handler(&Session::OnTlsShutdown, shared_from_this()));
    } else {
      HalfCloseAndDrain();
    }
  }

  void OnTlsShutdown(beast::error_code ec) {
    if (ec == beast::error::timeout) return;  // linger time used up
    HalfCloseAndDrain();
  }

  void HalfCloseAndDrain() {
    beast::error_code ec;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return;
    Drain();
  }

  void Drain() {
    Tcp().async_read_some(
        net::buffer(drain_),
        beast::bind_front_handler(&Session::OnDrain, shared_from_this()));
  }

  void OnDrain(beast::error_code ec, std::size_t) {
    if (ec) return;  // EOF, reset or linger deadline: done, socket closes
    Drain();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::array<char, 4096> drain_;
  ServerCore* const core_;
  const bool overloaded_;
  // The request being answered.
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool close_after_write_ = false;
  uint64_t seq_ = 0;           // async requests started on this connection
  uint64_t awaiting_seq_ = 0;  // the one waiting for a response, or 0
  // The async handler's answer given before it returned (see t_answering).
  std::optional<Response> inline_response_;
  // The response being written: status line and headers, then the body.
  std::string head_text_;
  std::string body_;
};

void PendingResponse::Respond(Response response, bool warn_if_done) {
  if (done_.exchange(true, std::memory_order_acq_rel)) {
    if (warn_if_done) {
      spdlog::warn("http: {} {}: responder called more than once; ignored",
                   request_.method, request_.target);
    }
    return;
  }
  std::shared_lock<std::shared_mutex> lock(gate_->mu);
  if (!gate_->open) return;  // server stopped; the connection is gone
  if (std::shared_ptr<SessionBase> session = session_.lock()) {
    session->PostAsyncResponse(seq_, std::move(response));
  }
}

}  // namespace

struct Server::Impl {
  Impl(const ServerOptions& options, Router router)
      : core(options, std::move(router)),
        ioc(std::make_unique<net::io_context>(options.threads)) {}
  ~Impl() { Stop(); }

  void Accept() {
    acceptor->async_accept(net::make_strand(*ioc),
                           [this](beast::error_code ec, tcp::socket socket) {
                             OnAccept(ec, std::move(socket));
                           });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("http: accept on {} failed: {}; retrying", address,
                   ec.message());
      accept_retry->expires_after(kAcceptRetryDelay);
      accept_retry->async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
      return;
    }
    const bool overloaded = core.connections.load(std::memory_order_relaxed) >=
                            core.options.max_connections;
    if (core.tls) {
      std::make_shared<Session<TlsStream>>(std::move(socket), &core, overloaded)->Run();
    } else {
      std::make_shared<Session<PlainStream>>(std::move(socket), &core, overloaded)->Run();
    }
    Accept();
  }

  bool OnIoThread() const {
    const std::thread::id self = std::this_thread::get_id();
    return std::any_of(
        threads.begin(), threads.end(),
        [&](const std::thread& t) { return t.get_id() == self; });
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu);
    if (stopped) return;
    if (OnIoThread()) {
      spdlog::error(
          "http: Server::Stop called from a handler on {}; "
          "ignored (it would join its own thread)",
          address);
      return;
    }
    stopped = true;
    {
      std::unique_lock<std::shared_mutex> gate_lock(core.gate->mu);
      core.gate->open = false;
    }
    ioc->stop();
    for (std::thread& t : threads) {
      if (t.joinable()) t.join();
    }
    threads.clear();
    // Parked Sessions and the ones held by pending handlers are destroyed
    // here, closing their sockets, while the io_context still exists.
    std::unordered_map<const SessionBase*, std::shared_ptr<SessionBase>> parked;
    {
      std::lock_guard<std::mutex> parked_lock(core.parked_mu);
      parked.swap(core.parked);
    }
    parked.clear();
    accept_retry.reset();
    acceptor.reset();
    ioc.reset();
  }

  ServerCore core;
  std::unique_ptr<net::io_context> ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<net::steady_timer> accept_retry;
  std::vector<std::thread> threads;
  std::string address;  // as bound
  uint16_t port = 0;
  std::mutex stop_mu;
  bool stopped = false;  // guarded by stop_mu
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

std::string Server::local_address() const { return impl_->address; }

uint16_t Server::port() const { return impl_->port; }

void Server::Stop() { impl_->Stop(); }

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                              Router router) {
  if (options.threads < 1) {
    return Status::InvalidArgument("http threads: expected >= 1, got " +
                                   std::to_string(options.threads));
  }
  if (options.read_timeout.count() <= 0) {
    return Status::InvalidArgument(
        "http read_timeout: expected > 0 ms, got " +
        std::to_string(options.read_timeout.count()));
  }
  if (options.max_connections < 1) {
    return Status::InvalidArgument(
        "http max_connections: expected >= 1, got 0");
  }
  if (options.max_header_bytes < 1) {
    return Status::InvalidArgument(
        "http max_header_bytes: expected >= 1, got 0");
  }
  KCQRS_RETURN_IF_ERROR(router.status());

  try {
    Result<tcp::endpoint> endpoint = ParseListen(options.listen);
    if (!endpoint.ok()) return endpoint.status();

    auto impl = std::make_unique<Impl>(options, std::move(router));
    if (options.tls.enabled()) {
      auto tls = internal::MakeServerContext(options.tls);
      if (!tls.ok()) return tls.status();
      impl->core.tls = std::move(tls).value();
    }
    auto fail = [&](std::string_view what, const beast::error_code& ec) {
      std::string msg = "cannot listen on " + options.listen;
      if (options.listen != FormatEndpoint(*endpoint)) {
        msg += " (" + FormatEndpoint(*endpoint) + ")";
      }
      msg += ": ";
      msg += what;
      msg += ": ";
      msg += ec.message();
      return ec == net::error::address_in_use ? Status::Unavailable(msg)
                                              : Status::IoError(msg);
    };
    impl->acceptor =
        std::make_unique<tcp::acceptor>(net::make_strand(*impl->ioc));
    tcp::acceptor& acceptor = *impl->acceptor;
    beast::error_code ec;
    acceptor.open(endpoint->protocol(), ec);
    if (ec) return fail("open", ec);
    // Lets a restarted server bind while old connections sit in TIME_WAIT;
    // on Linux it does not allow two listeners on one port.
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("setsockopt", ec);
    acceptor.bind(*endpoint, ec);
    if (ec) return fail("bind", ec);
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen", ec);
    const tcp::endpoint bound = acceptor.local_endpoint(ec);
    if (ec) return fail("getsockname", ec);
    impl->address = FormatEndpoint(bound);
    impl->port = bound.port();
    impl->accept_retry =
        std::make_unique<net::steady_timer>(acceptor.get_executor());

    impl->Accept();
    impl->threads.reserve(static_cast<std::size_t>(options.threads));
    for (int i = 0; i < options.threads; ++i) {
      impl->threads.emplace_back([ioc = impl->ioc.get()] {
        while (true) {
          try {
            ioc->run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("http: I/O thread caught: {}", e.what());
          } catch (...) {
            spdlog::error("http: I/O thread caught an unknown exception");
          }
        }
      });
    }
    spdlog::info("http: listening on {} ({})", impl->address,
                 options.tls.enabled()
                     ? std::string("HTTPS, client certificates ") +
                           ClientAuthName(options.tls.client_auth)
                     : std::string("plain HTTP"));
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::Internal("http: starting the server on " + options.listen +
                            ": " + e.what());
  }
}

}  // namespace kcqrs::http
