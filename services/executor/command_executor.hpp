#pragma once
// CommandExecutor: runs an agent's tasks, either one command task (Mesos's
// command executor, `launch`) or one task group (Mesos's default executor,
// `launchGroup`: every task its own process, started together, ended
// together). The agent sends it ExecutorEvents; it answers with
// ExecutorCalls (capnp/executor.capnp):
//
//   executor                         agent
//   subscribe (retried, backoff) ->
//                                 <- subscribed, launch(task) | launchGroup(tasks)
//   update STARTING, spawn, RUNNING (per task) ->
//                                 <- acknowledged(uuid)     (one per update)
//   ... health updates (RUNNING, healthy set), KILLING on a kill if the
//       framework has taskKilledState ...
//   ... each command exits ...
//   update FINISHED|FAILED|KILLED (per task) ->
//                                 <- acknowledged           -> once all are: the executor stops
//
// The same class runs on the agent's own node (in-process mode) or alone in a
// `tessera executor` process; it cannot tell which.
//
// Invariants:
//  1. It accepts one launch or one launchGroup, once; each task starts at most once.
//  2. Every update it makes stays in unacked_ until the agent acknowledges its
//     uuid; all of them go with each (re)subscribe, and those made after the
//     first subscribe of a round go again once subscribed, so none is lost
//     while the executor lives.
//  3. Exactly one terminal update is made per task; the executor stops once
//     the agent has acknowledged all of them (or it gives up on a lost agent,
//     or is shut down).
//  4. When the actor ends, for any reason, every process it started (tasks'
//     process groups, health check commands) is killed: nothing outlives it.
//  5. A group is all or nothing: if one task cannot be spawned, the others are
//     killed; once one ends other than FINISHED, its siblings are killed.
// Health checks (TaskInfo.healthCheck): HealthPolicy decides, health_probe.hpp
// and command processes check; network checks run on the node's blocking
// pool, never on the actor's thread. One check per task is in flight at a time.
// Threading: an actor; handlers run one at a time.

#include "runtime/actor.hpp"
#include "runtime/backoff.hpp"
#include "services/executor/health_policy.hpp"
#include "services/executor/health_probe.hpp"
#include "services/executor/owned.hpp"
#include "services/executor/simulated_tasks.hpp"
#include "services/executor/task_process.hpp"

#include <capnp/executor.capnp.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace tessera {

struct CommandExecutorConfig {
  Address agent;
  std::string framework_id;
  std::string executor_id;
  // The executor's directory. A single task runs in it (stdout, stderr
  // here); a group's tasks each in tasks/<task_id>/ under it.
  std::filesystem::path sandbox;
  // Between SIGTERM and SIGKILL when neither the kill nor the task's
  // killPolicy names a grace period (and on shutdown, for tasks without one).
  std::chrono::milliseconds kill_grace_ms{3000};
  std::chrono::milliseconds subscribe_backoff_min_ms{50};
  std::chrono::milliseconds subscribe_backoff_max_ms{2000};
  // How long to try (re)subscribing to an agent that does not answer, at the
  // start or once lost, before killing the tasks and ending.
  std::chrono::milliseconds recovery_timeout_ms{15000};
  // Container placement of every process started for a task (its command
  // and its command health checks): cgroup directories it joins, and
  // whether it gets a PID namespace of its own (ProcessSpec).
  std::vector<std::string> cgroups;
  bool pid_namespace = false;
  // KEY=VALUE entries every such process carries last, over the task's own
  // (the agent's container marker, by which posix isolation finds them).
  std::vector<std::string> container_env;
  // What every such process's environment starts from (PATH and the
  // agent's allow-listed variables): never the executor's own environment,
  // which, in-process, is the agent's (task_process.hpp).
  std::vector<std::string> base_env{
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  // Update uuids are drawn from a generator seeded with this; 0: std::random_device.
  uint64_t seed = 0;
  // Called once as the actor ends: 0 after a normal end or shutdown, 1 when
  // it gave up on a lost agent. Runs on the actor's thread, as it exits: it
  // must not block (nor stop the node).
  std::function<void(int exit_code)> on_done;
  // Set: tasks are simulated processes (simulated_tasks.hpp) on the
  // runtime clock, never real ones. Health checks are not simulated.
  std::shared_ptr<SimulatedTasks> simulated;
};

class CommandExecutor : public Actor {
 public:
  CommandExecutor(caf::actor_config& cfg, ActorInit init, CommandExecutorConfig config);

 private:
  // What the actor leaves behind when it ends, shared with its exit hook.
  struct Leftover {
    int exit_code = 0;
    std::set<int> pids;                    // task commands and check commands still running
    std::map<int, std::string> simulated;  // simulated pid -> task id, still running
  };
  using Reason = wire::TaskStatus::Reason;
  enum class Mode { waiting, single, group };

  struct Task {
    std::string id;
    Owned<wire::TaskInfo> info;
    TaskPlacement where;
    int pid = 0;  // the running command; 0 before the spawn and after the exit
    TimePoint started{};
    bool terminal = false;  // its terminal update is made
    // A kill under way: SIGTERM sent, SIGKILL at the escalation timer.
    bool killing = false;
    TimerId escalation_timer = 0;
    std::string kill_cause;  // why the executor killed it; empty for the agent's kills
    std::string unhealthy;   // the failed check when health checks killed it
    // Health checking.
    HealthPolicy health;
    TimerId check_timer = 0;  // the next check, or a command check's timeout
    int check_pid = 0;        // a command check running
    bool check_timed_out = false;
    // Who its processes run as: its CommandInfo.user (the agent puts the
    // user it chose there, or nothing for the executor's own), looked up
    // at its first spawn.
    bool identity_known = false;
    std::optional<UserIdentity> user;      // set: switch to it
    std::optional<UserIdentity> identity;  // HOME, USER, LOGNAME (user, or the executor's own)
    // A simulated process: the timer of its exit.
    TimerId sim_exit_timer = 0;
    SimulatedRun sim;
  };

  void on_start() override;
  void on_event(const Received<wire::ExecutorEvent>& m);

  // Stages: subscription.
  void subscribe();
  void subscribe_later(Duration delay);
  void on_subscribed(wire::ExecutorEvent::Subscribed::Reader subscribed);
  void on_agent_lost();
  void arm_recovery_timer();
  // Stages: tasks.
  void launch_single(wire::TaskInfo::Reader info);
  void launch_group(capnp::List<wire::TaskInfo>::Reader infos);
  Task& add_task(wire::TaskInfo::Reader info, TaskPlacement where);
  expected<int> spawn_task(Task& t);
  // Gives spec t's user and the environment it starts from.
  caf::error as_task_user(Task& t, ProcessSpec& spec);
  void fail_group(const std::string& failed_id, const std::string& why);
  void on_running(Task& t);
  void on_kill(wire::ExecutorEvent::Kill::Reader kill);
  void kill_task(Task& t, Duration grace, const std::string& cause = {});
  void kill_siblings(const Task& ended, wire::TaskState state);
  void on_task_exit(const std::string& id, const ProcessExit& exit);
  void shutdown();
  void on_acknowledged(wire::ExecutorEvent::Acknowledged::Reader ack);
  bool all_acknowledged() const;
  void kill_everything();
  // SIGTERM or SIGKILL to the task's process (group), real or simulated.
  // Sends signal to t's process group (or plays it out on a simulated
  // task); asynchronous: on_error runs when no signal could be sent.
  void signal_task(Task& t, int signal, std::function<void(const caf::error&)> on_error = {});
  expected<int> spawn_simulated(Task& t);
  void arm_simulated_exit(Task& t, Duration in, int exit_code, int term_signal);
  void finish(int exit_code);
  Duration grace_of(const Task& t, int64_t kill_grace_ns = 0) const;
  Task* find(const std::string& id);

  // Stages: health checks (command_executor_health.cpp).
  void start_checks(Task& t);
  void schedule_check(Task& t, Duration delay);
  void run_check(const std::string& id);
  void run_network_check(Task& t, wire::HealthCheck::Reader check);
  void run_command_check(Task& t, wire::HealthCheck::Reader check);
  void on_check_exit(const std::string& id, const ProcessExit& exit, const std::string& what);
  void on_check_result(const std::string& id, const ProbeResult& result);
  void stop_checks(Task& t);

  void send_update(Task& t, wire::TaskState state, Reason reason = Reason::NONE,
                   const std::string& message = {}, int exit_code = -1, int term_signal = 0);
  Outgoing call(const std::function<void(wire::ExecutorCall::Builder)>& fill) const;
  void refuse(const char* what, const std::string& detail);

  CommandExecutorConfig config_;
  std::shared_ptr<Leftover> leftover_ = std::make_shared<Leftover>();
  std::mt19937_64 rng_;
  bool subscribed_ = false;
  bool killing_state_ = false;  // the framework takes KILLING updates
  Backoff subscribe_backoff_;
  TimerId subscribe_timer_ = 0;
  TimerId recovery_timer_ = 0;
  TimerId shutdown_timer_ = 0;
  Mode mode_ = Mode::waiting;
  std::map<std::string, Task> tasks_;  // never erased while the actor lives
  std::vector<std::string> order_;     // task ids in launch order
  bool shutting_down_ = false;
  std::deque<Owned<wire::TaskStatus>> unacked_;
  // The uuids the first subscribe since the agent was lost (or since the
  // start) carried: every later attempt carries them too, so whichever one
  // subscribed answers holds them. Any other unacknowledged update (made
  // between that subscribe and subscribed) is sent again once subscribed.
  std::set<std::string> first_subscribe_uuids_;
  bool subscribing_ = false;  // a round of subscribe attempts is under way
  uint64_t refused_ = 0;
  int next_simulated_pid_ = 1;
};

// "SIGTERM" for SIGTERM; "signal 42" when the signal has no name.
std::string signal_name(int signal);

}  // namespace tessera
