// The jobs framework's commands: `tessera job add|update|list|show|run|kill|
// remove` and `tessera job schedule list|add|set|remove`. Each is a client of
// the framework's Metronome-style /v1 HTTP API (docs/jobs.md); tables for
// people, --json for scripts. `job run --wait` prints the run's output as
// `tessera run` does (through the master's operator API and the agent's
// sandbox) and exits with the run's outcome.
//
// --jobs is the API's address: HOST:PORT, http://HOST:PORT or zk://HOSTS/PATH
// (the leading master's HTTP edge, which serves /v1/jobs in `tessera
// cluster`). The default is $TESSERA_JOBS, else the master's HTTP address.
//
// Exit codes: 0 done; 1 the call failed or the API cannot be reached (one
// line "tessera: ..." on stderr, then the server's details), or the run
// waited for FAILED; 2 a bad command line or a file that is not JSON.

#include "tools/tessera/api_client.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/ops_client.hpp"

#include <cstdio>
#include <memory>
#include <thread>

namespace tessera::cli {

namespace {

using json = nlohmann::json;

std::string default_jobs_http() {
  if (const char* env = std::getenv("TESSERA_JOBS"); env && *env)
    return env;
  return default_master_http();
}

struct JobsOptions {
  std::string jobs;
  bool as_json = false;
  double timeout_s = 10;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  }
};

class JobsClient : public ApiClient {
 public:
  explicit JobsClient(const JobsOptions& o) : ApiClient(o.jobs, o.timeout(), "the jobs API") {}
};

CLI::App* jobs_command(CLI::App& parent, const char* name, const char* help, JobsOptions& o) {
  auto* sub = parent.add_subcommand(name, help);
  o.jobs = default_jobs_http();
  sub->add_option("--jobs", o.jobs,
                  "The jobs API: HOST:PORT, http://HOST:PORT or zk://HOSTS/PATH (default: "
                  "$TESSERA_JOBS, else the master's HTTP address, $TESSERA_MASTER or "
                  "127.0.0.1:6050)");
  add_token_flag(sub);
  sub->add_flag("--json", o.as_json, "Print the API's JSON instead of a table");
  sub->add_option("--timeout", o.timeout_s, "Seconds each HTTP call may take")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  return sub;
}

// A job id as a URL path segment: Metronome's characters only.
CLI::Validator job_id_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        for (unsigned char c : v)
          if (!(std::islower(c) || std::isdigit(c) || c == '-' || c == '.'))
            return "'" + v + "' is not a job id (lowercase letters, digits, '-' and '.')";
        return v.empty() ? "a job id is not empty" : std::string();
      },
      "JOB-ID", "JOB-ID");
}

int print_json(const json& j) {
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

std::string command_of(const json& job) {
  auto& run = field(job, "run");
  if (field(run, "cmd").is_string())
    return text(run, "cmd");
  std::vector<std::string> args;
  for (auto& a : list(run, "args"))
    args.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  return joined(args, " ");
}

std::string when(const json& t) {
  auto at = epoch_of(t);
  if (!at)
    return "-";
  double d = *at - now_epoch();
  return d >= 0 ? "in " + secs(d) : secs(-d) + " ago";
}

// -- add, update, remove -----------------------------------------------------------

struct FileOptions : JobsOptions {
  std::string file;
};

int put_job(const FileOptions& o, bool create) {
  auto body = read_definition(o.file, "a job definition");
  if (!body)
    return fail(what(body.error()));
  JobsClient client(o);
  auto id = json::parse(*body).value("id", "");
  if (!create && id.empty())
    return fail(o.file + " has no \"id\": which job to update?");
  auto r =
      create ? client.call("POST", "/v1/jobs", *body) : client.call("PUT", "/v1/jobs/" + id, *body);
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::printf("job %s %s\n", text(*r, "id").c_str(), create ? "added" : "updated");
  for (auto& s : list(*r, "schedules"))
    std::printf("  schedule %s: %s (%s), next run %s\n", text(s, "id").c_str(),
                text(s, "cron").c_str(), text(s, "timezone").c_str(), text(s, "nextRunAt").c_str());
  return 0;
}

struct IdOptions : JobsOptions {
  std::string id;
  std::string run;
  bool stop_runs = false;
};

int remove_job(const IdOptions& o) {
  JobsClient client(o);
  auto r =
      client.call("DELETE", "/v1/jobs/" + o.id + (o.stop_runs ? "?stopCurrentJobRuns=true" : ""));
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::printf("job %s removed%s\n", o.id.c_str(), o.stop_runs ? " (its runs stopped)" : "");
  return 0;
}

int kill_run(const IdOptions& o) {
  JobsClient client(o);
  auto r = client.call("POST", "/v1/jobs/" + o.id + "/runs/" + o.run + "/actions/stop");
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::printf("run %s of %s stopping\n", o.run.c_str(), o.id.c_str());
  return 0;
}

// -- list and show -------------------------------------------------------------------

int list_jobs(const JobsOptions& o) {
  JobsClient client(o);
  auto r = client.call("GET", "/v1/jobs?embed=schedules&embed=activeRuns&embed=historySummary");
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::vector<std::vector<std::string>> rows;
  for (auto& j : *r) {
    std::vector<std::string> crons;
    std::optional<double> next;
    json next_text;
    for (auto& s : list(j, "schedules")) {
      crons.push_back(text(s, "cron") + (field(s, "enabled") == false ? " (off)" : ""));
      auto at = epoch_of(field(s, "nextRunAt"));
      if (at && (!next || *at < *next)) {
        next = at;
        next_text = field(s, "nextRunAt");
      }
    }
    auto& h = field(j, "historySummary");
    auto ls = epoch_of(field(h, "lastSuccessAt")), lf = epoch_of(field(h, "lastFailureAt"));
    std::string last = "-";
    if (ls || lf)
      last = (ls.value_or(0) >= lf.value_or(0) ? "SUCCESS " + ago(field(h, "lastSuccessAt"))
                                               : "FAILED " + ago(field(h, "lastFailureAt")));
    auto cmd = command_of(j);
    if (cmd.size() > 40)
      cmd = cmd.substr(0, 39) + "\u2026";
    rows.push_back({text(j, "id"), crons.empty() ? "-" : joined(crons, "; "), when(next_text),
                    std::to_string(list(j, "activeRuns").size()), count(h, "successCount"),
                    count(h, "failureCount"), last, cmd});
  }
  print_table({"ID", "SCHEDULE", "NEXT RUN", "ACTIVE", "SUCCESS", "FAILED", "LAST", "COMMAND"},
              rows);
  return 0;
}

void print_run(const json& run) {
  std::string line = "  " + text(run, "id") + "  " + text(run, "status");
  if (auto at = field(run, "createdAt"); at.is_string())
    line += "  started " + ago(at);
  if (field(run, "completedAt").is_string() || field(run, "finishedAt").is_string())
    line += ", ended " + ago(field(run, "completedAt").is_string() ? field(run, "completedAt")
                                                                   : field(run, "finishedAt"));
  if (field(run, "exitCode").is_number())
    line += ", exit " + text(run, "exitCode");
  std::vector<std::string> tasks;
  for (auto& t : list(run, "tasks"))
    tasks.push_back(t.is_string() ? t.get<std::string>() : text(t, "id"));
  if (!tasks.empty())
    line += "\n      tasks: " + joined(tasks);
  if (field(run, "reason").is_string())
    line += "\n      " + text(run, "reason");
  std::printf("%s\n", line.c_str());
}

int show_job(const IdOptions& o) {
  JobsClient client(o);
  auto r =
      client.call("GET", "/v1/jobs/" + o.id + "?embed=schedules&embed=activeRuns&embed=history");
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  auto& j = *r;
  auto& run = field(j, "run");
  std::printf("job %s%s\n", text(j, "id").c_str(),
              field(j, "description").is_string() && !text(j, "description", "").empty()
                  ? (": " + text(j, "description")).c_str()
                  : "");
  std::printf("  command   %s\n", command_of(j).c_str());
  std::printf("  resources cpus %s, mem %s MiB, disk %s MiB, gpus %s\n", text(run, "cpus").c_str(),
              text(run, "mem").c_str(), text(run, "disk").c_str(), text(run, "gpus").c_str());
  auto& restart = field(run, "restart");
  std::printf("  restart   %s%s, maxLaunchDelay %s s\n", text(restart, "policy").c_str(),
              field(restart, "activeDeadlineSeconds").is_number()
                  ? (" for " + text(restart, "activeDeadlineSeconds") + " s").c_str()
                  : "",
              text(run, "maxLaunchDelay").c_str());
  std::printf("schedules:\n");
  if (list(j, "schedules").empty())
    std::printf("  none (runs start with: tessera job run %s)\n", o.id.c_str());
  for (auto& s : list(j, "schedules"))
    std::printf("  %s  %s  %s  %s, deadline %s s%s; next %s (%s); missed %s\n",
                text(s, "id").c_str(), text(s, "cron").c_str(), text(s, "timezone").c_str(),
                text(s, "concurrencyPolicy").c_str(), text(s, "startingDeadlineSeconds").c_str(),
                field(s, "enabled") == false ? ", disabled" : "", text(s, "nextRunAt").c_str(),
                when(field(s, "nextRunAt")).c_str(), count(s, "missedRuns").c_str());
  std::printf("active runs:\n");
  if (list(j, "activeRuns").empty())
    std::printf("  none\n");
  for (auto& a : list(j, "activeRuns"))
    print_run(a);
  auto& h = field(j, "history");
  std::printf("history: %s succeeded (last %s), %s failed (last %s)\n",
              count(h, "successCount").c_str(), ago(field(h, "lastSuccessAt")).c_str(),
              count(h, "failureCount").c_str(), ago(field(h, "lastFailureAt")).c_str());
  for (auto& f : list(h, "successfulFinishedRuns")) {
    json one = f;
    one["status"] = "SUCCESS";
    print_run(one);
  }
  for (auto& f : list(h, "failedFinishedRuns")) {
    json one = f;
    one["status"] = "FAILED";
    print_run(one);
  }
  return 0;
}

// -- run -----------------------------------------------------------------------------

struct RunOptions : IdOptions {
  bool wait = false;
  std::string master;
};

// Follows a run: prints each task's output as it runs, and its end.
int wait_run(const RunOptions& o, JobsClient& client, const std::string& run_id) {
  std::set<std::string> printed;
  for (;;) {
    auto r = client.call("GET", "/v1/jobs/" + o.id + "/runs/" + run_id);
    if (!r) {
      if (transient(r.error())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      return failed(what(r.error()));
    }
    auto status = text(*r, "status");
    // The output of each task that has started, once, in order.
    for (auto& t : list(*r, "tasks")) {
      auto id = text(t, "id");
      auto state = text(t, "status");
      if (printed.count(id) || state == "TASK_STAGING" || state == "TASK_STARTING")
        continue;
      printed.insert(id);
      std::fprintf(stderr, "job %s: run %s: task %s\n", o.id.c_str(), run_id.c_str(), id.c_str());
      // The master's view of the task may lag its launch by a moment (or
      // the master may just have started): ask again for a while.
      auto out = print_task_output(o.master, id, "", false, true, o.timeout());
      for (int attempt = 0; !out && attempt < 50; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        out = print_task_output(o.master, id, "", false, true, o.timeout());
      }
      if (!out)
        std::fprintf(stderr, "job %s: cannot print the output of %s: %s\n", o.id.c_str(),
                     id.c_str(), what(out.error()).c_str());
    }
    if (status == "SUCCESS" || status == "FAILED") {
      std::fprintf(stderr, "job %s: run %s %s%s\n", o.id.c_str(), run_id.c_str(), status.c_str(),
                   field(*r, "reason").is_string() ? (": " + text(*r, "reason")).c_str() : "");
      if (o.as_json)
        print_json(*r);
      return status == "SUCCESS" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int run_job(const RunOptions& o) {
  JobsClient client(o);
  auto r = client.call("POST", "/v1/jobs/" + o.id + "/runs");
  if (!r)
    return failed(what(r.error()));
  auto run_id = text(*r, "id");
  if (!o.wait) {
    if (o.as_json)
      return print_json(*r);
    std::printf("run %s of %s started\n", run_id.c_str(), o.id.c_str());
    return 0;
  }
  std::fprintf(stderr, "job %s: run %s started\n", o.id.c_str(), run_id.c_str());
  return wait_run(o, client, run_id);
}

// -- schedules -------------------------------------------------------------------------

struct ScheduleOptions : IdOptions {
  std::string schedule = "default";
  std::string cron;
  std::string timezone = "UTC";
  std::string concurrency = "ALLOW";
  double starting_deadline_s = 900;
  bool disabled = false;
};

int list_schedules(const ScheduleOptions& o) {
  JobsClient client(o);
  auto r = client.call("GET", "/v1/jobs/" + o.id + "/schedules");
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::vector<std::vector<std::string>> rows;
  for (auto& s : *r)
    rows.push_back({text(s, "id"), text(s, "cron"), text(s, "timezone"),
                    text(s, "concurrencyPolicy"), text(s, "startingDeadlineSeconds") + " s",
                    text(s, "enabled"), when(field(s, "nextRunAt")), count(s, "missedRuns")});
  print_table({"ID", "CRON", "TIMEZONE", "POLICY", "DEADLINE", "ENABLED", "NEXT RUN", "MISSED"},
              rows);
  return 0;
}

int put_schedule(const ScheduleOptions& o, bool create) {
  JobsClient client(o);
  json body = {{"id", o.schedule},
               {"cron", o.cron},
               {"timezone", o.timezone},
               {"concurrencyPolicy", o.concurrency},
               {"startingDeadlineSeconds", o.starting_deadline_s},
               {"enabled", !o.disabled}};
  auto r = create
               ? client.call("POST", "/v1/jobs/" + o.id + "/schedules", body.dump())
               : client.call("PUT", "/v1/jobs/" + o.id + "/schedules/" + o.schedule, body.dump());
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::printf("schedule %s of %s: %s (%s), next run %s\n", text(*r, "id").c_str(), o.id.c_str(),
              text(*r, "cron").c_str(), text(*r, "timezone").c_str(),
              text(*r, "nextRunAt").c_str());
  return 0;
}

int remove_schedule(const ScheduleOptions& o) {
  JobsClient client(o);
  auto r = client.call("DELETE", "/v1/jobs/" + o.id + "/schedules/" + o.schedule);
  if (!r)
    return failed(what(r.error()));
  if (o.as_json)
    return print_json(*r);
  std::printf("schedule %s of %s removed\n", o.schedule.c_str(), o.id.c_str());
  return 0;
}

}  // namespace

std::vector<Command> add_jobs_commands(CLI::App& app) {
  std::vector<Command> out;
  auto* job = app.add_subcommand(
      "job", "Scheduled jobs: add, list, show, run, kill, remove, and their schedules");
  job->require_subcommand(1);

  auto add = std::make_shared<FileOptions>();
  auto* add_cmd = jobs_command(*job, "add", "Add a job from a JSON definition (Metronome's)", *add);
  add_cmd->add_option("FILE", add->file, "The definition ('-': stdin)")->required();
  out.push_back({add_cmd, [add] { return put_job(*add, true); }});

  auto upd = std::make_shared<FileOptions>();
  auto* upd_cmd = jobs_command(*job, "update", "Replace a job's definition (by its \"id\")", *upd);
  upd_cmd->add_option("FILE", upd->file, "The definition ('-': stdin)")->required();
  out.push_back({upd_cmd, [upd] { return put_job(*upd, false); }});

  auto ls = std::make_shared<JobsOptions>();
  auto* ls_cmd = jobs_command(*job, "list", "List jobs: schedules, next run, runs, history", *ls);
  out.push_back({ls_cmd, [ls] { return list_jobs(*ls); }});

  auto show = std::make_shared<IdOptions>();
  auto* show_cmd =
      jobs_command(*job, "show", "Show a job: definition, schedules, active runs, history", *show);
  show_cmd->add_option("ID", show->id, "The job")->required()->check(job_id_check());
  out.push_back({show_cmd, [show] { return show_job(*show); }});

  auto run = std::make_shared<RunOptions>();
  auto* run_cmd = jobs_command(*job, "run", "Start a run of a job now", *run);
  run_cmd->add_option("ID", run->id, "The job")->required()->check(job_id_check());
  run_cmd->add_flag("--wait", run->wait,
                    "Print the run's output as it runs and exit 0 when it succeeds, 1 when it "
                    "fails");
  run->master = default_master_http();
  run_cmd->add_option("--master", run->master,
                      "The master's HTTP address, to read the task's output (default: "
                      "$TESSERA_MASTER or 127.0.0.1:6050)");
  out.push_back({run_cmd, [run] { return run_job(*run); }});

  auto kill = std::make_shared<IdOptions>();
  auto* kill_cmd = jobs_command(*job, "kill", "Stop a run (it ends FAILED)", *kill);
  kill_cmd->add_option("ID", kill->id, "The job")->required()->check(job_id_check());
  kill_cmd->add_option("RUN", kill->run, "The run's id")->required();
  out.push_back({kill_cmd, [kill] { return kill_run(*kill); }});

  auto rm = std::make_shared<IdOptions>();
  auto* rm_cmd = jobs_command(*job, "remove", "Remove a job", *rm);
  rm_cmd->add_option("ID", rm->id, "The job")->required()->check(job_id_check());
  rm_cmd->add_flag("--stop-runs", rm->stop_runs,
                   "Stop its active runs too (without it, a job with active runs stays)");
  out.push_back({rm_cmd, [rm] { return remove_job(*rm); }});

  auto* schedule = job->add_subcommand("schedule", "A job's schedules: list, add, set, remove");
  schedule->require_subcommand(1);
  auto sl = std::make_shared<ScheduleOptions>();
  auto* sl_cmd = jobs_command(*schedule, "list", "List a job's schedules", *sl);
  sl_cmd->add_option("ID", sl->id, "The job")->required()->check(job_id_check());
  out.push_back({sl_cmd, [sl] { return list_schedules(*sl); }});
  for (bool create : {true, false}) {
    auto so = std::make_shared<ScheduleOptions>();
    auto* cmd = jobs_command(*schedule, create ? "add" : "set",
                             create ? "Add a schedule to a job" : "Replace a job's schedule", *so);
    cmd->add_option("ID", so->id, "The job")->required()->check(job_id_check());
    cmd->add_option("--cron", so->cron, "Five cron fields, or @daily, @hourly, ...")->required();
    cmd->add_option("--schedule-id", so->schedule, "The schedule's id")->capture_default_str();
    cmd->add_option("--timezone", so->timezone, "An IANA time zone (Europe/Berlin)")
        ->capture_default_str();
    cmd->add_option("--concurrency", so->concurrency, "ALLOW or FORBID (skip while a run goes)")
        ->check(CLI::IsMember({"ALLOW", "FORBID"}))
        ->capture_default_str();
    cmd->add_option("--starting-deadline", so->starting_deadline_s,
                    "Seconds after its time a run may still start; later, it is missed")
        ->check(CLI::Range(1.0, 365.0 * 24 * 3600))
        ->capture_default_str();
    cmd->add_flag("--disabled", so->disabled, "Keep the schedule but do not run it");
    out.push_back({cmd, [so, create] { return put_schedule(*so, create); }});
  }
  auto sr = std::make_shared<ScheduleOptions>();
  auto* sr_cmd = jobs_command(*schedule, "remove", "Remove a job's schedule", *sr);
  sr_cmd->add_option("ID", sr->id, "The job")->required()->check(job_id_check());
  sr_cmd->add_option("SCHEDULE", sr->schedule, "The schedule's id")->required();
  out.push_back({sr_cmd, [sr] { return remove_schedule(*sr); }});
  return out;
}

}  // namespace tessera::cli
