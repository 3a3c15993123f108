#include "services/scheduler/types.hpp"

#include <algorithm>

namespace tessera {

expected<Offer> from_wire(wire::Offer::Reader in) {
  Offer offer;
  offer.id = str(in.getOfferId());
  offer.agent_id = str(in.getAgentId());
  offer.hostname = str(in.getHostname());
  offer.role = str(in.getAllocationRole());
  if (offer.id.empty() || offer.agent_id.empty())
    return make_error(Errc::malformed, "offer without an offer id or agent id");
  auto resources = from_wire(in.getResources());
  if (!resources)
    return make_error(Errc::malformed, "offer " + offer.id + ": " + describe(resources.error()));
  offer.resources = std::move(*resources);
  offer.attributes = from_wire(in.getAttributes());
  if (auto address = Address::parse(str(in.getAgentAddress())))
    offer.agent_address = std::move(*address);
  return offer;
}

TaskStatus from_wire(wire::TaskStatus::Reader in) {
  TaskStatus s;
  s.task_id = str(in.getTaskId());
  s.state = in.getState();
  s.reason = in.getReason();
  s.source = in.getSource();
  s.message = str(in.getMessage());
  s.agent_id = str(in.getAgentId());
  s.executor_id = str(in.getExecutorId());
  s.uuid = str(in.getUuid());
  if (in.getHasHealthy())
    s.healthy = in.getHealthy();
  s.exit_code = in.getExitCode();
  s.term_signal = in.getTermSignal();
  s.timestamp = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(in.getTimestampNs())));
  return s;
}

namespace {

// What the executor's HTTP probe will send: an absolute path with no
// whitespace or control characters (they would break the request line).
bool valid_http_path(const std::string& path) {
  return !path.empty() && path.front() == '/' && std::none_of(path.begin(), path.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// Why the check is wrong, or empty.
std::string check_problem(const HealthCheckSpec& check) {
  switch (check.type) {
    case HealthCheckType::COMMAND:
      if (check.command.empty())
        return "a command health check needs a command";
      break;
    case HealthCheckType::HTTP:
    case HealthCheckType::TCP:
      if (check.port < 1 || check.port > 65535)
        return "health check port " + std::to_string(check.port) + " is not in 1..65535";
      if (check.type == HealthCheckType::HTTP && !valid_http_path(check.path))
        return "health check path '" + check.path +
               "' must start with / and hold no spaces or control characters";
      break;
    default:
      return "unknown health check type";
  }
  const std::pair<const char*, const std::optional<Duration>*> durations[] = {
      {"delay", &check.delay},
      {"interval", &check.interval},
      {"timeout", &check.timeout},
      {"grace period", &check.grace_period}};
  for (const auto& [name, value] : durations)
    if (*value && **value < Duration::zero())
      return std::string("negative health check ") + name;
  if (check.consecutive_failures && *check.consecutive_failures == 0)
    return "health check consecutive failures must be at least 1";
  return {};
}

}  // namespace

caf::error validate(const TaskSpec& task) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_argument, "task '" + task.id + "': " + why);
  };
  if (task.id.empty())
    return make_error(Errc::invalid_argument, "a task needs an id");
  if (task.shell.empty() == task.argv.empty())
    return bad("give exactly one of shell and argv");
  if (!task.argv.empty() && task.argv.front().empty())
    return bad("argv[0] is empty");
  if (task.kill_grace && *task.kill_grace < Duration::zero())
    return bad("negative kill grace period");
  if (task.resources.empty())
    return bad("no resources");
  for (const auto& uri : task.uris)
    if (uri.value.empty())
      return bad("a uri without a value");
  if (task.health_check)
    if (auto why = check_problem(*task.health_check); !why.empty())
      return bad(why);
  return {};
}

namespace {

void to_wire(const std::map<std::string, std::string>& env,
             capnp::List<wire::EnvVar>::Builder out) {
  unsigned i = 0;
  for (const auto& [name, value] : env) {
    out[i].setName(name);
    out[i].setValue(value);
    ++i;
  }
}

void to_wire(const std::vector<UriSpec>& uris, capnp::List<wire::Uri>::Builder out) {
  for (unsigned i = 0; i < uris.size(); ++i) {
    out[i].setValue(uris[i].value);
    out[i].setExtract(uris[i].extract);
    out[i].setExecutable(uris[i].executable);
    out[i].setCache(uris[i].cache);
  }
}

// Unset optionals are not written: the schema's defaults (Mesos's) apply.
void to_wire(const HealthCheckSpec& check, wire::HealthCheck::Builder out) {
  out.setType(check.type);
  if (check.type == HealthCheckType::COMMAND) {
    out.initCommand().setShell(check.command);
  } else {
    out.setPort(static_cast<uint16_t>(check.port));  // validate() checked the range
    if (check.type == HealthCheckType::HTTP)
      out.setPath(check.path);
    out.setIpv6(check.ipv6);
  }
  if (check.delay)
    out.setDelayNs(check.delay->count());
  if (check.interval)
    out.setIntervalNs(check.interval->count());
  if (check.timeout)
    out.setTimeoutNs(check.timeout->count());
  if (check.consecutive_failures)
    out.setConsecutiveFailures(*check.consecutive_failures);
  if (check.grace_period)
    out.setGracePeriodNs(check.grace_period->count());
}

}  // namespace

void to_wire(const TaskSpec& task, wire::TaskInfo::Builder out) {
  out.setTaskId(task.id);
  out.setName(task.name.empty() ? task.id : task.name);
  out.setAgentId(task.agent_id);
  to_wire(task.resources, out.initResources(wire_size(task.resources)));
  auto command = out.initCommand();
  if (task.argv.empty()) {
    command.setShell(task.shell);
  } else {
    auto argv = command.initArgv(static_cast<unsigned>(task.argv.size()));
    for (unsigned i = 0; i < task.argv.size(); ++i)
      argv.set(i, task.argv[i]);
  }
  to_wire(task.env, command.initEnvironment(static_cast<unsigned>(task.env.size())));
  command.setUser(task.user);
  to_wire(task.uris, command.initUris(static_cast<unsigned>(task.uris.size())));
  if (task.health_check)
    to_wire(*task.health_check, out.initHealthCheck());
  if (task.kill_grace)
    out.initKillPolicy().setGracePeriodNs(task.kill_grace->count());
  auto labels = out.initLabels(static_cast<unsigned>(task.labels.size()));
  unsigned i = 0;
  for (const auto& [key, value] : task.labels) {
    labels[i].setKey(key);
    labels[i].setValue(value);
    ++i;
  }
}

void to_wire(const FrameworkInfo& info, wire::FrameworkInfo::Builder out) {
  out.setFrameworkId(info.framework_id);
  out.setName(info.name);
  out.setUser(info.user);
  auto roles = out.initRoles(static_cast<unsigned>(info.roles.size()));
  for (unsigned i = 0; i < info.roles.size(); ++i)
    roles.set(i, info.roles[i]);
  out.setPrincipal(info.principal);
  out.setFailoverTimeoutNs(info.failover_timeout.count());
  auto caps = out.initCapabilities(static_cast<unsigned>(info.capabilities.size()));
  for (unsigned i = 0; i < info.capabilities.size(); ++i)
    caps.set(i, info.capabilities[i]);
}

std::string describe(const TaskStatus& status) {
  std::string out = to_string(status.state);
  if (!status.message.empty())
    out += " (" + status.message + ")";
  return out;
}

}  // namespace tessera
