#pragma once
// A fake master for agent tests: it registers agents, records what they send
// (updates, acknowledgement order, exited executors) and acknowledges updates
// by a policy the test sets. It numbers and answers registrations as the real
// master (services/master/master.cpp) does: a RegisterAgent from a known
// address with the same boot id is answered with the same id, any other
// RegisterAgent gets a new one ("agent-1", "agent-2", ...); a ReregisterAgent
// is answered with the id it brings, or refused as the master refuses a
// removed id. The test drives it from its own thread with
// run(job), which executes job on the master actor, so every message the
// agent gets really comes from the master's address.

#include "runtime/actor.hpp"
#include "services/agent/agent.hpp"
#include "services/common/wire.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/testing.capnp.h>

#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tessera::agent_test {

using namespace std::chrono_literals;
using testing::wait_until;
using State = wire::TaskState;
using Reason = wire::TaskStatus::Reason;

struct SeenUpdate {
  std::string framework_id;
  std::string task_id;
  std::string uuid;
  State state = State::STAGING;
  State latest_state = State::STAGING;
  Reason reason = Reason::NONE;
  std::string message;
  std::string agent_id;
  std::string executor_id;
  int exit_code = -1;
  int term_signal = 0;
  wire::TaskStatus::Source source = wire::TaskStatus::Source::MASTER;
};

class FakeMaster;

// msg with its registration stamp set, when it is a launch.
template <class T>
Outgoing stamp_as(const Outgoing& msg, const std::string& boot, uint64_t seq) {
  capnp::FlatArrayMessageReader reader(msg.payload.words());
  capnp::MallocMessageBuilder copy;
  copy.setRoot(reader.getRoot<T>());
  auto root = copy.getRoot<T>();
  root.setBootId(boot);
  root.setRegistrationSeq(seq);
  return Outgoing{msg.type_id, Payload(capnp::messageToFlatArray(copy))};
}

// msg with its registration stamp set, when it is a launch.
inline Outgoing stamp_launch(const Outgoing& msg, const std::string& boot, uint64_t seq) {
  if (msg.type_id == capnp::typeId<wire::RunTask>())
    return stamp_as<wire::RunTask>(msg, boot, seq);
  if (msg.type_id == capnp::typeId<wire::RunTaskGroup>())
    return stamp_as<wire::RunTaskGroup>(msg, boot, seq);
  return msg;
}

// Everything the fake master knows, shared with the test thread.
struct MasterState {
  std::mutex mu;
  std::string agent_id;  // the id the master holds for the agent heard from last
  // The registration processed last (boot, episode): echoed in the answer
  // and stamped on launches, as the real master does.
  std::string boot_id;
  uint64_t registration_seq = 0;
  int64_t ping_interval_ns = 0;
  Address agent;
  std::string http_address;  // AgentInfo's, of the last (re)registration
  int registers = 0;         // RegisterAgent messages, retries included
  int agent_ids_made = 0;
  std::map<Address, std::pair<std::string, std::string>> boots;  // address -> (boot id, agent id)
  int reregisters = 0;
  bool refuse_reregistration = false;               // answer ReregisterAgent with ShutdownAgent
  std::vector<std::string> reregistered_tasks;      // "task-id STATE" of the last reregistration
  std::vector<SeenUpdate> updates;                  // every StatusUpdate, resends included
  std::vector<std::string> events;                  // "update <uuid>" / "ack <uuid>", in order
  std::map<std::string, int> acks;                  // uuid -> acknowledgements sent
  std::vector<std::pair<std::string, int>> exited;  // executor id, status
  // Returns false to withhold the acknowledgement of this delivery.
  std::function<bool(const SeenUpdate&, int delivery)> ack_policy;
  std::deque<std::function<void(FakeMaster&)>> jobs;
};

class FakeMaster : public Actor {
 public:
  FakeMaster(caf::actor_config& cfg, ActorInit init, std::shared_ptr<MasterState> state)
      : Actor(cfg, std::move(init)), s_(std::move(state)) {
    on<wire::RegisterAgent>([this](const Received<wire::RegisterAgent>& m) {
      std::lock_guard<std::mutex> lock(s_->mu);
      ++s_->registers;
      s_->agent = m.sender();
      s_->http_address = str(m.body().getAgentInfo().getHttpAddress());
      auto boot = str(m.body().getBootId());
      auto known = s_->boots.find(m.sender());
      if (known == s_->boots.end() || boot.empty() || known->second.first != boot)
        known = s_->boots
                    .insert_or_assign(
                        m.sender(),
                        std::make_pair(boot, "agent-" + std::to_string(++s_->agent_ids_made)))
                    .first;
      s_->agent_id = known->second.second;
      s_->boot_id = boot;
      s_->registration_seq = m.body().getRegistrationSeq();
      send(m.sender(), build<wire::AgentRegistered>([&](wire::AgentRegistered::Builder b) {
             b.setAgentId(s_->agent_id);
             b.setPingIntervalNs(s_->ping_interval_ns);
             b.setBootId(s_->boot_id);
             b.setRegistrationSeq(s_->registration_seq);
           }));
    });
    on<wire::ReregisterAgent>([this](const Received<wire::ReregisterAgent>& m) {
      std::lock_guard<std::mutex> lock(s_->mu);
      ++s_->reregisters;
      s_->agent = m.sender();
      s_->http_address = str(m.body().getAgentInfo().getHttpAddress());
      s_->reregistered_tasks.clear();
      for (auto t : m.body().getTasks())
        s_->reregistered_tasks.push_back(str(t.getTask().getTaskId()) + " " +
                                         to_string(t.getLatestState()));
      if (s_->refuse_reregistration) {
        send(m.sender(), build<wire::ShutdownAgent>([](wire::ShutdownAgent::Builder b) {
               b.setReason("agent id was removed by the master");
             }));
        return;
      }
      s_->agent_id = str(m.body().getAgentInfo().getAgentId());
      s_->boots[m.sender()] = {str(m.body().getBootId()), s_->agent_id};
      s_->boot_id = str(m.body().getBootId());
      s_->registration_seq = m.body().getRegistrationSeq();
      send(m.sender(), build<wire::AgentReregistered>([&](wire::AgentReregistered::Builder b) {
             b.setAgentId(s_->agent_id);
             b.setPingIntervalNs(s_->ping_interval_ns);
             b.setBootId(s_->boot_id);
             b.setRegistrationSeq(s_->registration_seq);
           }));
    });
    on<wire::StatusUpdate>([this](const Received<wire::StatusUpdate>& m) { on_update(m); });
    on<wire::ExitedExecutor>([this](const Received<wire::ExitedExecutor>& m) {
      std::lock_guard<std::mutex> lock(s_->mu);
      s_->exited.emplace_back(str(m.body().getExecutorId()), m.body().getStatus());
    });
    // A poke from the test thread: run the queued jobs on this actor.
    on<wire::testing::Tick>([this](const Received<wire::testing::Tick>&) {
      std::deque<std::function<void(FakeMaster&)>> jobs;
      {
        std::lock_guard<std::mutex> lock(s_->mu);
        jobs.swap(s_->jobs);
      }
      for (auto& job : jobs)
        job(*this);
    });
  }
  using Actor::request;
  using Actor::send;
  // msg stamped with the registration processed last (see send_to_agent).
  Outgoing stamped(const Outgoing& msg) {
    std::lock_guard<std::mutex> lock(s_->mu);
    return stamp_launch(msg, s_->boot_id, s_->registration_seq);
  }

 private:
  void on_update(const Received<wire::StatusUpdate>& m) {
    auto st = m.body().getStatus();
    SeenUpdate u{str(m.body().getFrameworkId()),
                 str(st.getTaskId()),
                 str(st.getUuid()),
                 st.getState(),
                 m.body().getLatestState(),
                 st.getReason(),
                 str(st.getMessage()),
                 str(st.getAgentId()),
                 str(st.getExecutorId()),
                 st.getExitCode(),
                 st.getTermSignal(),
                 st.getSource()};
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->updates.push_back(u);
    s_->events.push_back("update " + hex(u.uuid));
    int delivery =
        static_cast<int>(std::count_if(s_->updates.begin(), s_->updates.end(),
                                       [&](const SeenUpdate& x) { return x.uuid == u.uuid; }));
    // Every delivery is acknowledged, a repeated one too, as the real master
    // does through its framework: an agent that restarted before it wrote an
    // acknowledgement down resends that update and waits for it.
    if (s_->ack_policy && !s_->ack_policy(u, delivery))
      return;
    ++s_->acks[u.uuid];
    s_->events.push_back("ack " + hex(u.uuid));
    send(m.sender(), build<wire::StatusUpdateAck>([&](wire::StatusUpdateAck::Builder b) {
           b.setAgentId(u.agent_id);
           b.setFrameworkId(u.framework_id);
           b.setTaskId(u.task_id);
           b.setUuid(tessera::data(u.uuid));
         }));
  }

  std::shared_ptr<MasterState> s_;
};

// The fake master on a node of its own, which the test may stop and start
// again on the same port.
class MasterNode {
 public:
  void start(uint16_t port = 0) {
    NodeConfig config;
    config.port = port;
    node_ = testing::start_node(config);
    REQUIRE(node_->spawn<FakeMaster>("master", state_));
  }
  void stop() { node_.reset(); }

  Node& node() { return *node_; }
  Address address() const { return node_->address_of("master"); }
  uint16_t port() const { return node_->port(); }

  // Runs job on the master actor (so what it sends comes from the master).
  void run(std::function<void(FakeMaster&)> job) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->jobs.push_back(std::move(job));
    }
    node_->send(address(), build<wire::testing::Tick>([](auto) {}));
  }
  // Sends msg from the master to the agent that registered last. A launch
  // (RunTask, RunTaskGroup) is stamped with the registration it is sent
  // in, as the real master does, unless stamped = false (the test sends a
  // stale launch on purpose).
  void send_to_agent(Outgoing msg, bool stamped = true) {
    run([state = state_, msg = std::move(msg), stamped](FakeMaster& m) {
      Address agent;
      std::string boot;
      uint64_t seq = 0;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        agent = state->agent;
        boot = state->boot_id;
        seq = state->registration_seq;
      }
      m.send(agent, stamped ? stamp_launch(msg, boot, seq) : msg);
    });
  }

  template <class F>
  auto with(F f) {
    std::lock_guard<std::mutex> lock(state_->mu);
    return f(*state_);
  }
  std::shared_ptr<MasterState> state() { return state_; }

  // Distinct updates of one task, in the order they first arrived.
  std::vector<SeenUpdate> updates_of(const std::string& task_id) {
    return with([&](MasterState& s) {
      std::vector<SeenUpdate> out;
      for (const auto& u : s.updates)
        if (u.task_id == task_id && std::none_of(out.begin(), out.end(), [&](const SeenUpdate& x) {
              return x.uuid == u.uuid;
            }))
          out.push_back(u);
      return out;
    });
  }
  std::vector<State> states_of(const std::string& task_id) {
    std::vector<State> out;
    for (const auto& u : updates_of(task_id))
      out.push_back(u.state);
    return out;
  }
  // Waits until task_id reached state; returns that update.
  SeenUpdate wait_state(const std::string& task_id, State state,
                        std::chrono::milliseconds timeout = 20s) {
    SeenUpdate found;
    bool ok = wait_until(
        [&] {
          for (const auto& u : updates_of(task_id))
            if (u.state == state) {
              found = u;
              return true;
            }
          return false;
        },
        timeout);
    INFO("task " << task_id << " never reached " << to_string(state));
    REQUIRE(ok);
    return found;
  }

 private:
  std::shared_ptr<MasterState> state_ = std::make_shared<MasterState>();
  std::unique_ptr<Node> node_;
};

// agent_id: the agent the master placed the task on (the real master always
// names it); empty names none.
inline Outgoing run_task(const std::string& task_id, const std::string& shell,
                         const std::string& framework_id = "fw-1",
                         const std::string& agent_id = {}) {
  return build<wire::RunTask>([&](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId(framework_id);
    b.getFrameworkInfo().setName("test");
    auto task = b.initTask();
    task.setTaskId(task_id);
    task.setAgentId(agent_id);
    task.setName(task_id);
    task.initCommand().setShell(shell);
  });
}

inline Outgoing kill_task(const std::string& task_id, std::chrono::milliseconds grace = 0ms,
                          const std::string& framework_id = "fw-1") {
  return build<wire::KillTask>([&](wire::KillTask::Builder b) {
    b.setFrameworkId(framework_id);
    b.setTaskId(task_id);
    b.setGracePeriodNs(std::chrono::duration_cast<std::chrono::nanoseconds>(grace).count());
  });
}

// The agent's config for tests: short backoffs so retries show within a test.
inline AgentConfig test_agent_config(const Address& master, const std::filesystem::path& work_dir) {
  AgentConfig c;
  c.master = master;
  c.work_dir = work_dir;
  c.resources = *Resources::parse("cpus:2;mem:1024;ports:[31000-31100]");
  c.registration_backoff_min_ms = 10ms;
  c.registration_backoff_max_ms = 200ms;
  c.status_update_backoff_min_ms = 50ms;
  c.status_update_backoff_max_ms = 500ms;
  c.kill_grace_ms = 1000ms;
  c.executor_shutdown_grace_ms = 3000ms;
  c.seed = 42;
  return c;
}

// A fake master plus an agent on a node of its own.
struct Cluster {
  testing::TempDir dir;
  MasterNode master;
  std::unique_ptr<Node> node;
  std::shared_ptr<AgentMetrics> metrics = std::make_shared<AgentMetrics>();
  Address agent;

  explicit Cluster(const std::function<void(AgentConfig&)>& tweak = {},
                   const std::function<void(MasterState&)>& master_setup = {}) {
    if (master_setup)
      master.with(master_setup);
    master.start();
    node = testing::start_node();
    auto config = test_agent_config(master.address(), dir.path() / "work");
    config.metrics = metrics;
    if (tweak)
      tweak(config);
    auto spawned = node->spawn<Agent>("agent", config);
    REQUIRE(spawned);
    agent = *spawned;
    REQUIRE(wait_until([&] { return metrics->registrations.load() >= 1; }));
  }
  ~Cluster() {
    node->stop();
    master.stop();
  }

  // The sandbox of a command task (its executor's only run).
  std::filesystem::path sandbox(const std::string& task_id,
                                const std::string& framework_id = "fw-1") {
    auto runs = dir.path() / "work" / "frameworks" / framework_id / "executors" / task_id / "runs";
    for (const auto& entry : std::filesystem::directory_iterator(runs))
      return entry.path();
    FAIL("no sandbox for " << task_id);
    return {};
  }
};

}  // namespace tessera::agent_test
