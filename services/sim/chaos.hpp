#pragma once
// The chaos simulation (FoundationDB's simulator, for Tessera): one seed
// builds a whole cluster in deterministic mode (runtime/simulation.hpp) —
// a master with its allocator, N agents (checkpointing to an in-memory
// disk each, services/agent/disk.hpp, which survives their crashes and can
// fill up) whose in-process executors run simulated tasks (services/executor/simulated_tasks.hpp),
// M frameworks of seeded behaviours (sim_framework.hpp) — and a fault schedule drawn from the same
// seed: per link drop, duplicate, delay (reorder); partitions of any pair of nodes, healed later;
// crash and restart of agents, executors, the master (same address) and frameworks (failover with
// their id); master and agent stalls; full disks. World (world.hpp) checks the invariants as it
// runs and at the end, after every fault has healed and a quiet period.
//
// Same seed, same run, same digest: a failing seed is a bug report, and
// `tessera sim --seed S` replays it.

#include "services/sim/world.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace tessera::sim {

// Fault kinds, as bits of ChaosConfig::faults.
enum Fault : uint32_t {
  link_drop = 1u << 0,
  link_duplicate = 1u << 1,
  link_delay = 1u << 2,  // delays drawn per message: reorders too
  partition = 1u << 3,
  agent_crash = 1u << 4,  // the agent's node and its executors; restarted later
  executor_crash = 1u << 5,
  master_crash = 1u << 6,  // restarted at the same address
  framework_failover = 1u << 7,
  stall = 1u << 8,  // master or agent pauses
  // An agent's (in-memory) disk fills up for a while: its checkpoint writes
  // fail, it takes no new task, and it takes them again once there is room.
  disk_full = 1u << 9,
  all_faults = (1u << 10) - 1,
};
// "drop,duplicate,delay,partition,agent-crash,executor-crash,master-crash,
// framework-failover,stall,disk-full", "all" or "none"; Errc::invalid_argument names
// an unknown kind.
expected<uint32_t> parse_faults(const std::string& text);
std::string faults_text(uint32_t faults);

// The fault kinds of CI's two samples (tests/sim/chaos.test.cpp): every
// kind, and master crashes with the kinds that keep agents reachable (so
// that failover itself is what most of that sample tests).
uint32_t ci_faults();
uint32_t ci_failover_faults();

struct ChaosConfig {
  uint64_t seed = 1;
  size_t agents = 10;
  size_t frameworks = 5;
  Duration duration = std::chrono::minutes(10);   // of workload under faults
  Duration healed = std::chrono::seconds(60);     // faults healed, frameworks still launch
  Duration wind_down = std::chrono::seconds(60);  // nothing new launched; reconciles
  uint32_t faults = all_faults;
  Duration fault_every_mean = std::chrono::seconds(15);
  // Test hook: a deliberately wrong fact told to the World at this virtual
  // time (it must then report a violation): "run-twice" starts a process
  // of a running task again; "livelock" starts an actor that messages
  // itself for ever (the run must report it and end).
  std::string inject;
  size_t events = 80;  // the last events kept for a violation's report
};

struct ChaosResult {
  uint64_t seed = 0;
  uint64_t digest = 0;
  uint64_t deliveries = 0;
  uint64_t tasks_started = 0;
  uint64_t faults_injected = 0;
  double sim_seconds = 0;
  std::vector<Violation> violations;
  std::deque<std::string> recent;  // the last events, oldest first
};

ChaosResult run_chaos(const ChaosConfig& config);

// What a violation prints: the seed, each invariant broken, the last events
// and the command that replays the run.
std::string report(const ChaosResult& result, const ChaosConfig& config);

}  // namespace tessera::sim
