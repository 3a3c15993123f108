// The agent's HTTP API as an operator meets it: `tessera agent --http` says
// where it listens, the master's GET_AGENTS names that address, and the
// agent answers there; `tessera cluster` gives every agent one of its own.

#include "services/http/client.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <set>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// What follows prefix in line, up to the next space (a trailing '/' or ','
// dropped).
std::string word_after(const std::string& line, const std::string& prefix) {
  auto at = line.find(prefix);
  REQUIRE(at != std::string::npos);
  at += prefix.size();
  auto word = line.substr(at, line.find(' ', at) - at);
  while (!word.empty() && (word.back() == '/' || word.back() == ','))
    word.pop_back();
  return word;
}

// The http_address of every agent the master at http_address lists.
std::vector<std::string> agent_http_addresses(const std::string& master_http) {
  auto r = http::request(master_http, "POST", "/api/v1", R"({"type":"GET_AGENTS"})");
  std::vector<std::string> out;
  if (!r || r->status != 200)
    return out;
  auto body = json::parse(r->body);
  for (const auto& a : body["get_agents"]["agents"])
    out.push_back(a.value("http_address", std::string()));
  return out;
}

}  // namespace

TEST_CASE("tessera agent --http prints its address and the master's GET_AGENTS shows it",
          "[e2e][cli][agent_http]") {
  TempDir dir;
  auto master =
      ChildProcess::start({TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--http",
                           "127.0.0.1:0", "--work-dir", (dir.path() / "master").string()});
  auto line = master->wait_line("listening on ");
  INFO("master: " << master->out() << master->err());
  REQUIRE(line);
  auto host_port = word_after(*line, "listening on master@");
  auto master_http_line = master->wait_line("HTTP API and web UI on http://");
  REQUIRE(master_http_line);
  auto master_http = word_after(*master_http_line, "on http://");

  auto agent =
      ChildProcess::start({TESSERA_BIN, "agent", "--master", host_port, "--listen", "127.0.0.1:0",
                           "--http", "127.0.0.1:0", "--work-dir", (dir.path() / "agent").string(),
                           "--resources", "cpus:1;mem:256", "--isolation", "posix"});
  auto agent_line = agent->wait_line("HTTP API on http://");
  INFO("agent: " << agent->out() << agent->err());
  REQUIRE(agent_line);
  auto agent_http = word_after(*agent_line, "on http://");
  CHECK(agent_http.rfind("127.0.0.1:", 0) == 0);
  CHECK(agent_http != "127.0.0.1:0");

  CHECK(wait_until(
      [&] {
        auto all = agent_http_addresses(master_http);
        return all.size() == 1 && all[0] == agent_http;
      },
      30s));
  auto health = http::request(agent_http, "GET", "/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto state = http::request(agent_http, "POST", "/api/v1", R"({"type":"GET_STATE"})");
  REQUIRE(state);
  CHECK(state->status == 200);
  CHECK(json::parse(state->body)["type"] == "GET_STATE");

  agent->kill(SIGTERM);
  CHECK(agent->wait_exit());
  CHECK(agent->exit_status()->exit_code == 0);
  master->kill(SIGTERM);
  CHECK(master->wait_exit());
}

TEST_CASE("tessera cluster gives each agent an HTTP API of its own", "[e2e][cli][agent_http]") {
  TempDir dir;
  auto cluster = ChildProcess::start({TESSERA_BIN, "cluster", "--listen", "127.0.0.1:0", "--http",
                                      "127.0.0.1:0", "--agents", "2", "--agent-resources",
                                      "cpus:1;mem:256", "--work-dir", dir.path().string()});
  auto line = cluster->wait_line("HTTP API and web UI: http://");
  INFO("cluster: " << cluster->out() << cluster->err());
  REQUIRE(line);
  auto master_http = word_after(*line, "web UI: http://");
  std::vector<std::string> agents;
  CHECK(wait_until(
      [&] {
        agents = agent_http_addresses(master_http);
        return agents.size() == 2;
      },
      30s));
  REQUIRE(agents.size() == 2);
  CHECK(std::set<std::string>(agents.begin(), agents.end()).size() == 2);
  for (const auto& a : agents) {
    INFO(a);
    CHECK(a.rfind("127.0.0.1:", 0) == 0);
    auto health = http::request(a, "GET", "/health");
    REQUIRE(health);
    CHECK(health->status == 200);
  }
  cluster->kill(SIGINT);
  CHECK(cluster->wait_exit());
  CHECK(cluster->exit_status()->exit_code == 0);
}
