#pragma once
// A small CA under a temporary directory, and certificates it issues: the
// security tests' fixture (services/security/certs.hpp does the work).

#include "runtime/tls.hpp"
#include "services/security/certs.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace tessera::testing {

struct Pki {
  TempDir dir;
  std::filesystem::path root = dir.path() / "pki";

  Pki() { REQUIRE(security::init_ca(root)); }

  // Issues NAME.crt and NAME.key; the node's TLS settings for them.
  TlsConfig issue(const std::string& name, security::CertRole role,
                  std::vector<std::string> hosts = {}) {
    security::IssueOptions o;
    o.name = name;
    o.role = role;
    o.hosts = std::move(hosts);
    REQUIRE(security::issue(root, o));
    return TlsConfig{(root / (name + ".crt")).string(), (root / (name + ".key")).string(), ca()};
  }
  std::string ca() const { return (root / "ca.crt").string(); }

  // The same as a process's flags.
  std::vector<std::string> flags(const std::string& name, security::CertRole role) {
    auto tls = issue(name, role);
    return {"--tls-cert", tls.cert_file, "--tls-key", tls.key_file, "--tls-ca", tls.ca_file};
  }
};

}  // namespace tessera::testing
