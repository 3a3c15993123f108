// Masters, agents and ZooKeeper on hosts of their own (network namespaces,
// tools/netns.sh), with real partitions between them: links cut, routes
// blackholed. The test process is a host of the lab too (the framework).
// Needs root (network namespaces); without it each test says it is skipped.

#include "e2e/ha_support.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

bool root_or_skip() {
  if (::geteuid() == 0)
    return true;
  WARN("skipped: network namespaces need root");
  return false;
}

// The time stamp of the first log line of p that contains text ("" when none):
// "2026-12-07T05:13:57.754", which sorts as it reads.
std::string logged_at(const HaProcess& p, const std::string& text) {
  auto err = p.proc->err();
  auto at = err.find(text);
  if (at == std::string::npos)
    return "";
  auto line = err.rfind('\n', at);
  line = line == std::string::npos ? 0 : line + 1;
  return err.substr(line, 23);
}

// A lab of: host 1 ZooKeeper (three servers), hosts 2 and 3 a master each,
// host 4 an agent; the framework runs in the test's own namespace.
struct Lab {
  NetnsLab net{4};
  std::unique_ptr<ZkServers> zk;
  TempDir dir;
  std::unique_ptr<HaCluster> cluster;
  std::unique_ptr<FollowingFramework> framework;
  std::shared_ptr<TestFrameworkLog> log;

  // Starts everything and a task t1; returns the index of the leading master.
  int start(bool partition_aware) {
    INFO(net.why);
    REQUIRE(net.up());
    zk = std::make_unique<ZkServers>(3, net.addr(1), net.netns(1));
    INFO(zk->why);
    REQUIRE(!zk->spec.empty());
    cluster = std::make_unique<HaCluster>(zk->spec, dir.path(), "");
    cluster->start_master(net.addr(2) + ":5050", net.netns(2));
    cluster->start_master(net.addr(3) + ":5050", net.netns(3));
    REQUIRE(cluster->wait_leader(-1) >= 0);
    cluster->start_agent(net.addr(4) + ":5051", "cpus:4;mem:1024", net.netns(4));

    framework =
        std::make_unique<FollowingFramework>(zk->spec, "*", partition_aware, net.root_addr());
    log = framework->log;
    log->launch(shell_task("t1", "sleep 600", task_resources));
    REQUIRE(wait_until([&] { return log->has("t1", TaskState::RUNNING); }, 60s));
    int leader = cluster->wait_leader(-1);
    REQUIRE(leader >= 0);
    return leader;
  }

  ~Lab() {
    framework.reset();
    cluster.reset();  // agents drained, masters killed, before the hosts go
    zk.reset();
  }
};

}  // namespace

TEST_CASE(
    "a leader partitioned from ZooKeeper but not from agents steps down before another "
    "leads, and rejoins as a standby",
    "[e2e][ha][netns][zookeeper]") {
  if (!root_or_skip())
    return;
  Lab lab;
  int old = lab.start(false);
  auto& cluster = *lab.cluster;
  int old_host = old + 2;

  // The leader's host loses ZooKeeper's host; agents and frameworks still
  // reach it.
  lab.net.block(old_host, 1);
  int next = cluster.wait_leader(old, 30s);
  REQUIRE(next >= 0);
  auto& was = cluster.masters[old];
  auto& now = cluster.masters[next];
  INFO("old leader:\n" << was.proc->err() << "\nnew leader:\n" << now.proc->err());
  REQUIRE(wait_until([&] { return was.logged("master contender: stepping down"); }, 30s));
  // Never two leaders: the old one stopped (and with it its offers) before
  // the new one started.
  auto stepped_down = logged_at(was, "master contender: stepping down");
  auto took_over = logged_at(now, "master contender: leading");
  CHECK(stepped_down < took_over);
  CHECK(was.count("master contender: leading") == 1);

  // Agents and frameworks follow; the task runs on.
  check_tasks_run_on(now, *lab.log, {"t1"});
  CHECK(lab.log->count("t1", TaskState::RUNNING) == 2);  // the agent's, the reconciliation's

  // Healed, the old leader finds its session gone and stands by under a
  // new one, without a restart.
  lab.net.unblock(old_host, 1);
  CHECK(wait_until([&] { return was.logged("contending again with a new session"); }, 30s));
  CHECK(wait_until([&] { return was.logged(now.address + " leads; standing by"); }, 30s));
  CHECK(was.alive());
  CHECK(now.leading());
}

TEST_CASE(
    "kill -9 of the leader across hosts: the standby on another host leads and the task "
    "runs on",
    "[e2e][ha][netns][zookeeper]") {
  if (!root_or_skip())
    return;
  Lab lab;
  int old = lab.start(false);
  auto& cluster = *lab.cluster;
  cluster.masters[old].proc->kill(SIGKILL);
  REQUIRE(cluster.masters[old].proc->wait_exit(10s));
  int next = cluster.wait_leader(old, 30s);
  REQUIRE(next >= 0);
  auto& now = cluster.masters[next];
  check_tasks_run_on(now, *lab.log, {"t1"});
  // And new work still lands.
  lab.log->launch(shell_task("t2", "sleep 600", task_resources));
  CHECK(wait_until([&] { return lab.log->has("t2", TaskState::RUNNING); }, 30s));
}

TEST_CASE(
    "an agent partitioned from the master is UNREACHABLE for a partition-aware framework; "
    "healed, it reregisters and its task is reconciled",
    "[e2e][ha][netns][zookeeper]") {
  if (!root_or_skip())
    return;
  Lab lab;
  int leader = lab.start(true);
  auto& cluster = *lab.cluster;
  auto& master = cluster.masters[leader];
  auto logs = [&] {
    std::string out =
        "master:\n" + master.proc->err() + "\nagent:\n" + cluster.agents[0].proc->err();
    for (const auto& u : lab.log->updates())
      out += "\nupdate " + u.task_id + " " + std::to_string(int(u.state)) + " " + u.message;
    return out;
  };

  lab.net.cut(4);  // the agent's host leaves the network
  bool unreachable = wait_until([&] { return lab.log->has("t1", TaskState::UNREACHABLE); }, 30s);
  INFO(logs());
  REQUIRE(unreachable);
  lab.net.heal(4);
  REQUIRE(wait_until([&] { return master.logged("master: reregistered agent "); }, 60s));
  // As with Mesos, the master sends no update of its own when the agent
  // comes back: the framework reconciles, and hears the task runs.
  lab.log->post([](TestFramework& f) { f.reconcile({{"t1", ""}}); });
  bool running_again = wait_until(
      [&] {
        auto last = lab.log->last("t1");
        return last && last->state == TaskState::RUNNING;
      },
      30s);
  INFO(logs());
  REQUIRE(running_again);
  CHECK(lab.log->count("t1", TaskState::UNREACHABLE) == 1);
  CHECK_FALSE(lab.log->has("t1", TaskState::LOST));
  CHECK_FALSE(lab.log->has("t1", TaskState::GONE));
  CHECK(cluster.masters[leader].leading());  // the agent's partition moved no lead
}
