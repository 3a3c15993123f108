// The small CA behind `tessera certs`: what it makes verifies with OpenSSL's
// library and with the real `openssl` tool, names its principal and role,
// keeps its keys private, and refuses what it should.

#include "services/security/certs.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <iterator>

using namespace tessera;
using namespace tessera::testing;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// A program run to its end: its exit code and what it printed.
std::pair<int, std::string> run(std::vector<std::string> argv) {
  auto p = ChildProcess::start(argv);
  REQUIRE(p->wait_exit(std::chrono::seconds(60)));
  return {p->exit_status() ? p->exit_status()->exit_code : -1, p->out() + p->err()};
}

}  // namespace

TEST_CASE("certs: a CA and a certificate of each role verify, and name their principal",
          "[security][certs]") {
  TempDir dir;
  auto ca = dir.path() / "pki";
  REQUIRE(security::init_ca(ca));
  CHECK(fs::exists(ca / "ca.crt"));
  CHECK(mode_of(ca / "ca.key") == 0600);
  for (auto role : {security::CertRole::master, security::CertRole::agent,
                    security::CertRole::framework, security::CertRole::operator_role}) {
    std::string name = std::string("node-") + security::to_string(role);
    security::IssueOptions o;
    o.name = name;
    o.role = role;
    REQUIRE(security::issue(ca, o));
    CHECK(mode_of(ca / (name + ".key")) == 0600);
    CHECK(security::verify(ca / "ca.crt", ca / (name + ".crt")));
    auto id = security::identity_of(slurp(ca / (name + ".crt")));
    REQUIRE(id);
    CHECK(id->name == name);
    CHECK(id->role == role);
  }
  // A CA's own certificate names no node.
  CHECK_FALSE(security::identity_of(slurp(ca / "ca.crt")));
  CHECK_FALSE(security::identity_of("not a certificate"));
}

TEST_CASE("certs: a certificate of another CA does not verify", "[security][certs]") {
  TempDir dir;
  REQUIRE(security::init_ca(dir.path() / "a"));
  REQUIRE(security::init_ca(dir.path() / "b"));
  security::IssueOptions o;
  o.name = "intruder";
  o.role = security::CertRole::master;
  REQUIRE(security::issue(dir.path() / "b", o));
  auto r = security::verify(dir.path() / "a" / "ca.crt", dir.path() / "b" / "intruder.crt");
  REQUIRE_FALSE(r);
  CHECK(what(r.error()).find("does not verify") != std::string::npos);
}

TEST_CASE("certs: existing files are kept unless forced, and bad names and hosts are refused",
          "[security][certs]") {
  TempDir dir;
  auto ca = dir.path() / "pki";
  REQUIRE(security::init_ca(ca));
  auto before = slurp(ca / "ca.key");
  auto again = security::init_ca(ca);
  REQUIRE_FALSE(again);
  CHECK(what(again.error()).find("exists") != std::string::npos);
  CHECK(slurp(ca / "ca.key") == before);
  security::IssueOptions o;
  o.name = "agent-1";
  REQUIRE(security::issue(ca, o));
  CHECK_FALSE(security::issue(ca, o));
  o.force = true;
  CHECK(security::issue(ca, o));
  for (const std::string& bad :
       std::vector<std::string>{"", "ca", "../etc", "a/b", "-x", std::string(65, 'a')}) {
    security::IssueOptions b;
    b.name = bad;
    CHECK_FALSE(security::issue(ca, b));
  }
  security::IssueOptions h;
  h.name = "web";
  h.hosts = {"not a host!"};
  CHECK_FALSE(security::issue(ca, h));
  security::IssueOptions none;
  none.name = "orphan";
  CHECK_FALSE(security::issue(dir.path() / "no-ca", none));
}

TEST_CASE("certs: tessera certs makes files the openssl tool verifies", "[security][certs][e2e]") {
  TempDir dir;
  auto ca = (dir.path() / "pki").string();
  auto [init_code, init_out] = run({TESSERA_BIN, "certs", "init", "--dir", ca});
  INFO(init_out);
  REQUIRE(init_code == 0);
  auto [code, out] = run({TESSERA_BIN, "certs", "issue", "--dir", ca, "--name", "master-1",
                          "--role", "master", "--host", "10.0.0.5", "--host", "m1.example"});
  INFO(out);
  REQUIRE(code == 0);
  auto [verify_code, verify_out] =
      run({"/usr/bin/openssl", "verify", "-CAfile", ca + "/ca.crt", ca + "/master-1.crt"});
  INFO(verify_out);
  CHECK(verify_code == 0);
  CHECK(verify_out.find(": OK") != std::string::npos);
  auto [text_code, text] =
      run({"/usr/bin/openssl", "x509", "-in", ca + "/master-1.crt", "-noout", "-text"});
  REQUIRE(text_code == 0);
  CHECK(text.find("URI:urn:tessera:master:master-1") != std::string::npos);
  CHECK(text.find("IP Address:10.0.0.5") != std::string::npos);
  CHECK(text.find("DNS:m1.example") != std::string::npos);
  CHECK(text.find("TLS Web Server Authentication, TLS Web Client Authentication") !=
        std::string::npos);
  // The key matches the certificate.
  auto [k1, cert_pub] =
      run({"/usr/bin/openssl", "x509", "-in", ca + "/master-1.crt", "-noout", "-pubkey"});
  auto [k2, key_pub] = run({"/usr/bin/openssl", "pkey", "-in", ca + "/master-1.key", "-pubout"});
  CHECK(k1 == 0);
  CHECK(k2 == 0);
  CHECK(cert_pub == key_pub);
  // A bad role is one line and exit code 2.
  auto [bad, bad_out] =
      run({TESSERA_BIN, "certs", "issue", "--dir", ca, "--name", "x", "--role", "root"});
  CHECK(bad == 2);
}
