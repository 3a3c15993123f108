// CommandExecutor's health checks: when they run and what their results do.
// The policy (what counts, when to kill) is HealthPolicy's; the network
// checks are health_probe.hpp's, run on the node's blocking pool.

#include "services/executor/command_executor.hpp"

#include "runtime/log.hpp"
#include "services/common/wire.hpp"

#include <signal.h>

#include <algorithm>

namespace tessera {

namespace {

using State = wire::TaskState;
using CheckType = wire::HealthCheck::Type;

// Bounds on what a task's health check asks for: a zero interval must not
// spin the executor, and a pool thread must never wait unbounded.
constexpr std::chrono::milliseconds check_interval_min_ms{10};
constexpr std::chrono::milliseconds check_timeout_min_ms{1};
constexpr std::chrono::milliseconds check_timeout_max_ms{300'000};

Duration check_timeout(wire::HealthCheck::Reader check) {
  // Mesos reads a timeout of 0 as none; here it is the longest allowed.
  auto ns = check.getTimeoutNs() > 0 ? Duration(check.getTimeoutNs()) : check_timeout_max_ms;
  return std::clamp<Duration>(ns, check_timeout_min_ms, check_timeout_max_ms);
}

std::chrono::milliseconds in_ms(Duration d) {
  return std::chrono::ceil<std::chrono::milliseconds>(d);
}

std::string describe_command(wire::CommandInfo::Reader command) {
  if (command.isShell())
    return "'" + str(command.getShell()) + "'";
  std::string text;
  for (auto arg : command.getArgv())
    text += (text.empty() ? "" : " ") + str(arg);
  return "'" + text + "'";
}

}  // namespace

void CommandExecutor::start_checks(Task& t) {
  auto info = t.info.get();
  if (!info.hasHealthCheck())
    return;
  auto check = info.getHealthCheck();
  t.health = HealthPolicy(
      {Duration(std::max<int64_t>(0, check.getGracePeriodNs())), check.getConsecutiveFailures()});
  schedule_check(t, Duration(std::max<int64_t>(0, check.getDelayNs())));
}

void CommandExecutor::schedule_check(Task& t, Duration delay) {
  cancel(t.check_timer);
  t.check_timer = after(delay, [this, id = t.id] {
    if (auto* t = find(id))
      t->check_timer = 0;
    run_check(id);
  });
}

void CommandExecutor::run_check(const std::string& id) {
  auto* t = find(id);
  if (t == nullptr || t->pid == 0 || t->killing)
    return;
  auto check = t->info.get().getHealthCheck();
  switch (check.getType()) {
    case CheckType::HTTP:
    case CheckType::TCP:
      run_network_check(*t, check);
      break;
    case CheckType::COMMAND:
      run_command_check(*t, check);
      break;
    default:
      on_check_result(id, {false, "unknown health check type"});
      break;
  }
}

void CommandExecutor::run_network_check(Task& t, wire::HealthCheck::Reader check) {
  auto http = check.getType() == CheckType::HTTP;
  auto port = check.getPort();
  auto path = str(check.getPath());
  auto timeout = in_ms(check_timeout(check));
  auto family = check.getIpv6() ? ProbeFamily::ipv6 : ProbeFamily::ipv4;
  bool queued = blocking(Work::probe, [this, id = t.id, http, port, path, timeout, family] {
    auto result = http ? probe_http(port, path, timeout, family) : probe_tcp(port, timeout, family);
    return std::function<void()>([this, id, result] { on_check_result(id, result); });
  });
  if (!queued) {
    // The pool is full or stopping: no result either way; try again later.
    log().warn("{}: no thread for task {}'s health check; retrying", me().to_string(), t.id);
    schedule_check(t, std::max<Duration>(Duration(check.getIntervalNs()), check_interval_min_ms));
  }
}

void CommandExecutor::run_command_check(Task& t, wire::HealthCheck::Reader check) {
  auto what = "command check " + describe_command(check.getCommand());
  auto spec = check_process(t.info.get(), check.getCommand(), t.where, config_.cgroups,
                            config_.pid_namespace);
  if (!spec) {
    on_check_result(t.id, {false, what + ": " + tessera::what(spec.error())});
    return;
  }
  if (auto err = as_task_user(t, *spec)) {
    on_check_result(t.id, {false, what + ": " + tessera::what(err)});
    return;
  }
  spec->env.insert(spec->env.end(), config_.container_env.begin(), config_.container_env.end());
  auto pid = start_process(
      *spec, [this, id = t.id, what](const ProcessExit& e) { on_check_exit(id, e, what); });
  if (!pid) {
    on_check_result(t.id, {false, what + ": " + tessera::what(pid.error())});
    return;
  }
  t.check_pid = *pid;
  t.check_timed_out = false;
  leftover_->pids.insert(*pid);
  auto timeout = check_timeout(check);
  t.check_timer = after(timeout, [this, id = t.id] {
    auto* t = find(id);
    if (t == nullptr || t->check_pid == 0)
      return;
    t->check_timer = 0;
    t->check_timed_out = true;
    kill_process(t->check_pid, SIGKILL, true);
    kill_process(t->check_pid, SIGKILL, false);
  });
}

void CommandExecutor::on_check_exit(const std::string& id, const ProcessExit& exit,
                                    const std::string& what) {
  auto* t = find(id);
  if (t == nullptr)
    return;
  leftover_->pids.erase(exit.pid);
  if (t->check_pid != exit.pid)
    return;  // a check stop_checks() ended
  t->check_pid = 0;
  cancel(t->check_timer);
  t->check_timer = 0;
  auto check = t->info.get().getHealthCheck();
  if (t->check_timed_out)
    on_check_result(id, {false, what + " timed out after " +
                                    std::to_string(in_ms(check_timeout(check)).count()) + " ms"});
  else if (exit.term_signal != 0)
    on_check_result(id, {false, what + " terminated with signal " + signal_name(exit.term_signal)});
  else
    on_check_result(
        id, {exit.exit_code == 0, what + " exited with status " + std::to_string(exit.exit_code)});
}

void CommandExecutor::on_check_result(const std::string& id, const ProbeResult& result) {
  auto* t = find(id);
  if (t == nullptr || t->pid == 0 || t->killing)
    return;  // ended while the check ran
  auto verdict = t->health.record(result.healthy, now() - t->started);
  if (!verdict.counted)
    log().debug("{}: task {}: ignoring a failed health check in its grace period: {}",
                me().to_string(), t->id, result.message);
  if (verdict.report)
    send_update(*t, State::RUNNING, Reason::NONE, result.message);
  if (verdict.kill) {
    log().info("{}: task {} is unhealthy: {}", me().to_string(), t->id, result.message);
    t->unhealthy = "Health check failed " + std::to_string(t->health.failures()) +
                   " times in a row: " + result.message;
    kill_task(*t, grace_of(*t));
    return;
  }
  auto check = t->info.get().getHealthCheck();
  schedule_check(*t, std::max<Duration>(Duration(check.getIntervalNs()), check_interval_min_ms));
}

// No further checks; a command check running is killed (its exit is ignored).
void CommandExecutor::stop_checks(Task& t) {
  cancel(t.check_timer);
  t.check_timer = 0;
  if (t.check_pid != 0) {
    kill_process(t.check_pid, SIGKILL, true);
    kill_process(t.check_pid, SIGKILL, false);
    t.check_pid = 0;
  }
}

}  // namespace tessera
