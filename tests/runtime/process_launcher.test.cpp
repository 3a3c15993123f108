#include "runtime/process_launcher.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using tessera::Errc;
using tessera::ProcessExit;
using tessera::ProcessLauncher;
using tessera::ProcessSpec;

namespace {

// Generous: only a broken launcher ever waits this long.
constexpr auto kWait = 5s;

// Records the exits the launcher reports (on its loop thread) and lets the
// test wait for them. Declare it before the launcher so it outlives it.
class ExitLog {
 public:
  ProcessLauncher::ExitCallback callback() {
    return [this](const ProcessExit& exit) {
      {
        std::lock_guard<std::mutex> guard(mu_);
        exits_.push_back(exit);
      }
      cv_.notify_all();
    };
  }

  bool wait_for(size_t count, std::chrono::seconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return exits_.size() >= count; });
  }

  std::vector<ProcessExit> exits() {
    std::lock_guard<std::mutex> guard(mu_);
    return exits_;
  }

  // The one exit this log expects; fails the test if it does not come.
  ProcessExit single() {
    REQUIRE(wait_for(1));
    auto all = exits();
    REQUIRE(all.size() == 1);
    return all[0];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ProcessExit> exits_;
};

// A fresh directory under /tmp, removed with everything in it afterwards.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/tessera_launcher_XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

ProcessSpec shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  return spec;
}

// Polls pred until it holds or the timeout passes; for conditions nothing
// notifies us about (a file another process writes, a process we don't own).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = kWait) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A killed process that is not our child is reaped by whoever inherited it;
// where PID 1 does not reap (some containers), it stays a zombie: dead anyway.
bool is_dead(int pid) {
  if (::kill(pid, 0) == -1 && errno == ESRCH)
    return true;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');  // comm may itself contain ')' or spaces
  return paren != std::string::npos && paren + 2 < stat.size() &&
         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

size_t open_fd_count() {
  size_t count = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++count;
  return count;
}

}  // namespace

TEST_CASE("a process's exit code is reported", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  auto pid = launcher.spawn(shell("exit 3"), log.callback());
  REQUIRE(pid);
  auto exit = log.single();
  CHECK(exit.pid == *pid);
  CHECK(exit.exit_code == 3);
  CHECK(exit.term_signal == 0);
  CHECK(launcher.running() == 0);
}

TEST_CASE("stdout and stderr are written to the given files", "[launcher]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  auto spec = shell("echo to-stdout; echo to-stderr >&2");
  spec.stdout_path = dir.file("out.log");
  spec.stderr_path = dir.file("err.log");
  REQUIRE(launcher.spawn(spec, log.callback()));
  CHECK(log.single().exit_code == 0);
  CHECK(read_file(dir.file("out.log")) == "to-stdout\n");
  CHECK(read_file(dir.file("err.log")) == "to-stderr\n");
}

TEST_CASE("stdout and stderr to the same file are both kept", "[launcher]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  auto spec = shell("echo first; echo second >&2");
  spec.stdout_path = dir.file("both.log");
  spec.stderr_path = dir.file("both.log");
  REQUIRE(launcher.spawn(spec, log.callback()));
  CHECK(log.single().exit_code == 0);
  CHECK(read_file(dir.file("both.log")) == "first\nsecond\n");
}

TEST_CASE("without inherit_env the child sees only the given variables", "[launcher]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {"TESSERA_GREETING=hello"};
  spec.inherit_env = false;
  spec.stdout_path = dir.file("env.txt");
  REQUIRE(launcher.spawn(spec, log.callback()));
  CHECK(log.single().exit_code == 0);
  // In particular no PATH, HOME or anything else from the parent.
  CHECK(read_file(dir.file("env.txt")) == "TESSERA_GREETING=hello\n");
}

TEST_CASE("with inherit_env given variables override the parent's", "[launcher]") {
  ::setenv("TESSERA_LAUNCHER_TEST_VAR", "from-parent", 1);
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {"TESSERA_LAUNCHER_TEST_VAR=from-spec"};
  spec.stdout_path = dir.file("env.txt");
  REQUIRE(launcher.spawn(spec, log.callback()));
  CHECK(log.single().exit_code == 0);
  ::unsetenv("TESSERA_LAUNCHER_TEST_VAR");
  auto env = read_file(dir.file("env.txt"));
  CHECK_THAT(env, Catch::Contains("\nPATH=") || Catch::StartsWith("PATH="));
  CHECK_THAT(env, Catch::Contains("TESSERA_LAUNCHER_TEST_VAR=from-spec\n"));
  CHECK_THAT(env, !Catch::Contains("from-parent"));
}

TEST_CASE("an env entry without '=' is rejected", "[launcher]") {
  ProcessLauncher launcher;
  auto spec = shell("true");
  spec.env = {"NOT_AN_ASSIGNMENT"};
  auto pid = launcher.spawn(spec, nullptr);
  REQUIRE_FALSE(pid);
  CHECK(tessera::is(pid.error(), Errc::invalid_argument));
}

TEST_CASE("the child runs in working_dir", "[launcher]") {
  TempDir dir;
  TempDir workdir;
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"pwd", "-P"};  // searched in PATH; -P: no symlinks in the answer
  spec.working_dir = workdir.path();
  spec.stdout_path = dir.file("pwd.txt");
  REQUIRE(launcher.spawn(spec, log.callback()));
  CHECK(log.single().exit_code == 0);
  auto expected = std::filesystem::canonical(workdir.path()).string() + "\n";
  CHECK(read_file(dir.file("pwd.txt")) == expected);
}

TEST_CASE("a missing binary is an error value and the launcher keeps working", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec missing;
  missing.argv = {"tessera-no-such-binary"};
  auto failed = launcher.spawn(missing, log.callback());
  REQUIRE_FALSE(failed);
  CHECK(tessera::is(failed.error(), Errc::spawn_failed));
  auto message = tessera::describe(failed.error());
  CHECK_THAT(message, Catch::Contains("tessera-no-such-binary"));
  CHECK_THAT(message, Catch::Contains("ENOENT"));
  CHECK(launcher.running() == 0);

  auto pid = launcher.spawn(shell("exit 0"), log.callback());
  REQUIRE(pid);
  auto exit = log.single();  // the failed spawn never calls back
  CHECK(exit.pid == *pid);
  CHECK(exit.exit_code == 0);
}

TEST_CASE("a working_dir that does not exist is an error value", "[launcher]") {
  ProcessLauncher launcher;
  auto spec = shell("true");
  spec.working_dir = "/nonexistent/tessera-workdir";
  auto pid = launcher.spawn(spec, nullptr);
  REQUIRE_FALSE(pid);
  CHECK(tessera::is(pid.error(), Errc::spawn_failed));
  CHECK_THAT(tessera::describe(pid.error()), Catch::Contains("/nonexistent/tessera-workdir"));
  CHECK(launcher.running() == 0);
}

TEST_CASE("an output file that cannot be opened is an error value", "[launcher]") {
  ProcessLauncher launcher;
  auto spec = shell("true");
  spec.stderr_path = "/nonexistent/tessera/err.log";
  auto pid = launcher.spawn(spec, nullptr);
  REQUIRE_FALSE(pid);
  CHECK(tessera::is(pid.error(), Errc::spawn_failed));
  CHECK_THAT(tessera::describe(pid.error()), Catch::Contains("/nonexistent/tessera/err.log"));
}

TEST_CASE("an empty argv is an invalid argument", "[launcher]") {
  ProcessLauncher launcher;
  auto pid = launcher.spawn(ProcessSpec{}, nullptr);
  REQUIRE_FALSE(pid);
  CHECK(tessera::is(pid.error(), Errc::invalid_argument));
}

TEST_CASE("failed spawns leak no file descriptors", "[launcher]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  // One successful run first, so libuv's lazily created fds already exist.
  REQUIRE(launcher.spawn(shell("true"), log.callback()));
  REQUIRE(log.wait_for(1));
  auto before = open_fd_count();
  for (int i = 0; i < 10; ++i) {
    ProcessSpec missing;
    missing.argv = {"tessera-no-such-binary"};
    missing.stdout_path = dir.file("out.log");
    missing.stderr_path = dir.file("err.log");
    CHECK_FALSE(launcher.spawn(missing, nullptr));
    auto bad_err = shell("true");
    bad_err.stdout_path = dir.file("out.log");
    bad_err.stderr_path = "/nonexistent/err.log";
    CHECK_FALSE(launcher.spawn(bad_err, nullptr));
    auto ok = shell("true");
    ok.stdout_path = dir.file("ok.log");
    CHECK(launcher.spawn(ok, log.callback()));
  }
  REQUIRE(log.wait_for(11));
  CHECK(open_fd_count() == before);
}

TEST_CASE("SIGTERM ends a process and is reported as its term_signal", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"sleep", "100"};
  auto pid = launcher.spawn(spec, log.callback());
  REQUIRE(pid);
  CHECK(launcher.running() == 1);
  CHECK_FALSE(launcher.kill(*pid, SIGTERM));
  auto exit = log.single();
  CHECK(exit.pid == *pid);
  CHECK(exit.term_signal == SIGTERM);
  CHECK(exit.exit_code == -1);
  CHECK(launcher.running() == 0);
}

TEST_CASE("a group kill also ends the processes the child started", "[launcher]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  auto pid_file = dir.file("grandchild.pid");
  auto spec = shell("sleep 100 & echo $! > " + pid_file + "; wait");
  auto pid = launcher.spawn(spec, log.callback());
  REQUIRE(pid);

  int grandchild = 0;
  REQUIRE(eventually([&] {
    auto text = read_file(pid_file);
    return !text.empty() && text.back() == '\n' && (grandchild = std::stoi(text)) > 0;
  }));
  REQUIRE(::kill(grandchild, 0) == 0);

  CHECK_FALSE(launcher.kill(*pid, SIGTERM, true));
  auto exit = log.single();
  CHECK(exit.term_signal == SIGTERM);
  CHECK(eventually([&] { return is_dead(grandchild); }));
}

TEST_CASE("a group kill needs a child started with new_session", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"sleep", "100"};
  spec.new_session = false;
  auto pid = launcher.spawn(spec, log.callback());
  REQUIRE(pid);
  auto refused = launcher.kill(*pid, SIGTERM, true);
  CHECK(tessera::is(refused, Errc::invalid_argument));
  CHECK_FALSE(launcher.kill(*pid, SIGKILL));
  CHECK(log.single().term_signal == SIGKILL);
}

TEST_CASE("kill of a pid the launcher does not run is an invalid argument", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  // Signal 0 only probes, so even a broken launcher cannot hurt the test run.
  CHECK(tessera::is(launcher.kill(::getpid(), 0), Errc::invalid_argument));

  auto pid = launcher.spawn(shell("exit 0"), log.callback());
  REQUIRE(pid);
  log.single();
  // Reaped: the pid is no longer ours and may belong to someone else by now.
  CHECK(tessera::is(launcher.kill(*pid, SIGTERM), Errc::invalid_argument));
  CHECK(tessera::is(launcher.kill(*pid, 1000), Errc::invalid_argument));
}

TEST_CASE("the destructor kills and reaps what is still running", "[launcher]") {
  ExitLog log;
  int session_pid = 0;
  int plain_pid = 0;
  {
    ProcessLauncher launcher;
    ProcessSpec spec;
    spec.argv = {"sleep", "100"};
    auto pid = launcher.spawn(spec, log.callback());
    REQUIRE(pid);
    session_pid = *pid;
    spec.new_session = false;
    pid = launcher.spawn(spec, log.callback());
    REQUIRE(pid);
    plain_pid = *pid;
    CHECK(launcher.running() == 2);
  }
  // The launcher reaped both before returning, so no waiting is needed here.
  auto exits = log.exits();
  REQUIRE(exits.size() == 2);
  for (const auto& exit : exits)
    CHECK(exit.term_signal == SIGKILL);
  CHECK((::kill(session_pid, 0) == -1 && errno == ESRCH));
  CHECK((::kill(plain_pid, 0) == -1 && errno == ESRCH));
}

TEST_CASE("the destructor also kills a new_session child's descendants", "[launcher]") {
  TempDir dir;
  ExitLog log;
  auto pid_file = dir.file("grandchild.pid");
  int grandchild = 0;
  {
    ProcessLauncher launcher;
    REQUIRE(launcher.spawn(shell("sleep 100 & echo $! > " + pid_file + "; wait"), log.callback()));
    REQUIRE(eventually([&] {
      auto text = read_file(pid_file);
      return !text.empty() && text.back() == '\n' && (grandchild = std::stoi(text)) > 0;
    }));
  }
  CHECK(log.exits().size() == 1);
  CHECK(eventually([&] { return is_dead(grandchild); }));
}

TEST_CASE("process_count_max limits how many run at once", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher(1);
  ProcessSpec spec;
  spec.argv = {"sleep", "100"};
  auto first = launcher.spawn(spec, log.callback());
  REQUIRE(first);
  auto second = launcher.spawn(spec, log.callback());
  REQUIRE_FALSE(second);
  CHECK(tessera::is(second.error(), Errc::spawn_failed));
  CHECK_THAT(tessera::describe(second.error()), Catch::Contains("process_count_max"));

  CHECK_FALSE(launcher.kill(*first, SIGKILL));
  REQUIRE(log.wait_for(1));
  auto third = launcher.spawn(shell("exit 0"), log.callback());
  REQUIRE(third);
  REQUIRE(log.wait_for(2));
}

TEST_CASE("exit callbacks may spawn and kill", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec sleeper;
  sleeper.argv = {"sleep", "100"};
  auto victim = launcher.spawn(sleeper, log.callback());
  REQUIRE(victim);

  // Runs on the loop thread, so spawn and kill must not wait for it. Catch2
  // assertions are not thread-safe: keep the results, check them below.
  int victim_pid = *victim;
  caf::error kill_result;
  tessera::expected<int> spawn_result = 0;
  auto trigger = launcher.spawn(shell("exit 0"), [&](const ProcessExit&) {
    kill_result = launcher.kill(victim_pid, SIGTERM);
    spawn_result = launcher.spawn(shell("exit 7"), log.callback());
  });
  REQUIRE(trigger);

  // Both exits come after the trigger's callback has returned.
  REQUIRE(log.wait_for(2));
  CHECK_FALSE(kill_result);
  CHECK(spawn_result);
  std::map<int, ProcessExit> by_pid;
  for (const auto& exit : log.exits())
    by_pid[exit.pid] = exit;
  REQUIRE(by_pid.count(victim_pid) == 1);
  CHECK(by_pid[victim_pid].term_signal == SIGTERM);
  by_pid.erase(victim_pid);
  REQUIRE(by_pid.size() == 1);
  CHECK(by_pid.begin()->second.exit_code == 7);
}

TEST_CASE("50 concurrent processes all report their exits", "[launcher]") {
  constexpr int kThreads = 5;
  constexpr int kPerThread = 10;
  ExitLog log;
  ProcessLauncher launcher;
  std::mutex mu;
  std::map<int, int> expected_code;  // pid -> exit code
  std::vector<std::thread> spawners;
  for (int t = 0; t < kThreads; ++t)
    spawners.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int code = t * kPerThread + i;
        auto pid = launcher.spawn(shell("exit " + std::to_string(code)), log.callback());
        std::lock_guard<std::mutex> guard(mu);
        expected_code[pid ? *pid : -1 - code] = code;
      }
    });
  for (auto& spawner : spawners)
    spawner.join();
  REQUIRE(expected_code.size() == kThreads * kPerThread);
  REQUIRE(expected_code.begin()->first > 0);  // every spawn succeeded

  REQUIRE(log.wait_for(kThreads * kPerThread, 10s));
  auto exits = log.exits();
  CHECK(exits.size() == kThreads * kPerThread);
  std::map<int, int> seen;
  for (const auto& exit : exits) {
    CHECK(++seen[exit.pid] == 1);
    CHECK(exit.exit_code == expected_code[exit.pid]);
  }
  CHECK(launcher.running() == 0);
}

// -- container placement ------------------------------------------------------------

namespace {

// A pids cgroup (v1) of this test's own, removed afterwards; empty path when
// this machine gives none (the test then says why and skips).
class PidsCgroup {
 public:
  PidsCgroup() {
    auto dir = "/sys/fs/cgroup/pids/tessera-launcher-test-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0755) == 0)
      path_ = dir;
    else
      why_ = dir + ": " + std::strerror(errno);
  }
  ~PidsCgroup() {
    if (!path_.empty())
      ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& why() const { return why_; }

 private:
  std::string path_;
  std::string why_;
};

}  // namespace

TEST_CASE("a process can be started inside a cgroup", "[launcher][container]") {
  PidsCgroup cgroup;
  if (cgroup.path().empty()) {
    WARN("skipped: no writable cgroup v1 pids hierarchy: " << cgroup.why());
    return;
  }
  ExitLog log;
  ProcessLauncher launcher;
  auto spec = shell("sleep 30");
  spec.cgroups = {cgroup.path()};
  auto pid = launcher.spawn(spec, log.callback());
  REQUIRE(pid);
  auto members = read_file(cgroup.path() + "/cgroup.procs");
  CHECK(members.find(std::to_string(*pid)) != std::string::npos);
  // The shell's child (sleep) is in the cgroup too; the group kill takes both.
  REQUIRE_FALSE(launcher.kill(*pid, SIGKILL, true));
  CHECK(log.single().term_signal == SIGKILL);
  CHECK(eventually([&] { return read_file(cgroup.path() + "/cgroup.procs").empty(); }));
}

TEST_CASE("a process in its own PID namespace sees only its own processes",
          "[launcher][container]") {
  TempDir dir;
  ExitLog log;
  ProcessLauncher launcher;
  auto spec = shell("echo pid=$$; sleep 0.2 & ls /proc | grep -c '^[0-9]'");
  spec.pid_namespace = true;
  spec.stdout_path = dir.file("out");
  spec.stderr_path = dir.file("err");
  auto pid = launcher.spawn(spec, log.callback());
  if (!pid && tessera::describe(pid.error()).find("not permitted") != std::string::npos) {
    WARN("skipped: PID namespaces not permitted here: " << tessera::describe(pid.error()));
    return;
  }
  REQUIRE(pid);
  CHECK(log.single().exit_code == 0);
  // The shell is pid 1; /proc lists it, the background sleep and ls.
  auto out = read_file(dir.file("out"));
  INFO(out << read_file(dir.file("err")));
  CHECK(out.rfind("pid=1\n", 0) == 0);
  auto count = std::stoi(out.substr(out.find('\n') + 1));
  CHECK(count >= 2);
  CHECK(count <= 4);
}

TEST_CASE("a container spawn that cannot exec reports why", "[launcher][container]") {
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"/no/such/program"};
  spec.pid_namespace = true;
  auto pid = launcher.spawn(spec, {});
  REQUIRE_FALSE(pid);
  CHECK(pid.error() == tessera::make_error(Errc::spawn_failed));
  auto text = tessera::describe(pid.error());
  CHECK(text.find("execve") != std::string::npos);
  CHECK(launcher.running() == 0);
}

TEST_CASE("a launcher adopts a process it did not start", "[launcher][adopt]") {
  TempDir dir;
  ExitLog first_log;
  ProcessLauncher first;
  // The shell leaves a sleep behind (in its own session) and exits: the
  // sleep is nobody's child of ours.
  auto spec = shell("setsid sleep 30 & echo $! > " + dir.file("pid"));
  auto shell_pid = first.spawn(spec, first_log.callback());
  REQUIRE(shell_pid);
  REQUIRE(first_log.wait_for(1));
  REQUIRE(eventually([&] { return !read_file(dir.file("pid")).empty(); }));
  int orphan = std::stoi(read_file(dir.file("pid")));

  ExitLog log;
  ProcessLauncher launcher;
  REQUIRE(launcher.adopt(orphan, log.callback()));
  CHECK(launcher.running() == 1);
  REQUIRE_FALSE(launcher.kill(orphan, SIGKILL));
  auto exit = log.single();
  CHECK(exit.pid == orphan);
  CHECK(exit.exit_code == -1);  // not our child: how it ended is its parent's to know
  CHECK(exit.term_signal == 0);
  CHECK(launcher.running() == 0);
  CHECK(eventually([&] { return is_dead(orphan); }));

  // The shell is reaped and gone (the orphan may linger as a zombie, which
  // counts as running until its new parent reaps it).
  auto gone = launcher.adopt(*shell_pid, {});
  REQUIRE_FALSE(gone);
  CHECK(gone.error() == tessera::make_error(Errc::invalid_argument));
}

TEST_CASE("kill_async signals without waiting and reports the outcome once", "[launcher]") {
  ExitLog log;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"/bin/sleep", "600"};
  auto pid = launcher.spawn(spec, log.callback());
  REQUIRE(pid);
  std::promise<caf::error> outcome;
  launcher.kill_async(*pid, SIGKILL, true, [&](const caf::error& err) { outcome.set_value(err); });
  auto reported = outcome.get_future();
  REQUIRE(reported.wait_for(kWait) == std::future_status::ready);
  CHECK_FALSE(reported.get());
  auto exit = log.single();
  CHECK(exit.term_signal == SIGKILL);

  std::promise<caf::error> unknown;
  launcher.kill_async(*pid, SIGKILL, false, [&](const caf::error& err) { unknown.set_value(err); });
  auto gone = unknown.get_future();
  REQUIRE(gone.wait_for(kWait) == std::future_status::ready);
  CHECK(tessera::is(gone.get(), Errc::invalid_argument));  // reaped: no longer ours

  bool bad_signal = false;
  launcher.kill_async(*pid, 1000, false, [&](const caf::error& err) {
    bad_signal = tessera::is(err, Errc::invalid_argument);
  });
  CHECK(bad_signal);  // at once, on this thread

  launcher.shutdown();
  bool stopped = false;
  launcher.kill_async(*pid, SIGTERM, false,
                      [&](const caf::error& err) { stopped = tessera::is(err, Errc::stopped); });
  CHECK(stopped);
}
