// engine/http (internal, .cc files of engine/http only): the OpenSSL
// contexts behind ServerTlsOptions and ClientTlsOptions.
//
// A context is built once and then only read, from every I/O thread: OpenSSL
// allows creating connections from one SSL_CTX on many threads at once.
#ifndef KCQRS_ENGINE_HTTP_TLS_CONTEXT_H_
#define KCQRS_ENGINE_HTTP_TLS_CONTEXT_H_

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>

#include "engine/http/tls.h"
#include "kcqrs/status.h"

namespace kcqrs::http::internal {

// TLS 1.2+ server context with the certificate, key and (for mTLS) the CA
// loaded. InvalidArgument naming the file that is missing, unreadable, not
// PEM, or (the key) not the certificate's.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(
    const ServerTlsOptions& options);

// TLS 1.2+ client context verifying servers against ca_file (or the system
// store), presenting cert_file/key_file when set.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(
    const ClientTlsOptions& options);

// Asks the connection `ssl` to check that the peer's certificate names
// `host` (a DNS name or an IP literal) and sends `host` as SNI when it is a
// name. False when OpenSSL refuses.
bool ExpectPeerName(SSL* ssl, const std::string& host);

// A handshake error as a person reads it: OpenSSL's reason, plus, when the
// peer's certificate was refused, why ("certificate has expired",
// "hostname mismatch").
std::string HandshakeError(const boost::system::error_code& ec, SSL* ssl);

}  // namespace kcqrs::http::internal

#endif  // KCQRS_ENGINE_HTTP_TLS_CONTEXT_H_
