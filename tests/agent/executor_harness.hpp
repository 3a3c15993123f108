#pragma once
// Executor tests against a scripted agent: it answers the executor's first
// subscribe with subscribed (and the framework's capabilities) and the launch
// the test gives, acknowledges every update at once, records it, and lets the
// test react to it on the agent's own thread (to send a kill, say).

#include "services/common/wire.hpp"
#include "services/executor/command_executor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::executor_test {

using namespace std::chrono_literals;
using testing::Probe;
using testing::TempDir;
using testing::wait_until;
using State = wire::TaskState;
using Reason = wire::TaskStatus::Reason;
using EventFill = std::function<void(wire::ExecutorEvent::Builder)>;

struct Update {
  std::string task_id;
  State state = State::STAGING;
  Reason reason = Reason::NONE;
  std::string message;
  bool has_healthy = false;
  bool healthy = false;
  int exit_code = -1;
  int term_signal = 0;
};

inline Outgoing event(const EventFill& fill) {
  return build<wire::ExecutorEvent>([&](wire::ExecutorEvent::Builder b) { fill(b); });
}

inline Outgoing kill_event(const std::string& task_id, Duration grace = Duration(0)) {
  return event([&](wire::ExecutorEvent::Builder b) {
    auto kill = b.initKill();
    kill.setTaskId(task_id);
    kill.setGracePeriodNs(grace.count());
  });
}

inline void shell_task(wire::TaskInfo::Builder task, const std::string& id,
                       const std::string& shell) {
  task.setTaskId(id);
  task.initCommand().setShell(shell);
}

// On the agent's thread: runs then once pred holds, polling every 5 ms.
inline void when(Probe& self, std::function<bool()> pred, std::function<void()> then) {
  if (pred()) {
    then();
    return;
  }
  self.after(5ms, [&self, pred, then] { when(self, pred, then); });
}

struct AgentScript {
  EventFill launch;
  bool killing_capability = false;
  // Runs on the agent's thread after each update is recorded and acknowledged.
  std::function<void(Probe& self, const Address& executor, const Update& u)> on_update;
};

class ScriptedRun {
 public:
  explicit ScriptedRun(AgentScript script,
                       const std::function<void(CommandExecutorConfig&)>& tweak = {}) {
    agent_node_ = testing::start_node();
    REQUIRE(agent_node_->spawn<Probe>(
        "agent", [updates = updates_, script](Probe& self) { serve(self, updates, script); }));
    executor_node_ = testing::start_node();
    CommandExecutorConfig config;
    config.agent = agent_node_->address_of("agent");
    config.framework_id = "fw-1";
    config.executor_id = "e1";
    config.sandbox = sandbox_.path();
    config.subscribe_backoff_min_ms = 10ms;
    config.subscribe_backoff_max_ms = 100ms;
    config.on_done = [done = done_](int code) { done->store(code); };
    if (tweak)
      tweak(config);
    REQUIRE(executor_node_->spawn<CommandExecutor>("executor", config));
  }

  // An agent that only launches.
  explicit ScriptedRun(EventFill launch,
                       const std::function<void(CommandExecutorConfig&)>& tweak = {})
      : ScriptedRun(AgentScript{std::move(launch), false, {}}, tweak) {}

  const std::filesystem::path& sandbox() const { return sandbox_.path(); }

  // Waits until the executor has ended; its exit code then, or -100.
  int wait_done(std::chrono::milliseconds timeout = 20s) {
    wait_until([&] { return done_->load() != -100; }, timeout);
    return done_->load();
  }

  std::vector<Update> updates() const {
    std::lock_guard<std::mutex> lock(updates_->mu);
    return updates_->list;
  }
  std::vector<Update> updates_of(const std::string& task_id) const {
    std::vector<Update> out;
    for (auto& u : updates())
      if (u.task_id == task_id)
        out.push_back(u);
    return out;
  }
  std::vector<State> states_of(const std::string& task_id) const {
    std::vector<State> out;
    for (auto& u : updates_of(task_id))
      out.push_back(u.state);
    return out;
  }
  // Waits for a terminal update of task_id; it, or a STAGING placeholder.
  Update wait_terminal(const std::string& task_id, std::chrono::milliseconds timeout = 20s) const {
    Update found;
    wait_until(
        [&] {
          for (auto& u : updates_of(task_id))
            if (is_terminal(u.state)) {
              found = u;
              return true;
            }
          return false;
        },
        timeout);
    return found;
  }

 private:
  struct Updates {
    mutable std::mutex mu;
    std::vector<Update> list;
  };

  static void serve(Probe& self, std::shared_ptr<Updates> updates, AgentScript script) {
    auto subscribed = std::make_shared<bool>(false);
    self.on<wire::ExecutorCall>([&self, updates, script,
                                 subscribed](const Received<wire::ExecutorCall>& m) {
      auto call = m.body();
      if (call.isUpdate()) {
        auto s = call.getUpdate();
        Update u{str(s.getTaskId()), s.getState(),   s.getReason(),   str(s.getMessage()),
                 s.getHasHealthy(),  s.getHealthy(), s.getExitCode(), s.getTermSignal()};
        {
          std::lock_guard<std::mutex> lock(updates->mu);
          updates->list.push_back(u);
        }
        self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                    auto ack = b.initAcknowledged();
                    ack.setTaskId(s.getTaskId());
                    ack.setUuid(s.getUuid());
                  }));
        if (script.on_update)
          script.on_update(self, m.sender(), u);
        return;
      }
      if (!call.isSubscribe() || *subscribed)
        return;
      *subscribed = true;
      self.send(m.sender(), event([&](wire::ExecutorEvent::Builder b) {
                  auto info = b.initSubscribed().initFrameworkInfo();
                  info.setFrameworkId("fw-1");
                  if (script.killing_capability)
                    info.initCapabilities(1).set(0, wire::FrameworkCapability::TASK_KILLED_STATE);
                }));
      self.send(m.sender(), event(script.launch));
    });
  }

  TempDir sandbox_;
  std::shared_ptr<Updates> updates_ = std::make_shared<Updates>();
  std::shared_ptr<std::atomic<int>> done_ = std::make_shared<std::atomic<int>>(-100);
  std::unique_ptr<Node> agent_node_;
  std::unique_ptr<Node> executor_node_;
};

}  // namespace tessera::executor_test
