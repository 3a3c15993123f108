// Job definitions of the jobs framework: Metronome's field names and
// defaults, every problem named with its path.

#include "services/jobs/job_spec.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::jobs;
using json = nlohmann::json;

namespace {

bool has_problem(const std::vector<SpecProblem>& problems, const std::string& path) {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const SpecProblem& p) { return p.path == path; });
}

}  // namespace

TEST_CASE("a job definition in the shape of Metronome's documentation loads", "[jobs][spec]") {
  auto p = parse_job(json::parse(R"({
    "id": "prod.example.app",
    "description": "Example Application",
    "labels": {"location": "olympus", "owner": "zeus"},
    "run": {
      "artifacts": [{"uri": "http://foo.test.com/application.zip", "extract": true,
                     "executable": true, "cache": false}],
      "cmd": "nuke --dry --master local",
      "cpus": 1.5,
      "mem": 32,
      "disk": 128,
      "env": {"MON": "test", "CONNECT": "direct"},
      "maxLaunchDelay": 3600,
      "restart": {"activeDeadlineSeconds": 120, "policy": "NEVER"},
      "user": "root",
      "docker": null,
      "volumes": []
    },
    "schedules": [{"id": "everyminute", "cron": "* * * * *", "timezone": "Europe/Berlin",
                   "startingDeadlineSeconds": 60, "concurrencyPolicy": "ALLOW",
                   "enabled": true, "nextRunAt": "2026-12-07T16:00:00.000+0000"}],
    "activeRuns": [], "historySummary": {}
  })"));
  INFO(problems_json(p.problems).dump());
  REQUIRE(p.ok());
  const auto& j = p.job;
  CHECK(j.id == "prod.example.app");
  CHECK(j.labels.at("owner") == "zeus");
  CHECK(j.run.cmd == "nuke --dry --master local");
  CHECK(j.run.cpus == 1.5);
  CHECK(j.run.artifacts.size() == 1);
  CHECK(j.run.artifacts[0].executable);
  CHECK(j.run.active_deadline_s == 120);
  REQUIRE(j.schedules.size() == 1);
  CHECK(j.schedules[0].timezone == "Europe/Berlin");
  CHECK(j.schedules[0].starting_deadline_s == 60);
  CHECK(j.schedules[0].cron.minutes.count() == 60);
  auto again = parse_job(to_json(j));
  REQUIRE(again.ok());
  CHECK(to_json(again.job) == to_json(j));
}

TEST_CASE("a minimal job gets Metronome's defaults", "[jobs][spec]") {
  auto p = parse_job(json::parse(R"({"id": "nightly", "run": {"args": ["backup", "--all"]}})"));
  REQUIRE(p.ok());
  CHECK(p.job.run.cpus == 1);
  CHECK(p.job.run.mem == 128);
  CHECK(p.job.run.disk == 0);
  CHECK(p.job.run.max_launch_delay_s == 3600);
  CHECK(p.job.run.restart == RestartPolicy::never);
  CHECK_FALSE(p.job.run.active_deadline_s);
  CHECK(p.job.schedules.empty());
  auto s = parse_schedule(json::parse(R"({"id": "daily", "cron": "0 3 * * *"})"));
  REQUIRE(s.second.empty());
  CHECK(s.first.timezone == "UTC");
  CHECK(s.first.starting_deadline_s == 900);
  CHECK(s.first.concurrency == ConcurrencyPolicy::allow);
  CHECK(s.first.enabled);
  // The issue's "fetch" is read as Metronome's artifacts.
  auto f = parse_job(
      json::parse(R"({"id": "f", "run": {"cmd": "true", "fetch": [{"uri": "http://h/x.tgz"}]}})"));
  REQUIRE(f.ok());
  CHECK(f.job.run.artifacts.size() == 1);
}

TEST_CASE("every problem of a bad job definition is named with its path", "[jobs][spec]") {
  auto p = parse_job(json::parse(R"({
    "id": "Bad_Id",
    "run": {"cmd": "x", "args": ["y"], "cpus": -1, "restart": {"policy": "ALWAYS"},
            "docker": {"image": "busybox"}, "colour": "red"},
    "schedules": [{"id": "a", "cron": "61 * * * *", "timezone": "Moon/Base",
                   "concurrencyPolicy": "REPLACE"},
                  {"id": "a", "cron": "@daily"}],
    "extra": 1
  })"));
  CHECK_FALSE(p.ok());
  INFO(problems_json(p.problems).dump(2));
  for (const char* path : {"/id", "/run", "/run/cpus", "/run/restart/policy", "/run/docker",
                           "/run/colour", "/schedules/0/cron", "/schedules/0/timezone",
                           "/schedules/0/concurrencyPolicy", "/schedules/1/id", "/extra"})
    CHECK(has_problem(p.problems, path));
  CHECK(problems_json(p.problems)["message"] == "Object is not valid");
  CHECK_FALSE(parse_job(json::parse(R"({"id": "x"})")).ok());  // no run
  CHECK(valid_job_id("prod.reports.daily-1"));
  CHECK_FALSE(valid_job_id("prod..daily"));
  CHECK_FALSE(valid_job_id("-prod"));
  CHECK_FALSE(valid_job_id("prod/daily"));
}
