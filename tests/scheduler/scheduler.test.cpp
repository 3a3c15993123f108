// The scheduler library against a fake master: subscription, offers, calls on
// the wire, acknowledgements, and what happens when the master goes away.

#include "scheduler/harness.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace tessera;
using namespace tessera::testing;

namespace {

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto t : list)
    out.push_back(str(t));
  return out;
}

Resources res(const char* text) {
  auto r = Resources::parse(text);
  REQUIRE(r);
  return *r;
}

// A port nobody listens on: a node's, after it stopped.
uint16_t dead_port() {
  auto node = start_node();
  auto port = node->port();
  node->stop();
  return port;
}

}  // namespace

TEST_CASE("a framework subscribes, learns its id and gets offers as values", "[scheduler]") {
  Harness h;
  auto c = h.config();
  c.framework.roles = {"analytics"};
  c.framework.capabilities = {FrameworkCapability::PARTITION_AWARE};
  c.framework.failover_timeout = std::chrono::seconds(60);
  c.suppressed_roles = {"analytics"};
  h.subscribe(c);
  CHECK((*h.seen)([](FrameworkLog& l) { return l.subscribed; }) ==
        std::vector<std::string>{"fw-1"});
  CHECK(h.calls->last(Call::SUBSCRIBE, [](Call::Reader call) {
    CHECK(str(call.getFrameworkId()).empty());
    auto info = call.getSubscribe().getFrameworkInfo();
    CHECK(str(info.getName()) == "test");
    CHECK(!str(info.getUser()).empty());
    CHECK(texts(info.getRoles()) == std::vector<std::string>{"analytics"});
    CHECK(info.getFailoverTimeoutNs() == 60'000'000'000);
    REQUIRE(info.getCapabilities().size() == 1);
    CHECK(info.getCapabilities()[0] == FrameworkCapability::PARTITION_AWARE);
    CHECK(texts(call.getSubscribe().getSuppressedRoles()) == std::vector<std::string>{"analytics"});
  }));

  Address agent{"agent", "127.0.0.1", 1234};
  auto attributes = parse_attributes("rack:r1;level:3");
  REQUIRE(attributes);
  Offer sent{"o-1",      "agent-1",   "host-1",
             agent,      "analytics", res("cpus:2;mem:1024;ports:[31000-31010];cpus(analytics):1"),
             *attributes};
  h.master->call([&](FakeMaster& m) { m.offers({sent}); });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.offers.size() == 1; }));
  auto got = (*h.seen)([](FrameworkLog& l) { return l.offers[0]; });
  CHECK(got.id == "o-1");
  CHECK(got.agent_id == "agent-1");
  CHECK(got.hostname == "host-1");
  CHECK(got.agent_address == agent);
  CHECK(got.role == "analytics");
  CHECK(got.resources == sent.resources);
  CHECK(got.attributes == sent.attributes);

  h.master->call(
      [](FakeMaster& m) { m.send_event([](Event::Builder e) { e.setRescind("o-1"); }); });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.rescinded.size() == 1; }));
  // A rescinded offer is refused locally; nothing goes to the master.
  auto err = h.framework->call([](TestFramework& f) { return f.accept({"o-1"}, {}); });
  CHECK(is(err, Errc::invalid_argument));
}

TEST_CASE("accept puts the tasks, their resources and commands on the wire", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  Address agent{"agent", "127.0.0.1", 1234};
  h.master->call([&](FakeMaster& m) {
    m.offer("o-1", res("cpus:4;mem:4096"), agent);
    m.offer("o-2", res("cpus:4;mem:4096"), agent);
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.offers.size() == 2; }));

  TaskSpec argv_task;
  argv_task.id = "t-1";
  argv_task.resources = res("cpus:1;mem:128");
  argv_task.argv = {"sh", "-c", "echo hi; exit 3"};
  argv_task.env = {{"GREETING", "hi"}};
  argv_task.kill_grace = std::chrono::seconds(3);
  argv_task.labels = {{"team", "a"}};
  TaskSpec shell_task;
  shell_task.id = "t-2";
  shell_task.name = "sleeper";
  shell_task.resources = res("cpus:0.5;mem:64");
  shell_task.shell = "sleep 1";
  auto err = h.framework->call([&](TestFramework& f) {
    return f.accept({"o-1"}, {argv_task, shell_task}, std::chrono::seconds(10));
  });
  CHECK(!err);
  REQUIRE(h.wait_calls(Call::ACCEPT, 1));
  CHECK(h.calls->last(Call::ACCEPT, [&](Call::Reader call) {
    CHECK(str(call.getFrameworkId()) == "fw-1");
    auto a = call.getAccept();
    CHECK(texts(a.getOfferIds()) == std::vector<std::string>{"o-1"});
    CHECK(a.getFilters().getRefuseSeconds() == 10.0);
    REQUIRE(a.getOperations().size() == 1);
    REQUIRE(a.getOperations()[0].isLaunch());
    auto tasks = a.getOperations()[0].getLaunch();
    REQUIRE(tasks.size() == 2);
    auto t1 = tasks[0];
    CHECK(str(t1.getTaskId()) == "t-1");
    CHECK(str(t1.getName()) == "t-1");
    CHECK(str(t1.getAgentId()) == "agent-1");  // filled in from the offer
    auto r1 = from_wire(t1.getResources());
    REQUIRE(r1);
    CHECK(*r1 == argv_task.resources);
    REQUIRE(t1.getCommand().isArgv());
    CHECK(texts(t1.getCommand().getArgv()) == argv_task.argv);
    REQUIRE(t1.getCommand().getEnvironment().size() == 1);
    CHECK(str(t1.getCommand().getEnvironment()[0].getName()) == "GREETING");
    CHECK(str(t1.getCommand().getEnvironment()[0].getValue()) == "hi");
    REQUIRE(t1.hasKillPolicy());
    CHECK(t1.getKillPolicy().getGracePeriodNs() == 3'000'000'000);
    REQUIRE(t1.getLabels().size() == 1);
    CHECK(str(t1.getLabels()[0].getKey()) == "team");
    auto t2 = tasks[1];
    CHECK(str(t2.getName()) == "sleeper");
    REQUIRE(t2.getCommand().isShell());
    CHECK(str(t2.getCommand().getShell()) == "sleep 1");
    CHECK(!t2.hasKillPolicy());
  }));

  // Refused locally, nothing sent: a used offer, a task without a command,
  // a task on another agent than the offer's.
  TaskSpec no_command;
  no_command.id = "t-3";
  no_command.resources = res("cpus:1");
  TaskSpec elsewhere = shell_task;
  elsewhere.agent_id = "agent-9";
  h.framework->call([&](TestFramework& f) {
    CHECK(is(f.accept({"o-1"}, {shell_task}), Errc::invalid_argument));
    CHECK(is(f.accept({"o-2"}, {no_command}), Errc::invalid_argument));
    CHECK(is(f.accept({"o-2"}, {elsewhere}), Errc::invalid_argument));
    CHECK(is(f.accept({}, {shell_task}), Errc::invalid_argument));
    CHECK(!f.reconcile());  // a barrier: it reaches the master after anything sent before
  });
  REQUIRE(h.wait_calls(Call::RECONCILE, 1));
  CHECK(h.count(Call::ACCEPT) == 1);
}

TEST_CASE("decline carries its filter", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  h.master->call([](FakeMaster& m) {
    m.offer("o-1", res("cpus:1"));
    m.offer("o-2", res("cpus:1"));
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.offers.size() == 2; }));
  h.framework->call([](TestFramework& f) {
    CHECK(!f.decline({"o-1"}, std::chrono::hours(1)));
    CHECK(!f.decline({"o-2"}));
  });
  REQUIRE(h.wait_calls(Call::DECLINE, 2));
  std::vector<std::pair<std::string, double>> declines;
  h.calls->for_each([&](Call::Reader call) {
    if (call.isDecline())
      declines.emplace_back(texts(call.getDecline().getOfferIds()).at(0),
                            call.getDecline().getFilters().getRefuseSeconds());
  });
  CHECK(declines == std::vector<std::pair<std::string, double>>{{"o-1", 3600.0}, {"o-2", 5.0}});
}

TEST_CASE("updates with a uuid are acknowledged automatically", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  h.master->call([](FakeMaster& m) {
    m.update(status("t-1", TaskState::RUNNING, "u-1"));
    m.update(status("t-1", TaskState::RUNNING));  // master-made: no ack
    auto failed = status("t-1", TaskState::FAILED, "u-2");
    failed.exit_code = 3;
    failed.message = "Command exited with status 3";
    failed.reason = TaskReason::COMMAND_EXITED;
    m.update(failed);
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 3; }));
  auto last = (*h.seen)([](FrameworkLog& l) { return l.updates.back(); });
  CHECK(last.task_id == "t-1");
  CHECK(last.agent_id == "agent-1");
  CHECK(last.state == TaskState::FAILED);
  CHECK(last.reason == TaskReason::COMMAND_EXITED);
  CHECK(last.exit_code == 3);
  CHECK(last.term_signal == 0);
  CHECK(last.uuid == "u-2");
  CHECK(last.terminal());
  CHECK(last.timestamp.time_since_epoch().count() > 0);
  CHECK(describe(last) == "TASK_FAILED (Command exited with status 3)");

  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 2));
  std::vector<std::string> acked;
  h.calls->for_each([&](Call::Reader call) {
    if (call.isAcknowledge()) {
      auto a = call.getAcknowledge();
      acked.push_back(str(a.getAgentId()) + "/" + str(a.getTaskId()) + "/" + str(a.getUuid()));
    }
  });
  CHECK(acked == std::vector<std::string>{"agent-1/t-1/u-1", "agent-1/t-1/u-2"});
}

TEST_CASE("with auto-acknowledge off, the framework acknowledges itself", "[scheduler]") {
  Harness h;
  auto c = h.config();
  c.auto_acknowledge = false;
  h.subscribe(c);
  h.master->call([](FakeMaster& m) { m.update(status("t-1", TaskState::RUNNING, "u-1")); });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 1; }));
  h.framework->call([](TestFramework& f) { CHECK(!f.reconcile()); });
  REQUIRE(h.wait_calls(Call::RECONCILE, 1));
  CHECK(h.count(Call::ACKNOWLEDGE) == 0);

  auto running = (*h.seen)([](FrameworkLog& l) { return l.updates[0]; });
  h.framework->call([&](TestFramework& f) { CHECK(!f.acknowledge(running)); });
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 1));
  CHECK(h.calls->last(Call::ACKNOWLEDGE, [](Call::Reader call) {
    CHECK(str(call.getAcknowledge().getUuid()) == "u-1");
  }));
  running.uuid.clear();  // nothing to acknowledge
  auto err = h.framework->call([&](TestFramework& f) { return f.acknowledge(running); });
  CHECK(is(err, Errc::invalid_argument));
}

TEST_CASE("reconcile: implicit and explicit", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  h.framework->call([](TestFramework& f) { CHECK(!f.reconcile()); });
  REQUIRE(h.wait_calls(Call::RECONCILE, 1));
  CHECK(h.calls->last(Call::RECONCILE, [](Call::Reader call) {
    CHECK(call.getReconcile().getTasks().size() == 0);
  }));
  h.framework->call([](TestFramework& f) {
    CHECK(!f.reconcile({{"t-1", "agent-1"}, {"t-2", ""}}));
  });
  REQUIRE(h.wait_calls(Call::RECONCILE, 2));
  CHECK(h.calls->last(Call::RECONCILE, [](Call::Reader call) {
    auto tasks = call.getReconcile().getTasks();
    REQUIRE(tasks.size() == 2);
    CHECK(str(tasks[0].getTaskId()) == "t-1");
    CHECK(str(tasks[0].getAgentId()) == "agent-1");
    CHECK(str(tasks[1].getTaskId()) == "t-2");
    CHECK(str(tasks[1].getAgentId()).empty());
  }));
}

TEST_CASE("kill, suppress, revive, shutdown and messages on the wire, events to callbacks",
          "[scheduler]") {
  Harness h;
  auto c = h.config();
  c.framework.roles = {"a", "b"};
  h.subscribe(c);
  h.framework->call([](TestFramework& f) {
    CHECK(!f.kill("t-1", "agent-1", std::chrono::seconds(2)));
    CHECK(!f.suppress({"a"}));
    CHECK(!f.revive());
    CHECK(!f.shutdown_executor("e-1", "agent-1"));
    CHECK(!f.send_message("agent-1", "e-1", "ping"));
    CHECK(is(f.kill(""), Errc::invalid_argument));
  });
  REQUIRE(h.wait_calls(Call::MESSAGE, 1));
  CHECK(h.calls->last(Call::KILL, [](Call::Reader call) {
    CHECK(str(call.getKill().getTaskId()) == "t-1");
    CHECK(str(call.getKill().getAgentId()) == "agent-1");
    CHECK(call.getKill().getKillPolicy().getGracePeriodNs() == 2'000'000'000);
  }));
  CHECK(h.calls->last(Call::SUPPRESS, [](Call::Reader call) {
    CHECK(texts(call.getSuppress().getRoles()) == std::vector<std::string>{"a"});
  }));
  CHECK(h.calls->last(Call::REVIVE,
                      [](Call::Reader call) { CHECK(call.getRevive().getRoles().size() == 0); }));
  CHECK(h.calls->last(Call::SHUTDOWN, [](Call::Reader call) {
    CHECK(str(call.getShutdown().getExecutorId()) == "e-1");
  }));
  CHECK(h.calls->last(
      Call::MESSAGE, [](Call::Reader call) { CHECK(str(call.getMessage().getData()) == "ping"); }));

  h.master->call([](FakeMaster& m) {
    m.send_event([](Event::Builder e) {
      auto msg = e.initMessage();
      msg.setAgentId("agent-1");
      msg.setExecutorId("e-1");
      msg.setData(data("pong"));
    });
    m.send_event([](Event::Builder e) {
      auto f = e.initFailure();
      f.setAgentId("agent-1");
      f.setExecutorId("e-1");
      f.setStatus(9);
    });
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return !l.failures.empty(); }));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.messages; }) ==
        std::vector<std::string>{"agent-1/e-1:pong"});
  CHECK((*h.seen)([](FrameworkLog& l) { return l.failures; }) ==
        std::vector<std::string>{"agent-1/e-1:9"});
}

TEST_CASE("calls before the master answers fail, and the subscribe is retried", "[scheduler]") {
  FakeMasterOptions silent_master;
  silent_master.answer_subscribe = false;
  Harness h(silent_master);
  auto c = h.config();
  c.subscribe_timeout = std::chrono::milliseconds(50);
  h.spawn(c);
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 2));
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.subscribe_failed >= 1; }));
  h.framework->call([](TestFramework& f) {
    CHECK(!f.connected());
    CHECK(is(f.decline({"o-1"}), Errc::peer_lost));
    CHECK(is(f.reconcile(), Errc::peer_lost));
    CHECK(is(f.teardown(), Errc::peer_lost));
  });
  CHECK(h.count(Call::DECLINE) == 0);
  CHECK((*h.seen)([](FrameworkLog& l) { return l.subscribed.empty(); }));
}

TEST_CASE("an unreachable master: every subscribe attempt fails and is retried", "[scheduler]") {
  Harness h;
  auto c = h.config();
  c.master = Address{"master", "127.0.0.1", dead_port()};
  h.spawn(c);
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.subscribe_failed >= 3; }));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.subscribed.empty() && l.disconnected == 0; }));
}

TEST_CASE("a lost master: disconnected, then resubscribed with the framework id when it is back",
          "[scheduler][failover]") {
  Harness h;
  h.subscribe(h.config());
  h.framework->call([](TestFramework& f) { CHECK(!f.suppress()); });
  REQUIRE(h.wait_calls(Call::SUPPRESS, 1));
  auto port = h.master_node->port();

  h.master_node->stop();
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.disconnected == 1; }));
  h.framework->call([](TestFramework& f) {
    CHECK(!f.connected());
    CHECK(is(f.reconcile(), Errc::peer_lost));
  });

  // Another master instance at the same address; it assigns "fw-2" to new
  // frameworks, so getting "fw-1" back proves the framework brought its id.
  FakeMasterOptions restarted;
  restarted.framework_id = "fw-2";
  h.start_master(restarted, port);
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.subscribed.size() == 2; }));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.subscribed; }) ==
        std::vector<std::string>{"fw-1", "fw-1"});
  CHECK(h.calls->last(Call::SUBSCRIBE, [](Call::Reader call) {
    CHECK(str(call.getFrameworkId()) == "fw-1");
    CHECK(str(call.getSubscribe().getFrameworkInfo().getFrameworkId()) == "fw-1");
    // Suppression survives the resubscription.
    CHECK(texts(call.getSubscribe().getSuppressedRoles()) == std::vector<std::string>{"*"});
  }));
  h.framework->call([](TestFramework& f) { CHECK(!f.reconcile()); });
  REQUIRE(h.wait_calls(Call::RECONCILE, 1));
}

TEST_CASE("missed heartbeats count as a lost master", "[scheduler][failover]") {
  FakeMasterOptions options;
  options.heartbeat_interval = std::chrono::milliseconds(50);
  Harness h(options);
  auto c = h.config();
  c.heartbeats_missed_max = 3;
  h.subscribe(c);
  h.master->call([](FakeMaster& m) { m.silent = true; });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.disconnected >= 1; }));
  // The master process is still there: the resubscribe succeeds at once.
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.subscribed.size() >= 2; }));
  CHECK(h.calls->last(Call::SUBSCRIBE,
                      [](Call::Reader call) { CHECK(str(call.getFrameworkId()) == "fw-1"); }));
}

TEST_CASE("a suppress or revive the master missed is sent again after its heartbeat",
          "[scheduler][failover]") {
  FakeMasterOptions options;
  options.heartbeat_interval = std::chrono::milliseconds(50);
  Harness h(options);
  h.subscribe(h.config());
  h.framework->call([](TestFramework& f) { CHECK(!f.suppress()); });
  REQUIRE(h.wait_calls(Call::SUPPRESS, 1));
  // The SUPPRESS never arrived: the heartbeat says no role is suppressed.
  h.master->call([](FakeMaster& m) { m.set_suppressed({}); });
  REQUIRE(h.wait_calls(Call::SUPPRESS, 2));
  h.framework->call([](TestFramework& f) { CHECK(!f.revive()); });
  REQUIRE(h.wait_calls(Call::REVIVE, 1));
  // The REVIVE never arrived: the framework would get no offer again.
  h.master->call([](FakeMaster& m) { m.set_suppressed({"*"}); });
  REQUIRE(h.wait_calls(Call::REVIVE, 2));
  CHECK(h.calls->last(Call::REVIVE, [](Call::Reader call) {
    CHECK(texts(call.getRevive().getRoles()) == std::vector<std::string>{"*"});
  }));
  // Agreed: nothing more is sent.
  auto sent = h.calls->count(Call::SUPPRESS) + h.calls->count(Call::REVIVE);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(h.calls->count(Call::SUPPRESS) + h.calls->count(Call::REVIVE) == sent);
  CHECK(h.framework->call([](TestFramework& f) { return f.calls_resent(); }) == 2);
}

TEST_CASE("a framework hears one terminal state per launch", "[scheduler][dedupe]") {
  Harness h;
  h.subscribe(h.config());
  h.master->call([](FakeMaster& m) {
    auto lost = status("t-1", TaskState::LOST);
    lost.reason = TaskReason::AGENT_UNREACHABLE;
    m.update(lost);
    // A master that restarted without remembering that forwards these:
    m.update(status("t-1", TaskState::FINISHED, "u-2"));
    m.update(status("t-1", TaskState::RUNNING, "u-3"));
    m.update(status("t-1", TaskState::UNKNOWN));
    // A reconciliation answer is an answer: delivered.
    auto answer = status("t-1", TaskState::LOST);
    answer.reason = TaskReason::RECONCILIATION;
    m.update(answer);
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 2; }));
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 2));  // u-2 and u-3: the agent stops resending
  // The task alive after all is killed once (not for the UNKNOWN).
  REQUIRE(h.wait_calls(Call::KILL, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(h.calls->count(Call::KILL) == 1);
  auto states = (*h.seen)([](FrameworkLog& l) {
    std::vector<std::string> out;
    for (const auto& u : l.updates)
      out.push_back(std::string(to_string(u.state)) + "/" + to_string(u.reason));
    return out;
  });
  CHECK(states == std::vector<std::string>{"TASK_LOST/REASON_AGENT_UNREACHABLE",
                                           "TASK_LOST/REASON_RECONCILIATION"});
  CHECK(h.framework->call([](TestFramework& f) { return f.updates_after_end(); }) == 3);

  // A terminal answer to reconciliation ends nothing: a master that just
  // restarted says LOST for a task whose agent is not back yet.
  h.master->call([](FakeMaster& m) {
    auto answer = status("t-2", TaskState::LOST);
    answer.reason = TaskReason::RECONCILIATION;
    m.update(answer);
    auto running = status("t-2", TaskState::RUNNING);
    running.reason = TaskReason::RECONCILIATION;
    m.update(running);
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(h.calls->count(Call::KILL) == 1);
}

TEST_CASE("an error event from the master ends the framework", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  h.master->call([](FakeMaster& m) {
    m.send_event([](Event::Builder e) { e.setError("framework removed"); });
  });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.errors.size() == 1; }));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.errors[0]; }) == "framework removed");
  auto err = h.framework->call([](TestFramework& f) { return f.reconcile(); });
  CHECK(is(err, Errc::stopped));
}

TEST_CASE("teardown is sent once, later calls are refused", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  h.framework->call([](TestFramework& f) {
    CHECK(!f.teardown());
    CHECK(is(f.teardown(), Errc::stopped));
    CHECK(is(f.reconcile(), Errc::stopped));
  });
  REQUIRE(h.wait_calls(Call::TEARDOWN, 1));
}

TEST_CASE("an invalid config is reported through error() and never subscribes", "[scheduler]") {
  Harness h;
  auto c = h.config();
  c.framework.roles = {"bad role"};
  CHECK(is(validate(c), Errc::invalid_argument));
  h.spawn(c);
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.errors.size() == 1; }));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.errors[0]; }).find("bad role") !=
        std::string::npos);
}

TEST_CASE("sandbox files are read from the agent, chunk by chunk", "[scheduler][sandbox]") {
  Harness h;
  const std::string content = "0123456789abcdefghij-tail";
  auto reads = std::make_shared<std::atomic<int>>(0);
  auto agent = h.master_node->spawn<FakeAgent>(
      "agent",
      [&](const std::string& task, const std::string& path) -> std::optional<std::string> {
        if (task == "t-1" && path == "stdout")
          return content;
        return std::nullopt;
      },
      uint64_t{5}, reads);
  REQUIRE(agent);
  h.subscribe(h.config());

  using Result = std::promise<expected<SandboxData>>;
  auto read = [&](auto start) {
    auto result = std::make_shared<Result>();
    auto future = result->get_future();
    h.framework->call([&](TestFramework& f) {
      start(f, [result](expected<SandboxData> d) { result->set_value(std::move(d)); });
    });
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    return future.get();
  };

  auto whole = read([&](TestFramework& f, auto fn) {
    f.read_whole_sandbox_file(*agent, "t-1", "stdout", 1 << 20, fn);
  });
  REQUIRE(whole);
  CHECK(whole->bytes == content);
  CHECK(whole->file_size == content.size());
  CHECK(*reads == 5);

  auto capped = read([&](TestFramework& f, auto fn) {
    f.read_whole_sandbox_file(*agent, "t-1", "stdout", 7, fn);
  });
  REQUIRE(capped);
  CHECK(capped->bytes == "0123456");
  CHECK(capped->file_size == content.size());

  auto tail = read([&](TestFramework& f, auto fn) {
    f.read_sandbox_file(*agent, "t-1", "stdout", 20, 100, fn);
  });
  REQUIRE(tail);
  CHECK(tail->bytes == "-tail");

  auto missing = read([&](TestFramework& f, auto fn) {
    f.read_whole_sandbox_file(*agent, "t-1", "no-such-file", 100, fn);
  });
  REQUIRE(!missing);
  CHECK(describe(missing.error()).find("no such file") != std::string::npos);

  auto no_agent = read([&](TestFramework& f, auto fn) {
    f.read_sandbox_file(Address{"agent", "127.0.0.1", dead_port()}, "t-1", "stdout", 0, 10, fn);
  });
  CHECK(!no_agent);
}

TEST_CASE("an update resent after it was acknowledged is acknowledged again, not delivered",
          "[scheduler][dedupe]") {
  Harness h;
  h.subscribe(h.config());
  h.master->call([](FakeMaster& m) { m.update(status("t-1", TaskState::RUNNING, "u-1")); });
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 1));

  // The agent restarted from its checkpoints before the acknowledgement
  // reached it: u-1 comes again, then the task's next update.
  h.master->call([](FakeMaster& m) {
    m.update(status("t-1", TaskState::RUNNING, "u-1"));
    m.update(status("t-1", TaskState::FINISHED, "u-2"));
  });
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 3));
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 2; }));
  auto states = (*h.seen)([](FrameworkLog& l) {
    std::vector<std::string> out;
    for (const auto& u : l.updates)
      out.push_back(u.uuid + ":" + to_string(u.state));
    return out;
  });
  CHECK(states == std::vector<std::string>{"u-1:TASK_RUNNING", "u-2:TASK_FINISHED"});
  std::vector<std::string> acked;
  h.calls->for_each([&](Call::Reader call) {
    if (call.isAcknowledge())
      acked.push_back(str(call.getAcknowledge().getTaskId()) + "/" +
                      str(call.getAcknowledge().getUuid()));
  });
  CHECK(acked == std::vector<std::string>{"t-1/u-1", "t-1/u-1", "t-1/u-2"});
  CHECK(h.framework->call([](TestFramework& f) { return f.duplicate_updates(); }) == 1);
}

TEST_CASE("an update not yet acknowledged is delivered again when resent", "[scheduler][dedupe]") {
  Harness h;
  auto c = h.config();
  c.auto_acknowledge = false;
  h.subscribe(c);
  h.master->call([](FakeMaster& m) {
    m.update(status("t-1", TaskState::RUNNING, "u-1"));
    m.update(status("t-1", TaskState::RUNNING, "u-1"));
  });
  // At least once until acknowledged: the framework has not acted on it yet.
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.updates.size() == 2; }));
  auto running = (*h.seen)([](FrameworkLog& l) { return l.updates[0]; });
  h.framework->call([&](TestFramework& f) { CHECK(!f.acknowledge(running)); });
  // Once acknowledged, a resend is acknowledged by the library alone.
  h.master->call([](FakeMaster& m) { m.update(status("t-1", TaskState::RUNNING, "u-1")); });
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 2));
  CHECK((*h.seen)([](FrameworkLog& l) { return l.updates.size(); }) == 2);
  CHECK(h.framework->call([](TestFramework& f) { return f.duplicate_updates(); }) == 1);
}

TEST_CASE("launch_group sends one LaunchGroup operation with the group's tasks", "[scheduler]") {
  Harness h;
  h.subscribe(h.config());
  Address agent{"agent", "127.0.0.1", 1234};
  h.master->call([&](FakeMaster& m) { m.offer("o-1", res("cpus:4;mem:4096"), agent); });
  REQUIRE(h.wait_seen([](FrameworkLog& l) { return l.offers.size() == 1; }));
  TaskSpec web;
  web.id = "web";
  web.resources = res("cpus:1;mem:128");
  web.shell = "serve";
  TaskSpec sidecar = web;
  sidecar.id = "sidecar";
  sidecar.shell = "log-shipper";
  h.framework->call([&](TestFramework& f) {
    CHECK(is(f.launch_group({"o-1"}, {}), Errc::invalid_argument));
    CHECK(!f.launch_group({"o-1"}, {web, sidecar}, "pod-1"));
  });
  REQUIRE(h.wait_calls(Call::ACCEPT, 1));
  CHECK(h.calls->last(Call::ACCEPT, [&](Call::Reader call) {
    auto a = call.getAccept();
    CHECK(texts(a.getOfferIds()) == std::vector<std::string>{"o-1"});
    REQUIRE(a.getOperations().size() == 1);
    REQUIRE(a.getOperations()[0].isLaunchGroup());
    auto g = a.getOperations()[0].getLaunchGroup();
    CHECK(str(g.getExecutor().getExecutorId()) == "pod-1");
    CHECK(str(g.getExecutor().getFrameworkId()) == "fw-1");
    CHECK(g.getExecutor().getType() == wire::ExecutorInfo::Type::DEFAULT);
    REQUIRE(g.getTasks().size() == 2);
    CHECK(str(g.getTasks()[0].getTaskId()) == "web");
    CHECK(str(g.getTasks()[1].getTaskId()) == "sidecar");
    CHECK(str(g.getTasks()[1].getAgentId()) == "agent-1");
    CHECK(str(g.getTasks()[1].getCommand().getShell()) == "log-shipper");
  }));
}
