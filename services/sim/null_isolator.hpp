#pragma once
// NullIsolator: containers that hold nothing, for agents whose tasks are
// simulated processes (nothing to limit, nothing to kill, no /proc scans).

#include "services/agent/isolator.hpp"

namespace tessera::sim {

class NullIsolator : public Isolator {
 public:
  const char* name() const override { return "simulated"; }
  expected<Placement> prepare(const std::string&, const ContainerLimits&) override {
    return Placement{};
  }
  expected<ContainerStats> usage(const std::string&) const override { return ContainerStats{}; }
  expected<ContainerStats> oom_state(const std::string&) const override { return ContainerStats{}; }
  caf::error destroy(const std::string&) override { return caf::none; }
  std::vector<std::string> containers() const override { return {}; }
};

}  // namespace tessera::sim
