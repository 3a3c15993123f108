// Master::view(): a read-only copy of the books for the chaos simulation's
// invariant checks (services/sim/invariants.hpp).
//
// Why a direct read and not a snapshot message: in deterministic mode the
// simulation reads between steps, on its one thread, when no handler runs,
// so the read is race-free; a message would add deliveries to the run it is
// checking (changing its interleaving and digest) and could itself be
// dropped or delayed by the fault schedule.

#include "services/master/master.hpp"

#include <algorithm>

namespace tessera {

MasterView Master::view() const {
  MasterView v;
  for (const auto& [id, a] : agents_) {
    MasterView::Agent out;
    out.id = id;
    out.address = a.address;
    out.registered = a.state == AgentState::registered;
    out.in_allocator = a.in_allocator;
    out.total = a.total;
    for (const auto& oid : a.offers)
      if (auto it = offers_.find(oid); it != offers_.end())
        out.offered += it->second.resources;
    v.agents.push_back(std::move(out));
  }
  std::sort(v.agents.begin(), v.agents.end(),
            [](const auto& x, const auto& y) { return x.id < y.id; });
  for (const auto& [fid, fw] : frameworks_) {
    if (fw.connected)
      v.frameworks_connected.push_back(fid);
    for (const auto& entry : fw.tasks) {
      const auto& tid = entry.first;
      const auto& t = entry.second;
      v.tasks.push_back(MasterView::Task{fid, tid, t.agent, t.state, t.resources_freed});
      if (t.resources_freed)
        continue;
      auto it = std::find_if(v.agents.begin(), v.agents.end(),
                             [&](const auto& a) { return a.id == t.agent; });
      if (it != v.agents.end())
        it->used += t.resources;
    }
  }
  std::sort(v.frameworks_connected.begin(), v.frameworks_connected.end());
  return v;
}

bool Master::told_ended(const std::string& framework_id, const std::string& task_id) const {
  if (auto fw = frameworks_.find(framework_id); fw != frameworks_.end())
    if (auto t = fw->second.tasks.find(task_id); t != fw->second.tasks.end())
      return is_terminal(t->second.state);
  return recently_completed({framework_id, task_id});
}

}  // namespace tessera
