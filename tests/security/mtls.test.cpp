// Mutual TLS between nodes (runtime/tls.hpp, runtime/peers.hpp): real nodes
// on 127.0.0.1 with certificates from the small CA, a plaintext peer, a peer
// from another CA, a silent peer, and a peer with a valid certificate that
// forges another node's address as its sender.

#include "runtime/actor.hpp"
#include "runtime/atoms.hpp"
#include "runtime/node.hpp"
#include "services/security/certs.hpp"
#include "security/pki.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <caf/scoped_actor.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

NodeConfig secure(TlsConfig tls) {
  NodeConfig c;
  c.tls = std::move(tls);
  c.resolve_timeout_ms = 2000ms;
  return c;
}

// What a sink saw: the sequence numbers and who each sender proved to be.
struct Seen {
  std::mutex mu;
  std::vector<uint64_t> seqs;
  std::vector<std::string> principals;
  std::atomic<int> count{0};
};

Probe::Setup record(std::shared_ptr<Seen> seen) {
  return [seen](Probe& self) {
    self.on<testwire::Ping>([seen](const Received<testwire::Ping>& m) {
      std::lock_guard<std::mutex> lock(seen->mu);
      seen->seqs.push_back(m.body().getSeq());
      seen->principals.push_back(m.principal() ? m.principal()->to_string() : "(none)");
      ++seen->count;
    });
  };
}

// Sends one ping from a fresh actor on `from` to `to`.
void ping_from(Node& from, const std::string& name, const Address& to, uint64_t seq) {
  REQUIRE(from.spawn<Probe>(name, [to, seq](Probe& self) { self.send(to, make_ping(seq)); }));
}

// The handle of actor `name` on the node at host:port, resolved through
// `through`'s own connector and router lookup, as any CAF program could.
caf::actor resolve_raw(Node& through, const std::string& host, uint16_t port,
                       const std::string& name) {
  caf::scoped_actor self{through.system()};
  caf::actor router;
  self->request(through.connector(), caf::infinite, caf::connect_atom::value, host, port)
      .receive([&](caf::node_id&, caf::strong_actor_ptr& r,
                   std::set<std::string>&) { router = caf::actor_cast<caf::actor>(r); },
               [&](caf::error& err) { FAIL("connect: " << describe(err)); });
  REQUIRE(router);
  caf::actor target;
  self->request(router, caf::infinite, lookup_atom::value, name)
      .receive([&](caf::strong_actor_ptr& p) { target = caf::actor_cast<caf::actor>(p); },
               [&](caf::error& err) { FAIL("lookup: " << describe(err)); });
  REQUIRE(target);
  return target;
}

// After a refusal: a ping from a node that behaves (from) arrives, and it
// is all the sink ever saw - what was refused was dropped, not delayed.
void only_honest_arrives(Node& from, const Address& sink, Seen& seen) {
  ping_from(from, "honest", sink, 99);
  REQUIRE(wait_until([&] { return seen.count >= 1; }, 20s));
  std::lock_guard<std::mutex> lock(seen.mu);
  CHECK(seen.seqs == std::vector<uint64_t>{99});
}

Envelope forged_ping(const Address& sender, const Address& receiver, uint64_t seq) {
  Envelope env;
  env.type_id = capnp::typeId<testwire::Ping>();
  env.sender = sender;
  env.receiver = receiver;
  env.payload = make_ping(seq).payload;
  return env;
}

}  // namespace

TEST_CASE("mtls: nodes with certificates from one CA talk, and each learns who the other is",
          "[security][mtls]") {
  Pki pki;
  auto master = start_node(secure(pki.issue("m1", security::CertRole::master)));
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent)));
  REQUIRE(master->secure());
  CHECK(master->peers().own()->to_string() == "master:m1");
  auto seen = std::make_shared<Seen>();
  REQUIRE(master->spawn<Probe>("sink", record(seen)));
  REQUIRE(agent->spawn<Probe>("local", record(seen)));
  ping_from(*agent, "pinger", master->address_of("sink"), 1);
  ping_from(*agent, "self-pinger", agent->address_of("local"), 2);
  REQUIRE(wait_until([&] { return seen->count == 2; }, 20s));
  std::lock_guard<std::mutex> lock(seen->mu);
  for (size_t i = 0; i < 2; ++i) {
    // Over the network: the agent's certificate; within its own node: itself.
    CHECK(seen->principals[i] == "agent:a1");
  }
  CHECK(master->peers().counters().tls_established >= 1);
  CHECK(master->peers().counters().tls_refused == 0);
}

TEST_CASE("mtls: a plaintext peer and a peer of another CA are refused", "[security][mtls]") {
  Pki pki;
  Pki other;
  auto master = start_node(secure(pki.issue("m1", security::CertRole::master)));
  auto seen = std::make_shared<Seen>();
  REQUIRE(master->spawn<Probe>("sink", record(seen)));

  // The stranger lives until the end: its connection is what is refused.
  std::unique_ptr<Node> stranger;
  SECTION("plaintext") {
    NodeConfig plain;
    plain.resolve_timeout_ms = 2000ms;
    stranger = start_node(plain);
    ping_from(*stranger, "pinger", master->address_of("sink"), 1);
  }
  SECTION("another CA") {
    stranger = start_node(secure(other.issue("a1", security::CertRole::agent)));
    ping_from(*stranger, "pinger", master->address_of("sink"), 1);
  }
  SECTION("another CA, dialled by the secure node") {
    stranger = start_node(secure(other.issue("a1", security::CertRole::agent)));
    REQUIRE(stranger->spawn<Probe>("sink", record(seen)));
    ping_from(*master, "pinger", stranger->address_of("sink"), 1);
    REQUIRE(wait_until([&] { return stranger->peers().counters().tls_refused >= 1; }, 20s));
  }
  REQUIRE(wait_until([&] { return master->peers().counters().tls_refused >= 1; }, 20s));
  auto honest = start_node(secure(pki.issue("a2", security::CertRole::agent)));
  only_honest_arrives(*honest, master->address_of("sink"), *seen);
}

TEST_CASE("mtls: a dialled peer whose certificate does not name the host is refused",
          "[security][mtls]") {
  Pki pki;
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent, {"localhost"})));
  auto master = start_node(secure(pki.issue("m1", security::CertRole::master)));
  auto seen = std::make_shared<Seen>();
  REQUIRE(agent->spawn<Probe>("sink", record(seen)));
  // The master dials 127.0.0.1, which the agent's certificate does not name.
  ping_from(*master, "pinger", agent->address_of("sink"), 1);
  REQUIRE(wait_until([&] { return master->peers().counters().tls_refused >= 1; }, 20s));
  only_honest_arrives(*agent, agent->address_of("sink"), *seen);
}

TEST_CASE("mtls: a peer with a valid agent certificate cannot speak for another node",
          "[security][mtls]") {
  Pki pki;
  auto master = start_node(secure(pki.issue("m1", security::CertRole::master)));
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent)));
  auto rogue = start_node(secure(pki.issue("rogue", security::CertRole::agent)));
  auto seen = std::make_shared<Seen>();
  REQUIRE(agent->spawn<Probe>("sink", record(seen)));
  // The master speaks to the agent first: its address is the master's.
  ping_from(*master, "boss", agent->address_of("sink"), 1);
  REQUIRE(wait_until([&] { return seen->count == 1; }, 20s));

  auto sink = resolve_raw(*rogue, agent->host(), agent->port(), "sink");
  caf::scoped_actor self{rogue->system()};
  SECTION("the master's address") {
    self->send(sink, forged_ping(master->address_of("boss"), agent->address_of("sink"), 2));
  }
  SECTION("the receiving node's own address") {
    self->send(sink, forged_ping(agent->address_of("sink"), agent->address_of("sink"), 2));
  }
  SECTION("a host its certificate does not name") {
    self->send(sink, forged_ping(Address{"boss", "10.1.2.3", 5050}, agent->address_of("sink"), 2));
  }
  // Its own address still works: the forgery cost the message, not the peer.
  self->send(sink, forged_ping(rogue->address_of("me"), agent->address_of("sink"), 3));
  REQUIRE(wait_until([&] { return seen->count == 2; }, 20s));
  CHECK(agent->stats().rejected(Reject::forged_sender) == 1);
  CHECK(agent->peers().counters().forged_senders == 1);
  std::lock_guard<std::mutex> lock(seen->mu);
  CHECK(seen->seqs == std::vector<uint64_t>{1, 3});
  CHECK(seen->principals == std::vector<std::string>{"master:m1", "agent:rogue"});
}

TEST_CASE("mtls: the node an agent dialled owns its address, whoever named it first",
          "[security][mtls]") {
  Pki pki;
  auto master = start_node(secure(pki.issue("m1", security::CertRole::master)));
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent)));
  auto rogue = start_node(secure(pki.issue("rogue", security::CertRole::agent)));
  auto at_agent = std::make_shared<Seen>();
  auto at_master = std::make_shared<Seen>();
  REQUIRE(agent->spawn<Probe>("sink", record(at_agent)));
  REQUIRE(master->spawn<Probe>("sink", record(at_master)));
  // The rogue speaks first, in the master's name (its certificate names
  // 127.0.0.1 too): as the first claim on that address, it gets through.
  auto sink = resolve_raw(*rogue, agent->host(), agent->port(), "sink");
  caf::scoped_actor self{rogue->system()};
  self->send(sink, forged_ping(master->address_of("boss"), agent->address_of("sink"), 1));
  REQUIRE(wait_until([&] { return at_agent->count == 1; }, 20s));
  // The agent dials the master, whose certificate proves the address its.
  ping_from(*agent, "pinger", master->address_of("sink"), 2);
  REQUIRE(wait_until([&] { return at_master->count == 1; }, 20s));
  ping_from(*master, "boss", agent->address_of("sink"), 3);
  REQUIRE(wait_until([&] { return at_agent->count == 2; }, 20s));
  // The rogue's next message in that name is refused; its own name still
  // works, so the count below proves the forgery was dropped, not delayed.
  self->send(sink, forged_ping(master->address_of("boss"), agent->address_of("sink"), 4));
  self->send(sink, forged_ping(rogue->address_of("me"), agent->address_of("sink"), 5));
  REQUIRE(wait_until([&] { return at_agent->count == 3; }, 20s));
  CHECK(agent->peers().counters().forged_senders == 1);
  std::lock_guard<std::mutex> lock(at_agent->mu);
  CHECK(at_agent->seqs == std::vector<uint64_t>{1, 3, 5});
  CHECK(at_agent->principals ==
        std::vector<std::string>{"agent:rogue", "master:m1", "agent:rogue"});
}

TEST_CASE("mtls: an anonymous message from another node closes its connection",
          "[security][mtls]") {
  Pki pki;
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent)));
  auto rogue = start_node(secure(pki.issue("rogue", security::CertRole::agent)));
  auto seen = std::make_shared<Seen>();
  REQUIRE(agent->spawn<Probe>("sink", record(seen)));
  auto sink = resolve_raw(*rogue, agent->host(), agent->port(), "sink");
  // No sender actor: it would arrive as if the agent's own process sent it.
  caf::anon_send(sink, forged_ping(Address{}, agent->address_of("sink"), 1));
  REQUIRE(wait_until([&] { return agent->peers().counters().forged_sources >= 1; }, 20s));
  auto honest = start_node(secure(pki.issue("m1", security::CertRole::master)));
  only_honest_arrives(*honest, agent->address_of("sink"), *seen);
}

TEST_CASE("mtls: CAF's system messages from another node never reach an actor",
          "[security][mtls]") {
  Pki pki;
  auto agent = start_node(secure(pki.issue("a1", security::CertRole::agent)));
  auto rogue = start_node(secure(pki.issue("rogue", security::CertRole::agent)));
  auto seen = std::make_shared<Seen>();
  REQUIRE(agent->spawn<Probe>("sink", record(seen)));
  auto sink = resolve_raw(*rogue, agent->host(), agent->port(), "sink");
  caf::scoped_actor self{rogue->system()};
  // An error or an exit would end the actor as if its own process sent it.
  SECTION("an error") {
    self->send(sink, caf::make_error(caf::sec::runtime_error));
  }
  SECTION("an exit") {
    self->send(sink, caf::exit_msg{self->address(), caf::exit_reason::kill});
  }
  REQUIRE(wait_until([&] { return agent->peers().counters().forged_sources >= 1; }, 20s));
  // The sink still serves a peer that behaves.
  auto honest = start_node(secure(pki.issue("m1", security::CertRole::master)));
  ping_from(*honest, "pinger", agent->address_of("sink"), 7);
  REQUIRE(wait_until([&] { return seen->count == 1; }, 20s));
}

TEST_CASE("mtls: in one process a sender is filled by the runtime, never taken from the caller",
          "[security][mtls]") {
  auto node = start_node();
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", record(seen)));
  node->send_envelope(
      forged_ping(Address{"master", "10.0.0.1", 5050}, node->address_of("sink"), 1));
  node->send_envelope(forged_ping(node->address_of("someone"), node->address_of("sink"), 2));
  REQUIRE(wait_until([&] { return seen->count == 1; }));
  CHECK(node->stats().rejected(Reject::forged_sender) == 1);
  std::lock_guard<std::mutex> lock(seen->mu);
  CHECK(seen->seqs == std::vector<uint64_t>{2});
}

TEST_CASE("mtls: a peer that opens a connection and never shakes hands is closed",
          "[security][mtls]") {
  Pki pki;
  auto config = secure(pki.issue("m1", security::CertRole::master));
  config.resolve_timeout_ms = 300ms;  // the handshake's deadline too
  auto master = start_node(config);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(master->bound_port());
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(wait_until([&] { return master->peers().counters().tls_refused >= 1; }, 20s));
  // The node closed it: a read sees the end of the stream.
  char byte;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(::read(fd, &byte, 1) <= 0);
  ::close(fd);
}

TEST_CASE("mtls: a node refuses to start with TLS files that do not fit together",
          "[security][mtls]") {
  Pki pki;
  Pki other;
  auto ok = pki.issue("m1", security::CertRole::master);
  auto foreign = other.issue("m2", security::CertRole::master);
  SECTION("a missing key") {
    auto c = ok;
    c.key_file.clear();
    auto node = Node::start(secure(c));
    REQUIRE_FALSE(node);
    CHECK_THAT(describe(node.error()), Catch::Contains("--tls-key"));
  }
  SECTION("a key of another certificate") {
    auto c = ok;
    c.key_file = foreign.key_file;
    auto node = Node::start(secure(c));
    REQUIRE_FALSE(node);
    CHECK_THAT(describe(node.error()), Catch::Contains("mismatch"));
  }
  SECTION("a certificate of another CA") {
    auto c = foreign;
    c.ca_file = ok.ca_file;
    auto node = Node::start(secure(c));
    REQUIRE_FALSE(node);
    CHECK_THAT(describe(node.error()), Catch::Contains("does not verify"));
  }
}
