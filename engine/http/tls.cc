// TLS contexts: OpenSSL through Boost.Asio's ssl, error_code overloads only,
// so nothing throws out of here.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/http/tls_context.h"

namespace kcqrs::http {
namespace {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

// Says why `file` cannot be read before OpenSSL does: "No such file or
// directory" beats OpenSSL's "system lib".
Status Readable(const std::string& what, const std::string& file) {
  if (file.empty()) return Status::InvalidArgument(what + ": no file given");
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(what + " '" + file + "': cannot read it: " +
                                   std::strerror(errno));
  }
  return Status::OK();
}

Status Bad(const std::string& what, const std::string& file, const std::string& why) {
  return Status::InvalidArgument(what + " '" + file + "': " + why);
}

std::string Reason(const error_code& ec) {
  std::string text = ec.message();
  return text.empty() ? "not usable" : text;
}

// TLS 1.0 and 1.1 are deprecated (RFC 8996); SSLv2/3 compression and
// renegotiation tricks are off by OpenSSL 3's defaults.
Status Harden(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    return Status::Internal("TLS: cannot require TLS 1.2 or newer");
  }
  return Status::OK();
}

Status LoadCertAndKey(ssl::context& ctx, const std::string& what, const std::string& cert_file,
                      const std::string& key_file) {
  KCQRS_RETURN_IF_ERROR(Readable(what + " cert_file", cert_file));
  KCQRS_RETURN_IF_ERROR(Readable(what + " key_file", key_file));
  error_code ec;
  ctx.use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return Bad(what + " cert_file", cert_file,
               "not a PEM certificate chain (" + Reason(ec) + ")");
  }
  ctx.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return Bad(what + " key_file", key_file,
               "is not the private key of the certificate in '" + cert_file + "'");
  }
  if (ec) {
    return Bad(what + " key_file", key_file,
               "not a PEM private key, or encrypted (" + Reason(ec) + ")");
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return Bad(what + " key_file", key_file,
               "is not the private key of the certificate in '" + cert_file + "'");
  }
  return Status::OK();
}

Status LoadCa(ssl::context& ctx, const std::string& what, const std::string& ca_file) {
  KCQRS_RETURN_IF_ERROR(Readable(what + " ca_file", ca_file));
  error_code ec;
  ctx.load_verify_file(ca_file, ec);
  if (ec) {
    return Bad(what + " ca_file", ca_file, "not PEM CA certificates (" + Reason(ec) + ")");
  }
  return Status::OK();
}

}  // namespace

bool ParseClientAuth(const std::string& text, ClientAuth* out) {
  if (text == "none") {
    *out = ClientAuth::kNone;
  } else if (text == "optional") {
    *out = ClientAuth::kOptional;
  } else if (text == "required") {
    *out = ClientAuth::kRequired;
  } else {
    return false;
  }
  return true;
}

const char* ClientAuthName(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::kNone:
      return "none";
    case ClientAuth::kOptional:
      return "optional";
    case ClientAuth::kRequired:
      return "required";
  }
  return "none";
}

Status CheckServerTls(const ServerTlsOptions& options) {
  if (!options.enabled()) return Status::OK();
  auto ctx = internal::MakeServerContext(options);
  return ctx.ok() ? Status::OK() : ctx.status();
}

namespace internal {

Result<std::shared_ptr<ssl::context>> MakeServerContext(const ServerTlsOptions& options) {
  const std::string what = "http.tls";
  if (options.key_file.empty()) {
    return Status::InvalidArgument(what + ": cert_file '" + options.cert_file +
                                   "' needs key_file, its private key");
  }
  if (options.client_auth != ClientAuth::kNone && options.ca_file.empty()) {
    return Status::InvalidArgument(what + ": client_auth " +
                                   ClientAuthName(options.client_auth) +
                                   " needs ca_file, the CA that client certificates chain to");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  KCQRS_RETURN_IF_ERROR(Harden(*ctx));
  KCQRS_RETURN_IF_ERROR(LoadCertAndKey(*ctx, what, options.cert_file, options.key_file));
  if (!options.ca_file.empty()) {
    KCQRS_RETURN_IF_ERROR(LoadCa(*ctx, what, options.ca_file));
    // Tells clients which CAs are accepted, so that one holding several
    // certificates picks the right one.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    }
  }
  error_code ec;
  switch (options.client_auth) {
    case ClientAuth::kNone:
      ctx->set_verify_mode(ssl::verify_none, ec);
      break;
    case ClientAuth::kOptional:
      ctx->set_verify_mode(ssl::verify_peer, ec);
      break;
    case ClientAuth::kRequired:
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
      break;
  }
  if (ec) return Status::Internal(what + ": setting client_auth: " + ec.message());
  // A resumed session of a verified client must carry a session id context,
  // else OpenSSL refuses the resumption.
  static constexpr unsigned char kSessionContext[] = "kcqrs";
  SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext,
                                 sizeof kSessionContext - 1);
  return ctx;
}

Result<std::shared_ptr<ssl::context>> MakeClientContext(const ClientTlsOptions& options) {
  const std::string what = "http client tls";
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  KCQRS_RETURN_IF_ERROR(Harden(*ctx));
  error_code ec;
  if (options.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::Internal(what + ": the system's CA store: " + ec.message());
  } else {
    KCQRS_RETURN_IF_ERROR(LoadCa(*ctx, what, options.ca_file));
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    KCQRS_RETURN_IF_ERROR(LoadCertAndKey(*ctx, what, options.cert_file, options.key_file));
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Status::Internal(what + ": " + ec.message());
  return ctx;
}

bool ExpectPeerName(SSL* ssl, const std::string& host) {
  error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) {
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  }
  // SSL_set_tlsext_host_name is a macro casting away const.
  return SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) == 1 &&
         SSL_set1_host(ssl, host.c_str()) == 1;
}

std::string HandshakeError(const error_code& ec, SSL* ssl) {
  std::string text = ec.message();
  const long verify = ssl == nullptr ? X509_V_OK : SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    text += " (";
    text += X509_verify_cert_error_string(verify);
    text += ")";
  }
  return text;
}

}  // namespace internal
}  // namespace kcqrs::http
