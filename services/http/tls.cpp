#include "services/http/tls.hpp"

#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace tessera::http::detail {

std::shared_ptr<boost::asio::ssl::context> asio_context(const TlsContext& context) {
  SSL_CTX_up_ref(context.native());
  return std::make_shared<boost::asio::ssl::context>(context.native());
}

std::string tls_failure(const boost::system::error_code& ec, SSL* ssl) {
  std::string why = ec.message();
  if (ec == boost::asio::ssl::error::stream_truncated)
    why = "the peer closed the connection";
  else if (ec.category() == boost::asio::error::get_ssl_category() &&
           ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER)
    why += " (the peer does not speak TLS)";
  auto verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK)
    why += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
  return why;
}

bool plain_http_sent(const boost::system::error_code& ec) {
  return ec.category() == boost::asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

expected<std::shared_ptr<const PeerIdentity>> peer_identity_of(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert)
    return std::shared_ptr<const PeerIdentity>();
  if (SSL_get_verify_result(ssl) != X509_V_OK)
    return make_error(Errc::unauthenticated, "the certificate does not verify");
  auto identity = identity_of_certificate(cert);
  if (!identity)
    return identity.error();
  return std::make_shared<const PeerIdentity>(std::move(*identity));
}

}  // namespace tessera::http::detail
