#include "services/jobs/job_spec.hpp"

#include <set>

namespace tessera::jobs {

using json = nlohmann::json;

namespace {

// Metronome fields this framework does not run: accepted only empty.
const std::set<std::string> run_unsupported = {"docker",    "ucr",     "volumes",
                                               "placement", "secrets", "networks"};
// What Metronome reports back about a job, not part of its spec.
const std::set<std::string> job_reported = {"activeRuns", "history", "historySummary"};

bool empty_value(const json& v) {
  return v.is_null() || (v.is_string() && v.get<std::string>().empty()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

void read_artifacts(SpecReader& r, const json& in, JobRun& run) {
  const char* name = in.contains("artifacts") ? "artifacts" : "fetch";
  if (in.contains("artifacts") && in.contains("fetch") && !empty_value(in["fetch"]))
    r.problem(r.base() + "/fetch", "give artifacts or fetch, not both");
  auto* list = r.array(name);
  if (!list)
    return;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& a = (*list)[i];
    auto path = r.base() + "/" + name + "/" + std::to_string(i);
    if (!a.is_object() || !a.contains("uri") || !a["uri"].is_string() ||
        a["uri"].get<std::string>().empty()) {
      r.problem(path + "/uri", "each artifact needs a uri");
      continue;
    }
    Artifact out;
    out.uri = a["uri"].get<std::string>();
    for (auto [key, target] : {std::pair{"executable", &out.executable},
                               {"extract", &out.extract},
                               {"cache", &out.cache}}) {
      if (!a.contains(key))
        continue;
      if (a[key].is_boolean())
        *target = a[key].get<bool>();
      else
        r.problem(path + "/" + key, "must be true or false");
    }
    run.artifacts.push_back(std::move(out));
  }
}

void read_restart(SpecReader& r, JobRun& run) {
  auto* v = r.field("restart");
  if (!v)
    return;
  auto path = r.base() + "/restart";
  if (!v->is_object()) {
    r.problem(path, "must be {policy, activeDeadlineSeconds}");
    return;
  }
  for (auto& [key, value] : v->items())
    if (key != "policy" && key != "activeDeadlineSeconds")
      r.problem(path + "/" + pointer_segment(key), "unknown field");
  if (v->contains("policy")) {
    auto p = (*v)["policy"];
    if (p == "NEVER")
      run.restart = RestartPolicy::never;
    else if (p == "ON_FAILURE")
      run.restart = RestartPolicy::on_failure;
    else
      r.problem(path + "/policy", "must be NEVER or ON_FAILURE");
  }
  if (v->contains("activeDeadlineSeconds") && !(*v)["activeDeadlineSeconds"].is_null())
    run.active_deadline_s = r.number_at((*v)["activeDeadlineSeconds"],
                                        path + "/activeDeadlineSeconds", 0, 1, 31'536'000);
}

void read_run(SpecReader& top, const json& in, JobRun& run) {
  if (!in.is_object()) {
    top.problem("/run", "must be an object");
    return;
  }
  SpecReader r(in, "/run", job_list_items_max);
  static const std::set<std::string> known = {
      "cmd",    "args",      "cpus",  "mem",  "disk",           "gpus",
      "env",    "artifacts", "fetch", "user", "maxLaunchDelay", "taskKillGracePeriodSeconds",
      "restart"};
  for (auto& [name, value] : in.items()) {
    if (known.count(name))
      continue;
    if (run_unsupported.count(name)) {
      if (!empty_value(value))
        r.problem("/run/" + pointer_segment(name), "is not supported by Tessera's jobs framework");
      continue;
    }
    r.problem("/run/" + pointer_segment(name), "unknown field");
  }
  run.cmd = r.string("cmd");
  if (auto* args = r.array("args")) {
    for (size_t i = 0; i < args->size(); ++i) {
      if ((*args)[i].is_string())
        run.args.push_back((*args)[i].get<std::string>());
      else
        r.problem("/run/args/" + std::to_string(i), "must be a string");
    }
  }
  bool has_cmd = run.cmd && !run.cmd->empty();
  if (has_cmd == !run.args.empty())
    r.problem("/run", has_cmd ? "give cmd or args, not both" : "needs cmd or args");
  run.cpus = r.number("cpus", 1, 0.001, 1e6);
  run.mem = r.number("mem", 128, 1, 1e9);
  run.disk = r.number("disk", 0, 0, 1e12);
  run.gpus = static_cast<uint32_t>(r.integer("gpus", 0, 0, 1024));
  run.env = r.string_map("env");
  read_artifacts(r, in, run);
  run.user = r.string("user");
  run.max_launch_delay_s = r.number("maxLaunchDelay", 3600, 1, 31'536'000);
  if (r.field("taskKillGracePeriodSeconds"))
    run.task_kill_grace_period_s = r.number("taskKillGracePeriodSeconds", 0, 0, 86'400);
  read_restart(r, run);
  top.absorb(r.take());
}

JobSchedule read_schedule(SpecReader& r, const json& in) {
  JobSchedule s;
  static const std::set<std::string> known = {
      "id",      "cron",     "timezone", "startingDeadlineSeconds", "concurrencyPolicy",
      "enabled", "nextRunAt"};  // reported by Metronome
  for (auto& [name, value] : in.items())
    if (!known.count(name))
      r.problem(r.base() + "/" + pointer_segment(name), "unknown field");
  auto id = r.string("id");
  if (!id || !valid_job_id(*id))
    r.problem(r.base() + "/id",
              "needs an id: segments of [a-z0-9-], starting and ending with "
              "a letter or digit");
  else
    s.id = *id;
  auto cron = r.string("cron");
  if (!cron) {
    r.problem(r.base() + "/cron", "needs a cron expression (minute hour day month weekday)");
  } else if (auto parsed = parse_cron(*cron); !parsed) {
    r.problem(r.base() + "/cron", what(parsed.error()));
  } else {
    s.cron = *parsed;
  }
  if (auto tz = r.string("timezone")) {
    if (auto zone = find_time_zone(*tz); !zone) {
      r.problem(r.base() + "/timezone", what(zone.error()));
    } else {
      s.timezone = *tz;
      s.zone = *zone;
    }
  }
  s.starting_deadline_s = r.number("startingDeadlineSeconds", 900, 1, 31'536'000);
  if (auto c = r.string("concurrencyPolicy")) {
    if (*c == "ALLOW")
      s.concurrency = ConcurrencyPolicy::allow;
    else if (*c == "FORBID")
      s.concurrency = ConcurrencyPolicy::forbid;
    else
      r.problem(r.base() + "/concurrencyPolicy", "must be ALLOW or FORBID");
  }
  s.enabled = r.boolean("enabled", true);
  return s;
}

}  // namespace

bool valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > job_id_bytes_max)
    return false;
  size_t start = 0;
  while (start <= id.size()) {
    auto dot = id.find('.', start);
    auto seg = id.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (seg.empty() || !alnum(seg.front()) || !alnum(seg.back()))
      return false;
    for (char c : seg)
      if (!alnum(c) && c != '-')
        return false;
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  return true;
}

std::pair<JobSchedule, std::vector<SpecProblem>> parse_schedule(const json& in) {
  if (!in.is_object())
    return {JobSchedule{}, {{"", "a schedule must be a JSON object"}}};
  SpecReader r(in, "", job_list_items_max);
  auto s = read_schedule(r, in);
  return {std::move(s), r.take()};
}

ParsedJob parse_job(const json& in) {
  ParsedJob parsed;
  if (!in.is_object()) {
    parsed.problems.push_back({"", "a job definition must be a JSON object"});
    return parsed;
  }
  SpecReader r(in, "", job_list_items_max);
  auto& job = parsed.job;
  static const std::set<std::string> known = {"id", "description", "labels", "run", "schedules"};
  for (auto& [name, value] : in.items())
    if (!known.count(name) && !job_reported.count(name))
      r.problem("/" + pointer_segment(name), "unknown field");
  auto id = r.string("id");
  if (!id)
    r.problem("/id", "needs an id");
  else if (!valid_job_id(*id))
    r.problem("/id", "'" + *id +
                         "' is not a job id: dot-separated segments of [a-z0-9-], each "
                         "starting and ending with a letter or digit, at most " +
                         std::to_string(job_id_bytes_max) + " bytes");
  else
    job.id = *id;
  job.description = r.string("description").value_or("");
  job.labels = r.string_map("labels");
  if (auto* run = r.field("run"))
    read_run(r, *run, job.run);
  else
    r.problem("/run", "needs a run (cmd or args, and resources)");
  if (auto* list = r.array("schedules")) {
    if (list->size() > job_schedules_max)
      r.problem("/schedules", "at most " + std::to_string(job_schedules_max) + " schedules");
    std::set<std::string> ids;
    for (size_t i = 0; i < list->size() && i < job_schedules_max; ++i) {
      auto path = "/schedules/" + std::to_string(i);
      if (!(*list)[i].is_object()) {
        r.problem(path, "must be an object");
        continue;
      }
      SpecReader sr((*list)[i], path, job_list_items_max);
      auto s = read_schedule(sr, (*list)[i]);
      r.absorb(sr.take());
      if (!s.id.empty() && !ids.insert(s.id).second)
        r.problem(path + "/id", "schedule id '" + s.id + "' is given twice");
      job.schedules.push_back(std::move(s));
    }
  }
  parsed.problems = r.take();
  return parsed;
}

json to_json(const JobSchedule& s) {
  return {{"id", s.id},
          {"cron", s.cron.text},
          {"timezone", s.timezone},
          {"startingDeadlineSeconds", s.starting_deadline_s},
          {"concurrencyPolicy", s.concurrency == ConcurrencyPolicy::allow ? "ALLOW" : "FORBID"},
          {"enabled", s.enabled}};
}

json to_json(const JobSpec& job) {
  json run = {
      {"cpus", job.run.cpus},
      {"mem", job.run.mem},
      {"disk", job.run.disk},
      {"gpus", job.run.gpus},
      {"env", job.run.env},
      {"maxLaunchDelay", job.run.max_launch_delay_s},
      {"restart", {{"policy", job.run.restart == RestartPolicy::never ? "NEVER" : "ON_FAILURE"}}}};
  if (job.run.cmd)
    run["cmd"] = *job.run.cmd;
  else
    run["args"] = job.run.args;
  if (job.run.active_deadline_s)
    run["restart"]["activeDeadlineSeconds"] = *job.run.active_deadline_s;
  json artifacts = json::array();
  for (const auto& a : job.run.artifacts)
    artifacts.push_back(
        {{"uri", a.uri}, {"extract", a.extract}, {"executable", a.executable}, {"cache", a.cache}});
  run["artifacts"] = artifacts;
  if (job.run.user)
    run["user"] = *job.run.user;
  if (job.run.task_kill_grace_period_s)
    run["taskKillGracePeriodSeconds"] = *job.run.task_kill_grace_period_s;
  json schedules = json::array();
  for (const auto& s : job.schedules)
    schedules.push_back(to_json(s));
  return {{"id", job.id},
          {"description", job.description},
          {"labels", job.labels},
          {"run", run},
          {"schedules", schedules}};
}

}  // namespace tessera::jobs
