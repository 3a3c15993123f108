#pragma once
// Internal to the HTTP edge: TLS through Asio's ssl::stream, with the
// contexts runtime/tls.hpp loads and checks (one loader for the transport
// and the edges). A runtime TlsContext is TLS 1.3 only and verifies peers
// against its CA; the server lets a client come without a certificate.

#include "runtime/tls.hpp"

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <string>

namespace tessera::http::detail {

// Asio's handle on context's SSL_CTX (it takes a reference of its own).
std::shared_ptr<boost::asio::ssl::context> asio_context(const TlsContext& context);

// What a failed handshake on ssl says: OpenSSL's reason, and the
// certificate check's when that is what failed.
std::string tls_failure(const boost::system::error_code& ec, SSL* ssl);

// Whether a handshake failed because the peer spoke plain HTTP to a TLS port.
bool plain_http_sent(const boost::system::error_code& ec);

// The identity a verified peer certificate names; null when the peer sent
// none, an error for a certificate that names no Tessera identity.
expected<std::shared_ptr<const PeerIdentity>> peer_identity_of(SSL* ssl);

}  // namespace tessera::http::detail
