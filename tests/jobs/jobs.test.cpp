// The jobs framework end to end, in one process: a real master and agent,
// real task processes, the framework's /v1 API on a real socket, and a wall
// clock the tests move so cron schedules come due when a test wants.

#include "jobs/jobs_support.hpp"
#include "services/apps/apps_time.hpp"

#include <fstream>

using namespace tessera;
using namespace tessera::testing;

namespace {

json job(const std::string& id, const std::string& cmd, json extra_run = json::object()) {
  json run = {{"cmd", cmd}, {"cpus", 0.1}, {"mem", 32}};
  run.update(extra_run);
  return {{"id", id}, {"description", "a test job"}, {"run", run}};
}

std::string start_run(const std::string& http, const std::string& id) {
  auto run = call(http, "POST", "/v1/jobs/" + id + "/runs", nullptr, 201);
  CHECK(run["status"] == "STARTING");
  CHECK(run["jobId"] == id);
  return run["id"].get<std::string>();
}

}  // namespace

TEST_CASE("jobs are created, read, replaced and removed with Metronome's statuses", "[jobs][e2e]") {
  JobsWorld w;
  auto created = call(w.http, "POST", "/v1/jobs", job("prod.report", "true"), 201);
  CHECK(created["id"] == "prod.report");
  CHECK(created["run"]["maxLaunchDelay"] == 3600);
  CHECK(created["run"]["restart"]["policy"] == "NEVER");
  call(w.http, "POST", "/v1/jobs", job("prod.report", "true"), 409);
  // Invalid: every problem with its path, Metronome's 422 body.
  auto bad = call(w.http, "POST", "/v1/jobs", {{"id", "Bad_Id"}, {"run", {{"cpus", -1}}}}, 422);
  CHECK(bad["message"] == "Object is not valid");
  std::set<std::string> paths;
  for (const auto& d : bad["details"])
    paths.insert(d["path"].get<std::string>());
  CHECK(paths.count("/id"));
  CHECK(paths.count("/run/cpus"));
  // Not JSON: 400, and the API keeps serving.
  auto r = http::request(w.http, "POST", "/v1/jobs", "{nope", "application/json", 10s);
  REQUIRE(r);
  CHECK(r->status == 400);
  call(w.http, "GET", "/v1/jobs/nope", nullptr, 404);
  call(w.http, "GET", "/v1/jobs/prod.report/runs/nope", nullptr, 404);
  call(w.http, "GET", "/v1/elsewhere", nullptr, 404);

  auto list = call(w.http, "GET", "/v1/jobs?embed=historySummary&embed=schedules");
  REQUIRE(list.size() == 1);
  CHECK(list[0]["historySummary"]["successCount"] == 0);
  CHECK(list[0]["schedules"].empty());

  auto replaced = job("prod.report", "echo hi");
  replaced["run"]["mem"] = 64;
  replaced["schedules"] =
      json::array({{{"id", "nightly"}, {"cron", "30 2 * * *"}, {"timezone", "Europe/Berlin"}}});
  auto put = call(w.http, "PUT", "/v1/jobs/prod.report", replaced);
  CHECK(put["run"]["mem"] == 64);
  REQUIRE(put["schedules"].size() == 1);
  CHECK(put["schedules"][0]["nextRunAt"].is_string());
  // A PUT without schedules keeps them.
  call(w.http, "PUT", "/v1/jobs/prod.report", job("prod.report", "echo again"));
  auto shown = job_of(w.http, "prod.report", "schedules");
  CHECK(shown["run"]["cmd"] == "echo again");
  CHECK(shown["schedules"].size() == 1);
  // An id in the body that is not the path's.
  call(w.http, "PUT", "/v1/jobs/prod.report", job("other", "true"), 422);

  call(w.http, "DELETE", "/v1/jobs/prod.report");
  call(w.http, "GET", "/v1/jobs/prod.report", nullptr, 404);
  auto info = call(w.http, "GET", "/v1/info");
  CHECK(info["counters"]["badRequests"].get<int>() >= 3);
}

TEST_CASE("a run succeeds, a failing run carries its exit code, and history is bounded",
          "[jobs][e2e]") {
  JobsWorldOptions o;
  o.history_max = 2;
  JobsWorld w(o);
  call(w.http, "POST", "/v1/jobs", job("ok", "echo done"), 201);
  call(w.http, "POST", "/v1/jobs", job("bad", "exit 3"), 201);
  auto ok = start_run(w.http, "ok");
  auto finished = wait_run(w.http, "ok", ok, "SUCCESS");
  REQUIRE(finished["tasks"].size() == 1);
  auto task_id = finished["tasks"][0]["id"].get<std::string>();
  CHECK(task_id.find("ok_" + ok) == 0);
  CHECK(finished["completedAt"].is_string());

  auto bad = start_run(w.http, "bad");
  auto failed = wait_run(w.http, "bad", bad, "FAILED");
  CHECK(failed["exitCode"] == 3);
  CHECK(failed["reason"].get<std::string>().find("TASK_FAILED") != std::string::npos);

  for (int k = 0; k < 2; ++k)
    wait_run(w.http, "ok", start_run(w.http, "ok"), "SUCCESS");
  auto h = job_of(w.http, "ok", "history")["history"];
  CHECK(h["successCount"] == 3);
  CHECK(h["failureCount"] == 0);
  CHECK(h["lastSuccessAt"].is_string());
  CHECK(h["lastFailureAt"].is_null());
  REQUIRE(h["successfulFinishedRuns"].size() == 2);  // history_max
  // Newest first, each with its task ids; the oldest fell out.
  for (const auto& r : h["successfulFinishedRuns"]) {
    CHECK(r["id"] != ok);
    CHECK(r["tasks"].size() == 1);
  }
  auto hb = job_of(w.http, "bad", "history")["history"];
  CHECK(hb["failureCount"] == 1);
  CHECK(hb["failedFinishedRuns"][0]["exitCode"] == 3);
}

TEST_CASE("ON_FAILURE restarts a failed task until it succeeds, and stops at the deadline",
          "[jobs][e2e]") {
  JobsWorld w;
  auto marker = (w.dir.path() / "tried").string();
  // Fails the first time, succeeds the second.
  call(w.http, "POST", "/v1/jobs",
       job("flaky", "if [ -f " + marker + " ]; then exit 0; fi; touch " + marker + "; exit 1",
           {{"restart", {{"policy", "ON_FAILURE"}}}}),
       201);
  auto run = start_run(w.http, "flaky");
  auto done = wait_run(w.http, "flaky", run, "SUCCESS");
  CHECK(done["tasks"].size() == 2);

  // Always failing, restarts only within 2 s of the run's start.
  call(w.http, "POST", "/v1/jobs",
       job("doomed", "sleep 0.3; exit 7",
           {{"restart", {{"policy", "ON_FAILURE"}, {"activeDeadlineSeconds", 2}}}}),
       201);
  auto doomed = start_run(w.http, "doomed");
  auto failed = wait_run(w.http, "doomed", doomed, "FAILED");
  CHECK(failed["tasks"].size() >= 2);
  CHECK(failed["exitCode"] == 7);
  CHECK(failed["reason"].get<std::string>().find("activeDeadlineSeconds") != std::string::npos);
  CHECK(call(w.http, "GET", "/v1/info")["counters"]["taskRestarts"].get<int>() >= 2);
}

TEST_CASE(
    "a run is stopped, a run that cannot start fails at maxLaunchDelay, and a job with "
    "runs is removed only when told to stop them",
    "[jobs][e2e]") {
  JobsWorld w;
  call(w.http, "POST", "/v1/jobs", job("sleepy", "sleep 60"), 201);
  auto run = start_run(w.http, "sleepy");
  wait_run(w.http, "sleepy", run, "ACTIVE");
  auto stopped = call(w.http, "POST", "/v1/jobs/sleepy/runs/" + run + "/actions/stop");
  CHECK(stopped["id"] == run);
  auto failed = wait_run(w.http, "sleepy", run, "FAILED");
  CHECK(failed["reason"].get<std::string>().find("stopped by an operator") != std::string::npos);

  // More than any agent has: never placed.
  call(w.http, "POST", "/v1/jobs", job("huge", "true", {{"cpus", 64}, {"maxLaunchDelay", 1}}), 201);
  auto huge = start_run(w.http, "huge");
  auto late = wait_run(w.http, "huge", huge, "FAILED");
  CHECK(late["reason"].get<std::string>().find("maxLaunchDelay") != std::string::npos);
  CHECK(late["tasks"].empty());

  auto again = start_run(w.http, "sleepy");
  wait_run(w.http, "sleepy", again, "ACTIVE");
  auto refused = call(w.http, "DELETE", "/v1/jobs/sleepy", nullptr, 409);
  CHECK(refused["message"].get<std::string>().find("stopCurrentJobRuns") != std::string::npos);
  call(w.http, "DELETE", "/v1/jobs/sleepy?stopCurrentJobRuns=true");
  call(w.http, "GET", "/v1/jobs/sleepy", nullptr, 404);
  // Its task is killed: nothing of the framework runs any more.
  CHECK(eventually([&] { return call(w.http, "GET", "/v1/info")["activeRuns"] == 0; }, 20s));
}

TEST_CASE("a schedule starts a run when its minute comes, and FORBID skips while one runs",
          "[jobs][e2e]") {
  JobsWorld w;
  w.wall_to_second(57);  // the next minute starts in 3 s of this clock
  auto spec = job("tick", "sleep 30");
  spec["schedules"] = json::array(
      {{{"id", "every-minute"}, {"cron", "* * * * *"}, {"concurrencyPolicy", "FORBID"}}});
  auto created = call(w.http, "POST", "/v1/jobs", spec, 201);
  auto next = created["schedules"][0]["nextRunAt"].get<std::string>();
  CHECK(next.substr(17, 6) == "00.000");  // on a minute
  json runs;
  REQUIRE(eventually(
      [&] {
        runs = call(w.http, "GET", "/v1/jobs/tick/runs");
        return runs.size() == 1;
      },
      15s));
  CHECK(runs[0]["trigger"] == "schedule:every-minute");
  CHECK(runs[0]["scheduledAt"] == next);
  wait_run(w.http, "tick", runs[0]["id"], "ACTIVE");
  // The next minute comes while that run sleeps: skipped, not started.
  w.wall_to_second(58);
  REQUIRE(eventually(
      [&] { return call(w.http, "GET", "/v1/info")["counters"]["runsSkipped"] == 1; }, 15s));
  CHECK(call(w.http, "GET", "/v1/jobs/tick/runs").size() == 1);
  // Its lateness is measured: one run started, one task running.
  auto info = call(w.http, "GET", "/v1/info");
  CHECK(info["scheduleLagMs"]["count"] == 1);
  CHECK(info["launchLagMs"]["count"] == 1);
  CHECK(info["scheduleLagMs"]["p50"].get<double>() >= 0);
}

TEST_CASE("a framework restarted finishes the run it had, and runs or records what it missed",
          "[jobs][e2e]") {
  JobsWorld w;
  // A run in flight across the restart: it ends once, SUCCESS, one task.
  call(w.http, "POST", "/v1/jobs", job("long", "sleep 3"), 201);
  auto run = start_run(w.http, "long");
  wait_run(w.http, "long", run, "ACTIVE");

  // Every minute, with a 90 s starting deadline.
  auto spec = job("minutely", "true");
  spec["schedules"] =
      json::array({{{"id", "m"}, {"cron", "* * * * *"}, {"startingDeadlineSeconds", 90}}});
  w.wall_to_second(5);  // far from a minute's start: nothing fires before the stop
  call(w.http, "POST", "/v1/jobs", spec, 201);

  w.stop_jobs();
  // Ten minutes pass while it is down (minute starts at +55 s, +115 s, ...).
  w.move_wall(std::chrono::seconds(600));
  w.start_jobs();

  auto done = wait_run(w.http, "long", run, "SUCCESS");
  CHECK(done["tasks"].size() == 1);
  // Of the ten times that came, those within 90 s of now: the latest runs,
  // the others are missed. 10 s past a minute, that is the one 10 s ago,
  // and the one 70 s ago is missed too.
  auto schedule = job_of(w.http, "minutely", "schedules,activeRuns,history")["schedules"][0];
  INFO(schedule.dump());
  CHECK(schedule["missedRuns"] == 9);
  auto h = job_of(w.http, "minutely", "history,activeRuns");
  INFO(h.dump());
  auto started = h["activeRuns"].size() + h["history"]["successCount"].get<size_t>() +
                 h["history"]["failureCount"].get<size_t>();
  CHECK(started == 1);
  CHECK(call(w.http, "GET", "/v1/info")["counters"]["runsMissed"] == 9);
}

TEST_CASE("a schedule late by several of its times runs once, for the latest, and counts the rest",
          "[jobs][e2e]") {
  JobsWorld w;
  w.wall_to_second(5);
  auto spec = job("burst", "true");
  spec["schedules"] = json::array({{{"id", "m"}, {"cron", "* * * * *"}}});
  call(w.http, "POST", "/v1/jobs", spec, 201);
  // Five minutes pass at once (a paused machine, a clock stepped forward):
  // five times are due, all within the 900 s starting deadline.
  w.move_wall(std::chrono::seconds(300));
  REQUIRE(eventually(
      [&] { return call(w.http, "GET", "/v1/info")["counters"]["runsStarted"] == 1; }, 15s));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto info = call(w.http, "GET", "/v1/info");
  CHECK(info["counters"]["runsStarted"] == 1);
  CHECK(info["counters"]["runsMissed"] == 4);
  auto schedule = call(w.http, "GET", "/v1/jobs/burst/schedules/m");
  CHECK(schedule["missedRuns"] == 4);
  // The next one is the coming minute, not one of those.
  auto next = schedule["nextRunAt"].get<std::string>();
  CHECK(next > apps::iso_time(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  w.wall().time_since_epoch())
                                  .count()));
}
