#pragma once
// A job of the jobs framework (issue #13): what a user declares, as
// Metronome's job definition (field names and defaults are Metronome's, so
// existing definitions load). parse_job() names every problem with its
// JSON-pointer path (answered with a 422); to_json() writes the definition
// back with every default filled in.
//
//   id           dot-separated segments of [a-z0-9-] ("prod.reports.daily")
//   description, labels
//   run          cmd or args (one of them), cpus (1), mem (128 MiB), disk (0),
//                gpus (0), env, artifacts (also read as "fetch"), user,
//                maxLaunchDelay (3600 s), taskKillGracePeriodSeconds,
//                restart {policy NEVER | ON_FAILURE, activeDeadlineSeconds}
//   schedules    [{id, cron, timezone ("UTC"), startingDeadlineSeconds (900),
//                concurrencyPolicy ALLOW | FORBID, enabled (true)}]
// Metronome fields this framework does not run (docker, ucr, volumes,
// placement, secrets, networks) are refused unless empty; others unknown.

#include "services/common/spec_reader.hpp"
#include "services/jobs/cron.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::jobs {

struct Artifact {
  std::string uri;
  bool extract = true;
  bool executable = false;
  bool cache = false;
};

enum class RestartPolicy { never, on_failure };
enum class ConcurrencyPolicy { allow, forbid };

struct JobRun {
  std::optional<std::string> cmd;
  std::vector<std::string> args;
  double cpus = 1;
  double mem = 128;  // MiB
  double disk = 0;   // MiB
  uint32_t gpus = 0;
  std::map<std::string, std::string> env;
  std::vector<Artifact> artifacts;
  std::optional<std::string> user;
  double max_launch_delay_s = 3600;
  std::optional<double> task_kill_grace_period_s;
  RestartPolicy restart = RestartPolicy::never;
  std::optional<double> active_deadline_s;  // restarts stop after this long
};

struct JobSchedule {
  std::string id;
  CronSchedule cron;
  std::string timezone = "UTC";
  // The zone of timezone, looked up once (null: UTC's, looked up when used).
  const date::time_zone* zone = nullptr;
  double starting_deadline_s = 900;  // a run missed by more is recorded as missed
  ConcurrencyPolicy concurrency = ConcurrencyPolicy::allow;
  bool enabled = true;
};

struct JobSpec {
  std::string id;
  std::string description;
  std::map<std::string, std::string> labels;
  JobRun run;
  std::vector<JobSchedule> schedules;
};

struct ParsedJob {
  JobSpec job;  // meaningful only when problems is empty
  std::vector<SpecProblem> problems;
  bool ok() const { return problems.empty(); }
};

inline constexpr size_t job_id_bytes_max = 255;
inline constexpr size_t job_list_items_max = 1'000;  // env, labels, artifacts, args
inline constexpr size_t job_schedules_max = 100;

ParsedJob parse_job(const nlohmann::json& definition);
// One schedule alone (POST /v1/jobs/{id}/schedules); paths are the schedule's.
std::pair<JobSchedule, std::vector<SpecProblem>> parse_schedule(const nlohmann::json& definition);

nlohmann::json to_json(const JobSpec& job);
nlohmann::json to_json(const JobSchedule& schedule);

// True for an id Metronome accepts: dot-separated segments of [a-z0-9-],
// each starting and ending with a letter or digit.
bool valid_job_id(const std::string& id);

}  // namespace tessera::jobs
