// Nothing the agent does for one task waits behind slow work for another:
// downloads stalled on a server hold the blocking pool's fetch lane, and
// meanwhile a kill ends its task and destroys its container, an OOM is
// reported and usage is answered. Destroys refused by a full container lane
// complete once it has room, and the agent keeps serving meanwhile.

#include "agent/fake_master.hpp"

#include <httplib.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

// An HTTP server on 127.0.0.1 whose every answer waits until release() (or
// two minutes, so that a broken test still ends). Declare it after the Cluster:
// it must release the agent's stalled downloads before the agent's node stops.
class StallingServer {
 public:
  StallingServer() {
    server_.Get(R"(/.*)", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      ++stalled_;
      cv_.wait_for(lock, std::chrono::minutes(2), [this] { return released_; });
      --stalled_;
      res.set_content("late\n", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~StallingServer() {
    release();
    server_.stop();
    thread_.join();
  }
  void release() {
    {
      std::lock_guard<std::mutex> guard(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  int stalled() {
    std::lock_guard<std::mutex> guard(mu_);
    return stalled_;
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int stalled_ = 0;
  bool released_ = false;
};

Outgoing lanes_task(const std::string& task_id, const std::string& shell,
                    const std::string& resources, const std::string& uri = {}) {
  auto r = Resources::parse(resources);
  REQUIRE(r);
  return build<wire::RunTask>([&](wire::RunTask::Builder b) {
    b.initFrameworkInfo().setFrameworkId("fw-1");
    auto task = b.initTask();
    task.setTaskId(task_id);
    auto cmd = task.initCommand();
    cmd.setShell(shell);
    if (!uri.empty())
      cmd.initUris(1)[0].setValue(uri);
    to_wire(*r, task.initResources(wire_size(*r)));
  });
}

// Asks the agent for one executor's container usage; the reply's error
// text, or "" with processes set.
std::string ask_usage(Cluster& c, const std::string& executor_id, uint32_t& processes) {
  static std::atomic<int> askers{0};
  auto done = std::make_shared<std::promise<std::pair<std::string, uint32_t>>>();
  auto answer = done->get_future();
  auto msg = build<wire::GetContainerUsage>([&](wire::GetContainerUsage::Builder b) {
    b.setFrameworkId("fw-1");
    b.setExecutorId(executor_id);
  });
  auto name = "lanes-usage-" + std::to_string(++askers);
  REQUIRE(c.master.node().spawn<testing::Probe>(name, [&c, msg, done](testing::Probe& self) {
    self.request<wire::ContainerUsage>(
        c.agent, msg, 20s,
        [done](const Received<wire::ContainerUsage>& r) {
          auto list = r.body().getContainers();
          done->set_value(
              {str(r.body().getError()), list.size() == 1 ? list[0].getProcesses() : 0});
        },
        [done](const caf::error& e) {
          done->set_value({describe(e), 0});
        });
  }));
  REQUIRE(answer.wait_for(30s) == std::future_status::ready);
  auto [error, n] = answer.get();
  processes = n;
  return error;
}

// Jobs that wait until the test opens it (or a minute); opened at the
// latest when its Opener goes out of scope, before the node stops.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::minutes(1), [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> guard(mu);
      open = true;
    }
    cv.notify_all();
  }
};
struct Opener {
  std::shared_ptr<Gate> gate;
  ~Opener() { gate->release(); }
};

void posix_process_executors(AgentConfig& a) {
  IsolationConfig iso;
  iso.kind = "posix";
  iso.scope = isolation_scope(a.work_dir);
  a.isolator = std::shared_ptr<Isolator>(std::move(*make_isolator(iso, nullptr)));
  a.executor_mode = ExecutorMode::process;
  a.executor_binary = TESSERA_BIN;
  a.container_monitor_interval_ms = 100ms;
  a.executor_mem_headroom_bytes = 16ull << 20;
  // The stalled downloads must outlast a slow run of the test, not time out.
  a.fetcher.read_timeout_ms = std::chrono::minutes(2);
}

// More downloads than the fetch lane has threads: all of them stall.
void stall_fetches(Cluster& c, StallingServer& server, int count) {
  for (int i = 0; i < count; ++i)
    c.master.send_to_agent(lanes_task("slow-" + std::to_string(i), "true", "cpus:0.01;mem:64",
                                      server.url("/slow-" + std::to_string(i) + ".txt")));
  auto threads = static_cast<int>(BlockingPool::default_limits(Work::fetch).threads_max);
  REQUIRE(wait_until([&] { return server.stalled() >= threads; }, 20s));
}

}  // namespace

TEST_CASE("stalled downloads delay no kill, container destroy, usage or OOM report",
          "[agent][lanes]") {
  Cluster c(posix_process_executors);
  StallingServer server;
  c.master.send_to_agent(lanes_task("victim", "sleep 600", "cpus:0.1;mem:64"));
  c.master.wait_state("victim", State::RUNNING, 30s);
  stall_fetches(c, server, 6);

  SECTION("usage is answered") {
    uint32_t processes = 0;
    CHECK(ask_usage(c, "victim", processes).empty());
    CHECK(processes >= 1);
    CHECK(server.stalled() > 0);  // the downloads were still stalled throughout
  }
  SECTION("a kill ends the task and its container is destroyed") {
    auto destroyed = c.metrics->containers_destroyed.load();
    c.master.send_to_agent(kill_task("victim", 100ms));
    c.master.wait_state("victim", State::KILLED, 30s);
    CHECK(wait_until([&] { return c.metrics->containers_destroyed.load() > destroyed; }, 30s));
    CHECK(server.stalled() > 0);
  }
  SECTION("a task over its memory limit is reported") {
    c.master.send_to_agent(
        lanes_task("hog", "head -c 268435456 /dev/zero | tail > /dev/null", "cpus:0.5;mem:32"));
    auto failed = c.master.wait_state("hog", State::FAILED, 30s);
    CHECK(failed.reason == Reason::CONTAINER_LIMITATION_MEMORY);
    CHECK(server.stalled() > 0);
  }
  // The slow tasks fetch once released and then run.
  server.release();
  for (int i = 0; i < 6; ++i)
    c.master.wait_state("slow-" + std::to_string(i), State::FINISHED, 60s);
}

TEST_CASE("a destroy refused by a full container lane completes once there is room",
          "[agent][lanes]") {
  Cluster c(posix_process_executors);
  // Memory enough for a `tessera executor` process built with the
  // sanitizers (its limit is the task's plus a small headroom): the test is
  // about the container lane, not about memory.
  c.master.send_to_agent(lanes_task("t1", "sleep 600", "cpus:0.1;mem:256"));
  c.master.wait_state("t1", State::RUNNING, 30s);
  // Fill the container lane: one thread and one queued job, both the test's.
  auto& pool = c.node->blocking_pool();
  pool.set_limits(Work::container, {1, 1});
  auto gate_state = std::make_shared<Gate>();
  Opener opener{gate_state};
  auto gate = [gate_state] { gate_state->wait(); };
  REQUIRE(pool.submit(Work::container, gate));
  REQUIRE(wait_until([&] { return pool.running(Work::container) == 1; }));
  REQUIRE(pool.submit(Work::container, gate));
  REQUIRE_FALSE(pool.submit(Work::container, [] {}));  // full

  auto destroyed = c.metrics->containers_destroyed.load();
  c.master.send_to_agent(kill_task("t1", 100ms));
  c.master.wait_state("t1", State::KILLED, 30s);
  REQUIRE(wait_until([&] { return c.metrics->container_destroys_deferred.load() >= 1; }, 30s));
  CHECK(c.metrics->containers_destroyed.load() == destroyed);
  // The agent serves meanwhile: a new task runs.
  c.master.send_to_agent(lanes_task("t2", "sleep 600", "cpus:0.1;mem:256"));
  c.master.wait_state("t2", State::RUNNING, 30s);
  gate_state->release();
  CHECK(wait_until([&] { return c.metrics->containers_destroyed.load() > destroyed; }, 30s));
  c.master.send_to_agent(kill_task("t2", 100ms));
  c.master.wait_state("t2", State::KILLED, 30s);
}
