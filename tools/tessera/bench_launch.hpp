#pragma once
// `tessera bench launch`: trivial real tasks (`true`) through the whole path —
// framework → master → agent → executor → process and back — on a local
// cluster in this process; tasks per second and submit-to-RUNNING latency.
// With an isolation kind, a container phase follows in the same cluster:
// `tasks` long-running tasks launched at once, then killed, timing launch,
// kill and container destruction.

#include <cstdint>
#include <string>

namespace tessera::bench {

struct LaunchBenchOptions {
  uint64_t tasks = 1000;
  uint64_t batch = 100;     // tasks per accept, at most
  uint64_t in_flight = 16;  // tasks launched and not yet ended, at most
  int runs = 3;
  bool process_executors = false;  // executors as processes, not actors
  // "cgroups" or "posix": the agent's isolator, and the container phase
  // runs; empty: neither (the agent's default posix isolation).
  std::string isolation;
  bool json = false;
};

int run_launch_bench(const LaunchBenchOptions& options);

}  // namespace tessera::bench
