// The master under ACLs (--acls, services/security/acls.hpp) for what
// frameworks do over the actor transport: register_frameworks when one
// subscribes, run_tasks for each task. In a simulation nodes are plaintext,
// so the principal is the one a FrameworkInfo claims (empty here: an
// unauthenticated caller); tests/security/mtls_cluster.test.cpp covers the
// certificate's.

#include "harness.hpp"
#include "services/security/acls.hpp"

#include <nlohmann/json.hpp>

using namespace tessera;
using namespace tessera::testing;

namespace {

std::shared_ptr<const security::Authorizer> authorizer(const char* text) {
  auto acls = security::parse_acls(nlohmann::json::parse(text));
  REQUIRE(acls);
  return std::make_shared<const security::Authorizer>(std::move(*acls));
}

Outgoing launch_as(const std::string& fid, const std::string& offer, const std::string& task,
                   const std::string& user) {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    auto a = b.initAccept();
    a.initOfferIds(1).set(0, offer);
    auto t = a.initOperations(1)[0].initLaunch(1)[0];
    t.setTaskId(task);
    t.setName(task);
    auto r = Resources::parse("cpus:1;mem:64");
    REQUIRE(r);
    to_wire(*r, t.initResources(wire_size(*r)));
    auto cmd = t.initCommand();
    cmd.setShell("true");
    cmd.setUser(user);
    a.initFilters().setRefuseSeconds(0);
  });
}

constexpr const char* acls_text = R"({
  "register_frameworks": [{"principals": {"type": "ANY"}, "roles": {"values": ["dev"]}}],
  "run_tasks": [{"principals": {"type": "ANY"}, "users": {"values": ["nobody"]}}]
})";

}  // namespace

TEST_CASE("acls: a framework may subscribe only in roles its principal may use", "[master][acls]") {
  Cluster c;
  c.config.authorizer = authorizer(acls_text);
  c.start_master();
  auto& fn = c.sim.add_node("fw");
  FrameworkLog refused;
  c.add_framework(fn, refused, "prod", false, "refused");
  CHECK(refused.id.empty());
  REQUIRE(refused.errors.size() == 1);
  CHECK_THAT(refused.errors[0], Catch::Contains("not authorized") && Catch::Contains("prod"));
  FrameworkLog allowed;
  c.add_framework(fn, allowed, "dev", false, "allowed");
  CHECK_FALSE(allowed.id.empty());
  CHECK(allowed.errors.empty());
  CHECK(c.config.authorizer->denied(security::Action::register_frameworks) == 1);
}

TEST_CASE("acls: a task for a user the ACLs deny fails with the reason", "[master][acls]") {
  Cluster c;
  c.config.authorizer = authorizer(acls_text);
  c.start_master();
  auto& an = c.sim.add_node("agent1");
  AgentLog agent;
  c.add_agent(an, agent, "cpus:4;mem:1024");
  auto& fn = c.sim.add_node("fw");
  FrameworkLog fw;
  auto fw_addr = c.add_framework(fn, fw, "dev");
  c.sim.run();
  REQUIRE(fw.offers.size() == 1);
  c.call(fn, fw_addr, launch_as(fw.id, fw.offers[0].id, "as-root", "root"));
  REQUIRE(fw.updates.size() == 1);
  CHECK(fw.updates[0].task == "as-root");
  CHECK(fw.updates[0].state == State::ERROR);
  CHECK(fw.updates[0].reason == Reason::TASK_INVALID);
  CHECK_THAT(fw.updates[0].message, Catch::Contains("not authorized") && Catch::Contains("root"));
  CHECK(agent.run_tasks.empty());

  c.sim.advance(1s);
  REQUIRE(fw.offers.size() == 2);
  c.call(fn, fw_addr, launch_as(fw.id, fw.offers[1].id, "as-nobody", "nobody"));
  CHECK(agent.run_tasks == std::vector<std::string>{"as-nobody"});
}
