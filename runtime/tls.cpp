#include "runtime/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace tessera {

namespace {

constexpr std::string_view uri_prefix = "urn:tessera:";

bool valid_role(std::string_view role) {
  return role == "master" || role == "agent" || role == "framework" || role == "operator";
}

// [A-Za-z0-9._-]{1,64}, as `tessera certs issue` allows.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-')
    return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

std::string asn1_text(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s))};
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  int len = ASN1_STRING_length(ip);
  const auto* data = ASN1_STRING_get0_data(ip);
  if (len == 4)
    ::inet_ntop(AF_INET, data, text, sizeof text);
  else if (len == 16)
    ::inet_ntop(AF_INET6, data, text, sizeof text);
  return text;
}

// A socket BIO that never raises SIGPIPE (send with MSG_NOSIGNAL), like
// CAF's own TCP policy: a peer that vanished is a failed write, not a signal
// that ends the process.
int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(static_cast<int>(BIO_get_fd(b, nullptr)), data, static_cast<size_t>(len),
                     MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(static_cast<int>(BIO_get_fd(b, nullptr)), data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
  switch (cmd) {
    case BIO_C_SET_FD:
      BIO_set_data(b, reinterpret_cast<void*>(static_cast<intptr_t>(*static_cast<int*>(ptr))));
      BIO_set_init(b, 1);
      static_cast<void>(num);
      return 1;
    case BIO_C_GET_FD: {
      auto fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
      if (ptr)
        *static_cast<int*>(ptr) = fd;
      return fd;
    }
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

BIO_METHOD* nosignal_socket_method() {
  static BIO_METHOD* method = [] {
    auto* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                           "tessera socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

}  // namespace

bool PeerIdentity::serves_host(std::string_view host) const {
  for (const auto& h : hosts)
    if (h.size() == host.size() && ::strncasecmp(h.data(), host.data(), h.size()) == 0)
      return true;
  return false;
}

std::string take_ssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

expected<PeerIdentity> identity_of_certificate(X509* cert) {
  if (!cert)
    return make_error(Errc::invalid_argument, "no certificate");
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  PeerIdentity out;
  std::string problem;
  bool found = false;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      out.hosts.push_back(asn1_text(n->d.dNSName));
    } else if (n->type == GEN_IPADD) {
      if (auto ip = ip_text(n->d.iPAddress); !ip.empty())
        out.hosts.push_back(std::move(ip));
    } else if (n->type == GEN_URI && !found) {
      auto uri = asn1_text(n->d.uniformResourceIdentifier);
      if (uri.rfind(uri_prefix, 0) != 0)
        continue;
      auto rest = std::string_view(uri).substr(uri_prefix.size());
      auto colon = rest.find(':');
      if (colon == std::string_view::npos || !valid_role(rest.substr(0, colon)) ||
          !valid_name(rest.substr(colon + 1))) {
        problem = "a malformed Tessera identity: " + uri;
        continue;
      }
      out.role = std::string(rest.substr(0, colon));
      out.name = std::string(rest.substr(colon + 1));
      found = true;
    }
  }
  GENERAL_NAMES_free(names);
  if (found)
    return out;
  if (!problem.empty())
    return make_error(Errc::invalid_argument, problem);
  return make_error(Errc::invalid_argument,
                    "the certificate names no Tessera identity (urn:tessera:ROLE:NAME)");
}

expected<PeerIdentity> identity_of_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!cert)
    return make_error(Errc::invalid_argument, "not a PEM certificate: " + take_ssl_errors());
  return identity_of_certificate(cert.get());
}

std::vector<std::string> tls_environment(const TlsConfig& config) {
  if (!config.enabled())
    return {"TESSERA_INSECURE=1"};
  return {"TESSERA_TLS_CERT=" + config.cert_file, "TESSERA_TLS_KEY=" + config.key_file,
          "TESSERA_TLS_CA=" + config.ca_file};
}

// -- TlsContext ----------------------------------------------------------------

expected<std::shared_ptr<const TlsContext>> TlsContext::load(const TlsConfig& config) {
  if (config.cert_file.empty() || config.key_file.empty() || config.ca_file.empty())
    return make_error(Errc::invalid_argument,
                      "TLS needs a certificate, its key and a CA (--tls-cert, --tls-key, "
                      "--tls-ca); missing: " +
                          std::string(config.cert_file.empty() ? "--tls-cert " : "") +
                          (config.key_file.empty() ? "--tls-key " : "") +
                          (config.ca_file.empty() ? "--tls-ca" : ""));
  return make(config);
}

expected<std::shared_ptr<const TlsContext>> TlsContext::load_client(const TlsConfig& config) {
  if (config.ca_file.empty())
    return make_error(Errc::invalid_argument,
                      "--tls-ca is missing: a TLS client needs the CA the server's certificate "
                      "chains to");
  if (config.cert_file.empty() != config.key_file.empty())
    return make_error(Errc::invalid_argument,
                      "a client certificate needs both --tls-cert and --tls-key");
  return make(config);
}

// The context of load() and load_client(): without a certificate (a client
// only), own() stays empty.
expected<std::shared_ptr<const TlsContext>> TlsContext::make(const TlsConfig& config) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (!ctx)
    return make_error(Errc::invalid_argument, "cannot make a TLS context: " + take_ssl_errors());
  auto fail = [ctx](const std::string& what) {
    SSL_CTX_free(ctx);
    return make_error(Errc::invalid_argument, what + ": " + take_ssl_errors());
  };
  // Both ends are Tessera: TLS 1.3 only, no session tickets or cache (every
  // connection is long-lived and proves itself in full).
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // CAF's stream hands SSL_write what is left of a buffer it may have moved.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) != 1)
    return fail("cannot load the CA " + config.ca_file);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (config.cert_file.empty())
    return std::shared_ptr<const TlsContext>(new TlsContext(ctx, {}));
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1)
    return fail("cannot load the certificate " + config.cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail("cannot load the key " + config.key_file);
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("the key " + config.key_file + " does not match " + config.cert_file);
  // Our own certificate must verify against the CA we demand of peers, or
  // every peer would refuse us: say so now rather than at each connection.
  X509* own = SSL_CTX_get0_certificate(ctx);
  X509_STORE_CTX* check = X509_STORE_CTX_new();
  bool own_ok = check &&
                X509_STORE_CTX_init(check, SSL_CTX_get_cert_store(ctx), own, nullptr) == 1 &&
                X509_verify_cert(check) == 1;
  std::string own_problem =
      own_ok || !check ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(check));
  X509_STORE_CTX_free(check);
  if (!own_ok) {
    SSL_CTX_free(ctx);
    return make_error(Errc::invalid_argument, config.cert_file + " does not verify against " +
                                                  config.ca_file + ": " + own_problem);
  }
  auto identity = identity_of_certificate(own);
  if (!identity) {
    SSL_CTX_free(ctx);
    return make_error(Errc::invalid_argument, config.cert_file + ": " + describe(identity.error()));
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx, std::move(*identity)));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

// -- TlsSession ----------------------------------------------------------------

expected<std::unique_ptr<TlsSession>> TlsSession::make(std::shared_ptr<const TlsContext> context,
                                                       int fd, bool accepting,
                                                       std::string verify_host) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context->native());
  BIO* bio = ssl ? BIO_new(nosignal_socket_method()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    return make_error(Errc::connect_failed, "cannot start a TLS session: " + take_ssl_errors());
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);
  if (accepting)
    SSL_set_accept_state(ssl);
  else
    SSL_set_connect_state(ssl);
  return std::unique_ptr<TlsSession>(
      new TlsSession(std::move(context), ssl, std::move(verify_host)));
}

TlsSession::~TlsSession() {
  SSL_free(ssl_);
}

bool TlsSession::start() {
  bool want_write = false;
  auto state = handshake(want_write);
  if (want_write && on_want_write)
    on_want_write();
  return state != rw_state::failure;
}

TlsSession::rw_state TlsSession::fail(std::string why) {
  if (!failed_) {
    failed_ = true;
    failure_ = std::move(why);
    if (on_failed)
      on_failed();
  }
  return rw_state::failure;
}

TlsSession::rw_state TlsSession::handshake(bool& want_write) {
  if (failed_)
    return rw_state::failure;
  if (established_)
    return rw_state::success;
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1)
    return finish_handshake() ? rw_state::success : rw_state::failure;
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return rw_state::success;
    case SSL_ERROR_WANT_WRITE:
      want_write = true;
      return rw_state::success;
    case SSL_ERROR_SYSCALL:
      return fail(errno != 0 ? std::string("the TLS handshake failed: ") + std::strerror(errno)
                             : "the peer closed the connection during the TLS handshake");
    default: {
      auto verify = SSL_get_verify_result(ssl_);
      std::string why = "the TLS handshake failed: " + take_ssl_errors();
      if (verify != X509_V_OK)
        why += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      return fail(std::move(why));
    }
  }
}

bool TlsSession::finish_handshake() {
  std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl_));
  if (!cert || SSL_get_verify_result(ssl_) != X509_V_OK) {
    fail("the peer presented no certificate that verifies");
    return false;
  }
  auto identity = identity_of_certificate(cert.get());
  if (!identity) {
    fail("the peer's certificate is refused: " + describe(identity.error()));
    return false;
  }
  if (!verify_host_.empty() && !identity->serves_host(verify_host_)) {
    fail("the certificate of " + identity->to_string() + " does not name the host dialled, " +
         verify_host_);
    return false;
  }
  peer_ = std::make_shared<const PeerIdentity>(std::move(*identity));
  established_ = true;
  if (on_established)
    on_established();
  return true;
}

TlsSession::rw_state TlsSession::read_some(size_t& result, void* buf, size_t len) {
  result = 0;
  if (!established_) {
    bool want_write = false;
    auto state = handshake(want_write);
    if (want_write && on_want_write)
      on_want_write();
    if (!established_)
      return state;
  }
  if (len == 0)
    return rw_state::indeterminate;
  ERR_clear_error();
  return transferred(SSL_read(ssl_, buf, static_cast<int>(len)), result);
}

// What an SSL_read or SSL_write returned, for CAF's stream: bytes, nothing
// yet (the next event continues), or the end (the peer closed, or an error).
TlsSession::rw_state TlsSession::transferred(int n, size_t& result) {
  if (n > 0) {
    result = static_cast<size_t>(n);
    return rw_state::success;
  }
  switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return rw_state::success;
    default:
      return rw_state::failure;
  }
}

TlsSession::rw_state TlsSession::write_some(size_t& result, const void* buf, size_t len) {
  result = 0;
  if (!established_) {
    // Only a handshake that had to wait for a writable socket gets here
    // (nothing is flushed before the handshake ends).
    bool want_write = false;
    auto state = handshake(want_write);
    if (state == rw_state::failure)
      return state;
    if (!established_)
      return want_write || len > 0 ? rw_state::success : rw_state::indeterminate;
  }
  if (len == 0)
    return rw_state::indeterminate;
  ERR_clear_error();
  return transferred(SSL_write(ssl_, buf, static_cast<int>(len)), result);
}

bool TlsSession::must_read_more(size_t threshold) const {
  return static_cast<size_t>(SSL_pending(ssl_)) >= threshold;
}

}  // namespace tessera
