// The agent with a fake master on another node, over real sockets; tasks are
// real processes run by in-process command executors unless a test says
// otherwise.

#include "agent/fake_master.hpp"

#include <signal.h>

#include <algorithm>
#include <future>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

struct SandboxAnswer {
  bool ok = false;
  std::string text;  // the data, or the error
  uint64_t size = 0;
};

// Reads through the agent's ReadSandboxFile from a reader actor on the master's node.
SandboxAnswer read_sandbox(Cluster& c, const std::string& task_id, const std::string& path,
                           uint64_t offset = 0, uint64_t length = 1024) {
  static std::atomic<int> readers{0};
  auto done = std::make_shared<std::promise<SandboxAnswer>>();
  auto answer = done->get_future();
  auto msg = build<wire::ReadSandboxFile>([&](wire::ReadSandboxFile::Builder b) {
    b.setFrameworkId("fw-1");
    b.setTaskId(task_id);
    b.setPath(path);
    b.setOffset(offset);
    b.setLengthMax(length);
  });
  auto name = "reader-" + std::to_string(++readers);
  REQUIRE(c.master.node().spawn<testing::Probe>(name, [&c, msg, done](testing::Probe& self) {
    self.request<wire::SandboxFile>(
        c.agent, msg, 10s,
        [done](const Received<wire::SandboxFile>& r) {
          SandboxAnswer a;
          a.ok = r.body().isData();
          a.text = a.ok ? str(r.body().getData()) : str(r.body().getError());
          a.size = r.body().getSize();
          done->set_value(a);
        },
        [done](const caf::error& e) {
          done->set_value({false, describe(e), 0});
        });
  }));
  REQUIRE(answer.wait_for(20s) == std::future_status::ready);
  return answer.get();
}

std::vector<std::pair<std::string, int>> exited(Cluster& c) {
  return c.master.with([](MasterState& s) { return s.exited; });
}

bool executor_exited(Cluster& c, const std::string& id) {
  auto all = exited(c);
  return std::any_of(all.begin(), all.end(), [&](const auto& e) { return e.first == id; });
}

}  // namespace

TEST_CASE("an agent registers, and reregisters with its tasks when the master comes back",
          "[agent]") {
  Cluster c;
  CHECK(c.master.with([](MasterState& s) { return s.registers; }) >= 1);
  CHECK(c.master.with([](MasterState& s) { return s.reregisters; }) == 0);
  c.master.send_to_agent(run_task("t1", "sleep 100"));
  c.master.wait_state("t1", State::RUNNING);

  auto port = c.master.port();
  c.master.stop();
  REQUIRE(wait_until([&] { return c.metrics->master_lost.load() >= 1; }));
  c.master.start(port);
  REQUIRE(wait_until([&] { return c.metrics->registrations.load() >= 2; }));
  CHECK(c.master.with([](MasterState& s) { return s.reregisters; }) >= 1);
  auto tasks = c.master.with([](MasterState& s) { return s.reregistered_tasks; });
  CHECK(tasks == std::vector<std::string>{"t1 TASK_RUNNING"});

  // The agent serves the new master as it did the old one.
  c.master.send_to_agent(kill_task("t1"));
  c.master.wait_state("t1", State::KILLED);
}

TEST_CASE("a master that stops pinging counts as lost, pings are answered", "[agent]") {
  Cluster c([](AgentConfig& a) { a.ping_timeout_intervals = 5; },
            [](MasterState& s) { s.ping_interval_ns = std::chrono::nanoseconds(20ms).count(); });
  auto pong = std::make_shared<std::promise<uint64_t>>();
  auto seq = pong->get_future();
  c.master.run([agent = c.agent, pong](FakeMaster& m) {
    m.request<wire::Pong>(
        agent, build<wire::Ping>([](wire::Ping::Builder b) { b.setSeq(7); }), 10s,
        [pong](const Received<wire::Pong>& r) { pong->set_value(r.body().getSeq()); },
        [pong](const caf::error&) { pong->set_value(0); });
  });
  REQUIRE(seq.wait_for(20s) == std::future_status::ready);
  CHECK(seq.get() == 7);
  // The fake master never pings on its own: the agent gives up on it and reregisters.
  REQUIRE(wait_until([&] { return c.metrics->master_lost.load() >= 1; }));
  REQUIRE(
      wait_until([&] { return c.master.with([](MasterState& s) { return s.reregisters; }) >= 1; }));
}

TEST_CASE("a command task runs in its sandbox and ends TASK_FINISHED", "[agent][task]") {
  Cluster c;
  c.master.send_to_agent(run_task("t1", "echo out; echo err >&2"));
  auto finished = c.master.wait_state("t1", State::FINISHED);
  CHECK(c.master.states_of("t1") ==
        std::vector<State>{State::STARTING, State::RUNNING, State::FINISHED});
  CHECK(finished.exit_code == 0);
  CHECK(finished.latest_state == State::FINISHED);
  CHECK(finished.agent_id == "agent-1");
  CHECK(finished.executor_id == "t1");
  CHECK(finished.source == wire::TaskStatus::Source::EXECUTOR);
  auto sandbox = c.sandbox("t1");
  CHECK(testing::read_file(sandbox / "stdout") == "out\n");
  CHECK(testing::read_file(sandbox / "stderr") == "err\n");
  REQUIRE(wait_until([&] { return executor_exited(c, "t1"); }));
  CHECK(exited(c).front().second == 0);

  SECTION("its sandbox stays readable through ReadSandboxFile") {
    auto out = read_sandbox(c, "t1", "stdout");
    CHECK(out.ok);
    CHECK(out.text == "out\n");
    CHECK(out.size == 4);
    auto middle = read_sandbox(c, "t1", "stdout", 1, 2);
    CHECK(middle.text == "ut");
    auto past_end = read_sandbox(c, "t1", "stdout", 10);
    CHECK(past_end.ok);
    CHECK(past_end.text.empty());
    for (auto bad : {"../x", "/etc/passwd", "a/../../x", "missing"}) {
      INFO(bad);
      auto refused = read_sandbox(c, "t1", bad);
      CHECK_FALSE(refused.ok);
      CHECK_FALSE(refused.text.empty());
    }
    CHECK_FALSE(read_sandbox(c, "no-such-task", "stdout").ok);
    CHECK(c.metrics->refused_invalid.load() >= 3);
  }
}

TEST_CASE("a command that exits 3 fails with its exit code", "[agent][task]") {
  Cluster c;
  c.master.send_to_agent(run_task("t3", "echo oops >&2; exit 3"));
  auto failed = c.master.wait_state("t3", State::FAILED);
  CHECK(failed.exit_code == 3);
  CHECK(failed.reason == Reason::COMMAND_EXITED);
  CHECK(failed.message == "Command exited with status 3");
  CHECK(testing::read_file(c.sandbox("t3") / "stderr") == "oops\n");
}

TEST_CASE("a killed task ends TASK_KILLED", "[agent][kill]") {
  Cluster c;
  c.master.send_to_agent(run_task("sleeper", "sleep 100"));
  c.master.wait_state("sleeper", State::RUNNING);
  c.master.send_to_agent(kill_task("sleeper"));
  auto killed = c.master.wait_state("sleeper", State::KILLED);
  CHECK(killed.term_signal == SIGTERM);
  CHECK(killed.message == "Command terminated with signal SIGTERM");
  REQUIRE(wait_until([&] { return executor_exited(c, "sleeper"); }));
}

TEST_CASE("a task that ignores SIGTERM is killed after the grace period", "[agent][kill]") {
  Cluster c;
  c.master.send_to_agent(run_task("stubborn", "trap '' TERM; touch ready; sleep 100"));
  c.master.wait_state("stubborn", State::RUNNING);
  // Only once the trap is set does the test ask for the kill.
  REQUIRE(wait_until([&] { return std::filesystem::exists(c.sandbox("stubborn") / "ready"); }));
  c.master.send_to_agent(kill_task("stubborn", 300ms));
  auto killed = c.master.wait_state("stubborn", State::KILLED);
  CHECK(killed.term_signal == SIGKILL);
}

TEST_CASE("a kill that arrives before the executor subscribes kills the launch", "[agent][kill]") {
  Cluster c;
  // One job: both messages reach the agent before its executor can subscribe.
  c.master.run([](FakeMaster&) {});
  auto agent = c.agent;
  c.master.run([agent](FakeMaster& m) {
    m.send(agent, m.stamped(run_task("early", "sleep 100")));
    m.send(agent, kill_task("early"));
  });
  auto killed = c.master.wait_state("early", State::KILLED);
  CHECK(killed.reason == Reason::TASK_KILLED_DURING_LAUNCH);
  CHECK(killed.source == wire::TaskStatus::Source::AGENT);
  REQUIRE(wait_until([&] { return executor_exited(c, "early"); }));
}

TEST_CASE("status updates are resent until acknowledged, one at a time, in order",
          "[agent][updates]") {
  Cluster c;
  // The master withholds the acknowledgement of the first delivery of the first update.
  c.master.with([](MasterState& s) {
    s.ack_policy = [](const SeenUpdate& u, int delivery) {
      return u.state != State::STARTING || delivery > 1;
    };
  });
  c.master.send_to_agent(run_task("t1", "true"));
  c.master.wait_state("t1", State::FINISHED);
  auto distinct = c.master.updates_of("t1");
  REQUIRE(distinct.size() == 3);
  auto [updates, events] = c.master.with([](MasterState& s) {
    return std::pair{s.updates, s.events};
  });
  auto deliveries = std::count_if(updates.begin(), updates.end(),
                                  [&](const SeenUpdate& u) { return u.uuid == distinct[0].uuid; });
  CHECK(deliveries >= 2);  // the same uuid, sent again
  CHECK(c.metrics->updates_retried.load() >= 1);
  // Each update is first delivered only after the one before it was acknowledged.
  for (size_t i = 1; i < distinct.size(); ++i) {
    auto acked = std::find(events.begin(), events.end(), "ack " + hex(distinct[i - 1].uuid));
    auto sent = std::find(events.begin(), events.end(), "update " + hex(distinct[i].uuid));
    REQUIRE(acked != events.end());
    CHECK(acked < sent);
  }
}

TEST_CASE("a status update dropped on the way is retried and arrives", "[agent][updates]") {
  Cluster c;
  auto rule =
      c.master.node().filters().add(match_type<wire::StatusUpdate>(), FilterAction::Drop(), 1);
  c.master.send_to_agent(run_task("t1", "true"));
  c.master.wait_state("t1", State::FINISHED);
  CHECK(c.master.node().filters().hits(rule) == 1);
  CHECK(c.master.states_of("t1") ==
        std::vector<State>{State::STARTING, State::RUNNING, State::FINISHED});
  CHECK(c.metrics->updates_retried.load() >= 1);
}

TEST_CASE("bad input is counted and the agent keeps serving", "[agent][hostile]") {
  Cluster c;
  // RunTask from an actor that is not the master.
  REQUIRE(c.master.node().spawn<testing::Probe>("impostor", [&c](testing::Probe& self) {
    self.send(c.agent, run_task("forged", "true"));
    self.send(c.agent, build<wire::ExecutorCall>([](wire::ExecutorCall::Builder b) {
                b.setFrameworkId("fw-1");
                b.setExecutorId("nobody");
                b.initSubscribe();
              }));
  }));
  REQUIRE(wait_until([&] { return c.metrics->refused_not_master.load() >= 1; }));
  REQUIRE(wait_until([&] { return c.metrics->refused_executor_calls.load() >= 1; }));
  // A kill for a task nobody launched, and ids that cannot be paths.
  c.master.send_to_agent(kill_task("ghost"));
  c.master.send_to_agent(run_task("../evil", "true"));
  REQUIRE(wait_until([&] { return c.metrics->unknown_tasks.load() == 1; }));
  REQUIRE(wait_until([&] { return c.metrics->refused_invalid.load() >= 1; }));
  // A task with its own executor is refused with a status, not in silence.
  c.master.send_to_agent(build<wire::RunTask>([](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId("fw-1");
    auto task = b.initTask();
    task.setTaskId("custom");
    task.initExecutor().setExecutorId("mine");
  }));
  auto refused = c.master.wait_state("custom", State::FAILED);
  CHECK(refused.reason == Reason::CONTAINER_LAUNCH_FAILED);

  c.master.send_to_agent(run_task("fine", "true"));
  c.master.wait_state("fine", State::FINISHED);
  CHECK(c.master.states_of("forged").empty());
  CHECK(c.metrics->tasks_launched.load() == 1);
}

TEST_CASE("a launch sent for an earlier registration is refused, never run",
          "[agent][idempotence]") {
  Cluster c;
  auto [boot, seq] =
      c.master.with([](MasterState& s) { return std::make_pair(s.boot_id, s.registration_seq); });
  REQUIRE_FALSE(boot.empty());
  // A RunTask the master sent before it processed this registration (it
  // crossed a reregistration): the master will find it missing and report
  // it lost, so running it would be a task nobody knows.
  c.master.send_to_agent(stamp_launch(run_task("stale", "true"), boot, seq - 1), false);
  c.master.send_to_agent(stamp_launch(run_task("other-boot", "true"), "boot-x", seq), false);
  REQUIRE(wait_until([&] { return c.metrics->refused_stale_launches.load() == 2; }));
  // The agent keeps serving: a launch of this registration runs.
  c.master.send_to_agent(run_task("fresh", "true"));
  c.master.wait_state("fresh", State::FINISHED);
  CHECK(c.master.updates_of("stale").empty());
  CHECK(c.master.updates_of("other-boot").empty());
}

TEST_CASE("an audited task the agent never got is named, and its late launch refused",
          "[agent][audit]") {
  Cluster c;
  c.master.send_to_agent(run_task("here", "sleep 30"));
  c.master.wait_state("here", State::RUNNING);
  auto seen = std::make_shared<std::vector<std::string>>();
  auto answered = std::make_shared<std::atomic<bool>>(false);
  auto agent = c.agent;
  c.master.run([agent, seen, answered](FakeMaster& m) {
    m.request<wire::Pong>(
        agent, build<wire::Ping>([](wire::Ping::Builder b) {
          b.setSeq(1);
          auto audit = b.initAudit(2);
          audit[0].setFrameworkId("fw-1");
          audit[0].setTaskId("here");
          audit[1].setFrameworkId("fw-1");
          audit[1].setTaskId("lost-on-the-way");
        }),
        std::chrono::seconds(10),
        [seen, answered](const Received<wire::Pong>& r) {
          for (auto k : r.body().getUnknown())
            seen->push_back(str(k.getTaskId()));
          *answered = true;
        },
        [](const caf::error&) {});
  });
  REQUIRE(wait_until([&] { return answered->load(); }));
  CHECK(*seen == std::vector<std::string>{"lost-on-the-way"});
  // The launch arrives after all: refused, as the master reports it ended.
  c.master.send_to_agent(run_task("lost-on-the-way", "true"));
  REQUIRE(wait_until([&] { return c.metrics->refused_stale_launches.load() == 1; }));
  CHECK(c.master.updates_of("lost-on-the-way").empty());
  c.master.send_to_agent(kill_task("here"));
  c.master.wait_state("here", State::KILLED);
}

TEST_CASE("shutting a framework down kills its tasks", "[agent][shutdown]") {
  Cluster c;
  c.master.send_to_agent(run_task("a", "sleep 100"));
  c.master.send_to_agent(run_task("b", "sleep 100"));
  c.master.wait_state("a", State::RUNNING);
  c.master.wait_state("b", State::RUNNING);
  c.master.send_to_agent(build<wire::ShutdownFramework>(
      [](wire::ShutdownFramework::Builder b) { b.setFrameworkId("fw-1"); }));
  c.master.wait_state("a", State::KILLED);
  c.master.wait_state("b", State::KILLED);
  REQUIRE(wait_until([&] { return exited(c).size() == 2; }));
}

TEST_CASE("ShutdownAgent ends the tasks, then the agent", "[agent][shutdown]") {
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  Cluster c([stopped](AgentConfig& a) { a.on_stopped = [stopped] { stopped->store(true); }; });
  c.master.send_to_agent(run_task("t1", "sleep 100"));
  c.master.wait_state("t1", State::RUNNING);
  c.master.send_to_agent(build<wire::ShutdownAgent>(
      [](wire::ShutdownAgent::Builder b) { b.setReason("removed by test"); }));
  c.master.wait_state("t1", State::KILLED);
  REQUIRE(wait_until([&] { return stopped->load(); }));
}

TEST_CASE("an executor that never subscribes fails its task", "[agent][executor]") {
  testing::TempDir bin;
  auto script = bin.path() / "silent-executor";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\nexec sleep 100\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  Cluster c([&](AgentConfig& a) {
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = script.string();
    a.executor_registration_timeout_ms = 300ms;
  });
  c.master.send_to_agent(run_task("t1", "true"));
  auto failed = c.master.wait_state("t1", State::FAILED);
  CHECK(failed.reason == Reason::EXECUTOR_REGISTRATION_TIMEOUT);
  REQUIRE(wait_until([&] { return executor_exited(c, "t1"); }));
  CHECK(exited(c).front().second == SIGKILL);
}

TEST_CASE("an executor that dies fails its task", "[agent][executor]") {
  Cluster c([](AgentConfig& a) {
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = "/bin/false";
  });
  c.master.send_to_agent(run_task("t1", "true"));
  auto failed = c.master.wait_state("t1", State::FAILED);
  CHECK(failed.reason == Reason::EXECUTOR_TERMINATED);
  REQUIRE(wait_until([&] { return executor_exited(c, "t1"); }));
  CHECK(exited(c).front().second == (1 << 8));
}

TEST_CASE("executors run as `tessera executor` processes", "[agent][process]") {
  Cluster c([](AgentConfig& a) {
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = TESSERA_BIN;
  });
  c.master.send_to_agent(run_task("t1", "echo out; echo err >&2"));
  c.master.wait_state("t1", State::FINISHED);
  CHECK(c.master.states_of("t1") ==
        std::vector<State>{State::STARTING, State::RUNNING, State::FINISHED});
  CHECK(testing::read_file(c.sandbox("t1") / "stdout") == "out\n");
  CHECK(testing::read_file(c.sandbox("t1") / "stderr") == "err\n");
  REQUIRE(wait_until([&] { return executor_exited(c, "t1"); }));
  CHECK(exited(c).front().second == 0);

  SECTION("and are killed like in-process ones") {
    c.master.send_to_agent(run_task("sleeper", "sleep 100"));
    c.master.wait_state("sleeper", State::RUNNING);
    c.master.send_to_agent(kill_task("sleeper"));
    auto killed = c.master.wait_state("sleeper", State::KILLED);
    CHECK(killed.term_signal == SIGTERM);
    REQUIRE(wait_until([&] { return executor_exited(c, "sleeper"); }));
  }
}
