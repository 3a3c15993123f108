#include "tools/tessera/bench_failover.hpp"

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "runtime/process_launcher.hpp"
#include "services/agent/agent.hpp"
#include "services/agent/disk.hpp"
#include "services/election/zk_election.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tools/tessera/bench_report.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Tasks that run until killed.
class ForeverTasks : public SimulatedTasks {
 public:
  SimulatedRun started(const std::string&, const std::string&, const Address&) override {
    SimulatedRun run;
    run.runs_for = std::chrono::hours(24 * 365);
    run.term_after = 0ms;
    return run;
  }
  void ended(const std::string&, const std::string&, int) override {}
};

// What the framework and the agents tell the benchmark's thread.
struct Progress {
  std::atomic<uint64_t> running{0};
  std::atomic<uint64_t> ended{0};
  std::atomic<int64_t> mark_ns{0};  // the kill; 0: not yet
  std::atomic<int64_t> first_offers_ns{0};
  std::atomic<uint64_t> reregistered{0};  // agents registered after the mark
  std::atomic<int64_t> last_reregistered_ns{0};
};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch())
      .count();
}

// Launches `tasks` tasks of one CPU as offers allow, then declines.
class KeepRunning : public Scheduler {
 public:
  KeepRunning(caf::actor_config& cfg, ActorInit init, SchedulerConfig config, uint64_t tasks,
              std::shared_ptr<Progress> progress)
      : Scheduler(cfg, std::move(init), std::move(config)),
        tasks_(tasks),
        progress_(std::move(progress)) {}

 protected:
  void offers(const std::vector<Offer>& offers) override {
    if (progress_->mark_ns.load() != 0 && progress_->first_offers_ns.load() == 0)
      progress_->first_offers_ns = now_ns();
    static const Resources per_task = *Resources::parse("cpus:1;mem:64");
    for (const auto& o : offers) {
      std::vector<TaskSpec> specs;
      auto left = o.resources.allocatable_to(o.role);
      while (next_ < tasks_ && left.contains(per_task)) {
        TaskSpec t;
        t.id = "t" + std::to_string(next_++);
        t.argv = {"sleep", "forever"};  // simulated: nothing runs
        t.resources = per_task;
        left -= per_task;
        specs.push_back(std::move(t));
      }
      if (specs.empty())
        decline({o.id}, 1s);
      else
        accept({o.id}, specs, 0s);
    }
  }

  void update(const TaskStatus& s) override {
    if (s.state == TaskState::RUNNING && running_.insert(s.task_id).second)
      ++progress_->running;
    if (s.terminal())
      ++progress_->ended;
  }

 private:
  uint64_t tasks_;
  std::shared_ptr<Progress> progress_;
  uint64_t next_ = 0;
  std::set<std::string> running_;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string run_command(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0)
      out.append(buffer, n);
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

// tools/zk.sh in the source tree the binary was built in (build/bin/tessera).
std::string find_zk_script(const std::string& self_path) {
  auto dir = std::filesystem::path(self_path).parent_path();
  for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path())
    if (std::filesystem::exists(dir / "tools" / "zk.sh"))
      return (dir / "tools" / "zk.sh").string();
  return {};
}

// A ZooKeeper ensemble of three for the benchmark's life.
class Ensemble {
 public:
  Ensemble(std::string script, std::filesystem::path dir)
      : script_(std::move(script)), dir_(std::move(dir)) {
    std::mt19937 rng(std::random_device{}());
    int port = 23000 + static_cast<int>(rng() % 10000);
    spec = run_command(script_ + " start " + dir_.string() + " --servers 3 --port " +
                       std::to_string(port) + " 2>&1");
    if (spec.rfind("zk://", 0) != 0)
      throw std::runtime_error("tools/zk.sh could not start ZooKeeper: " + spec);
  }
  ~Ensemble() { run_command(script_ + " stop " + dir_.string()); }
  std::string spec;

 private:
  std::string script_;
  std::filesystem::path dir_;
};

struct MasterProcess {
  int pid = 0;
  std::string address;
  std::filesystem::path out;
};

Row measure(const FailoverBenchOptions& o, const std::string& zk_root,
            const std::filesystem::path& dir, ProcessLauncher& launcher) {
  auto spec = zk_root;
  // Masters: three processes contending under this run's own path.
  std::vector<MasterProcess> masters(3);
  for (size_t i = 0; i < masters.size(); ++i) {
    auto& m = masters[i];
    auto work = dir / ("master" + std::to_string(i + 1));
    std::filesystem::create_directories(work);
    m.out = work / "stdout";
    ProcessSpec ps;
    ps.argv = {o.self_path,
               "master",
               "--listen",
               "127.0.0.1:0",
               "--work-dir",
               work.string(),
               "--zk",
               spec,
               "--zk-session-timeout",
               std::to_string(o.session_timeout_ms)};
    ps.stdout_path = m.out.string();
    ps.stderr_path = (work / "stderr").string();
    auto pid = launcher.spawn(ps, [](const ProcessExit&) {});
    if (!pid)
      throw std::runtime_error("cannot start a master: " + describe(pid.error()));
    m.pid = *pid;
  }
  auto kill_masters = [&] {
    for (auto& m : masters)
      if (m.pid != 0)
        launcher.kill(m.pid, SIGKILL);
  };
  for (auto& m : masters) {
    auto deadline = WallClock::now() + 30s;
    while (m.address.empty() && WallClock::now() < deadline) {
      auto text = read_file(m.out);
      auto at = text.find("master@");
      if (at != std::string::npos && text.find('\n', at) != std::string::npos)
        m.address = text.substr(at, text.find(' ', at) - at);
      else
        std::this_thread::sleep_for(20ms);
    }
    if (m.address.empty()) {
      kill_masters();
      throw std::runtime_error("a master did not start: " +
                               read_file(m.out.parent_path() / "stderr"));
    }
  }

  auto detector = ZkElection::open(spec, {});
  if (!detector) {
    kill_masters();
    throw std::runtime_error(describe(detector.error()));
  }
  auto progress = std::make_shared<Progress>();
  Row row;
  {
    NodeConfig nc;
    nc.host = "127.0.0.1";
    auto node = Node::start(nc);
    if (!node) {
      kill_masters();
      throw std::runtime_error(describe(node.error()));
    }
    auto tasks = std::make_shared<ForeverTasks>();
    auto per_agent_cpus = (o.tasks + o.agents - 1) / o.agents + 4;  // room left for offers
    auto resources = *Resources::parse("cpus:" + std::to_string(per_agent_cpus) +
                                       ";mem:" + std::to_string(per_agent_cpus * 64 + 1024));
    for (uint64_t i = 0; i < o.agents; ++i) {
      AgentConfig ac;
      ac.detector = *detector;
      ac.work_dir = dir / "agents" / std::to_string(i);
      ac.resources = resources;
      ac.hostname = "agent-" + std::to_string(i);
      ac.disk = std::make_shared<MemoryDisk>();
      ac.simulated_tasks = tasks;
      ac.gc_interval_ms = 0ms;
      ac.on_registered = [progress](const std::string&) {
        if (progress->mark_ns.load() != 0) {
          ++progress->reregistered;
          progress->last_reregistered_ns = now_ns();
        }
      };
      if (auto a = (*node)->spawn<Agent>("agent-" + std::to_string(i), ac); !a)
        throw std::runtime_error(describe(a.error()));
    }
    SchedulerConfig sc;
    sc.detector = *detector;
    sc.framework.name = "bench-failover";
    sc.framework.roles = {"*"};
    sc.framework.failover_timeout = std::chrono::hours(1);
    if (auto f = (*node)->spawn<KeepRunning>("framework", sc, o.tasks, progress); !f)
      throw std::runtime_error(describe(f.error()));

    auto deadline = WallClock::now() + 600s;
    while (progress->running.load() < o.tasks && WallClock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    if (progress->running.load() < o.tasks) {
      kill_masters();
      throw std::runtime_error("only " + std::to_string(progress->running.load()) + " of " +
                               std::to_string(o.tasks) + " tasks ran within 600 s");
    }
    std::this_thread::sleep_for(1s);  // the last updates acknowledged, the registry quiet

    // kill -9 of the leader.
    auto view = (*detector)->view();
    auto leader = std::find_if(masters.begin(), masters.end(),
                               [&](const MasterProcess& m) { return view.leader == m.address; });
    if (leader == masters.end()) {
      kill_masters();
      throw std::runtime_error("ZooKeeper names no leader among the masters");
    }
    auto ended_before = progress->ended.load();
    progress->mark_ns = now_ns();
    launcher.kill(leader->pid, SIGKILL);
    leader->pid = 0;
    int64_t elected_ns = 0;
    deadline = WallClock::now() + 120s;
    while (WallClock::now() < deadline &&
           (progress->first_offers_ns.load() == 0 || progress->reregistered.load() < o.agents ||
            elected_ns == 0)) {
      if (elected_ns == 0) {
        auto v = (*detector)->view();
        if (v.leader && *v.leader != leader->address)
          elected_ns = now_ns();
      }
      std::this_thread::sleep_for(1ms);
    }
    auto ms = [&](int64_t at) { return at == 0 ? -1.0 : (at - progress->mark_ns.load()) / 1e6; };
    row["elected_ms"] = ms(elected_ns);
    row["failover_ms"] = ms(progress->first_offers_ns.load());
    row["reregistered_ms"] = progress->reregistered.load() >= o.agents
                                 ? ms(progress->last_reregistered_ns.load())
                                 : -1.0;
    row["tasks_lost"] = static_cast<double>(progress->ended.load() - ended_before);
    (*node)->stop();
  }
  kill_masters();
  return row;
}

}  // namespace

int run_failover_bench(const FailoverBenchOptions& o) {
  // The agents' warnings (a master that went away, which is the point)
  // would drown the table; the masters log to files of their own.
  set_log_level("error");
  auto dir =
      std::filesystem::path("/var/tmp") / ("tessera-bench-failover-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::unique_ptr<Ensemble> ensemble;
  std::string zk = o.zk;
  int code = 1;
  try {
    if (zk.empty()) {
      auto script = find_zk_script(o.self_path);
      if (script.empty())
        throw std::runtime_error("no --zk given and tools/zk.sh not found near " + o.self_path);
      ensemble = std::make_unique<Ensemble>(script, dir / "zk");
      zk = ensemble->spec;
    }
    auto spec = parse_zk_spec(zk, "--zk");
    if (!spec)
      throw std::runtime_error(describe(spec.error()));
    ProcessLauncher launcher;
    nlohmann::json params{
        {"agents", o.agents}, {"tasks", o.tasks}, {"session_timeout_ms", o.session_timeout_ms}};
    code = report_medians(
        "failover", o.runs, o.json, params,
        [&](int run) {
          auto root = "zk://" + spec->hosts + spec->path + "/bench-" + std::to_string(::getpid()) +
                      "-" + std::to_string(run);
          return measure(o, root, dir / ("run" + std::to_string(run)), launcher);
        },
        [&](const Row& r) {
          std::printf(
              "failover of 3 masters (ZooKeeper session %d ms), %llu agents, %llu tasks, "
              "medians of %d runs\n",
              o.session_timeout_ms, static_cast<unsigned long long>(o.agents),
              static_cast<unsigned long long>(o.tasks), o.runs);
          std::printf("  %-18s %10.1f ms\n", "elected", r.at("elected_ms"));
          std::printf("  %-18s %10.1f ms   (target <= 2000)\n", "failover (offers)",
                      r.at("failover_ms"));
          std::printf("  %-18s %10.1f ms   (target <= 5000)\n", "all reregistered",
                      r.at("reregistered_ms"));
          std::printf("  %-18s %10.0f\n", "tasks lost", r.at("tasks_lost"));
        });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera bench failover: %s\n", e.what());
    code = 1;
  }
  ensemble.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return code;
}

}  // namespace tessera::bench
