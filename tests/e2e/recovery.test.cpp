// Agent recovery through the real processes: a `tessera agent` killed with
// SIGKILL mid-run, or stopped with SIGTERM (which keeps its tasks running),
// and started again on the same work dir and address takes its executors
// back. The framework hears of no loss, and each of its tasks' updates
// exactly once, including the end of a task that exited while the agent was
// down.

#include "tests/e2e/task_probe.hpp"
#include "e2e/agent_cleanup.hpp"
#include "e2e/test_framework.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

const char* agent_resources = "cpus:2;mem:1024;disk:1000;ports:[31000-31099]";

// A task that records its pid, then waits for flag to appear and exits code.
TaskSpec waiting_task(const std::string& id, const std::filesystem::path& flag, int code) {
  return shell_task(id, "echo $$ > pid; while [ ! -e " + flag.string() +
                            " ]; do sleep 0.05; done; exit " + std::to_string(code));
}

int read_pid(const std::filesystem::path& root, const std::string& task) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec)
      break;
    if (it->path().filename() == "pid" &&
        it->path().string().find("/executors/" + task + "/") != std::string::npos) {
      std::ifstream in(it->path());
      int pid = 0;
      in >> pid;
      return pid;
    }
  }
  return 0;
}

void touch(const std::filesystem::path& p) {
  std::ofstream out(p);
}

std::unique_ptr<ChildProcess> start_agent(const std::string& master, const std::string& listen,
                                          const std::filesystem::path& dir) {
  auto agent = ChildProcess::start({TESSERA_BIN, "agent", "--master", master, "--listen", listen,
                                    "--work-dir", dir.string(), "--resources", agent_resources});
  REQUIRE(agent->wait_line("listening on"));
  return agent;
}

}  // namespace

// The agent ends by signal sig while three tasks run, one of them ends
// while it is down, and it is started again.
static void restart_keeps_tasks(int sig) {
  TempDir dir;
  // Pings miss only after 10 s: the restart below takes well under that.
  auto master =
      ChildProcess::start({TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--work-dir",
                           (dir.path() / "master").string(), "--agent-ping-interval", "0.2",
                           "--agent-ping-timeout", "0.2", "--agent-pings-missed", "50"});
  auto line = master->wait_line("listening on");
  REQUIRE(line);
  auto at = line->find("master@");
  auto master_at = line->substr(at + 7, line->find(' ', at) - at - 7);
  auto agent_dir = dir.path() / "agent";
  auto agent = start_agent(master_at, "127.0.0.1:0", agent_dir);
  auto agent_line = agent->out();
  auto a = agent_line.find("agent@");
  REQUIRE(a != std::string::npos);
  // The same address again after the restart: executors look for it there.
  auto agent_at = agent_line.substr(a + 6, agent_line.find_first_of(", \n", a) - a - 6);

  auto node = Node::start();
  REQUIRE(node);
  auto log = std::make_shared<TestFrameworkLog>();
  auto ends_while_down = dir.path() / "end-while-down";
  auto ends_after = dir.path() / "end-after";
  log->launch(waiting_task("down", ends_while_down, 7));
  log->launch(waiting_task("after", ends_after, 0));
  log->launch(shell_task("killed", "echo $$ > pid; exec sleep 1000"));
  REQUIRE((*node)->spawn<TestFramework>(
      "fw", test_framework_config(*Address::parse("master@" + master_at), "web"), log));
  for (const char* t : {"down", "after", "killed"})
    REQUIRE(wait_until([&] { return log->has(t, TaskState::RUNNING); }, 30s));
  int down_pid = 0;
  REQUIRE(wait_until([&] { return alive(down_pid = read_pid(agent_dir, "down")); }));

  agent->kill(sig);
  REQUIRE(agent->wait_exit());
  if (sig == SIGTERM) {
    auto status = agent->exit_status();
    REQUIRE(status);
    CHECK(status->exit_code == 0);
  }
  // Its tasks ran on without it.
  REQUIRE(alive(down_pid));
  // One task ends while no agent is there to hear it.
  touch(ends_while_down);
  REQUIRE(wait_until([&] { return !alive(down_pid); }));
  agent = start_agent(master_at, agent_at, agent_dir);

  // The task that ended meanwhile is reported with its real exit code.
  REQUIRE(wait_until([&] { return log->has("down", TaskState::FAILED); }, 30s));
  CHECK(log->last("down")->exit_code == 7);
  // The others run on: one ends by itself, one is killed.
  touch(ends_after);
  REQUIRE(wait_until([&] { return log->has("after", TaskState::FINISHED); }, 30s));
  log->post([](TestFramework& f) { f.kill("killed"); });
  REQUIRE(wait_until([&] { return log->has("killed", TaskState::KILLED); }, 30s));

  // Give late duplicates a chance to show before counting.
  std::this_thread::sleep_for(1s);
  for (const char* t : {"down", "after", "killed"}) {
    INFO("task " << t);
    CHECK(log->count(t, TaskState::LOST) == 0);
    CHECK(log->count(t, TaskState::UNREACHABLE) == 0);
    CHECK(log->count(t, TaskState::RUNNING) == 1);
  }
  CHECK(log->count("down", TaskState::FAILED) == 1);
  CHECK(log->count("after", TaskState::FINISHED) == 1);
  CHECK(log->count("killed", TaskState::KILLED) == 1);

  (*node)->stop();
  agent->kill(SIGTERM);
  CHECK(agent->wait_exit());
  master->kill(SIGTERM);
  CHECK(master->wait_exit());
  kill_processes_under(agent_dir);
  destroy_agent_containers(agent_dir);
}

TEST_CASE("an agent killed with SIGKILL recovers its tasks and loses no update",
          "[e2e][recovery][multiprocess]") {
  restart_keeps_tasks(SIGKILL);
}

TEST_CASE("an agent stopped with SIGTERM keeps its tasks and takes them back on restart",
          "[e2e][recovery][multiprocess]") {
  restart_keeps_tasks(SIGTERM);
}
