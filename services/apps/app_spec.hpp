#pragma once
// An app of the apps framework (issue #12): what a user declares, as
// Marathon's app definition (field names and defaults are Marathon's, so
// existing definitions load unchanged). parse_app() checks a JSON
// definition and names every problem (Marathon answers those with a 422);
// to_json() writes the definition back with every default filled in.
//
// Accepted as Marathon has them: cmd or args (one of the two), instances,
// cpus, mem, disk, gpus, ports / portDefinitions (0: a port chosen per
// task, passed as PORT0, PORT1, ...), requirePorts, env, fetch (and the
// older uris), healthChecks, constraints, upgradeStrategy, backoffSeconds,
// backoffFactor, maxLaunchDelaySeconds, unreachableStrategy, killSelection,
// labels, role, user, taskKillGracePeriodSeconds. Fields Marathon reports
// (version, versionInfo, tasks*, deployments, lastTaskFailure) are ignored,
// so a definition read back can be sent again. Marathon fields this
// framework does not implement (container, networks, secrets, ...) are a
// problem unless empty; any other field is unknown, and a problem.
//
// A value type; no I/O.

#include "runtime/error.hpp"
#include "services/common/spec_reader.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::apps {

struct PortDefinition {
  uint32_t port = 0;  // 0: any free port, chosen per task
  std::string name;
  std::string protocol = "tcp";
  std::map<std::string, std::string> labels;
};

struct FetchUri {
  std::string uri;
  bool executable = false;
  bool extract = true;
  bool cache = false;
  std::string dest_path;
};

struct HealthCheck {
  // COMMAND runs in the task's sandbox; HTTP(S) and TCP probe the port at
  // port_index (or port); MESOS_* are the same, run by the executor.
  std::string protocol = "HTTP";
  std::string path = "/";
  std::string command;  // COMMAND: command.value
  uint32_t port_index = 0;
  std::optional<uint32_t> port;
  double grace_period_s = 300;
  double interval_s = 60;
  double timeout_s = 20;
  double delay_s = 15;
  uint32_t max_consecutive_failures = 3;
  bool ignore_http1xx = false;
};

struct Constraint {
  enum class Op { unique, cluster, group_by, max_per, like, unlike, is, spread };
  std::string field;  // "hostname" or an agent attribute
  Op op = Op::unique;
  // CLUSTER/LIKE/UNLIKE/IS: required; GROUP_BY: optional count; MAX_PER:
  // count. SPREAD (Tessera's; soft): never refuses, prefers the value with
  // the fewest instances among agents that fit.
  std::string value;
};

struct UnreachableStrategy {
  bool enabled = true;  // "disabled": never replaced, never expunged
  uint64_t inactive_after_s = 300;
  uint64_t expunge_after_s = 600;
};

enum class KillSelection { youngest_first, oldest_first };

struct AppSpec {
  std::string id;  // absolute path, "/shop/web"
  std::optional<std::string> cmd;
  std::vector<std::string> args;
  uint32_t instances = 1;
  double cpus = 1;
  double mem = 128;  // MiB
  double disk = 0;   // MiB
  uint32_t gpus = 0;
  std::vector<PortDefinition> ports{PortDefinition{}};  // Marathon: one dynamic port
  bool require_ports = false;
  std::map<std::string, std::string> env;
  std::vector<FetchUri> fetch;
  std::vector<HealthCheck> health_checks;
  std::vector<Constraint> constraints;
  double minimum_health_capacity = 1;
  double maximum_over_capacity = 1;
  // Tessera's (upgradeStrategy.canaryInstances, .progressDeadlineSeconds): a
  // change first starts this many new instances and waits for promote or
  // abort; a deployment not done this long after it started fails and rolls
  // back to the last fully healthy version.
  uint32_t canary_instances = 0;
  double progress_deadline_s = 600;
  double backoff_s = 1;
  double backoff_factor = 1.15;
  double max_launch_delay_s = 3600;
  UnreachableStrategy unreachable;
  KillSelection kill_selection = KillSelection::youngest_first;
  std::map<std::string, std::string> labels;
  std::string role;  // empty: the framework's
  std::optional<std::string> user;
  std::optional<double> task_kill_grace_period_s;
};

using tessera::SpecProblem;  // services/common/spec_reader.hpp

struct ParsedApp {
  AppSpec app;                        // meaningful only when problems is empty
  std::vector<SpecProblem> problems;  // every one found, in field order
  bool ok() const { return problems.empty(); }
};

// Bounds on what one definition may hold.
inline constexpr uint32_t app_instances_max = 100'000;
inline constexpr size_t app_id_bytes_max = 255;
inline constexpr size_t app_list_items_max = 1'000;  // env, labels, fetch, checks, ...

ParsedApp parse_app(const nlohmann::json& definition);

// The definition with every default filled in, in Marathon's shape.
nlohmann::json to_json(const AppSpec& app);

// Marathon's 422 body (services/common/spec_reader.hpp).
using tessera::problems_json;

// "shop/web/" -> "/shop/web"; empty when id is not a valid path: segments
// of [a-z0-9-.], each starting and ending with a letter or digit.
std::string normalize_app_id(const std::string& id);

const char* to_string(Constraint::Op op);

}  // namespace tessera::apps
