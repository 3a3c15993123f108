// `tessera agent` and `tessera executor` as processes: bad command lines, a
// real agent process serving the fake master, and a clean stop on SIGTERM.

#include "agent/fake_master.hpp"

#include "runtime/process_launcher.hpp"

#include <signal.h>

#include <atomic>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

// A `tessera` process of the test. The destructor kills its whole session
// (SIGKILL, by pid) and waits for it, so a failing test leaves nothing behind.
class Tessera {
 public:
  explicit Tessera(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    ProcessSpec spec;
    spec.env = std::move(env);
    spec.argv.push_back(TESSERA_BIN);
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.stdout_path = (dir_.path() / "out").string();
    spec.stderr_path = (dir_.path() / "err").string();
    auto exit = exit_;
    auto done = done_;
    auto pid = launcher_.spawn(spec, [exit, done](const ProcessExit& e) {
      *exit = e;
      done->store(true);
    });
    REQUIRE(pid);
    pid_ = *pid;
  }
  ~Tessera() {
    if (!done_->load()) {
      static_cast<void>(launcher_.kill(pid_, SIGKILL, true));
      wait_until([this] { return done_->load(); });
    }
  }
  void signal(int sig) { REQUIRE_FALSE(launcher_.kill(pid_, sig)); }
  // Waits for the exit; its code, or -1.
  int exit_code() {
    REQUIRE(wait_until([this] { return done_->load(); }, 30s));
    return exit_->exit_code;
  }
  std::string out() const { return testing::read_file(dir_.path() / "out"); }
  std::string err() const { return testing::read_file(dir_.path() / "err"); }

 private:
  testing::TempDir dir_;
  ProcessLauncher launcher_;
  int pid_ = 0;
  std::shared_ptr<ProcessExit> exit_ = std::make_shared<ProcessExit>();
  std::shared_ptr<std::atomic<bool>> done_ = std::make_shared<std::atomic<bool>>(false);
};

void check_one_line_failure(Tessera& t, const std::string& text) {
  CHECK(t.exit_code() == 2);
  auto err = t.err();
  INFO(err);
  CHECK(err.rfind("tessera: ", 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.find(text) != std::string::npos);
}

}  // namespace

TEST_CASE("tessera agent refuses bad resources and attributes with one line", "[cli]") {
  testing::TempDir dir;
  auto work = (dir.path() / "work").string();
  {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--resources", "cpus:x"});
    check_one_line_failure(t, "resources");
  }
  {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--attributes", "rack"});
    check_one_line_failure(t, "attributes");
  }
  {
    Tessera t({"agent", "--master", "nowhere", "--work-dir", work});
    check_one_line_failure(t, "master");
  }
}

TEST_CASE("tessera agent refuses a bad sandbox GC delay or headroom with one line", "[cli]") {
  testing::TempDir dir;
  auto work = (dir.path() / "work").string();
  for (auto delay : {"0", "-5", "nan", "1e300"}) {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work,
               std::string("--gc-delay=") + delay});
    check_one_line_failure(t, "--gc-delay");
  }
  for (auto headroom : {"1", "-0.1", "nan"}) {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work,
               std::string("--gc-disk-headroom=") + headroom});
    check_one_line_failure(t, "--gc-disk-headroom");
  }
}

TEST_CASE("tessera agent cannot listen on a port in use", "[cli]") {
  testing::TempDir dir;
  auto busy = testing::start_node();
  auto listen = "127.0.0.1:" + std::to_string(busy->port());
  Tessera t({"agent", "--master", "127.0.0.1:5050", "--listen", listen, "--work-dir",
             (dir.path() / "work").string()});
  check_one_line_failure(t, "cannot listen on " + listen);
}

TEST_CASE("tessera executor needs the agent's environment", "[cli]") {
  Tessera t({"executor"});
  check_one_line_failure(t, "TESSERA_AGENT");
}

TEST_CASE("tessera executor takes TESSERA_PID_NAMESPACE as 0 or 1", "[cli]") {
  Tessera t({"executor"},
            {"TESSERA_AGENT=agent@127.0.0.1:1", "TESSERA_FRAMEWORK_ID=f", "TESSERA_EXECUTOR_ID=e",
             "TESSERA_SANDBOX=/tmp", "TESSERA_CGROUPS=/a:/b", "TESSERA_PID_NAMESPACE=yes"});
  check_one_line_failure(t, "TESSERA_PID_NAMESPACE");
}

TEST_CASE("a tessera agent process runs tasks and stops cleanly on SIGTERM", "[cli][process]") {
  testing::TempDir dir;
  MasterNode master;
  master.start();
  Tessera agent({"agent", "--master", "127.0.0.1:" + std::to_string(master.port()), "--listen",
                 "127.0.0.1:0", "--work-dir", (dir.path() / "work").string(), "--resources",
                 "cpus:1;mem:256", "--attributes", "rack:r1"});
  REQUIRE(wait_until([&] { return master.with([](MasterState& s) { return s.registers; }) >= 1; }));
  CHECK(agent.out().rfind("tessera agent listening on agent@127.0.0.1:", 0) == 0);
  CHECK(agent.out().find("master master@127.0.0.1:" + std::to_string(master.port())) !=
        std::string::npos);

  master.send_to_agent(run_task("hello", "echo hello"));
  master.wait_state("hello", State::FINISHED);
  master.send_to_agent(run_task("sleeper", "sleep 100"));
  master.wait_state("sleeper", State::RUNNING);

  // SIGTERM: the agent shuts its executors down (their tasks end KILLED), then exits 0.
  agent.signal(SIGTERM);
  master.wait_state("sleeper", State::KILLED);
  CHECK(agent.exit_code() == 0);
}

TEST_CASE("a tessera agent waits for an unreachable master", "[cli][process]") {
  testing::TempDir dir;
  // A port nobody listens on: the one a stopped node had.
  uint16_t port = testing::start_node()->port();
  Tessera agent({"agent", "--master", "127.0.0.1:" + std::to_string(port), "--listen",
                 "127.0.0.1:0", "--work-dir", (dir.path() / "work").string()});
  REQUIRE(
      wait_until([&] { return agent.err().find("waiting for master") != std::string::npos; }, 30s));
  // Said once, not at every retry (the runtime may log the first undeliverable message too).
  auto err = agent.err();
  CHECK(err.find("waiting for master") == err.rfind("waiting for master"));
  agent.signal(SIGTERM);
  CHECK(agent.exit_code() == 0);
}
