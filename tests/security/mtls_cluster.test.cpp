// Mutual TLS between real processes: a master, an agent (whose executor
// speaks TLS with the agent's certificate) and `tessera run`, each with a
// certificate of its role; a run with a certificate of the wrong role; and
// the refusal to start without either TLS or --insecure.

#include "services/security/certs.hpp"
#include "security/pki.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The tests run with TESSERA_INSECURE=1 in their environment (CTest): a
// process given certificates must not inherit it.
std::vector<std::string> without_insecure(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"env", "-u", "TESSERA_INSECURE", TESSERA_BIN});
  return argv;
}

std::string word_after(const std::string& line, const std::string& marker) {
  auto at = line.find(marker);
  REQUIRE(at != std::string::npos);
  auto rest = line.substr(at + marker.size());
  return rest.substr(0, rest.find_first_of(" \n"));
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A master and one agent, each with its own certificate.
struct TlsCluster {
  Pki pki;
  std::unique_ptr<ChildProcess> master;
  std::unique_ptr<ChildProcess> agent;
  std::string master_address;

  TlsCluster() {
    master = ChildProcess::start(without_insecure(
        std::vector<std::string>{"master", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                                 "--work-dir", (pki.dir.path() / "master").string()} +
        pki.flags("m1", security::CertRole::master)));
    auto line = master->wait_line("listening on ");
    INFO("master: " << master->out() << master->err());
    REQUIRE(line);
    master_address = word_after(*line, "listening on master@");
    agent = ChildProcess::start(without_insecure(
        std::vector<std::string>{"agent", "--master", master_address, "--listen", "127.0.0.1:0",
                                 "--work-dir", (pki.dir.path() / "agent").string(), "--resources",
                                 "cpus:2;mem:512", "--isolation", "posix"} +
        pki.flags("a1", security::CertRole::agent)));
  }
};

}  // namespace

TEST_CASE("mtls: a task runs end to end between processes that all speak TLS",
          "[security][mtls][e2e]") {
  TlsCluster c;
  auto run = ChildProcess::start(
      without_insecure(std::vector<std::string>{"run", "--master", c.master_address, "--cpus",
                                                "0.1", "--mem", "32", "--timeout", "60"} +
                       c.pki.flags("fw1", security::CertRole::framework) +
                       std::vector<std::string>{"--", "sh", "-c", "echo hello over tls"}));
  REQUIRE(run->wait_exit(90s));
  INFO("run: " << run->out() << run->err() << "\nmaster: " << c.master->err()
               << "\nagent: " << c.agent->err());
  CHECK(run->exit_status()->exit_code == 0);
  CHECK(run->out().find("hello over tls") != std::string::npos);
}

TEST_CASE("mtls: a framework with an agent's certificate is not taken for a framework",
          "[security][mtls][e2e]") {
  TlsCluster c;
  auto run = ChildProcess::start(without_insecure(
      std::vector<std::string>{"run", "--master", c.master_address, "--cpus", "0.1", "--mem", "32",
                               "--timeout", "5"} +
      c.pki.flags("impostor", security::CertRole::agent) + std::vector<std::string>{"--", "true"}));
  REQUIRE(run->wait_exit(60s));
  INFO("run: " << run->out() << run->err());
  CHECK(run->exit_status()->exit_code != 0);
  REQUIRE(wait_until(
      [&] {
        return c.master->err().find("agent:impostor is not a framework") != std::string::npos;
      },
      10s));
}

TEST_CASE("mtls: a node started with neither TLS nor --insecure refuses, naming the flags",
          "[security][mtls][e2e]") {
  TempDir dir;
  auto master = ChildProcess::start(without_insecure(
      {"master", "--listen", "127.0.0.1:0", "--work-dir", (dir.path() / "m").string()}));
  REQUIRE(master->wait_exit(30s));
  CHECK(master->exit_status()->exit_code == 2);
  CHECK(master->err().find("refusing to run without transport security") != std::string::npos);
  CHECK(master->err().find("--insecure") != std::string::npos);

  auto both =
      ChildProcess::start({TESSERA_BIN, "agent", "--insecure", "--tls-cert", "x.crt", "--master",
                           "127.0.0.1:1", "--work-dir", (dir.path() / "a").string()});
  REQUIRE(both->wait_exit(30s));
  CHECK(both->exit_status()->exit_code == 2);
  CHECK(both->err().find("contradict") != std::string::npos);
}
