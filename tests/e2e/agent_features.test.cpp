// The agent's task features through the whole stack, as a framework author
// uses them (services/scheduler TaskSpec): a LocalCluster on 127.0.0.1 with
// real sockets and real task processes, a framework in this process, and
// small HTTP servers of the test's own for health checks and fetches.
//
//  - an HTTP health check that starts failing fails the task (TASK_UNHEALTHY);
//  - a task group: one task failing kills its sibling; a good group finishes;
//  - a tarball fetched from HTTP and unpacked runs; a 404 fails the task
//    (FETCH_FAILED);
//  - a kill policy: a task ignoring SIGTERM is SIGKILLed after its grace,
//    and a framework with TASK_KILLED_STATE sees TASK_KILLING first.

#include "e2e/test_framework.hpp"
#include "services/cluster/local_cluster.hpp"
#include "support/test_support.hpp"

#include <httplib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const char* small_agent = "cpus:2;mem:1024;disk:1000;ports:[31000-31099]";

// An httplib::Server on 127.0.0.1, a free port, its own thread. The
// destructor stops it and joins the thread.
class TestServer {
 public:
  explicit TestServer(const std::function<void(httplib::Server&)>& routes) {
    routes(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");  // listening from here on
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib 0.11's stop() does nothing until the accept loop has started,
    // and the loop would then never end: wait for it.
    if (!wait_until([this] { return server_.is_running(); })) {
      thread_.detach();  // cannot be stopped; REQUIRE ends the test
      FAIL("the test HTTP server did not start");
    }
  }
  ~TestServer() {
    server_.stop();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// What FeatureFramework adds to TestFrameworkLog: groups to launch and the
// sandbox files read. Thread-safe.
struct FeatureLog {
  std::mutex mu;
  std::deque<std::vector<TaskSpec>> groups;  // launched whole, one per fitting offer
  std::map<std::string, Address> agents;     // agent id -> address, from offers
  std::map<std::string, std::string> files;  // "task/path" -> bytes, or "error: ..."
  // Calls the actor made that failed (Catch's assertions are for the test's
  // thread only, so the actor records and the test checks).
  std::vector<std::string> call_errors;

  void launch_group(std::vector<TaskSpec> tasks) {
    std::lock_guard<std::mutex> lock(mu);
    groups.push_back(std::move(tasks));
  }
  void call_failed(const std::string& what, const caf::error& err) {
    std::lock_guard<std::mutex> lock(mu);
    call_errors.push_back(what + ": " + describe(err));
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu);
    return call_errors;
  }
  std::optional<std::string> file(const std::string& task, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = files.find(task + "/" + path);
    return it == files.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};

// TestFramework that also launches task groups (launch_group) and reads
// sandbox files through the library's sandbox read API.
class FeatureFramework : public TestFramework {
 public:
  FeatureFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                   std::shared_ptr<TestFrameworkLog> log, std::shared_ptr<FeatureLog> features)
      : TestFramework(cfg, std::move(init), std::move(config), std::move(log)),
        features_(std::move(features)) {}

  void kill_task(const std::string& task) {
    if (auto err = kill(task))
      features_->call_failed("kill " + task, err);
  }

  // Reads the task's sandbox file into FeatureLog::files (on this actor).
  void read(const std::string& task, const std::string& agent_id, const std::string& path) {
    Address agent;
    {
      std::lock_guard<std::mutex> lock(features_->mu);
      auto it = features_->agents.find(agent_id);
      if (it == features_->agents.end()) {
        features_->files[task + "/" + path] = "error: no offer from agent " + agent_id;
        return;
      }
      agent = it->second;
    }
    read_whole_sandbox_file(
        agent, task, path, 4096, [features = features_, key = task + "/" + path](auto data) {
          std::lock_guard<std::mutex> lock(features->mu);
          features->files[key] = data ? data->bytes : "error: " + describe(data.error());
        });
  }

 protected:
  void offers(const std::vector<Offer>& offers) override {
    std::vector<Offer> rest;
    for (const auto& o : offers) {
      std::optional<std::vector<TaskSpec>> group;
      {
        std::lock_guard<std::mutex> lock(features_->mu);
        features_->agents[o.agent_id] = o.agent_address;
        if (!features_->groups.empty()) {
          Resources needed;
          for (const auto& t : features_->groups.front())
            needed += t.resources;
          if (o.resources.allocatable_to(o.role).contains(needed)) {
            group = std::move(features_->groups.front());
            features_->groups.pop_front();
          }
        }
      }
      if (group) {
        if (auto err = launch_group({o.id}, *group, {}, 0s))
          features_->call_failed("launch_group", err);
      } else {
        rest.push_back(o);
      }
    }
    TestFramework::offers(rest);
  }

 private:
  std::shared_ptr<FeatureLog> features_;
};

std::string describe_updates(const std::vector<TaskStatus>& updates) {
  std::string out;
  for (const auto& u : updates) {
    out += "\n  " + describe(u);
    if (u.healthy)
      out += *u.healthy ? " healthy" : " unhealthy";
  }
  return out;
}

// A cluster of one agent and a FeatureFramework subscribed to it.
struct Setup {
  explicit Setup(std::vector<FrameworkCapability> capabilities = {}) {
    LocalClusterConfig config;
    config.agents = 1;
    config.agent_resources = small_agent;
    config.work_dir = dir.path();
    config.agent.status_update_backoff_min_ms = 100ms;
    config.agent.status_update_backoff_max_ms = 400ms;
    auto started = LocalCluster::start(config);
    REQUIRE(started);
    cluster = std::move(*started);
    auto fc = test_framework_config(cluster->master_address(), "web");
    fc.framework.capabilities = std::move(capabilities);
    REQUIRE(cluster->node().spawn<FeatureFramework>("fw", fc, log, features));
  }
  ~Setup() {
    // Stops the framework, the agent (killing what still runs) and the master.
    cluster->stop();
  }

  // The task's updates in arrival order.
  std::vector<TaskStatus> updates(const std::string& task) const {
    std::vector<TaskStatus> out;
    for (auto& u : log->updates())
      if (u.task_id == task)
        out.push_back(u);
    return out;
  }
  bool ended(const std::string& task) const {
    auto u = log->last(task);
    return u && u->terminal();
  }
  // Waits until every task has ended; fails the test with what they went
  // through if one has not.
  void wait_ended(const std::vector<std::string>& tasks) const {
    if (wait_until(
            [&] {
              return std::all_of(tasks.begin(), tasks.end(), [&](auto& t) { return ended(t); });
            },
            30s))
      return;
    std::string seen;
    for (const auto& t : tasks)
      seen += "\n" + t + ":" + describe_updates(updates(t));
    FAIL("not every task ended; their updates:" << seen);
  }
  void kill(const std::string& task) {
    log->post([=](TestFramework& f) { static_cast<FeatureFramework&>(f).kill_task(task); });
  }
  // Calls that failed, and error events: none in a test that went well.
  std::vector<std::string> errors() const {
    auto out = features->errors();
    for (auto& e : log->errors())
      out.push_back("error event: " + e);
    return out;
  }

  // The task's sandbox file as the framework reads it from the agent.
  std::string read(const std::string& task, const std::string& path) {
    auto agent_id = log->last(task)->agent_id;
    log->post(
        [=](TestFramework& f) { static_cast<FeatureFramework&>(f).read(task, agent_id, path); });
    std::optional<std::string> got;
    REQUIRE(wait_until([&] { return (got = features->file(task, path)).has_value(); }));
    return *got;
  }

  TempDir dir;
  std::unique_ptr<LocalCluster> cluster;
  std::shared_ptr<TestFrameworkLog> log = std::make_shared<TestFrameworkLog>();
  std::shared_ptr<FeatureLog> features = std::make_shared<FeatureLog>();
};

// A file named name somewhere under root, or empty.
fs::path find_file(const fs::path& root, const std::string& name) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec)
      break;
    if (it->path().filename() == name)
      return it->path();
  }
  return {};
}

}  // namespace

TEST_CASE("an http health check that starts failing fails the task as unhealthy", "[e2e][health]") {
  // 200 for the first three checks, 500 from then on.
  constexpr int healthy_answers = 3;
  std::atomic<int> requests{0};
  TestServer server([&](httplib::Server& s) {
    s.Get("/health", [&](const httplib::Request&, httplib::Response& r) {
      r.status = ++requests <= healthy_answers ? 200 : 500;
    });
  });
  Setup setup;
  auto task = shell_task("web", "sleep 600");
  HealthCheckSpec check;
  check.type = HealthCheckType::HTTP;
  check.port = static_cast<uint32_t>(server.port());
  check.path = "/health";
  check.delay = 20ms;
  check.interval = 50ms;
  check.timeout = 2s;  // generous: a loaded machine must not fail a healthy answer
  check.grace_period = 100ms;
  check.consecutive_failures = 2;
  task.health_check = check;
  task.kill_grace = 200ms;
  setup.log->launch(task);

  setup.wait_ended({"web"});
  auto updates = setup.updates("web");
  INFO("updates:" << describe_updates(updates));
  // RUNNING, then RUNNING healthy, then RUNNING unhealthy, then the end.
  auto at = [&](auto pred) {
    return std::find_if(updates.begin(), updates.end(), pred) - updates.begin();
  };
  auto running = at([](auto& u) { return u.state == TaskState::RUNNING && !u.healthy; });
  auto healthy = at([](auto& u) { return u.state == TaskState::RUNNING && u.healthy == true; });
  auto unhealthy = at([](auto& u) { return u.state == TaskState::RUNNING && u.healthy == false; });
  auto n = static_cast<long>(updates.size());
  REQUIRE(running < n);
  REQUIRE(healthy < n);
  REQUIRE(unhealthy < n);
  CHECK(running < healthy);
  CHECK(healthy < unhealthy);
  auto last = updates.back();
  CHECK(last.state == TaskState::FAILED);
  CHECK(last.reason == TaskReason::TASK_UNHEALTHY);
  CHECK(last.healthy == false);
  CHECK(last.message.find("Health check failed 2 times in a row") != std::string::npos);
  // Two failures in a row after the healthy answers, and no more checks
  // once the task was killed (a check under way as it died may still land).
  CHECK(requests.load() >= healthy_answers + 2);
  CHECK(setup.errors().empty());
}

TEST_CASE("a task group: a failing task kills its sibling and a good group finishes",
          "[e2e][group]") {
  Setup setup;
  SECTION("one task fails") {
    setup.features->launch_group({shell_task("bad", "exit 1", "cpus:0.2;mem:32"),
                                  shell_task("sibling", "sleep 600", "cpus:0.2;mem:32")});
    setup.wait_ended({"bad", "sibling"});
    INFO("bad:" << describe_updates(setup.updates("bad")));
    INFO("sibling:" << describe_updates(setup.updates("sibling")));
    auto bad = *setup.log->last("bad");
    CHECK(bad.state == TaskState::FAILED);
    CHECK(bad.reason == TaskReason::COMMAND_EXITED);
    CHECK(bad.exit_code == 1);
    auto sibling = *setup.log->last("sibling");
    CHECK(sibling.state == TaskState::KILLED);
    CHECK(sibling.message.find("Task bad of its group ended TASK_FAILED") != std::string::npos);
    CHECK(bad.executor_id == sibling.executor_id);  // one executor ran both
  }
  SECTION("both finish") {
    setup.features->launch_group({shell_task("one", "echo one", "cpus:0.2;mem:32"),
                                  shell_task("two", "echo two", "cpus:0.2;mem:32")});
    setup.wait_ended({"one", "two"});
    INFO("one:" << describe_updates(setup.updates("one")));
    INFO("two:" << describe_updates(setup.updates("two")));
    CHECK(setup.log->last("one")->state == TaskState::FINISHED);
    CHECK(setup.log->last("two")->state == TaskState::FINISHED);
    // A group's tasks share the executor's sandbox, each in tasks/<id>/.
    CHECK(setup.read("one", "tasks/one/stdout") == "one\n");
    CHECK(setup.read("two", "tasks/two/stdout") == "two\n");
  }
  CHECK(setup.errors().empty());
}

TEST_CASE("a tarball fetched over http is unpacked and run and a 404 fails the task",
          "[e2e][fetch]") {
  TempDir files;
  auto src = files.path() / "src";
  fs::create_directories(src);
  std::ofstream(src / "script.sh") << "#!/bin/sh\necho fetched script ran in $(basename $PWD)\n";
  fs::permissions(src / "script.sh", fs::perms::owner_all | fs::perms::group_read |
                                         fs::perms::group_exec | fs::perms::others_read |
                                         fs::perms::others_exec);
  auto tarball = files.path() / "app.tar.gz";
  auto tar = "tar czf '" + tarball.string() + "' -C '" + src.string() + "' script.sh";
  REQUIRE(std::system(tar.c_str()) == 0);
  auto bytes = read_file(tarball);
  REQUIRE(!bytes.empty());
  TestServer server([&](httplib::Server& s) {
    s.Get("/app.tar.gz", [bytes](const httplib::Request&, httplib::Response& r) {
      r.set_content(bytes, "application/gzip");
    });  // anything else: httplib's 404
  });

  Setup setup;
  auto task = shell_task("app", "./script.sh");
  task.uris = {{server.url("/app.tar.gz")}};
  setup.log->launch(task);
  auto missing = shell_task("missing", "./script.sh");
  missing.uris = {{server.url("/missing.tar.gz")}};
  setup.log->launch(missing);

  setup.wait_ended({"app", "missing"});
  INFO("app:" << describe_updates(setup.updates("app")));
  INFO("missing:" << describe_updates(setup.updates("missing")));
  auto app = *setup.log->last("app");
  REQUIRE(app.state == TaskState::FINISHED);
  auto out = setup.read("app", "stdout");
  CHECK(out.find("fetched script ran in ") != std::string::npos);
  auto failed = *setup.log->last("missing");
  CHECK(failed.state == TaskState::FAILED);
  CHECK(failed.reason == TaskReason::FETCH_FAILED);
  CHECK(failed.message.find("HTTP 404") != std::string::npos);
  CHECK(failed.message.find("/missing.tar.gz") != std::string::npos);
  CHECK(setup.errors().empty());
}

TEST_CASE("a task that ignores SIGTERM is SIGKILLed after its kill policy's grace", "[e2e][kill]") {
  Setup setup({FrameworkCapability::TASK_KILLED_STATE});
  // The shell and its sleeps ignore SIGTERM; "ready" says the trap is set.
  auto task = shell_task("stubborn", "trap '' TERM; touch ready; while :; do sleep 1; done");
  task.kill_grace = 200ms;
  setup.log->launch(task);
  REQUIRE(wait_until([&] { return setup.log->has("stubborn", TaskState::RUNNING); }, 30s));
  REQUIRE(wait_until([&] { return !find_file(setup.dir.path(), "ready").empty(); }));

  setup.kill("stubborn");
  setup.wait_ended({"stubborn"});
  auto updates = setup.updates("stubborn");
  INFO("updates:" << describe_updates(updates));
  REQUIRE(updates.size() >= 2);
  CHECK(updates[updates.size() - 2].state == TaskState::KILLING);
  auto last = updates.back();
  CHECK(last.state == TaskState::KILLED);
  CHECK(last.term_signal == 9);  // SIGTERM did nothing; SIGKILL after the grace did
  CHECK(last.exit_code == -1);
  CHECK(setup.log->count("stubborn", TaskState::KILLING) == 1);
  CHECK(setup.errors().empty());
}

TEST_CASE("without TASK_KILLED_STATE a killed task goes straight to TASK_KILLED", "[e2e][kill]") {
  Setup setup;
  setup.log->launch(shell_task("sleeper", "exec sleep 600"));
  REQUIRE(wait_until([&] { return setup.log->has("sleeper", TaskState::RUNNING); }, 30s));
  setup.kill("sleeper");
  setup.wait_ended({"sleeper"});
  CHECK(setup.errors().empty());
  INFO("updates:" << describe_updates(setup.updates("sleeper")));
  CHECK(setup.log->last("sleeper")->state == TaskState::KILLED);
  CHECK(setup.log->last("sleeper")->term_signal == 15);
  CHECK(setup.log->count("sleeper", TaskState::KILLING) == 0);
}
