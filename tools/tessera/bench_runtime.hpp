#pragma once
// `tessera bench runtime`: message throughput and latency of the runtime, in
// one process and across two, against plain CAF measured in the same run.

#include <cstdint>
#include <map>
#include <string>

namespace tessera::bench {

struct RuntimeBenchOptions {
  uint64_t messages = 1'000'000;  // one-way messages per measurement
  uint64_t round_trips = 10'000;  // request/response samples per measurement
  int runs = 3;                   // repetitions; the median is reported
  bool json = false;
  std::string self_path;  // this executable, to start the peer process
};

// Runs the benchmark and prints a table or JSON. Returns a process exit code.
int run_runtime_bench(const RuntimeBenchOptions& options);

// The peer process of the cross-process measurements (hidden subcommand).
int run_runtime_bench_peer();

}  // namespace tessera::bench
