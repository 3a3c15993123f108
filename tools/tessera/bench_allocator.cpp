#include "tools/tessera/bench_allocator.hpp"

#include "services/allocator/allocator.hpp"
#include "tools/tessera/bench_report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace tessera::bench {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One run: add frameworks and agents, then cycles in which every offer made is
// declined with a long filter, so each cycle offers every agent to a framework
// that has not yet declined it (Mesos's DeclineOffers).
Row run_once(const AllocatorBenchOptions& o, const Resources& agent_resources) {
  auto made = Allocator::make();
  if (!made)
    throw std::runtime_error(describe(made.error()));
  auto& a = **made;
  for (uint64_t i = 0; i < o.frameworks; ++i)
    if (auto err = a.add_framework("framework-" + std::to_string(i),
                                   {"role-" + std::to_string(i % o.roles)}))
      throw std::runtime_error(describe(err));
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < o.agents; ++i)
    if (auto err = a.add_agent("agent-" + std::to_string(i), agent_resources))
      throw std::runtime_error(describe(err));
  Row row;
  row["add_agents_ms"] = ms_since(t0);
  std::vector<double> cycles, declines;
  double offers = 0;
  TimePoint now{};
  for (uint64_t c = 0; c < o.cycles; ++c) {
    now += 1s;
    auto start = Clock::now();
    auto grants = a.allocate(now);
    cycles.push_back(ms_since(start));
    offers += static_cast<double>(grants.size());
    start = Clock::now();
    for (auto& g : grants)
      static_cast<void>(a.decline(g.framework, g.agent, g.role, g.resources, 24h, now));
    declines.push_back(ms_since(start));
  }
  row["cycle_ms_p50"] = median(cycles);
  row["cycle_ms_max"] = *std::max_element(cycles.begin(), cycles.end());
  row["decline_all_ms_p50"] = median(declines);
  row["offers_per_cycle"] = offers / static_cast<double>(o.cycles);
  return row;
}

void print_table(const Row& m, const AllocatorBenchOptions& o) {
  std::printf(
      "tessera bench allocator: %llu agents, %llu frameworks in %llu roles, %llu cycles,\n"
      "median of %d run(s), on %u cores\n\n",
      static_cast<unsigned long long>(o.agents), static_cast<unsigned long long>(o.frameworks),
      static_cast<unsigned long long>(o.roles), static_cast<unsigned long long>(o.cycles), o.runs,
      std::thread::hardware_concurrency());
  std::printf("%-34s %12.2f ms\n", "add all agents", m.at("add_agents_ms"));
  std::printf("%-34s %12.2f ms\n", "allocation cycle p50", m.at("cycle_ms_p50"));
  std::printf("%-34s %12.2f ms\n", "allocation cycle max", m.at("cycle_ms_max"));
  std::printf("%-34s %12.2f ms\n", "declining one cycle's offers p50", m.at("decline_all_ms_p50"));
  std::printf("%-34s %12.0f\n", "offers per cycle", m.at("offers_per_cycle"));
}

}  // namespace

int run_allocator_bench(const AllocatorBenchOptions& o) {
  auto agent_resources = Resources::parse("cpus:16;mem:65536;disk:1000000;ports:[31000-32000]");
  if (!agent_resources) {
    std::fprintf(stderr, "tessera bench allocator: %s\n",
                 describe(agent_resources.error()).c_str());
    return 1;
  }
  return report_medians(
      "allocator", o.runs, o.json,
      {{"agents", o.agents},
       {"frameworks", o.frameworks},
       {"roles", o.roles},
       {"cycles", o.cycles}},
      [&](int) { return run_once(o, *agent_resources); }, [&](const Row& m) { print_table(m, o); });
}

}  // namespace tessera::bench
