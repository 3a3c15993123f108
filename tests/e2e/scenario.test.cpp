// The end-to-end scenario (scenario.hpp) in the three deployment modes, with
// one expected outcome: all in one process; deterministic mode with virtual
// time; master, two agents and the frameworks as separate OS processes.

#include "e2e/scenario.hpp"
#include "runtime/simulation.hpp"
#include "services/cluster/local_cluster.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <sstream>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

const char* agent_resources = "cpus:2;mem:1024;disk:1000;ports:[31000-31099]";

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v)
    out += "  " + s + "\n";
  return out;
}

}  // namespace

TEST_CASE("the scenario, all in one process", "[e2e][scenario]") {
  TempDir dir;
  LocalClusterConfig config;
  config.agents = 0;  // added once the frameworks are subscribed
  config.agent_resources = agent_resources;
  config.work_dir = dir.path();
  config.master.seed = 1;
  auto cluster = LocalCluster::start(config);
  REQUIRE(cluster);
  auto scenario = std::make_shared<Scenario>();
  auto& node = (*cluster)->node();
  for (auto role : {"analytics", "web"})
    REQUIRE(node.spawn<ScenarioFramework>(
        role, scenario_config((*cluster)->master_address(), role, 5), scenario));
  REQUIRE(wait_until([&] { return scenario->get("subscribed") == 2; }));
  for (int i = 0; i < 2; ++i)
    REQUIRE((*cluster)->add_agent());
  bool done = wait_until([&] { return scenario->done(); }, 90s);
  INFO("facts:\n" << joined(scenario->facts()));
  REQUIRE(done);
  CHECK(scenario->facts() == expected_facts());
}

TEST_CASE("the scenario, in deterministic mode with virtual time", "[e2e][scenario]") {
  TempDir dir;
  Simulation sim(11);
  auto& master_node = sim.add_node("master");
  MasterConfig mc;
  mc.seed = 1;
  REQUIRE(master_node.spawn<Master>("master", mc));
  auto master = master_node.address_of("master");
  auto& fw_node = sim.add_node("frameworks");
  auto scenario = std::make_shared<Scenario>();
  for (auto role : {"analytics", "web"})
    REQUIRE(fw_node.spawn<ScenarioFramework>(role, scenario_config(master, role, 5), scenario));
  REQUIRE(sim.run_until([&] { return scenario->get("subscribed") == 2; }));
  for (int i = 1; i <= 2; ++i) {
    auto& n = sim.add_node("agent" + std::to_string(i));
    AgentConfig ac;
    ac.master = master;
    ac.work_dir = dir.path() / ("agent" + std::to_string(i));
    ac.resources = *Resources::parse(agent_resources);
    ac.hostname = n.host();
    ac.seed = static_cast<uint64_t>(i);
    REQUIRE(n.spawn<Agent>("agent", ac));
  }
  // Time moves only here, 20 ms of virtual time per step; between steps the
  // simulation waits (in wall time) for the tasks' processes to exit.
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while (!scenario->done() && std::chrono::steady_clock::now() < deadline) {
    sim.run_until([&] { return scenario->done(); }, 2ms);
    sim.advance(20ms);
  }
  INFO("facts:\n" << joined(scenario->facts()));
  REQUIRE(scenario->done());
  CHECK(scenario->facts() == expected_facts());
}

TEST_CASE("the scenario, master, agents and frameworks as separate processes",
          "[e2e][scenario][multiprocess]") {
  TempDir dir;
  auto master = ChildProcess::start({TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--work-dir",
                                     (dir.path() / "master").string()});
  auto line = master->wait_line("listening on");
  INFO("master: " << master->out() << master->err());
  REQUIRE(line);
  // "tessera master listening on master@127.0.0.1:PORT (...)"
  auto at = line->find("master@");
  REQUIRE(at != std::string::npos);
  auto host_port = line->substr(at + 7, line->find(' ', at) - at - 7);

  auto frameworks = ChildProcess::start({TESSERA_TEST_SCENARIO, host_port});
  REQUIRE(frameworks->wait_line("SUBSCRIBED"));
  std::vector<std::unique_ptr<ChildProcess>> agents;
  for (int i = 1; i <= 2; ++i) {
    agents.push_back(ChildProcess::start(
        {TESSERA_BIN, "agent", "--master", host_port, "--listen", "127.0.0.1:0", "--work-dir",
         (dir.path() / ("agent" + std::to_string(i))).string(), "--resources", agent_resources}));
    INFO("agent: " << agents.back()->out() << agents.back()->err());
    REQUIRE(agents.back()->wait_line("listening on"));
  }
  REQUIRE(frameworks->wait_exit(120s));
  std::vector<std::string> facts;
  std::istringstream out(frameworks->out());
  for (std::string l; std::getline(out, l);)
    if (l.rfind("FACT ", 0) == 0)
      facts.push_back(l.substr(5));
  INFO("scenario output:\n" << frameworks->out() << frameworks->err());
  CHECK(frameworks->exit_status()->exit_code == 0);
  CHECK(facts == expected_facts());

  // A clean stop: agents first (they stop their executors), then the master.
  for (auto& a : agents) {
    a->kill(SIGTERM);
    CHECK(a->wait_exit(30s));
    CHECK(a->exit_status()->exit_code == 0);
  }
  master->kill(SIGTERM);
  CHECK(master->wait_exit(30s));
  CHECK(master->exit_status()->exit_code == 0);
}
