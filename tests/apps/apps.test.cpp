// The apps framework end to end: a real cluster in this process, real task
// processes, the framework's /v2 API on a real socket (tests/apps/
// apps_support.hpp).

#include "apps/apps_support.hpp"

#include <signal.h>

#include <fstream>
#include <set>

using namespace tessera;
using namespace tessera::testing;

namespace {

std::vector<int> read_pids(const std::filesystem::path& file) {
  std::vector<int> pids;
  std::ifstream in(file);
  for (int pid; in >> pid;)
    pids.push_back(pid);
  return pids;
}

std::set<std::string> task_ids(const json& app) {
  std::set<std::string> ids;
  for (const auto& t : app["tasks"])
    ids.insert(t["id"].get<std::string>());
  return ids;
}

json deployment(const std::string& http, const std::string& id) {
  return call(http, "GET", "/v2/deployments/" + id);
}

std::string deployment_state(const std::string& http, const std::string& id) {
  return deployment(http, id)["tessera"]["state"].get<std::string>();
}

// A command health check that passes, checked every second.
json passing_check() {
  return json::array({{{"protocol", "COMMAND"},
                       {"command", {{"value", "true"}}},
                       {"gracePeriodSeconds", 5},
                       {"intervalSeconds", 2},
                       {"timeoutSeconds", 1},
                       {"delaySeconds", 0},
                       {"maxConsecutiveFailures", 3}}});
}

}  // namespace

TEST_CASE("an app of 3 instances stays at 3 when one is killed", "[apps][e2e]") {
  AppsWorld w;
  auto pids = w.dir.path() / "pids";
  auto created = call(w.http, "POST", "/v2/apps",
                      {{"id", "/shop/web"},
                       {"cmd", "echo $$ >> " + pids.string() + "; exec sleep 1000"},
                       {"instances", 3},
                       {"cpus", 0.1},
                       {"mem", 16}},
                      201);
  CHECK(created["id"] == "/shop/web");
  REQUIRE(created["deployments"].size() == 1);
  REQUIRE(eventually([&] { return settled(w.http, "/shop/web", 3); }, 60s));
  auto before = task_ids(app_of(w.http, "/shop/web"));
  auto first_deployment = created["deployments"][0]["id"].get<std::string>();
  CHECK(deployment_state(w.http, first_deployment) == "success");

  SECTION("its process dies: it is replaced after the backoff") {
    auto started = read_pids(pids);
    REQUIRE(started.size() == 3);
    REQUIRE(::kill(started[0], SIGKILL) == 0);
    REQUIRE(eventually(
        [&] {
          auto app = app_of(w.http, "/shop/web");
          return app.contains("lastTaskFailure") && settled(w.http, "/shop/web", 3) &&
                 task_ids(app) != before;
        },
        60s));
    auto app = app_of(w.http, "/shop/web");
    CHECK(app["lastTaskFailure"]["state"] == "TASK_FAILED");
    CHECK(before.count(app["lastTaskFailure"]["taskId"].get<std::string>()) == 1);
    auto after = task_ids(app);
    std::vector<std::string> kept;
    std::set_intersection(before.begin(), before.end(), after.begin(), after.end(),
                          std::back_inserter(kept));
    CHECK(kept.size() == 2);
  }
  SECTION("killed through the API: replaced; with scale=true: one fewer") {
    auto victim = *before.begin();
    auto killed = call(w.http, "DELETE", "/v2/apps/shop/web/tasks/" + victim);
    CHECK(killed["task"]["id"] == victim);
    REQUIRE(eventually(
        [&] {
          auto ids = task_ids(app_of(w.http, "/shop/web"));
          return settled(w.http, "/shop/web", 3) && !ids.count(victim);
        },
        60s));
    CHECK_FALSE(app_of(w.http, "/shop/web").contains("lastTaskFailure"));  // not a failure
    auto next = *task_ids(app_of(w.http, "/shop/web")).begin();
    call(w.http, "DELETE", "/v2/apps/shop/web/tasks/" + next + "?scale=true");
    REQUIRE(eventually([&] { return settled(w.http, "/shop/web", 2); }, 60s));
    CHECK(app_of(w.http, "/shop/web")["instances"] == 2);
    call(w.http, "DELETE", "/v2/apps/shop/web/tasks/no-such-task", nullptr, 404);
  }
  SECTION("removed: every task ends and the app is gone") {
    auto removed = call(w.http, "DELETE", "/v2/apps/shop/web");
    REQUIRE(removed.contains("deploymentId"));
    REQUIRE(eventually(
        [&] {
          auto r = http::request(w.http, "GET", "/v2/apps/shop/web");
          return r && r->status == 404;
        },
        60s));
    CHECK(call(w.http, "GET", "/v2/tasks")["tasks"].empty());
    for (int pid : read_pids(pids))
      CHECK(eventually([&] { return ::kill(pid, 0) != 0; }, 10s));
  }
}

TEST_CASE("a failing command backs off with growing delays", "[apps][e2e]") {
  AppsWorld w;
  auto launches = w.dir.path() / "launches";
  call(w.http, "POST", "/v2/apps",
       {{"id", "/crash"},
        {"cmd", "date +%s.%N >> " + launches.string() + "; exit 3"},
        {"instances", 1},
        {"cpus", 0.1},
        {"mem", 16},
        {"backoffSeconds", 1},
        {"backoffFactor", 2},
        {"maxLaunchDelaySeconds", 8}},
       201);
  auto starts = [&] {
    std::vector<double> t;
    std::ifstream in(launches);
    for (double s; in >> s;)
      t.push_back(s);
    return t;
  };
  REQUIRE(eventually([&] { return starts().size() >= 4; }, 60s));
  auto t = starts();
  // Failure k waits 1 × 2^(k-1) s before the next launch (1, 2, 4 s), so the
  // gaps between launches grow and are at least those delays.
  std::vector<double> gaps;
  for (size_t k = 1; k < 4; ++k)
    gaps.push_back(t[k] - t[k - 1]);
  INFO("gaps " << gaps[0] << " " << gaps[1] << " " << gaps[2]);
  CHECK(gaps[0] >= 1.0);
  CHECK(gaps[1] >= 2.0);
  CHECK(gaps[2] >= 4.0);
  CHECK(gaps[1] > gaps[0]);
  CHECK(gaps[2] > gaps[1]);
  auto app = app_of(w.http, "/crash");
  CHECK(app["lastTaskFailure"]["state"] == "TASK_FAILED");
  CHECK(app["tessera"]["failures"].get<int>() >= 3);

  // The queue shows the wait; DELETE .../delay ends it at once.
  json item;
  REQUIRE(eventually(
      [&] {
        auto q = call(w.http, "GET", "/v2/queue")["queue"];
        if (q.empty() || q[0]["delay"]["timeLeftSeconds"].get<int>() < 2)
          return false;
        item = q[0];
        return true;
      },
      60s));
  CHECK(item["app"]["id"] == "/crash");
  CHECK(item["count"] == 1);
  CHECK(item["delay"]["overdue"] == false);
  auto n = starts().size();
  auto requested = std::chrono::steady_clock::now();
  call(w.http, "DELETE", "/v2/queue/crash/delay", nullptr, 204);
  REQUIRE(eventually([&] { return starts().size() > n; }, 30s));
  // Launched well before the delay it had left would have passed.
  auto waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - requested).count();
  CHECK(waited < item["delay"]["timeLeftSeconds"].get<double>() + 1);
  call(w.http, "DELETE", "/v2/queue/nope/delay", nullptr, 404);
}

TEST_CASE("a rolling upgrade never drops below the minimum healthy capacity", "[apps][e2e]") {
  AppsWorld w;
  EventLog log(w.http);
  json v1 = {{"id", "/roll"},
             {"cmd", "sleep 1000"},
             {"instances", 3},
             {"cpus", 0.1},
             {"mem", 16},
             {"healthChecks", passing_check()},
             {"upgradeStrategy", {{"minimumHealthCapacity", 0.6}, {"maximumOverCapacity", 0}}}};
  call(w.http, "POST", "/v2/apps", v1, 201);
  REQUIRE(eventually([&] { return settled(w.http, "/roll", 3); }, 60s));
  auto v1_version = app_of(w.http, "/roll")["version"];
  auto start_at = log.events().size();
  json v2 = v1;
  v2["cmd"] = "sleep 1001";
  auto upgraded = call(w.http, "PUT", "/v2/apps/roll", v2);
  auto id = upgraded["deploymentId"].get<std::string>();
  REQUIRE(eventually([&] { return deployment_state(w.http, id) == "success"; }, 90s));
  REQUIRE(settled(w.http, "/roll", 3));
  CHECK(app_of(w.http, "/roll")["version"] != v1_version);

  // Replay the stream: healthy instances at every step, from 3 at the start.
  // min 0.6 × 3 -> 2; over capacity 0: at most 3 launched and not ended.
  std::map<std::string, bool> healthy;
  std::set<std::string> live;
  auto events = log.events();
  // The three v1 instances were healthy when the upgrade began.
  for (size_t k = 0; k < start_at; ++k) {
    const auto& e = events[k];
    if (e.type == "health_status_changed_event")
      healthy[e.data["taskId"]] = e.data["alive"];
  }
  REQUIRE(std::count_if(healthy.begin(), healthy.end(), [](auto& h) { return h.second; }) == 3);
  int lowest = 3, steps = 0;
  for (size_t k = start_at; k < events.size(); ++k) {
    const auto& e = events[k];
    std::string task = e.data.value("taskId", "");
    if (e.type == "health_status_changed_event")
      healthy[task] = e.data["alive"];
    if (e.type == "status_update_event") {
      auto state = e.data["taskStatus"].get<std::string>();
      if (state == "TASK_KILLING" || state == "TASK_KILLED" || state == "TASK_FAILED" ||
          state == "TASK_LOST")
        healthy[task] = false;
      ++steps;
    }
    int now_healthy = static_cast<int>(
        std::count_if(healthy.begin(), healthy.end(), [](auto& h) { return h.second; }));
    lowest = std::min(lowest, now_healthy);
    INFO("event " << k << " " << e.type << " " << e.data.dump());
    REQUIRE(now_healthy >= 2);
  }
  CHECK(steps >= 6);   // three started, three killed at least
  CHECK(lowest == 2);  // the strategy used the room it had
}

TEST_CASE("an upgrade that never becomes healthy fails at its deadline and rolls back",
          "[apps][e2e]") {
  AppsWorld w;
  json v1 = {{"id", "/sick"},
             {"cmd", "sleep 1000"},
             {"instances", 2},
             {"cpus", 0.1},
             {"mem", 16},
             {"healthChecks", passing_check()},
             {"upgradeStrategy", {{"progressDeadlineSeconds", 10}}}};
  call(w.http, "POST", "/v2/apps", v1, 201);
  REQUIRE(eventually([&] { return settled(w.http, "/sick", 2); }, 60s));
  auto good = app_of(w.http, "/sick");
  json v2 = v1;
  v2["cmd"] = "sleep 1002";
  v2["healthChecks"][0]["command"]["value"] = "false";
  v2["healthChecks"][0]["gracePeriodSeconds"] = 1;
  auto id = call(w.http, "PUT", "/v2/apps/sick", v2)["deploymentId"].get<std::string>();
  // A second change while it runs is refused, and says why.
  auto refused = call(w.http, "PUT", "/v2/apps/sick", v1, 409);
  CHECK(refused["deployments"][0]["id"] == id);
  REQUIRE(eventually([&] { return deployment_state(w.http, id) == "failed"; }, 60s));
  auto failed = deployment(w.http, id);
  CHECK(failed["tessera"]["reason"].get<std::string>().find("progressDeadlineSeconds") !=
        std::string::npos);
  // Back on v1, every instance healthy, no v2 instance left.
  REQUIRE(eventually([&] { return settled(w.http, "/sick", 2); }, 60s));
  auto app = app_of(w.http, "/sick");
  CHECK(app["version"] == good["version"]);
  CHECK(app["cmd"] == "sleep 1000");
  CHECK(app["tessera"]["lastGoodVersion"] == good["version"]);
  auto finished = call(w.http, "GET", "/v2/deployments");
  CHECK(finished.empty());
}

TEST_CASE("a canary is promoted, and another is aborted", "[apps][e2e]") {
  AppsWorld w;
  json v1 = {{"id", "/bird"}, {"cmd", "sleep 1000"}, {"instances", 2},
             {"cpus", 0.1},   {"mem", 16},           {"healthChecks", passing_check()}};
  call(w.http, "POST", "/v2/apps", v1, 201);
  REQUIRE(eventually([&] { return settled(w.http, "/bird", 2); }, 60s));
  auto canary_of = [&](const std::string& cmd) {
    json v = v1;
    v["cmd"] = cmd;
    v["upgradeStrategy"] = {{"canaryInstances", 1}};
    auto id = call(w.http, "PUT", "/v2/apps/bird", v)["deploymentId"].get<std::string>();
    REQUIRE(eventually([&] { return deployment_state(w.http, id) == "canary"; }, 60s));
    auto d = deployment(w.http, id);
    CHECK(d["tessera"]["newHealthy"] == 1);
    CHECK(d["tessera"]["oldInstances"] == 2);  // nothing old goes for a canary
    return id;
  };
  auto first = canary_of("sleep 1003");
  CHECK(call(w.http, "POST", "/v2/apps/bird/promote")["deploymentId"] == first);
  REQUIRE(eventually([&] { return deployment_state(w.http, first) == "success"; }, 60s));
  REQUIRE(settled(w.http, "/bird", 2));
  auto promoted = app_of(w.http, "/bird");
  CHECK(promoted["cmd"] == "sleep 1003");

  auto second = canary_of("sleep 1004");
  auto aborted = call(w.http, "POST", "/v2/apps/bird/abort");
  CHECK(deployment_state(w.http, second) == "rolled_back");
  REQUIRE(aborted.contains("deploymentId"));
  REQUIRE(eventually([&] { return settled(w.http, "/bird", 2); }, 60s));
  auto after = app_of(w.http, "/bird");
  CHECK(after["version"] == promoted["version"]);
  CHECK(after["cmd"] == "sleep 1003");
  CHECK(task_ids(after) == task_ids(promoted));  // the promoted instances never went
  call(w.http, "POST", "/v2/apps/bird/promote", nullptr, 409);
  call(w.http, "POST", "/v2/apps/bird/abort", nullptr, 409);
}

TEST_CASE("UNIQUE hostname places one instance per host and says why the rest wait",
          "[apps][e2e]") {
  AppsWorld w({3, "cpus:2;mem:1024", {"host-a", "host-b", "host-c"}, ""});
  call(w.http, "POST", "/v2/apps",
       {{"id", "/uniq"},
        {"cmd", "sleep 1000"},
        {"instances", 5},
        {"cpus", 0.1},
        {"mem", 16},
        {"constraints", json::array({json::array({"hostname", "UNIQUE"})})}},
       201);
  json item;
  REQUIRE(eventually(
      [&] {
        auto app = app_of(w.http, "/uniq");
        auto q = call(w.http, "GET", "/v2/queue")["queue"];
        if (app["tasksRunning"] != 3 || q.empty() ||
            q[0]["tessera"]["declined"]["constraint"].get<int>() == 0)
          return false;
        item = q[0];
        return true;
      },
      60s));
  std::set<std::string> hosts;
  auto placed = app_of(w.http, "/uniq");
  for (const auto& t : placed["tasks"])
    hosts.insert(t["host"].get<std::string>());
  CHECK(hosts == std::set<std::string>{"host-a", "host-b", "host-c"});
  INFO(item.dump(2));
  CHECK(item["count"] == 2);
  CHECK(item["tessera"]["declined"]["hostname:UNIQUE"].get<int>() > 0);
  CHECK(item["tessera"]["declined"]["cpus"] == 0);
  bool said = false;
  for (const auto& why : item["tessera"]["why"])
    said = said || why.get<std::string>().find("constraint hostname:UNIQUE") == 0;
  CHECK(said);
  bool rejected = false;
  for (const auto& r : item["processedOffersSummary"]["rejectSummaryLastOffers"])
    rejected = rejected || (r["reason"] == "UnfulfilledConstraint" && r["declined"] > 0);
  CHECK(rejected);

  // A dry run of more of the same says it does not fit, and why.
  auto plan = call(w.http, "POST", "/v2/plan",
                   {{"id", "/uniq2"},
                    {"cmd", "sleep 1000"},
                    {"instances", 4},
                    {"cpus", 0.1},
                    {"mem", 16},
                    {"constraints", json::array({json::array({"hostname", "UNIQUE"})})}});
  INFO(plan.dump(2));
  CHECK(plan["exists"] == false);
  CHECK(plan["kind"] == "start");
  CHECK(plan["agentsSeen"] == 3);
  CHECK(plan["placeable"] == 3);
  CHECK(plan["fits"] == false);
  REQUIRE(plan["why"].size() >= 1);
  CHECK(plan["why"][0].get<std::string>().find("1 instance(s): constraint hostname:UNIQUE") == 0);
  // Nothing was created by it.
  call(w.http, "GET", "/v2/apps/uniq2", nullptr, 404);
}

TEST_CASE("a definition from Marathon's documentation loads and runs", "[apps][e2e]") {
  AppsWorld w;
  // Marathon's "basic-0" (docs/application-basics), unchanged.
  auto created = call(w.http, "POST", "/v2/apps", json::parse(R"({
      "id": "basic-0",
      "cmd": "while [ true ] ; do echo 'Hello Marathon' ; sleep 5 ; done",
      "cpus": 0.1,
      "mem": 10.0,
      "instances": 1
  })"),
                      201);
  CHECK(created["id"] == "/basic-0");
  REQUIRE(eventually([&] { return settled(w.http, "/basic-0", 1); }, 60s));
  auto app = app_of(w.http, "/basic-0");
  CHECK(app["tasks"][0]["ports"].size() == 1);  // Marathon's default: one dynamic port
  CHECK(app["tasks"][0]["ports"][0].get<int>() >= 31000);
  // GET, change, PUT back: what Marathon reports is accepted as input.
  app["instances"] = 2;
  auto put = call(w.http, "PUT", "/v2/apps/basic-0", app);
  REQUIRE(eventually(
      [&] { return deployment_state(w.http, put["deploymentId"].get<std::string>()) == "success"; },
      60s));
  REQUIRE(settled(w.http, "/basic-0", 2));
  // A scale keeps the running instance: same config.
  CHECK(task_ids(app_of(w.http, "/basic-0")).count(app["tasks"][0]["id"].get<std::string>()) == 1);
}

TEST_CASE("the /v2 API refuses bad input with Marathon's statuses and keeps serving",
          "[apps][e2e]") {
  AppsWorld w;
  auto bad = http::request(w.http, "POST", "/v2/apps", "{not json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  auto invalid = call(w.http, "POST", "/v2/apps",
                      {{"id", "/Bad_Id"}, {"cmd", "true"}, {"cpus", -1}, {"nope", 1}}, 422);
  CHECK(invalid["message"] == "Object is not valid");
  std::set<std::string> paths;
  for (const auto& d : invalid["details"])
    paths.insert(d["path"].get<std::string>());
  CHECK(paths.count("/id"));
  CHECK(paths.count("/cpus"));
  CHECK(paths.count("/nope"));
  call(w.http, "GET", "/v2/apps/none", nullptr, 404);
  call(w.http, "DELETE", "/v2/apps/none", nullptr, 404);
  call(w.http, "GET", "/v2/deployments/none", nullptr, 404);
  call(w.http, "GET", "/v2/nothing", nullptr, 404);
  call(w.http, "PATCH", "/v2/apps/none", {{"instances", 2}}, 404);
  call(w.http, "POST", "/v2/apps",
       {{"id", "/ok"}, {"cmd", "sleep 1000"}, {"cpus", 0.1}, {"mem", 16}}, 201);
  call(w.http, "POST", "/v2/apps",
       {{"id", "/ok"}, {"cmd", "sleep 1000"}, {"cpus", 0.1}, {"mem", 16}}, 409);
  call(w.http, "POST", "/v2/apps", {{"id", "/other"}, {"cmd", "true"}, {"role", "elsewhere"}}, 422);
  REQUIRE(eventually([&] { return settled(w.http, "/ok", 1); }, 60s));
  // PATCH changes one field; a plan of a change names it.
  auto plan = call(w.http, "POST", "/v2/plan",
                   {{"id", "/ok"}, {"cmd", "sleep 1000"}, {"cpus", 0.2}, {"mem", 16}});
  CHECK(plan["kind"] == "upgrade");
  REQUIRE(plan["changes"].size() == 1);
  CHECK(plan["changes"][0]["path"] == "/cpus");
  auto patched = call(w.http, "PATCH", "/v2/apps/ok", {{"instances", 2}});
  REQUIRE(eventually([&] { return settled(w.http, "/ok", 2); }, 60s));
  CHECK(call(w.http, "GET", "/v2/apps/ok/versions")["versions"].size() == 2);
  auto info = call(w.http, "GET", "/v2/info");
  CHECK(info["name"] == "tessera-apps");
  CHECK(info["tessera"]["badRequests"].get<int>() >= 1);
  CHECK(!info["frameworkId"].get<std::string>().empty());
  CHECK(call(w.http, "GET", "/v2/apps?embed=apps.tasks")["apps"][0]["tasks"].size() == 2);
  (void)patched;
}

TEST_CASE("an unreachable instance is replaced, then expunged, and killed when it returns",
          "[apps][e2e]") {
  AppsWorldOptions o;
  o.hostnames = {"host-a", "host-b"};
  // Fast enough for a test, slow enough that a loaded machine (ctest -j,
  // sanitizers) does not cut off the other agent too.
  o.agent_ping_interval = 500ms;
  o.agent_ping_timeout = 1s;
  AppsWorld w(o);
  auto pids = w.dir.path() / "pids";
  call(w.http, "POST", "/v2/apps",
       {{"id", "/far"},
        {"cmd", "echo $$ >> " + pids.string() + "; exec sleep 1000"},
        {"instances", 1},
        {"cpus", 0.1},
        {"mem", 16},
        {"unreachableStrategy", {{"inactiveAfterSeconds", 2}, {"expungeAfterSeconds", 6}}}},
       201);
  REQUIRE(eventually([&] { return settled(w.http, "/far", 1); }, 60s));
  auto first = app_of(w.http, "/far")["tasks"][0];
  auto first_id = first["id"].get<std::string>();
  // Cut its agent off from the master, both ways.
  auto agent = w.cluster->agent_addresses().at(first["host"] == "host-a" ? 0 : 1);
  auto master = w.cluster->master_address();
  auto cut = w.cluster->node().filters().add([agent, master](const Envelope& e) {
    bool between =
        (e.sender == agent && e.receiver == master) || (e.sender == master && e.receiver == agent);
    return between ? FilterAction::Drop() : FilterAction::Pass();
  });
  // Unreachable, then replaced on the other host while still listed...
  REQUIRE(eventually(
      [&] {
        auto app = app_of(w.http, "/far");
        bool away = false, other = false;
        for (const auto& t : app["tasks"]) {
          away = away || (t["id"] == first_id && t["state"] == "TASK_UNREACHABLE");
          other = other || (t["id"] != first_id && t["state"] == "TASK_RUNNING" &&
                            t["host"] != first["host"]);
        }
        return away && other;
      },
      60s));
  // ... then expunged: forgotten by the framework.
  REQUIRE(eventually(
      [&] {
        auto app = app_of(w.http, "/far");
        return app["tasks"].size() == 1 && app["tasks"][0]["id"] != first_id &&
               app["tasksRunning"] == 1;
      },
      60s));
  // Healed: the old task reappears; the framework kills what it no longer
  // knows, so one instance runs.
  w.cluster->node().filters().remove(cut);
  std::vector<int> started;
  {
    std::ifstream in(pids);
    for (int pid; in >> pid;)
      started.push_back(pid);
  }
  REQUIRE(started.size() >= 2);  // the first, and its replacement(s)
  CHECK(eventually([&] { return ::kill(started[0], 0) != 0; }, 60s));
  // The process may end before the framework counts it (the agent's own
  // kill on reregistering, or the framework's racing the check).
  CHECK(eventually(
      [&] { return call(w.http, "GET", "/v2/info")["tessera"]["strangersKilled"].get<int>() >= 1; },
      30s));
  CHECK(eventually([&] { return settled(w.http, "/far", 1); }, 60s));
}

TEST_CASE("a stuck deployment says why, and is cancelled with and without rollback",
          "[apps][e2e]") {
  AppsWorld w;
  json v1 = {{"id", "/stuck"}, {"cmd", "sleep 1000"}, {"instances", 2}, {"cpus", 0.1}, {"mem", 16}};
  call(w.http, "POST", "/v2/apps", v1, 201);
  REQUIRE(eventually([&] { return settled(w.http, "/stuck", 2); }, 60s));
  auto good = app_of(w.http, "/stuck");
  json big = v1;
  big["cpus"] = 100;
  auto id = call(w.http, "PUT", "/v2/apps/stuck", big)["deploymentId"].get<std::string>();
  // No agent has 100 cpus: the queue counts the offers and says so.
  json item;
  REQUIRE(eventually(
      [&] {
        auto q = call(w.http, "GET", "/v2/queue")["queue"];
        if (q.empty() || q[0]["tessera"]["declined"]["cpus"].get<int>() == 0)
          return false;
        item = q[0];
        return true;
      },
      60s));
  INFO(item.dump(2));
  CHECK(item["tessera"]["largestOffer"]["cpus"].get<double>() <= 2);
  CHECK(item["tessera"]["why"][0].get<std::string>().find("cpus: needs 100, the largest offer "
                                                          "had") == 0);
  CHECK(item["tessera"]["declined"]["mem"] == 0);
  auto d = deployment(w.http, id);
  CHECK(d["tessera"]["state"] == "running");
  CHECK(d["tessera"]["oldInstances"] == 2);  // nothing old goes while nothing new is up

  // DELETE: rolls back (a new deployment, back to the version before).
  auto back = call(w.http, "DELETE", "/v2/deployments/" + id);
  CHECK(deployment_state(w.http, id) == "rolled_back");
  REQUIRE(eventually([&] { return settled(w.http, "/stuck", 2); }, 60s));
  CHECK(app_of(w.http, "/stuck")["cpus"] == 0.1);
  CHECK(task_ids(app_of(w.http, "/stuck")) == task_ids(good));
  CHECK(back["version"] == good["version"]);

  // With force: it only stops; the app keeps the new target and its old
  // instances, as Marathon does.
  id = call(w.http, "PUT", "/v2/apps/stuck", big)["deploymentId"].get<std::string>();
  REQUIRE(eventually([&] { return !call(w.http, "GET", "/v2/queue")["queue"].empty(); }, 60s));
  call(w.http, "DELETE", "/v2/deployments/" + id + "?force=true", nullptr, 202);
  CHECK(deployment_state(w.http, id) == "canceled");
  auto after = app_of(w.http, "/stuck");
  CHECK(after["cpus"] == 100);
  CHECK(after["deployments"].empty());
  CHECK(after["tasksRunning"] == 2);
  // And rollback by hand goes to the last fully healthy version.
  auto rolled = call(w.http, "POST", "/v2/apps/stuck/rollback");
  CHECK(rolled["version"] == good["version"]);
  REQUIRE(eventually([&] { return settled(w.http, "/stuck", 2); }, 60s));
  CHECK(app_of(w.http, "/stuck")["cpus"] == 0.1);
}
