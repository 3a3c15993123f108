// The jobs framework as operators run it: inside `tessera cluster` (its
// /v1/jobs on the master's HTTP edge) driven by `tessera job ...`, and
// `tessera jobs` as a process of its own, killed with SIGKILL mid-run and
// started again.

#include "e2e/cluster_process.hpp"
#include "services/http/client.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

json get(const std::string& http, const std::string& path) {
  auto r = http::request(http, "GET", path, "", "", 10s);
  REQUIRE(r);
  INFO(path << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

std::string write_job(const TempDir& dir, const std::string& name, const json& job) {
  auto file = dir.path() / name;
  std::ofstream(file) << job.dump();
  return file.string();
}

}  // namespace

TEST_CASE("tessera job commands drive the jobs framework of tessera cluster", "[e2e][jobs][cli]") {
  TempDir dir;
  auto cluster = start_cluster_process(dir.path() / "cluster", 1);
  auto hello = write_job(
      dir, "hello.json",
      {{"id", "cli.hello"},
       {"description", "says hello"},
       {"run", {{"cmd", "echo hello from a job; echo to stderr >&2"}, {"cpus", 0.1}, {"mem", 32}}},
       {"schedules", json::array({{{"id", "nightly"}, {"cron", "0 3 * * *"}}})}});
  auto added = cli({"job", "add", hello, "--jobs", cluster.http});
  INFO(added.out << added.err);
  REQUIRE(added.code == 0);
  CHECK(added.out.find("job cli.hello added") != std::string::npos);
  CHECK(added.out.find("schedule nightly: 0 3 * * *") != std::string::npos);

  // run --wait prints the task's output and exits 0 when the run succeeds.
  auto ran =
      cli({"job", "run", "cli.hello", "--wait", "--jobs", cluster.http, "--master", cluster.http});
  INFO(ran.out << ran.err);
  CHECK(ran.code == 0);
  CHECK(ran.out.find("hello from a job") != std::string::npos);
  CHECK(ran.err.find("SUCCESS") != std::string::npos);

  auto failing = write_job(dir, "fail.json",
                           {{"id", "cli.fail"}, {"run", {{"cmd", "exit 4"}, {"cpus", 0.1}}}});
  REQUIRE(cli({"job", "add", failing, "--jobs", cluster.http}).code == 0);
  auto failed =
      cli({"job", "run", "cli.fail", "--wait", "--jobs", cluster.http, "--master", cluster.http});
  INFO(failed.out << failed.err);
  CHECK(failed.code == 1);
  CHECK(failed.err.find("FAILED") != std::string::npos);

  auto list = cli({"job", "list", "--jobs", cluster.http});
  INFO(list.out << list.err);
  CHECK(list.code == 0);
  CHECK(list.out.find("cli.hello") != std::string::npos);
  CHECK(list.out.find("0 3 * * *") != std::string::npos);
  CHECK(list.out.find("SUCCESS") != std::string::npos);

  auto shown = cli({"job", "show", "cli.fail", "--jobs", cluster.http});
  INFO(shown.out << shown.err);
  CHECK(shown.code == 0);
  CHECK(shown.out.find("0 succeeded") != std::string::npos);
  CHECK(shown.out.find("1 failed") != std::string::npos);
  CHECK(shown.out.find("exit 4") != std::string::npos);
  CHECK(shown.out.find("cli.fail_") != std::string::npos);  // the run's task id

  // Schedules from the command line.
  auto sadd = cli({"job", "schedule", "add", "cli.hello", "--schedule-id", "berlin", "--cron",
                   "30 9 * * MON-FRI", "--timezone", "Europe/Berlin", "--concurrency", "FORBID",
                   "--jobs", cluster.http});
  INFO(sadd.out << sadd.err);
  CHECK(sadd.code == 0);
  auto schedules = get(cluster.http, "/v1/jobs/cli.hello/schedules");
  REQUIRE(schedules.size() == 2);
  CHECK(schedules[1]["timezone"] == "Europe/Berlin");
  CHECK(schedules[1]["concurrencyPolicy"] == "FORBID");
  auto bad_tz = cli({"job", "schedule", "add", "cli.hello", "--cron", "* * * * *", "--timezone",
                     "Mars/Olympus", "--jobs", cluster.http});
  CHECK(bad_tz.code == 1);
  CHECK(bad_tz.err.find("/timezone") != std::string::npos);
  CHECK(cli({"job", "schedule", "remove", "cli.hello", "berlin", "--jobs", cluster.http}).code ==
        0);
  CHECK(get(cluster.http, "/v1/jobs/cli.hello/schedules").size() == 1);

  // A long run, killed from the command line.
  auto sleeper = write_job(dir, "sleep.json",
                           {{"id", "cli.sleep"}, {"run", {{"cmd", "sleep 300"}, {"cpus", 0.1}}}});
  REQUIRE(cli({"job", "add", sleeper, "--jobs", cluster.http}).code == 0);
  auto started = cli({"job", "run", "cli.sleep", "--json", "--jobs", cluster.http});
  REQUIRE(started.code == 0);
  auto run_id = json::parse(started.out)["id"].get<std::string>();
  REQUIRE(eventually(
      [&] { return get(cluster.http, "/v1/jobs/cli.sleep/runs/" + run_id)["status"] == "ACTIVE"; },
      30s));
  CHECK(cli({"job", "remove", "cli.sleep", "--jobs", cluster.http}).code == 1);  // runs active
  CHECK(cli({"job", "kill", "cli.sleep", run_id, "--jobs", cluster.http}).code == 0);
  CHECK(eventually(
      [&] { return get(cluster.http, "/v1/jobs/cli.sleep/runs/" + run_id)["status"] == "FAILED"; },
      30s));
  CHECK(cli({"job", "remove", "cli.sleep", "--jobs", cluster.http}).code == 0);
  CHECK(cli({"job", "show", "cli.sleep", "--jobs", cluster.http}).code == 1);
  CHECK(cli({"job", "show", "Not_An_Id", "--jobs", cluster.http}).code == 2);
}

TEST_CASE("tessera jobs killed with SIGKILL mid-run finishes the run once when started again",
          "[e2e][jobs]") {
  TempDir dir;
  auto cluster = start_cluster_process(dir.path() / "cluster", 1, {"--no-jobs", "--no-apps"});
  auto start_jobs = [&] {
    auto p = ChildProcess::start({TESSERA_BIN, "jobs", "--master", cluster.master, "--http",
                                  "127.0.0.1:0", "--work-dir", (dir.path() / "jobs").string()});
    auto line = p->wait_line("Metronome API on http://");
    INFO(p->out() << p->err());
    REQUIRE(line);
    return std::make_pair(std::move(p), text_after(*line, "http://", '/'));
  };
  auto [jobs, http] = start_jobs();
  // The cluster runs no jobs framework of its own: its edge has no /v1/jobs.
  auto none = http::request(cluster.http, "GET", "/v1/jobs", "", "", 10s);
  REQUIRE(none);
  CHECK(none->status == 404);

  auto created = http::request(
      http, "POST", "/v1/jobs",
      json{{"id", "survivor"}, {"run", {{"cmd", "sleep 4"}, {"cpus", 0.1}, {"mem", 16}}}}.dump(),
      "application/json", 10s);
  REQUIRE(created);
  REQUIRE(created->status == 201);
  auto run = http::request(http, "POST", "/v1/jobs/survivor/runs", "", "", 10s);
  REQUIRE(run);
  REQUIRE(run->status == 201);
  auto run_id = json::parse(run->body)["id"].get<std::string>();
  REQUIRE(eventually(
      [&] { return get(http, "/v1/jobs/survivor/runs/" + run_id)["status"] == "ACTIVE"; }, 30s));

  ::kill(jobs->pid(), SIGKILL);
  REQUIRE(jobs->wait_exit(10s));
  auto [again, http2] = start_jobs();
  auto done = json();
  REQUIRE(eventually(
      [&] {
        done = get(http2, "/v1/jobs/survivor/runs/" + run_id);
        return done["status"] == "SUCCESS";
      },
      60s));
  INFO(done.dump());
  CHECK(done["tasks"].size() == 1);  // the same task, not a second one
  auto history = get(http2, "/v1/jobs/survivor?embed=history")["history"];
  CHECK(history["successCount"] == 1);
  CHECK(history["failureCount"] == 0);
  ::kill(again->pid(), SIGTERM);
  CHECK(again->wait_exit(20s));
}

TEST_CASE("tessera master --jobs serves /v1/jobs on the master's HTTP edge", "[e2e][jobs]") {
  TempDir dir;
  auto master =
      ChildProcess::start({TESSERA_BIN, "master", "--jobs", "--listen", "127.0.0.1:0", "--http",
                           "127.0.0.1:0", "--work-dir", (dir.path() / "master").string()});
  auto http_line = master->wait_line("web UI on http://");
  auto line = master->wait_line("listening on ");
  INFO(master->out() << master->err());
  REQUIRE(http_line);
  REQUIRE(line);
  auto http = text_after(*http_line, "http://", '/');
  auto address = text_after(*line, "listening on ", ' ');
  auto agent =
      ChildProcess::start({TESSERA_BIN, "agent", "--master", address.substr(address.find('@') + 1),
                           "--listen", "127.0.0.1:0", "--work-dir", (dir.path() / "agent").string(),
                           "--resources", "cpus:2;mem:1024", "--isolation", "posix"});
  REQUIRE(agent->wait_line("listening on "));
  // The operator API knows the agent: its view of the master is up (a task
  // that ends before that view's first snapshot is not in it).
  REQUIRE(eventually(
      [&] {
        auto r = http::request(http, "POST", "/api/v1", R"({"type":"GET_AGENTS"})", "", 10s);
        return r && r->status == 200 && !json::parse(r->body)["get_agents"]["agents"].empty();
      },
      30s));
  auto created = http::request(
      http, "POST", "/v1/jobs",
      json{{"id", "beside"}, {"run", {{"cmd", "echo beside"}, {"cpus", 0.1}, {"mem", 16}}}}.dump(),
      "application/json", 10s);
  REQUIRE(created);
  INFO(created->body);
  REQUIRE(created->status == 201);
  auto ran = cli({"job", "run", "beside", "--wait", "--jobs", http, "--master", http});
  INFO(ran.out << ran.err);
  CHECK(ran.code == 0);
  CHECK(ran.out.find("beside") != std::string::npos);
  // Its state is in the master's work directory.
  CHECK(std::filesystem::exists(dir.path() / "master" / "jobs" / "registry.db"));
  // --jobs with --zk is refused: one jobs framework per cluster, not per master.
  auto zk = ChildProcess::start({TESSERA_BIN, "master", "--jobs", "--zk", "zk://127.0.0.1:1/t",
                                 "--work-dir", (dir.path() / "m2").string()});
  REQUIRE(zk->wait_exit(30s));
  CHECK(zk->exit_status()->exit_code == 2);
  CHECK(zk->err().find("tessera jobs --master") != std::string::npos);
}
