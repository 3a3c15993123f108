// The jobs framework's HTTP API: Metronome's /v1 (docs/jobs.md has every
// call and shape). Requests arrive on the framework's thread through its
// inbox (JobsHandle). A change is answered once what it wrote is durable.
//
//   GET|POST /v1/jobs                 list (?embed=...), create
//   GET|PUT|DELETE /v1/jobs/{id}      one job (?embed=...), replace, remove
//                                     (?stopCurrentJobRuns=true)
//   GET|POST /v1/jobs/{id}/runs       active runs, run now
//   GET /v1/jobs/{id}/runs/{run}      one run (active or in the history)
//   POST /v1/jobs/{id}/runs/{run}/actions/stop
//   GET|POST /v1/jobs/{id}/schedules  list, add
//   GET|PUT|DELETE /v1/jobs/{id}/schedules/{sid}
//   GET /v1/info                      the framework, its store and counters
// embed: activeRuns, schedules, history, historySummary (repeatable, or
// comma-separated).

#include "services/jobs/jobs_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"

#include <algorithm>
#include <sstream>

namespace tessera::jobs {

using json = nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json time_or_null(int64_t ms) {
  return ms > 0 ? json(iso_time(ms)) : json();
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '/');)
    if (!part.empty())
      parts.push_back(part);
  return parts;
}

}  // namespace

http::Handler jobs_http_handler(std::shared_ptr<JobsHandle> handle) {
  return serve_http(std::move(handle), "jobs framework");
}

class JobsApi {
 public:
  using F = JobsFramework;
  JobsApi(F& fw, const http::Request& req, const http::Responder& res)
      : fw_(fw), req_(req), res_(res) {}
  void serve();

 private:
  void answer(int status, const json& body) {
    if (status == 400 || status == 422) {  // bad input: counted, logged, served on
      ++fw_.counters_.bad_requests;
      log().info("jobs: {} {} refused ({}): {}", req_.method, req_.path, status,
                 dump(body).substr(0, 300));
    }
    res_.respond(http::json_response(status, dump(body)));
  }
  // A change: answered once durable.
  void answer_durable(int status, json body) {
    fw_.after_durable([res = res_, status, body = std::move(body)] {
      res.respond(http::json_response(status, dump(body)));
    });
  }
  void message(int status, const std::string& text) { answer(status, {{"message", text}}); }
  void not_allowed() { message(405, "method " + req_.method + " is not allowed on " + req_.path); }
  std::optional<json> body_json();
  std::set<std::string> embeds() const;

  void jobs_root();
  void one_job(const std::string& id);
  void runs(const std::string& id, const std::vector<std::string>& rest);
  void schedules(const std::string& id, const std::vector<std::string>& rest);
  void info();

  json job_json(const F::Job& job, const std::set<std::string>& embed) const;
  json run_json(const F::Run& run) const;
  json finished_json(const std::string& job_id, const F::FinishedRun& r, bool success) const;
  json schedule_json(const F::Job& job, const JobSchedule& s) const;
  json history_json(const F::Job& job, bool summary) const;
  // The job, or answers 404.
  F::Job* find_job(const std::string& id);
  // Applies a new definition of an existing job (or a new one): records it
  // and plans its schedules. The caller answers.
  F::Job& put_job(JobSpec spec, bool created);

  F& fw_;
  const http::Request& req_;
  const http::Responder& res_;
};

void JobsFramework::serve(const http::Request& request, const http::Responder& responder) {
  if (writer_->lost()) {
    responder.respond(http::json_response(
        503, json{{"message", "this jobs framework lost its store to another writer"}}.dump()));
    return;
  }
  JobsApi(*this, request, responder).serve();
}

std::optional<json> JobsApi::body_json() {
  if (req_.body.size() > job_definition_bytes_max) {
    message(413, "the body is larger than " + std::to_string(job_definition_bytes_max) + " bytes");
    return std::nullopt;
  }
  auto j = json::parse(req_.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    message(400, "Invalid JSON: the body is not a JSON object");
    return std::nullopt;
  }
  return j;
}

std::set<std::string> JobsApi::embeds() const {
  std::set<std::string> out;
  for (auto [it, end] = req_.query.equal_range("embed"); it != end; ++it) {
    std::stringstream in(it->second);
    for (std::string e; std::getline(in, e, ',');)
      if (!e.empty())
        out.insert(e);
  }
  return out;
}

void JobsApi::serve() {
  auto parts = split_path(req_.path);
  if (parts.size() == 2 && parts[0] == "v1" && parts[1] == "info")
    return req_.method == "GET" ? info() : not_allowed();
  if (parts.size() < 2 || parts[0] != "v1" || parts[1] != "jobs")
    return message(404, "no such resource: " + req_.path);
  if (parts.size() == 2)
    return jobs_root();
  const auto& id = parts[2];
  if (parts.size() == 3)
    return one_job(id);
  std::vector<std::string> rest(parts.begin() + 4, parts.end());
  if (parts[3] == "runs")
    return runs(id, rest);
  if (parts[3] == "schedules")
    return schedules(id, rest);
  message(404, "no such resource: " + req_.path);
}

JobsFramework::Job* JobsApi::find_job(const std::string& id) {
  auto it = fw_.jobs_.find(id);
  if (it == fw_.jobs_.end() || it->second.deleting) {
    message(404, "Job not found");
    return nullptr;
  }
  return &it->second;
}

// -- jobs ------------------------------------------------------------------

void JobsApi::jobs_root() {
  if (req_.method == "GET") {
    auto embed = embeds();
    json list = json::array();
    for (const auto& [id, job] : fw_.jobs_)
      if (!job.deleting)
        list.push_back(job_json(job, embed));
    return answer(200, list);
  }
  if (req_.method != "POST")
    return not_allowed();
  auto body = body_json();
  if (!body)
    return;
  auto parsed = parse_job(*body);
  if (!parsed.ok())
    return answer(422, problems_json(parsed.problems));
  if (fw_.jobs_.count(parsed.job.id))
    return message(409, "Job with this id already exists");
  if (fw_.jobs_.size() >= fw_.config_.jobs_max)
    return message(409, "there are " + std::to_string(fw_.jobs_.size()) + " jobs, the most");
  auto& job = put_job(std::move(parsed.job), true);
  answer_durable(201, job_json(job, {"schedules"}));
}

JobsFramework::Job& JobsApi::put_job(JobSpec spec, bool created) {
  auto id = spec.id;
  auto& job = fw_.jobs_[id];
  if (created)
    job.created_ms = apps::wall_ms();
  job.spec = std::move(spec);
  job.definition = to_json(job.spec);
  fw_.plan(id, job);
  fw_.arm_schedule_timer();
  fw_.persist({fw_.job_record(id)});
  log().info("jobs: job {} {}", id, created ? "created" : "updated");
  return job;
}

void JobsApi::one_job(const std::string& id) {
  auto* job = find_job(id);
  if (!job)
    return;
  if (req_.method == "GET")
    return answer(200, job_json(*job, embeds()));
  if (req_.method == "PUT") {
    auto body = body_json();
    if (!body)
      return;
    if (!body->contains("id"))
      (*body)["id"] = id;
    // A definition without schedules keeps the job's (Metronome's PUT
    // replaces the run; schedules have their own resource).
    if (!body->contains("schedules"))
      (*body)["schedules"] = job->definition.value("schedules", json::array());
    auto parsed = parse_job(*body);
    if (!parsed.ok())
      return answer(422, problems_json(parsed.problems));
    if (parsed.job.id != id)
      return answer(422, problems_json({{"/id", "the id must be " + id + " (the path's)"}}));
    auto& updated = put_job(std::move(parsed.job), false);
    return answer_durable(200, job_json(updated, {"schedules"}));
  }
  if (req_.method != "DELETE")
    return not_allowed();
  if (!job->active.empty() && req_.query_value("stopCurrentJobRuns") != "true")
    return message(409, "There are " + std::to_string(job->active.size()) +
                            " active job runs. Override with stopCurrentJobRuns=true");
  auto body = job_json(*job, {});
  job->deleting = true;
  if (job->active.empty()) {
    fw_.remove_job(id);
  } else {
    fw_.plan(id, *job);  // no more schedule times
    fw_.persist({fw_.job_record(id)});
    auto active = job->active;  // stop_run may remove the job
    for (const auto& run_id : active)
      if (auto it = fw_.runs_.find(run_id); it != fw_.runs_.end())
        fw_.stop_run(it->second, "stopped: its job was removed");
  }
  answer_durable(200, body);
}

// -- runs ------------------------------------------------------------------

void JobsApi::runs(const std::string& id, const std::vector<std::string>& rest) {
  auto* job = find_job(id);
  if (!job)
    return;
  if (rest.empty()) {
    if (req_.method == "GET") {
      json list = json::array();
      for (const auto& run_id : job->active)
        if (auto it = fw_.runs_.find(run_id); it != fw_.runs_.end())
          list.push_back(run_json(it->second));
      return answer(200, list);
    }
    if (req_.method != "POST")
      return not_allowed();
    if (job->active.size() >= fw_.config_.active_runs_per_job_max)
      return message(
          409, "the job has " + std::to_string(job->active.size()) + " active runs, the most");
    auto& run = fw_.start_run(*job, "manual", 0);
    fw_.persist({fw_.run_record(run)});
    return answer_durable(201, run_json(run));
  }
  const auto& run_id = rest[0];
  auto it = fw_.runs_.find(run_id);
  bool active = it != fw_.runs_.end() && it->second.job_id == id;
  if (rest.size() == 1) {
    if (req_.method != "GET")
      return not_allowed();
    if (active)
      return answer(200, run_json(it->second));
    for (bool success : {true, false})
      for (const auto& f : success ? job->history.succeeded : job->history.failed)
        if (f.id == run_id)
          return answer(200, finished_json(id, f, success));
    return message(404, "Job run not found");
  }
  if (rest.size() == 3 && rest[1] == "actions" && rest[2] == "stop") {
    if (req_.method != "POST")
      return not_allowed();
    if (!active)
      return message(404, "Job run not found");
    auto body = run_json(it->second);
    if (!it->second.stopping)
      fw_.stop_run(it->second, "stopped by an operator");
    return answer_durable(200, body);
  }
  message(404, "no such resource: " + req_.path);
}

// -- schedules ---------------------------------------------------------------

void JobsApi::schedules(const std::string& id, const std::vector<std::string>& rest) {
  auto* job = find_job(id);
  if (!job)
    return;
  auto& list = job->spec.schedules;
  if (rest.empty()) {
    if (req_.method == "GET") {
      json out = json::array();
      for (const auto& s : list)
        out.push_back(schedule_json(*job, s));
      return answer(200, out);
    }
    if (req_.method != "POST")
      return not_allowed();
    auto body = body_json();
    if (!body)
      return;
    auto [schedule, problems] = parse_schedule(*body);
    if (!problems.empty())
      return answer(422, problems_json(problems));
    for (const auto& s : list)
      if (s.id == schedule.id)
        return message(409, "Schedule with this id already exists");
    if (list.size() >= job_schedules_max)
      return message(409, "the job has " + std::to_string(list.size()) + " schedules, the most");
    JobSpec spec = job->spec;
    spec.schedules.push_back(schedule);
    auto& updated = put_job(std::move(spec), false);
    return answer_durable(201, schedule_json(updated, updated.spec.schedules.back()));
  }
  if (rest.size() != 1)
    return message(404, "no such resource: " + req_.path);
  const auto& sid = rest[0];
  auto found = std::find_if(list.begin(), list.end(), [&](auto& s) { return s.id == sid; });
  if (found == list.end())
    return message(404, "Schedule not found");
  if (req_.method == "GET")
    return answer(200, schedule_json(*job, *found));
  JobSpec spec = job->spec;
  auto index = found - list.begin();
  auto at = spec.schedules.begin() + index;
  if (req_.method == "DELETE") {
    auto shown = schedule_json(*job, *found);
    spec.schedules.erase(at);
    put_job(std::move(spec), false);
    return answer_durable(200, shown);
  } else if (req_.method == "PUT") {
    auto body = body_json();
    if (!body)
      return;
    if (!body->contains("id"))
      (*body)["id"] = sid;
    auto [schedule, problems] = parse_schedule(*body);
    if (!problems.empty())
      return answer(422, problems_json(problems));
    if (schedule.id != sid)
      return answer(422, problems_json({{"/id", "the id must be " + sid + " (the path's)"}}));
    *at = std::move(schedule);
    auto& updated = put_job(std::move(spec), false);
    return answer_durable(200, schedule_json(updated, updated.spec.schedules[size_t(index)]));
  }
  not_allowed();
}

// -- info --------------------------------------------------------------------

namespace {

json percentiles(std::vector<double> ms) {
  if (ms.empty())
    return {{"count", 0}};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, size_t(q * double(ms.size())))]; };
  return {{"count", ms.size()}, {"p50", at(0.5)}, {"p99", at(0.99)}, {"max", ms.back()}};
}

}  // namespace

void JobsApi::info() {
  const auto& c = fw_.counters_;
  size_t active = fw_.runs_.size();
  answer(200, {{"name", fw_.config_.name},
               {"frameworkId", fw_.framework_id()},
               {"connected", fw_.connected()},
               {"http", fw_.config_.http_address},
               {"store", fw_.config_.store->describe()},
               {"jobs", fw_.jobs_.size()},
               {"activeRuns", active},
               {"historyMax", fw_.config_.history_max},
               {"scheduleLagMs", percentiles(fw_.schedule_lag_.ms)},
               {"launchLagMs", percentiles(fw_.launch_lag_.ms)},
               {"counters",
                {{"runsStarted", c.runs_started},
                 {"runsSucceeded", c.runs_succeeded},
                 {"runsFailed", c.runs_failed},
                 {"runsMissed", c.runs_missed},
                 {"runsSkipped", c.runs_skipped},
                 {"tasksLaunched", c.tasks_launched},
                 {"taskRestarts", c.task_restarts},
                 {"strangersKilled", c.strangers_killed},
                 {"badRequests", c.bad_requests},
                 {"storeCommits", fw_.writer_->counters().commits},
                 {"storeFailures", fw_.writer_->counters().failures}}}});
}

// -- rendering -----------------------------------------------------------------

json JobsApi::run_json(const F::Run& run) const {
  json tasks = json::array();
  for (const auto& t : run.tasks)
    tasks.push_back({{"id", t.id},
                     {"status", t.status},
                     {"agentId", t.agent_id},
                     {"startedAt", time_or_null(t.started_ms)},
                     {"completedAt", time_or_null(t.completed_ms)}});
  json j = {{"id", run.id},
            {"jobId", run.job_id},
            {"status", to_string(run.status)},
            {"createdAt", iso_time(run.created_ms)},
            {"completedAt", time_or_null(run.completed_ms)},
            {"trigger", run.trigger},
            {"scheduledAt", time_or_null(run.scheduled_ms)},
            {"tasks", std::move(tasks)}};
  if (!run.reason.empty())
    j["reason"] = run.reason;  // the last attempt's end, when it was replaced
  return j;
}

json JobsApi::finished_json(const std::string& job_id, const F::FinishedRun& r,
                            bool success) const {
  json tasks = json::array();
  for (const auto& t : r.tasks)
    tasks.push_back({{"id", t}});
  json j = {{"id", r.id},
            {"jobId", job_id},
            {"status", success ? "SUCCESS" : "FAILED"},
            {"createdAt", iso_time(r.created_ms)},
            {"completedAt", time_or_null(r.finished_ms)},
            {"tasks", std::move(tasks)}};
  if (!r.reason.empty())
    j["reason"] = r.reason;
  if (r.exit_code)
    j["exitCode"] = *r.exit_code;
  return j;
}

json JobsApi::schedule_json(const F::Job& job, const JobSchedule& s) const {
  json j = to_json(s);
  auto st = job.schedules.find(s.id);
  if (st != job.schedules.end()) {
    j["nextRunAt"] = st->second.next ? json(iso_time(to_ms(*st->second.next))) : json();
    j["missedRuns"] = st->second.missed;
    j["lastMissedAt"] =
        st->second.last_missed ? json(iso_time(to_ms(*st->second.last_missed))) : json();
  }
  return j;
}

json JobsApi::history_json(const F::Job& job, bool summary) const {
  const auto& h = job.history;
  json j = {{"successCount", h.successes},
            {"failureCount", h.failures},
            {"lastSuccessAt", time_or_null(h.last_success_ms)},
            {"lastFailureAt", time_or_null(h.last_failure_ms)}};
  if (summary)
    return j;
  auto runs = [](const std::deque<F::FinishedRun>& list) {
    json out = json::array();
    for (const auto& r : list) {
      json one = {{"id", r.id},
                  {"createdAt", iso_time(r.created_ms)},
                  {"finishedAt", time_or_null(r.finished_ms)},
                  {"tasks", r.tasks}};
      if (!r.reason.empty())
        one["reason"] = r.reason;
      if (r.exit_code)
        one["exitCode"] = *r.exit_code;
      out.push_back(std::move(one));
    }
    return out;
  };
  j["successfulFinishedRuns"] = runs(h.succeeded);
  j["failedFinishedRuns"] = runs(h.failed);
  return j;
}

json JobsApi::job_json(const F::Job& job, const std::set<std::string>& embed) const {
  json j = job.definition;
  j.erase("schedules");
  if (embed.count("schedules")) {
    json list = json::array();
    for (const auto& s : job.spec.schedules)
      list.push_back(schedule_json(job, s));
    j["schedules"] = std::move(list);
  }
  if (embed.count("activeRuns")) {
    json list = json::array();
    for (const auto& run_id : job.active)
      if (auto it = fw_.runs_.find(run_id); it != fw_.runs_.end())
        list.push_back(run_json(it->second));
    j["activeRuns"] = std::move(list);
  }
  if (embed.count("history"))
    j["history"] = history_json(job, false);
  if (embed.count("historySummary"))
    j["historySummary"] = history_json(job, true);
  return j;
}

}  // namespace tessera::jobs
