// Several masters and leader election with real processes on 127.0.0.1: a
// ZooKeeper ensemble of three (tools/zk.sh), three `tessera master --zk`,
// a `tessera agent --master zk://...` and a framework that follows the
// leader through its own detector. (Partitions between hosts are in
// ha_netns.test.cpp.)

#include "services/http/client.hpp"
#include "e2e/ha_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

TEST_CASE(
    "kill -9 of the leading master: a standby leads, agents and frameworks follow, no task "
    "or update is lost and quota still applies",
    "[e2e][ha][zookeeper]") {
  HaSetup ha(3, 3);
  auto& zk = ha.zk;
  auto& cluster = ha.cluster;
  int leader = ha.leader;

  // An operator's quota for the framework's role: at most one CPU.
  REQUIRE(set_quota(cluster.masters[leader].address, "web", "cpus:1"));

  cluster.start_agent("127.0.0.1:0", "cpus:4;mem:1024");
  REQUIRE(
      wait_until([&] { return cluster.masters[leader].logged("master: registered agent "); }, 30s));

  FollowingFramework framework(zk.spec, "web", true);
  auto& log = framework.log;
  log->launch(shell_task("t1", "sleep 600", task_resources));
  log->launch(shell_task("t2", "sleep 600", task_resources));
  REQUIRE(wait_until(
      [&] { return log->has("t1", TaskState::RUNNING) && log->has("t2", TaskState::RUNNING); },
      30s));

  // kill -9 of the leader.
  cluster.masters[leader].proc->kill(SIGKILL);
  REQUIRE(cluster.masters[leader].proc->wait_exit(10s));
  int next = cluster.wait_leader(leader);
  REQUIRE(next >= 0);
  CHECK(next != leader);
  auto& now = cluster.masters[next];
  INFO(now.proc->err());
  // Quota and weights are in the allocator before the first agent is back.
  REQUIRE(wait_until([&] { return now.logged("1 role(s) with a weight or quota"); }, 30s));
  // The tasks run on, as the new master reconciles them.
  check_tasks_run_on(now, *log, {"t1", "t2"});
  CHECK(log->framework_id() != "");
  // One STARTING and one RUNNING each from the agent (never twice), and one
  // RUNNING from the reconciliation.
  CHECK(log->count("t1", TaskState::STARTING) == 1);
  CHECK(log->count("t2", TaskState::STARTING) == 1);
  CHECK(log->count("t1", TaskState::RUNNING) == 2);
  CHECK(log->count("t2", TaskState::RUNNING) == 2);

  // The quota still applies: t1 and t2 hold the one CPU; t3 gets no offer.
  log->launch(shell_task("t3", "sleep 600", task_resources));
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < deadline && !log->last("t3"))
    std::this_thread::sleep_for(50ms);
  CHECK_FALSE(log->last("t3"));

  cluster.drain_agents();
}

TEST_CASE("a ZooKeeper server killed: the leader leads on and tasks still launch",
          "[e2e][ha][zookeeper]") {
  HaSetup ha(3, 2);
  auto& zk = ha.zk;
  auto& cluster = ha.cluster;
  int leader = ha.leader;
  cluster.start_agent("127.0.0.1:0", "cpus:4;mem:1024");

  FollowingFramework framework(zk.spec, "*", false);
  auto& log = framework.log;
  log->launch(shell_task("before", "sleep 600", task_resources));
  REQUIRE(wait_until([&] { return log->has("before", TaskState::RUNNING); }, 30s));

  // Each server in turn but one at a time would be too slow; one server of
  // three is what an ensemble must survive.
  zk.kill(1);
  log->launch(shell_task("after", "sleep 600", task_resources));
  REQUIRE(wait_until([&] { return log->has("after", TaskState::RUNNING); }, 30s));
  CHECK(log->count("before", TaskState::RUNNING) == 1);
  // The leader kept its session: no one else ever led.
  for (size_t i = 0; i < cluster.masters.size(); ++i) {
    INFO("master " << i << ": " << cluster.masters[i].proc->err());
    CHECK(cluster.masters[i].count("master contender: leading") == (int(i) == leader ? 1 : 0));
  }
  cluster.drain_agents();
}

TEST_CASE(
    "a standby answers with the leader's address: an agent, a framework and tessera run "
    "given a standby find the leader; an operator's call is told who leads",
    "[e2e][ha][zookeeper]") {
  HaSetup ha(1, 2);
  auto& cluster = ha.cluster;
  int leader = ha.leader;
  auto& lead = cluster.masters[leader];
  auto& standby = cluster.masters[1 - leader];
  REQUIRE(wait_until([&] { return standby.logged(lead.address + " leads; standing by"); }, 30s));
  // Each says its role on stdout.
  CHECK(lead.proc->wait_line("tessera master: leading", 10s));
  CHECK(standby.proc->wait_line("tessera master: standing by; " + lead.address + " leads", 10s));
  auto standby_at = standby.address.substr(standby.address.find('@') + 1);

  // The operator's call to the standby fails, naming the leader.
  CHECK_FALSE(set_quota(standby.address, "web", "cpus:1"));
  // An agent given the standby registers with the leader.
  cluster.start_agent("127.0.0.1:0", "cpus:2;mem:512", "", standby_at);
  REQUIRE(wait_until([&] { return lead.logged("master: registered agent "); }, 30s));
  CHECK(wait_until(
      [&] {
        return cluster.agents[0].logged("is a standby; the leading master is " + lead.address);
      },
      10s));

  // The standby's HTTP API sends operators to the leader's (a 307 keeps
  // the method and body); the CLI follows it, and finds the leader
  // through ZooKeeper as well.
  auto redirected = http::request(standby.http, "POST", "/api/v1", R"({"type":"GET_AGENTS"})");
  REQUIRE(redirected);
  CHECK(redirected->status == 307);
  CHECK(redirected->headers["location"] == "http://" + lead.http + "/api/v1");
  for (const auto& master : {standby.http, ha.zk.spec}) {
    auto agents = ChildProcess::start({TESSERA_BIN, "agents", "--master", master});
    REQUIRE(agents->wait_exit(30s));
    INFO(master << ": " << agents->out() << agents->err());
    CHECK(agents->exit_status()->exit_code == 0);
    CHECK(agents->out().find("REGISTERED") != std::string::npos);
  }

  // So does a framework, and a task runs.
  auto run = ChildProcess::start({TESSERA_BIN, "run", "--master", standby_at, "--cpus", "0.1",
                                  "--mem", "128", "--", "echo", "from-the-leader"});
  CHECK(run->wait_line("from-the-leader", 60s));
  CHECK(run->wait_exit(30s));
  CHECK(lead.logged("master: framework "));
  CHECK_FALSE(standby.logged("master: framework "));
  cluster.drain_agents();
}

TEST_CASE("tessera run --master zk://... outlives a failover of the leading master",
          "[e2e][ha][zookeeper]") {
  HaSetup ha(1, 2);
  auto& zk = ha.zk;
  auto& cluster = ha.cluster;
  int leader = ha.leader;
  cluster.start_agent("127.0.0.1:0", "cpus:2;mem:512");
  REQUIRE(
      wait_until([&] { return cluster.masters[leader].logged("master: registered agent "); }, 30s));
  auto run = ChildProcess::start({TESSERA_BIN, "run", "--master", zk.spec, "--cpus", "0.1", "--mem",
                                  "128", "--", "sh", "-c", "sleep 6; echo survived"});
  REQUIRE(wait_until([&] { return cluster.agents[0].logged("launching task "); }, 30s));
  cluster.masters[leader].proc->kill(SIGKILL);
  REQUIRE(cluster.masters[leader].proc->wait_exit(10s));
  REQUIRE(cluster.wait_leader(leader) >= 0);
  bool survived = bool(run->wait_line("survived", 60s));
  INFO("run:\n" << run->err() << "\nagent:\n" << cluster.agents[0].proc->err());
  CHECK(survived);
  REQUIRE(run->wait_exit(30s));
  CHECK(run->exit_status()->exit_code == 0);
  cluster.drain_agents();
}
