// Failure cases through the real master, agents, executors and scheduler
// library: lost agents, dropped status updates, framework failover and a
// master restart.

#include "tests/e2e/task_probe.hpp"
#include "e2e/agent_cleanup.hpp"
#include "e2e/test_framework.hpp"
#include "runtime/simulation.hpp"
#include "services/cluster/local_cluster.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <cerrno>
#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

const char* small_agent = "cpus:2;mem:1024;disk:1000;ports:[31000-31099]";

AgentConfig agent_config(const Address& master, const std::filesystem::path& dir, uint64_t seed) {
  AgentConfig ac;
  ac.master = master;
  ac.work_dir = dir;
  ac.resources = *Resources::parse(small_agent);
  ac.seed = seed;
  ac.registration_backoff_min_ms = 20ms;
  ac.registration_backoff_max_ms = 200ms;
  ac.status_update_backoff_min_ms = 100ms;
  ac.status_update_backoff_max_ms = 400ms;
  return ac;
}

// A task that records its pid in its sandbox, then sleeps.
TaskSpec sleeper(const std::string& id) {
  return shell_task(id, "echo $$ > pid; exec sleep 1000");
}

}  // namespace

TEST_CASE("a crashed agent is reported lost after the ping timeout, in virtual time",
          "[e2e][failure]") {
  TempDir dir;
  Simulation sim(21);
  auto& master_node = sim.add_node("master");
  MasterConfig mc;
  mc.seed = 1;
  mc.agent_ping_interval = 10s;
  mc.agent_ping_timeout = 10s;
  mc.agent_pings_missed_max = 3;
  REQUIRE(master_node.spawn<Master>("master", mc));
  auto master = master_node.address_of("master");
  auto& agent_node = sim.add_node("agent");
  REQUIRE(agent_node.spawn<Agent>("agent", agent_config(master, dir.path() / "agent", 1)));
  auto& fw_node = sim.add_node("fw");
  auto log = std::make_shared<TestFrameworkLog>();
  log->launch(sleeper("t1"));
  REQUIRE(fw_node.spawn<TestFramework>("fw", test_framework_config(master, "web"), log));
  REQUIRE(sim.run_until([&] { return log->has("t1", TaskState::RUNNING); }));

  auto wall_start = std::chrono::steady_clock::now();
  sim.crash(agent_node);
  sim.advance(25s);  // two pings missed: not yet
  CHECK_FALSE(log->has("t1", TaskState::LOST));
  sim.advance(20s);
  REQUIRE(log->has("t1", TaskState::LOST));
  CHECK(log->last("t1")->reason == TaskReason::AGENT_UNREACHABLE);
  auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - wall_start)
                     .count();
  // 45 s of virtual time; the wall time it took, for the curious (not asserted).
  INFO("wall time for 45 s of virtual time: " << wall_ms << " ms");
  CHECK(log->errors().empty());
}

TEST_CASE("an agent process killed with SIGKILL is reported lost", "[e2e][failure][multiprocess]") {
  TempDir dir;
  auto master =
      ChildProcess::start({TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--work-dir",
                           (dir.path() / "master").string(), "--agent-ping-interval", "0.2",
                           "--agent-ping-timeout", "0.2", "--agent-pings-missed", "3"});
  auto line = master->wait_line("listening on");
  REQUIRE(line);
  auto at = line->find("master@");
  auto host_port = line->substr(at + 7, line->find(' ', at) - at - 7);
  auto agent_dir = dir.path() / "agent";
  auto agent =
      ChildProcess::start({TESSERA_BIN, "agent", "--master", host_port, "--listen", "127.0.0.1:0",
                           "--work-dir", agent_dir.string(), "--resources", small_agent});
  REQUIRE(agent->wait_line("listening on"));

  auto node = Node::start();
  REQUIRE(node);
  auto log = std::make_shared<TestFrameworkLog>();
  log->launch(sleeper("t1"));
  REQUIRE((*node)->spawn<TestFramework>(
      "fw", test_framework_config(*Address::parse("master@" + host_port), "web"), log));
  REQUIRE(wait_until([&] { return log->has("t1", TaskState::RUNNING); }, 30s));
  int pid = 0;  // the shell writes it once it runs
  REQUIRE(wait_until([&] { return alive(pid = task_pid(agent_dir, "t1")); }));

  agent->kill(SIGKILL);
  REQUIRE(agent->wait_exit());
  REQUIRE(wait_until([&] { return log->has("t1", TaskState::LOST); }, 30s));
  CHECK(log->last("t1")->reason == TaskReason::AGENT_UNREACHABLE);

  // The agent's executor and task outlived it (as they would on a machine
  // whose agent crashed): stop them by pid.
  kill_processes_under(agent_dir);
  destroy_agent_containers(agent_dir);
  CHECK(wait_until([&] { return !alive(pid); }));
  (*node)->stop();
  master->kill(SIGTERM);
  CHECK(master->wait_exit());
}

TEST_CASE("a dropped status update is retried and delivered exactly once", "[e2e][failure]") {
  TempDir dir;
  LocalClusterConfig config;
  config.agents = 1;
  config.agent_resources = small_agent;
  config.work_dir = dir.path();
  config.agent.status_update_backoff_min_ms = 100ms;
  config.agent.status_update_backoff_max_ms = 400ms;
  auto cluster = LocalCluster::start(config);
  REQUIRE(cluster);
  auto& node = (*cluster)->node();
  // The master loses the first StatusUpdate the agent sends.
  auto rule = node.filters().add(
      MessageMatch{capnp::typeId<wire::StatusUpdate>(), std::nullopt, (*cluster)->master_address()},
      FilterAction::Drop(), 1);
  auto log = std::make_shared<TestFrameworkLog>();
  log->launch(shell_task("t1", "echo done"));
  REQUIRE(node.spawn<TestFramework>(
      "fw", test_framework_config((*cluster)->master_address(), "web"), log));
  REQUIRE(wait_until([&] { return log->has("t1", TaskState::FINISHED); }));
  REQUIRE(node.settle());
  CHECK(node.filters().hits(rule) == 1);
  CHECK(log->count("t1", TaskState::STARTING) == 1);
  CHECK(log->count("t1", TaskState::RUNNING) == 1);
  CHECK(log->count("t1", TaskState::FINISHED) == 1);
  // In order, each once.
  std::vector<TaskState> states;
  for (auto& u : log->updates())
    states.push_back(u.state);
  CHECK(states ==
        std::vector<TaskState>{TaskState::STARTING, TaskState::RUNNING, TaskState::FINISHED});
}

TEST_CASE("a framework keeps its tasks within its failover timeout and loses them after",
          "[e2e][failure]") {
  TempDir dir;
  Simulation sim(31);
  auto& master_node = sim.add_node("master");
  MasterConfig mc;
  mc.seed = 1;
  REQUIRE(master_node.spawn<Master>("master", mc));
  auto master = master_node.address_of("master");
  auto& agent_node = sim.add_node("agent");
  REQUIRE(agent_node.spawn<Agent>("agent", agent_config(master, dir.path() / "agent", 1)));

  auto config = test_framework_config(master, "web");
  config.framework.failover_timeout = 10s;
  auto& fw1 = sim.add_node("fw1");
  auto log1 = std::make_shared<TestFrameworkLog>();
  log1->launch(sleeper("t1"));
  REQUIRE(fw1.spawn<TestFramework>("fw", config, log1));
  REQUIRE(sim.run_until([&] { return log1->has("t1", TaskState::RUNNING); }));
  int pid = 0;  // the shell writes it once it runs
  REQUIRE(sim.run_until([&] { return alive(pid = task_pid(dir.path() / "agent", "t1")); }));

  // Away for 5 s of a 10 s timeout, then back with the same id.
  sim.crash(fw1);
  sim.advance(5s);
  config.framework.framework_id = log1->framework_id();
  auto& fw2 = sim.add_node("fw2");
  auto log2 = std::make_shared<TestFrameworkLog>();
  REQUIRE(fw2.spawn<TestFramework>("fw", config, log2));
  REQUIRE(sim.run_until([&] { return log2->subscribed() == 1; }));
  CHECK(log2->framework_id() == log1->framework_id());
  log2->post([](TestFramework& f) { f.reconcile({{"t1", ""}}); });
  sim.advance(20ms);
  REQUIRE(sim.run_until([&] { return log2->has("t1", TaskState::RUNNING); }));
  CHECK(log2->last("t1")->reason == TaskReason::RECONCILIATION);
  CHECK(alive(pid));

  // Away for longer than the timeout: the master has its tasks killed.
  sim.crash(fw2);
  sim.advance(11s);
  CHECK(sim.run_until([&] { return !alive(pid); }));
}

TEST_CASE("after a master restart agents reregister and frameworks resubscribe", "[e2e][failure]") {
  TempDir dir;
  MasterConfig mc;
  mc.agent_ping_interval = 200ms;
  mc.agent_ping_timeout = 200ms;
  auto start_master = [&](uint16_t port) {
    NodeConfig nc;
    nc.port = port;
    auto node = Node::start(nc);
    REQUIRE(node);
    REQUIRE((*node)->spawn<Master>("master", mc));
    return std::move(*node);
  };
  auto master_node = start_master(0);
  auto port = master_node->port();
  auto master = master_node->address_of("master");

  auto agent_node = Node::start();
  REQUIRE(agent_node);
  REQUIRE((*agent_node)->spawn<Agent>("agent", agent_config(master, dir.path() / "agent", 1)));
  auto fw_node = Node::start();
  REQUIRE(fw_node);
  auto log = std::make_shared<TestFrameworkLog>();
  log->launch(sleeper("t1"));
  REQUIRE((*fw_node)->spawn<TestFramework>("fw", test_framework_config(master, "web"), log));
  REQUIRE(wait_until([&] { return log->has("t1", TaskState::RUNNING); }));
  auto id = log->framework_id();

  master_node->stop();
  master_node.reset();
  REQUIRE(wait_until([&] { return log->disconnected() >= 1; }));
  master_node = start_master(port);

  // The framework resubscribes with its id; once the agent has reregistered
  // the new master knows the task again.
  REQUIRE(wait_until([&] { return log->subscribed() >= 2; }, 30s));
  CHECK(log->framework_id() == id);
  bool known = wait_until(
      [&] {
        log->post([](TestFramework& f) { f.reconcile({{"t1", ""}}); });
        return wait_until(
            [&] {
              auto u = log->last("t1");
              return u && u->reason == TaskReason::RECONCILIATION && u->state == TaskState::RUNNING;
            },
            200ms);
      },
      30s);
  CHECK(known);
  (*fw_node)->stop();
  (*agent_node)->stop();
  master_node->stop();
}
