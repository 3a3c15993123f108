#pragma once
// `tessera bench allocator`: the cost of allocation cycles at datacenter scale,
// in the shape of Mesos's DeclineOffers benchmark.

#include <cstdint>

namespace tessera::bench {

struct AllocatorBenchOptions {
  uint64_t agents = 10'000;
  uint64_t frameworks = 1'000;
  uint64_t roles = 10;   // frameworks are spread over this many roles
  uint64_t cycles = 20;  // measured cycles per run
  int runs = 3;          // repetitions; medians are reported
  bool json = false;
};

int run_allocator_bench(const AllocatorBenchOptions& options);

}  // namespace tessera::bench
