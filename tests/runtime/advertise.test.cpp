// Bind vs advertised address: a node listening on every interface names
// itself, in every address it hands out, by the address it advertises.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

NodeConfig wildcard_advertising_loopback() {
  NodeConfig config;
  config.host = "0.0.0.0";
  config.advertise_host = "127.0.0.1";
  return config;
}

struct Senders {
  std::mutex mu;
  std::vector<Address> seen;
  size_t count() {
    std::lock_guard<std::mutex> guard(mu);
    return seen.size();
  }
};

}  // namespace

TEST_CASE("a node bound to 0.0.0.0 is addressed by the address it advertises",
          "[node][advertise]") {
  auto a = start_node(wildcard_advertising_loopback());
  REQUIRE(a->port() != 0);
  CHECK(a->config().host == "0.0.0.0");
  CHECK(a->host() == "127.0.0.1");
  CHECK(a->bound_port() == a->port());
  CHECK(a->id() == "127.0.0.1:" + std::to_string(a->port()));
  CHECK(a->address_of("x").to_string() == "x@127.0.0.1:" + std::to_string(a->port()));

  // A peer sees A's actors by the advertised address, and reaches them there.
  auto b = start_node();
  auto senders = std::make_shared<Senders>();
  REQUIRE(b->spawn<Probe>("recorder", [senders](Probe& self) {
    self.on<testwire::Ping>([senders](const Received<testwire::Ping>& m) {
      std::lock_guard<std::mutex> guard(senders->mu);
      senders->seen.push_back(m.envelope().sender);
    });
  }));
  auto recorder = b->address_of("recorder");
  REQUIRE(a->spawn<Probe>("sender", [recorder](Probe& self) {
    self.send(recorder, build<testwire::Ping>([](testwire::Ping::Builder p) { p.setSeq(1); }));
  }));
  REQUIRE(wait_until([&] { return senders->count() == 1; }));
  CHECK(senders->seen[0] == a->address_of("sender"));

  auto outcome = std::make_shared<PingOutcome>();
  REQUIRE(a->spawn<Ponger>("ponger"));
  REQUIRE(b->spawn<Pinger>("pinger", a->address_of("ponger"), 20, 100, outcome));
  REQUIRE(outcome->wait_done(20s));
  CHECK(outcome->get() == expected_result(20, 100));
}

TEST_CASE("an advertised port is used as given and the bound one stays known",
          "[node][advertise]") {
  auto config = wildcard_advertising_loopback();
  config.advertise_port = 1;  // as behind a port forward
  auto a = start_node(config);
  CHECK(a->port() == 1);
  CHECK(a->bound_port() != 1);
  CHECK(a->bound_port() != 0);
  CHECK(a->is_local(a->address_of("x")));
  CHECK(a->address_of("x").to_string() == "x@127.0.0.1:1");
}

TEST_CASE("a wildcard bind host gets a concrete default and a warning when loopback",
          "[node][advertise]") {
  CHECK(is_wildcard_host("0.0.0.0"));
  CHECK(is_wildcard_host("::"));
  CHECK(is_wildcard_host(""));
  CHECK_FALSE(is_wildcard_host("127.0.0.1"));
  for (std::string host : {"0.0.0.0", "::", ""}) {
    INFO(host);
    std::string warning;
    auto chosen = default_advertise_host(host, &warning);
    CHECK_FALSE(is_wildcard_host(chosen));
    bool loopback = chosen.rfind("127.", 0) == 0 || chosen == "::1";
    CHECK(loopback == !warning.empty());
    if (loopback)
      CHECK_THAT(warning, Catch::Contains("--advertise"));
  }
  std::string warning;
  CHECK(default_advertise_host("10.1.2.3", &warning) == "10.1.2.3");
  CHECK(warning.empty());
}

TEST_CASE("a node told nothing advertises what it binds", "[node][advertise]") {
  auto a = start_node();
  CHECK(a->host() == "127.0.0.1");
  CHECK(a->port() == a->bound_port());
}
