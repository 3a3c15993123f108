// The framework guide's example (services/frameworks/hello) against the fake
// master and a fake agent: the master "runs" each launched `echo hello $i` by
// reporting it running then finished, and the agent serves its stdout.

#include "scheduler/harness.hpp"
#include "services/frameworks/hello/hello_framework.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::testing;

namespace {

// What the fake agent serves: the stdout `echo` would have written.
class Commands {
 public:
  void add(const std::string& task_id, const std::string& shell) {
    std::lock_guard<std::mutex> guard(mu_);
    shells_[task_id] = shell;
  }
  std::optional<std::string> stdout_of(const std::string& task_id) {
    std::lock_guard<std::mutex> guard(mu_);
    auto it = shells_.find(task_id);
    if (it == shells_.end() || it->second.rfind("echo ", 0) != 0)
      return std::nullopt;
    return it->second.substr(5) + "\n";
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> shells_;
};

}  // namespace

TEST_CASE("the guide's hello framework runs its tasks and reads their output",
          "[scheduler][hello]") {
  Harness h;
  auto commands = std::make_shared<Commands>();
  auto reads = std::make_shared<std::atomic<int>>(0);
  auto agent = h.master_node->spawn<FakeAgent>(
      "agent",
      [commands](const std::string& task, const std::string& path) -> std::optional<std::string> {
        return path == "stdout" ? commands->stdout_of(task) : std::nullopt;
      },
      Scheduler::sandbox_chunk_bytes_max, reads);
  REQUIRE(agent);
  h.master->call([&](FakeMaster& m) {
    m.on_launch = [commands, uuids = 0](FakeMaster& m, wire::TaskInfo::Reader task) mutable {
      auto id = str(task.getTaskId());
      commands->add(id, str(task.getCommand().getShell()));
      auto running = status(id, TaskState::RUNNING, "u" + std::to_string(++uuids));
      auto finished = status(id, TaskState::FINISHED, "u" + std::to_string(++uuids));
      running.agent_id = finished.agent_id = str(task.getAgentId());
      finished.exit_code = 0;
      m.update(running);
      m.update(finished);
    };
  });

  std::promise<HelloResult> result;
  auto done = [&](const HelloResult& r) { result.set_value(r); };
  HelloOptions options;  // 3 tasks of cpus:0.1;mem:32
  REQUIRE(h.framework_node->spawn<HelloFramework>("hello", h.config(), options, done));
  REQUIRE(h.wait_calls(Call::SUBSCRIBE, 1));

  // Room for two tasks, then one offer too small, then room for the third.
  h.master->call(
      [&](FakeMaster& m) { m.offer("o-1", *Resources::parse("cpus:0.25;mem:1024"), *agent); });
  REQUIRE(h.wait_calls(Call::ACCEPT, 1));
  h.master->call([&](FakeMaster& m) {
    m.offer("o-2", *Resources::parse("cpus:0.05;mem:1024"), *agent);
    m.offer("o-3", *Resources::parse("cpus:1;mem:1024"), *agent, "*", "agent-2");
  });

  auto future = result.get_future();
  REQUIRE(future.wait_for(30s) == std::future_status::ready);
  auto r = future.get();
  CHECK(r.finished == 3);
  CHECK(r.failed == 0);
  CHECK(r.error.empty());
  CHECK(r.outputs == std::map<std::string, std::string>{{"hello-1", "hello 1\n"},
                                                        {"hello-2", "hello 2\n"},
                                                        {"hello-3", "hello 3\n"}});

  CHECK(h.count(Call::ACCEPT) == 2);
  CHECK(h.count(Call::DECLINE) == 1);  // o-2: too small
  CHECK(h.count(Call::SUPPRESS) == 1);
  REQUIRE(h.wait_calls(Call::TEARDOWN, 1));
  CHECK(h.count(Call::ACKNOWLEDGE) == 6);
}
