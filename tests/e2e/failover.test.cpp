// Master failover through the real master, agent, executors and scheduler
// library (issue 9): a master killed and restarted while tasks run must not
// tell any framework TASK_LOST for a task that still runs, nor kill one.

#include "tests/e2e/task_probe.hpp"
#include "e2e/agent_cleanup.hpp"
#include "e2e/test_framework.hpp"
#include "services/cluster/local_cluster.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {}  // namespace

TEST_CASE("a master restart with tasks running tells no framework TASK_LOST and kills nothing",
          "[e2e][failure][failover]") {
  TempDir dir;
  MasterConfig mc;
  mc.agent_ping_interval = 200ms;
  mc.agent_ping_timeout = 200ms;
  mc.agent_reregister_timeout = 60s;
  // While hold is set, the master drops every ReregisterAgent: the agent is
  // slow to come back (it retries), the frameworks are quicker.
  auto hold = std::make_shared<std::atomic<bool>>(false);
  auto start_master = [&](uint16_t port) {
    NodeConfig nc;
    nc.port = port;
    auto node = Node::start(nc);
    REQUIRE(node);
    (*node)->filters().add([hold](const Envelope& env) {
      if (hold->load() && env.type_id == capnp::typeId<wire::ReregisterAgent>())
        return FilterAction::Drop();
      return FilterAction::Pass();
    });
    REQUIRE((*node)->spawn<Master>("master", mc));
    return std::move(*node);
  };
  auto master_node = start_master(0);
  auto port = master_node->port();
  auto master = master_node->address_of("master");

  auto agent_dir = dir.path() / "agent";
  AgentConfig ac;
  ac.master = master;
  ac.work_dir = agent_dir;
  ac.resources = *Resources::parse("cpus:2;mem:1024;disk:1000;ports:[31000-31099]");
  ac.seed = 1;
  ac.registration_backoff_min_ms = 20ms;
  ac.registration_backoff_max_ms = 200ms;
  ac.status_update_backoff_min_ms = 100ms;
  ac.status_update_backoff_max_ms = 400ms;
  auto agent_node = Node::start();
  REQUIRE(agent_node);
  REQUIRE((*agent_node)->spawn<Agent>("agent", ac));

  // Four one-task frameworks, as four `tessera run` clients (failover
  // timeout zero, not partition-aware).
  constexpr int frameworks = 4;
  auto fw_node = Node::start();
  REQUIRE(fw_node);
  std::vector<std::shared_ptr<TestFrameworkLog>> logs;
  for (int i = 0; i < frameworks; ++i) {
    auto log = std::make_shared<TestFrameworkLog>();
    log->launch(shell_task("t" + std::to_string(i), "echo $$ > pid; exec sleep 1000"));
    auto config = test_framework_config(master, "web", 10 + i);
    config.framework.failover_timeout = Duration::zero();
    REQUIRE((*fw_node)->spawn<TestFramework>("fw" + std::to_string(i), config, log));
    logs.push_back(log);
  }
  std::vector<int> pids(frameworks);
  std::vector<std::string> agent_ids(frameworks);
  for (int i = 0; i < frameworks; ++i) {
    auto task = "t" + std::to_string(i);
    REQUIRE(wait_until([&] { return logs[i]->has(task, TaskState::RUNNING); }, 30s));
    REQUIRE(wait_until([&] { return alive(pids[i] = task_pid(agent_dir, task)); }));
    agent_ids[i] = logs[i]->last(task)->agent_id;
  }

  // kill -9 of the master (its connections drop), and a restart.
  master_node.reset();
  for (auto& log : logs)
    REQUIRE(wait_until([&] { return log->disconnected() >= 1; }));
  hold->store(true);
  master_node = start_master(port);
  for (auto& log : logs)
    REQUIRE(wait_until([&] { return log->subscribed() >= 2; }, 30s));

  // Each asks where its task is, as `tessera run` does after reconnecting,
  // and, as it does, gives up (tears down) when told TASK_LOST.
  for (int i = 0; i < frameworks; ++i)
    logs[i]->post([task = "t" + std::to_string(i), agent = agent_ids[i]](TestFramework& f) {
      f.reconcile({{task, agent}});
    });
  std::this_thread::sleep_for(1s);  // answers, if any, have long arrived
  int told_lost = 0;
  for (int i = 0; i < frameworks; ++i)
    if (logs[i]->has("t" + std::to_string(i), TaskState::LOST)) {
      ++told_lost;
      logs[i]->post([](TestFramework& f) { f.teardown(); });
    }
  CHECK(told_lost == 0);

  // The agent comes back: every framework learns its task runs, and every
  // task still runs.
  hold->store(false);
  for (int i = 0; i < frameworks; ++i) {
    auto task = "t" + std::to_string(i);
    CHECK(wait_until(
        [&] {
          auto u = logs[i]->last(task);
          return u && u->reason == TaskReason::RECONCILIATION && u->state == TaskState::RUNNING;
        },
        30s));
  }
  std::this_thread::sleep_for(500ms);  // a kill, had one been sent, takes effect
  for (int i = 0; i < frameworks; ++i) {
    INFO("task t" << i);
    CHECK(alive(pids[i]));
    CHECK_FALSE(logs[i]->has("t" + std::to_string(i), TaskState::KILLED));
  }

  (*fw_node)->stop();
  (*agent_node)->stop();
  master_node->stop();
  kill_processes_under(agent_dir);
  destroy_agent_containers(agent_dir);
}
