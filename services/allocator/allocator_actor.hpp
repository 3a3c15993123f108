#pragma once
// The allocator as an actor: the master's books of offers live elsewhere;
// this actor owns an Allocator (the mechanism, allocator.hpp, with its DRF or
// random sorters as the policy) and speaks capnp/allocator.capnp with the
// master that spawned it.
//
// Allocation runs every allocation_interval and, batched, after events that
// free or add resources: an event marks the books dirty and defers one cycle
// to after the messages already in the mailbox, so a burst of declines costs
// one cycle, not one each. Grants go to the master as one AllocatorOffers.
//
// Bad requests (unknown ids, resources a framework does not hold) are
// logged once per kind and counted in rejected(); they change nothing.

#include "runtime/actor.hpp"
#include "services/allocator/allocator.hpp"

#include <capnp/allocator.capnp.h>
#include <capnp/operator.capnp.h>

#include <array>

namespace tessera {

struct AllocatorActorConfig {
  AllocatorConfig allocator;
  Address master;  // the only sender it obeys, and where offers go
  Duration allocation_interval = std::chrono::seconds(1);
};

class AllocatorActor : public Actor {
 public:
  AllocatorActor(caf::actor_config& cfg, ActorInit init, AllocatorActorConfig config);

  // The books, read-only, for the chaos simulation's checks (services/sim):
  // only from this actor's thread or, in a Simulation, between steps.
  const Allocator& books() const { return *books_; }

 protected:
  void on_start() override;

 private:
  template <class T, class F>
  void on_master(F handler);
  void check(const caf::error& err, const char* what);
  void schedule_cycle();
  void run_cycle();
  void tick();

  AllocatorActorConfig config_;
  std::unique_ptr<Allocator> books_;
  std::unordered_map<AgentId, uint64_t> epochs_;  // of each agent's latest add
  bool cycle_pending_ = false;
  uint64_t rejected_ = 0;
  uint64_t cycles_ = 0;
  // How long cycles take (measured on the machine's steady clock, whatever
  // the runtime's clock): a histogram for /metrics, and the latest
  // cycle_window_max for a recent median.
  static constexpr double cycle_bounds_ms[] = {0.1, 0.25, 0.5, 1,   2.5,  5,    10,  25,
                                               50,  100,  250, 500, 1000, 2500, 5000};
  static constexpr size_t cycle_window_max = 64;
  std::array<uint64_t, std::size(cycle_bounds_ms) + 1> cycle_counts_{};
  double cycle_sum_ms_ = 0;
  std::vector<double> cycle_window_ms_;
  size_t cycle_window_next_ = 0;
  void record_cycle(double ms);
  void on_metrics(const Received<wire::MasterMetricsRequest>& m);
};

}  // namespace tessera
