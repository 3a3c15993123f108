// The jobs framework's runs: starting them, launching their tasks on
// offers, following each task to its end (restarts under ON_FAILURE), and
// the records. Schedules are in jobs_schedules.cpp, the HTTP API in
// jobs_api.cpp.

#include "services/jobs/jobs_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"
#include "services/apps/placement.hpp"

#include <algorithm>

namespace tessera::jobs {

using json = nlohmann::json;
using apps::wall_ms;

const char* to_string(JobsFramework::RunStatus s) {
  using S = JobsFramework::RunStatus;
  switch (s) {
    case S::starting:
      return "STARTING";
    case S::active:
      return "ACTIVE";
    case S::success:
      return "SUCCESS";
    case S::failed:
      return "FAILED";
  }
  return "?";
}

std::string iso_time(int64_t ms) {
  return apps::iso_time(ms);
}

int64_t to_ms(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

namespace {

SchedulerConfig scheduler_config(const JobsConfig& c) {
  SchedulerConfig s = c.scheduler;
  s.framework.name = c.name;
  s.framework.roles = {c.role};
  s.framework.failover_timeout = c.failover_timeout;
  s.framework.framework_id = c.loaded.framework_id;
  s.framework.capabilities = {FrameworkCapability::PARTITION_AWARE,
                              FrameworkCapability::TASK_KILLED_STATE};
  s.seed = c.seed;
  return s;
}

std::optional<JobsFramework::RunStatus> status_from(const std::string& s) {
  using S = JobsFramework::RunStatus;
  for (auto st : {S::starting, S::active, S::success, S::failed})
    if (s == to_string(st))
      return st;
  return std::nullopt;
}

Duration seconds(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

std::optional<SysTime> time_from(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer())
    return std::nullopt;
  return SysTime(std::chrono::seconds(j[key].get<int64_t>() / 1000));
}

json finished_json(const JobsFramework::FinishedRun& r) {
  json j = {
      {"id", r.id}, {"createdMs", r.created_ms}, {"finishedMs", r.finished_ms}, {"tasks", r.tasks}};
  if (!r.reason.empty())
    j["reason"] = r.reason;
  if (r.exit_code)
    j["exitCode"] = *r.exit_code;
  return j;
}

JobsFramework::FinishedRun finished_from(const json& j) {
  JobsFramework::FinishedRun r;
  r.id = j.at("id").get<std::string>();
  r.created_ms = j.value("createdMs", int64_t{0});
  r.finished_ms = j.value("finishedMs", int64_t{0});
  r.tasks = j.value("tasks", std::vector<std::string>{});
  r.reason = j.value("reason", "");
  if (j.contains("exitCode"))
    r.exit_code = j["exitCode"].get<int>();
  return r;
}

}  // namespace

JobsFramework::JobsFramework(caf::actor_config& cfg, ActorInit init, JobsConfig config)
    : Scheduler(cfg, std::move(init), scheduler_config(config)),
      config_(std::move(config)),
      rng_(config_.seed != 0 ? config_.seed : std::random_device{}()) {
}

std::chrono::system_clock::time_point JobsFramework::wall_precise() const {
  return config_.wall ? config_.wall() : std::chrono::system_clock::now();
}

SysTime JobsFramework::wall() const {
  return std::chrono::floor<std::chrono::seconds>(wall_precise());
}

void JobsFramework::started() {
  StoreWriter::Hooks hooks;
  hooks.blocking = [this](StoreWriter::Work w) { return blocking(Work::store, std::move(w)); };
  hooks.after = [this](Duration d, std::function<void()> fn) { after(d, std::move(fn)); };
  hooks.defer = [this](std::function<void()> fn) { defer(std::move(fn)); };
  hooks.lost = [this] { stop(); };
  writer_ = std::make_unique<StoreWriter>(config_.store, config_.loaded.store_version, "jobs",
                                          config_.store_retry, std::move(hooks));
  load(config_.loaded);
  config_.loaded = {};
  // Jobs removed while their runs were stopped, whose last run ended before
  // the job's own removal was written: gone now.
  std::vector<std::string> removed;
  for (auto& [id, job] : jobs_)
    if (job.deleting && job.active.empty())
      removed.push_back(id);
  for (const auto& id : removed)
    remove_job(id);
  for (auto& [id, job] : jobs_)
    catch_up(id, job);
  record_started();
  arm_schedule_timer();
  if (config_.handle) {
    inbox_ = make_inbox(config_.inbox_max);
    config_.handle->attach(inbox_, this);
  }
  after(config_.tick, [this] { on_tick(); });
}

void JobsFramework::on_stopping() {
  if (config_.handle)
    config_.handle->detach();
}

// -- loading what the store kept -------------------------------------------

void JobsFramework::load(const JobsState& state) {
  for (const auto& p : state.problems)
    log().error("jobs: skipped a stored record: {}", p);
  for (const auto& j : state.jobs) {
    try {
      auto parsed = parse_job(j.at("definition"));
      if (!parsed.ok()) {
        log().error("jobs: a stored job no longer parses ({}: {}); skipped",
                    parsed.problems.front().path, parsed.problems.front().message);
        continue;
      }
      Job job;
      job.spec = std::move(parsed.job);
      job.definition = to_json(job.spec);
      job.created_ms = j.value("createdMs", int64_t{0});
      if (j.contains("schedules"))
        for (const auto& [sid, s] : j["schedules"].items()) {
          auto& st = job.schedules[sid];
          st.last = time_from(s, "lastMs");
          st.missed = s.value("missed", uint64_t{0});
          st.last_missed = time_from(s, "lastMissedMs");
        }
      if (j.contains("history")) {
        const auto& h = j["history"];
        job.history.successes = h.value("successCount", uint64_t{0});
        job.history.failures = h.value("failureCount", uint64_t{0});
        job.history.last_success_ms = h.value("lastSuccessMs", int64_t{0});
        job.history.last_failure_ms = h.value("lastFailureMs", int64_t{0});
        for (const auto& r : h.value("succeeded", json::array()))
          job.history.succeeded.push_back(finished_from(r));
        for (const auto& r : h.value("failed", json::array()))
          job.history.failed.push_back(finished_from(r));
      }
      job.deleting = j.value("deleting", false);
      auto id = job.spec.id;
      jobs_.emplace(id, std::move(job));
    } catch (const std::exception& e) {
      log().error("jobs: a stored job record is malformed ({}); skipped", e.what());
    }
  }
  auto t = now();
  for (const auto& j : state.runs) {
    try {
      Run run;
      run.id = j.at("id").get<std::string>();
      run.job_id = j.at("jobId").get<std::string>();
      auto job = jobs_.find(run.job_id);
      auto status = status_from(j.value("status", ""));
      run.status = status ? *status : RunStatus::starting;
      run.trigger = j.value("trigger", "manual");
      run.scheduled_ms = j.value("scheduledMs", int64_t{0});
      run.created_ms = j.value("createdMs", int64_t{0});
      for (const auto& tj : j.value("tasks", json::array())) {
        RunTask task;
        task.id = tj.at("id").get<std::string>();
        task.status = tj.value("status", "TASK_STAGING");
        task.agent_id = tj.value("agentId", "");
        task.started_ms = tj.value("startedMs", int64_t{0});
        task.completed_ms = tj.value("completedMs", int64_t{0});
        run.tasks.push_back(std::move(task));
      }
      run.attempts = j.value("attempts", uint64_t{run.tasks.size()});
      run.launched = !run.tasks.empty() && run.tasks.back().completed_ms == 0;
      run.waiting = !run.launched;
      run.stopping = j.value("stopping", false);
      if (job == jobs_.end()) {
        if (!run.launched) {
          // Its job is gone and nothing of it runs: forgotten now.
          log().warn("jobs: run {} of {} (a job not loaded) is dropped", run.id, run.job_id);
          persist({{run_key(run.id), std::nullopt}});
          continue;
        }
        // Its task is killed once the master confirms it; then it is forgotten.
        run.stopping = true;
        run.waiting = false;
      } else {
        const auto& spec = job->second.spec.run;
        // Deadlines were wall time; what is left of them runs on the clock.
        // maxLaunchDelay counts from the current attempt's start (a restart
        // begins one): the run's, or the last task's end.
        auto left = [&](double s, int64_t from_ms) {
          auto since_ms = std::max<int64_t>(0, wall_ms() - from_ms);
          return t + std::max(Duration::zero(), seconds(s) - std::chrono::milliseconds(since_ms));
        };
        int64_t attempt_ms = run.created_ms;
        if (!run.tasks.empty())
          attempt_ms = run.launched ? run.tasks.back().started_ms : run.tasks.back().completed_ms;
        run.launch_deadline = left(spec.max_launch_delay_s, attempt_ms);
        if (spec.active_deadline_s)
          run.restart_until = left(*spec.active_deadline_s, run.created_ms);
        job->second.active.insert(run.id);
      }
      for (const auto& task : run.tasks)
        task_run_[task.id] = run.id;
      runs_.emplace(run.id, std::move(run));
    } catch (const std::exception& e) {
      log().error("jobs: a stored run record is malformed ({}); skipped", e.what());
    }
  }
  log().info("jobs: loaded {} job(s) and {} unfinished run(s) from {}", jobs_.size(), runs_.size(),
             config_.store->describe());
}

// -- subscription ----------------------------------------------------------

void JobsFramework::subscribed(const std::string& framework_id) {
  log().info("jobs: subscribed as framework {}", framework_id);
  persist({{framework_key(), json{{"frameworkId", framework_id}}.dump()}});
  // Explicit reconciliation of every task a run may have launched, then
  // implicit: tasks the master knows and no run does are killed.
  constexpr size_t reconcile_chunk = 5'000;
  std::vector<TaskRef> refs;
  for (const auto& [id, run] : runs_) {
    if (!run.launched || run.tasks.empty())
      continue;
    refs.push_back({run.tasks.back().id, run.tasks.back().agent_id});
    if (refs.size() == reconcile_chunk) {
      reconcile(refs);
      refs.clear();
    }
  }
  if (!refs.empty())
    reconcile(refs);
  reconcile();
  was_waiting_ = false;
  if (waiting())
    revive();
}

void JobsFramework::disconnected(const caf::error& why) {
  log().warn("jobs: lost the master ({}); resubscribing", describe(why));
}

void JobsFramework::error(const std::string& message) {
  log().error("jobs: the master ended the framework: {}", message);
}

// -- runs ------------------------------------------------------------------

std::string JobsFramework::new_run_id() {
  // Metronome's shape: the UTC time to the second, then random letters, so
  // ids sort by start time.
  static constexpr char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  auto ms = wall_ms();
  auto secs = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&secs, &utc);
  char stamp[32];
  std::snprintf(stamp, sizeof(stamp), "%04d%02d%02d%02d%02d%02d", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  for (;;) {
    std::string id = stamp;
    for (int k = 0; k < 6; ++k)
      id += letters[rng_() % (sizeof(letters) - 1)];
    if (!runs_.count(id))
      return id;
  }
}

JobsFramework::Run& JobsFramework::start_run(Job& job, std::string trigger, int64_t scheduled_ms) {
  Run run;
  run.id = new_run_id();
  run.job_id = job.spec.id;
  run.trigger = std::move(trigger);
  run.scheduled_ms = scheduled_ms;
  run.created_ms = wall_ms();
  run.launch_deadline = now() + seconds(job.spec.run.max_launch_delay_s);
  if (job.spec.run.active_deadline_s)
    run.restart_until = now() + seconds(*job.spec.run.active_deadline_s);
  job.active.insert(run.id);
  ++counters_.runs_started;
  auto id = run.id;
  auto& stored = runs_.emplace(id, std::move(run)).first->second;
  log().info("jobs: run {} of {} starts ({})", id, job.spec.id, stored.trigger);
  if (!was_waiting_ && connected()) {
    was_waiting_ = true;
    revive();  // offers declined with the long filter while nothing waited
  }
  return stored;
}

bool JobsFramework::waiting() const {
  return std::any_of(runs_.begin(), runs_.end(), [](auto& r) { return r.second.waiting; });
}

void JobsFramework::update(const TaskStatus& s) {
  auto it = task_run_.find(s.task_id);
  auto run_it = it == task_run_.end() ? runs_.end() : runs_.find(it->second);
  if (run_it == runs_.end()) {
    if (!is_terminal(s.state) && s.state != TaskState::UNKNOWN) {
      ++counters_.strangers_killed;
      log().warn("jobs: the master runs task {} no run of this framework has; killing it",
                 s.task_id);
      kill(s.task_id, s.agent_id);
    }
    return;
  }
  Run& run = run_it->second;
  // Only the run's current task matters; an earlier attempt's late news is
  // recorded on that attempt alone.
  auto task = std::find_if(run.tasks.begin(), run.tasks.end(),
                           [&](const RunTask& t) { return t.id == s.task_id; });
  if (task == run.tasks.end())
    return;
  bool current = &*task == &run.tasks.back();
  if (s.state != TaskState::UNKNOWN)
    task->status = tessera::to_string(s.state);
  if (!s.agent_id.empty())
    task->agent_id = s.agent_id;
  if (!current) {
    if (!is_terminal(s.state) && s.state != TaskState::UNKNOWN)
      kill(s.task_id, s.agent_id);  // a replaced attempt that came back
    return;
  }
  if (!run.launched &&
      (is_terminal(s.state) || s.state == TaskState::GONE || s.state == TaskState::UNKNOWN))
    return;  // its end was handled already (a repeated report, a reconciliation)
  if (s.state == TaskState::UNKNOWN) {  // reconciliation: the master never saw it
    TaskStatus lost = s;
    lost.state = TaskState::DROPPED;
    lost.message = "the master does not know the task (lost while the framework was away)";
    task_ended(run, lost);
    return;
  }
  if (is_terminal(s.state) || s.state == TaskState::GONE) {
    task_ended(run, s);
    return;
  }
  if (run.stopping && !run.kill_sent.time_since_epoch().count())
    kill_current(run);
  if (s.state == TaskState::RUNNING && run.status == RunStatus::starting) {
    if (run.scheduled_ms > 0 && run.attempts == 1)
      launch_lag_.add(
          std::chrono::duration<double, std::milli>(wall_precise().time_since_epoch() -
                                                    std::chrono::milliseconds(run.scheduled_ms))
              .count());
    run.status = RunStatus::active;
    persist({run_record(run)});
  }
}

void JobsFramework::task_ended(Run& run, const TaskStatus& s) {
  auto& task = run.tasks.back();
  task.completed_ms = wall_ms();
  run.launched = false;
  run.kill_sent = {};
  auto job_it = jobs_.find(run.job_id);
  if (s.state == TaskState::FINISHED && !run.stopping) {
    run.exit_code = s.exit_code >= 0 ? std::optional<int>(s.exit_code) : std::nullopt;
    finish_run(run, RunStatus::success, "");
    return;
  }
  std::string reason =
      std::string(tessera::to_string(s.state)) + " (" + tessera::to_string(s.reason) + ")";
  if (!s.message.empty())
    reason += ": " + s.message;
  if (s.exit_code >= 0)
    run.exit_code = s.exit_code;
  else if (s.term_signal > 0)
    reason += " (signal " + std::to_string(s.term_signal) + ")";
  if (run.stopping || job_it == jobs_.end()) {
    finish_run(run, RunStatus::failed, run.reason.empty() ? "stopped: " + reason : run.reason);
    return;
  }
  const auto& spec = job_it->second.spec.run;
  bool in_window = !run.restart_until || now() < *run.restart_until;
  if (spec.restart == RestartPolicy::on_failure && in_window) {
    ++counters_.task_restarts;
    log().info("jobs: task {} of run {} ended {}; restarting (ON_FAILURE)", task.id, run.id,
               reason);
    run.reason = reason;
    run.waiting = true;
    run.status = RunStatus::starting;
    run.launch_deadline = now() + seconds(spec.max_launch_delay_s);
    persist({run_record(run)});
    if (!was_waiting_ && connected()) {
      was_waiting_ = true;
      revive();
    }
    return;
  }
  finish_run(run, RunStatus::failed,
             spec.restart == RestartPolicy::on_failure
                 ? reason + "; activeDeadlineSeconds passed, no more restarts"
                 : reason);
}

void JobsFramework::finish_run(Run& run, RunStatus status, std::string reason) {
  run.status = status;
  run.completed_ms = wall_ms();
  run.reason = std::move(reason);
  run.waiting = false;
  std::vector<RegistryChange> changes{{run_key(run.id), std::nullopt}};
  auto job_it = jobs_.find(run.job_id);
  if (job_it != jobs_.end()) {
    Job& job = job_it->second;
    FinishedRun f{run.id, run.created_ms, run.completed_ms, {}, run.reason, run.exit_code};
    for (const auto& t : run.tasks)
      f.tasks.push_back(t.id);
    auto& list = status == RunStatus::success ? job.history.succeeded : job.history.failed;
    list.push_front(std::move(f));
    while (list.size() > config_.history_max)
      list.pop_back();
    if (status == RunStatus::success) {
      ++job.history.successes;
      job.history.last_success_ms = run.completed_ms;
    } else {
      ++job.history.failures;
      job.history.last_failure_ms = run.completed_ms;
    }
    job.active.erase(run.id);
    changes.push_back(job_record(run.job_id));
  }
  if (status == RunStatus::success) {
    ++counters_.runs_succeeded;
    log().info("jobs: run {} of {} succeeded", run.id, run.job_id);
  } else {
    ++counters_.runs_failed;
    log().info("jobs: run {} of {} failed: {}", run.id, run.job_id, run.reason);
  }
  persist(std::move(changes));
  for (const auto& t : run.tasks)
    task_run_.erase(t.id);
  auto job_id = run.job_id;
  runs_.erase(run.id);  // run is gone from here on
  if (job_it != jobs_.end() && job_it->second.deleting && job_it->second.active.empty())
    remove_job(job_id);
}

void JobsFramework::kill_current(Run& run) {
  if (!run.launched || run.tasks.empty())
    return;
  run.kill_sent = now();
  kill(run.tasks.back().id, run.tasks.back().agent_id);
}

void JobsFramework::stop_run(Run& run, const std::string& why) {
  run.stopping = true;
  run.reason = why;
  if (!run.launched) {
    // Nothing runs (waiting for an offer, or between attempts); a launch
    // whose record is being written sees stopping and does not go out.
    finish_run(run, RunStatus::failed, why);
    return;
  }
  persist({run_record(run)});
  kill_current(run);
}

void JobsFramework::remove_job(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return;
  for (auto a = agenda_.begin(); a != agenda_.end();)
    a = a->second.first == job_id ? agenda_.erase(a) : std::next(a);
  jobs_.erase(it);
  persist({{job_key(job_id), std::nullopt}});
  log().info("jobs: job {} removed", job_id);
  arm_schedule_timer();
}

void JobsFramework::on_tick() {
  auto t = now();
  std::vector<std::string> late;
  for (auto& [id, run] : runs_) {
    if (run.status == RunStatus::starting && !run.stopping && t >= run.launch_deadline &&
        (run.waiting || run.launched))
      late.push_back(id);
    if (run.stopping && run.launched && connected() && t - run.kill_sent >= config_.kill_retry)
      kill_current(run);
  }
  for (const auto& id : late) {
    auto& run = runs_.at(id);
    auto job = jobs_.find(run.job_id);
    double s = job != jobs_.end() ? job->second.spec.run.max_launch_delay_s : 0;
    stop_run(run, "not running within maxLaunchDelay (" + std::to_string(int64_t(s)) + " s)");
  }
  after(config_.tick, [this] { on_tick(); });
}

// -- offers ----------------------------------------------------------------

TaskSpec JobsFramework::task_spec(const Run& run, const Job& job,
                                  const Resources& resources) const {
  const auto& spec = job.spec.run;
  TaskSpec t;
  t.id = run.tasks.back().id;
  t.name = job.spec.id;
  t.resources = resources;
  if (spec.cmd)
    t.shell = *spec.cmd;
  else
    t.argv = spec.args;
  t.env = spec.env;
  t.env["TESSERA_JOB_ID"] = job.spec.id;
  t.env["TESSERA_JOB_RUN_ID"] = run.id;
  t.env["METRONOME_JOB_ID"] = job.spec.id;
  t.env["METRONOME_JOB_RUN_ID"] = run.id;
  t.env["MESOS_TASK_ID"] = t.id;
  if (spec.user)
    t.user = *spec.user;
  if (spec.task_kill_grace_period_s)
    t.kill_grace = seconds(*spec.task_kill_grace_period_s);
  for (const auto& a : spec.artifacts)
    t.uris.push_back({a.uri, a.extract, a.executable, a.cache});
  t.labels = job.spec.labels;
  return t;
}

void JobsFramework::offers(const std::vector<Offer>& offers) {
  std::vector<apps::OfferView> views;
  views.reserve(offers.size());
  for (const auto& o : offers)
    views.push_back({&o, o.resources});
  std::vector<std::vector<TaskSpec>> tasks(offers.size());
  std::vector<std::vector<std::string>> made(offers.size());
  // Per shape of task, the first offer that may still fit one: an offer
  // that refused a shape refuses it for the rest of this batch (offers only
  // shrink), so each shape scans the offers once, not once per run.
  std::map<std::tuple<double, double, double, uint32_t>, size_t> cursor;
  // Oldest run first: run ids sort by their start time.
  for (auto& [id, run] : runs_) {
    if (!run.waiting || run.stopping)
      continue;
    auto job_it = jobs_.find(run.job_id);
    if (job_it == jobs_.end())
      continue;
    const Job& job = job_it->second;
    apps::AppSpec shape;  // what the task takes: no ports, no constraints
    shape.ports.clear();
    shape.cpus = job.spec.run.cpus;
    shape.mem = job.spec.run.mem;
    shape.disk = job.spec.run.disk;
    shape.gpus = job.spec.run.gpus;
    auto& k = cursor[{shape.cpus, shape.mem, shape.disk, shape.gpus}];
    for (; k < offers.size(); ++k) {
      if (tasks[k].size() >= config_.launches_per_offer_max)
        continue;
      auto r = apps::fit(shape, config_.role, {}, {}, views[k]);
      if (!r.placed)
        continue;
      RunTask task;
      task.id = run.job_id + "_" + run.id + "." + std::to_string(++run.attempts);
      // The record keeps the last attempts only (a task failing at once for
      // hours under ON_FAILURE would make it grow without bound).
      if (run.tasks.size() >= run_attempts_kept) {
        task_run_.erase(run.tasks.front().id);
        run.tasks.erase(run.tasks.begin());
      }
      task.agent_id = offers[k].agent_id;
      task.started_ms = wall_ms();
      run.tasks.push_back(std::move(task));
      task_run_[run.tasks.back().id] = run.id;
      run.waiting = false;
      tasks[k].push_back(task_spec(run, job, r.placed->resources));
      made[k].push_back(run.id);
      break;
    }
  }
  bool still = waiting();
  was_waiting_ = still;
  for (size_t k = 0; k < offers.size(); ++k) {
    if (tasks[k].empty()) {
      decline({offers[k].id}, still ? config_.refuse_busy : config_.refuse_idle);
      continue;
    }
    std::vector<RegistryChange> records;
    for (const auto& run_id : made[k])
      records.push_back(run_record(runs_.at(run_id)));
    persist(std::move(records), [this, offer_id = offers[k].id, ids = std::move(made[k]),
                                 specs = std::move(tasks[k])]() mutable {
      launch_recorded(std::move(offer_id), std::move(ids), std::move(specs));
    });
  }
}

void JobsFramework::launch_recorded(std::string offer_id, std::vector<std::string> run_ids,
                                    std::vector<TaskSpec> specs) {
  std::vector<TaskSpec> go;
  std::vector<std::string> going;
  for (size_t k = 0; k < run_ids.size(); ++k) {
    auto it = runs_.find(run_ids[k]);
    // Finished (stopped, or its job removed) while its record was written.
    if (it == runs_.end() || it->second.tasks.empty() || it->second.tasks.back().id != specs[k].id)
      continue;
    if (it->second.stopping) {
      finish_run(it->second, RunStatus::failed, it->second.reason);
      continue;
    }
    go.push_back(std::move(specs[k]));
    going.push_back(run_ids[k]);
  }
  if (go.empty()) {
    decline({offer_id}, config_.refuse_busy);
    return;
  }
  auto err = accept({offer_id}, go, config_.refuse_busy);
  for (const auto& id : going) {
    auto& run = runs_.at(id);
    if (!err) {
      run.launched = true;
      ++counters_.tasks_launched;
      continue;
    }
    // Nothing went out: the attempt never was. The run waits for the next
    // offer (maxLaunchDelay still bounds it).
    task_run_.erase(run.tasks.back().id);
    run.tasks.pop_back();
    run.waiting = true;
    persist({run_record(run)});
  }
  if (err)
    log().warn("jobs: launching {} task(s) on offer {} failed: {}", go.size(), offer_id,
               describe(err));
}

// -- records ---------------------------------------------------------------

RegistryChange JobsFramework::job_record(const std::string& job_id) const {
  const Job& job = jobs_.at(job_id);
  json schedules = json::object();
  for (const auto& [sid, st] : job.schedules) {
    json s = {{"missed", st.missed}};
    if (st.last)
      s["lastMs"] = to_ms(*st.last);
    if (st.last_missed)
      s["lastMissedMs"] = to_ms(*st.last_missed);
    schedules[sid] = std::move(s);
  }
  json succeeded = json::array(), failed = json::array();
  for (const auto& r : job.history.succeeded)
    succeeded.push_back(finished_json(r));
  for (const auto& r : job.history.failed)
    failed.push_back(finished_json(r));
  json j = {{"definition", job.definition},
            {"createdMs", job.created_ms},
            {"schedules", std::move(schedules)},
            {"history",
             {{"successCount", job.history.successes},
              {"failureCount", job.history.failures},
              {"lastSuccessMs", job.history.last_success_ms},
              {"lastFailureMs", job.history.last_failure_ms},
              {"succeeded", std::move(succeeded)},
              {"failed", std::move(failed)}}}};
  if (job.deleting)
    j["deleting"] = true;
  return {job_key(job_id), j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

RegistryChange JobsFramework::run_record(const Run& run) const {
  json tasks = json::array();
  for (const auto& t : run.tasks)
    tasks.push_back({{"id", t.id},
                     {"status", t.status},
                     {"agentId", t.agent_id},
                     {"startedMs", t.started_ms},
                     {"completedMs", t.completed_ms}});
  json j = {{"id", run.id},
            {"jobId", run.job_id},
            {"status", to_string(run.status)},
            {"trigger", run.trigger},
            {"scheduledMs", run.scheduled_ms},
            {"createdMs", run.created_ms},
            {"attempts", run.attempts},
            {"tasks", std::move(tasks)}};
  if (run.stopping)
    j["stopping"] = true;
  return {run_key(run.id), j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

}  // namespace tessera::jobs
