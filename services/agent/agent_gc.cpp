// Sandbox garbage collection: every gc_interval_ms the agent scans its work
// directory on the blocking pool and removes the sandboxes of ended executor
// runs older than the policy allows (sandbox_gc.hpp).

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/sandbox_gc.hpp"

#include <algorithm>

namespace tessera {

namespace fs = std::filesystem;

void Agent::arm_gc() {
  if (gc_timer_ != 0 || gc_scanning_ || config_.gc_interval_ms.count() <= 0)
    return;
  gc_timer_ = after(config_.gc_interval_ms, [this] {
    gc_timer_ = 0;
    start_gc_scan();
  });
}

void Agent::start_gc_scan() {
  // What runs now is captured here, with the time: a run that starts after
  // this is younger than the scan, so the scan leaves it alone.
  std::set<fs::path> live;
  for (const auto& [key, e] : executors_)
    live.insert(e.sandbox);
  auto now = fs::file_time_type::clock::now();
  sandbox_gc::Policy policy{config_.gc_delay_ms, config_.gc_disk_headroom};
  auto work = [work_dir = config_.work_dir, live = std::move(live), now, policy, this]() {
    auto used = sandbox_gc::disk_used_fraction(work_dir);
    auto max_age = policy.max_age_ms(used ? *used : 0.0);
    auto result = std::make_shared<sandbox_gc::Result>(
        sandbox_gc::scan(work_dir, live, max_age, now, gc_removals_per_scan_max));
    if (!used)
      result->failures.push_back(describe(used.error()));
    // Runs on the actor's thread, like a handler.
    return std::function<void()>([this, result, max_age] {
      gc_scanning_ = false;
      metrics_.gc_scans.fetch_add(1, std::memory_order_relaxed);
      metrics_.gc_sandboxes_removed.fetch_add(result->removed.size(), std::memory_order_relaxed);
      metrics_.gc_failures.fetch_add(result->failures.size(), std::memory_order_relaxed);
      for (const auto& run : result->removed)
        log().info("{}: removed sandbox {} (ended more than {} ms ago)", me().to_string(),
                   run.string(), max_age.count());
      for (const auto& failure : result->failures)
        log().warn("{}: sandbox GC: {}", me().to_string(), failure);
      if (result->expired > gc_removals_per_scan_max)
        log().info("{}: sandbox GC: {} expired sandboxes left for the next scans", me().to_string(),
                   result->expired - gc_removals_per_scan_max);
      // Tasks whose sandbox is gone can no longer be read.
      std::set<fs::path> gone(result->removed.begin(), result->removed.end());
      std::erase_if(completed_, [&](const Completed& c) { return gone.count(c.sandbox) > 0; });
      arm_gc();
    });
  };
  gc_scanning_ = blocking(std::move(work));
  arm_gc();  // only if the pool refused: then retry a whole interval later
}

void Agent::mark_run_ended(const fs::path& sandbox) const {
  // The scan dates a run by its directory's mtime, which nothing else moves
  // once the run's processes are gone.
  std::error_code ec;
  fs::last_write_time(sandbox, fs::file_time_type::clock::now(), ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    log().warn("{}: marking the end of run {}: {}", me().to_string(), sandbox.string(),
               ec.message());
}

}  // namespace tessera
