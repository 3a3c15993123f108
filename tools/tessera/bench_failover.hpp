#pragma once
// `tessera bench failover`: three `tessera master --zk` processes, `agents`
// agents in this process (simulated tasks, checkpoints in memory) and a
// framework that keeps `tasks` tasks running, all following the leader
// through ZooKeeper. The leader is killed with SIGKILL; reported:
//   elected_ms       kill -> ZooKeeper names another leader (the dead
//                    leader's session expiring is most of it)
//   failover_ms      kill -> the framework's first offers from the new leader
//   reregistered_ms  kill -> every agent reregistered with the new leader
//   tasks_lost       tasks that ended (any terminal state) across the failover
// Medians of `runs`; each run has masters, agents and a ZooKeeper path of
// its own.

#include <cstdint>
#include <string>

namespace tessera::bench {

struct FailoverBenchOptions {
  uint64_t agents = 1000;
  uint64_t tasks = 10000;
  int runs = 3;
  // zk://HOSTS/PATH of a running ensemble; empty: tools/zk.sh starts three
  // servers for the benchmark (found next to the source tree).
  std::string zk;
  int session_timeout_ms = 1000;  // the masters' ZooKeeper sessions
  std::string self_path;          // the `tessera` binary, for the masters
  bool json = false;
};

int run_failover_bench(const FailoverBenchOptions& options);

}  // namespace tessera::bench
