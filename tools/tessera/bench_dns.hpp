#pragma once
// `tessera bench dns`: the DNS server beside a master on a node of this
// process, simulated agents (tools/tessera/sim_agent.hpp: no processes)
// and one framework that fills them with `tasks` tasks, each with one port.
// Reported (medians of `runs`):
//   freshness_ms_p50/p99  a task RUNNING at the master (the agent's status
//                         update, timestamped as it is sent) until a UDP
//                         query for its name gets its A record; `samples`
//                         tasks launched one at a time once the rest run
//   queries_per_s         dnsperf (Debian dnsperf) against the server
//                         holding every task's records, `dnsperf_s` seconds,
//                         random A and SRV names of the tasks; with
//                         queries_lost_pct and noerror_pct (every name
//                         asked exists, so anything else is an error)
//   records               A and SRV records the table holds
//   bytes_per_record      heap the table takes (malloc's in-use bytes
//                         before and after the feed applied every task) per
//                         record; bytes_per_task the same per task
//   load_s                from the first launch to every task resolvable

#include <cstdint>

namespace tessera::bench {

struct DnsBenchOptions {
  uint64_t tasks = 100'000;
  uint64_t agents = 1'000;
  uint64_t samples = 200;
  double dnsperf_s = 10;
  int runs = 3;
  bool json = false;
};

int run_dns_bench(const DnsBenchOptions& options);

}  // namespace tessera::bench
