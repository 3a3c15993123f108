#pragma once
// Deterministic mode: a whole multi-node system on one thread, with a seeded
// delivery order and virtual time (FoundationDB's simulation, built on CAF's
// test_coordinator). Each logical node has its own registry, filters and
// counters, exactly as a real node; "network" hops between them are direct.
//
// The same seed gives the same interleaving, and so the same trace digest; a
// failing seed is a bug report. Not thread-safe: drive it from one thread.
//
//   Simulation sim(42);
//   auto& a = sim.add_node();  auto& b = sim.add_node();
//   a.spawn<Pinger>("pinger", b.address_of("ponger"));
//   sim.run();                       // until no message is left
//   sim.advance(std::chrono::seconds(75));  // fire timers in time order

#include "runtime/clock.hpp"
#include "runtime/filter.hpp"
#include "runtime/node.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace tessera {

class Simulation {
 public:
  explicit Simulation(uint64_t seed);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // A logical node at host:port; port 0 picks the next free one from 10000.
  Node& add_node(std::string host = "sim", uint16_t port = 0, NodeConfig config = {});

  // Ends every actor of the node as a crash would: watchers hear peer_lost.
  void crash(Node& node);
  // A crashed node comes back at the same host:port with no actors (the
  // caller spawns them again, as a restarted process would start them). The
  // old Node object stays valid, stopped, until the simulation ends.
  Node& restart(Node& crashed);
  bool crashed(const Node& node) const;

  // Network faults between two nodes, applied where a message is delivered
  // (both directions). Probabilities are drawn from a generator of the
  // simulation's seed, so they replay. A delay of each message drawn
  // uniformly from [0, delay_max] reorders them.
  struct LinkFault {
    double drop = 0;       // probability a message is lost
    double duplicate = 0;  // probability it arrives twice
    Duration delay_max{0};
    bool partitioned = false;  // every message lost
    bool any() const {
      return partitioned || drop > 0 || duplicate > 0 || delay_max > Duration::zero();
    }
  };
  // Nodes are told apart by port, unique within a simulation.
  void set_link(const Node& a, const Node& b, LinkFault fault);
  void clear_link(const Node& a, const Node& b);
  void clear_links();
  // The node pauses for d (a GC pause, SIGSTOP): every message to or from
  // its actors waits until the pause ends. Its own timers still fire.
  void stall(const Node& node, Duration d);
  // Whether the node's messages are held by a stall now.
  bool stalled(const Node& node) const;

  // Runs jobs, picked in seeded random order, until none is left (or
  // steps_max). Returns the number of steps.
  size_t run(size_t steps_max = 50'000'000);

  // Moves virtual time forward by d, firing timers in deadline order and
  // running until idle after each (at most advance_steps_max steps each: a
  // livelock in zero virtual time cannot hang the caller).
  void advance(Duration d);
  void set_advance_steps_max(size_t n) { advance_steps_max_ = n; }

  // Hands work from another thread to the simulation (the process
  // launcher's exit reports): it runs on the simulation's thread, only when
  // no job is left, in the order posted. Thread-safe.
  void post(std::function<void()> fn);
  // Runs (as run()) until pred holds, waiting in wall time for posted work
  // while idle; false if pred still fails after wall_timeout. Virtual time
  // does not move: real processes exit while the simulation waits.
  bool run_until(const std::function<bool()>& pred,
                 std::chrono::milliseconds wall_timeout = std::chrono::seconds(30));

  // Actor::blocking work runs inline on the simulation's thread instead of
  // the node's pool, so runs whose actors use it still replay exactly (the
  // work must then be quick and must not wait for the simulation). Off by
  // default: real file or network work keeps its pool.
  void set_inline_blocking(bool on) { inline_blocking_ = on; }
  bool inline_blocking() const { return inline_blocking_; }

  Clock& clock() { return *clock_; }
  caf::actor_system& system() { return *system_; }
  uint64_t seed() const { return seed_; }

  // A digest of every delivery so far, in order: receiver, sender, type, ids
  // and payload bytes. Equal seeds give equal digests.
  uint64_t digest() const { return digest_; }
  uint64_t deliveries() const { return deliveries_; }

  caf::actor lookup(const Address& a) const;

 private:
  void observe(const Envelope& env);
  FilterAction fault(const Envelope& env);
  void install_filters(Node& node);

  uint64_t seed_;
  std::mt19937_64 rng_;
  std::shared_ptr<Clock> clock_;
  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Node*> crashed_;
  std::vector<std::unique_ptr<Node>> stopped_;                // replaced by restart()
  std::map<std::pair<uint16_t, uint16_t>, LinkFault> links_;  // (low port, high port)
  std::map<uint16_t, TimePoint> stalled_until_;
  std::mt19937_64 fault_rng_;
  uint16_t next_port_ = 10000;
  bool inline_blocking_ = false;
  bool drain_posted();

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  uint64_t digest_ = 14695981039346656037ULL;
  uint64_t deliveries_ = 0;
  size_t advance_steps_max_ = 50'000'000;
};

}  // namespace tessera
