// The master against scripted agents and frameworks, in deterministic mode:
// every message goes through the real runtime, time is virtual, and each
// test drives the protocol step by step and checks what the master says.

#include "master/harness.hpp"

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using State = wire::TaskState;
using Reason = wire::TaskStatus::Reason;

TEST_CASE("offers, a launch, an update and its acknowledgement", "[master]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:4;mem:1024");
  REQUIRE(agent.registered == 1);
  REQUIRE_FALSE(agent.id.empty());

  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE_FALSE(fw.id.empty());
  c.sim.run();
  REQUIRE(fw.offers.size() == 1);
  CHECK(fw.offers[0].resources == "cpus:4;mem:1024");
  CHECK(fw.offers[0].role == "web");
  CHECK(fw.offers[0].agent == agent.id);
  CHECK(fw.offers[0].agent_address == agent_addr.to_string());

  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1;mem:128"));
  REQUIRE(agent.run_tasks == std::vector<std::string>{"t1"});

  // What the task did not use comes back in the next cycle (refuse 0 s).
  c.sim.advance(1s);
  REQUIRE(fw.offers.size() == 2);
  CHECK(fw.offers[1].resources == "cpus:3;mem:896");

  c.call(an, agent_addr, status_update(fw.id, "t1", State::RUNNING, "uuid-1"));
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::RUNNING);
  CHECK(fw.updates[0].uuid == "uuid-1");
  CHECK(fw.updates[0].agent == agent.id);
  c.call(fn, fw_addr, ack_call(fw.id, fw.updates[0]));
  CHECK(agent.acks == std::vector<std::string>{"uuid-1"});
}

TEST_CASE("bad accepts are answered with TASK_ERROR or TASK_DROPPED and a reason", "[master]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  auto offer = fw.offers[0].id;

  SECTION("more than offered") {
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "big", "cpus:3;mem:128"));
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::ERROR);
    CHECK(fw.updates[0].reason == Reason::TASK_INVALID);
    CHECK(fw.updates[0].message.find("offers have only") != std::string::npos);
    CHECK(agent.run_tasks.empty());
  }
  SECTION("an unknown offer") {
    c.call(fn, fw_addr, launch_call(fw.id, {"no-such-offer"}, "t", "cpus:1"));
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::DROPPED);
    CHECK(fw.updates[0].reason == Reason::INVALID_OFFERS);
    // The real offer is still good.
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "t", "cpus:1"));
    CHECK(agent.run_tasks == std::vector<std::string>{"t"});
  }
  SECTION("an empty command and a bad task id") {
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "t", "cpus:1", ""));
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::ERROR);
    CHECK(fw.updates[0].message == "empty shell command");
  }
  SECTION("a duplicate task id") {
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "t", "cpus:1"));
    c.sim.advance(1s);
    REQUIRE(fw.offers.size() == 2);
    c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[1].id}, "t", "cpus:1"));
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::ERROR);
    CHECK(fw.updates[0].message.find("already in use") != std::string::npos);
  }
  SECTION("an offer used twice") {
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "a", "cpus:1"));
    c.call(fn, fw_addr, launch_call(fw.id, {offer}, "b", "cpus:1"));
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].task == "b");
    CHECK(fw.updates[0].state == State::DROPPED);
  }
  // Whatever went wrong, the master still serves: the resources come back.
  c.sim.advance(1s);
  CHECK(fw.offers.size() >= 2);
}

TEST_CASE("a call from an address that did not subscribe is refused", "[master]") {
  Cluster c;
  c.start_master();
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  c.add_framework(fn, fw, "web");
  FrameworkLog intruder;
  auto intruder_addr = c.add_framework(fn, intruder, "web", false, "intruder");
  c.call(fn, intruder_addr, launch_call(fw.id, {"x"}, "t", "cpus:1"));
  REQUIRE(intruder.errors.size() == 1);
  CHECK(intruder.errors[0].find("not subscribed") != std::string::npos);
}

TEST_CASE("an agent that stops answering pings becomes unreachable", "[master]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog aware, plain;
  auto aware_addr = c.add_framework(fn, aware, "a", true, "aware");
  auto plain_addr = c.add_framework(fn, plain, "b", false, "plain");
  c.sim.run();
  // One agent, two frameworks: whoever got the offer launches, the other
  // gets the rest after the launch.
  auto launch_all = [&](FrameworkLog& log, const Address& addr, const std::string& task) {
    for (int i = 0; i < 3 && log.offers.empty(); ++i)
      c.sim.advance(1s);
    REQUIRE_FALSE(log.offers.empty());
    c.call(fn, addr, launch_call(log.id, {log.offers.back().id}, task, "cpus:1;mem:128"));
  };
  launch_all(aware, aware_addr, "ta");
  launch_all(plain, plain_addr, "tp");
  REQUIRE(agent.run_tasks.size() == 2);

  agent.answer_pings = false;
  c.sim.advance(2s);
  CHECK(aware.updates.empty());  // two misses: not yet
  c.sim.advance(3s);
  REQUIRE(aware.updates.size() == 1);
  CHECK(aware.updates[0].state == State::UNREACHABLE);
  CHECK(aware.updates[0].reason == Reason::AGENT_UNREACHABLE);
  REQUIRE(plain.updates.size() == 1);
  CHECK(plain.updates[0].state == State::LOST);

  // Reconciliation says the same.
  c.call(fn, aware_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(aware.id);
           auto t = b.initReconcile().initTasks(2);
           t[0].setTaskId("ta");
           t[1].setTaskId("never");
           t[1].setAgentId(agent.id);
         }));
  REQUIRE(aware.updates.size() == 3);
  CHECK(aware.updates[1].state == State::UNREACHABLE);
  CHECK(aware.updates[1].reason == Reason::RECONCILIATION);
  CHECK(aware.updates[2].state == State::UNREACHABLE);  // its agent is unreachable

  // The agent comes back: it reregisters with its tasks, which run again.
  agent.answer_pings = true;
  c.call(an, agent_addr, build<wire::ReregisterAgent>([&](wire::ReregisterAgent::Builder b) {
           auto info = b.initAgentInfo();
           info.setAgentId(agent.id);
           auto total = *Resources::parse("cpus:2;mem:512");
           to_wire(total, info.initResources(wire_size(total)));
           auto tasks = b.initTasks(2);
           auto r = *Resources::parse("cpus:1;mem:128");
           tasks[0].setFrameworkId(aware.id);
           tasks[0].initTask().setTaskId("ta");
           to_wire(r, tasks[0].getTask().initResources(wire_size(r)));
           tasks[0].setState(State::RUNNING);
           tasks[0].setLatestState(State::RUNNING);
           tasks[1].setFrameworkId(plain.id);
           tasks[1].initTask().setTaskId("tp");
           to_wire(r, tasks[1].getTask().initResources(wire_size(r)));
           tasks[1].setState(State::RUNNING);
           tasks[1].setLatestState(State::RUNNING);
         }));
  CHECK(agent.reregistered == 1);
  // The plain framework was told its task is lost: the copy that came back
  // is killed, not adopted.
  CHECK(agent.kills == std::vector<std::string>{"tp"});
  c.call(fn, aware_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(aware.id);
           b.initReconcile();
         }));
  REQUIRE(aware.updates.size() == 4);
  CHECK(aware.updates[3].task == "ta");

  // That kill may be lost too: it is sent again with every ping until the
  // agent reports the task over, and that report goes no further.
  c.sim.advance(3s);
  CHECK(std::count(agent.kills.begin(), agent.kills.end(), "tp") >= 3);
  c.call(an, agent_addr, build<wire::StatusUpdate>([&](wire::StatusUpdate::Builder b) {
           b.setFrameworkId(plain.id);
           auto s = b.initStatus();
           s.setTaskId("tp");
           s.setAgentId(agent.id);
           s.setState(State::KILLED);
           s.setUuid(data(std::string("uuid-tp-killed")));
           b.setLatestState(State::KILLED);
         }));
  auto kills = agent.kills.size();
  c.sim.advance(3s);
  CHECK(agent.kills.size() == kills);
  CHECK(plain.updates.size() == 1);  // only its TASK_LOST
  CHECK(std::count(agent.acks.begin(), agent.acks.end(), "uuid-tp-killed") == 1);
  CHECK(aware.updates[3].state == State::RUNNING);
  // The plain framework's task stays lost.
  c.call(fn, plain_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(plain.id);
           b.initReconcile();
         }));
  CHECK(plain.updates.back().state == State::LOST);
}

TEST_CASE("a framework keeps its tasks within its failover timeout, not after", "[master]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", false, "fw", int64_t{10'000'000'000});
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks.size() == 1);

  // The framework's process dies; a new instance comes back within 10 s.
  c.sim.crash(fn);
  c.sim.run();
  c.sim.advance(5s);
  CHECK(agent.shutdown_frameworks.empty());
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fw.id;
  auto again_addr = c.add_framework(fn2, again, "web", false, "fw", int64_t{10'000'000'000});
  CHECK(again.id == fw.id);
  c.call(fn2, again_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           b.initReconcile();
         }));
  REQUIRE(again.updates.size() == 1);
  CHECK(again.updates[0].task == "t1");
  CHECK(again.updates[0].state == State::STAGING);
  c.sim.advance(20s);
  CHECK(agent.shutdown_frameworks.empty());

  // Gone for longer than the timeout: its tasks are killed.
  c.sim.crash(fn2);
  c.sim.run();
  c.sim.advance(11s);
  CHECK(agent.shutdown_frameworks == std::vector<std::string>{fw.id});
}

TEST_CASE("offers are rescinded after the offer timeout", "[master]") {
  Cluster c;
  c.config.offer_timeout = 3s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE(fw.offers.size() == 1);
  c.sim.advance(4s);
  REQUIRE(fw.rescinded == std::vector<std::string>{fw.offers[0].id});
  // The resources come back in a new offer, and the old id no longer works.
  REQUIRE(fw.offers.size() >= 2);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "late", "cpus:1"));
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::LOST);
  CHECK(fw.updates[0].reason == Reason::INVALID_OFFERS);
}

TEST_CASE("two frameworks in different roles share the agents fairly", "[master]") {
  Cluster c;
  c.start_master();
  auto& fn = c.sim.add_node("fw");
  FrameworkLog a, b;
  c.add_framework(fn, a, "analytics", false, "a");
  c.add_framework(fn, b, "web", false, "b");
  std::vector<AgentLog> agents(4);
  for (size_t i = 0; i < agents.size(); ++i) {
    auto& n = c.sim.add_node("agent" + std::to_string(i));
    c.add_agent(n, agents[i], "cpus:2;mem:1024");
  }
  c.sim.advance(1s);
  // Each holds what it was offered, so DRF alternates: two agents each.
  CHECK(a.offers.size() == 2);
  CHECK(b.offers.size() == 2);
}

TEST_CASE("a task whose launch never reached its agent ends DROPPED after an audit",
          "[master][audit]") {
  Cluster c;
  c.config.agent_task_audit_interval = 5s;
  c.config.agent_task_audit_age = 3s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  // Two launches on a link that stays up; the second's RunTask is lost.
  agent.lost_launches = {"lost"};
  c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           auto a = b.initAccept();
           a.initOfferIds(1).set(0, fw.offers[0].id);
           auto launch = a.initOperations(1)[0].initLaunch(2);
           auto r = *Resources::parse("cpus:1");
           for (unsigned i = 0; i < 2; ++i) {
             launch[i].setTaskId(i == 0 ? "kept" : "lost");
             launch[i].setName("t");
             launch[i].initCommand().setShell("true");
             to_wire(r, launch[i].initResources(wire_size(r)));
           }
         }));
  REQUIRE(agent.run_tasks == std::vector<std::string>{"kept"});
  // Nothing is said before the launch is old enough to be audited.
  c.sim.advance(2s);
  CHECK(agent.audited.empty());
  CHECK(fw.updates.empty());
  c.sim.advance(10s);
  // Both were audited (both still STAGING: this agent sends no updates);
  // only the one it never got ends, DROPPED as Mesos reports a task its
  // agent does not know.
  CHECK(std::count(agent.audited.begin(), agent.audited.end(), "kept") >= 1);
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].task == "lost");
  CHECK(fw.updates[0].state == State::DROPPED);
  CHECK(fw.updates[0].reason == Reason::RECONCILIATION);
  // Reconciliation agrees, and the kept task is still STAGING.
  c.call(fn, fw_addr, reconcile_call(fw.id, {{"lost", agent.id}, {"kept", agent.id}}));
  REQUIRE(fw.updates.size() == 3);
  CHECK(fw.updates[1].state == State::DROPPED);
  CHECK(fw.updates[2].state == State::STAGING);
}

TEST_CASE("an agent still running a removed framework is told to shut it down again",
          "[master][teardown]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           b.setTeardown();
         }));
  // The ShutdownFramework of the teardown was lost: the agent still runs
  // the framework's tasks and says so in its pongs.
  auto before = agent.shutdown_frameworks.size();
  agent.frameworks_reported = {fw.id, "a-framework-this-master-never-knew"};
  c.sim.advance(3s);
  auto again = std::count(agent.shutdown_frameworks.begin() + static_cast<long>(before),
                          agent.shutdown_frameworks.end(), fw.id);
  CHECK(again >= 2);  // once per ping until it is gone
  // A framework the master never knew is not shut down (it may resubscribe).
  CHECK(std::count(agent.shutdown_frameworks.begin(), agent.shutdown_frameworks.end(),
                   "a-framework-this-master-never-knew") == 0);
  agent.frameworks_reported.clear();
  auto settled = agent.shutdown_frameworks.size();
  c.sim.advance(3s);
  CHECK(agent.shutdown_frameworks.size() == settled);
}

TEST_CASE("an agent unreachable past the removal timeout is removed, its tasks are gone",
          "[master]") {
  Cluster c;
  c.config.agent_removal_timeout = 60s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  agent.answer_pings = false;
  c.sim.advance(5s);
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::UNREACHABLE);
  c.sim.advance(61s);
  REQUIRE(fw.updates.size() == 2);
  CHECK(fw.updates[1].state == State::GONE);
  CHECK(fw.updates[1].reason == Reason::AGENT_REMOVED);
  // Forgotten: reconciliation knows it only as a completed task.
  c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           b.initReconcile().initTasks(1)[0].setTaskId("t1");
         }));
  REQUIRE(fw.updates.size() == 3);
  CHECK(fw.updates[2].state == State::GONE);
}

TEST_CASE("a valid task group launches whole, with one RunTaskGroup", "[master][group]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE(fw.offers.size() == 1);

  SECTION("the master names the executor") {
    c.call(fn, fw_addr,
           launch_group_call(fw.id, fw.offers[0].id,
                             {{"web", "cpus:1;mem:256"}, {"sidecar", "cpus:0.5;mem:64"}}));
    CHECK(fw.updates.empty());
    CHECK(agent.run_tasks.empty());
    REQUIRE(agent.run_groups.size() == 1);
    const auto& g = agent.run_groups[0];
    CHECK(g.framework == fw.id);
    CHECK(g.executor == "group-web");
    CHECK(g.type == wire::ExecutorInfo::Type::DEFAULT);
    CHECK(g.executor_framework == fw.id);
    CHECK(g.tasks == std::vector<std::string>{"web", "sidecar"});
    CHECK(g.task_agents == std::vector<std::string>{agent.id, agent.id});
    // Both are booked: the rest comes back, and both reconcile as STAGING.
    c.sim.advance(1s);
    REQUIRE(fw.offers.size() == 2);
    CHECK(fw.offers[1].resources == "cpus:2.5;mem:704");
    c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
             b.setFrameworkId(fw.id);
             b.initReconcile();
           }));
    REQUIRE(fw.updates.size() == 2);
    CHECK(fw.updates[0].state == State::STAGING);
    CHECK(fw.updates[1].state == State::STAGING);
  }
  SECTION("the framework names the executor") {
    c.call(fn, fw_addr,
           launch_group_call(fw.id, fw.offers[0].id, {{"a", "cpus:1"}, {"b", "cpus:1"}}, "pod-1"));
    REQUIRE(agent.run_groups.size() == 1);
    CHECK(agent.run_groups[0].executor == "pod-1");
    CHECK(agent.run_groups[0].executor_framework == fw.id);
  }
}

TEST_CASE("an invalid task group launches nothing, every task is TASK_GROUP_INVALID",
          "[master][group]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE(fw.offers.size() == 1);
  auto offer = fw.offers[0].id;

  auto all_invalid = [&](const std::vector<std::string>& tasks, const std::string& why) {
    REQUIRE(fw.updates.size() == tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      CHECK(fw.updates[i].task == tasks[i]);
      CHECK(fw.updates[i].state == State::ERROR);
      CHECK(fw.updates[i].reason == Reason::TASK_GROUP_INVALID);
      CHECK(fw.updates[i].message.find(why) != std::string::npos);
    }
    CHECK(agent.run_groups.empty());
    CHECK(agent.run_tasks.empty());
  };

  SECTION("each task fits, their sum does not") {
    c.call(fn, fw_addr,
           launch_group_call(fw.id, offer, {{"a", "cpus:1.5;mem:128"}, {"b", "cpus:1;mem:128"}}));
    all_invalid({"a", "b"}, "task 'b': task uses cpus:1;mem:128 but the offers have only");
  }
  SECTION("a duplicate task id within the group") {
    c.call(fn, fw_addr, launch_group_call(fw.id, offer, {{"a", "cpus:0.5"}, {"a", "cpus:0.5"}}));
    all_invalid({"a", "a"}, "task 'a': task id 'a' is already in use");
  }
  SECTION("a task without a command") {
    c.call(fn, fw_addr,
           launch_group_call(fw.id, offer, {{"a", "cpus:0.5"}, {"b", "cpus:0.5", ""}}));
    all_invalid({"a", "b"}, "task 'b': empty shell command");
  }
  // Nothing was booked: the whole offer comes back.
  c.sim.advance(1s);
  REQUIRE(fw.offers.size() == 2);
  CHECK(fw.offers[1].resources == "cpus:2;mem:512");
}

TEST_CASE("an agent reregistering after its removal is told to shut down", "[master]") {
  Cluster c;
  c.config.agent_removal_timeout = 60s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks.size() == 1);

  SECTION("within the removal timeout: readmitted with its tasks") {
    agent.answer_pings = false;
    c.sim.advance(5s);
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::UNREACHABLE);
    agent.answer_pings = true;
    c.call(an, agent_addr, reregister(agent.id, fw.id, "t1"));
    CHECK(agent.reregistered == 1);
    CHECK(agent.shutdowns.empty());
    CHECK(agent.kills.empty());
  }
  SECTION("after the removal timeout: ShutdownAgent naming the removed id") {
    agent.answer_pings = false;
    c.sim.advance(66s);
    REQUIRE(fw.updates.size() == 2);
    CHECK(fw.updates[1].state == State::GONE);
    c.call(an, agent_addr, reregister(agent.id, fw.id, "t1"));
    CHECK(agent.reregistered == 0);
    REQUIRE(agent.shutdowns.size() == 1);
    CHECK(agent.shutdowns[0].find("agent id " + agent.id + " was removed") != std::string::npos);
    CHECK(agent.shutdowns[0].find("unreachable for too long") != std::string::npos);
    // The task stays gone: nothing was adopted.
    c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
             b.setFrameworkId(fw.id);
             b.initReconcile().initTasks(1)[0].setTaskId("t1");
           }));
    CHECK(fw.updates.back().state == State::GONE);
  }
}

TEST_CASE("an agent restarted from checkpoints resends an update whose ack it lost", "[master]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  c.call(an, agent_addr, status_update(fw.id, "t1", State::FINISHED, "u-end"));
  REQUIRE(fw.updates.size() == 1);
  c.call(fn, fw_addr, ack_call(fw.id, fw.updates[0]));
  REQUIRE(agent.acks == std::vector<std::string>{"u-end"});  // the master forgot t1

  // The agent crashed before it recorded the acknowledgement: it comes back
  // with t1 still waiting on u-end, and resends it.
  c.call(an, agent_addr, build<wire::ReregisterAgent>([&](wire::ReregisterAgent::Builder b) {
           auto info = b.initAgentInfo();
           info.setAgentId(agent.id);
           auto total = *Resources::parse("cpus:2;mem:512");
           to_wire(total, info.initResources(wire_size(total)));
           auto t = b.initTasks(1)[0];
           auto r = *Resources::parse("cpus:1");
           t.setFrameworkId(fw.id);
           t.initTask().setTaskId("t1");
           to_wire(r, t.getTask().initResources(wire_size(r)));
           t.setState(State::FINISHED);
           t.setLatestState(State::FINISHED);
           t.setStatusUuid(data("u-end"));
         }));
  CHECK(agent.reregistered == 1);
  CHECK(agent.shutdowns.empty());
  c.call(an, agent_addr, status_update(fw.id, "t1", State::FINISHED, "u-end"));
  // The framework acknowledged it already: the master acknowledges the
  // resent update itself, and the framework does not hear of t1 again.
  CHECK(fw.updates.size() == 1);
  CHECK(agent.acks == std::vector<std::string>{"u-end", "u-end"});
  // Its resources were not counted twice: the whole agent is offered again.
  c.sim.advance(1s);
  CHECK(fw.offers.back().resources == "cpus:2;mem:512");
  c.call(fn, fw_addr, build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
           b.setFrameworkId(fw.id);
           b.initReconcile();
         }));
  CHECK(fw.updates.size() == 1);  // implicit reconciliation: no live task
}

// -- idempotence and failover (issue 9) ----------------------------------------

TEST_CASE("retried RegisterAgents of one agent boot get one agent id", "[master][idempotence]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  // The agent retried while the master was paused: five more copies of its
  // registration are queued behind the first.
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  for (int i = 0; i < 5; ++i)
    c.call(an, agent_addr, register_call("boot-1"));
  REQUIRE(agent.ids.size() == 6);
  for (const auto& id : agent.ids)
    CHECK(id == agent.ids.front());  // the master holds the id the agent kept
  CHECK(agent.shutdowns.empty());

  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  REQUIRE(fw.offers.size() == 1);
  CHECK(fw.offers[0].agent == agent.ids.front());
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks == std::vector<std::string>{"t1"});

  SECTION("another boot from the same address is an agent restarted without its state") {
    c.call(an, agent_addr, register_call("boot-2"));
    REQUIRE(agent.ids.size() == 7);
    CHECK(agent.ids.back() != agent.ids.front());
    REQUIRE(fw.updates.size() == 1);
    CHECK(fw.updates[0].state == State::LOST);
    CHECK(fw.updates[0].reason == Reason::AGENT_RESTARTED);
    // A late copy from the replaced boot is ignored, not a third agent.
    c.call(an, agent_addr, register_call("boot-1"));
    CHECK(agent.ids.size() == 7);
    c.call(fn, fw_addr, reconcile_call(fw.id, {}));
    CHECK(fw.updates.size() == 1);
  }
}

TEST_CASE("a stale duplicate ReregisterAgent does not lose tasks launched since",
          "[master][idempotence]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);

  // The agent lost the master and reregisters (episode 1), with nothing
  // running; under load its retry of episode 1 is still on the way.
  c.call(an, agent_addr, reregister_call(agent.id, "boot-1", 1, {}));
  REQUIRE(agent.reregistered == 1);
  c.sim.advance(1s);
  REQUIRE_FALSE(fw.offers.empty());
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers.back().id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks == std::vector<std::string>{"t1"});

  // The retry arrives after the launch: answered again, t1 untouched.
  c.call(an, agent_addr, reregister_call(agent.id, "boot-1", 1, {}));
  CHECK(agent.reregistered == 2);
  CHECK(fw.updates.empty());
  // An even older episode is ignored.
  c.call(an, agent_addr, reregister_call(agent.id, "boot-1", 0, {}));
  CHECK(agent.reregistered == 2);
  CHECK(fw.updates.empty());
  c.call(fn, fw_addr, reconcile_call(fw.id, {{"t1", agent.id}}));
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::STAGING);

  // A new episode that does not have t1: the RunTask crossed it (the agent
  // drops launches while unregistered), so t1 is gone.
  c.call(an, agent_addr, reregister_call(agent.id, "boot-1", 2, {}));
  CHECK(agent.reregistered == 3);
  REQUIRE(fw.updates.size() == 2);
  CHECK(fw.updates[1].state == State::GONE);
  CHECK(fw.updates[1].reason == Reason::AGENT_RESTARTED);
}

TEST_CASE("after a master restart a task on an agent not yet back is neither lost nor killed",
          "[master][failover]") {
  Cluster c;
  c.config.agent_reregister_timeout = 60s;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");  // not partition-aware, as `tessera run`
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  REQUIRE(agent.run_tasks.size() == 1);
  auto fid = fw.id;
  auto aid = agent.id;

  // kill -9 of the master; a new one starts with no state.
  c.sim.crash(c.master_node);
  c.sim.run();
  auto& m2 = c.sim.add_node("master2");
  REQUIRE(m2.spawn<Master>("master", c.config));
  c.master = m2.address_of("master");
  c.sim.run();

  // The framework resubscribes first and asks where t1 is (as `tessera run`
  // does after a reconnection): no answer while t1's agent may come back.
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fid;
  fw_addr = c.add_framework(fn2, again, "web");
  REQUIRE(again.ids == std::vector<std::string>{fid});
  c.call(fn2, fw_addr, reconcile_call(fid, {{"t1", aid}, {"t9", "S-never"}, {"t8", ""}}));
  c.sim.advance(5s);
  // (No agent named: nothing to wait for; unknown at once, as Mesos.)
  REQUIRE(again.updates.size() == 1);
  CHECK(again.updates[0].task == "t8");
  CHECK(again.updates[0].state == State::LOST);
  again.updates.clear();
  // A kill of a task this master does not know yet waits as well.
  c.call(fn2, fw_addr, kill_call(fid, "t1", aid));
  CHECK(again.updates.empty());

  // The agent reregisters with t1: the framework learns it runs; the kill
  // it asked for is carried out; nothing else is killed or shut down.
  // (It reconnects from a new node: this master never heard from the old one.)
  auto& an2 = c.sim.add_node("agent1b");
  AgentLog back;
  c.spawn_agent(an2, back, reregister_call(aid, "boot-1", 1, {{fid, "t1"}}));
  CHECK(back.reregistered == 1);
  REQUIRE(again.updates.size() == 1);
  CHECK(again.updates[0].task == "t1");
  CHECK(again.updates[0].state == State::RUNNING);
  CHECK(again.updates[0].reason == Reason::RECONCILIATION);
  CHECK(back.kills == std::vector<std::string>{"t1"});
  CHECK(back.shutdown_frameworks.empty());

  // The agents that never come back: answered when the window closes.
  c.sim.advance(60s);
  REQUIRE(again.updates.size() == 2);
  CHECK(again.updates[1].task == "t9");
  CHECK(again.updates[1].state == State::LOST);
  CHECK(back.shutdown_frameworks.empty());
}

TEST_CASE("a kill sent while the task's agent is unreachable is carried out when it returns",
          "[master][authority]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  auto agent_addr = c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web", /*partition_aware=*/true);
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_call(fw.id, {fw.offers[0].id}, "t1", "cpus:1"));
  agent.answer_pings = false;
  c.sim.advance(5s);
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::UNREACHABLE);

  c.call(fn, fw_addr, kill_call(fw.id, "t1", agent.id));
  CHECK(agent.kills.empty());
  agent.answer_pings = true;
  c.call(an, agent_addr, reregister_call(agent.id, "boot-1", 1, {{fw.id, "t1"}}));
  CHECK(agent.reregistered == 1);
  CHECK(agent.kills == std::vector<std::string>{"t1"});
}

TEST_CASE("a status update is applied only from the agent the task is on", "[master][authority]") {
  Cluster c;
  c.start_master();
  auto& a1n = c.sim.add_node("agent1");
  auto& a2n = c.sim.add_node("agent2");
  AgentLog a1, a2;
  auto a1_addr = c.add_agent(a1n, a1, "cpus:2;mem:512", "boot-1");
  auto a2_addr = c.add_agent(a2n, a2, "cpus:2;mem:512", "boot-2");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "web");
  c.sim.advance(1s);
  std::string offer;
  for (auto& o : fw.offers)
    if (o.agent == a1.id)
      offer = o.id;
  REQUIRE_FALSE(offer.empty());
  c.call(fn, fw_addr, launch_call(fw.id, {offer}, "t1", "cpus:1"));
  REQUIRE(a1.run_tasks == std::vector<std::string>{"t1"});

  c.call(a2n, a2_addr, status_update(fw.id, "t1", State::FAILED, "forged"));
  CHECK(fw.updates.empty());
  c.call(a1n, a1_addr, status_update(fw.id, "t1", State::RUNNING, "real"));
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].state == State::RUNNING);
  CHECK(fw.updates[0].agent == a1.id);
}

TEST_CASE("a retried first SUBSCRIBE gets the same framework", "[master][idempotence]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  // The framework's subscribe is answered late: after its subscribe timeout
  // (2 s here) it retries with the same subscription id.
  auto fw_addr = fn.spawn<Probe>("framework", [&fw, &c](Probe& self) {
    self.on<wire::SchedulerEvent>([&fw](const Received<wire::SchedulerEvent>& m) {
      auto e = m.body();
      if (e.isSubscribed())
        fw.ids.push_back(str(e.getSubscribed().getFrameworkId()));
      else if (e.isOffers())
        for (auto o : e.getOffers())
          fw.offers.push_back({str(o.getOfferId()), str(o.getAgentId()), "", "", ""});
      else if (e.isRescind())
        fw.rescinded.push_back(str(e.getRescind()));
    });
    auto master = c.master;
    self.send(master, Cluster::subscribe_call("", "web", false, 0, "sub-1"));
    self.after(2s, [&self, master] {
      self.send(master, Cluster::subscribe_call("", "web", false, 0, "sub-1"));
    });
    self.after(4s, [&self, master] {
      self.send(master, Cluster::subscribe_call("", "web", false, 0, "sub-2"));
    });
  });
  REQUIRE(fw_addr);
  c.sim.advance(1s);
  REQUIRE(fw.ids.size() == 1);
  REQUIRE(fw.offers.size() == 1);
  c.sim.advance(1s);
  REQUIRE(fw.ids.size() == 2);
  CHECK(fw.ids[1] == fw.ids[0]);
  // The offer made before the retry is rescinded and made again.
  CHECK(fw.rescinded == std::vector<std::string>{fw.offers[0].id});
  c.sim.advance(1s);
  REQUIRE(fw.offers.size() == 2);
  // Another instance (another subscription id) is another framework.
  c.sim.advance(1s);
  REQUIRE(fw.ids.size() == 3);
  CHECK(fw.ids[2] != fw.ids[0]);
}

TEST_CASE("a framework failing over to a new instance has its old offers rescinded",
          "[master][idempotence]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:2;mem:512", "boot-1");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  c.add_framework(fn, fw, "web", false, "fw", int64_t{60'000'000'000});
  REQUIRE(fw.offers.size() == 1);
  // A second instance takes over while the first still holds the offer.
  auto& fn2 = c.sim.add_node("fw2");
  FrameworkLog again;
  again.id = fw.id;
  c.add_framework(fn2, again, "web", false, "fw", int64_t{60'000'000'000});
  REQUIRE(again.ids == std::vector<std::string>{fw.id});
  // The agent's resources are not stuck in an offer nobody will use.
  c.sim.advance(1s);
  REQUIRE(again.offers.size() == 1);
  CHECK(again.offers[0].resources == "cpus:2;mem:512");
}

TEST_CASE("an event subscriber that comes later leaves no gap in an earlier one's stream",
          "[master]") {
  Cluster c;
  c.start_master();
  // Each batch a subscriber got: its first sequence and its size.
  struct Seen {
    std::vector<std::pair<uint64_t, uint64_t>> batches;
    // The next sequence expected, and the gaps found.
    uint64_t next = 0;
    int gaps = 0;
  };
  auto subscribe = [&](const std::string& name, Seen& seen) {
    REQUIRE(c.master_node.spawn<Probe>(name, [&seen, &c](Probe& self) {
      self.on<wire::MasterEventBatch>([&seen](const Received<wire::MasterEventBatch>& m) {
        auto first = m.body().getFirstSequence();
        if (!m.body().getReset() && first != seen.next)
          ++seen.gaps;
        seen.next = first + m.body().getEvents().size();
        seen.batches.push_back({first, m.body().getEvents().size()});
      });
      self.send(c.master, build<wire::SubscribeMasterEvents>([](auto) {}));
    }));
    c.sim.run();
  };
  Seen early, late;
  subscribe("early", early);
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  c.add_framework(fn, fw, "web");
  c.sim.run();
  // The late one's snapshot (an agent, a framework, an offer, ...) ends where
  // the stream is: the next change follows both without a gap.
  subscribe("late", late);
  REQUIRE(!late.batches.empty());
  CHECK(late.next == early.next);
  auto& an2 = c.sim.add_node("agent2");
  AgentLog agent2;
  c.add_agent(an2, agent2, "cpus:2;mem:512");
  c.sim.run();
  CHECK(early.gaps == 0);
  CHECK(late.gaps == 0);
  CHECK(early.next == late.next);
  CHECK(early.batches.size() >= 3);
}
