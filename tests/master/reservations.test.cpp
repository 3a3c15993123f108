// Dynamic reservations: RESERVE_RESOURCES / UNRESERVE_RESOURCES from an
// operator, what the allocator then offers to whom, what is refused, and
// what a restarted master remembers.

#include "master/harness.hpp"

using namespace tessera;
using namespace tessera::testing;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string agent_total(Cluster& c, const std::string& id) {
  for (auto& a : c.master_actor()->view().agents)
    if (a.id == id)
      return a.total.to_string();
  return "no agent " + id;
}

RegistryAgent agent_record_of(Cluster& c, const std::string& id) {
  auto snapshot = c.registry->load();
  REQUIRE(snapshot);
  auto state = decode_registry(*snapshot);
  REQUIRE(state);
  REQUIRE(state->agents.count(id) == 1);
  return state->agents.at(id);
}

}  // namespace

TEST_CASE("a dynamic reservation is offered only to its role, and unreserving returns it",
          "[master][operator][reservations]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog batch;
  c.add_framework(fn, batch, "batch", false, "batch");
  REQUIRE(batch.offers.size() == 1);
  CHECK(batch.offers[0].resources == "cpus:4;mem:1024");

  auto& on = c.sim.add_node("operator");
  CHECK(operator_call(c, on, "op1", reservation_call(agent.id, "cpus(web):2;mem(web):512")) == "");
  // The offer that held those resources is taken back; what batch is
  // offered next is only what stayed unreserved.
  CHECK(batch.rescinded == std::vector<std::string>{batch.offers[0].id});
  CHECK(agent_total(c, agent.id) == "cpus:2;cpus(web):2;mem:512;mem(web):512");
  c.sim.advance(1s);
  REQUIRE(batch.offers.size() == 2);
  CHECK(batch.offers[1].resources == "cpus:2;mem:512");

  FrameworkLog web;
  auto web_addr = c.add_framework(fn, web, "web", false, "web");
  c.sim.advance(1s);
  REQUIRE(web.offers.size() == 1);
  CHECK(web.offers[0].resources == "cpus(web):2;mem(web):512");
  CHECK(web.offers[0].role == "web");
  c.call(fn, web_addr, launch_call(web.id, {web.offers[0].id}, "t1", "cpus(web):1;mem(web):128"));
  REQUIRE(agent.run_tasks == std::vector<std::string>{"t1"});

  // What a task holds cannot be unreserved; what is free can.
  CHECK(contains(operator_call(c, on, "op2", reservation_call(agent.id, "cpus(web):2", false)),
                 "tasks on agent " + agent.id + " use part of cpus(web):2"));
  CHECK(contains(
      operator_call(c, on, "op3", reservation_call(agent.id, "cpus(web):1;mem(web):512", false)),
      "use part of"));
  CHECK(operator_call(c, on, "op4",
                      reservation_call(agent.id, "cpus(web):1;mem(web):384", false)) == "");
  CHECK(agent_total(c, agent.id) == "cpus:3;cpus(web):1;mem:896;mem(web):128");
  CHECK(agent_record_of(c, agent.id).reservations.to_string() == "cpus(web):1;mem(web):128");
}

TEST_CASE("bad reservations are refused with what was wrong, and change nothing",
          "[master][operator][reservations]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024;cpus(web):1");  // cpus(web):1 is static
  auto& on = c.sim.add_node("operator");
  auto before = agent_total(c, agent.id);

  CHECK(operator_call(c, on, "op1", reservation_call("S-nope", "cpus(web):1")) ==
        "no agent S-nope");
  CHECK(contains(operator_call(c, on, "op2", reservation_call(agent.id, "cpus:1")),
                 "every resource must name the role it is reserved for"));
  CHECK(contains(operator_call(c, on, "op3", reservation_call(agent.id, "cpus(web):5")),
                 "does not have cpus:5 unreserved and free of tasks (free: cpus:4;mem:1024)"));
  CHECK(contains(operator_call(c, on, "op4", reservation_call(agent.id, "gpus(web):1")),
                 "does not have gpus:1"));
  // A static reservation (the agent's own --resources) is not the operator's to undo.
  CHECK(contains(operator_call(c, on, "op5", reservation_call(agent.id, "cpus(web):1", false)),
                 "has no dynamic reservation of cpus(web):1 (its dynamic reservations: none)"));
  CHECK(operator_call(c, on, "op6", build<wire::OperatorCall>([](wire::OperatorCall::Builder b) {
                        b.initReserveResources().setAgentId("x");
                      })) == "no agent x");
  CHECK(contains(
      operator_call(c, on, "op7", build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
                      b.initReserveResources().setAgentId(agent.id);
                    })),
      "names no resources"));
  CHECK(agent_total(c, agent.id) == before);
  CHECK(agent_record_of(c, agent.id).reservations.empty());
  CHECK(c.master_actor()->counters().invalid_calls == 7);

  // Reserving twice adds up; unreserving more than was reserved is refused.
  CHECK(operator_call(c, on, "op8", reservation_call(agent.id, "cpus(web):1")) == "");
  CHECK(operator_call(c, on, "op9", reservation_call(agent.id, "cpus(web):1;mem(db):10")) == "");
  CHECK(agent_record_of(c, agent.id).reservations.to_string() == "cpus(web):2;mem(db):10");
  CHECK(agent_total(c, agent.id) == "cpus:2;cpus(web):3;mem:1014;mem(db):10");
  CHECK(contains(operator_call(c, on, "op10", reservation_call(agent.id, "cpus(web):3", false)),
                 "has no dynamic reservation of cpus(web):3 (its dynamic reservations: "
                 "cpus(web):2;mem(db):10)"));
}

TEST_CASE(
    "dynamic reservations outlive the master, and an agent back too small for them drops them",
    "[master][operator][reservations][registry]") {
  Cluster c;
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024", "boot-1");
  auto& on = c.sim.add_node("operator");
  CHECK(operator_call(c, on, "op1", reservation_call(agent.id, "cpus(web):3;mem(web):100")) == "");
  auto aid = agent.id;

  c.restart_master();
  CHECK(agent_record_of(c, aid).reservations.to_string() == "cpus(web):3;mem(web):100");
  auto& an2 = c.sim.add_node("agent1b");
  AgentLog back;
  c.spawn_agent(an2, back, reregister_call(aid, "boot-1", 1, {}, "cpus:4;mem:1024"));
  REQUIRE(back.reregistered == 1);
  CHECK(agent_total(c, aid) == "cpus:1;cpus(web):3;mem:924;mem(web):100");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog web, batch;
  c.add_framework(fn, batch, "batch", false, "batch");
  c.add_framework(fn, web, "web", false, "web");
  c.sim.advance(2s);
  // batch is never offered web's reservation, whatever order the sorter picks.
  for (auto& o : batch.offers)
    CHECK(o.resources == "cpus:1;mem:924");
  REQUIRE(!web.offers.empty());
  for (auto& o : web.offers)
    CHECK(contains(o.resources, "cpus(web):3"));

  // The machine comes back with fewer CPUs than were reserved of it: that
  // reservation is dropped whole (and recorded so), the memory one is kept.
  c.restart_master();
  auto& an3 = c.sim.add_node("agent1c");
  AgentLog smaller;
  c.spawn_agent(an3, smaller, reregister_call(aid, "boot-1", 2, {}, "cpus:2;mem:1024"));
  REQUIRE(smaller.reregistered == 1);
  CHECK(agent_total(c, aid) == "cpus:2;mem:924;mem(web):100");
  CHECK(c.master_actor()->counters().reservations_dropped == 1);
  c.sim.run();
  CHECK(agent_record_of(c, aid).reservations.to_string() == "mem(web):100");
}
