#pragma once
// SimFramework: a framework of the chaos simulation, written against the
// scheduler library like any other. Its behaviour is drawn from the seed
// (Behaviour): how many tasks it keeps running and how large, whether it
// kills some, how long its decline filters are, whether it suppresses when
// satisfied, how often it reconciles, whether it tears down. What it has
// launched lives in the World's FrameworkBook, as a real framework keeps it
// in a store, so a new instance after a failover (resubscribing with the
// same framework id) knows its tasks and reconciles them.

#include "services/scheduler/scheduler.hpp"
#include "services/sim/world.hpp"

#include <memory>
#include <optional>
#include <random>
#include <string>

namespace tessera::sim {

struct Behaviour {
  int tasks_wanted = 3;  // kept non-ended at once
  double task_cpus = 1.0;
  double task_mem = 128;
  double kill_per_tick = 0;  // chance per tick to kill one of its tasks
  Duration decline_refuse = std::chrono::seconds(5);
  bool suppress_when_satisfied = false;
  bool partition_aware = false;
  Duration reconcile_every = std::chrono::seconds(30);
  std::optional<Duration> teardown_at;  // virtual time of its teardown

  static Behaviour draw(std::mt19937_64& rng, Duration run_for);
};

struct SimFrameworkConfig {
  std::string name;  // also its FrameworkBook's key
  uint64_t instance = 1;
  Behaviour behaviour;
  World* world = nullptr;
  const bool* quiet = nullptr;  // true: the faults healed; launch nothing new
};

class SimFramework : public Scheduler {
 public:
  SimFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
               SimFrameworkConfig sim);

  static constexpr Duration tick = std::chrono::seconds(1);

 protected:
  void started() override;
  void subscribed(const std::string& framework_id) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;

 private:
  void on_tick();
  int active() const;  // tasks launched whose end it has not heard
  bool fits(const Offer& o, int n) const;
  void reconcile_unsettled();
  FrameworkBook& book() { return sim_.world->framework(sim_.name); }

  SimFrameworkConfig sim_;
  std::mt19937_64 rng_;
  bool suppressed_ = false;
  TimePoint last_reconcile_{};
};

}  // namespace tessera::sim
