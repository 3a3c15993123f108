#pragma once
// HealthPolicy: what a task's health check results mean, after Mesos's
// health checker, with no clock and no processes: the caller runs the checks
// (health_probe.hpp, or a command) and says when each result came, counted
// from the task's start.
//
//  - A failure within the grace period (from the task's start) is ignored,
//    until the first success; after a success the grace no longer applies.
//  - The first counted result, and every change of healthy after it, is
//    reported (the executor sends a RUNNING update with healthy set).
//  - consecutive_failures counted failures in a row kill the task.
//
// Value type; not thread-safe (one task's checks run one at a time).

#include <chrono>
#include <cstdint>
#include <optional>

namespace tessera {

class HealthPolicy {
 public:
  struct Config {
    std::chrono::nanoseconds grace{0};
    uint32_t consecutive_failures = 3;
  };
  struct Verdict {
    bool counted = false;  // false: a failure within the grace period
    bool report = false;   // send an update with this healthy value
    bool healthy = false;
    bool kill = false;  // too many failures: kill the task
  };

  HealthPolicy() = default;
  explicit HealthPolicy(Config config) : config_(config) {}

  Verdict record(bool healthy, std::chrono::nanoseconds since_start);

  // The last reported value; none before the first counted result.
  std::optional<bool> healthy() const { return reported_; }
  uint32_t failures() const { return failures_; }

 private:
  Config config_;
  bool succeeded_ = false;  // once true, the grace period is over
  uint32_t failures_ = 0;   // counted failures in a row
  std::optional<bool> reported_;
};

}  // namespace tessera
