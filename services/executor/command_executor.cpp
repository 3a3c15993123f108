#include "services/executor/command_executor.hpp"

#include "runtime/log.hpp"
#include "services/common/wire.hpp"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <system_error>

namespace tessera {

namespace {

using Event = wire::ExecutorEvent;
using State = wire::TaskState;

uint64_t seed_or_random(uint64_t seed) {
  if (seed != 0)
    return seed;
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// Time between the tasks' exit and the agent's acknowledgement of their
// terminal updates that a shutdown waits for, at most.
constexpr std::chrono::milliseconds shutdown_ack_wait_ms{1000};

// Tasks in one group, at most (Mesos sets no limit; every task is a process).
constexpr size_t group_tasks_max = 256;

// Logs the 1st, 2nd, 4th, 8th... occurrence: a flood of bad input stays visible
// without flooding the log.
bool worth_logging(uint64_t count) {
  return (count & (count - 1)) == 0;
}

// Signals a process group the executor started. Right after the spawn the
// child may not have called setsid() yet, so the group does not exist: then
// the child itself gets the signal (it has started nothing else yet).
// Asynchronous (nothing waits for the launcher's thread); on_error, if given,
// runs on the launcher's thread when neither signal could be sent.
void signal_group(Node& node, int pid, int signal,
                  std::function<void(const caf::error&)> on_error = {}) {
  auto& launcher = node.launcher();
  launcher.kill_async(pid, signal, true, [&launcher, pid, signal, on_error](const caf::error& err) {
    if (!err)
      return;
    launcher.kill_async(pid, signal, false, [on_error](const caf::error& err) {
      if (err && on_error)
        on_error(err);
    });
  });
}

std::string exit_message(const ProcessExit& exit) {
  return exit.term_signal != 0 ? "Command terminated with signal " + signal_name(exit.term_signal)
                               : "Command exited with status " + std::to_string(exit.exit_code);
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
      subscribe_backoff_(
          {config_.subscribe_backoff_min_ms, config_.subscribe_backoff_max_ms, 2.0, 0.5}) {
  // Invariant 4, and on_done: run however the actor ends (stop, node stop, kill).
  attach_functor([leftover = leftover_, node = &node(), done = config_.on_done,
                  simulated = config_.simulated, fid = config_.framework_id] {
    for (int pid : leftover->pids)
      signal_group(*node, pid, SIGKILL);
    for (const auto& [pid, task_id] : leftover->simulated)
      simulated->ended(fid, task_id, SIGKILL);
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
      on_subscribed(event.getSubscribed());
      break;
    case Event::LAUNCH:
      launch_single(event.getLaunch());
      break;
    case Event::LAUNCH_GROUP:
      launch_group(event.getLaunchGroup());
      break;
    case Event::KILL:
      on_kill(event.getKill());
      break;
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
  if (!subscribing_) {
    subscribing_ = true;
    first_subscribe_uuids_.clear();
    for (const auto& u : unacked_)
      first_subscribe_uuids_.insert(str(u.get().getUuid()));
  }
  send(config_.agent, call([this](wire::ExecutorCall::Builder b) {
         auto list =
             b.initSubscribe().initUnacknowledgedUpdates(static_cast<unsigned>(unacked_.size()));
         for (unsigned i = 0; i < unacked_.size(); ++i)
           list.setWithCaveats(i, unacked_[i].get());
       }));
  subscribe_later(subscribe_backoff_.next(rng_));
}

void CommandExecutor::subscribe_later(Duration delay) {
  cancel(subscribe_timer_);
  subscribe_timer_ = after(delay, [this] {
    subscribe_timer_ = 0;
    subscribe();
  });
}

void CommandExecutor::on_subscribed(Event::Subscribed::Reader subscribed) {
  if (subscribed_)
    return;
  subscribed_ = true;
  killing_state_ = false;
  if (subscribed.hasFrameworkInfo())
    for (auto c : subscribed.getFrameworkInfo().getCapabilities())
      killing_state_ = killing_state_ || c == wire::FrameworkCapability::TASK_KILLED_STATE;
  cancel(subscribe_timer_);
  cancel(recovery_timer_);
  subscribe_timer_ = recovery_timer_ = 0;
  subscribe_backoff_.reset();
  log().debug("{}: subscribed to {}", me().to_string(), config_.agent.to_string());
  // Updates made while subscribing went nowhere (not subscribed) and may be
  // in no subscribe this answers: they go now. The agent takes a uuid once.
  subscribing_ = false;
  for (const auto& u : unacked_)
    if (!first_subscribe_uuids_.count(str(u.get().getUuid())))
      send(config_.agent, call([&](wire::ExecutorCall::Builder b) { b.setUpdate(u.get()); }));
  first_subscribe_uuids_.clear();
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
  subscribe_backoff_.reset();
  subscribe_later(subscribe_backoff_.peek(rng_));
}

// An agent that does not answer within the recovery timeout, whether at the
// start or after a loss, is given up on: the tasks are killed and the executor ends.
void CommandExecutor::arm_recovery_timer() {
  cancel(recovery_timer_);
  recovery_timer_ = after(config_.recovery_timeout_ms, [this] {
    recovery_timer_ = 0;
    log().error("{}: no answer from agent {}; killing the tasks", me().to_string(),
                config_.agent.to_string());
    kill_everything();
    finish(1);
  });
}

// -- launching -------------------------------------------------------------------

void CommandExecutor::launch_single(wire::TaskInfo::Reader info) {
  if (mode_ != Mode::waiting) {
    refuse("a second launch", str(info.getTaskId()));
    return;
  }
  mode_ = Mode::single;
  auto& t = add_task(info, single_task_placement(config_.sandbox));
  send_update(t, State::STARTING);
  if (shutting_down_) {
    send_update(t, State::FAILED, Reason::COMMAND_EXECUTOR_FAILED, "Executor is shutting down");
    return;
  }
  auto pid = spawn_task(t);
  if (!pid) {
    send_update(t, State::FAILED, Reason::COMMAND_EXECUTOR_FAILED,
                "Failed to launch the command: " + what(pid.error()));
    return;
  }
  on_running(t);
}

// All or nothing (invariant 5): every task is spawned before any is reported
// RUNNING; the first that cannot be ends the group.
void CommandExecutor::launch_group(capnp::List<wire::TaskInfo>::Reader infos) {
  if (mode_ != Mode::waiting) {
    refuse("a second launch", "(a task group)");
    return;
  }
  if (infos.size() == 0 || infos.size() > group_tasks_max) {
    refuse("a task group of size", std::to_string(infos.size()));
    return;
  }
  std::set<std::string> ids;
  std::string invalid;
  for (auto info : infos) {
    auto id = str(info.getTaskId());
    if (!valid_task_dir_name(id))
      invalid = "invalid task id '" + id + "'";
    else if (!ids.insert(id).second)
      invalid = "task id '" + id + "' appears twice";
  }
  mode_ = Mode::group;
  for (auto info : infos)
    if (!find(str(info.getTaskId())))
      send_update(add_task(info, group_task_placement(config_.sandbox, str(info.getTaskId()))),
                  State::STARTING);
  if (!invalid.empty() || shutting_down_) {
    auto why = shutting_down_ ? "Executor is shutting down" : "Invalid task group: " + invalid;
    for (const auto& id : order_)
      send_update(tasks_.at(id), State::FAILED, Reason::TASK_GROUP_INVALID, why);
    return;
  }
  for (const auto& id : order_) {
    auto pid = spawn_task(tasks_.at(id));
    if (!pid) {
      fail_group(id, what(pid.error()));
      return;
    }
  }
  for (const auto& id : order_)
    on_running(tasks_.at(id));
}

CommandExecutor::Task& CommandExecutor::add_task(wire::TaskInfo::Reader info, TaskPlacement where) {
  auto id = str(info.getTaskId());
  auto& t = tasks_[id];
  t.id = id;
  t.info = Owned<wire::TaskInfo>(info);
  t.where = std::move(where);
  order_.push_back(id);
  return t;
}

expected<int> CommandExecutor::spawn_task(Task& t) {
  if (config_.simulated)
    return spawn_simulated(t);
  std::error_code ec;
  std::filesystem::create_directories(t.where.cwd, ec);
  if (ec)
    return make_error(Errc::spawn_failed,
                      "cannot create " + t.where.cwd.string() + ": " + ec.message());
  auto spec = task_process(t.info.get(), t.where, config_.cgroups, config_.pid_namespace);
  if (!spec)
    return spec.error();
  if (auto err = as_task_user(t, *spec))
    return err;
  spec->env.insert(spec->env.end(), config_.container_env.begin(), config_.container_env.end());
  bool truncated = false;
  static_cast<void>(port_environment(t.info.get().getResources(), &truncated));
  if (truncated)
    log().warn("{}: task {} holds more than {} ports; PORTn names the first ones", me().to_string(),
               t.id, task_env_ports_max);
  auto pid = start_process(*spec, [this, id = t.id](const ProcessExit& e) { on_task_exit(id, e); });
  if (pid) {
    t.pid = *pid;
    t.started = now();
    leftover_->pids.insert(*pid);
  }
  return pid;
}

caf::error CommandExecutor::as_task_user(Task& t, ProcessSpec& spec) {
  if (!t.identity_known) {
    auto info = t.info.get();
    auto name = info.hasCommand() ? str(info.getCommand().getUser()) : std::string();
    if (!name.empty()) {
      auto user = lookup_user(name);
      if (!user)
        return make_error(Errc::spawn_failed, "cannot run as " + what(user.error()));
      t.user = *user;
      t.identity = *user;
    } else if (auto self = effective_user()) {
      t.identity = *self;
    } else {
      log().warn("{}: task {}: no HOME, USER or LOGNAME: {}", me().to_string(), t.id,
                 what(self.error()));
    }
    t.identity_known = true;
  }
  spec.user = t.user;
  start_environment(spec, config_.base_env, t.identity ? &*t.identity : nullptr);
  return caf::none;
}

// One task of the group could not be spawned: it fails, the ones already
// running are killed (reported KILLED as they exit), the rest never start.
void CommandExecutor::fail_group(const std::string& failed_id, const std::string& why) {
  auto cause = "Task " + failed_id + " of its group failed to launch";
  for (const auto& id : order_) {
    auto& t = tasks_.at(id);
    if (id == failed_id)
      send_update(t, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED,
                  "Failed to launch the command: " + why);
    else if (t.pid != 0)
      kill_task(t, grace_of(t), cause);
    else
      send_update(t, State::KILLED, Reason::NONE, "Killed: " + cause);
  }
}

void CommandExecutor::on_running(Task& t) {
  send_update(t, State::RUNNING);
  start_checks(t);
}

// -- killing ---------------------------------------------------------------------

void CommandExecutor::on_kill(Event::Kill::Reader kill) {
  auto* t = find(str(kill.getTaskId()));
  if (t == nullptr) {
    refuse("kill of an unknown task", str(kill.getTaskId()));
    return;
  }
  kill_task(*t, grace_of(*t, kill.getGracePeriodNs()));
}

// The kill's own grace period, else the task's kill policy, else the default.
Duration CommandExecutor::grace_of(const Task& t, int64_t kill_grace_ns) const {
  if (kill_grace_ns > 0)
    return Duration(kill_grace_ns);
  auto info = t.info.get();
  if (info.hasKillPolicy())
    return Duration(std::max<int64_t>(0, info.getKillPolicy().getGracePeriodNs()));
  return config_.kill_grace_ms;
}

void CommandExecutor::kill_task(Task& t, Duration grace, const std::string& cause) {
  if (t.pid == 0 || t.killing)
    return;  // not running, or a kill is already under way
  t.killing = true;
  t.kill_cause = cause;
  stop_checks(t);
  log().debug("{}: killing task {} (grace {} ms)", me().to_string(), t.id,
              std::chrono::duration_cast<std::chrono::milliseconds>(grace).count());
  if (killing_state_)
    send_update(t, State::KILLING, Reason::NONE, cause);
  signal_task(t, SIGTERM, [who = me().to_string(), id = t.id](const caf::error& err) {
    log().warn("{}: SIGTERM to task {}: {}", who, id, describe(err));
  });
  t.escalation_timer = after(grace, [this, id = t.id] {
    auto* t = find(id);
    if (t == nullptr)
      return;
    t->escalation_timer = 0;
    if (t->pid != 0)
      signal_task(*t, SIGKILL);
  });
}

// Mesos's pod behaviour: a group task that ends other than FINISHED takes
// its siblings with it.
void CommandExecutor::kill_siblings(const Task& ended, State state) {
  if (mode_ != Mode::group || state == State::FINISHED)
    return;
  auto cause = "Task " + ended.id + " of its group ended " + to_string(state);
  for (const auto& id : order_)
    if (id != ended.id)
      kill_task(tasks_.at(id), grace_of(tasks_.at(id)), cause);
}

void CommandExecutor::on_task_exit(const std::string& id, const ProcessExit& exit) {
  auto* t = find(id);
  if (t == nullptr)
    return;
  leftover_->pids.erase(t->pid);
  t->pid = 0;
  cancel(t->escalation_timer);
  t->escalation_timer = 0;
  stop_checks(*t);
  auto message = exit_message(exit);
  // As Mesos: a task that was asked to die is KILLED however it ended, unless
  // its health checks killed it.
  auto state = State::FAILED;
  auto reason = Reason::COMMAND_EXITED;
  if (!t->unhealthy.empty()) {
    reason = Reason::TASK_UNHEALTHY;
    message = t->unhealthy + "; " + message;
  } else if (t->killing) {
    state = State::KILLED;
    reason = Reason::NONE;
    if (!t->kill_cause.empty())
      message = t->kill_cause + "; " + message;
  } else if (exit.term_signal == 0 && exit.exit_code == 0) {
    state = State::FINISHED;
    reason = Reason::NONE;
  }
  send_update(*t, state, reason, message, exit.exit_code, exit.term_signal);
  kill_siblings(*t, state);
}

void CommandExecutor::shutdown() {
  if (shutting_down_)
    return;
  shutting_down_ = true;
  Duration grace_max{0};
  for (auto& [id, t] : tasks_)
    if (t.pid != 0) {
      grace_max = std::max(grace_max, grace_of(t));
      kill_task(t, grace_of(t), "Executor shutting down");
    }
  bool running =
      std::any_of(tasks_.begin(), tasks_.end(), [](const auto& kv) { return kv.second.pid != 0; });
  if (!running) {
    finish(0);
    return;
  }
  // The agent acknowledges the terminal updates at once; if it does not, the
  // shutdown still ends.
  shutdown_timer_ = after(grace_max + shutdown_ack_wait_ms, [this] {
    kill_everything();
    finish(0);
  });
}

void CommandExecutor::kill_everything() {
  for (int pid : leftover_->pids)
    signal_group(node(), pid, SIGKILL);
  for (auto& [id, t] : tasks_)
    if (t.pid != 0 && config_.simulated)
      signal_task(t, SIGKILL);
}

void CommandExecutor::signal_task(Task& t, int signal,
                                  std::function<void(const caf::error&)> on_error) {
  if (!config_.simulated)
    return signal_group(node(), t.pid, signal, std::move(on_error));
  if (signal == SIGKILL)
    arm_simulated_exit(t, Duration::zero(), -1, SIGKILL);
  else if (t.sim.term_after)
    arm_simulated_exit(t, *t.sim.term_after, -1, signal);
}

// A simulated process: it runs for what SimulatedTasks says, on this actor's
// timers, and ends through on_task_exit as a real one would.
expected<int> CommandExecutor::spawn_simulated(Task& t) {
  int pid = next_simulated_pid_++;
  t.pid = pid;
  t.started = now();
  t.sim = config_.simulated->started(config_.framework_id, t.id, me());
  leftover_->simulated[pid] = t.id;
  arm_simulated_exit(t, t.sim.runs_for, t.sim.exit_code, 0);
  return pid;
}

// (Re)arms the exit of t's simulated process, unless it ends sooner anyway.
void CommandExecutor::arm_simulated_exit(Task& t, Duration in, int exit_code, int term_signal) {
  if (t.sim_exit_timer != 0) {
    if (term_signal != SIGKILL && in >= t.sim.runs_for - (now() - t.started))
      return;
    cancel(t.sim_exit_timer);
  }
  t.sim_exit_timer = after(in, [this, id = t.id, pid = t.pid, exit_code, term_signal] {
    auto* task = find(id);
    if (task == nullptr || task->pid != pid)
      return;
    task->sim_exit_timer = 0;
    leftover_->simulated.erase(pid);
    config_.simulated->ended(config_.framework_id, id, term_signal);
    on_task_exit(id, ProcessExit{pid, exit_code, term_signal});
  });
}

void CommandExecutor::finish(int exit_code) {
  leftover_->exit_code = exit_code;
  log().debug("{}: executor {} done ({})", me().to_string(), config_.executor_id, exit_code);
  stop();
}

CommandExecutor::Task* CommandExecutor::find(const std::string& id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : &it->second;
}

// -- updates ---------------------------------------------------------------------

void CommandExecutor::send_update(Task& t, State state, Reason reason, const std::string& message,
                                  int exit_code, int term_signal) {
  if (t.terminal) {
    log().error("{}: task {} is already terminal; not reporting {}", me().to_string(), t.id,
                to_string(state));
    return;  // invariant 3
  }
  capnp::MallocMessageBuilder builder(build_first_segment_words);
  auto status = builder.initRoot<wire::TaskStatus>();
  status.setTaskId(t.id);
  status.setState(state);
  status.setReason(reason);
  status.setMessage(message);
  status.setTimestampNs(timestamp_ns(node()));
  auto uuid = new_uuid_bytes(rng_);
  status.setUuid(tessera::data(uuid));
  status.setSource(wire::TaskStatus::Source::EXECUTOR);
  status.setExecutorId(config_.executor_id);
  status.setExitCode(exit_code);
  status.setTermSignal(term_signal);
  if (auto healthy = t.health.healthy()) {
    status.setHasHealthy(true);
    status.setHealthy(*healthy);
  }
  t.terminal = is_terminal(state);
  unacked_.emplace_back(status.asReader());
  log().debug("{}: task {} is {}", me().to_string(), t.id, to_string(state));
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
  bool terminal = is_terminal(it->get().getState());
  unacked_.erase(it);
  if (terminal && all_acknowledged())
    finish(0);
}

// Every task has ended and the agent holds every terminal update.
bool CommandExecutor::all_acknowledged() const {
  if (tasks_.empty())
    return false;
  for (const auto& [id, t] : tasks_)
    if (!t.terminal)
      return false;
  return std::none_of(unacked_.begin(), unacked_.end(), [](const Owned<wire::TaskStatus>& u) {
    return is_terminal(u.get().getState());
  });
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
