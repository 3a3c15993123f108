// The binding of senders to connections (runtime/peers.hpp), on a PeerTable
// alone with a clock the test moves: who may name a CAF node and for how
// long, how many addresses one principal may speak for, and that a dialled
// address's proven owner displaces a first claimant.

#include "runtime/peers.hpp"
#include "security/pki.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

caf::node_id node(uint32_t pid) {
  caf::node_id::default_data::host_id_type host{};
  host[0] = 7;
  return caf::make_node_id(pid, host);
}

PrincipalPtr principal(const std::string& name, const std::string& role) {
  return std::make_shared<const PeerIdentity>(PeerIdentity{name, role, {"127.0.0.1"}});
}

struct Table {
  Pki pki;
  steady::time_point now = steady::now();
  PeerTable peers{*TlsContext::load(pki.issue("self", security::CertRole::agent)),
                  [this] { return now; }};
};

}  // namespace

TEST_CASE("peers: a node id is its first identity's while connected and for a grace after",
          "[security][peers]") {
  Table t;
  auto master = principal("m1", "master");
  auto rogue = principal("rogue", "framework");
  std::string why;
  REQUIRE(t.peers.bind_node(1, node(10), master, &why));
  CHECK_FALSE(t.peers.bind_node(2, node(10), rogue, &why));
  CHECK(why == "framework:rogue named the node of master:m1");
  CHECK(t.peers.counters().nodes_refused == 1);

  t.peers.connection_closed(1);
  // Gone: nothing is admitted from it, but its id stays its own for a while.
  CHECK_FALSE(t.peers.identity_of(node(10)));
  CHECK_FALSE(t.peers.admit(node(10), Address{"m", "127.0.0.1", 5050}, "127.0.0.1:5051"));
  t.now += PeerTable::node_rebind_grace - 1s;
  CHECK_FALSE(t.peers.bind_node(3, node(10), rogue, &why));
  CHECK(why.find("closed less than a minute ago") != std::string::npos);
  SECTION("its own identity comes back within the grace") {
    REQUIRE(t.peers.bind_node(4, node(10), master, &why));
    CHECK(t.peers.identity_of(node(10))->name == "m1");
  }
  SECTION("after the grace another identity may have it") {
    t.now += 2s;
    REQUIRE(t.peers.bind_node(4, node(10), rogue, &why));
    CHECK(t.peers.identity_of(node(10))->name == "rogue");
  }
}

TEST_CASE("peers: one principal speaks for a bounded number of addresses", "[security][peers]") {
  Table t;
  auto agent = principal("a1", "agent");
  auto other = principal("a2", "agent");
  std::string why;
  REQUIRE(t.peers.bind_node(1, node(1), agent, &why));
  REQUIRE(t.peers.bind_node(2, node(2), other, &why));
  const std::string self = "127.0.0.1:1";
  for (uint16_t port = 1000; port < 1000 + PeerTable::address_bindings_per_principal_max; ++port)
    REQUIRE(t.peers.admit(node(1), Address{"x", "127.0.0.1", port}, self));
  auto refused = t.peers.admit(node(1), Address{"x", "127.0.0.1", 60000}, self);
  REQUIRE_FALSE(refused);
  CHECK(describe(refused.error()).find("already speaks for 1024 addresses") != std::string::npos);
  // Addresses it holds still work, and another principal is not held back.
  CHECK(t.peers.admit(node(1), Address{"x", "127.0.0.1", 1000}, self));
  CHECK(t.peers.admit(node(2), Address{"y", "127.0.0.1", 60000}, self));
}

TEST_CASE("peers: the proven listener of a dialled address displaces a first claimant",
          "[security][peers]") {
  Table t;
  auto master = principal("m1", "master");
  auto rogue = principal("rogue", "agent");
  std::string why;
  REQUIRE(t.peers.bind_node(1, node(1), rogue, &why));
  REQUIRE(t.peers.bind_node(2, node(2), master, &why));
  Address boss{"boss", "127.0.0.1", 5050};
  const std::string self = "127.0.0.1:5051";
  // The rogue names the master's address before the master speaks.
  REQUIRE(t.peers.admit(node(1), boss, self));
  CHECK_FALSE(t.peers.admit(node(2), boss, self));
  auto generation = t.peers.generation();
  // This node dials 127.0.0.1:5050 and the certificate there is the master's.
  t.peers.bind_address_verified(boss.node_id(), master);
  CHECK(t.peers.generation() > generation);  // actors drop their cached answers
  CHECK(t.peers.admit(node(2), boss, self));
  CHECK_FALSE(t.peers.admit(node(1), boss, self));
}
