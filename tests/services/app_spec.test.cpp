// App definitions of the apps framework: Marathon's field names and
// defaults, and every problem of a bad definition named.

#include "services/apps/app_spec.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace tessera::apps;
using json = nlohmann::json;

namespace {

bool has_problem(const ParsedApp& p, const std::string& path, const std::string& part) {
  return std::any_of(p.problems.begin(), p.problems.end(), [&](const SpecProblem& x) {
    return x.path == path && x.message.find(part) != std::string::npos;
  });
}

std::string all_problems(const ParsedApp& p) {
  std::string out;
  for (auto& x : p.problems)
    out += x.path + ": " + x.message + "\n";
  return out;
}

}  // namespace

TEST_CASE("a minimal app gets Marathon's defaults", "[apps][spec]") {
  auto p = parse_app(json::parse(R"({"id": "shop/web", "cmd": "python3 -m http.server $PORT0"})"));
  INFO(all_problems(p));
  REQUIRE(p.ok());
  const auto& a = p.app;
  CHECK(a.id == "/shop/web");
  CHECK(a.instances == 1);
  CHECK(a.cpus == 1);
  CHECK(a.mem == 128);
  CHECK(a.disk == 0);
  CHECK(a.gpus == 0);
  REQUIRE(a.ports.size() == 1);
  CHECK(a.ports[0].port == 0);
  CHECK(a.backoff_s == 1);
  CHECK(a.backoff_factor == 1.15);
  CHECK(a.max_launch_delay_s == 3600);
  CHECK(a.minimum_health_capacity == 1);
  CHECK(a.maximum_over_capacity == 1);
  CHECK(a.unreachable.enabled);
  CHECK(a.unreachable.inactive_after_s == 300);
  CHECK(a.unreachable.expunge_after_s == 600);
  CHECK(a.kill_selection == KillSelection::youngest_first);
  // Written back with every default, it reads back the same.
  auto again = parse_app(to_json(a));
  INFO(to_json(a).dump());
  REQUIRE(again.ok());
  CHECK(to_json(again.app) == to_json(a));
}

TEST_CASE("an app definition in the shape of Marathon's documentation loads", "[apps][spec]") {
  // Every field as Marathon's REST API documents it, with what Marathon sends
  // back (version, tasksRunning, ...) left in, as a client that GETs and PUTs
  // would send it.
  auto p = parse_app(json::parse(R"({
    "id": "/product/service/my-app",
    "cmd": "env && sleep 300",
    "args": null,
    "instances": 3,
    "cpus": 0.25,
    "mem": 64,
    "disk": 10,
    "gpus": 0,
    "executor": "",
    "constraints": [["hostname", "UNIQUE"], ["rack_id", "GROUP_BY", "3"],
                    ["rack_id", "LIKE", "rack-[1-3]"], ["hostname", "MAX_PER", "2"]],
    "fetch": [{"uri": "https://example.com/app.tgz", "extract": true, "executable": false,
               "cache": false}],
    "dependencies": [],
    "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http", "labels": {"VIP_0": "/web:80"}},
                        {"port": 0, "protocol": "udp,tcp", "name": "admin"}],
    "requirePorts": false,
    "env": {"LD_LIBRARY_PATH": "/usr/local/lib/myLib"},
    "labels": {"environment": "staging"},
    "healthChecks": [
      {"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 300,
       "intervalSeconds": 60, "timeoutSeconds": 20, "maxConsecutiveFailures": 3,
       "ignoreHttp1xx": false},
      {"protocol": "COMMAND", "command": {"value": "curl -f -X GET http://$HOST:$PORT0/health"},
       "maxConsecutiveFailures": 3}],
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 3600,
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
    "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120},
    "killSelection": "OLDEST_FIRST",
    "taskKillGracePeriodSeconds": 10,
    "version": "2026-12-07T12:00:00.000Z",
    "versionInfo": {"lastScalingAt": "2026-12-07T12:00:00.000Z"},
    "tasksStaged": 0, "tasksRunning": 3, "tasksHealthy": 3, "tasksUnhealthy": 0,
    "deployments": []
  })"));
  INFO(all_problems(p));
  REQUIRE(p.ok());
  const auto& a = p.app;
  CHECK(a.id == "/product/service/my-app");
  CHECK(a.instances == 3);
  REQUIRE(a.constraints.size() == 4);
  CHECK(a.constraints[1].op == Constraint::Op::group_by);
  CHECK(a.constraints[1].value == "3");
  REQUIRE(a.ports.size() == 2);
  CHECK(a.ports[0].name == "http");
  CHECK(a.ports[0].labels.at("VIP_0") == "/web:80");
  CHECK(a.ports[1].protocol == "udp,tcp");
  REQUIRE(a.health_checks.size() == 2);
  CHECK(a.health_checks[0].path == "/health");
  CHECK(a.health_checks[1].command.find("curl") == 0);
  CHECK(a.minimum_health_capacity == 0.5);
  CHECK(a.maximum_over_capacity == 0.2);
  CHECK(a.unreachable.inactive_after_s == 60);
  CHECK(a.kill_selection == KillSelection::oldest_first);
  REQUIRE(a.task_kill_grace_period_s);
  CHECK(*a.task_kill_grace_period_s == 10);
  CHECK(a.fetch.size() == 1);
  auto again = parse_app(to_json(a));
  REQUIRE(again.ok());
  CHECK(to_json(again.app) == to_json(a));
}

TEST_CASE("every problem of a bad definition is named with its path", "[apps][spec]") {
  auto p = parse_app(json::parse(R"({
    "id": "/Shop/web_1",
    "cmd": "run", "args": ["run"],
    "instances": -1,
    "cpus": 0,
    "mem": "lots",
    "ports": [8080, 8080],
    "portDefinitions": [{"port": 1}],
    "healthChecks": [{"protocol": "HTTP", "portIndex": 5}, {"protocol": "COMMAND"},
                     {"protocol": "GOPHER"}],
    "constraints": [["hostname", "UNIQUE", "x"], ["rack", "MAX_PER"], ["rack", "LIKE", "("],
                    ["rack", "NEAR", "x"], "hostname:UNIQUE"],
    "upgradeStrategy": {"minimumHealthCapacity": 1.5},
    "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 30},
    "killSelection": "RANDOM",
    "container": {"type": "DOCKER", "docker": {"image": "nginx"}},
    "colour": "blue",
    "env": {"A": 1}
  })"));
  INFO(all_problems(p));
  CHECK(has_problem(p, "/id", "is not a path"));
  CHECK(has_problem(p, "/args", "give cmd or args, not both"));
  CHECK(has_problem(p, "/instances", "between 0 and"));
  CHECK(has_problem(p, "/cpus", "between 0.001"));
  CHECK(has_problem(p, "/mem", "must be a number"));
  CHECK(has_problem(p, "/portDefinitions", "not both"));
  CHECK(has_problem(p, "/constraints/0", "UNIQUE takes no value"));
  CHECK(has_problem(p, "/constraints/1", "MAX_PER needs a value"));
  CHECK(has_problem(p, "/constraints/2", "not a valid regular expression"));
  CHECK(has_problem(p, "/constraints/3", "unknown operator 'NEAR'"));
  CHECK(has_problem(p, "/constraints/4", "[field, operator]"));
  CHECK(has_problem(p, "/healthChecks/1/command", "needs"));
  CHECK(has_problem(p, "/healthChecks/2/protocol", "must be HTTP"));
  CHECK(has_problem(p, "/upgradeStrategy/minimumHealthCapacity", "between 0 and 1"));
  CHECK(has_problem(p, "/unreachableStrategy/expungeAfterSeconds", "not be less than"));
  CHECK(has_problem(p, "/killSelection", "YOUNGEST_FIRST or OLDEST_FIRST"));
  CHECK(has_problem(p, "/container", "not supported"));
  CHECK(has_problem(p, "/colour", "unknown field"));
  CHECK(has_problem(p, "/env/A", "must be a string"));

  // Ports given twice, and a health check on a port the app does not have.
  auto ports = parse_app(json::parse(
      R"({"id": "/a", "cmd": "x", "ports": [8080, 8080],
          "healthChecks": [{"protocol": "TCP", "portIndex": 2}]})"));
  CHECK(has_problem(ports, "/ports/1", "given twice"));
  CHECK(has_problem(ports, "/healthChecks/0/portIndex", "no port index 2"));

  // Marathon's 422 body groups the problems by path.
  auto body = problems_json(p.problems);
  CHECK(body["message"] == "Object is not valid");
  CHECK(body["details"].size() >= 15);
  CHECK(body["details"][0].contains("errors"));

  CHECK(has_problem(parse_app(json::parse("[1]")), "", "must be a JSON object"));
  CHECK(has_problem(parse_app(json::parse(R"({"cmd": "x"})")), "/id", "needs an id"));
  CHECK(has_problem(parse_app(json::parse(R"({"id": "/a"})")), "/cmd", "needs cmd or args"));
  CHECK(has_problem(parse_app(json::parse(R"({"id": "/a", "args": ["x"], "requirePorts": true})")),
                    "/requirePorts", "every port fixed"));
}

TEST_CASE("what Marathon fills in itself reads back, and odd inputs are judged by value",
          "[apps][spec]") {
  auto p = parse_app(json::parse(R"({"id": "/a", "cmd": "x", "instances": 3.0,
                                     "networks": [{"mode": "host"}],
                                     "acceptedResourceRoles": ["*"]})"));
  INFO(all_problems(p));
  REQUIRE(p.ok());
  CHECK(p.app.instances == 3);
  auto bad = parse_app(json::parse(R"({"id": "/a", "cmd": "x", "instances": 2.5,
      "networks": [{"mode": "container", "name": "dcos"}],
      "healthChecks": [{"protocol": "TCP", "intervalSeconds": 0}],
      "constraints": [["rack", "CLUSTER", ""]],
      "labels": {"a/b": 1}})"));
  INFO(all_problems(bad));
  CHECK(has_problem(bad, "/instances", "whole number"));
  CHECK(has_problem(bad, "/networks", "not supported"));
  CHECK(has_problem(bad, "/healthChecks/0/intervalSeconds", "between 1"));
  CHECK(has_problem(bad, "/constraints/0", "CLUSTER needs a value"));
  CHECK(has_problem(bad, "/labels/a~1b", "must be a string"));
}

TEST_CASE("app ids are paths of lower-case segments", "[apps][spec]") {
  CHECK(normalize_app_id("web") == "/web");
  CHECK(normalize_app_id("/shop/web-1.v2") == "/shop/web-1.v2");
  CHECK(normalize_app_id("shop/web/") == "/shop/web");
  CHECK(normalize_app_id("/") == "");
  CHECK(normalize_app_id("/shop//web") == "");
  CHECK(normalize_app_id("/-web") == "");
  CHECK(normalize_app_id("/web.") == "");
  CHECK(normalize_app_id("/Web") == "");
  CHECK(normalize_app_id("/../web") == "");
  CHECK(normalize_app_id(std::string(300, 'a')) == "");
}

TEST_CASE("a disabled unreachable strategy and the older uris field load", "[apps][spec]") {
  auto p = parse_app(json::parse(R"({"id": "/a", "cmd": "x", "unreachableStrategy": "disabled",
                                     "uris": ["http://example.com/a.tgz"], "ports": []})"));
  INFO(all_problems(p));
  REQUIRE(p.ok());
  CHECK_FALSE(p.app.unreachable.enabled);
  REQUIRE(p.app.fetch.size() == 1);
  CHECK(p.app.fetch[0].uri == "http://example.com/a.tgz");
  CHECK(p.app.ports.empty());
  CHECK(to_json(p.app)["unreachableStrategy"] == "disabled");
}
