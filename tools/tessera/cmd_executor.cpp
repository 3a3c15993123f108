// `tessera executor` (hidden): the command executor in a process of its own,
// as an agent in process mode starts it. Everything comes from the
// environment the agent sets:
//   TESSERA_AGENT         the agent's actor address, name@host:port
//   TESSERA_FRAMEWORK_ID, TESSERA_EXECUTOR_ID, TESSERA_SANDBOX
//   TESSERA_KILL_GRACE_MS, TESSERA_RECOVERY_TIMEOUT_MS (optional)
//   TESSERA_CGROUPS       cgroup directories every task process joins,
//                         ':'-separated (optional)
//   TESSERA_PID_NAMESPACE 1: every task process gets a PID namespace of its
//                         own (optional; 0 or unset: not)
// The rest of its environment (the agent gives it PATH and the variables
// its --executor-env-allow names, nothing else) is what its tasks' start
// from (CommandExecutorConfig::base_env); the TESSERA_ variables above are
// the executor's own and are not passed on, except posix isolation's
// container marker TESSERA_CONTAINER, which every task process carries.
// It runs until its executor ends (or SIGTERM/SIGINT), then exits 0.

#include "runtime/node.hpp"
#include "services/executor/command_executor.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/tls_flags.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace tessera::cli {

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    return std::nullopt;
  return std::string(value);
}

// Reads an optional millisecond count; false when it is set but not a number.
bool env_ms(const char* name, std::chrono::milliseconds& out) {
  auto text = env(name);
  if (!text)
    return true;
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), ms);
  if (ec != std::errc() || end != text->data() + text->size() || ms <= 0)
    return false;
  out = std::chrono::milliseconds(ms);
  return true;
}

// "a:b" -> {"a", "b"}; empty parts are skipped.
std::vector<std::string> split_paths(const std::string& text) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin <= text.size()) {
    auto end = std::min(text.find(':', begin), text.size());
    if (end > begin)
      parts.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

// Reads the container placement; false when TESSERA_PID_NAMESPACE is not 0 or 1.
bool env_container(CommandExecutorConfig& config) {
  if (auto cgroups = env("TESSERA_CGROUPS"))
    config.cgroups = split_paths(*cgroups);
  auto pid_namespace = env("TESSERA_PID_NAMESPACE");
  if (pid_namespace && *pid_namespace != "0" && *pid_namespace != "1")
    return false;
  config.pid_namespace = pid_namespace == "1";
  return true;
}

// The executor's environment without its own TESSERA_ variables.
std::vector<std::string> task_base_environment() {
  std::vector<std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry)
    if (std::string_view(*entry).rfind("TESSERA_", 0) != 0)
      out.emplace_back(*entry);
  return out;
}

int run_executor() {
  CommandExecutorConfig config;
  auto agent = env("TESSERA_AGENT");
  auto framework = env("TESSERA_FRAMEWORK_ID");
  auto executor = env("TESSERA_EXECUTOR_ID");
  auto sandbox = env("TESSERA_SANDBOX");
  for (auto [name, value] : {std::pair{"TESSERA_AGENT", &agent},
                             {"TESSERA_FRAMEWORK_ID", &framework},
                             {"TESSERA_EXECUTOR_ID", &executor},
                             {"TESSERA_SANDBOX", &sandbox}})
    if (!*value)
      return fail(std::string("executor: ") + name + " is not set (agents start this command)");
  auto address = Address::parse(*agent);
  if (!address)
    return fail("executor: TESSERA_AGENT: " + describe(address.error()));
  if (!env_ms("TESSERA_KILL_GRACE_MS", config.kill_grace_ms) ||
      !env_ms("TESSERA_RECOVERY_TIMEOUT_MS", config.recovery_timeout_ms))
    return fail(
        "executor: TESSERA_KILL_GRACE_MS and TESSERA_RECOVERY_TIMEOUT_MS take milliseconds");
  if (!env_container(config))
    return fail("executor: TESSERA_PID_NAMESPACE takes 0 or 1");
  config.agent = *address;
  config.framework_id = *framework;
  config.executor_id = *executor;
  config.sandbox = *sandbox;
  config.base_env = task_base_environment();
  // Posix isolation's marker of the container: every task process carries it.
  if (auto marker = env("TESSERA_CONTAINER"))
    config.container_env = {"TESSERA_CONTAINER=" + *marker};
  // Signals are taken by sigwait below; every thread the node starts
  // inherits this mask (the launcher's children get a clean one).
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1})
    sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // The executor's end wakes the main thread, which may then stop the node.
  config.on_done = [](int) { ::kill(::getpid(), SIGUSR1); };
  auto node_config = NodeConfig::lean();  // an executor mostly waits
  node_config.host = "127.0.0.1";
  // The agent passes its own transport settings (tls_environment).
  auto env_text = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  TlsFlags tls_flags{env_text("TESSERA_TLS_CERT"), env_text("TESSERA_TLS_KEY"),
                     env_text("TESSERA_TLS_CA"), env_text("TESSERA_INSECURE") == "1"};
  auto tls = tls_config(tls_flags);
  if (!tls)
    return fail("executor: " + describe(tls.error()));
  node_config.tls = *tls;
  auto node = Node::start(node_config);
  if (!node)
    return fail("executor: " + describe(node.error()));
  if (auto spawned = (*node)->spawn<CommandExecutor>("executor", std::move(config)); !spawned)
    return fail("executor: " + describe(spawned.error()));
  int sig = 0;
  sigwait(&set, &sig);
  (*node)->stop();  // kills what the executor still runs, if anything
  return 0;
}

}  // namespace

Command add_executor_command(CLI::App& app) {
  auto* sub = app.add_subcommand("executor", "Run one task for an agent (agents start this)");
  sub->group("");  // hidden from --help
  return {sub, run_executor};
}

}  // namespace tessera::cli
