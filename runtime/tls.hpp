#pragma once
// Mutual TLS for the connections between nodes (issue #14).
//
// A node given a certificate, its key and a CA (TlsConfig) speaks only TLS
// 1.3 on every connection it accepts or dials, and demands a certificate
// from its peer that chains to that CA. The certificate names the peer's
// principal and role in a SAN URI "urn:tessera:ROLE:NAME" (what
// `tessera certs issue` writes, services/security/certs.hpp); a certificate
// without one is refused. When dialling, the peer's certificate must also
// name the host dialled (a DNS or IP SAN), as HTTPS demands of a server.
//
// Why not libcaf_openssl's session: it keeps its SSL object private, so a
// node could never learn who the peer proved to be, and it reads its files
// from the actor system's configuration. A TlsSession is the same thing
// (OpenSSL driven by CAF's stream event loop, transport.cpp) with the peer's
// identity in the open, per-node files, TLS 1.3 only, and no busy loop while a
// silent peer holds a handshake open: nothing is written before the handshake
// ends, so no write interest spins on a writable socket.
//
// Threading: a TlsContext is immutable once loaded and shared by every
// connection of a node; a TlsSession lives on the multiplexer thread.

#include "runtime/error.hpp"

#include <caf/io/network/rw_state.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;
using X509 = struct x509_st;

namespace tessera {

struct TlsConfig {
  std::string cert_file;  // PEM: this node's certificate
  std::string key_file;   // PEM: its private key
  std::string ca_file;    // PEM: the CA every peer's certificate must chain to

  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

// The same settings as environment entries for a child process that runs a
// node of its own (an agent's executor; `tessera` reads them as its
// --tls-* and --insecure flags): TESSERA_TLS_CERT, _KEY, _CA, or
// TESSERA_INSECURE=1 for a plaintext node.
std::vector<std::string> tls_environment(const TlsConfig& config);

// Who a certificate names: the principal (NAME) and role (ROLE) of its SAN URI
// urn:tessera:ROLE:NAME, and the hosts (DNS and IP SANs) it may serve.
struct PeerIdentity {
  std::string name;
  std::string role;  // "master", "agent", "framework" or "operator"
  std::vector<std::string> hosts;

  // Whether host is one of hosts (DNS names compared without case).
  bool serves_host(std::string_view host) const;
  std::string to_string() const { return role + ":" + name; }
};

// The identity a certificate names; an error for one without a well-formed
// Tessera SAN URI.
expected<PeerIdentity> identity_of_certificate(X509* cert);
expected<PeerIdentity> identity_of_pem(const std::string& pem);

// The OpenSSL errors queued on this thread, as one line, and clears them.
std::string take_ssl_errors();

class TlsContext {
 public:
  // Loads and checks the three files: the certificate must match the key,
  // chain to the CA and name a Tessera identity. Errors name the file.
  static expected<std::shared_ptr<const TlsContext>> load(const TlsConfig& config);
  // The same for a client that may have no certificate of its own (the CLI
  // calling an HTTPS edge): the CA is required, the certificate and key are
  // both given or both left out; own() is empty without them.
  static expected<std::shared_ptr<const TlsContext>> load_client(const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const { return ctx_; }
  // This node's own identity, from its certificate.
  const PeerIdentity& own() const { return own_; }

 private:
  TlsContext(SSL_CTX* ctx, PeerIdentity own) : ctx_(ctx), own_(std::move(own)) {}
  static expected<std::shared_ptr<const TlsContext>> make(const TlsConfig& config);
  SSL_CTX* ctx_;
  PeerIdentity own_;
};

// One connection's TLS state, driven by the stream's read and write events.
class TlsSession {
 public:
  using rw_state = caf::io::network::rw_state;

  // accepting: the server side. verify_host: for a dialled connection, the
  // host the peer's certificate must name (empty: none checked).
  static expected<std::unique_ptr<TlsSession>> make(std::shared_ptr<const TlsContext> context,
                                                    int fd, bool accepting,
                                                    std::string verify_host);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Sends the first handshake flight (a client's hello); a server waits.
  // False if the connection failed already.
  bool start();

  rw_state read_some(size_t& result, void* buf, size_t len);
  rw_state write_some(size_t& result, const void* buf, size_t len);
  // Decrypted bytes wait inside OpenSSL that no socket event will announce.
  bool must_read_more(size_t threshold) const;

  bool established() const { return established_; }
  // The peer's identity once established; null before.
  const std::shared_ptr<const PeerIdentity>& peer() const { return peer_; }
  // Why the connection failed (handshake or identity), once it has.
  const std::string& failure() const { return failure_; }

  // Called once, on the multiplexer thread, when the handshake completes
  // and the peer's identity is known.
  std::function<void()> on_established;
  // Called when the handshake could not continue before the socket is
  // writable again (the scribe subscribes to write events).
  std::function<void()> on_want_write;
  // Called once when the handshake fails or the peer's identity is refused,
  // with failure() set.
  std::function<void()> on_failed;

 private:
  TlsSession(std::shared_ptr<const TlsContext> context, SSL* ssl, std::string verify_host)
      : context_(std::move(context)), ssl_(ssl), verify_host_(std::move(verify_host)) {}
  // One step of the handshake: success once established (or still under
  // way), failure when it failed.
  rw_state handshake(bool& want_write);
  bool finish_handshake();
  rw_state transferred(int n, size_t& result);
  rw_state fail(std::string why);

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_;
  std::string verify_host_;
  bool established_ = false;
  bool failed_ = false;
  std::shared_ptr<const PeerIdentity> peer_;
  std::string failure_;
};

}  // namespace tessera
