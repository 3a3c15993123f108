#include "services/executor/command_executor.hpp"

#include "runtime/log.hpp"
#include "services/common/wire.hpp"

#include <signal.h>
#include <string.h>

#include <algorithm>

namespace tessera {

namespace {

using Event = wire::ExecutorEvent;

int64_t epoch_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t seed_or_random(uint64_t seed) {
  if (seed != 0)
    return seed;
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// Time between the task's exit and the agent's acknowledgement of its
// terminal update that a shutdown waits for, at most.
constexpr std::chrono::milliseconds shutdown_ack_wait_ms{1000};

// Logs the 1st, 2nd, 4th, 8th... occurrence: a flood of bad input stays visible
// without flooding the log.
bool worth_logging(uint64_t count) {
  return (count & (count - 1)) == 0;
}

// Signals the task's process group. Right after the spawn the child may not
// have called setsid() yet, so the group does not exist: then the child itself
// gets the signal (it has started nothing else yet).
caf::error signal_task(Node& node, int pid, int signal) {
  auto err = node.launcher().kill(pid, signal, true);
  if (err)
    err = node.launcher().kill(pid, signal, false);
  return err;
}

}  // namespace

std::string signal_name(int signal) {
  if (const char* abbrev = ::sigabbrev_np(signal))
    return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

CommandExecutor::CommandExecutor(caf::actor_config& cfg, ActorInit init,
                                 CommandExecutorConfig config)
    : Actor(cfg, std::move(init)),
      config_(std::move(config)),
      rng_(seed_or_random(config_.seed)),
      subscribe_backoff_(config_.subscribe_backoff_min_ms) {
  // Invariant 4, and on_done: run however the actor ends (stop, node stop, kill).
  attach_functor([leftover = leftover_, node = &node(), done = config_.on_done] {
    if (leftover->task_pid != 0)
      static_cast<void>(signal_task(*node, leftover->task_pid, SIGKILL));
    if (done)
      done(leftover->exit_code);
  });
  on<Event>([this](const Received<Event>& m) { on_event(m); });
  on_lost([this](const Address& peer, const caf::error&) {
    if (peer == config_.agent)
      on_agent_lost();
  });
}

void CommandExecutor::on_start() {
  log().debug("{}: executor {} of framework {} starting", me().to_string(), config_.executor_id,
              config_.framework_id);
  arm_recovery_timer();
  subscribe();
}

void CommandExecutor::on_event(const Received<Event>& m) {
  if (m.sender() != config_.agent) {
    refuse("event from a stranger", m.sender().to_string());
    return;
  }
  auto event = m.body();
  switch (event.which()) {
    case Event::SUBSCRIBED:
      on_subscribed();
      break;
    case Event::LAUNCH:
      launch_task(event.getLaunch());
      break;
    case Event::KILL: {
      auto kill = event.getKill();
      if (str(kill.getTaskId()) != task_id_ || task_id_.empty()) {
        refuse("kill of an unknown task", str(kill.getTaskId()));
        break;
      }
      auto grace = kill.getGracePeriodNs() > 0 ? Duration(kill.getGracePeriodNs())
                                               : Duration(config_.kill_grace_ms);
      kill_task(grace);
      break;
    }
    case Event::ACKNOWLEDGED:
      on_acknowledged(event.getAcknowledged());
      break;
    case Event::SHUTDOWN:
      shutdown();
      break;
    case Event::ERROR:
      log().warn("{}: agent reports an error: {}; shutting down", me().to_string(),
                 str(event.getError()));
      shutdown();
      break;
    case Event::LAUNCH_GROUP:
      refuse("task group for a command executor", "");
      break;
    case Event::MESSAGE:
      log().debug("{}: ignoring a framework message", me().to_string());
      break;
    default:
      refuse("event of unknown kind", "");
      break;
  }
}

// -- subscription --------------------------------------------------------------

void CommandExecutor::subscribe() {
  if (subscribed_)
    return;
  watch(config_.agent);  // one-shot: armed again by every attempt
  send(config_.agent, call([this](wire::ExecutorCall::Builder b) {
         auto list =
             b.initSubscribe().initUnacknowledgedUpdates(static_cast<unsigned>(unacked_.size()));
         for (unsigned i = 0; i < unacked_.size(); ++i)
           list.setWithCaveats(i, unacked_[i].get());
       }));
  auto delay = subscribe_backoff_;
  subscribe_backoff_ = std::min<Duration>(subscribe_backoff_ * 2, config_.subscribe_backoff_max_ms);
  subscribe_later(delay);
}

void CommandExecutor::subscribe_later(Duration backoff) {
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  cancel(subscribe_timer_);
  subscribe_timer_ = after(std::chrono::duration_cast<Duration>(backoff * jitter(rng_)), [this] {
    subscribe_timer_ = 0;
    subscribe();
  });
}

void CommandExecutor::on_subscribed() {
  if (subscribed_)
    return;
  subscribed_ = true;
  cancel(subscribe_timer_);
  cancel(recovery_timer_);
  subscribe_timer_ = recovery_timer_ = 0;
  subscribe_backoff_ = config_.subscribe_backoff_min_ms;
  log().debug("{}: subscribed to {}", me().to_string(), config_.agent.to_string());
}

void CommandExecutor::on_agent_lost() {
  if (!subscribed_)
    return;  // still subscribing: the retry timer carries on
  subscribed_ = false;
  log().warn("{}: lost agent {}; resubscribing for up to {} ms", me().to_string(),
             config_.agent.to_string(), config_.recovery_timeout_ms.count());
  arm_recovery_timer();
  // Not at once: an agent whose node is going down may still accept a
  // connection that then never answers.
  subscribe_backoff_ = config_.subscribe_backoff_min_ms;
  subscribe_later(subscribe_backoff_);
}

// An agent that does not answer within the recovery timeout, whether at the
// start or after a loss, is given up on: the task is killed and the executor ends.
void CommandExecutor::arm_recovery_timer() {
  cancel(recovery_timer_);
  recovery_timer_ = after(config_.recovery_timeout_ms, [this] {
    recovery_timer_ = 0;
    log().error("{}: no answer from agent {}; killing the task", me().to_string(),
                config_.agent.to_string());
    if (pid_ != 0)
      static_cast<void>(signal_task(node(), pid_, SIGKILL));
    finish(1);
  });
}

// -- the task --------------------------------------------------------------------

void CommandExecutor::launch_task(wire::TaskInfo::Reader task) {
  if (!task_id_.empty()) {
    refuse("a second task", str(task.getTaskId()));
    return;
  }
  task_id_ = str(task.getTaskId());
  send_update(wire::TaskState::STARTING);
  if (shutting_down_ || !task.hasCommand()) {
    send_update(wire::TaskState::FAILED, Reason::COMMAND_EXECUTOR_FAILED,
                shutting_down_ ? "Executor is shutting down" : "Task has no command");
    return;
  }
  auto command = task.getCommand();
  ProcessSpec spec;
  if (command.isShell()) {
    spec.argv = {"/bin/sh", "-c", str(command.getShell())};
  } else {
    for (auto arg : command.getArgv())
      spec.argv.push_back(str(arg));
  }
  for (auto var : command.getEnvironment())
    spec.env.push_back(str(var.getName()) + "=" + str(var.getValue()));
  spec.env.push_back("TESSERA_SANDBOX=" + config_.sandbox.string());
  spec.working_dir = config_.sandbox.string();
  spec.stdout_path = (config_.sandbox / "stdout").string();
  spec.stderr_path = (config_.sandbox / "stderr").string();
  spec.new_session = true;  // so a kill reaches everything the command starts
  if (spec.argv.empty()) {
    send_update(wire::TaskState::FAILED, Reason::COMMAND_EXECUTOR_FAILED, "Empty argv");
    return;
  }
  auto pid = start_process(spec, [this](const ProcessExit& e) { on_task_exit(e); });
  if (!pid) {
    send_update(wire::TaskState::FAILED, Reason::COMMAND_EXECUTOR_FAILED,
                "Failed to launch the command: " + describe(pid.error()));
    return;
  }
  pid_ = *pid;
  leftover_->task_pid = pid_;
  send_update(wire::TaskState::RUNNING);
}

void CommandExecutor::kill_task(Duration grace) {
  if (pid_ == 0 || killing_)
    return;  // not running, or a kill is already under way
  killing_ = true;
  log().debug("{}: killing task {} (grace {} ms)", me().to_string(), task_id_,
              std::chrono::duration_cast<std::chrono::milliseconds>(grace).count());
  if (auto err = signal_task(node(), pid_, SIGTERM))
    log().warn("{}: SIGTERM to task {}: {}", me().to_string(), task_id_, describe(err));
  escalation_timer_ = after(grace, [this] {
    escalation_timer_ = 0;
    if (pid_ != 0)
      static_cast<void>(signal_task(node(), pid_, SIGKILL));
  });
}

void CommandExecutor::on_task_exit(const ProcessExit& exit) {
  pid_ = 0;
  leftover_->task_pid = 0;
  cancel(escalation_timer_);
  escalation_timer_ = 0;
  auto message = exit.term_signal != 0
                     ? "Command terminated with signal " + signal_name(exit.term_signal)
                     : "Command exited with status " + std::to_string(exit.exit_code);
  // As Mesos: a task that was asked to die is KILLED however it ended.
  auto state = wire::TaskState::FAILED;
  auto reason = Reason::COMMAND_EXITED;
  if (killing_) {
    state = wire::TaskState::KILLED;
    reason = Reason::NONE;
  } else if (exit.term_signal == 0 && exit.exit_code == 0) {
    state = wire::TaskState::FINISHED;
    reason = Reason::NONE;
  }
  send_update(state, reason, message, exit.exit_code, exit.term_signal);
}

void CommandExecutor::shutdown() {
  if (shutting_down_)
    return;
  shutting_down_ = true;
  if (pid_ == 0) {
    finish(0);
    return;
  }
  kill_task(config_.kill_grace_ms);
  // The agent acknowledges the terminal update at once; if it does not, the
  // shutdown still ends.
  shutdown_timer_ = after(Duration(config_.kill_grace_ms) + shutdown_ack_wait_ms, [this] {
    if (pid_ != 0)
      static_cast<void>(signal_task(node(), pid_, SIGKILL));
    finish(0);
  });
}

void CommandExecutor::finish(int exit_code) {
  leftover_->exit_code = exit_code;
  log().debug("{}: executor {} done ({})", me().to_string(), config_.executor_id, exit_code);
  stop();
}

// -- updates ---------------------------------------------------------------------

void CommandExecutor::send_update(wire::TaskState state, Reason reason, const std::string& message,
                                  int exit_code, int term_signal) {
  capnp::MallocMessageBuilder builder(build_first_segment_words);
  auto status = builder.initRoot<wire::TaskStatus>();
  status.setTaskId(task_id_);
  status.setState(state);
  status.setReason(reason);
  status.setMessage(message);
  status.setTimestampNs(epoch_ns());
  auto uuid = new_uuid_bytes(rng_);
  status.setUuid(tessera::data(uuid));
  status.setSource(wire::TaskStatus::Source::EXECUTOR);
  status.setExecutorId(config_.executor_id);
  status.setExitCode(exit_code);
  status.setTermSignal(term_signal);
  if (is_terminal(state))
    terminal_uuid_ = uuid;
  unacked_.emplace_back(status.asReader());
  log().debug("{}: task {} is {}", me().to_string(), task_id_, to_string(state));
  if (subscribed_)
    send(config_.agent,
         call([&](wire::ExecutorCall::Builder b) { b.setUpdate(status.asReader()); }));
}

void CommandExecutor::on_acknowledged(Event::Acknowledged::Reader ack) {
  auto uuid = str(ack.getUuid());
  auto it = std::find_if(unacked_.begin(), unacked_.end(), [&](const Owned<wire::TaskStatus>& u) {
    return str(u.get().getUuid()) == uuid;
  });
  if (it == unacked_.end()) {
    log().debug("{}: acknowledgement of an unknown update {}", me().to_string(), hex(uuid));
    return;
  }
  unacked_.erase(it);
  if (!terminal_uuid_.empty() && uuid == terminal_uuid_)
    finish(0);
}

Outgoing CommandExecutor::call(const std::function<void(wire::ExecutorCall::Builder)>& fill) const {
  return build<wire::ExecutorCall>([&](wire::ExecutorCall::Builder b) {
    b.setFrameworkId(config_.framework_id);
    b.setExecutorId(config_.executor_id);
    fill(b);
  });
}

void CommandExecutor::refuse(const char* what, const std::string& detail) {
  ++refused_;
  if (worth_logging(refused_))
    log().warn("{}: refused {} {} ({} refused so far)", me().to_string(), what, detail, refused_);
}

}  // namespace tessera
