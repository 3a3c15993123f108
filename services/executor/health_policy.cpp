#include "services/executor/health_policy.hpp"

namespace tessera {

HealthPolicy::Verdict HealthPolicy::record(bool healthy, std::chrono::nanoseconds since_start) {
  Verdict v;
  if (!healthy && !succeeded_ && since_start < config_.grace)
    return v;  // still starting up: not counted
  v.counted = true;
  v.healthy = healthy;
  v.report = !reported_ || *reported_ != healthy;
  reported_ = healthy;
  if (healthy) {
    succeeded_ = true;
    failures_ = 0;
    return v;
  }
  ++failures_;
  v.kill = failures_ >= config_.consecutive_failures;
  return v;
}

}  // namespace tessera
