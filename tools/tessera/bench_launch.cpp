#include "tools/tessera/bench_launch.hpp"

#include "services/cluster/local_cluster.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/command.hpp"

#include <filesystem>
#include <future>
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

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

Row run_once(const LaunchBenchOptions& o) {
  char tmpl[] = "/tmp/tessera-bench-launch-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("cannot create a work directory in /tmp");
  std::filesystem::path dir = tmpl;
  LocalClusterConfig config;
  config.agents = 1;
  config.agent_resources = "cpus:1000;mem:1000000";
  config.work_dir = dir;
  config.master.allocation_interval = 100ms;
  if (o.process_executors) {
    config.agent.executor_mode = ExecutorMode::process;
    config.agent.executor_binary = cli::self_path();
  }
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
  (*cluster)->stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  Row row;
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
      });
}

}  // namespace tessera::bench
