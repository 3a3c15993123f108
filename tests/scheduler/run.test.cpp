// `tessera run`: the built-in one-shot framework, as a process of its own
// against the fake master and fake agent in this test process — a framework
// in another OS process, speaking the same protocol.

#include "scheduler/harness.hpp"
#include "services/frameworks/run_framework.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

using namespace tessera;
using namespace tessera::testing;

namespace {

// A `tessera` process (tests/support ChildProcess), with its exit code.
class Tessera {
 public:
  explicit Tessera(std::vector<std::string> args) {
    args.insert(args.begin(), TESSERA_BIN);
    child_ = ChildProcess::start(std::move(args));
  }
  int wait() {
    REQUIRE(child_->wait_exit(60s));
    auto e = *child_->exit_status();
    return e.exit_code >= 0 ? e.exit_code : 128 + e.term_signal;
  }
  void signal(int sig) { child_->kill(sig); }
  std::string out() const { return child_->out(); }
  std::string err() const { return child_->err(); }

 private:
  std::unique_ptr<ChildProcess> child_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A port nothing listens on (a node's, just stopped).
uint16_t free_port() {
  auto node = start_node();
  auto port = node->port();
  node->stop();
  return port;
}

size_t lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string master_flag(const Harness& h) {
  return "127.0.0.1:" + std::to_string(h.master_address.port);
}

// The fake master runs each launched task by answering with these updates.
void script(Harness& h, std::vector<StatusSpec> updates) {
  h.master->call([&](FakeMaster& m) {
    m.on_launch = [updates](FakeMaster& m, wire::TaskInfo::Reader task) {
      for (auto s : updates) {
        s.task_id = str(task.getTaskId());
        m.update(s);
      }
    };
  });
}

Address spawn_agent(Harness& h, std::string out, std::string err) {
  auto agent = h.master_node->spawn<FakeAgent>(
      "agent",
      [out, err](const std::string&, const std::string& path) -> std::optional<std::string> {
        if (path == "stdout")
          return out;
        if (path == "stderr")
          return err;
        return std::nullopt;
      },
      uint64_t{4}, std::make_shared<std::atomic<int>>(0));
  REQUIRE(agent);
  return *agent;
}

}  // namespace

TEST_CASE("tessera run: the task's output, its state changes and its exit code", "[run]") {
  Harness h;
  auto agent = spawn_agent(h, "hi\n", "oops\n");
  auto failed = status("", TaskState::FAILED, "u-2");
  failed.exit_code = 3;
  failed.message = "Command exited with status 3";
  script(h, {status("", TaskState::RUNNING, "u-1"), failed});

  Tessera run({"run", "--master", master_flag(h), "--", "sh", "-c", "echo hi; exit 3"});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call([&](FakeMaster& m) {
    Offer small{"o-small", "agent-1", "host-1", agent, "*", *Resources::parse("cpus:0.05;mem:1024"),
                {}};
    Offer big{"o-big", "agent-1", "host-1", agent, "*", *Resources::parse("cpus:2;mem:1024"), {}};
    m.offers({small, big});
  });
  CHECK(run.wait() == 3);
  CHECK(run.out() == "hi\n");
  INFO(run.err());
  CHECK(contains(run.err(), " TASK_RUNNING\n"));
  CHECK(contains(run.err(), " TASK_FAILED (Command exited with status 3)\n"));
  CHECK(contains(run.err(), "oops\n"));

  CHECK(h.calls->last(Call::ACCEPT, [](Call::Reader call) {
    CHECK(str(call.getAccept().getOfferIds()[0]) == "o-big");
    auto task = call.getAccept().getOperations()[0].getLaunch()[0];
    std::vector<std::string> argv;
    for (auto a : task.getCommand().getArgv())
      argv.push_back(str(a));
    CHECK(argv == std::vector<std::string>{"sh", "-c", "echo hi; exit 3"});
    auto resources = from_wire(task.getResources());
    REQUIRE(resources);
    CHECK(resources->to_string() == "cpus:0.1;mem:32");
  }));
  CHECK(h.calls->last(Call::DECLINE, [](Call::Reader call) {
    CHECK(str(call.getDecline().getOfferIds()[0]) == "o-small");
    CHECK(call.getDecline().getFilters().getRefuseSeconds() >= 3600);
  }));
  CHECK(h.count(Call::ACKNOWLEDGE) == 2);
}

TEST_CASE("tessera run: a task ended by a signal exits 128 + the signal", "[run]") {
  Harness h;
  auto agent = spawn_agent(h, "", "");
  auto killed = status("", TaskState::FAILED, "u-1");
  killed.term_signal = 9;
  killed.message = "Command terminated with signal Killed";
  script(h, {killed});
  Tessera run(
      {"run", "--master", master_flag(h), "--cpus", "0.5", "--mem", "64", "--", "sleep", "100"});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:1;mem:128"), agent); });
  CHECK(run.wait() == 137);
  CHECK(run.out().empty());
}

TEST_CASE("tessera run: a task that could not run exits 1 with its message", "[run]") {
  Harness h;
  auto agent = spawn_agent(h, "", "");
  auto error = status("", TaskState::ERROR);
  error.message = "no such user";
  script(h, {error});
  Tessera run({"run", "--master", master_flag(h), "--", "true"});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:1;mem:128"), agent); });
  CHECK(run.wait() == 1);
  CHECK(contains(run.err(), "tessera: task TASK_ERROR (no such user)\n"));
}

TEST_CASE("tessera run: Ctrl-C kills the task, then exits", "[run]") {
  Harness h;
  auto agent = spawn_agent(h, "partial\n", "");
  script(h, {status("", TaskState::RUNNING, "u-1")});
  h.master->call([](FakeMaster& m) {
    m.on_kill = [](FakeMaster& m, const std::string& task) {
      auto killed = status(task, TaskState::KILLED, "u-2");
      killed.term_signal = SIGTERM;
      m.update(killed);
    };
  });
  Tessera run({"run", "--master", master_flag(h), "--", "sleep", "100"});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:1;mem:128"), agent); });
  REQUIRE(h.wait_calls(Call::ACKNOWLEDGE, 1));  // it has seen TASK_RUNNING
  run.signal(SIGINT);
  CHECK(run.wait() == 130);
  CHECK(h.count(Call::KILL) == 1);
  INFO(run.err());
  CHECK(contains(run.err(), "interrupted"));
  CHECK(contains(run.err(), " TASK_KILLED\n"));
  CHECK(run.out() == "partial\n");
}

TEST_CASE("tessera run: no fitting offer within the timeout exits 1", "[run]") {
  Harness h;
  Tessera run({"run", "--master", master_flag(h), "--timeout", "0.2", "--", "true"});
  CHECK(run.wait() == 1);
  CHECK(run.err() == "tessera: no offer with cpus:0.1;mem:32 within 0.2 s\n");
}

TEST_CASE("tessera run: a master unreachable until --timeout is one line and exit code 2",
          "[run][cli]") {
  auto port = free_port();
  Tessera run(
      {"run", "--master", "127.0.0.1:" + std::to_string(port), "--timeout", "1", "--", "true"});
  CHECK(run.wait() == 2);
  auto err = run.err();
  INFO(err);
  CHECK(err.rfind("tessera: cannot reach master at master@127.0.0.1:" + std::to_string(port) +
                      " within 1 s",
                  0) == 0);
  CHECK(lines(err) == 1);
}

TEST_CASE("tessera run: a failed first SUBSCRIBE is retried within --timeout", "[run]") {
  // The master is not there yet when the run starts (a master restarting, or
  // started after its clients): the run keeps trying, as a Mesos driver does.
  auto port = free_port();
  Tessera run({"run", "--master", "127.0.0.1:" + std::to_string(port), "--timeout", "30", "--",
               "echo", "hi"});
  std::this_thread::sleep_for(700ms);  // a few refused attempts
  Harness h;
  h.start_master({}, port);
  auto agent = spawn_agent(h, "hi\n", "");
  script(h, {status("", TaskState::RUNNING, "u-1"), status("", TaskState::FINISHED, "u-2")});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:1;mem:128"), agent); });
  CHECK(run.wait() == 0);
  CHECK(run.out() == "hi\n");
}

TEST_CASE("tessera run: output it could not read is named, and the run does not succeed", "[run]") {
  Harness h;
  auto agent = h.master_node->spawn<FakeAgent>(
      "agent",
      [](const std::string&, const std::string& path) -> std::optional<std::string> {
        if (path == "stderr")
          return std::string("warning\n");
        return std::nullopt;  // stdout cannot be read
      },
      uint64_t{4}, std::make_shared<std::atomic<int>>(0));
  REQUIRE(agent);
  script(h, {status("", TaskState::FINISHED, "u-1")});
  Tessera run({"run", "--master", master_flag(h), "--", "echo", "hi"});
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:1;mem:128"), *agent); });
  CHECK(run.wait() == 1);
  INFO(run.err());
  CHECK(contains(run.err(), "tessera: cannot read the task's stdout: "));
  CHECK(contains(run.err(), "warning\n"));
}

TEST_CASE("tessera run: bad command lines are one line and exit code 2", "[run][cli]") {
  for (auto args : std::vector<std::vector<std::string>>{
           {"run"},
           {"run", "--", "true"},
           {"run", "--master", "127.0.0.1:5050"},
           {"run", "--master", "no-port", "--", "true"},
           {"run", "--master", "127.0.0.1:5050", "--cpus", "0", "--", "true"},
           {"run", "--master", "127.0.0.1:5050", "--mem", "lots", "--", "true"},
           {"run", "--master", "127.0.0.1:5050", "--timeout", "-1", "--", "true"},
           {"run", "--master", "127.0.0.1:5050", "--role", "bad role", "--", "true"},
       }) {
    INFO(args.size());
    Tessera run(args);
    CHECK(run.wait() == 2);
    INFO(run.err());
    CHECK(run.err().rfind("tessera: ", 0) == 0);
    CHECK(lines(run.err()) == 1);
  }
}

TEST_CASE("tessera run: exit codes from terminal statuses", "[run]") {
  auto with = [](TaskState state, int code, int sig) {
    TaskStatus s;
    s.state = state;
    s.exit_code = code;
    s.term_signal = sig;
    return RunFramework::exit_code_of(s);
  };
  CHECK(with(TaskState::FINISHED, 0, 0) == 0);
  CHECK(with(TaskState::FINISHED, -1, 0) == 0);
  CHECK(with(TaskState::FAILED, 3, 0) == 3);
  CHECK(with(TaskState::FAILED, -1, 15) == 143);
  CHECK(with(TaskState::LOST, -1, 0) == 1);
  CHECK(with(TaskState::ERROR, -1, 0) == 1);
}
