#pragma once
// CommandExecutor: runs one command task for an agent (Mesos's command
// executor). The agent sends it ExecutorEvents; it answers with ExecutorCalls
// (capnp/executor.capnp):
//
//   executor                         agent
//   subscribe (retried, backoff) ->
//                                 <- subscribed, launch(task)
//   update STARTING, spawn, RUNNING ->
//                                 <- acknowledged(uuid)     (one per update)
//   ... the command exits ...
//   update FINISHED|FAILED|KILLED ->
//                                 <- acknowledged           -> the executor stops
//
// The same class runs on the agent's own node (in-process mode) or alone in a
// `tessera executor` process; it cannot tell which.
//
// Invariants:
//  1. It runs at most one task, started at most once.
//  2. Every update it makes stays in unacked_ until the agent acknowledges its
//     uuid; all of them go with each (re)subscribe, so none is lost while the
//     executor lives.
//  3. Exactly one terminal update is made; the executor stops once the agent
//     has acknowledged it (or it gives up on a lost agent, or is shut down).
//  4. When the actor ends, for any reason, its task's process group is killed:
//     a task never outlives its executor.
// Threading: an actor; handlers run one at a time.

#include "runtime/actor.hpp"
#include "services/executor/owned.hpp"

#include <capnp/executor.capnp.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>

namespace tessera {

struct CommandExecutorConfig {
  Address agent;
  std::string framework_id;
  std::string executor_id;
  std::filesystem::path sandbox;  // the task's working directory; stdout, stderr go here
  // Between SIGTERM and SIGKILL when a kill names no grace period (or on shutdown).
  std::chrono::milliseconds kill_grace_ms{3000};
  std::chrono::milliseconds subscribe_backoff_min_ms{50};
  std::chrono::milliseconds subscribe_backoff_max_ms{2000};
  // How long to try (re)subscribing to an agent that does not answer, at the
  // start or once lost, before killing the task and ending.
  std::chrono::milliseconds recovery_timeout_ms{15000};
  // Update uuids are drawn from a generator seeded with this; 0: std::random_device.
  uint64_t seed = 0;
  // Called once as the actor ends: 0 after a normal end or shutdown, 1 when
  // it gave up on a lost agent. Runs on the actor's thread, as it exits: it
  // must not block (nor stop the node).
  std::function<void(int exit_code)> on_done;
};

class CommandExecutor : public Actor {
 public:
  CommandExecutor(caf::actor_config& cfg, ActorInit init, CommandExecutorConfig config);

 private:
  // What the actor leaves behind when it ends, shared with its exit hook.
  struct Leftover {
    int exit_code = 0;
    int task_pid = 0;  // still running when non-zero
  };
  using Reason = wire::TaskStatus::Reason;

  void on_start() override;
  void on_event(const Received<wire::ExecutorEvent>& m);

  // Stages.
  void subscribe();
  void subscribe_later(Duration backoff);
  void on_subscribed();
  void on_agent_lost();
  void arm_recovery_timer();
  void launch_task(wire::TaskInfo::Reader task);
  void kill_task(Duration grace);
  void shutdown();
  void on_task_exit(const ProcessExit& exit);
  void on_acknowledged(wire::ExecutorEvent::Acknowledged::Reader ack);
  void finish(int exit_code);

  void send_update(wire::TaskState state, Reason reason = Reason::NONE,
                   const std::string& message = {}, int exit_code = -1, int term_signal = 0);
  Outgoing call(const std::function<void(wire::ExecutorCall::Builder)>& fill) const;
  void refuse(const char* what, const std::string& detail);

  CommandExecutorConfig config_;
  std::shared_ptr<Leftover> leftover_ = std::make_shared<Leftover>();
  std::mt19937_64 rng_;
  bool subscribed_ = false;
  Duration subscribe_backoff_;
  TimerId subscribe_timer_ = 0;
  TimerId recovery_timer_ = 0;
  TimerId escalation_timer_ = 0;
  TimerId shutdown_timer_ = 0;
  std::string task_id_;  // empty until launch
  int pid_ = 0;          // the running command; 0 when none
  bool killing_ = false;
  bool shutting_down_ = false;
  std::string terminal_uuid_;  // set once the terminal update is made
  std::deque<Owned<wire::TaskStatus>> unacked_;
  uint64_t refused_ = 0;
};

// "SIGTERM" for SIGTERM; "signal 42" when the signal has no name.
std::string signal_name(int signal);

}  // namespace tessera
