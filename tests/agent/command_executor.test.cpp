// The command executor against a scripted agent: what it keeps when the agent
// goes away, and when it gives up.

#include "services/common/wire.hpp"
#include "services/executor/command_executor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
using State = wire::TaskState;

namespace {

// What the scripted agent saw, shared with the test thread.
struct Seen {
  std::mutex mu;
  std::vector<std::vector<State>> subscribes;  // the unacknowledged updates each carried
  std::vector<State> updates;
  std::vector<std::string> uuids;
};

Outgoing event(const std::function<void(wire::ExecutorEvent::Builder)>& fill) {
  return build<wire::ExecutorEvent>([&](wire::ExecutorEvent::Builder b) { fill(b); });
}

// An agent that answers subscribe with subscribed (and, if launch, the task);
// it acknowledges what the subscribe carries only if ack.
void scripted_agent(Probe& self, std::shared_ptr<Seen> seen, bool launch, bool ack) {
  self.on<wire::ExecutorCall>([&self, seen, launch, ack](const Received<wire::ExecutorCall>& m) {
    auto call = m.body();
    std::lock_guard<std::mutex> lock(seen->mu);
    if (call.isUpdate()) {
      seen->updates.push_back(call.getUpdate().getState());
      seen->uuids.push_back(str(call.getUpdate().getUuid()));
      return;
    }
    if (!call.isSubscribe())
      return;
    std::vector<State> carried;
    for (auto u : call.getSubscribe().getUnacknowledgedUpdates())
      carried.push_back(u.getState());
    seen->subscribes.push_back(carried);
    self.send(m.sender(), event([](auto b) { b.initSubscribed(); }));
    if (launch)
      self.send(m.sender(), event([](wire::ExecutorEvent::Builder b) {
                  auto task = b.initLaunch();
                  task.setTaskId("t1");
                  task.initCommand().setShell("echo hi");
                }));
    if (ack)
      for (auto u : call.getSubscribe().getUnacknowledgedUpdates())
        self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                    auto a = b.initAcknowledged();
                    a.setTaskId(u.getTaskId());
                    a.setUuid(u.getUuid());
                  }));
  });
}

}  // namespace

TEST_CASE("an executor keeps its updates until an agent acknowledges them", "[executor]") {
  TempDir sandbox;
  auto seen = std::make_shared<Seen>();
  NodeConfig agent_config;
  auto agent_node = start_node(agent_config);
  REQUIRE(agent_node->spawn<Probe>(
      "agent", [seen](Probe& self) { scripted_agent(self, seen, true, false); }));
  auto agent = agent_node->address_of("agent");

  auto done = std::make_shared<std::atomic<int>>(-100);
  auto executor_node = start_node();
  CommandExecutorConfig config;
  config.agent = agent;
  config.framework_id = "fw-1";
  config.executor_id = "t1";
  config.sandbox = sandbox.path();
  config.subscribe_backoff_min_ms = 10ms;
  config.subscribe_backoff_max_ms = 100ms;
  config.on_done = [done](int code) { done->store(code); };
  REQUIRE(executor_node->spawn<CommandExecutor>("executor", config));

  auto updates = [&] {
    std::lock_guard<std::mutex> lock(seen->mu);
    return seen->updates;
  };
  REQUIRE(wait_until([&] { return updates().size() == 3; }));
  CHECK(updates() == std::vector<State>{State::STARTING, State::RUNNING, State::FINISHED});
  CHECK(read_file(sandbox.path() / "stdout") == "hi\n");

  // The agent's node goes away and comes back: the executor resubscribes with
  // every update still unacknowledged, and ends once they are acknowledged.
  auto port = agent_node->port();
  agent_node.reset();
  agent_config.port = port;
  agent_node = start_node(agent_config);
  REQUIRE(agent_node->spawn<Probe>(
      "agent", [seen](Probe& self) { scripted_agent(self, seen, false, true); }));
  REQUIRE(wait_until([&] { return done->load() != -100; }));
  CHECK(done->load() == 0);
  std::lock_guard<std::mutex> lock(seen->mu);
  REQUIRE(seen->subscribes.size() >= 2);
  CHECK(seen->subscribes.front().empty());
  CHECK(seen->subscribes.back() ==
        std::vector<State>{State::STARTING, State::RUNNING, State::FINISHED});
}

TEST_CASE("an executor gives up on an agent that never answers", "[executor]") {
  TempDir sandbox;
  uint16_t port = start_node()->port();  // nobody listens there any more
  auto done = std::make_shared<std::atomic<int>>(-100);
  auto node = start_node();
  CommandExecutorConfig config;
  config.agent = Address{"agent", "127.0.0.1", port};
  config.framework_id = "fw-1";
  config.executor_id = "t1";
  config.sandbox = sandbox.path();
  config.subscribe_backoff_min_ms = 10ms;
  config.recovery_timeout_ms = 300ms;
  config.on_done = [done](int code) { done->store(code); };
  REQUIRE(node->spawn<CommandExecutor>("executor", config));
  REQUIRE(wait_until([&] { return done->load() != -100; }));
  CHECK(done->load() == 1);
}

TEST_CASE("signal names read as Mesos prints them", "[executor]") {
  CHECK(signal_name(SIGTERM) == "SIGTERM");
  CHECK(signal_name(SIGKILL) == "SIGKILL");
  CHECK(signal_name(1000) == "signal 1000");
}

TEST_CASE("an update made between subscribe and subscribed is sent once subscribed", "[executor]") {
  TempDir sandbox;
  auto seen = std::make_shared<Seen>();
  NodeConfig agent_config;
  auto agent_node = start_node(agent_config);
  auto flag = sandbox.path() / "go";
  // The first agent launches a task that ends only once flag exists, and
  // acknowledges every update.
  REQUIRE(agent_node->spawn<Probe>("agent", [seen, flag](Probe& self) {
    self.on<wire::ExecutorCall>([&self, seen, flag](const Received<wire::ExecutorCall>& m) {
      auto call = m.body();
      if (call.isSubscribe()) {
        self.send(m.sender(), event([](auto b) { b.initSubscribed(); }));
        self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                    auto task = b.initLaunch();
                    task.setTaskId("t1");
                    task.initCommand().setShell("while [ ! -e " + flag.string() +
                                                " ]; do sleep 0.02; done; exit 3");
                  }));
        return;
      }
      if (!call.isUpdate())
        return;
      std::lock_guard<std::mutex> lock(seen->mu);
      seen->updates.push_back(call.getUpdate().getState());
      self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                  auto a = b.initAcknowledged();
                  a.setTaskId(call.getUpdate().getTaskId());
                  a.setUuid(call.getUpdate().getUuid());
                }));
    });
  }));
  auto done = std::make_shared<std::atomic<int>>(-100);
  auto executor_node = start_node();
  CommandExecutorConfig config;
  config.agent = agent_node->address_of("agent");
  config.framework_id = "fw-1";
  config.executor_id = "t1";
  config.sandbox = sandbox.path();
  config.subscribe_backoff_min_ms = 10ms;
  config.subscribe_backoff_max_ms = 50ms;
  config.on_done = [done](int code) { done->store(code); };
  REQUIRE(executor_node->spawn<CommandExecutor>("executor", config));
  auto updates = [&] {
    std::lock_guard<std::mutex> lock(seen->mu);
    return seen->updates;
  };
  REQUIRE(wait_until([&] { return updates().size() == 2; }));  // STARTING, RUNNING

  // The agent restarts. The new one answers the executor's subscribe late:
  // only after the task has ended (the executor made its FAILED update while
  // not subscribed). Its answer is to a subscribe that did not carry that
  // update; the later attempts that carry it are lost (dropped here).
  auto port = agent_node->port();
  agent_node.reset();
  agent_config.port = port;
  agent_node = start_node(agent_config);
  REQUIRE(agent_node->spawn<Probe>("agent", [seen](Probe& self) {
    auto answered = std::make_shared<bool>(false);
    self.on<wire::ExecutorCall>([&self, seen, answered](const Received<wire::ExecutorCall>& m) {
      auto call = m.body();
      std::lock_guard<std::mutex> lock(seen->mu);
      if (call.isSubscribe()) {
        std::vector<State> carried;
        for (auto u : call.getSubscribe().getUnacknowledgedUpdates())
          carried.push_back(u.getState());
        seen->subscribes.push_back(carried);
        if (!*answered && !carried.empty()) {
          *answered = true;
          self.send(m.sender(), event([](auto b) { b.initSubscribed(); }));
        }
        return;
      }
      if (!call.isUpdate())
        return;
      seen->updates.push_back(call.getUpdate().getState());
      seen->uuids.push_back(str(call.getUpdate().getUuid()));
      self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                  auto a = b.initAcknowledged();
                  a.setTaskId(call.getUpdate().getTaskId());
                  a.setUuid(call.getUpdate().getUuid());
                }));
    });
  }));
  // Subscribing (unanswered) to the new agent, then the task ends.
  REQUIRE(wait_until([&] {
    std::lock_guard<std::mutex> lock(seen->mu);
    return !seen->subscribes.empty();
  }));
  { std::ofstream(flag.string()) << "go"; }

  // The FAILED update reaches the agent as an update of its own, and once
  // acknowledged the executor ends.
  REQUIRE(wait_until([&] { return updates().size() == 3; }));
  CHECK(updates().back() == State::FAILED);
  REQUIRE(wait_until([&] { return done->load() != -100; }));
  CHECK(done->load() == 0);
}
