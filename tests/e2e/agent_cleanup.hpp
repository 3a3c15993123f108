#pragma once
// For tests that SIGKILL a `tessera agent` and do not start it again: what
// the agent would have cleaned up on a clean stop, its containers' cgroups
// (and their processes), removed by the test itself.

#include "services/agent/agent.hpp"
#include "services/agent/isolator.hpp"

#include <filesystem>

namespace tessera::testing {

inline void destroy_agent_containers(const std::filesystem::path& work_dir) {
  IsolationConfig c;
  c.kind = "cgroups";
  c.scope = isolation_scope(work_dir);
  auto isolator = make_isolator(c, nullptr);
  if (!isolator)
    return;  // no cgroups here: the agent used posix isolation, nothing on disk
  for (const auto& id : (*isolator)->containers())
    (*isolator)->destroy(id);
  (*isolator)->release();
}

}  // namespace tessera::testing
