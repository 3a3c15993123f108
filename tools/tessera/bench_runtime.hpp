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
  // Also across processes over mutual TLS (tls_xproc_* beside xproc_*), with
  // certificates from a throwaway CA.
  bool tls = false;
};

// Runs the benchmark and prints a table or JSON. Returns a process exit code.
int run_runtime_bench(const RuntimeBenchOptions& options);

// The peer process of the cross-process measurements (hidden subcommand).
// tls_dir: a directory with ca.crt and peer.crt/.key for a TLS peer; empty:
// plaintext.
int run_runtime_bench_peer(const std::string& tls_dir);

}  // namespace tessera::bench
