// The agent's containers against the real kernel: each executor run is a
// container with the task's limits. Tests that need cgroups skip, saying why,
// where this machine gives none; the posix fallback is tested everywhere.
// Executors run as `tessera executor` processes, which the container holds.

#include "agent/fake_master.hpp"

#include <signal.h>
#include <unistd.h>

#include <future>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

Outgoing run_limited(const std::string& task_id, const std::string& shell,
                     const std::string& resources) {
  auto r = Resources::parse(resources);
  REQUIRE(r);
  return build<wire::RunTask>([&](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId("fw-1");
    b.getFrameworkInfo().setName("test");
    auto task = b.initTask();
    task.setTaskId(task_id);
    task.setName(task_id);
    task.initCommand().setShell(shell);
    to_wire(*r, task.initResources(wire_size(*r)));
  });
}

// An isolator of kind for the test's agent, or empty with the reason.
std::shared_ptr<Isolator> isolator_for(const std::string& kind, const std::filesystem::path& work,
                                       std::string& why_not) {
  IsolationConfig c;
  c.kind = kind;
  c.cgroups_root = "tessera-test";
  c.scope = isolation_scope(work);
  auto made = make_isolator(c, nullptr);
  if (!made) {
    why_not = describe(made.error());
    return nullptr;
  }
  return std::shared_ptr<Isolator>(std::move(*made));
}

// The cluster of fake_master.hpp with an agent that runs process executors
// under the given isolation.
struct Contained {
  std::string why_not;
  std::shared_ptr<Isolator> isolator;
  std::unique_ptr<Cluster> cluster;

  explicit Contained(const std::string& kind, bool pid_ns = false,
                     std::function<void(AgentConfig&)> tweak = {}) {
    auto probe_dir = std::make_shared<testing::TempDir>();
    cluster = std::make_unique<Cluster>([&](AgentConfig& a) {
      a.executor_mode = ExecutorMode::process;
      a.executor_binary = TESSERA_BIN;
      a.pid_namespace = pid_ns;
      a.container_monitor_interval_ms = 100ms;
      a.executor_mem_headroom_bytes = 16ull << 20;
      isolator = isolator_for(kind, a.work_dir, why_not);
      a.isolator = isolator;
      if (tweak)
        tweak(a);
    });
  }
  bool skipped() const {
    if (isolator)
      return false;
    WARN("skipped: cgroups not usable here: " << why_not);
    return true;
  }
  MasterNode& master() { return cluster->master; }
};

struct Usage {
  bool ok = false;
  std::string error;
  std::vector<std::pair<std::string, uint64_t>> fields;  // one container's numbers
  uint64_t get(const std::string& name) const {
    for (const auto& [k, v] : fields)
      if (k == name)
        return v;
    return 0;
  }
};

Usage container_usage(Cluster& c, const std::string& executor_id) {
  static std::atomic<int> readers{0};
  auto done = std::make_shared<std::promise<Usage>>();
  auto answer = done->get_future();
  auto msg = build<wire::GetContainerUsage>([&](wire::GetContainerUsage::Builder b) {
    b.setFrameworkId("fw-1");
    b.setExecutorId(executor_id);
  });
  auto name = "usage-reader-" + std::to_string(++readers);
  REQUIRE(c.master.node().spawn<testing::Probe>(name, [&c, msg, done](testing::Probe& self) {
    self.request<wire::ContainerUsage>(
        c.agent, msg, 10s,
        [done](const Received<wire::ContainerUsage>& r) {
          Usage u;
          u.error = str(r.body().getError());
          auto list = r.body().getContainers();
          u.ok = list.size() == 1;
          if (u.ok) {
            auto s = list[0];
            u.fields = {{"cpu_time_ns", s.getCpuTimeNs()},
                        {"mem_rss_bytes", s.getMemRssBytes()},
                        {"mem_limit_bytes", s.getMemLimitBytes()},
                        {"cpus_limit_milli", s.getCpusLimitMilli()},
                        {"processes", s.getProcesses()},
                        {"pids_limit", s.getPidsLimit()}};
          }
          done->set_value(u);
        },
        [done](const caf::error& e) {
          done->set_value({false, describe(e), {}});
        });
  }));
  REQUIRE(answer.wait_for(20s) == std::future_status::ready);
  return answer.get();
}

bool alive(int pid) {
  if (::kill(pid, 0) != 0)
    return false;
  auto stat = testing::read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace

TEST_CASE("a task over its memory limit fails with CONTAINER_LIMITATION_MEMORY",
          "[agent][containers][cgroups]") {
  Contained c("cgroups");
  if (c.skipped())
    return;
  c.master().send_to_agent(
      run_limited("hog", "head -c 268435456 /dev/zero | tail > /dev/null", "cpus:1;mem:32"));
  auto failed = c.master().wait_state("hog", State::FAILED, 60s);
  CHECK(failed.reason == Reason::CONTAINER_LIMITATION_MEMORY);
  INFO(failed.message);
  CHECK(failed.message.find("48 MiB") != std::string::npos);  // 32 + 16 headroom
  CHECK(c.master().states_of("hog").back() == State::FAILED);
  REQUIRE(wait_until([&] { return c.isolator->containers().empty(); }));
}

TEST_CASE("killing a task kills every process in its container", "[agent][containers][cgroups]") {
  Contained c("cgroups");
  if (c.skipped())
    return;
  // A grandchild that leaves the process group and ignores SIGTERM.
  c.master().send_to_agent(
      run_limited("t1", "setsid sh -c 'trap \"\" TERM; echo $$ > escapee; sleep 600' & sleep 600",
                  "cpus:0.5;mem:64"));
  c.master().wait_state("t1", State::RUNNING);
  auto pidfile = c.cluster->sandbox("t1") / "escapee";
  REQUIRE(wait_until([&] { return !testing::read_file(pidfile).empty(); }));
  int escapee = std::stoi(testing::read_file(pidfile));
  REQUIRE(alive(escapee));
  c.master().send_to_agent(kill_task("t1", 200ms));
  c.master().wait_state("t1", State::KILLED);
  CHECK(wait_until([&] { return !alive(escapee); }));
  CHECK(wait_until([&] { return c.isolator->containers().empty(); }));
}

TEST_CASE("the agent reports a container's usage and limits", "[agent][containers][cgroups]") {
  Contained c("cgroups");
  if (c.skipped())
    return;
  c.master().send_to_agent(run_limited("t1", "sleep 600", "cpus:0.5;mem:64"));
  c.master().wait_state("t1", State::RUNNING);
  auto u = container_usage(*c.cluster, "t1");
  REQUIRE(u.ok);
  CHECK(u.get("mem_limit_bytes") == (64ull + 16) << 20);
  CHECK(u.get("cpus_limit_milli") == 500);
  CHECK(u.get("pids_limit") == 4096);
  CHECK(u.get("processes") >= 2);  // the executor and the task at least
  CHECK(u.get("mem_rss_bytes") > 0);
  auto unknown = container_usage(*c.cluster, "nope");
  CHECK_FALSE(unknown.ok);
  CHECK(unknown.error.find("nope") != std::string::npos);
  c.master().send_to_agent(kill_task("t1", 100ms));
  c.master().wait_state("t1", State::KILLED);
}

TEST_CASE("posix isolation enforces the memory limit by polling", "[agent][containers]") {
  Contained c("posix");
  REQUIRE(c.isolator);
  c.master().send_to_agent(
      run_limited("hog", "head -c 1073741824 /dev/zero | tail > /dev/null", "cpus:1;mem:32"));
  auto failed = c.master().wait_state("hog", State::FAILED, 60s);
  CHECK(failed.reason == Reason::CONTAINER_LIMITATION_MEMORY);
  INFO(failed.message);
  CHECK(failed.message.find("killed by the agent") != std::string::npos);
}
TEST_CASE("with a PID namespace a task sees only its own processes",
          "[agent][containers][cgroups]") {
  Contained c("cgroups", true);
  if (c.skipped())
    return;
  c.master().send_to_agent(
      run_limited("t1", "sleep 1 & echo pid=$$; ls /proc | grep -c '^[0-9]'", "cpus:0.5;mem:64"));
  c.master().wait_state("t1", State::FINISHED);
  auto out = testing::read_file(c.cluster->sandbox("t1") / "stdout");
  INFO(out);
  CHECK(out.rfind("pid=1\n", 0) == 0);
  auto count = std::stoi(out.substr(out.find('\n') + 1));
  CHECK(count <= 4);
}

TEST_CASE("in-process executors put their task processes in the container",
          "[agent][containers][cgroups]") {
  Contained c("cgroups", false, [](AgentConfig& a) { a.executor_mode = ExecutorMode::in_process; });
  if (c.skipped())
    return;
  c.master().send_to_agent(
      run_limited("hog", "head -c 268435456 /dev/zero | tail > /dev/null", "cpus:1;mem:32"));
  auto failed = c.master().wait_state("hog", State::FAILED, 60s);
  CHECK(failed.reason == Reason::CONTAINER_LIMITATION_MEMORY);
  CHECK(wait_until([&] { return c.isolator->containers().empty(); }));
}
