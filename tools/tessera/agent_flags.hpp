#pragma once
// The flags that decide how an agent runs tasks (issue #14, tasks and
// sandboxes), shared by `tessera agent` and `tessera cluster`:
//   --switch-user[=false]           tasks run as their user (when root)
//   --executor-env-allow NAME,...   the agent's variables executors and tasks get
//   --fetcher-allowed-paths DIR,... where file:// and plain-path URIs may come from
//   --fetcher-ca-file PEM           the CAs https:// fetches trust
// Defined in cmd_agent.cpp.

#include "services/agent/agent.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace tessera::cli {

struct TaskFlags {
  bool switch_user = true;
  std::string executor_env_allow = "LANG,LC_ALL,TZ";
  std::string fetcher_allowed_paths;  // empty: no local sources
  std::string fetcher_ca_file;        // empty: the system's CAs
};

void add_task_flags(CLI::App* sub, TaskFlags& flags);

// Checks the flags and sets them in config: allowed paths must be absolute
// directories that exist (kept with symlinks resolved), the CA file must
// be readable, names must be plain variable names.
caf::error apply_task_flags(const TaskFlags& flags, AgentConfig& config);

}  // namespace tessera::cli
