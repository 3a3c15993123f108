// The master and its registry: what one master run records is what the next
// one knows. Every master of a Cluster shares one MemoryStore (the same
// contract as the SQLite store, tests/registry), so a restart is a kill -9
// of the master's node and a new master on another.

#include "master/harness.hpp"

using namespace tessera;
using namespace tessera::testing;

namespace {

// A store that reads fine and refuses every commit, as a full or broken disk.
class BrokenStore : public MemoryStore {
 public:
  expected<uint64_t> commit(uint64_t, const std::vector<RegistryChange>&) override {
    return make_error(Errc::os_error, "registry write: No space left on device");
  }
};

// What the cluster's registry holds now.
RegistryState registry_state(Cluster& c) {
  auto snapshot = c.registry->load();
  REQUIRE(snapshot);
  auto state = decode_registry(*snapshot);
  REQUIRE(state);
  return *state;
}

bool has_update(const FrameworkLog& log, const std::string& task, State state) {
  return std::any_of(log.updates.begin(), log.updates.end(),
                     [&](const Update& u) { return u.task == task && u.state == state; });
}

}  // namespace

TEST_CASE("a starting master holds what comes before its registry is read, then serves it",
          "[master][registry]") {
  Cluster c;
  // The agent's RegisterAgent is sent before the master has read its
  // registry; the scripted agent never retries.
  REQUIRE(c.master_node.spawn<Master>("master", c.config));
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  CHECK(agent.registered == 1);
  REQUIRE(c.master_actor());
  CHECK(c.master_actor()->serving());
  CHECK(c.master_actor()->counters().messages_before_recovery == 0);
  // Admitted once recorded: the registry holds the agent.
  auto state = registry_state(c);
  REQUIRE(state.agents.count(agent.id) == 1);
  CHECK(state.agents.at(agent.id).state == RegistryAgent::State::admitted);
  CHECK(state.epoch == 1);
}

TEST_CASE("a removed agent stays removed across a master restart", "[master][registry]") {
  Cluster c;
  c.config.agent_removal_timeout = 30s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  REQUIRE(agent.registered == 1);
  agent.answer_pings = false;
  c.sim.advance(40s);  // unreachable, then removed

  auto* m2 = c.restart_master();
  auto& an2 = c.sim.add_node("agent1b");
  AgentLog back;
  c.spawn_agent(an2, back, reregister_call(agent.id, "boot-1", 1, {}));
  CHECK(back.reregistered == 0);
  REQUIRE(back.shutdowns.size() == 1);
  CHECK(back.shutdowns[0].find("agent id " + agent.id + " was removed") != std::string::npos);
  CHECK(back.shutdowns[0].find("unreachable for too long") != std::string::npos);
  CHECK(m2 != &c.master_node);
  CHECK(c.master_actor()->counters().agents_refused_removed == 1);
}

TEST_CASE("a task told lost is killed, not adopted, when its agent returns to the next master",
          "[master][registry]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");  // not partition-aware: told TASK_LOST
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks.size() == 1);
  c.call(an, agent_addr, status_update(fw.id, "t1", State::RUNNING, "u-run"));
  REQUIRE(fw.updates.size() == 1);
  c.call(fn, fw_addr, ack_call(fw.id, fw.updates[0]));

  agent.answer_pings = false;
  c.sim.advance(5s);
  REQUIRE(fw.updates.size() == 2);
  CHECK(fw.updates[1].state == State::LOST);
  auto fid = fw.id;
  auto aid = agent.id;

  // The master dies; the next one hears the agent first, still running t1,
  // then the framework (failed over to a new instance).
  c.restart_master();
  auto& an2 = c.sim.add_node("agent1b");
  AgentLog back;
  auto back_addr = c.spawn_agent(an2, back, reregister_call(aid, "boot-1", 2, {{fid, "t1"}}));
  CHECK(back.reregistered == 1);
  CHECK(back.kills == std::vector<std::string>{"t1"});
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fid;
  auto fw2_addr = c.add_framework(fn2, again, "web");
  REQUIRE(again.ids == std::vector<std::string>{fid});
  // Its end is the agent's business: acknowledged by the master, never
  // forwarded: the framework heard TASK_LOST, its one terminal state.
  c.call(an2, back_addr, status_update(fid, "t1", State::KILLED, "u-killed"));
  CHECK(std::count(back.acks.begin(), back.acks.end(), "u-killed") == 1);
  c.call(fn2, fw2_addr, reconcile_call(fid, {}));
  c.sim.advance(1s);
  CHECK_FALSE(has_update(again, "t1", State::RUNNING));
  CHECK_FALSE(has_update(again, "t1", State::KILLED));
  CHECK(c.master_actor()->counters().status_updates_absorbed >= 1);
}

TEST_CASE("a framework removed stays removed across a master restart", "[master][registry]") {
  Cluster c;
  c.start_master();
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE(!fw.id.empty());
  c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           b.setTeardown();
         }));
  auto fid = fw.id;

  c.restart_master();
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fid;
  c.add_framework(fn2, again, "web");
  CHECK(again.ids.empty());
  REQUIRE(again.errors.size() == 1);
  CHECK(again.errors[0] == "framework " + fid + " has been removed");

  // One it never removed keeps its id, known before it resubscribes.
  auto& fn3 = c.sim.add_node("fw3");
  FrameworkLog other;
  c.add_framework(fn3, other, "batch", false, "other");
  REQUIRE(other.ids.size() == 1);
  c.restart_master();
  auto& fn4 = c.sim.add_node("fw4");
  FrameworkLog other_again;
  other_again.id = other.id;
  c.add_framework(fn4, other_again, "batch", false, "other");
  CHECK(other_again.ids == std::vector<std::string>{other.id});
  CHECK(other_again.errors.empty());
}

TEST_CASE("agents that never come back are unreachable when the window closes, for good",
          "[master][registry]") {
  Cluster c;
  c.config.agent_reregister_timeout = 30s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  c.add_framework(fn, fw, "web");
  REQUIRE(fw.offers.size() == 1);
  auto fid = fw.id;
  auto aid = agent.id;

  // The agent runs t1 (how it got there is not the point here) and does
  // not come back to the next master in time.
  c.restart_master();
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fid;
  auto fw2_addr = c.add_framework(fn2, again, "web");
  c.call(fn2, fw2_addr, reconcile_call(fid, {{"t1", aid}}));
  c.sim.advance(5s);
  CHECK_FALSE(has_update(again, "t1", State::LOST));  // it may still come back
  c.sim.advance(30s);
  REQUIRE(has_update(again, "t1", State::LOST));

  // Another master: the agent is recorded unreachable, and t1 told lost.
  c.restart_master();
  auto state = registry_state(c);
  CHECK(state.agents.at(aid).state == RegistryAgent::State::unreachable);
  CHECK(state.ended[aid].count({fid, "t1"}) == 1);
  auto& an2 = c.sim.add_node("agent1b");
  AgentLog back;
  c.spawn_agent(an2, back, reregister_call(aid, "boot-1", 2, {{fid, "t1"}}));
  CHECK(back.reregistered == 1);
  CHECK(back.kills == std::vector<std::string>{"t1"});
}

TEST_CASE("a master whose registry cannot be written stops rather than act", "[master][registry]") {
  Cluster c;
  c.config.registry = std::make_shared<BrokenStore>();
  c.start_master();
  CHECK_FALSE(c.master_actor());
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  CHECK(agent.registered == 0);
}

TEST_CASE("quota and weights set by an operator are back before a restarted master allocates",
          "[master][registry][operator]") {
  Cluster c;
  c.start_master();
  auto& on = c.sim.add_node("operator");
  CHECK(operator_call(c, on, "op1", quota_call("web", "cpus:1;mem:100")) == "");
  CHECK(operator_call(c, on, "op2", weight_call("web", 3)) == "");
  // Bad calls are refused with what was wrong, and change nothing.
  CHECK(operator_call(c, on, "op3", weight_call("web", -1)).find("bad weight") !=
        std::string::npos);
  CHECK(operator_call(c, on, "op4", quota_call("*", "cpus:1")).find("bad role") !=
        std::string::npos);

  c.restart_master();
  auto state = registry_state(c);
  REQUIRE(state.roles.count("web") == 1);
  CHECK(state.roles.at("web").weight == 3);
  CHECK(state.roles.at("web").quota.to_string() == "cpus:1;mem:100");

  // The first offer the new master makes to role web is within its quota.
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  c.add_framework(fn, fw, "web");
  c.sim.advance(2s);
  REQUIRE(!fw.offers.empty());
  auto offered = Resources::parse(fw.offers[0].resources);
  REQUIRE(offered);
  CHECK(Resources::parse("cpus:1;mem:100")->contains(*offered));
}
