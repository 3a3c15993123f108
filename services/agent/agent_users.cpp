// Who a task runs as, the sandbox handed to that user, and the environment
// executors start with (AgentConfig::switch_user, executor_env_allow).
//
// The executor stays the agent's (root): it talks to the agent over the
// node transport, and holds what the agent gives it. Only the task's own
// processes (its command, its command health checks) switch to the user,
// in the launcher's child, before they exec. The agent resolves the user
// here, before anything of the run exists, so that a user this machine does
// not know fails the task at once and names the user.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/sandbox.hpp"
#include "services/executor/task_process.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace tessera {

namespace {

// PATH when the agent has none (a service manager's bare environment).
constexpr const char* default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::vector<std::string> base_environment(const std::vector<std::string>& allow) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> env{std::string("PATH=") + (path && *path ? path : default_path)};
  for (const auto& name : allow)
    if (const char* value = std::getenv(name.c_str()); value && name != "PATH")
      env.push_back(name + "=" + value);
  return env;
}

}  // namespace

void Agent::choose_switch_user() {
  base_env_ = base_environment(config_.executor_env_allow);
  switch_user_ = config_.switch_user && ::geteuid() == 0;
  if (config_.switch_user && !switch_user_)
    log().warn("{}: not running as root: every task runs as the agent's user (uid {})",
               me().to_string(), ::geteuid());
  struct stat st {};
  if (switch_user_ && ::stat(config_.work_dir.c_str(), &st) == 0 && (st.st_mode & 022) != 0)
    log().warn(
        "{}: work dir {} is writable by its group or others (mode {:o}): task users could "
        "write into it; make it 0755 or 0700",
        me().to_string(), config_.work_dir.string(), st.st_mode & 07777);
}

// The task's user, else its framework's; nothing for the agent's own user.
expected<std::optional<UserIdentity>> Agent::task_user(const Task& task) const {
  auto info = task.info.get();
  std::string name = info.hasCommand() ? str(info.getCommand().getUser()) : std::string();
  const char* whose = "the task's";
  if (auto f = frameworks_.find(task.framework_id); name.empty() && f != frameworks_.end()) {
    name = str(f->second.get().getUser());
    whose = "its framework's";
  }
  if (name.empty())
    return std::optional<UserIdentity>{};
  if (!switch_user_) {
    // The process's user never changes: looked up once.
    static const std::string agent_user = [] {
      auto self = effective_user();
      return self ? self->name : std::string();
    }();
    if (name != agent_user)
      log().info("{}: task {} runs as the agent's user, not as {} user '{}': switch_user is off",
                 me().to_string(), task.task_id, whose, name);
    return std::optional<UserIdentity>{};
  }
  auto user = lookup_user(name);
  if (!user)
    return make_error(Errc::invalid_argument, std::string("cannot run the task as ") + whose +
                                                  " user '" + name + "': " + what(user.error()) +
                                                  " on this agent");
  // The agent's own user: nothing to switch (the executor's identity).
  if (user->uid == ::geteuid())
    return std::optional<UserIdentity>{};
  return std::optional<UserIdentity>{std::move(*user)};
}

// Sets each task's run_as and the run's owners: a command task's sandbox is
// its user's; a group's sandbox is its first task's user's, and each task's
// directory (tasks/<id>/) its own user's.
caf::error Agent::choose_users(Executor& e, const std::vector<Task*>& tasks) {
  e.owners.clear();
  std::optional<UserIdentity> run_user;
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto user = task_user(*tasks[i]);
    if (!user)
      return user.error();
    tasks[i]->run_as = *user ? (*user)->name : std::string();
    if (i == 0)
      run_user = *user;
    if (e.group && *user)
      e.owners.push_back({group_task_placement(e.sandbox, tasks[i]->task_id).cwd, (*user)->uid,
                          (*user)->gid, true});
  }
  if (run_user)
    e.owners.push_back({e.sandbox, run_user->uid, run_user->gid, !e.group});
  return caf::none;
}

caf::error Agent::hand_over(const std::vector<SandboxOwner>& owners) {
  for (const auto& o : owners)
    if (auto err = sandbox::give_to(o.dir, o.uid, o.gid, o.recursive))
      return make_error(Errc::os_error, "cannot give the sandbox to the task's user: " + what(err));
  return caf::none;
}

void Agent::set_run_as(wire::TaskInfo::Builder info, const Task& task) const {
  if (info.hasCommand())
    info.getCommand().setUser(task.run_as);
}

// A process executor's whole environment: the base, its own settings, the
// container's marker. Never the agent's environment.
std::vector<std::string> Agent::executor_environment(const Executor& e,
                                                     const Placement& placement) const {
  auto env = base_env_;
  if (const char* level = std::getenv("TESSERA_LOG_LEVEL"))
    env.push_back(std::string("TESSERA_LOG_LEVEL=") + level);
  for (auto entry : {"TESSERA_AGENT=" + me().to_string(), "TESSERA_FRAMEWORK_ID=" + e.framework_id,
                     "TESSERA_EXECUTOR_ID=" + e.executor_id, "TESSERA_RUN_ID=" + e.run_id,
                     "TESSERA_SANDBOX=" + e.sandbox.string(),
                     "TESSERA_KILL_GRACE_MS=" + std::to_string(config_.kill_grace_ms.count()),
                     "TESSERA_RECOVERY_TIMEOUT_MS=" +
                         std::to_string(config_.executor_recovery_timeout_ms.count())})
    env.push_back(std::move(entry));
  env.insert(env.end(), placement.env.begin(), placement.env.end());
  if (config_.pid_namespace)
    env.push_back("TESSERA_PID_NAMESPACE=1");
  // The executor's node speaks to this one as this node speaks: mutual TLS
  // with this agent's certificate (root may read its key; the tasks, run as
  // their users, may not), or plaintext.
  for (auto& entry : tls_environment(node().config().tls))
    env.push_back(std::move(entry));
  return env;
}

}  // namespace tessera
