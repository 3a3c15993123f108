#include "services/executor/task_process.hpp"

#include "services/common/wire.hpp"

#include <algorithm>

namespace tessera {

namespace {

constexpr size_t dir_name_bytes_max = 255;

// TESSERA_TASK_ID, TESSERA_SANDBOX and the ports, before any command's own.
std::vector<std::string> base_environment(wire::TaskInfo::Reader task, const TaskPlacement& where) {
  std::vector<std::string> env{"TESSERA_TASK_ID=" + str(task.getTaskId()),
                               "TESSERA_SANDBOX=" + where.cwd.string()};
  auto ports = port_environment(task.getResources());
  env.insert(env.end(), ports.begin(), ports.end());
  return env;
}

expected<ProcessSpec> placed_process(wire::TaskInfo::Reader task, wire::CommandInfo::Reader command,
                                     const TaskPlacement& where,
                                     const std::vector<std::string>& cgroups, bool pid_namespace) {
  auto spec = command_process(command);
  if (!spec)
    return spec.error();
  auto env = base_environment(task, where);
  env.insert(env.end(), spec->env.begin(), spec->env.end());
  spec->env = std::move(env);
  spec->working_dir = where.cwd.string();
  spec->stdout_path = where.stdout_path.string();
  spec->stderr_path = where.stderr_path.string();
  spec->new_session = true;
  spec->cgroups = cgroups;
  spec->pid_namespace = pid_namespace;
  return spec;
}

}  // namespace

TaskPlacement single_task_placement(const std::filesystem::path& sandbox) {
  return {sandbox, sandbox / "stdout", sandbox / "stderr"};
}

TaskPlacement group_task_placement(const std::filesystem::path& sandbox,
                                   const std::string& task_id) {
  auto dir = sandbox / "tasks" / task_id;
  return {dir, dir / "stdout", dir / "stderr"};
}

bool valid_task_dir_name(std::string_view id) {
  if (id.empty() || id.size() > dir_name_bytes_max || id == "." || id == "..")
    return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return c == '/' || u < 0x20 || u == 0x7f;
  });
}

std::vector<std::string> port_environment(capnp::List<wire::Resource>::Reader resources,
                                          bool* truncated) {
  std::vector<uint64_t> ports;
  bool cut = false;
  for (auto r : resources) {
    if (r.getName() != "ports" || !r.isRanges())
      continue;
    for (auto range : r.getRanges())
      for (uint64_t p = range.getBegin(); p <= range.getEnd() && !cut; ++p) {
        if (ports.size() == task_env_ports_max)
          cut = true;
        else
          ports.push_back(p);
      }
  }
  if (truncated != nullptr)
    *truncated = cut;
  std::vector<std::string> env;
  if (ports.empty())
    return env;
  std::string all;
  for (size_t i = 0; i < ports.size(); ++i) {
    env.push_back("PORT" + std::to_string(i) + "=" + std::to_string(ports[i]));
    all += (i == 0 ? "" : ",") + std::to_string(ports[i]);
  }
  env.push_back("PORTS=" + all);
  env.push_back("PORT=" + std::to_string(ports.front()));
  return env;
}

expected<ProcessSpec> command_process(wire::CommandInfo::Reader command) {
  ProcessSpec spec;
  if (command.isShell()) {
    if (command.getShell().size() == 0)
      return make_error(Errc::invalid_argument, "empty shell command");
    spec.argv = {"/bin/sh", "-c", str(command.getShell())};
  } else {
    for (auto arg : command.getArgv())
      spec.argv.push_back(str(arg));
    if (spec.argv.empty())
      return make_error(Errc::invalid_argument, "empty argv");
  }
  for (auto var : command.getEnvironment())
    spec.env.push_back(str(var.getName()) + "=" + str(var.getValue()));
  return spec;
}

expected<ProcessSpec> task_process(wire::TaskInfo::Reader task, const TaskPlacement& where,
                                   const std::vector<std::string>& cgroups, bool pid_namespace) {
  if (!task.hasCommand())
    return make_error(Errc::invalid_argument, "task has no command");
  return placed_process(task, task.getCommand(), where, cgroups, pid_namespace);
}

void start_environment(ProcessSpec& spec, const std::vector<std::string>& base,
                       const UserIdentity* who) {
  std::vector<std::string> env = base;
  if (who != nullptr) {
    env.push_back("HOME=" + who->home);
    env.push_back("USER=" + who->name);
    env.push_back("LOGNAME=" + who->name);
  }
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  spec.env = std::move(env);
  spec.inherit_env = false;
}

expected<ProcessSpec> check_process(wire::TaskInfo::Reader task, wire::CommandInfo::Reader check,
                                    const TaskPlacement& where,
                                    const std::vector<std::string>& cgroups, bool pid_namespace) {
  auto spec = placed_process(task, check, where, cgroups, pid_namespace);
  if (spec) {
    spec->stdout_path.clear();
    spec->stderr_path.clear();
  }
  return spec;
}

}  // namespace tessera
