#include "services/security/certs.hpp"

#include "runtime/tls.hpp"
#include "services/security/files.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

namespace tessera::security {

namespace fs = std::filesystem;

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

constexpr const char* uri_prefix = "urn:tessera:";

// The error of what failed, with OpenSSL's queued reasons.
caf::error ssl_error(const std::string& what) {
  std::string reasons;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    reasons += reasons.empty() ? ": " : "; ";
    reasons += buf;
  }
  return make_error(Errc::os_error, what + reasons);
}

KeyPtr new_key() {
  return KeyPtr(EVP_EC_gen("P-256"));
}

expected<std::string> pem_of_key(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return ssl_error("cannot encode a key");
  char* data = nullptr;
  auto n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

expected<std::string> pem_of_cert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return ssl_error("cannot encode a certificate");
  char* data = nullptr;
  auto n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// The key (0600) and its certificate, as PEM files.
expected<void> write_pair(EVP_PKEY* key, X509* cert, const fs::path& key_path,
                          const fs::path& cert_path) {
  auto key_pem = pem_of_key(key);
  if (!key_pem)
    return key_pem.error();
  auto cert_pem = pem_of_cert(cert);
  if (!cert_pem)
    return cert_pem.error();
  if (auto r = write_file_atomically(key_path, *key_pem, 0600); !r)
    return r;
  return write_file_atomically(cert_path, *cert_pem, 0644);
}

expected<CertPtr> cert_of_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CertPtr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert)
    return ssl_error("not a PEM certificate");
  return cert;
}

expected<KeyPtr> key_of_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key)
    return ssl_error("not a PEM private key");
  return key;
}

// A certificate's common fields: version 3, a random 127-bit serial, valid
// from an hour ago (clock skew) for days, its subject and public key.
expected<CertPtr> new_cert(EVP_PKEY* key,
                           const std::vector<std::pair<std::string, std::string>>& subject,
                           int days) {
  CertPtr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1)
    return ssl_error("cannot make a certificate");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1)
    return ssl_error("no randomness for a serial number");
  serial[0] &= 0x7f;  // positive
  BnPtr bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())))
    return ssl_error("cannot set a serial number");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600))
    return ssl_error("cannot set the validity");
  auto* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : subject)
    if (X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1)
      return ssl_error("cannot set the subject's " + field);
  if (X509_set_pubkey(cert.get(), key) != 1)
    return ssl_error("cannot set the public key");
  return cert;
}

expected<void> add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext)
    return ssl_error("cannot make the extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1)
    return ssl_error("cannot add the extension " + std::string(OBJ_nid2sn(nid)));
  return {};
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool host_name(const std::string& s) {
  if (s.empty() || s.size() > 253)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return s.front() != '-' && s.front() != '.';
}

expected<void> refuse_existing(const std::vector<fs::path>& paths, bool force) {
  if (force)
    return {};
  for (const auto& p : paths)
    if (fs::exists(p))
      return make_error(Errc::invalid_argument, p.string() + " exists (--force replaces it)");
  return {};
}

}  // namespace

const char* to_string(CertRole role) {
  switch (role) {
    case CertRole::master:
      return "master";
    case CertRole::agent:
      return "agent";
    case CertRole::framework:
      return "framework";
    case CertRole::operator_role:
      return "operator";
  }
  return "?";
}

std::optional<CertRole> role_from(std::string_view text) {
  for (auto r : {CertRole::master, CertRole::agent, CertRole::framework, CertRole::operator_role})
    if (text == to_string(r))
      return r;
  return std::nullopt;
}

bool valid_cert_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "ca" || name.front() == '.' ||
      name.front() == '-')
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

expected<void> init_ca(const fs::path& dir, const CaOptions& o) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return make_error(Errc::os_error, "cannot create " + dir.string() + ": " + ec.message());
  auto cert_path = dir / "ca.crt", key_path = dir / "ca.key";
  if (auto r = refuse_existing({cert_path, key_path}, o.force); !r)
    return r;
  auto key = new_key();
  if (!key)
    return ssl_error("cannot make a key");
  auto cert = new_cert(key.get(), {{"CN", o.common_name}, {"O", "Tessera"}}, o.days);
  if (!cert)
    return cert.error();
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1)
    return ssl_error("cannot set the issuer");
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}})
    if (auto r = add_ext(c, c, nid, value); !r)
      return r;
  if (X509_sign(c, key.get(), EVP_sha256()) <= 0)
    return ssl_error("cannot sign the CA certificate");
  return write_pair(key.get(), c, key_path, cert_path);
}

expected<void> issue(const fs::path& dir, const IssueOptions& o) {
  if (!valid_cert_name(o.name))
    return make_error(Errc::invalid_argument,
                      "'" + o.name + "' is not a certificate name (1 to 64 of A-Z a-z 0-9 . _ -)");
  auto ca_cert_pem = read_file(dir / "ca.crt");
  if (!ca_cert_pem)
    return make_error(Errc::invalid_argument, "no CA in " + dir.string() +
                                                  " (tessera certs init --dir " + dir.string() +
                                                  "): " + what(ca_cert_pem.error()));
  auto ca_key_pem = read_file(dir / "ca.key");
  if (!ca_key_pem)
    return ca_key_pem.error();
  auto ca_cert = cert_of_pem(*ca_cert_pem);
  if (!ca_cert)
    return ca_cert.error();
  auto ca_key = key_of_pem(*ca_key_pem);
  if (!ca_key)
    return ca_key.error();
  auto cert_path = dir / (o.name + ".crt"), key_path = dir / (o.name + ".key");
  if (auto r = refuse_existing({cert_path, key_path}, o.force); !r)
    return r;
  std::vector<std::string> hosts = o.hosts;
  if (hosts.empty()) {
    hosts = {"localhost", "127.0.0.1"};
    if (host_name(o.name) && o.name != "localhost")
      hosts.push_back(o.name);
  }
  std::string san = std::string("URI:") + uri_prefix + to_string(o.role) + ":" + o.name;
  for (const auto& h : hosts) {
    if (is_ip(h))
      san += ",IP:" + h;
    else if (host_name(h))
      san += ",DNS:" + h;
    else
      return make_error(Errc::invalid_argument, "'" + h + "' is neither a host name nor an IP");
  }
  auto key = new_key();
  if (!key)
    return ssl_error("cannot make a key");
  auto cert =
      new_cert(key.get(), {{"CN", o.name}, {"OU", to_string(o.role)}, {"O", "Tessera"}}, o.days);
  if (!cert)
    return cert.error();
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca_cert->get())) != 1)
    return ssl_error("cannot set the issuer");
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
                            std::pair{NID_subject_key_identifier, std::string("hash")},
                            std::pair{NID_authority_key_identifier, std::string("keyid")},
                            std::pair{NID_subject_alt_name, san}})
    if (auto r = add_ext(c, ca_cert->get(), nid, value); !r)
      return r;
  if (X509_sign(c, ca_key->get(), EVP_sha256()) <= 0)
    return ssl_error("cannot sign the certificate");
  return write_pair(key.get(), c, key_path, cert_path);
}

expected<CertIdentity> identity_of(const std::string& cert_pem) {
  // One reading of a certificate's identity: the transport's (runtime/tls.hpp).
  auto identity = identity_of_pem(cert_pem);
  if (!identity)
    return identity.error();
  auto role = role_from(identity->role);
  if (!role)
    return make_error(Errc::invalid_argument, "a malformed Tessera identity: " + identity->role);
  return CertIdentity{identity->name, *role};
}

expected<void> verify(const fs::path& ca, const fs::path& cert) {
  auto ca_pem = read_file(ca);
  if (!ca_pem)
    return ca_pem.error();
  auto cert_pem = read_file(cert);
  if (!cert_pem)
    return cert_pem.error();
  auto ca_cert = cert_of_pem(*ca_pem);
  if (!ca_cert)
    return ca_cert.error();
  auto leaf = cert_of_pem(*cert_pem);
  if (!leaf)
    return leaf.error();
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca_cert->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf->get(), nullptr) != 1)
    return ssl_error("cannot set up a verification");
  if (X509_verify_cert(ctx.get()) != 1)
    return make_error(Errc::invalid_argument,
                      cert.string() + " does not verify against " + ca.string() + ": " +
                          X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  return {};
}

}  // namespace tessera::security
