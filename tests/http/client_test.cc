// http::Client against engine/http's own server (and, where the server
// would be too polite, a raw socket) on loopback: what an instance that
// forwards a request to another one sees.
#include "engine/http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/http/server.h"

namespace kcqrs::http {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

Result<ClientResponse> SendAndWait(Client& client, ClientRequest request) {
  std::promise<Result<ClientResponse>> promise;
  auto future = promise.get_future();
  client.Send(std::move(request),
              [&promise](Result<ClientResponse> r) { promise.set_value(std::move(r)); });
  return future.get();
}

ClientRequest To(std::string url, std::string target = "/",
                 milliseconds timeout = milliseconds(0)) {
  ClientRequest r;
  r.url = std::move(url);
  r.target = std::move(target);
  r.timeout = timeout;
  return r;
}

std::unique_ptr<Server> StartServer(Router router) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = Server::Start(options, std::move(router));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

std::unique_ptr<Client> NewClient(ClientOptions options = {}) {
  auto client = Client::Create(options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

// A raw listener on loopback, for what engine/http's server never does:
// count connections, close one after answering without saying so.
class RawServer {
 public:
  // Each accepted connection answers requests with `body`, keep-alive,
  // `answers_per_connection` times, then closes silently.
  RawServer(std::string body, int answers_per_connection)
      : body_(std::move(body)), per_connection_(answers_per_connection) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  void Serve() {
    while (true) {
      const int conn = accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      ++accepted_;
      for (int i = 0; i < per_connection_; ++i) {
        std::string in;
        char buf[4096];
        while (in.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = read(conn, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        if (in.find("\r\n\r\n") == std::string::npos) break;
        const std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                std::to_string(body_.size()) + "\r\n\r\n" + body_;
        if (write(conn, out.data(), out.size()) != static_cast<ssize_t>(out.size())) break;
      }
      close(conn);
    }
  }
  const std::string body_;
  const int per_connection_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(HttpClientTest, SendsMethodTargetHeadersAndBodyAndReadsTheAnswer) {
  Router router;
  router.Add("POST", "/echo/{name}", [](const Request& r) {
    Response out = Response::Text(
        201, r.path_params.at("name") + "|" + r.Query("q").value_or("") + "|" +
                 r.Header("x-test").value_or("") + "|" + r.body,
        "text/x-echo");
    out.headers.emplace_back("X-Answer", "yes");
    return out;
  });
  auto server = StartServer(std::move(router));
  auto client = NewClient();
  ClientRequest req;
  req.method = "POST";
  req.url = "http://" + server->local_address();
  req.target = "/echo/a%2Fb?q=1";
  req.headers = {{"X-Test", "t"}};
  req.body = "hello";
  auto r = SendAndWait(*client, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->content_type, "text/x-echo");
  EXPECT_EQ(r->body, "a/b|1|t|hello");
  EXPECT_EQ(r->Header("x-answer").value_or(""), "yes");

  // Error statuses are answers, not errors.
  req.target = "/nowhere";
  auto missing = SendAndWait(*client, req);
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->content_type, "application/problem+json");
}

TEST(HttpClientTest, ReusesKeepAliveConnectionsAndReplacesOnesTheServerClosed) {
  RawServer keeps("ok", 100);
  auto client = NewClient();
  for (int i = 0; i < 5; ++i) {
    auto r = SendAndWait(*client, To(keeps.url()));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(keeps.accepted(), 1) << "five requests in a row need one connection";

  // This one closes every connection after one answer, without saying so:
  // the pooled connection is dead when reused, and the request goes again.
  RawServer closes("fine", 1);
  for (int i = 0; i < 3; ++i) {
    auto r = SendAndWait(*client, To(closes.url()));
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.status().ToString();
    EXPECT_EQ(r->body, "fine");
  }
  EXPECT_EQ(closes.accepted(), 3);
}

TEST(HttpClientTest, ConcurrentRequestsAllAnswered) {
  Router router;
  router.Add("GET", "/n/{n}", [](const Request& r) {
    return Response::Text(200, r.path_params.at("n"));
  });
  auto server = StartServer(std::move(router));
  auto client = NewClient();
  constexpr int kRequests = 50;
  std::vector<std::promise<Result<ClientResponse>>> promises(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    client->Send(To("http://" + server->local_address(), "/n/" + std::to_string(i)),
                 [&promises, i](Result<ClientResponse> r) { promises[i].set_value(std::move(r)); });
  }
  for (int i = 0; i < kRequests; ++i) {
    auto r = promises[i].get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

TEST(HttpClientTest, NobodyListeningIsUnavailableAtOnce) {
  // A port that was just free: bind, note it, close.
  std::string url;
  {
    RawServer gone("", 0);
    url = gone.url();
  }
  auto client = NewClient();
  const auto start = SteadyClock::now();
  auto r = SendAndWait(*client, To(url, "/x"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(url + "/x"), std::string::npos) << r.status().ToString();
  EXPECT_LT(SteadyClock::now() - start, milliseconds(500));
}

// A host that accepts no connection and refuses none (its backlog is
// full): the connect timeout answers, not the request timeout.
TEST(HttpClientTest, ConnectionNeverEstablishedTimesOutAfterTheConnectTimeout) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 0), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  // Fill the backlog with connections nobody accepts.
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(c);
  }
  std::this_thread::sleep_for(milliseconds(50));
  auto client = NewClient([] { ClientOptions o; o.connect_timeout = milliseconds(300); return o; }());
  const auto start = SteadyClock::now();
  auto r = SendAndWait(*client, To("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "/",
                                        milliseconds(10000)));
  const auto took = SteadyClock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsTimedOut()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no connection within 300 ms"), std::string::npos)
      << r.status().ToString();
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(2000));
  for (int c : fillers) close(c);
  close(fd);
}

TEST(HttpClientTest, AnswerNotInTimeIsTimedOut) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  Router router;
  router.AddAsync("GET", "/slow", [release](const Request&, Responder respond) {
    std::thread([release, respond = std::move(respond)] {
      while (!*release) std::this_thread::sleep_for(milliseconds(10));
      respond(Response::Text(200, "late"));
    }).detach();
  });
  auto server = StartServer(std::move(router));
  auto client = NewClient();
  const auto start = SteadyClock::now();
  auto r = SendAndWait(*client, To("http://" + server->local_address(), "/slow",
                                        milliseconds(300)));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsTimedOut()) << r.status().ToString();
  EXPECT_LT(SteadyClock::now() - start, milliseconds(2000));
  *release = true;
  server->Stop();
}

TEST(HttpClientTest, AnswerLargerThanTheLimitIsAnError) {
  Router router;
  router.Add("GET", "/big", [](const Request&) { return Response::Text(200, std::string(5000, 'x')); });
  auto server = StartServer(std::move(router));
  auto client = NewClient([] { ClientOptions o; o.max_response_bytes = 1000; return o; }());
  auto r = SendAndWait(*client, To("http://" + server->local_address(), "/big"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == Status::Code::kIoError) << r.status().ToString();
  EXPECT_NE(r.status().message().find("larger than the limit of 1000 bytes"), std::string::npos);
}

TEST(HttpClientTest, BadUrlIsInvalidArgument) {
  auto client = NewClient();
  for (const char* url : {"https:/a:1", "http://", "https://", "http://a:99999", "ftp://x", "http://h:p"}) {
    auto r = SendAndWait(*client, To(url));
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << url << ": " << r.status().ToString();
  }
}

TEST(HttpClientTest, StopAnswersWhatIsInFlightAndLaterSendsAtOnce) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  Router router;
  router.AddAsync("GET", "/hang", [release](const Request&, Responder respond) {
    std::thread([release, respond = std::move(respond)] {
      while (!*release) std::this_thread::sleep_for(milliseconds(10));
      respond(Response::Text(200, "late"));
    }).detach();
  });
  auto server = StartServer(std::move(router));
  auto client = NewClient();
  std::promise<Result<ClientResponse>> promise;
  client->Send(To("http://" + server->local_address(), "/hang"),
               [&promise](Result<ClientResponse> r) { promise.set_value(std::move(r)); });
  std::this_thread::sleep_for(milliseconds(100));
  client->Stop();
  auto r = promise.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  auto after = SendAndWait(*client, To("http://" + server->local_address()));
  EXPECT_TRUE(after.status().IsUnavailable()) << after.status().ToString();
  *release = true;
  server->Stop();
}

}  // namespace
}  // namespace kcqrs::http
