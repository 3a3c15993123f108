// The operator's window, as an operator uses it: `tessera cluster` with its
// HTTP API, the event stream, metrics, and the CLI commands, all real
// processes on 127.0.0.1.

#include "e2e/cluster_process.hpp"
#include "services/http/client.hpp"
#include "services/http/recordio.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <mutex>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

using Cluster = ClusterProcess;

// Only the frameworks each test starts (not the apps or jobs one).
Cluster start_cluster(const TempDir& dir, int agents = 2) {
  return start_cluster_process(dir.path(), agents, {"--no-apps", "--no-jobs"});
}

json call(const std::string& http, const json& body, int expect_status = 200) {
  auto r = http::request(http, "POST", "/api/v1", body.dump());
  REQUIRE(r);
  INFO(body.dump() << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == expect_status);
  return json::parse(r->body);
}

// The cluster's agents must have registered before a task can run.
// (the API answers 503 until its state view has the master's snapshot).
void wait_agents(const std::string& http, size_t n) {
  REQUIRE(wait_until(
      [&] {
        auto r = http::request(http, "POST", "/api/v1", R"({"type":"GET_AGENTS"})");
        return r && r->status == 200 && json::parse(r->body)["get_agents"]["agents"].size() == n;
      },
      30s));
}

// Collects a SUBSCRIBE stream's records on a thread of its own. The thread
// is detached when the subscription goes (it ends at the next record or
// heartbeat, or with the server), so what it writes is shared, not ours.
class Subscription {
 public:
  explicit Subscription(std::string http, json body = {{"type", "SUBSCRIBE"}}) {
    std::thread([seen = seen_, http, body] {
      http::RecordIoReader reader;
      http::stream(http, "POST", "/api/v1", body.dump(), [&](std::string_view b) {
        reader.feed(b);
        while (auto r = reader.next()) {
          std::lock_guard lock(seen->mu);
          seen->events.push_back(json::parse(*r));
        }
        return !seen->stop.load();
      });
    }).detach();
  }
  ~Subscription() { seen_->stop = true; }
  std::vector<json> events() const {
    std::lock_guard lock(seen_->mu);
    return seen_->events;
  }
  // The first event of type whose task (or status) names task_state.
  bool saw(const std::string& type, const std::string& state = "") const {
    for (auto& e : events())
      if (e.value("type", "") == type &&
          (state.empty() || e.dump().find("\"" + state + "\"") != std::string::npos))
        return true;
    return false;
  }

 private:
  struct Seen {
    std::mutex mu;
    std::vector<json> events;
    std::atomic<bool> stop{false};
  };
  std::shared_ptr<Seen> seen_ = std::make_shared<Seen>();
};

std::string id_of(const json& j) {
  return j.is_object() ? j.value("value", "") : j.get<std::string>();
}

// The id of the first agent GET_AGENTS lists.
std::string first_agent_id(const std::string& http) {
  return id_of(call(http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0]["agent_info"]["id"]);
}

std::unique_ptr<ChildProcess> run_tessera(std::vector<std::string> args) {
  args.insert(args.begin(), TESSERA_BIN);
  return ChildProcess::start(std::move(args));
}

// The value of a Prometheus sample line (name and labels as written).
std::optional<double> sample(const std::string& text, const std::string& name_and_labels) {
  auto at = text.find("\n" + name_and_labels + " ");
  if (at == std::string::npos)
    return std::nullopt;
  at += name_and_labels.size() + 2;
  return std::stod(text.substr(at, text.find('\n', at) - at));
}

}  // namespace

TEST_CASE("the master's API lists agents, frameworks and tasks, and streams every change in order",
          "[e2e][api]") {
  TempDir dir;
  auto c = start_cluster(dir);
  wait_agents(c.http, 2);
  auto agents = call(c.http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"];
  for (auto& a : agents) {
    CHECK(a["state"] == "REGISTERED");
    CHECK(a["drain_info"]["state"] == "NONE");
  }
  Subscription sub(c.http);
  REQUIRE(wait_until([&] { return sub.saw("SUBSCRIBED"); }, 10s));

  auto run = run_tessera({"run", "--master", c.master, "--name", "api-probe", "--", "sh", "-c",
                          "echo started; sleep 2"});
  // While it runs, every read shows it.
  REQUIRE(wait_until(
      [&] {
        auto tasks =
            call(c.http, {{"type", "GET_TASKS"}, {"get_tasks", {{"state", "TASK_RUNNING"}}}});
        return tasks["get_tasks"]["tasks"].size() == 1;
      },
      30s));
  auto running = call(c.http, {{"type", "GET_TASKS"}})["get_tasks"]["tasks"][0];
  CHECK(running["name"] == "api-probe");
  auto task_id = id_of(running["task_id"]);
  auto framework_id = id_of(running["framework_id"]);
  auto frameworks = call(c.http, {{"type", "GET_FRAMEWORKS"}})["get_frameworks"]["frameworks"];
  REQUIRE(frameworks.size() == 1);
  CHECK(id_of(frameworks[0]["framework_info"]["id"]) == framework_id);
  CHECK(frameworks[0]["connected"] == true);
  auto state = call(c.http, {{"type", "GET_STATE"}})["get_state"];
  CHECK(state["get_tasks"]["tasks"].size() == 1);
  CHECK(state["get_agents"]["agents"].size() == 2);
  auto roles = call(c.http, {{"type", "GET_ROLES"}})["get_roles"]["roles"];
  REQUIRE(roles.size() >= 1);
  CHECK(roles[0]["name"] == "*");
  // Filters and paging.
  CHECK(call(c.http, {{"type", "GET_TASKS"},
                      {"get_tasks", {{"framework_id", "nobody"}}}})["get_tasks"]["total"] == 0);
  CHECK(call(c.http, {{"type", "GET_TASKS"}, {"get_tasks", {{"offset", 1}}}})["get_tasks"]["tasks"]
            .empty());

  REQUIRE(run->wait_exit(60s));
  CHECK(run->exit_status()->exit_code == 0);
  REQUIRE(wait_until([&] { return sub.saw("TASK_UPDATED", "TASK_FINISHED"); }, 20s));
  auto events = sub.events();
  // Numbered from 0 with no gap, and the task's life in order.
  std::vector<std::string> task_states;
  for (size_t i = 0; i < events.size(); ++i) {
    INFO(events[i].dump());
    CHECK(events[i]["sequence"] == i);
    if (events[i]["type"] == "TASK_UPDATED")
      task_states.push_back(events[i]["task_updated"]["state"]);
  }
  CHECK(events[0]["type"] == "SUBSCRIBED");
  CHECK(sub.saw("FRAMEWORK_ADDED"));
  CHECK(sub.saw("TASK_ADDED", "TASK_STAGING"));
  REQUIRE(task_states.size() >= 2);
  CHECK(task_states.back() == "TASK_FINISHED");
  CHECK(std::find(task_states.begin(), task_states.end(), "TASK_RUNNING") != task_states.end());
  // Once its framework has gone the task is among the completed ones.
  REQUIRE(wait_until(
      [&] {
        return call(c.http, {{"type", "GET_TASKS"}})["get_tasks"]["completed_tasks"].size() == 1;
      },
      20s));
  auto done = call(c.http, {{"type", "GET_TASKS"}})["get_tasks"]["completed_tasks"][0];
  CHECK(done["state"] == "TASK_FINISHED");
  std::vector<std::string> history;
  for (auto& s : done["statuses"])
    history.push_back(s["state"]);
  CHECK(history.front() == "TASK_STAGING");
  CHECK(history.back() == "TASK_FINISHED");
  // GET_STATE, rendered while the task ran, is rendered anew: the task has
  // left the live tasks for the completed ones.
  state = call(c.http, {{"type", "GET_STATE"}})["get_state"];
  CHECK(state["get_tasks"]["tasks"].empty());
  REQUIRE(state["get_tasks"]["completed_tasks"].size() == 1);
  CHECK(state["get_tasks"]["completed_tasks"][0]["state"] == "TASK_FINISHED");
  // While nothing changes, a GET_STATE reuses the last rendering.
  auto snapshot = [&] {
    auto r = http::request(c.http, "GET", "/metrics/snapshot", "");
    REQUIRE(r);
    return json::parse(r->body);
  };
  auto reuses = snapshot()["master/state_reuses"].get<double>();
  REQUIRE(wait_until(
      [&] {
        call(c.http, {{"type", "GET_STATE"}});
        return snapshot()["master/state_reuses"].get<double>() > reuses;
      },
      10s));
  CHECK(snapshot()["master/state_renders"].get<double>() >= 2);

  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
  CHECK(c.process->exit_status()->exit_code == 0);
}

TEST_CASE("bad API calls get a 400 that says what is wrong, are counted, and change nothing",
          "[e2e][api]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto raw = [&](const std::string& method, const std::string& path, const std::string& body) {
    auto r = http::request(c.http, method, path, body);
    REQUIRE(r);
    return *r;
  };
  auto bad = raw("POST", "/api/v1", "{not json");
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body)["error"].get<std::string>().find("bad JSON") != std::string::npos);
  CHECK(raw("POST", "/api/v1", "[1,2]").status == 400);
  CHECK(raw("POST", "/api/v1", R"({"type": 7})").status == 400);
  auto unknown = raw("POST", "/api/v1", R"({"type": "GET_UNICORNS"})");
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("GET_UNICORNS") != std::string::npos);
  auto wrong = raw("POST", "/api/v1", R"({"type": "GET_TASKS", "get_tasks": {"state": 3}})");
  CHECK(wrong.status == 400);
  CHECK(wrong.body.find("state") != std::string::npos);
  CHECK(raw("POST", "/api/v1", R"({"type": "GET_TASKS", "get_tasks": {"limit": -1}})").status ==
        400);
  CHECK(raw("POST", "/api/v1", R"({"type": "GET_TASKS", "get_tasks": "all"})").status == 400);
  CHECK(raw("POST", "/api/v1", R"({"type": "UPDATE_WEIGHTS", "update_weights": {}})").status ==
        400);
  auto no_agent =
      raw("POST", "/api/v1", R"({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": "nope"}})");
  CHECK(no_agent.status == 404);
  CHECK(no_agent.body.find("nope") != std::string::npos);
  CHECK(raw("GET", "/api/v1", "").status == 405);
  CHECK(raw("GET", "/no/such/thing", "").status == 404);
  // Still serving, and every refusal counted.
  call(c.http, {{"type", "GET_HEALTH"}});
  auto metrics = raw("GET", "/metrics", "");
  REQUIRE(metrics.status == 200);
  INFO(metrics.body);
  CHECK(sample(metrics.body, "tessera_master_api_bad_calls_total").value_or(0) >= 3);
  CHECK(sample(metrics.body, "tessera_http_bad_requests_total").value_or(0) >= 3);
  CHECK(sample(metrics.body, "tessera_master_agents{state=\"registered\"}") == 1);
  CHECK(sample(metrics.body, "tessera_master_invalid_calls_total").value_or(0) >= 1);
  CHECK(metrics.body.find("tessera_master_allocation_cycle_ms_bucket") != std::string::npos);
  auto snapshot = json::parse(raw("GET", "/metrics/snapshot", "").body);
  CHECK(snapshot["master/slaves_connected"] == 1);
  CHECK(snapshot["master/cpus_total"] == 2);
  CHECK(snapshot["master/tasks_running"] == 0);
  CHECK(snapshot["master/elected"] == 1);
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("reads are served by the state view, never by the master", "[e2e][api]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto received = [&](const std::string& type) {
    auto r = http::request(c.http, "GET", "/metrics", "");
    REQUIRE(r);
    return sample(r->body, "tessera_messages_received_total{type=\"" + type + "\"}").value_or(0);
  };
  auto operator_calls = received("OperatorCall");
  auto subscribes = received("SubscribeMasterEvents");
  for (int i = 0; i < 200; ++i)
    call(c.http, {{"type", i % 2 ? "GET_STATE" : "GET_TASKS"}});
  // Each scrape asks the master for its counters (one message), and nothing
  // else reached it.
  CHECK(received("OperatorCall") == operator_calls);
  CHECK(received("SubscribeMasterEvents") == subscribes);
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("the CLI sets quota and weights, lists what the API lists, and says when it cannot",
          "[e2e][api][cli]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--master", c.http});
    auto p = run_tessera(std::move(args));
    REQUIRE(p->wait_exit(30s));
    return p;
  };
  auto quota = run({"quota", "set", "dev", "--cpus", "1", "--mem", "256"});
  INFO(quota->out() << quota->err());
  CHECK(quota->exit_status()->exit_code == 0);
  auto weights = run({"weights", "set", "dev=2.5", "ops=1"});
  CHECK(weights->exit_status()->exit_code == 0);
  auto roles = run({"roles", "--json"});
  REQUIRE(roles->exit_status()->exit_code == 0);
  auto list = json::parse(roles->out())["get_roles"]["roles"];
  bool found = false;
  for (auto& r : list)
    if (r["name"] == "dev") {
      found = true;
      CHECK(r["weight"] == 2.5);
      REQUIRE(r.contains("quota"));
      CHECK(r["quota"]["limit"].dump().find("\"cpus\"") != std::string::npos);
    }
  CHECK(found);
  auto table = run({"roles"});
  CHECK(table->out().find("dev") != std::string::npos);
  CHECK(table->out().find("cpus:1") != std::string::npos);
  auto agents = run({"agents"});
  CHECK(agents->exit_status()->exit_code == 0);
  CHECK(agents->out().find("REGISTERED") != std::string::npos);
  // Refusals: a bad weight is a bad command line (2); a refused call and an
  // unreachable master are failures (1), each one clear line.
  auto bad = run({"weights", "set", "dev=zero"});
  CHECK(bad->exit_status()->exit_code == 2);
  CHECK(bad->err().find("ROLE=WEIGHT") != std::string::npos);
  auto refused = run({"quota", "set", "bad role!", "--cpus", "1"});
  CHECK(refused->exit_status()->exit_code == 1);
  CHECK(refused->err().find("bad role") != std::string::npos);
  auto away = run_tessera({"agents", "--master", "127.0.0.1:1"});
  REQUIRE(away->wait_exit(30s));
  CHECK(away->exit_status()->exit_code == 1);
  auto said = away->err();
  CHECK(said.find("cannot reach the master at 127.0.0.1:1") != std::string::npos);
  CHECK(std::count(said.begin(), said.end(), '\n') == 1);
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("draining an agent kills its tasks and offers nothing of it until it is reactivated",
          "[e2e][api][cli]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto agent = first_agent_id(c.http);
  auto task = run_tessera({"run", "--master", c.master, "--", "sleep", "120"});
  REQUIRE(wait_until(
      [&] {
        return call(c.http, {{"type", "GET_TASKS"},
                             {"get_tasks", {{"state", "TASK_RUNNING"}}}})["get_tasks"]["total"] ==
               1;
      },
      30s));
  Subscription sub(c.http);
  auto drain = run_tessera({"agent", "drain", agent, "--master", c.http, "--grace", "1"});
  REQUIRE(drain->wait_exit(30s));
  INFO(drain->out() << drain->err());
  CHECK(drain->exit_status()->exit_code == 0);
  // The task is killed, and the agent is drained once nothing runs there.
  REQUIRE(task->wait_exit(60s));
  CHECK(task->exit_status()->exit_code != 0);
  CHECK(task->err().find("TASK_KILLED") != std::string::npos);
  REQUIRE(wait_until(
      [&] {
        auto a = call(c.http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0];
        return a["drain_info"]["state"] == "DRAINED";
      },
      30s));
  CHECK(sub.saw("AGENT_UPDATED", "DRAINING"));
  CHECK(sub.saw("AGENT_UPDATED", "DRAINED"));
  auto maintenance = call(c.http, {{"type", "GET_MAINTENANCE_STATUS"}});
  CHECK(maintenance["get_maintenance_status"]["status"]["draining_machines"].size() == 1);
  // Nothing is offered of a drained agent.
  auto offers = [&] {
    auto snapshot = http::request(c.http, "GET", "/metrics/snapshot", "");
    REQUIRE(snapshot);
    return json::parse(snapshot->body)["master/outstanding_offers"].get<double>();
  };
  auto waiting = run_tessera({"run", "--master", c.master, "--", "echo", "after-drain"});
  REQUIRE(wait_until(
      [&] {
        return call(c.http, {{"type", "GET_FRAMEWORKS"}})["get_frameworks"]["frameworks"].size() ==
               1;
      },
      30s));
  std::this_thread::sleep_for(1s);  // several allocation cycles (0.2 s each)
  CHECK(offers() == 0);
  CHECK(!waiting->wait_exit(1ms));
  auto reactivate = run_tessera({"agent", "reactivate", agent, "--master", c.http});
  REQUIRE(reactivate->wait_exit(30s));
  CHECK(reactivate->exit_status()->exit_code == 0);
  REQUIRE(waiting->wait_exit(60s));
  CHECK(waiting->out() == "after-drain\n");
  CHECK(call(c.http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0]["drain_info"]["state"] ==
        "NONE");
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("tessera task kill, events and top follow the cluster", "[e2e][api][cli]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto events = run_tessera({"events", "--master", c.http});
  REQUIRE(events->wait_line("SUBSCRIBED", 20s));
  auto task = run_tessera({"run", "--master", c.master, "--", "sleep", "120"});
  std::string id;
  REQUIRE(wait_until(
      [&] {
        auto t = call(c.http, {{"type", "GET_TASKS"}, {"get_tasks", {{"state", "TASK_RUNNING"}}}});
        if (t["get_tasks"]["tasks"].empty())
          return false;
        id = id_of(t["get_tasks"]["tasks"][0]["task_id"]);
        return true;
      },
      30s));
  auto top = run_tessera({"top", "--master", c.http, "--iterations", "1"});
  REQUIRE(top->wait_exit(30s));
  INFO(top->out() << top->err());
  CHECK(top->out().find("tessera top") != std::string::npos);
  CHECK(top->out().find(id) != std::string::npos);
  auto tasks = run_tessera({"tasks", "--state", "running", "--master", c.http});
  REQUIRE(tasks->wait_exit(30s));
  CHECK(tasks->out().find(id) != std::string::npos);
  auto kill = run_tessera({"task", "kill", id, "--master", c.http});
  REQUIRE(kill->wait_exit(30s));
  CHECK(kill->exit_status()->exit_code == 0);
  REQUIRE(task->wait_exit(60s));
  CHECK(task->err().find("TASK_KILLED") != std::string::npos);
  CHECK(events->wait_line("TASK_UPDATED " + id + ": TASK_KILLED", 30s));
  INFO(events->out());
  CHECK(events->out().find("0 SUBSCRIBED") != std::string::npos);
  CHECK(events->out().find("TASK_ADDED " + id) != std::string::npos);
  events->kill(SIGTERM);
  REQUIRE(events->wait_exit(30s));
  auto counted = run_tessera({"events", "--master", c.http, "--count", "1", "--json"});
  REQUIRE(counted->wait_exit(30s));
  CHECK(counted->exit_status()->exit_code == 0);
  CHECK(json::parse(counted->out())["type"] == "SUBSCRIBED");
  auto unknown = run_tessera({"task", "kill", "no-such-task", "--master", c.http});
  REQUIRE(unknown->wait_exit(30s));
  CHECK(unknown->exit_status()->exit_code == 1);
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("an operator reserves an agent's resources for a role and unreserves them",
          "[e2e][api][cli][reservations]") {
  TempDir dir;
  auto c = start_cluster(dir, 1);
  wait_agents(c.http, 1);
  auto agent = first_agent_id(c.http);
  Subscription sub(c.http);
  // Subscribed before the change, so it arrives as an AGENT_UPDATED.
  REQUIRE(wait_until([&] { return sub.saw("SUBSCRIBED"); }, 10s));
  // Mesos's form: each resource names its reservation.
  auto web = json::array({{{"type", "DYNAMIC"}, {"role", "web"}}});
  call(c.http, {{"type", "RESERVE_RESOURCES"},
                {"reserve_resources",
                 {{"agent_id", {{"value", agent}}},
                  {"resources",
                   {{{"name", "cpus"},
                     {"type", "SCALAR"},
                     {"scalar", {{"value", 1.5}}},
                     {"reservations", web}},
                    {{"name", "mem"},
                     {"type", "SCALAR"},
                     {"scalar", {{"value", 512}}},
                     {"reservations", web}}}}}}});
  auto a = call(c.http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0];
  INFO(a.dump());
  auto scalar = [](const json& resources, const std::string& name, const std::string& role) {
    double sum = 0;
    for (auto& r : resources)
      if (r["name"] == name && r["role"] == role)
        sum += r["scalar"]["value"].get<double>();
    return sum;
  };
  CHECK(scalar(a["dynamic_reservations"], "cpus", "web") == 1.5);
  CHECK(scalar(a["total_resources"], "cpus", "web") == 1.5);
  CHECK(scalar(a["total_resources"], "cpus", "*") == 0.5);
  CHECK(scalar(a["total_resources"], "mem", "web") == 512);
  REQUIRE(wait_until([&] { return sub.saw("AGENT_UPDATED", "web"); }, 10s));
  json roles = call(c.http, {{"type", "GET_ROLES"}})["get_roles"]["roles"];
  auto role = std::find_if(roles.begin(), roles.end(), [](auto& r) { return r["name"] == "web"; });
  REQUIRE(role != roles.end());
  CHECK(scalar((*role)["reserved"], "cpus", "web") == 1.5);

  // Another role cannot use the reservation; its own role can.
  auto other = run_tessera({"run", "--master", c.master, "--role", "batch", "--cpus", "1",
                            "--timeout", "2", "--", "true"});
  REQUIRE(other->wait_exit(60s));
  CHECK(other->exit_status()->exit_code != 0);
  auto mine = run_tessera({"run", "--master", c.master, "--role", "web", "--cpus", "1.5", "--mem",
                           "64", "--", "echo", "on-reserved"});
  REQUIRE(mine->wait_exit(60s));
  INFO(mine->err());
  CHECK(mine->out() == "on-reserved\n");

  // Refusals say what was wrong.
  auto bad = [&](const std::string& type, const json& resources, int status, const char* why) {
    auto key = type == "RESERVE_RESOURCES" ? "reserve_resources" : "unreserve_resources";
    auto answer = call(
        c.http, {{"type", type}, {key, {{"agent_id", agent}, {"resources", resources}}}}, status);
    INFO(answer.dump());
    CHECK(answer.dump().find(why) != std::string::npos);
  };
  bad("RESERVE_RESOURCES", "cpus:1", 400, "must name the role");
  bad("RESERVE_RESOURCES", "cpus(web):9", 400, "does not have cpus:9");
  bad("RESERVE_RESOURCES", json::array({{{"name", "cpus"}, {"type", "SCALAR"}}}), 400,
      "a scalar needs");
  bad("UNRESERVE_RESOURCES", "cpus(web):2", 400, "no dynamic reservation of cpus(web):2");
  call(c.http,
       {{"type", "RESERVE_RESOURCES"},
        {"reserve_resources", {{"agent_id", "S-none"}, {"resources", "cpus(web):1"}}}},
       404);

  // The CLI: bad usage is 2 without a call; unreserving returns it all.
  auto usage = run_tessera({"agent", "reserve", agent, "cpus:1", "--master", c.http});
  REQUIRE(usage->wait_exit(30s));
  CHECK(usage->exit_status()->exit_code == 2);
  CHECK(usage->err().find("each with a role") != std::string::npos);
  auto unreserve =
      run_tessera({"agent", "unreserve", agent, "cpus(web):1.5;mem(web):512", "--master", c.http});
  REQUIRE(unreserve->wait_exit(30s));
  INFO(unreserve->out() << unreserve->err());
  CHECK(unreserve->exit_status()->exit_code == 0);
  CHECK(unreserve->out().find("unreserved cpus(web):1.5;mem(web):512 on agent " + agent) !=
        std::string::npos);
  a = call(c.http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0];
  CHECK(a["dynamic_reservations"].empty());
  CHECK(scalar(a["total_resources"], "cpus", "*") == 2);
  auto table = run_tessera({"agents", "--master", c.http});
  REQUIRE(table->wait_exit(30s));
  CHECK(table->out().find("RESERVED FOR") != std::string::npos);
  c.process->kill(SIGINT);
  REQUIRE(c.process->wait_exit(30s));
}

TEST_CASE("a drained agent stays drained, its reservations kept, across a kill -9 of the master",
          "[e2e][api][registry]") {
  TempDir dir;
  auto master_dir = (dir.path() / "master").string();
  auto start_master = [&](const std::string& listen) {
    auto m = run_tessera({"--log-level", "info", "master", "--listen", listen, "--http",
                          "127.0.0.1:0", "--work-dir", master_dir, "--allocation-interval", "0.2"});
    auto line = m->wait_line("tessera master listening on master@");
    auto http = m->wait_line("HTTP API and web UI on http://");
    INFO(m->out() << m->err());
    REQUIRE(line);
    REQUIRE(http);
    auto at = line->find("master@") + 7;
    auto h = http->find("http://") + 7;
    return std::make_tuple(std::move(m), line->substr(at, line->find(' ', at) - at),
                           http->substr(h, http->find('/', h) - h));
  };
  auto [master, at, http] = start_master("127.0.0.1:0");
  auto agent =
      run_tessera({"agent", "--master", at, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                   "--work-dir", (dir.path() / "agent").string(), "--resources", "cpus:1;mem:256"});
  wait_agents(http, 1);
  auto id = first_agent_id(http);
  auto reserve = run_tessera({"agent", "reserve", id, "cpus(web):0.5", "--master", http});
  REQUIRE(reserve->wait_exit(30s));
  REQUIRE(reserve->exit_status()->exit_code == 0);
  auto drain = run_tessera({"agent", "drain", id, "--master", http});
  REQUIRE(drain->wait_exit(30s));
  REQUIRE(drain->exit_status()->exit_code == 0);
  REQUIRE(wait_until(
      [&] {
        return call(http,
                    {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0]["drain_info"]["state"] ==
               "DRAINED";
      },
      30s));

  // kill -9, and a new master on the same port and registry: the agent
  // comes back drained, and nothing of it is offered.
  master->kill(SIGKILL);
  REQUIRE(master->wait_exit(10s));
  auto [again, again_at, again_http] = start_master(at);
  CHECK(again_at == at);
  REQUIRE(wait_until(
      [&] {
        auto r = http::request(again_http, "POST", "/api/v1", R"({"type":"GET_AGENTS"})");
        if (!r || r->status != 200)
          return false;
        auto agents = json::parse(r->body)["get_agents"]["agents"];
        return agents.size() == 1 && agents[0]["state"] == "REGISTERED";
      },
      60s));
  auto back = call(again_http, {{"type", "GET_AGENTS"}})["get_agents"]["agents"][0];
  INFO(back.dump());
  CHECK(back["drain_info"]["state"] == "DRAINED");
  CHECK(back["deactivated"] == true);
  REQUIRE(back["dynamic_reservations"].size() == 1);
  CHECK(back["dynamic_reservations"][0]["role"] == "web");
  CHECK(back["dynamic_reservations"][0]["scalar"]["value"] == 0.5);
  CHECK(again->err().find("drained by an operator before this master started") !=
        std::string::npos);
  auto waiting = run_tessera({"run", "--master", again_at, "--timeout", "2", "--", "true"});
  REQUIRE(waiting->wait_exit(60s));
  CHECK(waiting->exit_status()->exit_code != 0);  // no offer came
  // Reactivated, it is offered again, and that too is recorded.
  auto reactivate = run_tessera({"agent", "reactivate", id, "--master", again_http});
  REQUIRE(reactivate->wait_exit(30s));
  CHECK(reactivate->exit_status()->exit_code == 0);
  auto ran = run_tessera({"run", "--master", again_at, "--", "echo", "offered-again"});
  REQUIRE(ran->wait_exit(60s));
  INFO(ran->err());
  CHECK(ran->out() == "offered-again\n");
  agent->kill(SIGTERM);
  REQUIRE(agent->wait_exit(30s));
  again->kill(SIGINT);
  REQUIRE(again->wait_exit(30s));
}
