// The apps framework as operators run it: `tessera apps` as a process of its
// own (killed with SIGKILL and started again), inside `tessera cluster` (its
// /v2 on the master's HTTP edge), and driven by `tessera app ...`.

#include "e2e/cluster_process.hpp"
#include "services/http/client.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>
#include <set>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string after(const std::string& line, const std::string& marker, char end) {
  return text_after(line, marker, end);
}

ClusterProcess start_cluster(const TempDir& dir, std::vector<std::string> extra = {}) {
  return start_cluster_process(dir.path() / "cluster", 2, std::move(extra));
}

// `tessera apps` following cluster's master, its state in dir/apps: the
// process and the HOST:PORT of its /v2 API.
std::pair<std::unique_ptr<ChildProcess>, std::string> start_apps_process(
    const ClusterProcess& cluster, const TempDir& dir) {
  auto p = ChildProcess::start({TESSERA_BIN, "apps", "--master", cluster.master, "--http",
                                "127.0.0.1:0", "--work-dir", (dir.path() / "apps").string()});
  auto line = p->wait_line("Marathon API on http://");
  INFO(p->out() << p->err());
  REQUIRE(line);
  return {std::move(p), after(*line, "http://", '/')};
}

json get(const std::string& http, const std::string& path) {
  auto r = http::request(http, "GET", path, "", "", 10s);
  REQUIRE(r);
  INFO(path << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

bool running(const std::string& http, const std::string& id, size_t n) {
  auto r = http::request(http, "GET", "/v2/apps" + id, "", "", 10s);
  if (!r || r->status != 200)
    return false;
  auto app = json::parse(r->body)["app"];
  return app["tasksRunning"] == n && app["tasks"].size() == n && app["deployments"].empty();
}

// The master's tasks that have not ended, by task id.
std::map<std::string, std::string> live_tasks(const std::string& http) {
  auto r = http::request(http, "POST", "/api/v1", R"({"type":"GET_TASKS"})");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  std::map<std::string, std::string> out;
  auto body = json::parse(r->body);
  for (const auto& t : body["get_tasks"]["tasks"])
    out[t["task_id"]["value"].get<std::string>()] = t["state"].get<std::string>();
  return out;
}

std::set<std::string> ids_of(const json& app) {
  std::set<std::string> ids;
  for (const auto& t : app["tasks"])
    ids.insert(t["id"].get<std::string>());
  return ids;
}

}  // namespace

TEST_CASE(
    "the apps framework killed with SIGKILL and restarted keeps its apps and does not "
    "duplicate instances",
    "[e2e][apps]") {
  TempDir dir;
  auto cluster = start_cluster(dir, {"--no-apps"});
  auto pids = dir.path() / "pids";
  auto start_apps = [&] { return start_apps_process(cluster, dir); };
  auto [apps, http] = start_apps();
  auto r = http::request(http, "POST", "/v2/apps",
                         json{{"id", "/keep"},
                              {"cmd", "echo $$ >> " + pids.string() + "; exec sleep 1000"},
                              {"instances", 3},
                              {"cpus", 0.1},
                              {"mem", 16}}
                             .dump());
  REQUIRE(r);
  REQUIRE(r->status == 201);
  REQUIRE(eventually([&] { return running(http, "/keep", 3); }, 60s));
  auto before = get(http, "/v2/apps/keep")["app"];
  auto framework = get(http, "/v2/info")["frameworkId"];
  // (the state view follows the master's events: it may lag a moment)
  REQUIRE(eventually([&] { return live_tasks(cluster.http).size() == 3; }, 30s));

  apps->kill(SIGKILL);
  REQUIRE(apps->wait_exit(10s));
  // While it is away, one instance dies; the master keeps its tasks (the
  // failover timeout) and holds the update for it.
  std::vector<int> started;
  {
    std::ifstream in(pids);
    for (int pid; in >> pid;)
      started.push_back(pid);
  }
  REQUIRE(started.size() == 3);
  REQUIRE(::kill(started[0], SIGKILL) == 0);

  auto [again, http2] = start_apps();
  CHECK(get(http2, "/v2/info")["frameworkId"] == framework);
  REQUIRE(eventually(
      [&] {
        auto app = get(http2, "/v2/apps/keep")["app"];
        return running(http2, "/keep", 3) && ids_of(app) != ids_of(before);
      },
      60s));
  auto after_restart = get(http2, "/v2/apps/keep")["app"];
  CHECK(after_restart["version"] == before["version"]);
  std::vector<std::string> kept;
  auto a = ids_of(before), b = ids_of(after_restart);
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(kept));
  CHECK(kept.size() == 2);  // the two that lived were adopted, not relaunched
  // The master runs exactly the framework's three: nothing duplicated.
  std::set<std::string> running_ids;
  auto master_runs = [&] {
    running_ids.clear();
    for (const auto& [id, state] : live_tasks(cluster.http))
      if (state == "TASK_RUNNING" || state == "TASK_STAGING" || state == "TASK_STARTING")
        running_ids.insert(id);
    return running_ids == b;
  };
  CHECK(eventually(master_runs, 30s));
  // And stays so: no late launch of a duplicate.
  std::this_thread::sleep_for(2s);
  CHECK(master_runs());
}

TEST_CASE("tessera app commands drive the apps framework of tessera cluster", "[e2e][apps][cli]") {
  TempDir dir;
  auto cluster = start_cluster(dir);
  auto file = dir.path() / "web.json";
  std::ofstream(file) << json{
      {"id", "/cli/web"},
      {"cmd", "sleep 1000"},
      {"instances", 2},
      {"cpus", 0.1},
      {"mem", 16}}.dump();
  auto added = cli({"app", "add", file.string(), "--apps", cluster.http, "--wait"});
  INFO(added.out << added.err);
  REQUIRE(added.code == 0);
  CHECK(added.out.find("/cli/web") != std::string::npos);
  REQUIRE(running(cluster.http, "/cli/web", 2));

  auto list = cli({"app", "list", "--apps", cluster.http});
  INFO(list.out << list.err);
  CHECK(list.code == 0);
  CHECK(list.out.find("/cli/web") != std::string::npos);
  CHECK(list.out.find("2/2") != std::string::npos);

  auto scaled = cli({"app", "scale", "cli/web", "3", "--apps", cluster.http, "--wait"});
  INFO(scaled.out << scaled.err);
  CHECK(scaled.code == 0);
  CHECK(running(cluster.http, "/cli/web", 3));

  auto shown = cli({"app", "show", "/cli/web", "--apps", cluster.http});
  CHECK(shown.code == 0);
  CHECK(shown.out.find("TASK_RUNNING") != std::string::npos);

  auto as_json = cli({"app", "list", "--json", "--apps", cluster.http});
  REQUIRE(as_json.code == 0);
  CHECK(json::parse(as_json.out)["apps"][0]["id"] == "/cli/web");

  CHECK(cli({"deployments", "--apps", cluster.http}).code == 0);
  CHECK(cli({"queue", "--apps", cluster.http}).code == 0);

  // A plan that fits exits 0; one that does not (100 cpus) exits 1 and says why.
  auto big = dir.path() / "big.json";
  std::ofstream(big) << json{{"id", "/cli/big"}, {"cmd", "true"}, {"cpus", 100}}.dump();
  auto no = cli({"app", "plan", big.string(), "--apps", cluster.http});
  INFO(no.out << no.err);
  CHECK(no.code == 1);
  CHECK(no.out.find("cpus: needs 100") != std::string::npos);
  CHECK(cli({"app", "plan", file.string(), "--apps", cluster.http}).code == 0);

  auto restarted = cli({"app", "restart", "/cli/web", "--apps", cluster.http, "--wait"});
  INFO(restarted.out << restarted.err);
  CHECK(restarted.code == 0);

  auto bad = dir.path() / "bad.json";
  std::ofstream(bad) << json{{"id", "/cli/bad"}, {"cmd", "true"}, {"mem", -5}}.dump();
  auto refused = cli({"app", "add", bad.string(), "--apps", cluster.http});
  CHECK(refused.code == 1);
  CHECK(refused.err.find("/mem") != std::string::npos);
  CHECK(cli({"app", "scale", "/cli/web", "--apps", cluster.http}).code == 2);

  auto removed = cli({"app", "remove", "/cli/web", "--apps", cluster.http, "--wait"});
  INFO(removed.out << removed.err);
  CHECK(removed.code == 0);
  CHECK(eventually(
      [&] {
        auto r = http::request(cluster.http, "GET", "/v2/apps/cli/web");
        return r && r->status == 404;
      },
      30s));
  CHECK(cli({"app", "show", "/cli/web", "--apps", cluster.http}).code == 1);
}

TEST_CASE("tessera master --apps serves /v2 on the master's HTTP edge", "[e2e][apps]") {
  TempDir dir;
  auto master =
      ChildProcess::start({TESSERA_BIN, "master", "--apps", "--listen", "127.0.0.1:0", "--http",
                           "127.0.0.1:0", "--work-dir", (dir.path() / "master").string()});
  auto http_line = master->wait_line("web UI on http://");
  auto line = master->wait_line("listening on ");
  INFO(master->out() << master->err());
  REQUIRE(http_line);
  REQUIRE(line);
  auto http = after(*http_line, "http://", '/');
  auto address = after(*line, "listening on ", ' ');
  auto host_port = address.substr(address.find('@') + 1);
  auto agent = ChildProcess::start({TESSERA_BIN, "agent", "--master", host_port, "--listen",
                                    "127.0.0.1:0", "--work-dir", (dir.path() / "agent").string(),
                                    "--resources", "cpus:2;mem:1024", "--isolation", "posix"});
  REQUIRE(agent->wait_line("listening on "));
  auto r = http::request(
      http, "POST", "/v2/apps",
      json{{"id", "/beside"}, {"cmd", "sleep 1000"}, {"cpus", 0.1}, {"mem", 16}}.dump());
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 201);
  CHECK(eventually([&] { return running(http, "/beside", 1); }, 60s));
  // Its state is in the master's work directory.
  CHECK(std::filesystem::exists(dir.path() / "master" / "apps" / "registry.db"));
  // --apps with --zk is refused: one apps framework per cluster, not per master.
  auto zk = ChildProcess::start({TESSERA_BIN, "master", "--apps", "--zk", "zk://127.0.0.1:1/t",
                                 "--work-dir", (dir.path() / "m2").string()});
  REQUIRE(zk->wait_exit(30s));
  CHECK(zk->exit_status()->exit_code == 2);
  CHECK(zk->err().find("tessera apps --master") != std::string::npos);
}

TEST_CASE(
    "restarted while a canary waits and while an app is removed, the framework picks up "
    "where it was",
    "[e2e][apps]") {
  TempDir dir;
  auto cluster = start_cluster(dir, {"--no-apps"});
  auto start_apps = [&] { return start_apps_process(cluster, dir); };
  auto send = [](const std::string& http, const std::string& method, const std::string& path,
                 const json& body, int expect) {
    auto r = http::request(http, method, path, body.is_null() ? "" : body.dump());
    REQUIRE(r);
    INFO(method << " " << path << " -> " << r->body);
    REQUIRE(r->status == expect);
    return json::parse(r->body.empty() ? "null" : r->body);
  };
  auto [apps, http] = start_apps();
  json v1 = {{"id", "/bird"},
             {"cmd", "sleep 1000"},
             {"instances", 2},
             {"cpus", 0.1},
             {"mem", 16},
             {"healthChecks",
              {{{"protocol", "COMMAND"},
                {"command", {{"value", "true"}}},
                {"gracePeriodSeconds", 5},
                {"intervalSeconds", 2},
                {"timeoutSeconds", 1},
                {"delaySeconds", 0}}}}};
  send(http, "POST", "/v2/apps", v1, 201);
  auto healthy = [&](const std::string& h, size_t n) {
    auto r = http::request(h, "GET", "/v2/apps/bird");
    return r && r->status == 200 && json::parse(r->body)["app"]["tasksHealthy"] == n;
  };
  REQUIRE(eventually([&] { return running(http, "/bird", 2) && healthy(http, 2); }, 60s));
  auto old_ids = ids_of(get(http, "/v2/apps/bird")["app"]);
  json v2 = v1;
  v2["cmd"] = "sleep 1001";
  v2["upgradeStrategy"] = {{"canaryInstances", 1}};
  auto id = send(http, "PUT", "/v2/apps/bird", v2, 200)["deploymentId"].get<std::string>();
  auto state = [&](const std::string& h) {
    return get(h, "/v2/deployments/" + id)["tessera"]["state"].get<std::string>();
  };
  REQUIRE(eventually([&] { return state(http) == "canary"; }, 60s));

  apps->kill(SIGKILL);
  REQUIRE(apps->wait_exit(10s));
  auto [again, http2] = start_apps();
  // The canary step still waits; the old instances are all there and, as
  // the master's reconciliation says, healthy: nothing was killed.
  CHECK(state(http2) == "canary");
  REQUIRE(eventually([&] { return healthy(http2, 3); }, 30s));
  auto now_ids = ids_of(get(http2, "/v2/apps/bird")["app"]);
  for (const auto& old : old_ids)
    CHECK(now_ids.count(old) == 1);
  send(http2, "POST", "/v2/apps/bird/promote", nullptr, 200);
  REQUIRE(eventually([&] { return state(http2) == "success"; }, 60s));
  CHECK(eventually([&] { return running(http2, "/bird", 2) && healthy(http2, 2); }, 30s));

  // Removal: its tasks take a while to die (they ignore SIGTERM for 3 s);
  // the framework is killed meanwhile and must not bring the app back.
  auto pids = dir.path() / "slow-pids";
  send(http2, "POST", "/v2/apps",
       {{"id", "/slow"},
        {"cmd", "echo $$ >> " + pids.string() + "; trap 'sleep 3; exit 0' TERM; sleep 1000 & wait"},
        {"instances", 2},
        {"cpus", 0.1},
        {"mem", 16},
        {"taskKillGracePeriodSeconds", 10}},
       201);
  REQUIRE(eventually([&] { return running(http2, "/slow", 2); }, 60s));
  send(http2, "DELETE", "/v2/apps/slow", nullptr, 200);
  again->kill(SIGKILL);
  REQUIRE(again->wait_exit(10s));
  auto [third, http3] = start_apps();
  CHECK(eventually(
      [&] {
        auto r = http::request(http3, "GET", "/v2/apps/slow");
        return r && r->status == 404;
      },
      60s));
  std::this_thread::sleep_for(1s);
  size_t started = 0;
  {
    std::ifstream in(pids);
    for (int pid; in >> pid;)
      ++started;
  }
  CHECK(started == 2);  // never relaunched
}
