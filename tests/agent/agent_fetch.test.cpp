// The agent fetches a task's URIs into its sandbox before the executor
// starts (the fetcher itself is tested in fetcher.test.cpp).

#include "agent/fake_master.hpp"

#include <fstream>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

Outgoing run_fetching(const std::string& task_id, const std::string& shell, const std::string& uri,
                      bool executable) {
  return build<wire::RunTask>([&](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId("fw-1");
    auto task = b.initTask();
    task.setTaskId(task_id);
    auto cmd = task.initCommand();
    cmd.setShell(shell);
    auto u = cmd.initUris(1)[0];
    u.setValue(uri);
    u.setExecutable(executable);
    u.setCache(true);
  });
}

}  // namespace

TEST_CASE("a task's URIs are in its sandbox when it starts", "[agent][fetch]") {
  testing::TempDir files;
  auto script = files.path() / "hello.sh";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\necho fetched hello\n";
  }
  Cluster c([&](AgentConfig& a) { a.fetcher.allowed_paths = {files.path()}; });
  c.master.send_to_agent(run_fetching("t1", "./hello.sh", "file://" + script.string(), true));
  c.master.wait_state("t1", State::FINISHED);
  CHECK(testing::read_file(c.sandbox("t1") / "stdout") == "fetched hello\n");
  CHECK(c.metrics->fetches.load() == 1);

  SECTION("and a URI that cannot be fetched fails the task before it runs") {
    c.master.send_to_agent(
        run_fetching("t2", "echo never", "file://" + (files.path() / "missing").string(), false));
    auto failed = c.master.wait_state("t2", State::FAILED);
    CHECK(failed.reason == Reason::FETCH_FAILED);
    CHECK(failed.message.find("missing") != std::string::npos);
    CHECK(c.master.states_of("t2") == std::vector<State>{State::FAILED});
    CHECK(c.metrics->fetch_failures.load() == 1);
  }
}
