#pragma once
// Isolators: the mechanism that turns an executor run into a container
// (Mesos's containerizer isolators). A container is named by its executor
// run's id; the agent decides what limits it gets and what to do about a
// limitation (policy), an isolator only makes, measures and destroys.
//
//   prepare(id, limits) -> Placement   before the container's first process
//   the agent spawns with placement.cgroups / placement.env (ProcessSpec)
//   usage(id)                          at any time
//   destroy(id)                        kills every process in it, removes it
//
// Kinds:
//  - cgroups-v1: a directory per container in the cpu, cpuacct, memory, pids
//    and freezer hierarchies under <mount>/<root>/<scope>/<id>. CPU share and
//    CFS quota from cpus, memory.limit_in_bytes from mem, pids.max. The kernel
//    enforces; OOM kills are read from memory.oom_control.
//  - cgroups-v2: the same under the unified hierarchy (cpu.max, cpu.weight,
//    memory.max, pids.max, memory.events, cgroup.kill).
//  - posix: no kernel isolation. Processes carry TESSERA_CONTAINER=<scope>/<id> in
//    their environment; usage sums /proc over the processes that carry it, and
//    the agent enforces the memory limit itself by polling. A process that
//    clears its environment escapes.
//
// scope keeps agents that share a machine (tests, several agents on a host)
// out of each other's containers: one agent only ever lists and destroys
// containers under its own scope.
// Thread-safety: an isolator holds only its configuration; every member may
// be called from any thread, for different containers at once. destroy()
// blocks (it waits for the processes to die) and usage() may scan /proc:
// call them off the actor thread (the agent uses the blocking pool's
// container and usage lanes).

#include "runtime/error.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tessera {

struct ContainerLimits {
  uint64_t cpus_milli = 0;  // 0: not limited
  uint64_t mem_bytes = 0;   // 0: not limited
  uint32_t pids_max = 0;    // 0: not limited
};

// What a container's first process needs to start inside it.
struct Placement {
  std::vector<std::string> cgroups;  // directories to join (ProcessSpec::cgroups)
  std::vector<std::string> env;      // KEY=VALUE entries its processes carry
};

struct ContainerStats {
  uint64_t cpu_time_ns = 0;  // user + system, of every process it ever had
  uint64_t mem_rss_bytes = 0;
  uint64_t mem_peak_bytes = 0;  // posix: the sum of each living process's peak (VmHWM)
  uint32_t processes = 0;
  uint32_t oom_kills = 0;  // by the kernel (cgroups); posix: always 0
};

struct IsolationConfig {
  std::string kind = "auto";  // "cgroups", "posix" or "auto" (cgroups when writable)
  std::filesystem::path cgroups_mount = "/sys/fs/cgroup";
  std::string cgroups_root = "tessera";
  std::string scope;  // one path component, unique per agent and stable across restarts
  std::chrono::milliseconds destroy_timeout_ms{10000};
};

class Isolator {
 public:
  virtual ~Isolator() = default;

  // "cgroups-v1", "cgroups-v2" or "posix".
  virtual const char* name() const = 0;

  // Makes the container with these limits. An id that exists already is
  // reused with the new limits (a retried launch). Fails without leaving
  // anything behind.
  virtual expected<Placement> prepare(const std::string& id, const ContainerLimits& limits) = 0;

  virtual expected<ContainerStats> usage(const std::string& id) const = 0;

  // Only oom_kills and mem_peak_bytes, from at most two cgroup control files
  // (kernfs: no disk, no /proc scan), cheap enough for an actor's thread.
  // Posix: zeros (no kernel limit to hit; the agent finds its own by polling
  // usage() on the blocking pool).
  virtual expected<ContainerStats> oom_state(const std::string& id) const = 0;

  // usage() of many containers at once (the agent's periodic check); those
  // that do not exist are left out. Posix reads /proc once for all of them.
  virtual std::map<std::string, ContainerStats> usage_of(const std::vector<std::string>& ids) const;

  // Kills every process in the container, waits (up to destroy_timeout_ms)
  // until none is left, and removes it. An unknown id is not an error.
  virtual caf::error destroy(const std::string& id) = 0;

  // The containers under this isolator's scope that exist now.
  virtual std::vector<std::string> containers() const = 0;

  // Removes the scope's own directories if no container is left in them
  // (the agent's clean stop; the destructor does it too). Best effort.
  virtual void release() {}
};

// An --isolation flag: "cgroups", "posix" or "auto", optionally with
// ",pid-ns" (a PID namespace per task). Sets config.kind and pid_namespace.
caf::error parse_isolation(const std::string& text, IsolationConfig& config, bool& pid_namespace);

// The isolator config.kind asks for. "auto" falls back to posix when cgroups
// are not available and says why in *warning; "cgroups" then is an error.
expected<std::unique_ptr<Isolator>> make_isolator(const IsolationConfig& config,
                                                  std::string* warning);

}  // namespace tessera
