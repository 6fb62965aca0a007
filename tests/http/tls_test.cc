// HTTPS: the server with a certificate made for the run, talked to by the
// real curl binary (as an operator would) and by http::Client (as another
// instance does when it forwards a request): who gets in, who does not, and
// what a bad certificate or key file says at start.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "engine/http/client.h"
#include "engine/http/server.h"
#include "engine/http/tls.h"
#include "gmock/gmock.h"
#include "tests/support/test_certs.h"

namespace kcqrs::http {
namespace {

using kcqrs::testing::Curl;
using kcqrs::testing::TestCerts;
using ::testing::HasSubstr;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new TestCerts(); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  ServerTlsOptions Tls(ClientAuth auth = ClientAuth::kNone) const {
    ServerTlsOptions tls;
    tls.cert_file = certs_->File("server.crt");
    tls.key_file = certs_->File("server.key");
    if (auth != ClientAuth::kNone) tls.ca_file = certs_->File("ca.crt");
    tls.client_auth = auth;
    return tls;
  }

  void Serve(const ServerTlsOptions& tls, int threads = 1) {
    Router router;
    router.Add("GET", "/ping", [](const Request&) { return Response::Json(200, "{\"pong\":1}"); });
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = threads;
    options.tls = tls;
    auto server = Server::Start(options, std::move(router));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  std::string Url(const std::string& scheme = "https", const std::string& host = "127.0.0.1") {
    return scheme + "://" + host + ":" + std::to_string(server_->port());
  }

  // Where curl should look: the run's CA, and no proxy from the environment.
  std::string CurlTo(const std::string& url) const {
    return "--noproxy '*' --cacert '" + certs_->File("ca.crt") + "' '" + url + "'";
  }
  std::string ClientCert(const std::string& name = "client") const {
    return " --cert '" + certs_->File(name + ".crt") + "' --key '" + certs_->File(name + ".key") +
           "'";
  }

  static Result<ClientResponse> Get(const ClientTlsOptions& tls, const std::string& url) {
    ClientOptions options;
    options.tls = tls;
    auto client = Client::Create(options);
    if (!client.ok()) return client.status();
    std::promise<Result<ClientResponse>> done;
    ClientRequest req;
    req.url = url;
    req.target = "/ping";
    req.timeout = std::chrono::milliseconds(5000);
    (*client)->Send(std::move(req), [&](Result<ClientResponse> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  static TestCerts* certs_;
  std::unique_ptr<Server> server_;
};

TestCerts* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, CurlTrustingTheCaIsServedOverHttps) {
  Serve(Tls());
  auto r = Curl(CurlTo(Url() + "/ping"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"pong\":1}");
  // By name too: the certificate names localhost.
  EXPECT_EQ(Curl(CurlTo(Url("https", "localhost") + "/ping")).status, 200);
}

TEST_F(TlsTest, CurlNotTrustingTheCaIsRefusedByItself) {
  Serve(Tls());
  auto r = Curl("--noproxy '*' '" + Url() + "/ping'");
  EXPECT_EQ(r.exit_code, 60);  // peer certificate cannot be authenticated
  EXPECT_EQ(r.status, 0);
}

TEST_F(TlsTest, PlainHttpToTheHttpsPortGetsNoAnswer) {
  Serve(Tls());
  auto r = Curl("--noproxy '*' '" + Url("http") + "/ping'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.status, 0);
  // The server is unharmed.
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping")).status, 200);
}

TEST_F(TlsTest, OnlyTls12AndNewerAreOffered) {
  Serve(Tls());
  EXPECT_NE(Curl(CurlTo(Url() + "/ping") + " --tlsv1.1 --tls-max 1.1").exit_code, 0);
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping") + " --tlsv1.2 --tls-max 1.2").status, 200);
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping") + " --tlsv1.3").status, 200);
}

TEST_F(TlsTest, RequiredClientCertificate) {
  Serve(Tls(ClientAuth::kRequired));
  auto without = Curl(CurlTo(Url() + "/ping"));
  EXPECT_NE(without.exit_code, 0);
  EXPECT_EQ(without.status, 0);
  auto with = Curl(CurlTo(Url() + "/ping") + ClientCert());
  EXPECT_EQ(with.exit_code, 0);
  EXPECT_EQ(with.status, 200);
  // A certificate from elsewhere is no better than none.
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping") + ClientCert("rogue")).status, 0);
}

TEST_F(TlsTest, OptionalClientCertificate) {
  Serve(Tls(ClientAuth::kOptional));
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping")).status, 200);
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping") + ClientCert()).status, 200);
  EXPECT_EQ(Curl(CurlTo(Url() + "/ping") + ClientCert("rogue")).status, 0);
}

TEST_F(TlsTest, ClientPresentsItsCertificateAndVerifiesTheServer) {
  Serve(Tls(ClientAuth::kRequired));
  ClientTlsOptions tls;
  tls.ca_file = certs_->File("ca.crt");
  tls.cert_file = certs_->File("server.crt");
  tls.key_file = certs_->File("server.key");
  auto ok = Get(tls, Url());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "{\"pong\":1}");

  // No certificate of its own: the server refuses it.
  ClientTlsOptions no_cert;
  no_cert.ca_file = certs_->File("ca.crt");
  auto refused = Get(no_cert, Url());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable) << refused.status().ToString();

  // Plain http:// to an https port is no answer, not a hang.
  auto plain = Get(tls, Url("http"));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), Status::Code::kUnavailable) << plain.status().ToString();
}

// Many exchanges at once over kept-alive TLS connections, on two server
// I/O threads (what ThreadSanitizer watches in make test-tsan).
TEST_F(TlsTest, ConcurrentRequestsOverTlsOnSeveralThreads) {
  Serve(Tls(ClientAuth::kRequired), /*threads=*/2);
  ClientOptions options;
  options.tls.ca_file = certs_->File("ca.crt");
  options.tls.cert_file = certs_->File("server.crt");
  options.tls.key_file = certs_->File("server.key");
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  constexpr int kRequests = 40;
  std::vector<std::promise<Result<ClientResponse>>> done(kRequests);
  for (int round = 0; round < 2; ++round) {
    for (int i = round * kRequests / 2; i < (round + 1) * kRequests / 2; ++i) {
      ClientRequest req;
      req.url = Url();
      req.target = "/ping";
      req.timeout = std::chrono::milliseconds(10000);
      (*client)->Send(std::move(req),
                      [&done, i](Result<ClientResponse> r) { done[i].set_value(std::move(r)); });
    }
    // The second round reuses the first's connections.
    for (int i = round * kRequests / 2; i < (round + 1) * kRequests / 2; ++i) {
      auto r = done[i].get_future().get();
      ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
      EXPECT_EQ(r->status, 200);
    }
  }
  (*client)->Stop();
  server_->Stop();
}

TEST_F(TlsTest, ClientRefusesAServerItCannotVerify) {
  // The system's trust store does not know the run's CA.
  Serve(Tls());
  auto untrusted = Get(ClientTlsOptions{}, Url());
  ASSERT_FALSE(untrusted.ok());
  EXPECT_THAT(untrusted.status().message(), HasSubstr("TLS handshake"));
  EXPECT_THAT(untrusted.status().message(), HasSubstr("unable to get local issuer certificate"));

  // Trusted CA, but the certificate is for other.example, not 127.0.0.1.
  ServerTlsOptions other = Tls();
  other.cert_file = certs_->File("other.crt");
  other.key_file = certs_->File("other.key");
  server_.reset();
  Serve(other);
  ClientTlsOptions tls;
  tls.ca_file = certs_->File("ca.crt");
  auto mismatch = Get(tls, Url());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.status().message(), HasSubstr("IP address mismatch"));
}

TEST_F(TlsTest, UnusableFilesAreNamedAtStart) {
  auto start_error = [](const ServerTlsOptions& tls) {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tls = tls;
    auto server = Server::Start(options, Router());
    EXPECT_FALSE(server.ok());
    EXPECT_EQ(server.ok() ? Status::Code::kOk : server.status().code(),
              Status::Code::kInvalidArgument);
    // CheckServerTls (kcqrs validate) says the same.
    EXPECT_EQ(CheckServerTls(tls).message(), server.ok() ? "" : server.status().message());
    return server.ok() ? std::string() : server.status().message();
  };
  ServerTlsOptions missing = Tls();
  missing.cert_file = certs_->File("nope.crt");
  EXPECT_THAT(start_error(missing), HasSubstr("cert_file '" + certs_->File("nope.crt") +
                                              "': cannot read it: No such file"));

  ServerTlsOptions mismatch = Tls();
  mismatch.key_file = certs_->File("client.key");
  EXPECT_THAT(start_error(mismatch),
              HasSubstr("key_file '" + certs_->File("client.key") +
                        "': is not the private key of the certificate in '" +
                        certs_->File("server.crt") + "'"));

  ServerTlsOptions garbage = Tls();
  garbage.cert_file = certs_->Write("garbage.crt", "not a certificate\n");
  EXPECT_THAT(start_error(garbage), HasSubstr("garbage.crt': not a PEM certificate chain"));

  ServerTlsOptions garbage_key = Tls();
  garbage_key.key_file = certs_->Write("garbage.key", "not a key\n");
  EXPECT_THAT(start_error(garbage_key), HasSubstr("garbage.key': not a PEM private key"));

  ServerTlsOptions no_key = Tls();
  no_key.key_file.clear();
  EXPECT_THAT(start_error(no_key), HasSubstr("needs key_file"));

  ServerTlsOptions no_ca = Tls();
  no_ca.client_auth = ClientAuth::kRequired;
  EXPECT_THAT(start_error(no_ca), HasSubstr("client_auth required needs ca_file"));

  ServerTlsOptions bad_ca = Tls(ClientAuth::kRequired);
  bad_ca.ca_file = certs_->File("garbage.crt");
  EXPECT_THAT(start_error(bad_ca), HasSubstr("ca_file '" + certs_->File("garbage.crt") + "'"));

  EXPECT_TRUE(CheckServerTls(Tls(ClientAuth::kRequired)).ok());
  EXPECT_TRUE(CheckServerTls(ServerTlsOptions{}).ok());
}

TEST_F(TlsTest, ClientWithUnusableFilesIsNotCreated) {
  ClientOptions options;
  options.tls.ca_file = certs_->File("nope.crt");
  auto client = Client::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(), HasSubstr("nope.crt"));
}

}  // namespace
}  // namespace kcqrs::http
