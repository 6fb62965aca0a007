// Client: Boost.Asio/Beast behind the pimpl.
//
// Threading model. One io_context on one thread. Everything that touches a
// socket, the idle pool or the set of exchanges in flight runs on that
// thread, so none of it needs a lock; Send() only posts to it.
//
// TLS. An https:// exchange runs over an OpenSSL stream on the same
// tcp_stream (whose deadlines bound the handshake as everything else); a
// Conn holds one or the other, and Visit hands the right one to Beast.
//
// Lifetime. An Exchange (one request) is owned by the shared_ptrs in its
// pending handlers, as in the server. Stop() closes every socket on the I/O
// thread, so each pending operation completes (aborted) and each Exchange
// calls its callback; then the thread runs out of work and is joined.
//
// No exception leaves this file: Asio and Beast are used through their
// error_code overloads, and a callback that throws is logged.

#include "engine/http/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <set>
#include <thread>

#include "engine/http/tls_context.h"

namespace kcqrs::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection, plain or TLS.
struct Conn {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<TlsStream> tls;

  beast::tcp_stream& Tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  template <class F>
  void Visit(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }
};

std::string_view ToStd(beast::string_view v) { return {v.data(), v.size()}; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

struct Url {
  bool tls = false;    // https
  std::string host;    // without brackets
  std::string port;    // digits
  std::string prefix;  // path prefix, "" or "/base"
  std::string key() const { return (tls ? "https://" : "http://") + host + ":" + port; }
};

Result<Url> ParseUrl(const std::string& url) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("url \"" + url + "\": " + std::string(why) +
                                   " (expected http://host:port or https://host:port)");
  };
  auto has_scheme = [&](std::string_view scheme) {
    return url.size() >= scheme.size() && EqualsNoCase(url.substr(0, scheme.size()), scheme);
  };
  Url out;
  out.tls = has_scheme("https://");
  if (!out.tls && !has_scheme("http://")) return bad("not an http:// or https:// url");
  std::string rest = url.substr(out.tls ? 8 : 7);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    out.prefix = rest.substr(slash);
    rest.resize(slash);
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  std::string port = out.tls ? "443" : "80";
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("expected ':' after ']'");
      port = rest.substr(close + 2);
    }
  } else {
    const size_t colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (out.host.empty()) return bad("missing host");
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return bad("bad port \"" + port + "\"");
  }
  out.port = port;
  return out;
}

void Call(const ClientCallback& done, Result<ClientResponse> result) {
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    spdlog::error("http client: a response callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http client: a response callback threw");
  }
}

}  // namespace

std::optional<std::string> ClientResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsNoCase(k, name)) return v;
  }
  return std::nullopt;
}

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  explicit Impl(const ClientOptions& o) : options(o), work(net::make_work_guard(ioc)) {}

  class Exchange;

  struct Idle {
    std::unique_ptr<Conn> stream;
    SteadyClock::time_point since;
  };

  // I/O thread only.
  std::unique_ptr<Conn> TakeIdle(const std::string& key) {
    auto it = pool.find(key);
    if (it == pool.end()) return nullptr;
    const auto now = SteadyClock::now();
    while (!it->second.empty()) {
      Idle idle = std::move(it->second.back());
      it->second.pop_back();
      if (now - idle.since <= options.max_idle_time && idle.stream->Tcp().socket().is_open()) {
        return std::move(idle.stream);
      }
    }
    return nullptr;
  }
  void GiveBack(const std::string& key, std::unique_ptr<Conn> stream) {
    if (stopping) return;
    auto& idle = pool[key];
    const auto now = SteadyClock::now();
    // The oldest are the likeliest to have been closed by the server.
    while (!idle.empty() && (idle.size() >= options.max_idle_per_host ||
                             now - idle.front().since > options.max_idle_time)) {
      idle.pop_front();
    }
    if (options.max_idle_per_host > 0) idle.push_back({std::move(stream), now});
  }

  const ClientOptions options;
  // For https urls: made by Create when the options name files, else at
  // the first https request, on the I/O thread, which alone uses it.
  std::shared_ptr<net::ssl::context> tls;
  net::io_context ioc{1};
  net::executor_work_guard<net::io_context::executor_type> work;
  std::thread thread;
  std::shared_mutex stop_mu;
  bool stopped = false;  // guarded by stop_mu
  // I/O thread only:
  bool stopping = false;
  std::map<std::string, std::deque<Idle>> pool;
  std::set<std::shared_ptr<Exchange>> in_flight;
};

// One request, from connect (or a reused connection) to its callback.
class Client::Impl::Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(Impl* impl, Url url, ClientRequest request, ClientCallback done)
      : impl_(impl),
        url_(std::move(url)),
        request_(std::move(request)),
        done_(std::move(done)),
        timeout_(request_.timeout.count() > 0 ? request_.timeout
                                              : impl->options.request_timeout),
        deadline_(SteadyClock::now() + timeout_),
        resolver_(impl->ioc),
        timer_(impl->ioc) {
    req_.version(11);
    req_.method_string(request_.method);
    req_.target(url_.prefix + request_.target);
    req_.set(bhttp::field::host, url_.host + ":" + url_.port);
    for (const auto& [name, value] : request_.headers) {
      if (EqualsNoCase(name, "host") || EqualsNoCase(name, "content-length") ||
          EqualsNoCase(name, "connection") || EqualsNoCase(name, "transfer-encoding")) {
        continue;
      }
      req_.insert(name, value);
    }
    req_.body() = request_.body;
    req_.keep_alive(true);
    req_.prepare_payload();
  }

  // On the I/O thread.
  void Start() {
    if (impl_->stopping) return Finish(Status::Unavailable(What() + ": client stopped"));
    impl_->in_flight.insert(shared_from_this());
    stream_ = impl_->TakeIdle(url_.key());
    if (stream_) {
      reused_ = true;
      return Write();
    }
    Connect();
  }

  // Stop(): on the I/O thread.
  void Abort() {
    aborted_ = true;
    resolver_.cancel();
    timer_.cancel();
    if (stream_) stream_->Tcp().close();
  }

 private:
  std::string What() const { return request_.method + " " + request_.url + request_.target; }

  void Connect() {
    reused_ = false;
    stream_ = std::make_unique<Conn>();
    if (url_.tls) {
      if (impl_->tls == nullptr) {
        auto tls = internal::MakeClientContext(impl_->options.tls);
        if (!tls.ok()) return Finish(tls.status().WithContext(What()));
        impl_->tls = std::move(tls).value();
      }
      stream_->tls = std::make_unique<TlsStream>(impl_->ioc, *impl_->tls);
      if (!internal::ExpectPeerName(stream_->tls->native_handle(), url_.host)) {
        return Finish(Status::InvalidArgument(What() + ": cannot verify TLS against host " +
                                              url_.host));
      }
    } else {
      stream_->plain = std::make_unique<beast::tcp_stream>(impl_->ioc);
    }
    const auto connect_by = std::min(SteadyClock::now() + impl_->options.connect_timeout,
                                     deadline_);
    beast::error_code ec;
    const net::ip::address addr = net::ip::make_address(url_.host, ec);
    if (!ec) {
      const tcp::endpoint ep(addr, static_cast<uint16_t>(std::stoi(url_.port)));
      stream_->Tcp().expires_at(connect_by);
      stream_->Tcp().async_connect(ep, [self = shared_from_this()](beast::error_code e) {
        self->OnConnect(e);
      });
      return;
    }
    // The resolver has no deadline of its own: the timer cancels it.
    timer_.expires_at(connect_by);
    timer_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) {
        self->resolve_timed_out_ = true;
        self->resolver_.cancel();
      }
    });
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this(), connect_by](beast::error_code e,
                                                tcp::resolver::results_type results) {
          self->timer_.cancel();
          if (self->aborted_) return self->Finish(Status::Unavailable(self->What() + ": client stopped"));
          if (self->resolve_timed_out_) {
            return self->Finish(Status::TimedOut(self->What() + ": resolving " + self->url_.host +
                                                 " took longer than the connect timeout"));
          }
          if (e) {
            return self->Finish(Status::Unavailable(self->What() + ": cannot resolve " +
                                                    self->url_.host + ": " + e.message()));
          }
          self->stream_->Tcp().expires_at(connect_by);
          self->stream_->Tcp().async_connect(
              results, [self](beast::error_code ce, const tcp::endpoint&) { self->OnConnect(ce); });
        });
  }

  void OnConnect(beast::error_code ec) {
    if (aborted_) return Finish(Status::Unavailable(What() + ": client stopped"));
    if (ec == beast::error::timeout) {
      const bool connect_bound =
          impl_->options.connect_timeout < timeout_;  // which of the two ran out
      return Finish(Status::TimedOut(
          What() + ": no connection within " +
          std::to_string((connect_bound ? impl_->options.connect_timeout : timeout_).count()) +
          " ms"));
    }
    if (ec) return Finish(Status::Unavailable(What() + ": cannot connect: " + ec.message()));
    beast::error_code ignored;
    stream_->Tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (!stream_->tls) return Write();
    stream_->Tcp().expires_at(deadline_);
    stream_->tls->async_handshake(net::ssl::stream_base::client,
                                  [self = shared_from_this()](beast::error_code e) {
                                    self->OnHandshake(e);
                                  });
  }

  void OnHandshake(beast::error_code ec) {
    if (aborted_) return Finish(Status::Unavailable(What() + ": client stopped"));
    if (ec == beast::error::timeout) {
      return Finish(Status::TimedOut(What() + ": no TLS handshake within " +
                                     std::to_string(timeout_.count()) + " ms"));
    }
    if (ec) {
      return Finish(Status::Unavailable(
          What() + ": TLS handshake: " +
          internal::HandshakeError(ec, stream_->tls->native_handle())));
    }
    Write();
  }

  void Write() {
    stream_->Tcp().expires_at(deadline_);
    stream_->Visit([this](auto& s) {
      bhttp::async_write(s, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->OnWrite(ec);
      });
    });
  }

  void OnWrite(beast::error_code ec) {
    if (aborted_) return Finish(Status::Unavailable(What() + ": client stopped"));
    if (ec) return Failed(ec, "sending the request");
    parser_.emplace();
    parser_->body_limit(impl_->options.max_response_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(impl_->options.max_header_bytes, UINT32_MAX)));
    buffer_.clear();
    stream_->Visit([this](auto& s) {
      bhttp::async_read_header(s, buffer_, *parser_,
                               [self = shared_from_this()](beast::error_code e, std::size_t) {
                                 self->OnReadHeader(e);
                               });
    });
  }

  void OnReadHeader(beast::error_code ec) {
    if (aborted_) return Finish(Status::Unavailable(What() + ": client stopped"));
    if (ec) return Failed(ec, "reading the answer");
    // Beast 1.74 does not apply body_limit to a Content-Length it parses
    // eagerly together with the body (as async_read does); checked here.
    if (auto length = parser_->content_length();
        length && *length > impl_->options.max_response_bytes) {
      return Failed(bhttp::error::body_limit, "reading the answer");
    }
    stream_->Visit([this](auto& s) {
      bhttp::async_read(s, buffer_, *parser_,
                        [self = shared_from_this()](beast::error_code e, std::size_t) {
                          self->OnRead(e);
                        });
    });
  }

  void OnRead(beast::error_code ec) {
    if (aborted_) return Finish(Status::Unavailable(What() + ": client stopped"));
    if (ec) return Failed(ec, "reading the answer");
    auto& msg = parser_->get();
    ClientResponse response;
    response.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      response.headers.emplace_back(std::string(ToStd(field.name_string())),
                                    std::string(ToStd(field.value())));
    }
    response.content_type = std::string(ToStd(msg[bhttp::field::content_type]));
    const bool keep = msg.keep_alive();
    response.body = std::move(msg.body());
    if (keep && !impl_->stopping) {
      impl_->GiveBack(url_.key(), std::move(stream_));
    }
    Finish(std::move(response));
  }

  // A failure after connecting. A reused connection the server closed while
  // it was idle fails before any byte of an answer: that is no answer from
  // the server, so the request goes once more on a new connection.
  void Failed(beast::error_code ec, std::string_view doing) {
    const bool nothing_read = !parser_ || !parser_->got_some();
    if (reused_ && nothing_read && ec != beast::error::timeout &&
        SteadyClock::now() < deadline_) {
      stream_->Tcp().close();
      return Connect();
    }
    if (ec == beast::error::timeout) {
      return Finish(Status::TimedOut(What() + ": no whole answer within " +
                                     std::to_string(timeout_.count()) + " ms"));
    }
    if (ec == bhttp::error::body_limit) {
      return Finish(Status::IoError(What() + ": the answer is larger than the limit of " +
                                    std::to_string(impl_->options.max_response_bytes) +
                                    " bytes"));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return Finish(Status::IoError(What() + ": not an HTTP answer: " + ec.message()));
    }
    Finish(Status::Unavailable(What() + ": " + std::string(doing) + ": " + ec.message()));
  }

  void Finish(Result<ClientResponse> result) {
    if (finished_) return;
    finished_ = true;
    if (stream_) {
      beast::error_code ignored;
      stream_->Tcp().socket().close(ignored);
      stream_.reset();
    }
    auto self = shared_from_this();
    impl_->in_flight.erase(self);
    Call(done_, std::move(result));
  }

  Impl* const impl_;
  const Url url_;
  const ClientRequest request_;
  const ClientCallback done_;
  const std::chrono::milliseconds timeout_;
  const SteadyClock::time_point deadline_;
  tcp::resolver resolver_;
  net::steady_timer timer_;
  std::unique_ptr<Conn> stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  bool reused_ = false;
  bool resolve_timed_out_ = false;
  bool aborted_ = false;
  bool finished_ = false;
};

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() { Stop(); }

Result<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.connect_timeout.count() <= 0) {
    return Status::InvalidArgument("http client connect_timeout: expected > 0 ms, got " +
                                   std::to_string(options.connect_timeout.count()));
  }
  if (options.request_timeout.count() <= 0) {
    return Status::InvalidArgument("http client request_timeout: expected > 0 ms, got " +
                                   std::to_string(options.request_timeout.count()));
  }
  try {
    auto impl = std::make_shared<Impl>(options);
    // Files named are loaded now, so that a wrong one fails the start. The
    // system's trust store is loaded at the first https request instead:
    // parsing its certificates took 217 million instructions (about 70 ms)
    // of every start, before the instance could be ready, and most
    // deployments never send one.
    if (!options.tls.ca_file.empty() || !options.tls.cert_file.empty() ||
        !options.tls.key_file.empty()) {
      auto tls = internal::MakeClientContext(options.tls);
      if (!tls.ok()) return tls.status();
      impl->tls = std::move(tls).value();
    }
    impl->thread = std::thread([raw = impl.get()] {
      while (true) {
        try {
          raw->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http client: I/O thread caught: {}", e.what());
        } catch (...) {
          spdlog::error("http client: I/O thread caught an unknown exception");
        }
      }
    });
    return std::unique_ptr<Client>(new Client(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("http client: starting: ") + e.what());
  }
}

void Client::Send(ClientRequest request, ClientCallback done) {
  // Held while posting, so that Stop cannot end the I/O thread between the
  // check and the post (a request posted then would never be answered).
  std::shared_lock<std::shared_mutex> lock(impl_->stop_mu);
  if (impl_->stopped) {
    lock.unlock();
    return Call(done, Status::Unavailable(request.method + " " + request.url + request.target +
                                          ": client stopped"));
  }
  Result<Url> url = ParseUrl(request.url);
  try {
    net::post(impl_->ioc, [impl = impl_.get(), url = std::move(url),
                           request = std::move(request), done = std::move(done)]() mutable {
      if (!url.ok()) return Call(done, url.status());
      std::make_shared<Impl::Exchange>(impl, std::move(url).value(), std::move(request),
                                       std::move(done))
          ->Start();
    });
  } catch (const std::exception& e) {
    spdlog::error("http client: queueing a request: {}", e.what());
  }
}

void Client::Stop() {
  if (impl_->thread.get_id() == std::this_thread::get_id()) {
    spdlog::error("http client: Stop called from a callback; ignored (it would join itself)");
    return;
  }
  {
    std::unique_lock<std::shared_mutex> lock(impl_->stop_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  net::post(impl_->ioc, [impl = impl_.get()] {
    impl->stopping = true;
    impl->pool.clear();
    // Copies: Abort completes nothing inline, but Finish erases later.
    auto in_flight = impl->in_flight;
    for (const auto& exchange : in_flight) exchange->Abort();
  });
  impl_->work.reset();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace kcqrs::http
