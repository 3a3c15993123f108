#pragma once
// Several `tessera master --zk` processes and agents that follow the
// leader, for the leader-election tests (ha.test.cpp on 127.0.0.1,
// ha_netns.test.cpp across network namespaces). Every process is stopped
// by pid when the cluster goes; agents are drained so their tasks end.

#include "e2e/agent_cleanup.hpp"
#include "e2e/test_framework.hpp"
#include "services/election/zk_election.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <capnp/operator.capnp.h>
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tessera::testing {

// A task's resources: room for its `tessera executor` even when built with
// the sanitizers (about 150 MiB resident there, within the task's memory
// plus the agent's 64 MiB executor headroom).
inline const std::string task_resources = "cpus:0.5;mem:128";

struct HaProcess {
  std::unique_ptr<ChildProcess> proc;
  std::string address;  // master@host:port (masters)
  std::string http;     // HOST:PORT of its HTTP API (masters)
  std::filesystem::path work_dir;

  bool logged(const std::string& text) const { return proc->err().find(text) != std::string::npos; }
  int count(const std::string& text) const {
    auto err = proc->err();
    int n = 0;
    for (auto at = err.find(text); at != std::string::npos; at = err.find(text, at + 1))
      ++n;
    return n;
  }
  bool alive() const { return !proc->exit_status(); }
  // Whether it leads now, as its log tells.
  bool leading() const {
    return alive() && count("master contender: leading") > count("master contender: stepping down");
  }
};

// argv run inside network namespace netns (none: here).
inline std::vector<std::string> in_netns(const std::string& netns, std::vector<std::string> argv) {
  if (netns.empty())
    return argv;
  std::vector<std::string> out{"/usr/sbin/ip", "netns", "exec", netns};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

class HaCluster {
 public:
  // Session timeout of every master's ZooKeeper session; a leader cut off
  // from ZooKeeper steps down after a sixth of it.
  static constexpr const char* session_timeout_ms = "3000";

  HaCluster(std::string zk_spec, std::filesystem::path dir, std::string host)
      : zk_(std::move(zk_spec)), dir_(std::move(dir)), host_(std::move(host)) {}
  ~HaCluster() {
    drain_agents();
    for (auto& m : masters)
      if (m.alive()) {
        m.proc->kill(SIGKILL);
        m.proc->wait_exit(std::chrono::seconds(10));
      }
  }

  // A master listening on listen (HOST:PORT), inside netns if given.
  HaProcess& start_master(const std::string& listen, const std::string& netns = "") {
    HaProcess m;
    m.work_dir = dir_ / ("master" + std::to_string(masters.size() + 1));
    m.proc = ChildProcess::start(in_netns(netns, {TESSERA_BIN,
                                                  "--log-level",
                                                  "info",
                                                  "master",
                                                  "--listen",
                                                  listen,
                                                  "--work-dir",
                                                  m.work_dir.string(),
                                                  "--zk",
                                                  zk_,
                                                  "--zk-session-timeout",
                                                  session_timeout_ms,
                                                  "--allocation-interval",
                                                  "0.2",
                                                  "--heartbeat-interval",
                                                  "1",
                                                  "--agent-ping-interval",
                                                  "0.5",
                                                  "--agent-ping-timeout",
                                                  "0.5",
                                                  "--agent-pings-missed",
                                                  "3",
                                                  "--agent-reregister-timeout",
                                                  "30"}));
    if (auto line = m.proc->wait_line("tessera master contending on master@")) {
      auto at = line->find("master@");
      m.address = line->substr(at, line->find(' ', at) - at);
    }
    if (auto line = m.proc->wait_line("HTTP API and web UI on http://")) {
      auto at = line->find("http://") + 7;
      m.http = line->substr(at, line->find('/', at) - at);
    }
    masters.push_back(std::move(m));
    return masters.back();
  }

  // n masters on this cluster's host, each on a port of its own.
  void start_masters(int n) {
    for (int i = 0; i < n; ++i)
      start_master(host_ + ":0");
  }

  // An agent following the leader through ZooKeeper, or given master (a
  // master's HOST:PORT).
  HaProcess& start_agent(const std::string& listen, const std::string& resources,
                         const std::string& netns = "", const std::string& master = "") {
    HaProcess a;
    a.work_dir = dir_ / ("agent" + std::to_string(agents.size() + 1));
    a.proc = ChildProcess::start(
        in_netns(netns, {TESSERA_BIN, "--log-level", "info", "agent", "--master",
                         master.empty() ? zk_ : master, "--listen", listen, "--work-dir",
                         a.work_dir.string(), "--resources", resources, "--isolation", "posix"}));
    agents.push_back(std::move(a));
    return agents.back();
  }

  // The index of the master that leads, other than `not_this`; -1 if none
  // does within the timeout.
  int wait_leader(int not_this, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    int found = -1;
    wait_until(
        [&] {
          for (size_t i = 0; i < masters.size(); ++i)
            if (int(i) != not_this && masters[i].leading())
              found = int(i);
          return found >= 0;
        },
        timeout);
    return found;
  }

  // Every agent drains (its tasks end, its checkpoints go) and exits.
  void drain_agents() {
    for (auto& a : agents) {
      if (!a.alive())
        continue;
      a.proc->kill(SIGUSR1);
      if (!a.proc->wait_exit(std::chrono::seconds(30))) {
        a.proc->kill(SIGKILL);
        a.proc->wait_exit(std::chrono::seconds(10));
        destroy_agent_containers(a.work_dir);
      }
    }
  }

  std::vector<HaProcess> masters;
  std::vector<HaProcess> agents;

 private:
  std::string zk_;
  std::filesystem::path dir_;
  std::string host_;
};

// A TestFramework on a node of its own (listening on host) that follows the
// leader through ZooKeeper; its log is what the test reads.
struct FollowingFramework {
  std::shared_ptr<ZkElection> detector;  // outlives the node: closes on the test's thread
  std::unique_ptr<Node> node;
  std::shared_ptr<TestFrameworkLog> log = std::make_shared<TestFrameworkLog>();

  FollowingFramework(const std::string& zk_spec, const std::string& role, bool partition_aware,
                     const std::string& host = "127.0.0.1") {
    NodeConfig nc;
    nc.host = host;
    auto started = Node::start(nc);
    REQUIRE(started);
    node = std::move(*started);
    auto opened = ZkElection::open(zk_spec, {});
    REQUIRE(opened);
    detector = *opened;
    auto config = test_framework_config(Address{}, role);
    config.detector = detector;
    config.framework.failover_timeout = std::chrono::seconds(60);
    if (partition_aware)
      config.framework.capabilities = {FrameworkCapability::PARTITION_AWARE};
    REQUIRE(node->spawn<TestFramework>("framework", config, log));
  }
  ~FollowingFramework() {
    if (node)
      node->stop();
  }
};

// After a failover to `now`: the agent reregistered with it, the framework
// resubscribed, and an explicit reconciliation says each of tasks runs; no
// update of any task ever said otherwise (none lost, failed, killed or
// unreachable).
inline void check_tasks_run_on(const HaProcess& now, TestFrameworkLog& log,
                               const std::vector<std::string>& tasks) {
  using namespace std::chrono_literals;
  INFO(now.proc->err());
  REQUIRE(wait_until([&] { return now.logged("master: reregistered agent "); }, 30s));
  REQUIRE(wait_until([&] { return log.subscribed() >= 2; }, 30s));
  std::vector<TaskRef> refs;
  for (const auto& t : tasks)
    refs.push_back({t, ""});
  log.post([refs](TestFramework& f) { f.reconcile(refs); });
  REQUIRE(wait_until(
      [&] {
        for (const auto& t : tasks)
          if (log.count(t, TaskState::RUNNING) < 2)  // the agent's, the reconciliation's
            return false;
        return true;
      },
      30s));
  for (const auto& u : log.updates()) {
    INFO(u.task_id << " " << int(u.state) << " " << u.message);
    CHECK((u.state == TaskState::STARTING || u.state == TaskState::RUNNING));
  }
}

// ZooKeeper servers on 127.0.0.1 and masters contending through them, one
// of which leads.
struct HaSetup {
  ZkServers zk;
  TempDir dir;
  HaCluster cluster;
  int leader = -1;

  HaSetup(int zk_servers, int masters) : zk(zk_servers), cluster(zk.spec, dir.path(), "127.0.0.1") {
    INFO(zk.why);
    REQUIRE(!zk.spec.empty());
    cluster.start_masters(masters);
    leader = cluster.wait_leader(-1);
    REQUIRE(leader >= 0);
  }
};

// An operator's quota for role, sent to master; true when it was recorded.
inline bool set_quota(const std::string& master, const std::string& role,
                      const std::string& limit) {
  auto node = Node::start();
  auto to = Address::parse(master);
  if (!node || !to)
    return false;
  auto answer = std::make_shared<std::atomic<int>>(0);
  (*node)->spawn<Probe>("operator", [answer, to = *to, role, limit](Probe& self) {
    self.request<wire::OperatorResponse>(
        to, build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
          auto q = b.initUpdateQuota();
          q.setRole(role);
          auto r = *Resources::parse(limit);
          to_wire(r, q.initLimit(wire_size(r)));
        }),
        std::chrono::seconds(10),
        [answer](const Received<wire::OperatorResponse>& m) {
          *answer = m.body().getError().size() == 0 ? 1 : -1;
        },
        [answer](const caf::error&) { *answer = -1; });
  });
  wait_until([&] { return answer->load() != 0; }, std::chrono::seconds(15));
  return answer->load() == 1;
}

}  // namespace tessera::testing
