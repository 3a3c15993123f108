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
  std::vector<RegistryRole> changed;
  std::string problem;
  switch (call.which()) {
    case wire::OperatorCall::UPDATE_QUOTA:
      problem = update_quota(call.getUpdateQuota(), changed);
      break;
    case wire::OperatorCall::UPDATE_WEIGHTS:
      problem = update_weights(call.getUpdateWeights(), changed);
      break;
    case wire::OperatorCall::TEARDOWN:
      problem = operator_teardown(str(call.getTeardown()));
      break;
    case wire::OperatorCall::KILL_TASK:
      problem = operator_kill(call.getKillTask());
      break;
    case wire::OperatorCall::DEACTIVATE_AGENT:
      problem = deactivate_agent(str(call.getDeactivateAgent()));
      break;
    case wire::OperatorCall::REACTIVATE_AGENT:
      problem = reactivate_agent(str(call.getReactivateAgent()));
      break;
    case wire::OperatorCall::DRAIN_AGENT:
      problem = drain_agent(call.getDrainAgent());
      break;
    case wire::OperatorCall::RESERVE_RESOURCES:
      problem = update_reservation(call.getReserveResources(), true);
      break;
    case wire::OperatorCall::UNRESERVE_RESOURCES:
      problem = update_reservation(call.getUnreserveResources(), false);
      break;
    default:
      problem = "unknown operator call";
  }
  if (!problem.empty()) {
    ++counters_.invalid_calls;
    log().warn("master: refusing operator call from {}: {}", m.sender().to_string(), problem);
    return answer(problem);
  }
  // Answered once what the call changed is recorded (and after every
  // earlier write: persist keeps order).
  persist_roles(std::move(changed), [answer] { answer(""); });
}

std::string Master::update_quota(wire::OperatorCall::UpdateQuota::Reader q,
                                 std::vector<RegistryRole>& changed) {
  auto role = str(q.getRole());
  if (auto problem = role_problem(role); !problem.empty())
    return problem;
  auto limit = from_wire(q.getLimit());
  if (!limit)
    return "bad quota for role '" + role + "': " + what(limit.error());
  for (auto& [name, value] : limit->scalar_totals())
    if (!(value >= 0))
      return "bad quota " + name + " for role '" + role + "'";
  auto it = roles_.find(role);
  auto r = it != roles_.end() ? it->second : RegistryRole{role, 0, {}};
  r.quota = std::move(*limit);
  changed.push_back(std::move(r));
  return {};
}

std::string Master::update_weights(capnp::List<wire::RoleWeight>::Reader weights,
                                   std::vector<RegistryRole>& changed) {
  if (weights.size() == 0)
    return "no weights given";
  for (auto w : weights) {
    auto role = str(w.getRole());
    if (auto problem = role_problem(role); !problem.empty())
      return problem;
    if (!(w.getWeight() > 0) || !std::isfinite(w.getWeight()))
      return "bad weight for role '" + role + "': it must be a number above 0";
    auto it = roles_.find(role);
    auto r = it != roles_.end() ? it->second : RegistryRole{role, 0, {}};
    r.weight = w.getWeight();
    changed.push_back(std::move(r));
  }
  return {};
}

void Master::persist_roles(std::vector<RegistryRole> changed, std::function<void()> then) {
  std::vector<RegistryChange> changes;
  for (auto& r : changed) {
    roles_[r.role] = r;
    changes.push_back(r.weight == 0 && r.quota.empty() ? role_removal(r.role) : role_record(r));
  }
  persist(std::move(changes), [this, changed = std::move(changed), then = std::move(then)] {
    for (auto& r : changed) {
      log().info("master: role {}: weight {}, quota {}", r.role, r.weight == 0 ? 1.0 : r.weight,
                 r.quota.empty() ? "none" : r.quota.to_string());
      apply_role(r);
      mark_role(r.role);
    }
    then();
  });
}

std::string Master::operator_teardown(const FrameworkId& id) {
  if (removed(id))
    return "framework " + id + " was already removed";
  if (!framework(id))
    return "no framework " + id;
  remove_framework(id, "torn down by an operator");
  return {};
}

std::string Master::operator_kill(wire::OperatorCall::KillTask::Reader k) {
  auto fid = str(k.getFrameworkId());
  auto tid = str(k.getTaskId());
  auto* fw = framework(fid);
  if (!fw)
    return "no framework " + fid;
  auto it = fw->tasks.find(tid);
  if (it == fw->tasks.end())
    return "no task " + tid + " of framework " + fid;
  if (is_terminal(it->second.state))
    return "task " + tid + " has already ended (" + to_string(it->second.state) + ")";
  if (k.getGracePeriodNs() < 0)
    return "a grace period cannot be negative";
  log().info("master: an operator kills task {} of {}", tid, fid);
  kill_task(it->second, k.getGracePeriodNs());
  return {};
}

std::string Master::deactivate_agent(const AgentId& id) {
  auto* a = agent(id);
  if (!a || a->state == AgentState::removing)
    return "no agent " + id;
  if (!a->deactivated)
    log().info("master: an operator deactivates agent {}", id);
  a->deactivated = true;
  remove_agent_from_allocator(*a);
  persist_maintenance(*a);
  return {};
}

std::string Master::reactivate_agent(const AgentId& id) {
  auto* a = agent(id);
  if (!a || a->state == AgentState::removing)
    return "no agent " + id;
  if (!a->deactivated)
    return "agent " + id + " is not deactivated";
  log().info("master: an operator reactivates agent {}", id);
  a->deactivated = false;
  a->drain = wire::DrainState::NONE;
  a->drain_grace_ns = 0;
  if (a->state == AgentState::registered && !a->in_allocator)
    add_agent_to_allocator(*a);
  mark_agent(id);
  persist_maintenance(*a);
  return {};
}

std::string Master::drain_agent(wire::OperatorCall::DrainAgent::Reader d) {
  auto id = str(d.getAgentId());
  auto* a = agent(id);
  if (!a || a->state == AgentState::removing)
    return "no agent " + id;
  if (d.getMaxGracePeriodNs() < 0)
    return "a grace period cannot be negative";
  log().info("master: an operator drains agent {} ({} tasks)", id, a->tasks.size());
  a->deactivated = true;
  a->drain = wire::DrainState::DRAINING;
  a->drain_grace_ns = d.getMaxGracePeriodNs();
  remove_agent_from_allocator(*a);
  persist_maintenance(*a);
  for (auto& [fid, tid] : std::set<TaskKey>(a->tasks))
    if (auto* fw = framework(fid))
      if (auto it = fw->tasks.find(tid); it != fw->tasks.end())
        kill_task(it->second, a->drain_grace_ns);
  check_drained(*a);
  return {};
}

void Master::check_drained(AgentEntry& a) {
  if (a.drain != wire::DrainState::DRAINING)
    return;
  for (auto& [fid, tid] : a.tasks)
    if (auto* fw = framework(fid))
      if (auto it = fw->tasks.find(tid); it != fw->tasks.end() && !is_terminal(it->second.state))
        return;
  log().info("master: agent {} is drained", a.id);
  a.drain = wire::DrainState::DRAINED;
  mark_agent(a.id);
  persist_maintenance(a);
}

void Master::persist_maintenance(const AgentEntry& a) {
  auto rec = agent_records_.find(a.id);
  if (rec == agent_records_.end())
    return;  // not admitted yet: nothing of it is recorded
  rec->second.deactivated = a.deactivated;
  rec->second.drain = static_cast<uint8_t>(a.drain);
  rec->second.drain_grace_ns = a.drain_grace_ns;
  persist({agent_record(rec->second)}, [] {});
}

void Master::restore_maintenance(AgentEntry& a) {
  auto rec = agent_records_.find(a.id);
  if (rec == agent_records_.end() || !rec->second.deactivated)
    return;
  a.deactivated = true;
  a.drain = static_cast<wire::DrainState>(rec->second.drain);
  a.drain_grace_ns = rec->second.drain_grace_ns;
  log().info("master: agent {} was {} by an operator before this master started", a.id,
             a.drain == wire::DrainState::NONE ? "deactivated" : "drained");
}

std::string Master::update_reservation(wire::OperatorCall::Reservation::Reader r, bool reserve) {
  auto id = str(r.getAgentId());
  auto* a = agent(id);
  if (!a || a->state == AgentState::removing || a->state == AgentState::admitting)
    return "no agent " + id;
  if (a->state == AgentState::unreachable)
    return "agent " + id + " is unreachable: what runs there is unknown until it is back";
  auto asked = from_wire(r.getResources());
  if (!asked)
    return "bad resources: " + what(asked.error());
  if (asked->empty())
    return "the call names no resources";
  if (!asked->reserved(any_role).empty())
    return "every resource must name the role it is reserved for, not '*' (as cpus(ROLE):1): " +
           asked->reserved(any_role).to_string();
  for (auto& role : asked->roles())
    if (auto problem = role_problem(role); !problem.empty())
      return problem;
  auto rec = agent_records_.find(id);
  if (rec == agent_records_.end())
    return "no agent " + id;
  auto free = free_of_tasks(*a);
  Resources reservations = rec->second.reservations;
  if (reserve) {
    auto flat = asked->flatten();
    if (!free.contains(flat))
      return "agent " + id + " does not have " + flat.to_string() +
             " unreserved and free of tasks (free: " + free.reserved(any_role).to_string() + ")";
    reservations += *asked;
  } else {
    if (!reservations.contains(*asked))
      return "agent " + id + " has no dynamic reservation of " + asked->to_string() +
             " (its dynamic reservations: " +
             (reservations.empty() ? "none" : reservations.to_string()) + ")";
    if (!free.contains(*asked))
      return "tasks on agent " + id + " use part of " + asked->to_string() + "; kill them first";
    reservations -= *asked;
  }
  log().info("master: an operator {} {} on agent {}", reserve ? "reserves" : "unreserves",
             asked->to_string(), id);
  rec->second.reservations = reservations;
  // Out of the pool while the change is written: its offers are rescinded,
  // a grant of the old total still in flight is stale (epoch), and nothing
  // adds it back (a reregistration, a reactivation) before it is durable.
  remove_agent_from_allocator(*a);
  set_advertised(*a, a->advertised);
  ++a->reservation_writes;
  persist({agent_record(rec->second)}, [this, id] {
    auto* back = agent(id);
    if (!back || back->reservation_writes == 0)
      return;
    if (--back->reservation_writes == 0 && back->state == AgentState::registered &&
        !back->in_allocator)
      add_agent_to_allocator(*back);
  });
  return {};
}

Resources Master::free_of_tasks(const AgentEntry& a) const {
  Resources free = a.total;
  for (auto& [fid, tid] : a.tasks) {
    auto fw = frameworks_.find(fid);
    if (fw == frameworks_.end())
      continue;
    auto t = fw->second.tasks.find(tid);
    if (t == fw->second.tasks.end() || t->second.resources_freed)
      continue;
    if (free.contains(t->second.resources))
      free -= t->second.resources;
    else
      free = {};  // the books disagree: nothing is free
  }
  return free;
}

void Master::set_advertised(AgentEntry& a, Resources advertised) {
  a.advertised = std::move(advertised);
  a.total = a.advertised;
  auto rec = agent_records_.find(a.id);
  a.reserved = rec != agent_records_.end() ? rec->second.reservations : Resources{};
  if (a.reserved.empty())
    return;
  // Each reservation (one name and role) is kept whole if what is kept so
  // far and it still fit in what the agent advertises.
  Resources kept, dropped;
  auto consider = [&](Resources one) {
    if (a.advertised.contains((kept + one).flatten()))
      kept += one;
    else
      dropped += one;
  };
  a.reserved.visit(
      [&](const std::string& name, const std::string& role, Milli milli) {
        consider(Resources::scalar(name, double(milli) / 1000.0, role));
      },
      [&](const std::string& name, const std::string& role, const std::vector<Range>& r) {
        consider(Resources::ranges(name, r, role));
      },
      [&](const std::string& name, const std::string& role, const std::set<std::string>& items) {
        consider(Resources::set(name, items, role));
      });
  if (!dropped.empty()) {
    ++counters_.reservations_dropped;
    log().warn(
        "master: agent {} came back with {}, too little for its dynamic reservations {}; "
        "{} dropped, {} kept",
        a.id, a.advertised.to_string(), a.reserved.to_string(), dropped.to_string(),
        kept.empty() ? "none" : kept.to_string());
    a.reserved = kept;
    rec->second.reservations = kept;
    persist({agent_record(rec->second)}, [] {});
  }
  a.total -= a.reserved.flatten();
  a.total += a.reserved;
  log().debug("master: agent {} has dynamic reservations {}", a.id, a.reserved.to_string());
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
