#pragma once
// A small certificate authority for Tessera's mutual TLS (issue #14): enough
// for a test or a first cluster. `tessera certs init` makes DIR/ca.crt and
// DIR/ca.key; `tessera certs issue` makes DIR/NAME.crt and DIR/NAME.key for
// a node of one role, signed by that CA. Everything goes through OpenSSL's
// library (libcrypto), never a shelled-out `openssl`.
//
// Keys are EC P-256. A node's certificate names its principal twice: the
// subject (CN=NAME, OU=ROLE) for people, and a SAN URI
// "urn:tessera:ROLE:NAME" that transports read to bind the principal and
// role to a connection (identity_of). Its SANs also hold the hosts it may
// serve (DNS names and IP addresses), and it may be used as a TLS server and
// client (mutual TLS). Key files are written 0600, atomically; existing files
// are never overwritten unless asked.

#include "runtime/error.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::security {

enum class CertRole { master, agent, framework, operator_role };

const char* to_string(CertRole role);
std::optional<CertRole> role_from(std::string_view text);

// A name a certificate may be issued for: 1..64 of [A-Za-z0-9._-], not "ca",
// not starting with '.' or '-'.
bool valid_cert_name(std::string_view name);

struct CaOptions {
  std::string common_name = "Tessera CA";
  int days = 3650;
  bool force = false;  // replace an existing CA (every certificate it signed stops verifying)
};

// DIR/ca.crt and DIR/ca.key. Errors: the files exist (without force), DIR
// cannot be written, OpenSSL fails (its reason in the message).
expected<void> init_ca(const std::filesystem::path& dir, const CaOptions& options = {});

struct IssueOptions {
  std::string name;
  CertRole role = CertRole::agent;
  // DNS names and IP addresses the node may serve; empty: "localhost" and
  // "127.0.0.1", and the name when it is a host name.
  std::vector<std::string> hosts;
  int days = 825;
  bool force = false;
};

// DIR/NAME.crt and DIR/NAME.key, signed by DIR's CA.
expected<void> issue(const std::filesystem::path& dir, const IssueOptions& options);

struct CertIdentity {
  std::string name;
  CertRole role = CertRole::agent;
};

// The principal and role a certificate (PEM) names in its SAN URI.
expected<CertIdentity> identity_of(const std::string& cert_pem);

// Whether cert (PEM file) chains to ca (PEM file) and is valid now; the
// OpenSSL reason when not.
expected<void> verify(const std::filesystem::path& ca, const std::filesystem::path& cert);

}  // namespace tessera::security
