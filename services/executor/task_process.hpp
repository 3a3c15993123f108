#pragma once
// How the executor turns a TaskInfo into a process: where it runs, what it
// runs, and the environment it sees. Plain functions, no actor.
//
// Environment of a task (and of its command health check), in order, later
// entries overriding earlier ones. Never the executor's (or agent's) own
// environment: it starts empty (start_environment), then
//   the executor's base: PATH and the agent's allow-listed variables
//   (--executor-env-allow),
//   HOME, USER and LOGNAME of the user the task runs as,
//   TESSERA_TASK_ID, TESSERA_SANDBOX (the task's working directory),
//   PORT0, PORT1, ... (each port of its `ports` resource, in order),
//   PORTS (them all, comma-separated) and PORT (= PORT0), as Marathon sets them,
//   then its CommandInfo's environment entries (and last, from the
//   executor, the agent's container marker).

#include "runtime/error.hpp"
#include "runtime/process_launcher.hpp"

#include <capnp/common.capnp.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

// Ports a task's environment names, at most; a task holding a larger range
// gets the first ones (and a warning from the caller).
constexpr size_t task_env_ports_max = 1024;

// Where a task's process runs and writes.
struct TaskPlacement {
  std::filesystem::path cwd;
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
};

// The only task of a `launch`: the sandbox itself, its stdout and stderr.
TaskPlacement single_task_placement(const std::filesystem::path& sandbox);
// A task of a `launchGroup`: tasks/<task_id>/ under the sandbox, with its
// stdout and stderr in it. Precondition: valid_task_dir_name(task_id).
TaskPlacement group_task_placement(const std::filesystem::path& sandbox,
                                   const std::string& task_id);

// A task id usable as one directory name: not empty, not . or .., no '/' and
// no control characters, at most 255 bytes.
bool valid_task_dir_name(std::string_view id);

// PORT0..PORTn-1, PORTS and PORT for the task's `ports` ranges; empty when it
// has none. truncated is set when there were more than task_env_ports_max.
std::vector<std::string> port_environment(capnp::List<wire::Resource>::Reader resources,
                                          bool* truncated = nullptr);

// argv (shell: /bin/sh -c) and the environment entries of command.
// Errc::invalid_argument when it runs nothing (empty argv or shell).
expected<ProcessSpec> command_process(wire::CommandInfo::Reader command);

// The whole spec of a task's process: its command, its environment (above),
// its placement, a session of its own (kills reach everything it starts) and
// the container placement every task process gets.
expected<ProcessSpec> task_process(wire::TaskInfo::Reader task, const TaskPlacement& where,
                                   const std::vector<std::string>& cgroups, bool pid_namespace);

// Makes spec's environment the task's own: inherit_env off, and base, then
// who's HOME, USER and LOGNAME (when who is known), before spec.env.
void start_environment(ProcessSpec& spec, const std::vector<std::string>& base,
                       const UserIdentity* who);

// A command health check of task: its command with the task's environment
// (above, then the check command's own entries), in the task's directory and
// container, output discarded.
expected<ProcessSpec> check_process(wire::TaskInfo::Reader task, wire::CommandInfo::Reader check,
                                    const TaskPlacement& where,
                                    const std::vector<std::string>& cgroups, bool pid_namespace);

}  // namespace tessera
