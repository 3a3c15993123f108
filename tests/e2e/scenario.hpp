#pragma once
// The end-to-end scenario every deployment mode runs: two frameworks in
// different roles on a cluster of two agents with cpus:2 each. The agents
// join once both frameworks have subscribed (get("subscribed") == 2), so
// neither has the cluster to itself at the start.
//
//  1. fill:      each framework launches one `sleep` task (cpus:1) per offer
//                that fits, up to 4; DRF must split the 4 cpus 2/2;
//  2. kill:      each kills its first task: TASK_KILLED;
//  3. work:      analytics launches `echo hello` and a task asking for more
//                than offered (TASK_ERROR); web launches a command that
//                writes to stderr and exits 3 (TASK_FAILED, exit code 3);
//                both read their tasks' sandboxes from the agents;
//  4. reconcile: analytics (partition-aware) reconciles explicitly a killed,
//                a running and an unknown task; web reconciles implicitly;
//  5. teardown.
//
// What happened is a sorted list of facts; every mode must produce exactly
// expected_facts(). Both framework actors run in one OS process (the test's
// own, or tessera_test_scenario's) and share a Scenario.

#include "services/scheduler/scheduler.hpp"

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace tessera::testing {

class Scenario {
 public:
  enum class Phase { fill, kill, work, reconcile, teardown, done };

  void fact(const std::string& f);
  std::vector<std::string> facts() const;
  Phase phase() const;
  // Moves forward only; true for the caller that moved it.
  bool set_phase(Phase p);
  bool done() const { return phase() == Phase::done; }

  // Progress counters the two frameworks share.
  void count(const std::string& key, int delta = 1);
  int get(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::multiset<std::string> facts_;
  std::map<std::string, int> counts_;
  Phase phase_ = Phase::fill;
};

std::vector<std::string> expected_facts();

// One of the two frameworks; side "analytics" or "web" picks its script.
class ScenarioFramework : public Scheduler {
 public:
  ScenarioFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                    std::shared_ptr<Scenario> scenario);

 protected:
  void subscribed(const std::string& framework_id) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;

 private:
  bool analytics() const { return role_ == "analytics"; }
  void poll();
  void launch_work(const Offer& offer);
  void record_end(const TaskStatus& status);
  void read_output(const std::string& task, const std::string& path, const std::string& fact_head);

  std::shared_ptr<Scenario> scenario_;
  std::string role_;
  std::string prefix_;
  bool subscribed_once_ = false;
  int launched_fill_ = 0;
  int running_fill_ = 0;
  bool killed_first_ = false;
  bool work_launched_ = false;
  int work_ended_ = 0;
  int reads_pending_ = 0;
  bool reconciled_ = false;
  int reconcile_answers_ = 0;
  std::map<std::string, Address> agent_of_task_;
  std::set<std::string> seen_;  // "task STATE" already handled
  Scenario::Phase seen_phase_ = Scenario::Phase::fill;
};

// The SchedulerConfig both modes use for a side.
SchedulerConfig scenario_config(const Address& master, const std::string& role, uint64_t seed);

}  // namespace tessera::testing
