// A `tessera agent` process whose recovered id the master refuses starts
// over as a new agent, against the fake master. (Recovery that the master
// accepts, SIGKILL and all, is tests/e2e/recovery.test.cpp.)

#include "agent/fake_master.hpp"
#include "e2e/agent_cleanup.hpp"

#include <signal.h>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

std::unique_ptr<testing::ChildProcess> start_agent(const Address& master, const std::string& listen,
                                                   const std::filesystem::path& work) {
  auto agent = testing::ChildProcess::start(
      {TESSERA_BIN, "agent", "--master", master.host + ":" + std::to_string(master.port),
       "--listen", listen, "--work-dir", work.string(), "--resources", "cpus:2;mem:1024"});
  REQUIRE(agent->wait_line("listening on"));
  return agent;
}

}  // namespace

TEST_CASE("an agent whose recovered id is refused starts over as a new agent",
          "[agent][recovery][process]") {
  testing::TempDir dir;
  MasterNode master;
  master.start();
  auto work = dir.path() / "work";
  auto agent = start_agent(master.address(), "127.0.0.1:0", work);
  auto line = agent->out();
  auto at = line.find("agent@") + 6;
  auto listen = line.substr(at, line.find_first_of(", \n", at) - at);
  REQUIRE(wait_until([&] { return master.with([](MasterState& m) { return m.registers; }) == 1; }));
  master.send_to_agent(run_task("t1", "echo $$ > pid; exec sleep 600"));
  master.wait_state("t1", State::RUNNING);
  int task_pid = 0;
  REQUIRE(wait_until([&] {
    for (const auto& e : std::filesystem::recursive_directory_iterator(work))
      if (e.path().filename() == "pid" && !testing::read_file(e.path()).empty())
        task_pid = std::stoi(testing::read_file(e.path()));
    return task_pid > 0;
  }));

  agent->kill(SIGKILL);
  REQUIRE(agent->wait_exit());
  REQUIRE(::kill(task_pid, 0) == 0);  // the task outlived its agent
  master.with([](MasterState& m) { m.refuse_reregistration = true; });
  agent = start_agent(master.address(), listen, work);

  // Refused once (its id was removed), then registered afresh.
  REQUIRE(wait_until([&] { return master.with([](MasterState& m) { return m.registers; }) == 2; },
                     30s));
  CHECK(master.with([](MasterState& m) { return m.reregisters; }) == 1);
  // Everything of the old id is over: its task's processes are killed.
  CHECK(wait_until([&] { return ::kill(task_pid, 0) != 0; }, 30s));
  agent->kill(SIGTERM);
  CHECK(agent->wait_exit());
  testing::kill_processes_under(work);
  testing::destroy_agent_containers(work);
}
