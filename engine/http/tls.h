// engine/http: TLS for the server and the client (OpenSSL through
// Boost.Asio's ssl, behind the pimpls of server.h and client.h).
//
// Standard-library only, like server.h and client.h. Files are PEM. Only
// TLS 1.2 and 1.3 are offered, with OpenSSL's default cipher lists for them.
#ifndef KCQRS_ENGINE_HTTP_TLS_H_
#define KCQRS_ENGINE_HTTP_TLS_H_

#include <string>

#include "kcqrs/status.h"

namespace kcqrs::http {

// Whether the server asks connecting clients for a certificate (mTLS).
enum class ClientAuth {
  kNone,      // never asks
  kOptional,  // asks; a client without one is served, one that sends an
              // unverifiable certificate is refused
  kRequired,  // a client without a certificate signed by ca_file is refused
};

// "none", "optional", "required" into *out; false for anything else.
bool ParseClientAuth(const std::string& text, ClientAuth* out);
const char* ClientAuthName(ClientAuth auth);

// How a Server serves TLS. Empty cert_file: plain HTTP.
struct ServerTlsOptions {
  // The server's certificate chain (leaf first) and its private key.
  std::string cert_file;
  std::string key_file;
  // CA certificates that client certificates must chain to. Needed when
  // client_auth is not kNone.
  std::string ca_file;
  ClientAuth client_auth = ClientAuth::kNone;

  bool enabled() const { return !cert_file.empty(); }
};

// How a Client talks to https:// urls. http:// urls ignore it.
struct ClientTlsOptions {
  // CA certificates the server's certificate must chain to; empty: the
  // system's trust store. The server's name (or IP address) in the url must
  // be in its certificate either way: verification is never turned off.
  std::string ca_file;
  // A certificate and key to present when the server asks (mTLS); both or
  // neither.
  std::string cert_file;
  std::string key_file;
};

// Loads everything `options` names, as Server::Start would, without
// serving: each file must be readable PEM, the key must match the
// certificate, and client_auth other than none needs ca_file.
// InvalidArgument naming the file and what is wrong with it. OK when TLS is
// off.
Status CheckServerTls(const ServerTlsOptions& options);

}  // namespace kcqrs::http

#endif  // KCQRS_ENGINE_HTTP_TLS_H_
