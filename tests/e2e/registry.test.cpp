// The master's registry with real processes: `tessera master` on SQLite in
// its --work-dir, killed with SIGKILL and started again on the same port
// and work dir, remembers what it recorded.

#include "services/registry/registry.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <capnp/operator.capnp.h>
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <memory>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<ChildProcess> start_master(const std::string& listen, const std::string& dir,
                                           const std::string& registry) {
  return ChildProcess::start({TESSERA_BIN, "--log-level", "info", "master", "--listen", listen,
                              "--work-dir", dir, "--registry", registry, "--agent-ping-interval",
                              "0.2", "--agent-ping-timeout", "0.2", "--agent-pings-missed", "2",
                              "--agent-removal-timeout", "1"});
}

// "HOST:PORT" from the master's first line.
std::string master_at(ChildProcess& master) {
  auto line = master.wait_line("tessera master listening on master@");
  INFO(master.out() << master.err());
  REQUIRE(line);
  auto at = line->find("master@") + 7;
  return line->substr(at, line->find(' ', at) - at);
}

bool err_has(ChildProcess& p, const std::string& text) {
  return p.err().find(text) != std::string::npos;
}

}  // namespace

// A master on `registry` records a quota, an agent's removal and another's reservation; killed
// with SIGKILL and started again on the same port and registry, it knows all three.
static void removed_agent_and_quota_survive(const std::string& registry,
                                            const std::string& described) {
  TempDir dir;
  auto master_dir = (dir.path() / "master").string();
  auto master = start_master("127.0.0.1:0", master_dir, registry);
  auto at = master_at(*master);
  // (described empty: the default, registry.db in the master's work dir)
  auto expect = described.empty() ? "sqlite:" + master_dir + "/registry.db" : described;
  CHECK(master->out().find("registry " + expect) != std::string::npos);

  // An operator sets a quota over the network, from a node of its own.
  auto node = Node::start();
  REQUIRE(node);
  auto master_addr = Address::parse("master@" + at);
  REQUIRE(master_addr);
  int calls = 0;
  auto operator_call = [&](Outgoing call) {
    auto answer = std::make_shared<std::atomic<int>>(0);  // 1 done, -1 refused or failed
    REQUIRE((*node)->spawn<Probe>("operator-" + std::to_string(++calls),
                                  [answer, call, to = *master_addr](Probe& self) {
                                    self.request<wire::OperatorResponse>(
                                        to, call, 10s,
                                        [answer](const Received<wire::OperatorResponse>& m) {
                                          *answer = m.body().getError().size() == 0 ? 1 : -1;
                                        },
                                        [answer](const caf::error&) { *answer = -1; });
                                  }));
    REQUIRE(wait_until([&] { return answer->load() != 0; }, 15s));
    return answer->load() == 1;
  };
  CHECK(operator_call(build<wire::OperatorCall>([](wire::OperatorCall::Builder b) {
    auto q = b.initUpdateQuota();
    q.setRole("web");
    auto r = *Resources::parse("cpus:1");
    to_wire(r, q.initLimit(wire_size(r)));
  })));

  // An agent registers, then stops answering (SIGSTOP) until it is removed.
  auto agent = ChildProcess::start(
      {TESSERA_BIN, "--log-level", "info", "agent", "--master", at, "--listen", "127.0.0.1:0",
       "--work-dir", (dir.path() / "agent").string(), "--resources", "cpus:1;mem:256"});
  REQUIRE(wait_until([&] { return err_has(*master, "master: registered agent "); }, 30s));
  agent->kill(SIGSTOP);
  // (Its removal recorded: the master logs it only then.)
  REQUIRE(wait_until([&] { return err_has(*master, "master: removed agent "); }, 30s));

  // Another agent stays, with part of it reserved for role web.
  auto kept = ChildProcess::start(
      {TESSERA_BIN, "--log-level", "info", "agent", "--master", at, "--listen", "127.0.0.1:0",
       "--work-dir", (dir.path() / "kept").string(), "--resources", "cpus:2;mem:256"});
  REQUIRE(wait_until([&] { return kept->err().find(" as agent ") != std::string::npos; }, 30s));
  auto line = kept->err().substr(kept->err().find(" as agent ") + 10);
  auto kept_id = line.substr(0, line.find_first_of(" \n"));
  INFO("kept agent " << kept_id);
  CHECK(operator_call(build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
    auto r = b.initReserveResources();
    r.setAgentId(kept_id);
    auto reserved = *Resources::parse("cpus(web):0.5");
    to_wire(reserved, r.initResources(wire_size(reserved)));
  })));

  // kill -9 of the master; the next one, on the same port and work dir,
  // reads the registry.
  master->kill(SIGKILL);
  REQUIRE(master->wait_exit(10s));
  auto again = start_master(at, master_dir, registry);
  CHECK(master_at(*again) == at);
  REQUIRE(wait_until([&] { return err_has(*again, " serves (epoch 2)"); }, 30s));
  INFO(again->err());
  CHECK(err_has(*again, "1 agent(s) to reregister, 0 unreachable, 1 removed"));
  CHECK(err_has(*again, "1 role(s) with a weight or quota"));
  // The kept agent comes back, and what is reserved of it is still recorded.
  REQUIRE(wait_until([&] { return err_has(*again, "reregistered agent " + kept_id); }, 30s));
  auto store = make_store(registry, master_dir);
  REQUIRE(store);
  auto snapshot = (*store)->load();
  REQUIRE(snapshot);
  auto state = decode_registry(*snapshot);
  REQUIRE(state);
  REQUIRE(state->agents.count(kept_id) == 1);
  CHECK(state->agents.at(kept_id).reservations.to_string() == "cpus(web):0.5");

  // The agent wakes up and reregisters with its old id: refused.
  agent->kill(SIGCONT);
  REQUIRE(wait_until([&] { return err_has(*again, "reregisters after its removal"); }, 30s));
  CHECK(wait_until([&] { return err_has(*agent, "was removed by the master"); }, 30s));
  kept->kill(SIGTERM);
  CHECK(kept->wait_exit(30s));
}

TEST_CASE(
    "tessera master on SQLite: a removed agent stays removed, quota and reservations survive a "
    "kill -9",
    "[e2e][registry]") {
  removed_agent_and_quota_survive("sqlite", "");
}

TEST_CASE(
    "tessera master on ZooKeeper: a removed agent stays removed, quota and reservations survive a "
    "kill -9",
    "[e2e][registry][zookeeper]") {
  ZkServers zk(3);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  removed_agent_and_quota_survive(zk.spec, zk.spec);
}
