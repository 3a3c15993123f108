#pragma once
// `tessera bench state`: a master on a node of this process with `agents`
// simulated agents (actors that register, answer pings and report their
// tasks RUNNING; no processes, nothing written) and one framework that
// fills them with `tasks` tasks and then declines every offer, so that the
// allocator keeps working. Through the real HTTP edge, reported:
//   state_ms_p50         GET_STATE, request to last byte (10 requests)
//   state_bytes          its size
//   cycle_ms_p50_idle    the allocator's cycle p50 (its last 64 cycles)
//   cycle_ms_p50_polled  the same while 20 clients poll GET_STATE in a loop
//   streams_extra_mib    resident memory added by `streams` idle SUBSCRIBE
//                        streams once each has read its snapshot
// Medians of `runs`.

#include <cstdint>

namespace tessera::bench {

struct StateBenchOptions {
  uint64_t agents = 10'000;
  uint64_t tasks = 100'000;
  uint64_t streams = 1000;
  double phase_s = 10;  // each cycle measurement's window
  int runs = 3;
  bool json = false;
};

int run_state_bench(const StateBenchOptions& options);

}  // namespace tessera::bench
