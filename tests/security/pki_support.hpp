#pragma once
// What the TLS tests share: a CA and the certificates it signs, under one
// temporary directory (removed with it).

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

  // name's certificate and key, and the CA: a node's TLS settings.
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
};

}  // namespace tessera::testing
