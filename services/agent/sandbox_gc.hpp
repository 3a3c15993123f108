#pragma once
// Sandbox garbage collection (Mesos's --gc_delay and --gc_disk_headroom): the
// policy, how long a finished executor run's sandbox may stay, and the scan
// that removes the ones past it. No actor code: the agent (agent_gc.cpp) runs
// scan() on its blocking pool, never on its own thread.
//
// Policy (Mesos's formula): a run's sandbox may stay
//   max_age = delay * max(0, 1 - disk_headroom - disk_used_fraction)
// after its run ended, so a filling disk shortens every sandbox's life and a
// disk within disk_headroom of full keeps none. A run's end is its
// directory's mtime: the agent touches it when the executor ends, and it
// survives agent restarts.
//
// Scan contracts:
//  1. Only directories <work_dir>/frameworks/*/executors/*/runs/* are ever
//     removed whole; symlinks are never followed. Executor and framework
//     directories go only when the removals left them empty (rmdir, so one
//     that gained a run meanwhile stays; a launch that races the removal of
//     its executor's empty directory may fail to make its sandbox, and fails
//     its tasks).
//  2. A run in `live` (the agent's running executors when the scan began)
//     stays, and so does one younger than fresh_age_min: a run created after
//     the scan began is not in `live`, and file times use the kernel's coarse
//     clock, so it may look a little older than the scan.
//  3. At most removals_max runs are removed per scan, the oldest first; the
//     rest wait for the next scan.
//  4. Nothing throws; every file system error is reported in Result::failures.

#include "runtime/error.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace tessera::sandbox_gc {

namespace fs = std::filesystem;

inline constexpr std::chrono::milliseconds fresh_age_min{100};

struct Policy {
  std::chrono::milliseconds delay_ms{std::chrono::hours(24 * 7)};
  double disk_headroom = 0.1;  // in [0, 1)

  // How long a finished run's sandbox may stay with the disk this full (a
  // fraction in [0, 1]; out-of-range values are clamped).
  std::chrono::milliseconds max_age_ms(double disk_used_fraction) const;
};

// The used fraction of the file system that holds dir, in [0, 1].
expected<double> disk_used_fraction(const fs::path& dir);

struct Result {
  std::vector<fs::path> removed;      // run directories, oldest first
  std::vector<std::string> failures;  // one line each
  size_t expired = 0;                 // runs past max_age, removed or left for later
};

// Removes the finished runs under work_dir older than max_age at `now`.
Result scan(const fs::path& work_dir, const std::set<fs::path>& live,
            std::chrono::milliseconds max_age, fs::file_time_type now, size_t removals_max);

}  // namespace tessera::sandbox_gc
