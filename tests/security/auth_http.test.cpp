// Authenticated HTTP (issue #14), as an operator meets it: `tessera cluster`
// started with --credentials and --acls, tokens made by `tessera token
// create`, and the master's operator API, the apps API, an agent's sandbox
// files, /metrics and the CLI called without a token, with a read-only one
// and with one that may write: 401, 403 and 200.

#include "e2e/cluster_process.hpp"
#include "services/http/client.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// reader: sees everything, changes nothing. writer: everything. analyst:
// only the frameworks and tasks of role analytics (no agents, no metrics).
// Frameworks (tessera run, the apps framework) reach this plaintext cluster
// unauthenticated: they may register in any role and run tasks as anyone.
const char* acls_json = R"({
  "register_frameworks": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}],
  "run_tasks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}],
  "view_cluster": [{"principals": {"values": ["reader", "writer"]}}],
  "view_frameworks": [
    {"principals": {"values": ["reader", "writer"]}, "roles": {"type": "ANY"}},
    {"principals": {"values": ["analyst"]}, "roles": {"values": ["analytics"]}}
  ],
  "view_tasks": [
    {"principals": {"values": ["reader", "writer"]}, "roles": {"type": "ANY"}},
    {"principals": {"values": ["analyst"]}, "roles": {"values": ["analytics"]}}
  ],
  "view_apps": [{"principals": {"values": ["reader", "writer"]}, "apps": {"type": "ANY"}}],
  "update_apps": [{"principals": {"values": ["writer"]}, "apps": {"values": ["/team"]}}],
  "update_quotas": [{"principals": {"values": ["writer"]}, "roles": {"type": "ANY"}}],
  "access_sandboxes": [{"principals": {"values": ["writer"]}, "roles": {"type": "ANY"}}]
})";

std::string make_token(const std::filesystem::path& file, const std::string& principal) {
  auto made = cli({"token", "create", "--file", file.string(), "--principal", principal});
  INFO(made.err);
  REQUIRE(made.code == 0);
  auto token = made.out.substr(0, made.out.find('\n'));
  REQUIRE(token.size() > 20);
  return token;
}

http::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

http::ClientResponse post(const std::string& http, const json& call, const std::string& token) {
  auto r = http::request(http, "POST", "/api/v1", call.dump(), "application/json", 10s,
                         token.empty() ? http::Headers{} : bearer(token));
  REQUIRE(r);
  return *r;
}

http::ClientResponse get(const std::string& http, const std::string& target,
                         const std::string& token, const std::string& method = "GET",
                         const std::string& body = "") {
  auto r = http::request(http, method, target, body, "application/json", 10s,
                         token.empty() ? http::Headers{} : bearer(token));
  REQUIRE(r);
  return *r;
}

const json quota = {{"type", "UPDATE_QUOTA"},
                    {"update_quota", {{"role", "analytics"}, {"limit", {{"cpus", 1}}}}}};

std::optional<double> sample(const std::string& text, const std::string& name) {
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos)
    return std::nullopt;
  at += name.size() + 2;
  return std::stod(text.substr(at, text.find('\n', at) - at));
}

struct SecureCluster {
  TempDir dir;
  std::string reader, writer, analyst;
  ClusterProcess c;

  SecureCluster() {
    auto credentials = dir.path() / "credentials.json";
    reader = make_token(credentials, "reader");
    writer = make_token(credentials, "writer");
    analyst = make_token(credentials, "analyst");
    std::ofstream(dir.path() / "acls.json") << acls_json;
    c = start_cluster_process(dir.path() / "work", 1,
                              {"--no-jobs", "--no-dns", "--credentials", credentials.string(),
                               "--acls", (dir.path() / "acls.json").string()});
    REQUIRE(eventually(
        [&] {
          auto r = post(c.http, {{"type", "GET_AGENTS"}}, reader);
          return r.status == 200 && json::parse(r.body)["get_agents"]["agents"].size() == 1;
        },
        30s));
  }
};

}  // namespace

TEST_CASE("the operator API: no token 401, read-only token 403 on a write, write token 200",
          "[auth]") {
  SecureCluster s;
  auto& http = s.c.http;

  // No token, or a token that is not one: 401, with the scheme to use.
  auto none = post(http, {{"type", "GET_STATE"}}, "");
  CHECK(none.status == 401);
  CHECK(none.headers["www-authenticate"] == "Bearer realm=\"tessera\"");
  CHECK(json::parse(none.body)["error"].get<std::string>().find("credentials are needed") !=
        std::string::npos);
  CHECK(post(http, {{"type", "GET_STATE"}}, s.reader + "x").status == 401);
  CHECK(post(http, quota, "").status == 401);
  CHECK(get(http, "/metrics", "").status == 401);
  // Liveness and the web UI's files stay open.
  CHECK(get(http, "/health", "").status == 200);
  CHECK(get(http, "/", "").status == 200);

  // The read-only principal reads, and is refused a write with the reason.
  CHECK(post(http, {{"type", "GET_STATE"}}, s.reader).status == 200);
  CHECK(post(http, {{"type", "GET_ROLES"}}, s.reader).status == 200);
  auto refused = post(http, quota, s.reader);
  CHECK(refused.status == 403);
  CHECK(json::parse(refused.body)["error"] ==
        "principal 'reader' may not update the quota of role 'analytics'");
  // The writer may.
  auto done = post(http, quota, s.writer);
  INFO(done.body);
  CHECK(done.status == 200);
  auto roles = json::parse(post(http, {{"type", "GET_ROLES"}}, s.reader).body);
  CHECK(roles.dump().find("\"quota\"") != std::string::npos);

  // Every refusal is counted.
  auto metrics = get(http, "/metrics", s.reader);
  REQUIRE(metrics.status == 200);
  CHECK(sample(metrics.body, "tessera_http_unauthenticated_total") >= 4.0);
  CHECK(sample(metrics.body, "tessera_http_forbidden_total") == 1.0);
  CHECK(sample(metrics.body, "tessera_acl_denied_update_quotas_total") == 1.0);
  CHECK(sample(metrics.body, "tessera_acl_allowed_update_quotas_total") == 1.0);
  // The analyst may not see the cluster's metrics or agents.
  CHECK(get(http, "/metrics", s.analyst).status == 403);
  CHECK(post(http, {{"type", "GET_AGENTS"}}, s.analyst).status == 403);

  // The CLI sends --token (or $TESSERA_TOKEN).
  auto without = cli({"agents", "--master", http});
  CHECK(without.code == 1);
  CHECK(without.err.find("credentials are needed") != std::string::npos);
  auto with = cli({"agents", "--master", http, "--token", s.reader});
  INFO(with.err);
  CHECK(with.code == 0);
  auto cli_refused =
      cli({"quota", "set", "analytics", "--cpus", "2", "--master", http, "--token", s.reader});
  CHECK(cli_refused.code == 1);
  CHECK(cli_refused.err.find("may not update the quota") != std::string::npos);
}

TEST_CASE(
    "a principal sees only the frameworks and tasks of the roles it may view, "
    "and sandboxes need their right",
    "[auth]") {
  SecureCluster s;
  auto& http = s.c.http;
  std::vector<std::string> master_flag = {"--master", s.c.master};
  auto run = [&](const std::string& role) {
    std::vector<std::string> argv = {
        TESSERA_BIN, "run", "--master", s.c.master,
        "--role",    role,  "--cpus",   "0.1",
        "--mem",     "32",  "--name",   role + "-task",
        "--",        "sh",  "-c",       "echo hello from " + role + "; sleep 120"};
    return ChildProcess::start(argv);
  };
  auto analytics = run("analytics");
  auto web = run("web");
  auto tasks_of = [&](const std::string& token) {
    auto r = post(http, {{"type", "GET_TASKS"}}, token);
    REQUIRE(r.status == 200);
    return json::parse(r.body)["get_tasks"]["tasks"];
  };
  REQUIRE(eventually([&] { return tasks_of(s.writer).size() == 2; }, 60s));

  auto seen = tasks_of(s.analyst);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0]["name"] == "analytics-task");
  auto state = json::parse(post(http, {{"type", "GET_STATE"}}, s.analyst).body)["get_state"];
  CHECK(state["get_tasks"]["tasks"].size() == 1);
  REQUIRE(state["get_frameworks"]["frameworks"].size() == 1);
  CHECK(state["get_frameworks"]["frameworks"][0]["framework_info"]["roles"] ==
        json::array({"analytics"}));
  CHECK(state["get_agents"]["agents"].empty());
  auto all = json::parse(post(http, {{"type", "GET_STATE"}}, s.reader).body)["get_state"];
  CHECK(all["get_tasks"]["tasks"].size() == 2);
  CHECK(all["get_agents"]["agents"].size() == 1);
  // GET_FRAMEWORKS: the analyst's one framework; the reader's, the apps
  // framework's too.
  auto frameworks = [&](const std::string& token) {
    return json::parse(
               post(http, {{"type", "GET_FRAMEWORKS"}}, token).body)["get_frameworks"]["frameworks"]
        .size();
  };
  CHECK(frameworks(s.analyst) == 1);
  CHECK(frameworks(s.reader) == 3);

  // The task's sandbox on its agent: 401 without a token, 403 without
  // access_sandboxes, 200 with it (and a browser's preflight is answered).
  auto agent_http = all["get_agents"]["agents"][0]["http_address"].get<std::string>();
  auto task_id = seen[0]["task_id"]["value"].get<std::string>();
  auto target = "/files/read?task_id=" + task_id + "&path=stdout";
  auto anonymous = get(agent_http, target, "");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.headers["access-control-allow-origin"] == "*");
  auto forbidden = get(agent_http, target, s.reader);
  CHECK(forbidden.status == 403);
  CHECK(json::parse(forbidden.body)["error"] ==
        "principal 'reader' may not access sandboxes of tasks of role 'analytics'");
  REQUIRE(eventually(
      [&] {
        auto r = get(agent_http, target, s.writer);
        return r.status == 200 && json::parse(r.body)["data"] == "hello from analytics\n";
      },
      20s));
  auto preflight = get(agent_http, target, "", "OPTIONS");
  CHECK(preflight.status == 204);
  CHECK(preflight.headers["access-control-allow-headers"] == "Authorization");
  // The agent's other routes authenticate too.
  CHECK(post(agent_http, {{"type", "GET_STATE"}}, "").status == 401);
  CHECK(post(agent_http, {{"type", "GET_STATE"}}, s.analyst).status == 403);
  CHECK(post(agent_http, {{"type", "GET_STATE"}}, s.reader).status == 200);
  CHECK(get(agent_http, "/health", "").status == 200);
}

TEST_CASE("the apps API authenticates, and authorizes by app group", "[auth]") {
  SecureCluster s;
  auto& http = s.c.http;
  std::string app = R"({"id": "/team/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16,
                        "instances": 0})";
  CHECK(get(http, "/v2/apps", "").status == 401);
  CHECK(get(http, "/v2/apps", s.reader).status == 200);
  CHECK(get(http, "/v2/apps", s.analyst).status == 403);
  auto refused = get(http, "/v2/apps", s.reader, "POST", app);
  CHECK(refused.status == 403);
  CHECK(json::parse(refused.body)["message"] ==
        "principal 'reader' may not change app '/team/web'");
  auto elsewhere = get(http, "/v2/apps", s.writer, "POST",
                       R"({"id": "/other/web", "cmd": "sleep 1", "instances": 0})");
  CHECK(elsewhere.status == 403);
  auto created = get(http, "/v2/apps", s.writer, "POST", app);
  INFO(created.body);
  CHECK(created.status == 201);
  CHECK(get(http, "/v2/apps/team/web", s.reader).status == 200);
  CHECK(get(http, "/v2/apps/team/web", s.reader, "DELETE").status == 403);
  CHECK(get(http, "/v2/ping", "").status == 200);
  // The CLI's apps commands send the token too.
  auto listed = cli({"app", "list", "--apps", http, "--token", s.reader});
  INFO(listed.err);
  CHECK(listed.code == 0);
  CHECK(listed.out.find("/team/web") != std::string::npos);
}
