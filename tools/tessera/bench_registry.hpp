#pragma once
// `tessera bench registry`: what the master's registry costs: the latency of
// one commit (an agent admitted, one at a time), the throughput of batched
// commits (the master's group commit under a registration storm), and the
// time to read everything back (a master's recovery).

#include <cstdint>
#include <string>

namespace tessera::bench {

struct RegistryBenchOptions {
  std::string backend = "sqlite";  // sqlite | memory
  std::string dir;                 // where the SQLite file goes; empty: a new one in /var/tmp
  uint64_t writes = 1'000;         // single-record commits timed
  uint64_t batch = 100;            // records per batched commit
  uint64_t records = 10'000;       // records written in batches, then loaded
  int runs = 3;
  bool json = false;
};

int run_registry_bench(const RegistryBenchOptions& options);

}  // namespace tessera::bench
