#include "tools/tessera/bench_launch.hpp"

#include "services/cluster/local_cluster.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/command.hpp"

#include <dirent.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>
#include <unordered_map>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct LaunchResult {
  std::vector<double> submit_to_running_ms;
  double total_s = 0;
  uint64_t failed = 0;
};

// Launches `tasks` tasks of `true`, `batch` per accept, as offers allow, and
// fulfils the promise when every task has ended.
class LaunchBench : public Scheduler {
 public:
  LaunchBench(caf::actor_config& cfg, ActorInit init, SchedulerConfig config, uint64_t tasks,
              uint64_t batch, uint64_t in_flight_max,
              std::shared_ptr<std::promise<LaunchResult>> done)
      : Scheduler(cfg, std::move(init), std::move(config)),
        tasks_(tasks),
        batch_(batch),
        in_flight_max_(in_flight_max),
        done_(std::move(done)) {}

 protected:
  // Offers are held, not declined: tasks go out as earlier ones end, with
  // at most in_flight_ launched and not yet ended (a closed loop, so the
  // latency measured is the path's, not a queue's).
  void offers(const std::vector<Offer>& offers) override {
    held_.insert(held_.end(), offers.begin(), offers.end());
    pump();
  }

  void pump() {
    static const Resources per_task = *Resources::parse("cpus:0.01;mem:1");
    while (next_ < tasks_ && in_flight_ < in_flight_max_ && !held_.empty()) {
      auto o = std::move(held_.back());
      held_.pop_back();
      std::vector<TaskSpec> specs;
      auto left = o.resources.allocatable_to(o.role);
      while (next_ < tasks_ && specs.size() < batch_ && in_flight_ < in_flight_max_ &&
             left.contains(per_task)) {
        TaskSpec t;
        t.id = "t" + std::to_string(next_++);
        t.argv = {"true"};
        t.resources = per_task;
        left -= per_task;
        submitted_[t.id] = WallClock::now();
        ++in_flight_;
        specs.push_back(std::move(t));
      }
      if (specs.empty()) {
        decline({o.id}, 1s);
        continue;
      }
      if (!started_)
        start_ = WallClock::now();
      started_ = true;
      accept({o.id}, specs, 0s);
    }
  }

  void update(const TaskStatus& s) override {
    auto it = submitted_.find(s.task_id);
    if (it == submitted_.end())
      return;
    if (s.state == TaskState::RUNNING && !running_.count(s.task_id)) {
      running_.insert(s.task_id);
      result_.submit_to_running_ms.push_back(
          std::chrono::duration<double, std::milli>(WallClock::now() - it->second).count());
    }
    if (!s.terminal())
      return;
    if (s.state != TaskState::FINISHED)
      ++result_.failed;
    submitted_.erase(it);
    --in_flight_;
    pump();
    if (++ended_ == tasks_) {
      result_.total_s = std::chrono::duration<double>(WallClock::now() - start_).count();
      done_->set_value(std::move(result_));
      teardown();
    }
  }

  void error(const std::string& message) override {
    if (ended_ < tasks_) {
      ended_ = tasks_;
      done_->set_exception(std::make_exception_ptr(std::runtime_error(message)));
    }
  }

 private:
  uint64_t tasks_;
  uint64_t batch_;
  uint64_t in_flight_max_;
  uint64_t in_flight_ = 0;
  std::vector<Offer> held_;
  std::shared_ptr<std::promise<LaunchResult>> done_;
  uint64_t next_ = 0;
  uint64_t ended_ = 0;
  bool started_ = false;
  WallClock::time_point start_;
  std::unordered_map<std::string, WallClock::time_point> submitted_;
  std::set<std::string> running_;
  LaunchResult result_;
};

// What the container phase's framework tells the benchmark's thread.
struct ContainerTimes {
  double launch_s = 0;       // first accept -> every task RUNNING
  double last_accept_s = 0;  // first accept -> last accept
  WallClock::time_point kill_start;
  uint64_t failed = 0;  // ended before RUNNING or other than KILLED
};

// The container phase: launches `tasks` tasks of `sleep 3600` as fast as
// offers allow (no in-flight cap, `batch` per accept); once every one is
// RUNNING, kills them all. `running` is fulfilled when the kills go out,
// `killed` when every task has ended.
class ContainerBench : public Scheduler {
 public:
  ContainerBench(caf::actor_config& cfg, ActorInit init, SchedulerConfig config, uint64_t tasks,
                 uint64_t batch, std::shared_ptr<std::promise<ContainerTimes>> running,
                 std::shared_ptr<std::promise<double>> killed)
      : Scheduler(cfg, std::move(init), std::move(config)),
        tasks_(tasks),
        batch_(batch),
        running_promise_(std::move(running)),
        killed_promise_(std::move(killed)) {}

 protected:
  void offers(const std::vector<Offer>& offers) override {
    static const Resources per_task = *Resources::parse("cpus:0.01;mem:1");
    for (const auto& o : offers) {
      std::vector<TaskSpec> specs;
      auto left = o.resources.allocatable_to(o.role);
      while (next_ < tasks_ && specs.size() < batch_ && left.contains(per_task)) {
        TaskSpec t;
        t.id = "c" + std::to_string(next_++);
        t.argv = {"sleep", "3600"};
        t.resources = per_task;
        left -= per_task;
        specs.push_back(std::move(t));
      }
      if (specs.empty()) {
        decline({o.id}, std::chrono::hours(1));
        continue;
      }
      auto now = WallClock::now();
      if (!started_)
        start_ = now;
      started_ = true;
      times_.last_accept_s = std::chrono::duration<double>(now - start_).count();
      if (auto err = accept({o.id}, specs, 0s))
        fail("accept: " + describe(err));
    }
    if (next_ == tasks_ && !suppressed_) {
      suppressed_ = true;
      suppress();
    }
  }

  void update(const TaskStatus& s) override {
    if (s.state == TaskState::RUNNING && running_.insert(s.task_id).second) {
      agents_[s.task_id] = s.agent_id;
      maybe_kill();
      return;
    }
    if (!s.terminal() || !ended_.insert(s.task_id).second)
      return;
    if (s.state != TaskState::KILLED || !killing_)
      ++times_.failed;
    if (!killing_) {
      maybe_kill();
      return;
    }
    if (ended_.size() == tasks_ && !finished_) {
      finished_ = true;
      killed_promise_->set_value(
          std::chrono::duration<double>(WallClock::now() - times_.kill_start).count());
      teardown();
    }
  }

  void error(const std::string& message) override { fail(message); }

 private:
  // Once every task is RUNNING (or ended before it), kills them all.
  void maybe_kill() {
    if (killing_ || running_.size() + ended_.size() < tasks_)
      return;
    killing_ = true;
    auto now = WallClock::now();
    times_.launch_s = std::chrono::duration<double>(now - start_).count();
    times_.kill_start = now;
    for (const auto& id : running_)
      if (!ended_.count(id))
        if (auto err = kill(id, agents_[id]))
          return fail("kill: " + describe(err));
    running_set_ = true;
    running_promise_->set_value(times_);
    if (ended_.size() == tasks_) {
      finished_ = true;
      killed_promise_->set_value(0);
    }
  }

  void fail(const std::string& message) {
    if (finished_)
      return;
    finished_ = true;
    auto e = std::make_exception_ptr(std::runtime_error(message));
    if (!running_set_) {
      running_set_ = true;
      running_promise_->set_exception(e);
    }
    killed_promise_->set_exception(e);
  }

  uint64_t tasks_;
  uint64_t batch_;
  std::shared_ptr<std::promise<ContainerTimes>> running_promise_;
  std::shared_ptr<std::promise<double>> killed_promise_;
  uint64_t next_ = 0;
  bool started_ = false;
  bool suppressed_ = false;
  bool killing_ = false;
  bool running_set_ = false;
  bool finished_ = false;
  WallClock::time_point start_;
  ContainerTimes times_;
  std::set<std::string> running_;
  std::set<std::string> ended_;
  std::unordered_map<std::string, std::string> agents_;  // task id -> agent id
};

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

uint64_t dirs_under(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return 0;
  uint64_t n = 1;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec))
    if (it->is_directory(ec))
      ++n;
  return n;
}

// Cgroup directories left under the agent's isolation scope, in every
// hierarchy (v1: <mount>/<controller>/<root>/<scope>; v2: <mount>/<root>/<scope>).
uint64_t cgroups_left(const IsolationConfig& c, const std::string& scope) {
  uint64_t n = dirs_under(c.cgroups_mount / c.cgroups_root / scope);
  std::error_code ec;
  for (std::filesystem::directory_iterator it(c.cgroups_mount, ec), end; !ec && it != end;
       it.increment(ec))
    n += dirs_under(it->path() / c.cgroups_root / scope);
  return n;
}

// Processes whose working directory is under dir: the tasks and executors
// the cluster started run in sandboxes there.
uint64_t processes_under(const std::filesystem::path& dir) {
  uint64_t n = 0;
  auto prefix = dir.string() + "/";
  DIR* proc = ::opendir("/proc");
  if (!proc)
    return 0;
  while (auto* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char buf[4096];
    auto link = std::string("/proc/") + e->d_name + "/cwd";
    auto len = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (len > 0 && std::string_view(buf, static_cast<size_t>(len)).starts_with(prefix))
      ++n;
  }
  ::closedir(proc);
  return n;
}

// Waits until f() is 0, at most `limit`; returns its last value.
uint64_t wait_for_zero(const std::function<uint64_t()>& f, std::chrono::milliseconds limit) {
  auto deadline = WallClock::now() + limit;
  for (;;) {
    auto v = f();
    if (v == 0 || WallClock::now() >= deadline)
      return v;
    std::this_thread::sleep_for(10ms);
  }
}

// The container phase on a running cluster whose agent 0 just ran
// `previous` containers (the throughput phase); adds its figures to row.
void run_containers(LocalCluster& cluster, const LaunchBenchOptions& o, uint64_t previous,
                    Row& row) {
  auto metrics = cluster.agent_metrics(0);
  if (!metrics)
    throw std::runtime_error("the cluster has no agent");
  // The throughput phase's containers are destroyed off the agent's thread;
  // wait for them so that they are not counted here.
  auto settled = [&] {
    return metrics->containers_destroyed.load() + metrics->container_errors.load() >= previous;
  };
  for (auto deadline = WallClock::now() + 30s; !settled() && WallClock::now() < deadline;)
    std::this_thread::sleep_for(1ms);
  auto destroyed_before = metrics->containers_destroyed.load();
  auto errors_before = metrics->container_errors.load();

  auto running = std::make_shared<std::promise<ContainerTimes>>();
  auto killed = std::make_shared<std::promise<double>>();
  auto running_f = running->get_future();
  auto killed_f = killed->get_future();
  SchedulerConfig sc;
  sc.master = cluster.master_address();
  sc.framework.name = "bench-containers";
  if (auto fw = cluster.node().spawn<ContainerBench>("bench-containers", sc, o.tasks, o.batch,
                                                     running, killed);
      !fw)
    throw std::runtime_error(what(fw.error()));
  auto limit = std::chrono::seconds(60 + o.tasks / 10);
  if (running_f.wait_for(limit) != std::future_status::ready)
    throw std::runtime_error("container phase: tasks not all RUNNING in time");
  auto times = running_f.get();
  // Every container destroyed: the agent's count, polled from here.
  auto target = destroyed_before + o.tasks;
  double destroy_s = -1;
  for (auto deadline = times.kill_start + limit; WallClock::now() < deadline;) {
    if (metrics->containers_destroyed.load() >= target) {
      destroy_s = std::chrono::duration<double>(WallClock::now() - times.kill_start).count();
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  if (killed_f.wait_until(times.kill_start + limit) != std::future_status::ready)
    throw std::runtime_error("container phase: tasks not all ended in time");
  auto killed_s = killed_f.get();
  if (destroy_s < 0)
    throw std::runtime_error(
        "container phase: " +
        std::to_string(metrics->containers_destroyed.load() - destroyed_before) + " of " +
        std::to_string(o.tasks) + " containers destroyed in time");
  auto n = std::to_string(o.tasks);
  row["launch_" + n + "_s"] = times.launch_s;
  row["launch_last_accept_s"] = times.last_accept_s;
  row["killed_" + n + "_s"] = killed_s;
  row["destroy_" + n + "_s"] = destroy_s;
  row["container_failed"] = static_cast<double>(times.failed);
  row["container_errors"] = static_cast<double>(metrics->container_errors.load() - errors_before);
}

Row run_once(const LaunchBenchOptions& o) {
  char tmpl[] = "/tmp/tessera-bench-launch-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("cannot create a work directory in /tmp");
  std::filesystem::path dir = tmpl;
  struct RemoveDir {
    std::filesystem::path dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  LocalClusterConfig config;
  config.agents = 1;
  config.agent_resources = "cpus:1000;mem:1000000";
  config.work_dir = dir;
  config.master.allocation_interval = 100ms;
  if (o.process_executors) {
    config.agent.executor_mode = ExecutorMode::process;
    config.agent.executor_binary = cli::self_path();
  }
  if (!o.isolation.empty())
    config.isolation.kind = o.isolation;
  RemoveDir cleanup{dir};  // declared first: goes after the cluster has stopped
  auto cluster = LocalCluster::start(config);
  if (!cluster)
    throw std::runtime_error(what(cluster.error()));
  auto done = std::make_shared<std::promise<LaunchResult>>();
  auto result = done->get_future();
  SchedulerConfig sc;
  sc.master = (*cluster)->master_address();
  sc.framework.name = "bench-launch";
  if (auto fw =
          (*cluster)->node().spawn<LaunchBench>("bench", sc, o.tasks, o.batch, o.in_flight, done);
      !fw)
    throw std::runtime_error(what(fw.error()));
  if (result.wait_for(std::chrono::seconds(60 + o.tasks / 10)) != std::future_status::ready)
    throw std::runtime_error("tasks did not all end in time");
  auto r = result.get();
  Row row;
  if (!o.isolation.empty()) {
    run_containers(**cluster, o, o.tasks, row);
    (*cluster)->stop();
    // Nothing the cluster started may outlive it.
    auto scope = isolation_scope(dir / "agent-1");
    row["cgroups_left"] = static_cast<double>(
        wait_for_zero([&] { return cgroups_left(config.isolation, scope); }, 5s));
    row["processes_left"] =
        static_cast<double>(wait_for_zero([&] { return processes_under(dir); }, 5s));
  }
  (*cluster)->stop();
  row["tasks_per_s"] = static_cast<double>(o.tasks) / r.total_s;
  row["submit_to_running_p50_ms"] = percentile(r.submit_to_running_ms, 0.5);
  row["submit_to_running_p99_ms"] = percentile(r.submit_to_running_ms, 0.99);
  row["failed"] = static_cast<double>(r.failed);
  row["total_s"] = r.total_s;
  return row;
}

}  // namespace

int run_launch_bench(const LaunchBenchOptions& o) {
  nlohmann::json params;
  params["tasks"] = o.tasks;
  params["batch"] = o.batch;
  params["in_flight"] = o.in_flight;
  params["executors"] = o.process_executors ? "process" : "in_process";
  if (!o.isolation.empty())
    params["isolation"] = o.isolation;
  auto n = std::to_string(o.tasks);
  return report_medians(
      "launch", o.runs, o.json, params, [&](int) { return run_once(o); },
      [&](const Row& m) {
        std::printf(
            "tessera bench launch: %llu tasks of `true`, at most %llu in flight, %s "
            "executors, median of %d runs\n",
            static_cast<unsigned long long>(o.tasks), static_cast<unsigned long long>(o.in_flight),
            o.process_executors ? "process" : "in-process", o.runs);
        std::printf("  %-28s %10.1f\n", "tasks/s", m.at("tasks_per_s"));
        std::printf("  %-28s %10.2f\n", "submit->RUNNING p50 (ms)",
                    m.at("submit_to_running_p50_ms"));
        std::printf("  %-28s %10.2f\n", "submit->RUNNING p99 (ms)",
                    m.at("submit_to_running_p99_ms"));
        std::printf("  %-28s %10.0f\n", "failed", m.at("failed"));
        if (o.isolation.empty())
          return;
        std::printf(
            "then %llu tasks of `sleep 3600` at once (%llu per accept), %s isolation, "
            "killed once all RUNNING\n",
            static_cast<unsigned long long>(o.tasks), static_cast<unsigned long long>(o.batch),
            o.isolation.c_str());
        // The targets are for 1000 containers (Mesos 1.7: about 30 s and 20 s).
        auto per = o.tasks == 1000 ? std::string() : " for 1000";
        std::printf("  %-28s %10.2f   target < 5 s%s\n", ("launch " + n + " (s)").c_str(),
                    m.at("launch_" + n + "_s"), per.c_str());
        std::printf("  %-28s %10.2f\n", "  of which accepting (s)", m.at("launch_last_accept_s"));
        std::printf("  %-28s %10.2f\n", ("killed " + n + " (s)").c_str(),
                    m.at("killed_" + n + "_s"));
        std::printf("  %-28s %10.2f   target < 3 s%s\n", ("destroy " + n + " (s)").c_str(),
                    m.at("destroy_" + n + "_s"), per.c_str());
        std::printf("  %-28s %10.0f\n", "failed", m.at("container_failed"));
        std::printf("  %-28s %10.0f\n", "container errors", m.at("container_errors"));
        std::printf("  %-28s %10.0f\n", "cgroups left after", m.at("cgroups_left"));
        std::printf("  %-28s %10.0f\n", "processes left after", m.at("processes_left"));
      });
}

}  // namespace tessera::bench
