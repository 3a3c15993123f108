// `tessera agent` and `tessera executor` as processes: bad command lines, a
// real agent process serving the fake master, stops that keep or drain its
// tasks, and strict recovery.

#include "agent/fake_master.hpp"
#include "e2e/agent_cleanup.hpp"

#include "runtime/process_launcher.hpp"
#include "services/agent/checkpoint.hpp"

#include <signal.h>

#include <atomic>
#include <fstream>

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

TEST_CASE("tessera agent refuses bad task flags with one line", "[cli][users]") {
  testing::TempDir dir;
  auto work = (dir.path() / "work").string();
  auto file = dir.path() / "file";
  { std::ofstream(file) << "x"; }
  for (auto paths :
       {std::string("relative/dir"), (dir.path() / "missing").string(), file.string()}) {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--fetcher-allowed-paths",
               dir.path().string() + "," + paths});
    check_one_line_failure(t, "--fetcher-allowed-paths: '" + paths + "'");
  }
  {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--executor-env-allow",
               "LANG,NOT-A-NAME"});
    check_one_line_failure(t, "--executor-env-allow: 'NOT-A-NAME'");
  }
  {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--fetcher-ca-file",
               (dir.path() / "no-ca.pem").string()});
    check_one_line_failure(t, "--fetcher-ca-file");
  }
  {
    Tessera t({"agent", "--master", "127.0.0.1:5050", "--work-dir", work, "--switch-user=maybe"});
    CHECK(t.exit_code() != 0);
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

namespace {

// The address a `tessera agent` printed: "127.0.0.1:PORT".
std::string listen_address(const Tessera& agent) {
  auto out = agent.out();
  auto at = out.find("agent@");
  REQUIRE(at != std::string::npos);
  at += 6;
  return out.substr(at, out.find_first_of(", \n", at) - at);
}

// Whatever a failed test leaves of an agent's work: its processes and cgroups.
struct Cleanup {
  std::filesystem::path work;
  ~Cleanup() {
    testing::kill_processes_under(work);
    testing::destroy_agent_containers(work);
  }
};

int task_pid(const std::filesystem::path& work) {
  int pid = 0;
  wait_until([&] {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(work, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->path().filename() == "pid" && !testing::read_file(it->path()).empty())
        pid = std::stoi(testing::read_file(it->path()));
    return pid > 0;
  });
  return pid;
}

}  // namespace

TEST_CASE("SIGTERM stops a tessera agent and keeps its tasks, SIGUSR1 drains",
          "[cli][process][recovery]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  Cleanup cleanup{work};
  MasterNode master;
  master.start();
  auto master_at = "127.0.0.1:" + std::to_string(master.port());
  std::string listen;
  int pid = 0;
  {
    Tessera agent({"agent", "--master", master_at, "--listen", "127.0.0.1:0", "--work-dir",
                   work.string(), "--resources", "cpus:1;mem:256", "--attributes", "rack:r1"});
    REQUIRE(
        wait_until([&] { return master.with([](MasterState& s) { return s.registers; }) >= 1; }));
    CHECK(agent.out().rfind("tessera agent listening on agent@127.0.0.1:", 0) == 0);
    CHECK(agent.out().find("master master@127.0.0.1:" + std::to_string(master.port())) !=
          std::string::npos);
    listen = listen_address(agent);

    master.send_to_agent(run_task("hello", "echo hello"));
    master.wait_state("hello", State::FINISHED);
    master.send_to_agent(run_task("sleeper", "echo $$ > pid; exec sleep 100"));
    master.wait_state("sleeper", State::RUNNING);
    pid = task_pid(work);
    REQUIRE(pid > 0);

    // SIGTERM: the agent exits 0, its task runs on, its checkpoints stay.
    agent.signal(SIGTERM);
    CHECK(agent.exit_code() == 0);
  }
  CHECK(::kill(pid, 0) == 0);
  CHECK(std::filesystem::exists(work / "meta" / "agent.info"));
  CHECK(master.states_of("sleeper") == std::vector<State>{State::STARTING, State::RUNNING});

  // Started again there, it reregisters with the task; SIGUSR1 drains it.
  Tessera agent({"agent", "--master", master_at, "--listen", listen, "--work-dir", work.string(),
                 "--resources", "cpus:1;mem:256"});
  REQUIRE(
      wait_until([&] { return master.with([](MasterState& s) { return s.reregisters; }) >= 1; }));
  CHECK(master.with([](MasterState& s) { return s.reregistered_tasks; }) ==
        std::vector<std::string>{"sleeper TASK_RUNNING"});
  // A drain forgets the checkpoints that would resend updates, so the agent
  // exits only once its last ones are acknowledged: by its exit the master
  // has the task's end.
  agent.signal(SIGUSR1);
  CHECK(agent.exit_code() == 0);
  INFO("the restarted agent's log:\n" << agent.out() << agent.err());
  master.wait_state("sleeper", State::KILLED, 0ms);
  CHECK_FALSE(std::filesystem::exists(work / "meta"));
  CHECK(wait_until([&] { return ::kill(pid, 0) != 0; }));
}

TEST_CASE("with --drain-on-stop, SIGTERM kills a tessera agent's tasks", "[cli][process]") {
  testing::TempDir dir;
  Cleanup cleanup{dir.path() / "work"};
  MasterNode master;
  master.start();
  Tessera agent({"agent", "--master", "127.0.0.1:" + std::to_string(master.port()), "--listen",
                 "127.0.0.1:0", "--work-dir", (dir.path() / "work").string(), "--resources",
                 "cpus:1;mem:256", "--drain-on-stop"});
  REQUIRE(wait_until([&] { return master.with([](MasterState& s) { return s.registers; }) >= 1; }));
  master.send_to_agent(run_task("sleeper", "sleep 100"));
  master.wait_state("sleeper", State::RUNNING);
  agent.signal(SIGTERM);
  master.wait_state("sleeper", State::KILLED);
  CHECK(agent.exit_code() == 0);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "work" / "meta"));
}

TEST_CASE("a corrupt checkpoint stops a tessera agent unless --no-strict", "[cli][recovery]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  Cleanup cleanup{work};
  // A framework whose task record is garbage.
  {
    capnp::MallocMessageBuilder b;
    auto info = b.initRoot<wire::FrameworkInfo>();
    info.setFrameworkId("fw-1");
    REQUIRE(checkpoint::write_framework(work, info.asReader()));
  }
  auto record = checkpoint::task_path(work, "fw-1", "t1");
  std::filesystem::create_directories(record.parent_path());
  { std::ofstream(record.string()) << "TSRCKPT1 and then garbage where a record should be"; }
  MasterNode master;
  master.start();
  auto master_at = "127.0.0.1:" + std::to_string(master.port());
  {
    Tessera agent({"agent", "--master", master_at, "--work-dir", work.string()});
    check_one_line_failure(agent, "corrupt checkpoint record: " + record.string());
    CHECK(agent.err().find("--no-strict") != std::string::npos);
    CHECK(std::filesystem::exists(record));  // left for the operator to see
  }
  CHECK(master.with([](MasterState& s) { return s.registers + s.reregisters; }) == 0);
  Tessera agent({"agent", "--master", master_at, "--work-dir", work.string(), "--no-strict"});
  REQUIRE(wait_until([&] { return master.with([](MasterState& s) { return s.registers; }) >= 1; }));
  agent.signal(SIGTERM);
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
