// The executor's tasks: groups (all or nothing, ended together), kill
// policies and KILLING updates, the ports a task sees, and the process spec
// every task gets.

#include "agent/executor_harness.hpp"

#include <capnp/message.h>

#include <signal.h>

using namespace tessera;
using namespace tessera::executor_test;

namespace {

std::vector<State> started_then(State last) {
  return {State::STARTING, State::RUNNING, last};
}

}  // namespace

TEST_CASE("a group task that fails takes its siblings with it", "[executor][group]") {
  ScriptedRun run([](wire::ExecutorEvent::Builder b) {
    auto tasks = b.initLaunchGroup(2);
    shell_task(tasks[0], "a", "echo from-a; pwd; sleep 0.1; exit 1");
    shell_task(tasks[1], "b", "exec sleep 30");
  });
  CHECK(run.wait_done() == 0);  // every terminal update acknowledged
  CHECK(run.states_of("a") == started_then(State::FAILED));
  CHECK(run.states_of("b") == started_then(State::KILLED));
  auto a = run.wait_terminal("a");
  CHECK(a.reason == Reason::COMMAND_EXITED);
  CHECK(a.exit_code == 1);
  auto b = run.wait_terminal("b");
  CHECK(b.term_signal == SIGTERM);
  CHECK_THAT(b.message, Catch::Contains("Task a of its group ended"));
  // Each task ran in tasks/<id>/ and wrote its output there.
  auto out = testing::read_file(run.sandbox() / "tasks" / "a" / "stdout");
  CHECK_THAT(out, Catch::StartsWith("from-a\n") && Catch::EndsWith("/tasks/a\n"));
  CHECK_FALSE(std::filesystem::exists(run.sandbox() / "stdout"));
}

TEST_CASE("a group whose tasks all finish ends once all are acknowledged", "[executor][group]") {
  ScriptedRun run([](wire::ExecutorEvent::Builder b) {
    auto tasks = b.initLaunchGroup(2);
    shell_task(tasks[0], "a", "echo a");
    shell_task(tasks[1], "b", "sleep 0.2; echo b");
  });
  CHECK(run.wait_done() == 0);
  CHECK(run.states_of("a") == started_then(State::FINISHED));
  CHECK(run.states_of("b") == started_then(State::FINISHED));
  CHECK(testing::read_file(run.sandbox() / "tasks" / "a" / "stdout") == "a\n");
  CHECK(testing::read_file(run.sandbox() / "tasks" / "b" / "stdout") == "b\n");
}

TEST_CASE("a group that cannot be spawned whole is not started at all", "[executor][group]") {
  ScriptedRun run([](wire::ExecutorEvent::Builder b) {
    auto tasks = b.initLaunchGroup(3);
    shell_task(tasks[0], "a", "exec sleep 30");
    tasks[1].setTaskId("b");
    tasks[1].initCommand().initArgv(1).set(0, "/nonexistent/tessera-no-such-program");
    shell_task(tasks[2], "c", "exec sleep 30");
  });
  CHECK(run.wait_done() == 0);
  auto a = run.wait_terminal("a");
  auto b = run.wait_terminal("b");
  auto c = run.wait_terminal("c");
  CHECK(b.state == State::FAILED);
  CHECK(b.reason == Reason::CONTAINER_LAUNCH_FAILED);
  CHECK(a.state == State::KILLED);
  CHECK(c.state == State::KILLED);
  // Nobody was ever reported RUNNING.
  for (auto& u : run.updates())
    CHECK(u.state != State::RUNNING);
}

TEST_CASE("KILLING is sent only to frameworks that take it", "[executor][kill]") {
  auto capability = GENERATE(false, true);
  AgentScript script;
  script.launch = [](wire::ExecutorEvent::Builder b) {
    shell_task(b.initLaunch(), "t1", "exec sleep 30");
  };
  script.killing_capability = capability;
  script.on_update = [](Probe& self, const Address& executor, const Update& u) {
    if (u.state == State::RUNNING)
      self.send(executor, kill_event("t1", 5s));
  };
  ScriptedRun run(script);
  CHECK(run.wait_done() == 0);
  if (capability)
    CHECK(run.states_of("t1") ==
          std::vector<State>{State::STARTING, State::RUNNING, State::KILLING, State::KILLED});
  else
    CHECK(run.states_of("t1") == started_then(State::KILLED));
}

TEST_CASE("a task's kill policy sets the grace before SIGKILL", "[executor][kill]") {
  TempDir marks;
  auto ready = marks.path() / "ready";
  AgentScript script;
  script.launch = [ready](wire::ExecutorEvent::Builder b) {
    auto task = b.initLaunch();
    // Ignores SIGTERM (and so does its sleep), then says it is ready.
    shell_task(task, "t1", "trap '' TERM; touch " + ready.string() + "; sleep 30");
    task.initKillPolicy().setGracePeriodNs(Duration(100ms).count());
  };
  // Kill once the trap is set, with no grace of the kill's own.
  script.on_update = [ready](Probe& self, const Address& executor, const Update& u) {
    if (u.state != State::RUNNING)
      return;
    when(
        self, [ready] { return std::filesystem::exists(ready); },
        [&self, executor] { self.send(executor, kill_event("t1")); });
  };
  // The default would outlast the test's wait: only the task's policy can end it.
  ScriptedRun run(script, [](CommandExecutorConfig& c) { c.kill_grace_ms = 60s; });
  auto end = run.wait_terminal("t1");
  CHECK(end.state == State::KILLED);
  CHECK(end.term_signal == SIGKILL);
  CHECK(run.wait_done() == 0);
}

TEST_CASE("a task sees its ports, id and sandbox in its environment", "[executor][ports]") {
  ScriptedRun run([](wire::ExecutorEvent::Builder b) {
    auto task = b.initLaunch();
    shell_task(task, "t1",
               "echo \"$PORT0 $PORT1 $PORT2 $PORTS $PORT $TESSERA_TASK_ID $MINE\"; "
               "echo \"$TESSERA_SANDBOX\"");
    auto env = task.getCommand().initEnvironment(1);
    env[0].setName("MINE");
    env[0].setValue("x");
    auto resources = task.initResources(2);
    resources[0].setName("cpus");
    resources[0].setScalarMilli(100);
    resources[1].setName("ports");
    auto ranges = resources[1].initRanges(2);
    ranges[0].setBegin(31000);
    ranges[0].setEnd(31001);
    ranges[1].setBegin(31005);
    ranges[1].setEnd(31005);
  });
  CHECK(run.wait_done() == 0);
  CHECK(run.states_of("t1") == started_then(State::FINISHED));
  CHECK(testing::read_file(run.sandbox() / "stdout") ==
        "31000 31001 31005 31000,31001,31005 31000 t1 x\n" + run.sandbox().string() + "\n");
}

TEST_CASE("every task process gets the executor's container placement", "[executor]") {
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<wire::TaskInfo>();
  shell_task(task, "t1", "true");
  auto where = group_task_placement("/sandbox", "t1");
  auto spec = task_process(task.asReader(), where, {"/cg/a", "/cg/b"}, true);
  REQUIRE(spec);
  CHECK(spec->cgroups == std::vector<std::string>{"/cg/a", "/cg/b"});
  CHECK(spec->pid_namespace);
  CHECK(spec->working_dir == "/sandbox/tasks/t1");
  CHECK(spec->stdout_path == "/sandbox/tasks/t1/stdout");
  CHECK(spec->argv == std::vector<std::string>{"/bin/sh", "-c", "true"});
  CHECK(port_environment(task.asReader().getResources()).empty());
  auto check =
      check_process(task.asReader(), task.asReader().getCommand(), where, {"/cg/a"}, false);
  REQUIRE(check);
  CHECK(check->cgroups == std::vector<std::string>{"/cg/a"});
  CHECK(check->stdout_path.empty());
  CHECK(!task_process(message.initRoot<wire::TaskInfo>().asReader(), where, {}, false));
}

TEST_CASE("a task's environment starts from the base and its user, never the executor's",
          "[executor][env]") {
  ProcessSpec spec;
  spec.env = {"TESSERA_TASK_ID=t1", "HOME=/task/home"};
  UserIdentity who;
  who.name = "alice";
  who.home = "/home/alice";
  start_environment(spec, {"PATH=/bin", "LANG=C"}, &who);
  CHECK_FALSE(spec.inherit_env);
  // In order: later entries win in the launcher, so the task's own HOME does.
  CHECK(spec.env == std::vector<std::string>{"PATH=/bin", "LANG=C", "HOME=/home/alice",
                                             "USER=alice", "LOGNAME=alice", "TESSERA_TASK_ID=t1",
                                             "HOME=/task/home"});
  ProcessSpec unknown;
  start_environment(unknown, {"PATH=/bin"}, nullptr);
  CHECK(unknown.env == std::vector<std::string>{"PATH=/bin"});
  CHECK_FALSE(unknown.inherit_env);
}

TEST_CASE("group task ids must be directory names", "[executor][group]") {
  CHECK(valid_task_dir_name("web-1"));
  CHECK_FALSE(valid_task_dir_name(""));
  CHECK_FALSE(valid_task_dir_name(".."));
  CHECK_FALSE(valid_task_dir_name("a/b"));
}
