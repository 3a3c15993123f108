#include "services/sim/chaos.hpp"

#include "runtime/simulation.hpp"
#include "services/agent/agent.hpp"
#include "services/agent/checkpoint.hpp"
#include "services/agent/disk.hpp"
#include "services/master/master.hpp"
#include "services/sim/null_isolator.hpp"
#include "services/sim/sim_framework.hpp"

#include <caf/all.hpp>
#include <capnp/testing.capnp.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>

namespace tessera::sim {

using namespace std::chrono_literals;

namespace {

const char* const fault_names[] = {
    "drop",         "duplicate",          "delay", "partition", "agent-crash", "executor-crash",
    "master-crash", "framework-failover", "stall", "disk-full"};
constexpr size_t fault_kinds = sizeof(fault_names) / sizeof(fault_names[0]);

Duration ms(int64_t n) {
  return std::chrono::milliseconds(n);
}

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

// Test hook ("livelock"): an actor that answers each message with another,
// in no virtual time.
class Spinner : public Actor {
 public:
  Spinner(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
    on<wire::testing::Tick>([this](const Received<wire::testing::Tick>& m) {
      auto n = m.body().getN() + 1;
      send(me(), build<wire::testing::Tick>([n](wire::testing::Tick::Builder b) { b.setN(n); }));
    });
  }
};

// One scheduled fault and, for the lasting ones, when it heals.
struct Planned {
  Duration at{0};
  Fault kind = link_drop;
  size_t a = 0, b = 0;  // node indexes (links, partitions), or the target
  Duration lasts{0};
  double p = 0;
};

// The whole run of one seed: nodes, actors, faults, checks.
class Run {
 public:
  explicit Run(const ChaosConfig& config)
      : config_(config),
        world_(config.seed, [this] { return sim_.clock().now() - start_; }),
        sim_(config.seed),
        rng_(config.seed * 0x9e3779b97f4a7c15ULL + 1) {
    start_ = sim_.clock().now();
    // Agents still make sandbox directories: in memory when the host has a
    // tmpfs for it, which halves a seed's system time.
    std::error_code ec;
    auto base = std::filesystem::is_directory("/dev/shm", ec)
                    ? std::filesystem::path("/dev/shm")
                    : std::filesystem::temp_directory_path();
    dir_ = base / ("tessera-sim-" + std::to_string(::getpid()) + "-" + std::to_string(config.seed));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~Run() {
    // The simulation's actors still report to the World as they end, after
    // the master is gone.
    world_.master_told_ended = nullptr;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ChaosResult go();

 private:
  Node& node(size_t i) { return *nodes_[i]; }
  size_t agent_node(size_t i) const { return 1 + i; }
  size_t framework_node(size_t j) const { return 1 + config_.agents + j; }
  void start_master();
  void start_agent(size_t i);
  void start_framework(size_t j);
  void plan();
  void apply(const Planned& f);
  void heal_all();
  void crash_node(size_t n, const std::string& what);
  void restart_node(size_t n);
  void check_books();
  Master* master();
  AllocatorActor* allocator();
  void advance_to(Duration t);

  ChaosConfig config_;
  World world_;  // outlives the simulation: its actors report to it as they end
  Simulation sim_;
  std::mt19937_64 rng_;
  TimePoint start_{};
  std::filesystem::path dir_;
  std::vector<Node*> nodes_;  // master, agents, frameworks
  std::vector<bool> down_;
  std::vector<uint64_t> instances_;  // per framework
  std::vector<Behaviour> behaviours_;
  std::shared_ptr<NullIsolator> isolator_ = std::make_shared<NullIsolator>();
  // One per agent: outlives the agent's crashes (its checkpoints).
  std::vector<std::shared_ptr<MemoryDisk>> disks_;
  // The master's registry: outlives the master's crashes (each commit is
  // durable once the master's handler that made it returns).
  std::shared_ptr<MemoryStore> registry_ = std::make_shared<MemoryStore>();
  void fill_disk(size_t i);
  void free_disk(size_t i);
  std::shared_ptr<World> world_ref_;
  bool quiet_ = false;
  uint64_t restarts_ = 0;
  std::vector<Planned> plan_;
  uint64_t injected_ = 0;
  // More deliveries than this in one virtual second is a livelock (a
  // healthy seed makes a few thousand in its whole run).
  static constexpr uint64_t livelock_deliveries_max = 1'000'000;
  bool livelocked_ = false;
};

Master* Run::master() {
  if (down_[0])
    return nullptr;
  auto h = sim_.lookup(node(0).address_of("master"));
  if (!h)
    return nullptr;
  return dynamic_cast<Master*>(caf::actor_cast<caf::abstract_actor*>(h));
}

AllocatorActor* Run::allocator() {
  if (down_[0])
    return nullptr;
  auto h = sim_.lookup(node(0).address_of("master.allocator"));
  if (!h)
    return nullptr;
  return dynamic_cast<AllocatorActor*>(caf::actor_cast<caf::abstract_actor*>(h));
}

void Run::start_master() {
  MasterConfig mc;
  mc.registry = registry_;
  mc.seed = config_.seed * 31 + ++restarts_;
  mc.allocation_interval = 1s;
  mc.offer_timeout = 30s;
  node(0).spawn<Master>("master", mc);
}

void Run::start_agent(size_t i) {
  auto& n = node(agent_node(i));
  AgentConfig ac;
  ac.master = node(0).address_of("master");
  ac.work_dir = dir_ / ("agent-" + std::to_string(i + 1));
  ac.resources = *Resources::parse("cpus:4;mem:4096;disk:10000;ports:[31000-31099]");
  ac.hostname = n.host();
  ac.seed = config_.seed * 1000 + i + 1 + 100 * ++restarts_;
  ac.isolator = isolator_;
  // Checkpoints on the agent's in-memory disk: a crash and restart recovers.
  ac.checkpoint = true;
  ac.disk = disks_[i];
  ac.gc_interval_ms = 0ms;
  ac.container_monitor_interval_ms = 0ms;
  ac.simulated_tasks = std::shared_ptr<SimulatedTasks>(world_ref_, &world_);
  n.spawn<Agent>("agent", ac);
}

void Run::start_framework(size_t j) {
  auto name = "fw" + std::to_string(j + 1);
  SchedulerConfig sc;
  sc.master = node(0).address_of("master");
  sc.framework.name = name;
  sc.framework.roles = {j % 2 == 0 ? "*" : "role" + std::to_string(j)};
  sc.framework.failover_timeout = std::chrono::hours(1);
  if (behaviours_[j].partition_aware)
    sc.framework.capabilities = {FrameworkCapability::PARTITION_AWARE};
  sc.framework.framework_id = world_.framework(name).framework_id;
  sc.seed = config_.seed * 7919 + j + 1000 * instances_[j];
  SimFrameworkConfig fc;
  fc.name = name;
  fc.instance = ++instances_[j];
  fc.behaviour = behaviours_[j];
  fc.world = &world_;
  fc.quiet = &quiet_;
  node(framework_node(j)).spawn<SimFramework>("scheduler", sc, fc);
}

// The fault schedule: drawn from the seed before anything runs, so it does
// not depend on what the cluster does.
void Run::plan() {
  std::vector<Fault> kinds;
  for (size_t k = 0; k < fault_kinds; ++k)
    if (config_.faults & (1u << k))
      kinds.push_back(static_cast<Fault>(1u << k));
  if (kinds.empty())
    return;
  std::exponential_distribution<double> gap(1.0 / seconds(config_.fault_every_mean));
  size_t nodes = nodes_.size();
  auto pick = [&](size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>(lo, hi)(rng_);
  };
  auto length = [&](int64_t lo_ms, int64_t hi_ms) {
    return ms(std::uniform_int_distribution<int64_t>(lo_ms, hi_ms)(rng_));
  };
  for (Duration t =
           10s + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(gap(rng_)));
       t < config_.duration;
       t += std::chrono::duration_cast<Duration>(std::chrono::duration<double>(gap(rng_)))) {
    Planned f;
    f.at = t;
    f.kind = kinds[pick(0, kinds.size() - 1)];
    switch (f.kind) {
      case link_drop:
      case link_duplicate:
      case link_delay:
      case partition:
        f.a = pick(0, nodes - 1);
        f.b = pick(0, nodes - 2);
        if (f.b >= f.a)
          ++f.b;
        f.lasts = f.kind == partition ? length(2'000, 60'000) : length(5'000, 90'000);
        f.p = std::uniform_real_distribution<double>(0.02, 0.3)(rng_);
        break;
      case agent_crash:
        f.a = agent_node(pick(0, config_.agents - 1));
        f.lasts = length(1'000, 60'000);
        break;
      case executor_crash:
        f.a = pick(0, 1'000'000);
        break;
      case master_crash:
        f.a = 0;
        f.lasts = length(500, 20'000);
        break;
      case framework_failover:
        f.a = framework_node(pick(0, config_.frameworks - 1));
        f.lasts = length(200, 20'000);
        break;
      case stall:
        f.a = pick(0, config_.agents);  // 0: the master, else an agent
        f.lasts = length(100, 4'000);
        break;
      case disk_full:
        f.a = pick(0, config_.agents - 1);  // the agent
        f.lasts = length(1'000, 60'000);
        break;
      default:
        break;
    }
    plan_.push_back(f);
  }
}

void Run::crash_node(size_t n, const std::string& what) {
  if (down_[n])
    return;
  world_.crashing(what);
  if (n == 0)
    world_.master_failover();
  world_.doom_port(node(n).port());
  sim_.crash(node(n));
  down_[n] = true;
  // The machine's power is gone: what its disk had not synced is lost.
  if (n >= 1 && n <= config_.agents)
    disks_[n - 1]->crash();
}

void Run::restart_node(size_t n) {
  if (!down_[n])
    return;
  nodes_[n] = &sim_.restart(node(n));
  down_[n] = false;
  world_.event("restart " + node(n).host());
  if (n == 0)
    start_master();
  else if (n <= config_.agents)
    start_agent(n - 1);
  else
    start_framework(n - 1 - config_.agents);
}

void Run::apply(const Planned& f) {
  ++injected_;
  Simulation::LinkFault lf;
  std::string pair;
  if (f.a < nodes_.size() && f.b < nodes_.size())
    pair = node(f.a).host() + "<->" + node(f.b).host();
  switch (f.kind) {
    case link_drop:
      lf.drop = f.p;
      break;
    case link_duplicate:
      lf.duplicate = f.p;
      break;
    case link_delay:
      lf.delay_max = ms(static_cast<int64_t>(f.p * 10'000));
      break;
    case partition:
      lf.partitioned = true;
      break;
    case agent_crash:
    case master_crash:
    case framework_failover:
      crash_node(f.a, node(f.a).host());
      return;
    case executor_crash: {
      auto executors = world_.executors();
      if (executors.empty())
        return;
      auto& victim = executors[f.a % executors.size()];
      world_.crashing("executor " + victim.to_string());
      world_.doom_executor(victim);
      if (auto h = sim_.lookup(victim))
        caf::anon_send_exit(h, caf::exit_reason::kill);
      return;
    }
    case disk_full:
      fill_disk(f.a);
      return;
    case stall: {
      auto& n = node(f.a == 0 ? 0 : agent_node(f.a - 1));
      world_.event("stall " + n.host() + " for " + std::to_string(seconds(f.lasts)) + "s");
      sim_.stall(n, f.lasts);
      return;
    }
    default:
      return;
  }
  world_.event(std::string("link ") + pair + " " +
               fault_names[static_cast<size_t>(__builtin_ctz(f.kind))] +
               " p=" + std::to_string(f.p) + " for " + std::to_string(seconds(f.lasts)) + "s");
  sim_.set_link(node(f.a), node(f.b), lf);
}

// Nothing more fits on agent i's disk: every new write fails with ENOSPC.
void Run::fill_disk(size_t i) {
  auto& disk = *disks_[i];
  disk.set_capacity_bytes(disk.used_bytes());
  world_.event("disk of agent" + std::to_string(i + 1) + " full at " +
               std::to_string(disk.used_bytes()) + " bytes");
}

void Run::free_disk(size_t i) {
  if (disks_[i]->capacity_bytes() == UINT64_MAX)
    return;
  disks_[i]->set_capacity_bytes(UINT64_MAX);
  world_.event("disk of agent" + std::to_string(i + 1) + " has room again");
}

void Run::heal_all() {
  for (size_t i = 0; i < disks_.size(); ++i)
    free_disk(i);
  sim_.clear_links();
  for (size_t n = 0; n < nodes_.size(); ++n)
    restart_node(n);
  world_.event("all faults healed");
}

void Run::check_books() {
  // A stalled master node holds its messages to the allocator too: the
  // books agree only once they are delivered.
  if (down_[0] || sim_.stalled(node(0)))
    return;
  auto* m = master();
  auto* a = allocator();
  if (m && a)
    world_.check_books(m->view(), a->books());
}

// Moves virtual time to t, one second at a time, checking the books at
// every idle point in between.
void Run::advance_to(Duration t) {
  for (auto now = sim_.clock().now() - start_; now < t && !livelocked_;
       now = sim_.clock().now() - start_) {
    auto before = sim_.deliveries();
    sim_.advance(std::min<Duration>(1s, t - now));
    if (sim_.deliveries() - before > livelock_deliveries_max) {
      // Messages that beget messages in no time: a loop, not a workload.
      world_.violate("livelock", std::to_string(sim_.deliveries() - before) +
                                     " deliveries in one virtual second; the run stops here");
      livelocked_ = true;
      return;
    }
    check_books();
  }
}

ChaosResult Run::go() {
  world_.set_recent_max(config_.events);
  sim_.set_inline_blocking(true);
  sim_.set_advance_steps_max(2 * livelock_deliveries_max);
  nodes_.push_back(&sim_.add_node("master"));
  for (size_t i = 0; i < config_.agents; ++i)
    nodes_.push_back(&sim_.add_node("agent" + std::to_string(i + 1)));
  for (size_t j = 0; j < config_.frameworks; ++j)
    nodes_.push_back(&sim_.add_node("framework" + std::to_string(j + 1)));
  down_.assign(nodes_.size(), false);
  for (size_t i = 0; i < config_.agents; ++i)
    disks_.push_back(std::make_shared<MemoryDisk>());
  // Checkpoint before launch (issue #9 items 6 and 8): a task's process
  // starts only once its record is durable, so a full disk stops launches.
  world_.launch_check = [this](const std::string& fw, const std::string& task,
                               const Address& executor) -> std::string {
    for (size_t i = 0; i < config_.agents; ++i)
      if (node(agent_node(i)).port() == executor.port) {
        auto record = checkpoint::task_path(dir_ / ("agent-" + std::to_string(i + 1)), fw, task);
        return disks_[i]->durable(record) ? std::string()
                                          : "its checkpoint record is not durable on agent" +
                                                std::to_string(i + 1) + "'s disk";
      }
    return {};
  };
  world_.master_told_ended = [this](const std::string& fw, const std::string& task) {
    auto* m = master();
    return m && m->told_ended(fw, task);
  };
  instances_.assign(config_.frameworks, 0);
  for (size_t j = 0; j < config_.frameworks; ++j)
    behaviours_.push_back(Behaviour::draw(rng_, config_.duration));
  plan();
  start_master();
  for (size_t i = 0; i < config_.agents; ++i)
    start_agent(i);
  for (size_t j = 0; j < config_.frameworks; ++j)
    start_framework(j);

  // Heals come due as events of their own.
  std::vector<std::pair<Duration, std::function<void()>>> due;
  for (const auto& f : plan_) {
    due.emplace_back(f.at, [this, f] { apply(f); });
    if (f.lasts > Duration::zero() && f.kind != stall) {
      if (f.kind <= partition)
        due.emplace_back(f.at + f.lasts, [this, f] { sim_.clear_link(node(f.a), node(f.b)); });
      else if (f.kind == disk_full)
        due.emplace_back(f.at + f.lasts, [this, f] { free_disk(f.a); });
      else
        due.emplace_back(f.at + f.lasts, [this, f] { restart_node(f.a); });
    }
  }
  if (config_.inject == "run-twice")
    due.emplace_back(config_.duration / 2, [this] {
      world_.event("test: a process of a running task is started again");
      for (const auto& [fw, t] : world_.running())
        if (!fw.empty()) {
          world_.started(fw, t, Address{});
          break;
        }
    });
  if (config_.inject == "livelock")
    due.emplace_back(config_.duration / 2, [this] {
      world_.event("test: an actor starts answering itself for ever");
      if (auto spinner = node(0).spawn<Spinner>("spinner"))
        node(0).send(*spinner, build<wire::testing::Tick>([](auto) {}));
    });
  std::stable_sort(due.begin(), due.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  for (auto& [at, fn] : due) {
    if (at >= config_.duration)
      break;
    advance_to(at);
    fn();
  }
  advance_to(config_.duration);
  heal_all();
  auto healed_at = config_.duration;
  advance_to(healed_at + config_.healed);
  quiet_ = true;
  world_.event("wind-down: nothing new is launched");
  advance_to(healed_at + config_.healed + config_.wind_down);
  if (!livelocked_) {  // else the end state means nothing
    check_books();
    if (auto* m = master()) {
      auto v = m->view();
      world_.check_final(&v, healed_at);
    } else {
      world_.check_final(nullptr, healed_at);
    }
  }

  ChaosResult r;
  r.seed = config_.seed;
  r.digest = sim_.digest();
  r.deliveries = sim_.deliveries();
  r.tasks_started = world_.tasks_started();
  r.faults_injected = injected_;
  r.sim_seconds = seconds(sim_.clock().now() - start_);
  r.violations = world_.violations();
  r.recent = world_.recent();
  return r;
}

}  // namespace

expected<uint32_t> parse_faults(const std::string& text) {
  if (text == "all")
    return static_cast<uint32_t>(all_faults);
  if (text == "none" || text.empty())
    return uint32_t{0};
  uint32_t out = 0;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    auto it = std::find(std::begin(fault_names), std::end(fault_names), item);
    if (it == std::end(fault_names))
      return make_error(Errc::invalid_argument, "unknown fault kind '" + item + "'");
    out |= 1u << (it - std::begin(fault_names));
  }
  return out;
}

std::string faults_text(uint32_t faults) {
  std::string out;
  for (size_t k = 0; k < fault_kinds; ++k)
    if (faults & (1u << k))
      out += (out.empty() ? "" : ",") + std::string(fault_names[k]);
  return out.empty() ? "none" : out;
}

uint32_t ci_faults() {
  return all_faults;
}

uint32_t ci_failover_faults() {
  // Master crashes more often than among every kind: with the faults that
  // keep agents reachable, so that the failover paths are what is tested.
  return link_duplicate | link_delay | executor_crash | master_crash | framework_failover | stall |
         disk_full;
}

ChaosResult run_chaos(const ChaosConfig& config) {
  Run run(config);
  return run.go();
}

std::string report(const ChaosResult& r, const ChaosConfig& c) {
  std::ostringstream out;
  out << "seed " << r.seed << ": " << r.violations.size() << " violation(s)\n";
  for (const auto& v : r.violations)
    out << "  [" << seconds(v.at) << "s] " << v.invariant << ": " << v.detail << "\n";
  out << "last events:\n";
  for (const auto& e : r.recent)
    out << "  " << e << "\n";
  out << "replay: tessera sim --seed " << r.seed;
  if (c.agents != 10)
    out << " --agents " << c.agents;
  if (c.frameworks != 5)
    out << " --frameworks " << c.frameworks;
  if (c.duration != std::chrono::minutes(10))
    out << " --sim-minutes " << std::chrono::duration<double, std::ratio<60>>(c.duration).count();
  if (c.faults != all_faults)
    out << " --faults " << faults_text(c.faults);
  out << "\n";
  return out.str();
}

}  // namespace tessera::sim
