// The master's operator side: the calls of capnp/operator.capnp (the HTTP
// API of issue #10 sends them). What they change is recorded in the
// registry before it is in force, and comes back when a master starts.

#include "services/master/master.hpp"

#include "runtime/log.hpp"

#include <cmath>

namespace tessera {

namespace {

// Empty when role may have a weight or quota of its own.
std::string role_problem(const std::string& role) {
  if (!valid_role(role) || role == any_role || role.size() > registry_id_bytes_max)
    return "bad role '" + role + "'";
  return {};
}

}  // namespace

void Master::on_operator_call(const Received<wire::OperatorCall>& m) {
  auto call = m.body();
  auto answer = [this, env = m.envelope()](const std::string& error) {
    reply_later(env, build<wire::OperatorResponse>(
                         [&](wire::OperatorResponse::Builder b) { b.setError(error); }));
  };
  auto refuse = [&](const std::string& why) {
    ++counters_.invalid_calls;
    log().warn("master: refusing operator call from {}: {}", m.sender().to_string(), why);
    answer(why);
  };
  // The role as recorded, or a new one.
  auto current = [this](const std::string& role) {
    auto it = roles_.find(role);
    return it != roles_.end() ? it->second : RegistryRole{role, 0, {}};
  };
  std::vector<RegistryRole> changed;
  switch (call.which()) {
    case wire::OperatorCall::UPDATE_QUOTA: {
      auto q = call.getUpdateQuota();
      auto role = str(q.getRole());
      if (auto problem = role_problem(role); !problem.empty())
        return refuse(problem);
      auto limit = from_wire(q.getLimit());
      if (!limit)
        return refuse("bad quota for role '" + role + "': " + what(limit.error()));
      for (auto& [name, value] : limit->scalar_totals())
        if (!(value >= 0))
          return refuse("bad quota " + name + " for role '" + role + "'");
      auto r = current(role);
      r.quota = std::move(*limit);
      changed.push_back(std::move(r));
      break;
    }
    case wire::OperatorCall::UPDATE_WEIGHTS: {
      for (auto w : call.getUpdateWeights()) {
        auto role = str(w.getRole());
        if (auto problem = role_problem(role); !problem.empty())
          return refuse(problem);
        if (!(w.getWeight() > 0) || !std::isfinite(w.getWeight()))
          return refuse("bad weight for role '" + role + "': it must be a number above 0");
        auto r = current(role);
        r.weight = w.getWeight();
        changed.push_back(std::move(r));
      }
      break;
    }
    default:
      return refuse("unknown operator call");
  }
  std::vector<RegistryChange> changes;
  for (auto& r : changed) {
    roles_[r.role] = r;
    changes.push_back(r.weight == 0 && r.quota.empty() ? role_removal(r.role) : role_record(r));
  }
  persist(std::move(changes), [this, changed = std::move(changed), answer] {
    for (auto& r : changed) {
      log().info("master: role {}: weight {}, quota {}", r.role, r.weight == 0 ? 1.0 : r.weight,
                 r.quota.empty() ? "none" : r.quota.to_string());
      apply_role(r);
    }
    answer("");
  });
}

void Master::apply_role(const RegistryRole& r) {
  to_allocator(build<wire::AllocatorSetWeight>([&](wire::AllocatorSetWeight::Builder b) {
    b.setRole(r.role);
    b.setWeight(r.weight == 0 ? 1.0 : r.weight);
  }));
  to_allocator(build<wire::AllocatorSetQuota>([&](wire::AllocatorSetQuota::Builder b) {
    b.setRole(r.role);
    to_wire(r.quota, b.initLimit(wire_size(r.quota)));
  }));
}

}  // namespace tessera
