#pragma once
// `tessera bench jobs`: the jobs framework's scheduler at scale. A master on
// a node of this process with `agents` simulated agents (sim_agent.hpp:
// tasks run 1 s, nothing runs), and the jobs framework beside it (SQLite
// store in a temporary directory, its /v1 API on a port of its own). Every
// one of `jobs` jobs has the schedule "* * * * *". The framework's wall
// clock is moved to 3 s before each minute (the benchmark does not wait a
// real minute), `minutes` times; each time every job comes due at once.
// Reported (medians of `runs`), from the framework's /v1/info:
//   schedule_lag_ms_p50/p99  a run's time to start after its schedule's time
//   launch_lag_ms_p99        to its task running
//   minute_s                 from a minute's time to every run of it ended

#include <cstdint>

namespace tessera::bench {

struct JobsBenchOptions {
  uint64_t agents = 1000;
  uint64_t jobs = 10'000;
  uint64_t minutes = 3;
  int runs = 3;
  bool json = false;
};

int run_jobs_bench(const JobsBenchOptions& options);

}  // namespace tessera::bench
