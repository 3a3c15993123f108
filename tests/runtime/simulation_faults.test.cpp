// The Simulation's faults for the chaos simulation: partitions, duplicates,
// stalls, and a crashed node restarted at the same address.

#include "runtime/simulation.hpp"
#include "support/ping_pong.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

uint64_t pings_counted(Simulation& sim, const Address& ponger) {
  auto h = sim.lookup(ponger);
  auto* p = h ? dynamic_cast<Ponger*>(caf::actor_cast<caf::abstract_actor*>(h)) : nullptr;
  return p ? p->count() : 0;
}

// A probe on `from` that sends one ping to `to` at each of the given times.
void ping_at(Node& from, const Address& to, std::vector<Duration> times) {
  REQUIRE(from.spawn<Probe>("probe", [to, times](Probe& p) {
    for (auto t : times)
      p.after(t, [&p, to] { p.send(to, make_ping(1)); });
  }));
}

}  // namespace

TEST_CASE("a partition loses every message between two nodes until it heals", "[simulation]") {
  Simulation sim(3);
  auto& a = sim.add_node();
  auto& b = sim.add_node();
  REQUIRE(b.spawn<Ponger>("ponger"));
  Simulation::LinkFault cut;
  cut.partitioned = true;
  sim.set_link(a, b, cut);
  ping_at(a, b.address_of("ponger"), {1s, 2s, 10s});
  sim.advance(5s);
  CHECK(pings_counted(sim, b.address_of("ponger")) == 0);
  sim.clear_link(a, b);
  sim.advance(10s);
  CHECK(pings_counted(sim, b.address_of("ponger")) == 1);
}

TEST_CASE("a duplicating link delivers each message twice", "[simulation]") {
  Simulation sim(4);
  auto& a = sim.add_node();
  auto& b = sim.add_node();
  REQUIRE(b.spawn<Ponger>("ponger"));
  Simulation::LinkFault dup;
  dup.duplicate = 1.0;
  sim.set_link(a, b, dup);
  ping_at(a, b.address_of("ponger"), {1s, 2s});
  sim.advance(5s);
  CHECK(pings_counted(sim, b.address_of("ponger")) == 4);
}

TEST_CASE("a stalled node hears nothing until its stall ends", "[simulation]") {
  Simulation sim(5);
  auto& a = sim.add_node();
  auto& b = sim.add_node();
  REQUIRE(b.spawn<Ponger>("ponger"));
  ping_at(a, b.address_of("ponger"), {1s});
  sim.stall(b, 5s);
  CHECK(sim.stalled(b));
  sim.advance(4s);
  CHECK(pings_counted(sim, b.address_of("ponger")) == 0);
  sim.advance(2s);
  CHECK_FALSE(sim.stalled(b));
  CHECK(pings_counted(sim, b.address_of("ponger")) == 1);
}

TEST_CASE("a crashed node restarts empty at the same address", "[simulation]") {
  Simulation sim(6);
  auto& a = sim.add_node();
  auto& b = sim.add_node();
  auto port = b.port();
  REQUIRE(b.spawn<Ponger>("ponger"));
  sim.crash(b);
  sim.run();
  CHECK(sim.crashed(b));
  CHECK_FALSE(sim.lookup(b.address_of("ponger")));
  auto& again = sim.restart(b);
  CHECK(again.port() == port);
  CHECK_FALSE(sim.lookup(again.address_of("ponger")));  // its actors are gone
  REQUIRE(again.spawn<Ponger>("ponger"));
  ping_at(a, again.address_of("ponger"), {1s});
  sim.advance(2s);
  CHECK(pings_counted(sim, again.address_of("ponger")) == 1);
}
