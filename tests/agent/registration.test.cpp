// The agent's registration against a master that answers late: every retry
// is answered (the fake numbers them as the real master does), and the agent
// must end up with the id the master holds, or it refuses the master's
// launches for ever (issue 9: `tessera run -- echo hi` hung after a 1.5 s
// master pause during an agent's start).

#include "agent/fake_master.hpp"

using namespace tessera;
using namespace tessera::agent_test;

TEST_CASE("registration retries answered late leave the agent with the master's id",
          "[agent][registration]") {
  testing::TempDir dir;
  MasterNode master;
  master.start();
  // The master is paused for 1.5 s while the agent starts: its registrations
  // wait, and the agent retries (10 ms backoff, doubling to 200 ms).
  auto resume = master.node().clock().now() + 1500ms;
  auto* clock = &master.node().clock();
  master.node().filters().add([resume, clock](const Envelope& env) {
    auto now = clock->now();
    if (env.type_id != capnp::typeId<wire::RegisterAgent>() || now >= resume)
      return FilterAction::Pass();
    return FilterAction::Delay(resume - now);
  });
  auto node = testing::start_node();
  auto metrics = std::make_shared<AgentMetrics>();
  auto config = test_agent_config(master.address(), dir.path() / "work");
  config.metrics = metrics;
  REQUIRE(node->spawn<Agent>("agent", config));
  REQUIRE(wait_until([&] { return metrics->registrations.load() >= 1; }));
  // Every retry has reached the master and been answered.
  REQUIRE(wait_until([&] {
    return master.with([](MasterState& s) { return s.registers; }) ==
           static_cast<int>(metrics->registration_attempts.load());
  }));
  auto attempts = metrics->registration_attempts.load();
  INFO("registration attempts: " << attempts);
  CHECK(attempts >= 3);  // the pause made the agent retry
  auto held = master.with([](MasterState& s) { return s.agent_id; });
  CHECK(held == "agent-1");

  // The master launches on the agent it holds; the agent runs it.
  master.send_to_agent(run_task("t1", "true", "fw-1", held));
  auto finished = master.wait_state("t1", State::FINISHED, 10s);
  CHECK(finished.agent_id == held);
  node->stop();
  master.stop();
}
