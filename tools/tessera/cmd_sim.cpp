// `tessera sim`: the chaos simulation (services/sim/chaos.hpp). One seed
// (`--seed S`, which replays a failure exactly) or many (`--seeds N`, seeds
// first..first+N-1 spread over --jobs threads, each seed its own
// deterministic simulation). Prints every violation with its seed, the last
// events and the replay command; exits 1 if any seed found one.

#include "services/sim/chaos.hpp"
#include "tools/tessera/command.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

namespace tessera::cli {

namespace {

struct SimOptions {
  uint64_t seed = 0;  // set: this one seed
  uint64_t seeds = 0;
  uint64_t first_seed = 1;
  size_t agents = 10;
  size_t frameworks = 5;
  double sim_minutes = 10;
  std::string faults = "all";
  unsigned jobs = 0;  // 0: one per core
  bool json = false;
  bool verbose = false;
  size_t events = 80;
};

int run_sim(const SimOptions& o, bool one_seed) {
  auto faults = sim::parse_faults(o.faults);
  if (!faults)
    return fail("--faults: " + what(faults.error()));
  sim::ChaosConfig base;
  base.agents = o.agents;
  base.frameworks = o.frameworks;
  base.duration = seconds(o.sim_minutes * 60);
  base.faults = *faults;
  base.events = o.events;
  uint64_t first = one_seed ? o.seed : o.first_seed;
  uint64_t count = one_seed ? 1 : o.seeds;
  unsigned jobs = o.jobs != 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  jobs = static_cast<unsigned>(std::min<uint64_t>(jobs, count));

  std::atomic<uint64_t> next{0};
  std::mutex mu;
  uint64_t violations = 0;
  double sim_s = 0;
  std::vector<uint64_t> failing;
  auto wall_start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (uint64_t i = next++; i < count; i = next++) {
      auto config = base;
      config.seed = first + i;
      auto r = sim::run_chaos(config);
      std::lock_guard<std::mutex> lock(mu);
      sim_s += r.sim_seconds;
      if (!r.violations.empty()) {
        violations += r.violations.size();
        failing.push_back(r.seed);
        std::fprintf(o.json ? stderr : stdout, "%s", sim::report(r, config).c_str());
      } else if (one_seed || o.verbose) {
        std::fprintf(o.json ? stderr : stdout,
                     "seed %llu: ok, %llu tasks, %llu faults, %llu deliveries\n",
                     static_cast<unsigned long long>(r.seed),
                     static_cast<unsigned long long>(r.tasks_started),
                     static_cast<unsigned long long>(r.faults_injected),
                     static_cast<unsigned long long>(r.deliveries));
      }
      if (one_seed)
        std::fprintf(o.json ? stderr : stdout, "digest %016llx\n",
                     static_cast<unsigned long long>(r.digest));
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < jobs; ++j)
    threads.emplace_back(worker);
  worker();
  for (auto& t : threads)
    t.join();
  double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::sort(failing.begin(), failing.end());
  double rate = wall_s > 0 ? sim_s / wall_s : 0;
  if (o.json) {
    nlohmann::json j;
    j["seeds"] = count;
    j["violations"] = violations;
    j["sim_s_per_wall_s"] = rate;
    j["failing_seeds"] = failing;
    j["wall_s"] = wall_s;
    j["sim_s"] = sim_s;
    j["jobs"] = jobs;
    j["faults"] = sim::faults_text(*faults);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("seeds %llu, violations %llu, sim_s_per_wall_s %.1f (%.1f s wall, %u jobs)\n",
                static_cast<unsigned long long>(count), static_cast<unsigned long long>(violations),
                rate, wall_s, jobs);
  }
  return violations == 0 ? 0 : 1;
}

}  // namespace

Command add_sim_command(CLI::App& app) {
  auto o = std::make_shared<SimOptions>();
  auto* sub = app.add_subcommand(
      "sim", "Chaos simulation: the whole cluster under seeded faults, invariants checked");
  auto* seed = sub->add_option("--seed", o->seed, "Run (replay) this one seed");
  auto* seeds = sub->add_option("--seeds", o->seeds, "Run this many seeds")
                    ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}));
  seed->excludes(seeds);
  sub->add_option("--first-seed", o->first_seed, "With --seeds: the first seed")
      ->capture_default_str();
  sub->add_option("--agents", o->agents, "Agents")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  sub->add_option("--frameworks", o->frameworks, "Frameworks")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  sub->add_option("--sim-minutes", o->sim_minutes, "Simulated minutes under faults per seed")
      ->check(CLI::Range(0.1, 10000.0))
      ->capture_default_str();
  sub->add_option("--faults", o->faults,
                  "Fault kinds: all, none, or a list of drop,duplicate,delay,partition,"
                  "agent-crash,executor-crash,master-crash,framework-failover,stall,disk-full")
      ->capture_default_str();
  sub->add_option("--jobs", o->jobs, "Seeds run at once (threads); 0: one per core")
      ->check(CLI::Range(0u, 256u));
  sub->add_flag("--json", o->json, "Print one JSON object (seeds, violations, sim_s_per_wall_s)");
  sub->add_flag("--verbose", o->verbose, "A line per seed, not only per failing seed");
  sub->add_option("--events", o->events, "Events printed before a seed's first violation")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}))
      ->capture_default_str();
  return Command{sub, [o, seed, seeds, sub] {
                   if (seed->count() == 0 && seeds->count() == 0)
                     return fail("sim: give --seed S or --seeds N");
                   // A seed's faults make its nodes warn by the thousand (an
                   // agent lost, a checkpoint refused); the simulation reports
                   // what broke, with the events before it.
                   quiet_unless_asked(*sub, "off");
                   return run_sim(*o, seed->count() > 0);
                 }};
}

}  // namespace tessera::cli
