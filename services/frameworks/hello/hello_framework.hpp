#pragma once
// HelloFramework: the example of docs/framework-guide.md. It runs
// `echo hello $i` for i = 1..tasks, packing as many tasks into each offer as
// fit, reads each finished task's stdout from its agent, and calls `done`
// once every task has ended. It shows the whole life of a framework in a few
// dozen lines: offers, accept/decline, updates, sandbox reads, suppress and
// reconciliation after a reconnection.

#include "services/scheduler/scheduler.hpp"

#include <functional>
#include <map>
#include <set>
#include <string>

namespace tessera {

struct HelloOptions {
  uint32_t tasks = 3;
  Resources per_task = Resources::scalar("cpus", 0.1) + Resources::scalar("mem", 32);
};

struct HelloResult {
  std::map<std::string, std::string> outputs;  // task id -> its stdout
  uint32_t finished = 0;
  uint32_t failed = 0;  // ended in any other state
  std::string error;    // set when the master removed the framework
};

class HelloFramework : public Scheduler {
 public:
  using Done = std::function<void(const HelloResult&)>;
  HelloFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                 HelloOptions options, Done done);

 protected:
  void subscribed(const std::string& framework_id) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;

 private:
  std::vector<TaskSpec> tasks_for(const Offer& offer);
  void read_stdout(const TaskStatus& status);
  void finish_if_done();

  HelloOptions options_;
  Done done_;
  uint32_t launched_ = 0;
  std::set<std::string> active_;           // launched and not ended
  std::map<std::string, Address> agents_;  // agent id -> address, from offers
  uint32_t reads_ = 0;                     // stdout reads under way
  HelloResult result_;
};

}  // namespace tessera
