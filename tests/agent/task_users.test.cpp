// Tasks run as their user and see only the environment they are given
// (issue #14, tasks and sandboxes): AgentConfig::switch_user and
// executor_env_allow, with in-process and `tessera executor` executors.
// Switching users needs root: without it these tests say so and skip.

#include "agent/fake_master.hpp"
#include "runtime/os_user.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

// Why a test that switches users cannot run here; empty when it can.
std::string why_no_user_switch() {
  if (::geteuid() != 0)
    return "not root: tasks cannot switch users";
  if (!lookup_user("nobody"))
    return "no user 'nobody' on this machine";
  return {};
}

Outgoing run_as(const std::string& task_id, const std::string& shell, const std::string& task_user,
                const std::string& framework_user = {}) {
  return build<wire::RunTask>([&](wire::RunTask::Builder b) {
    auto fw = b.initFrameworkInfo();
    fw.setFrameworkId("fw-1");
    fw.setUser(framework_user);
    auto task = b.initTask();
    task.setTaskId(task_id);
    auto cmd = task.initCommand();
    cmd.setShell(shell);
    cmd.setUser(task_user);
  });
}

struct stat stat_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

void process_executors(AgentConfig& a) {
  a.executor_mode = ExecutorMode::process;
  a.executor_binary = TESSERA_BIN;
}

}  // namespace

TEST_CASE("a task runs as its user and cannot write the agent's work directory", "[agent][users]") {
  if (auto why = why_no_user_switch(); !why.empty()) {
    WARN("skipped: " << why);
    return;
  }
  auto nobody = *lookup_user("nobody");
  bool process = GENERATE(false, true);
  INFO((process ? "tessera executor processes" : "in-process executors"));
  Cluster c([&](AgentConfig& a) {
    a.switch_user = true;
    if (process)
      process_executors(a);
  });
  // mkdtemp made the test's directory 0700: the work dir's parent must let
  // the task's user through, as an agent's /var/lib/tessera does.
  std::filesystem::permissions(c.dir.path(), std::filesystem::perms(0755));
  auto work = c.dir.path() / "work";
  auto intruder = work / "intruder";
  auto command = "id -u; id -g; if echo x > " + intruder.string() +
                 " 2>/dev/null; then echo wrote-work-dir; else echo work-dir-refused; fi; "
                 "echo mine > own-file && echo sandbox-writable; echo \"$HOME $USER $LOGNAME\"";

  SECTION("the task's own user") {
    c.master.send_to_agent(run_as("t1", command, "nobody"));
  }
  SECTION("its framework's user when the task names none") {
    c.master.send_to_agent(run_as("t1", command, "", "nobody"));
  }
  c.master.wait_state("t1", State::FINISHED);
  auto sandbox = c.sandbox("t1");
  auto out = testing::read_file(sandbox / "stdout");
  CHECK(out == std::to_string(nobody.uid) + "\n" + std::to_string(nobody.gid) +
                   "\nwork-dir-refused\nsandbox-writable\n" + nobody.home + " nobody nobody\n");
  CHECK_FALSE(std::filesystem::exists(intruder));
  // The sandbox and what the task wrote are the user's; the work dir stays
  // root's and writable by no one else.
  CHECK(stat_of(sandbox).st_uid == nobody.uid);
  CHECK(stat_of(sandbox / "stdout").st_uid == nobody.uid);
  CHECK(stat_of(sandbox / "own-file").st_uid == nobody.uid);
  auto w = stat_of(work);
  CHECK(w.st_uid == 0);
  CHECK((w.st_mode & 022) == 0);
  CHECK(stat_of(work / "frameworks").st_uid == 0);
}

TEST_CASE("a task for a user that does not exist fails before anything runs", "[agent][users]") {
  if (::geteuid() != 0) {
    WARN("skipped: not root: the agent ignores task users when it cannot switch");
    return;
  }
  Cluster c([](AgentConfig& a) { a.switch_user = true; });
  c.master.send_to_agent(run_as("t1", "echo never", "tessera-no-such-user"));
  auto failed = c.master.wait_state("t1", State::FAILED);
  CHECK(failed.reason == Reason::CONTAINER_LAUNCH_FAILED);
  CHECK_THAT(failed.message,
             Catch::Contains("user 'tessera-no-such-user'") && Catch::Contains("does not exist"));
  CHECK(c.master.states_of("t1") == std::vector<State>{State::FAILED});
  // No sandbox, no executor: nothing was launched.
  CHECK_FALSE(
      std::filesystem::exists(c.dir.path() / "work" / "frameworks" / "fw-1" / "executors" / "t1"));
  CHECK(c.metrics->tasks_launched.load() == 0);
}

TEST_CASE("without switch_user a task runs as the agent's user whatever it names",
          "[agent][users]") {
  Cluster c([](AgentConfig& a) { a.switch_user = false; });
  c.master.send_to_agent(run_as("t1", "id -u", "tessera-no-such-user"));
  c.master.wait_state("t1", State::FINISHED);
  CHECK(testing::read_file(c.sandbox("t1") / "stdout") == std::to_string(::geteuid()) + "\n");
}

TEST_CASE("executors and tasks get PATH and allowed variables, not the agent's environment",
          "[agent][users][env]") {
  // Set before the agent starts (it reads its environment once, then).
  ::setenv("AGENT_SECRET_MARKER", "leaked", 1);
  ::setenv("AGENT_ALLOWED_MARKER", "passed", 1);
  struct Unset {
    ~Unset() {
      ::unsetenv("AGENT_SECRET_MARKER");
      ::unsetenv("AGENT_ALLOWED_MARKER");
    }
  } unset;
  bool process = GENERATE(false, true);
  INFO((process ? "tessera executor processes" : "in-process executors"));
  Cluster c([&](AgentConfig& a) {
    a.executor_env_allow = {"AGENT_ALLOWED_MARKER"};
    if (process)
      process_executors(a);
  });
  c.master.send_to_agent(build<wire::RunTask>([](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId("fw-1");
    auto task = b.initTask();
    task.setTaskId("t1");
    auto cmd = task.initCommand();
    // The task's environment, then (process executors) its executor's.
    cmd.setShell("env; echo ---; tr '\\0' '\\n' < /proc/$PPID/environ");
    auto var = cmd.initEnvironment(1)[0];
    var.setName("TASK_OWN");
    var.setValue("mine");
  }));
  c.master.wait_state("t1", State::FINISHED);
  auto out = testing::read_file(c.sandbox("t1") / "stdout");
  auto split = out.find("---\n");
  REQUIRE(split != std::string::npos);
  auto task_env = out.substr(0, split);
  auto executor_env = out.substr(split);
  CHECK_THAT(task_env, Catch::Contains("AGENT_ALLOWED_MARKER=passed"));
  CHECK_THAT(task_env, !Catch::Contains("AGENT_SECRET_MARKER"));
  CHECK_THAT(task_env, Catch::Contains("TASK_OWN=mine"));
  CHECK_THAT(task_env, Catch::Contains("TESSERA_TASK_ID=t1"));
  CHECK_THAT(task_env, Catch::Contains("PATH="));
  CHECK_THAT(task_env, Catch::Contains("USER="));
  // The executor's own variables are not the task's.
  CHECK_THAT(task_env, !Catch::Contains("TESSERA_AGENT="));
  if (process) {
    CHECK_THAT(executor_env, Catch::Contains("AGENT_ALLOWED_MARKER=passed"));
    CHECK_THAT(executor_env, Catch::Contains("TESSERA_AGENT="));
    CHECK_THAT(executor_env, !Catch::Contains("AGENT_SECRET_MARKER"));
  }
}
