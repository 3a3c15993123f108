// The master's framework side: the calls of capnp/scheduler.capnp, framework
// failover and removal, heartbeats.

#include "services/master/master.hpp"

#include "runtime/log.hpp"

#include <algorithm>

namespace tessera {

namespace {

constexpr size_t framework_name_bytes_max = 1024;
constexpr size_t roles_per_framework_max = 64;
constexpr size_t reconcile_tasks_max = 10'000;
constexpr size_t message_bytes_max = size_t{1} << 20;

}  // namespace

void Master::refuse_call(const Address& from, const std::string& why) {
  ++counters_.invalid_calls;
  log().warn("master: refusing call from {}: {}", from.to_string(), why);
  send(from,
       build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) { b.setError(why); }));
}

void Master::on_call(const Received<wire::SchedulerCall>& m) {
  auto call = m.body();
  if (call.isSubscribe())
    return subscribe(m.sender(), sender_principal(), call.getSubscribe());
  auto fid = str(call.getFrameworkId());
  if (frameworks_removing_.count(fid))
    return;  // being removed: nothing it asks is done any more
  auto* fw = framework(fid);
  if (!fw || !fw->connected || fw->address != m.sender())
    return refuse_call(m.sender(),
                       "framework '" + fid + "' is not subscribed from " + m.sender().to_string());
  // Over TLS a framework acts only on its own id: the one its certificate's
  // principal subscribed.
  if (const auto* who = sender_principal();
      who && who->role == "framework" && who->name != fw->principal)
    return refuse_call(m.sender(), who->to_string() + " may not act for framework '" + fid +
                                       "' of principal '" + fw->principal + "'");
  switch (call.which()) {
    case wire::SchedulerCall::TEARDOWN:
      return remove_framework(fid, "torn down by the framework");
    case wire::SchedulerCall::ACCEPT:
      return accept(*fw, call.getAccept());
    case wire::SchedulerCall::DECLINE:
      return decline(*fw, call.getDecline().getOfferIds(),
                     call.getDecline().getFilters().getRefuseSeconds());
    case wire::SchedulerCall::REVIVE:
      mark_framework(fid);
      if (call.getRevive().getRoles().size() == 0)
        fw->suppressed_roles.clear();
      for (auto r : call.getRevive().getRoles())
        fw->suppressed_roles.erase(str(r));
      return to_allocator(build<wire::AllocatorRevive>([&](wire::AllocatorRevive::Builder b) {
        b.setFrameworkId(fid);
        b.setRoles(call.getRevive().getRoles());
      }));
    case wire::SchedulerCall::SUPPRESS:
      mark_framework(fid);
      if (call.getSuppress().getRoles().size() == 0)
        fw->suppressed_roles.insert(fw->roles.begin(), fw->roles.end());
      for (auto r : call.getSuppress().getRoles())
        fw->suppressed_roles.insert(str(r));
      return to_allocator(build<wire::AllocatorSuppress>([&](wire::AllocatorSuppress::Builder b) {
        b.setFrameworkId(fid);
        b.setRoles(call.getSuppress().getRoles());
      }));
    case wire::SchedulerCall::KILL:
      return kill(*fw, call.getKill());
    case wire::SchedulerCall::SHUTDOWN:
      return shutdown_executor(*fw, call.getShutdown());
    case wire::SchedulerCall::ACKNOWLEDGE:
      return acknowledge(*fw, call.getAcknowledge());
    case wire::SchedulerCall::RECONCILE:
      return reconcile(*fw, call.getReconcile());
    case wire::SchedulerCall::MESSAGE:
      return relay_message(*fw, call.getMessage());
    default:
      return refuse_call(m.sender(), "unknown call");
  }
}

void Master::subscribe(const Address& from, const PeerIdentity* who,
                       wire::SchedulerCall::Subscribe::Reader s) {
  auto info = s.getFrameworkInfo();
  // Over TLS a framework's principal is its certificate's: a FrameworkInfo
  // naming another is refused, one naming none takes it. (A framework in this
  // master's own process names its own.)
  std::string principal = str(info.getPrincipal());
  if (who && who->role == "framework") {
    if (!principal.empty() && principal != who->name)
      return refuse_call(from, "FrameworkInfo.principal '" + principal +
                                   "' is not the certificate's '" + who->name + "'");
    principal = who->name;
  }
  auto fid = str(info.getFrameworkId());
  std::vector<std::string> roles;
  for (auto r : info.getRoles())
    roles.push_back(str(r));
  if (roles.empty())
    roles.push_back(std::string(any_role));
  if (roles.size() > roles_per_framework_max)
    return refuse_call(from, "too many roles");
  for (auto& r : roles)
    if (!valid_role(r))
      return refuse_call(from, "invalid role '" + r + "'");
  for (auto r : s.getSuppressedRoles())
    if (std::find(roles.begin(), roles.end(), str(r)) == roles.end())
      return refuse_call(from, "suppressed role '" + str(r) + "' is not one of its roles");
  if (info.getName().size() > framework_name_bytes_max)
    return refuse_call(from, "framework name too long");
  auto subscription = str(s.getSubscriptionId());
  if (fid.empty() && !subscription.empty())
    if (auto it = framework_by_subscription_.find(subscription);
        it != framework_by_subscription_.end() && framework(it->second)) {
      // A retry of a first subscribe this master already answered (the
      // answer was late or lost): the same framework, not a second one.
      fid = it->second;
      ++counters_.frameworks_duplicate_subscribes;
      log().info("master: subscribe retried from {}; it is framework {}", from.to_string(), fid);
    }
  if (fid.size() > registry_id_bytes_max)
    return refuse_call(
        from, "framework id longer than " + std::to_string(registry_id_bytes_max) + " bytes");
  if (!fid.empty() && removed(fid))
    return refuse_call(from, "framework " + fid + " has been removed");
  if (info.getFailoverTimeoutNs() < 0)
    return refuse_call(from, "negative failover timeout");
  // A subscribe whose record is being written (or the framework's removal):
  // the retry is answered by what the registry then says.
  if (subscribing_.count(fid.empty() ? subscription : fid) || frameworks_removing_.count(fid))
    return;

  FrameworkEntry* fw = fid.empty() ? nullptr : framework(fid);
  bool fresh = fw == nullptr;
  // Checked before anything changes: a refused resubscribe leaves the
  // framework as it was. (Changing roles needs the allocator to move the
  // framework's allocations; a later issue.)
  if (!fresh && fw->roles != roles)
    return refuse_call(from, "a framework cannot change its roles on resubscribe yet");
  if (config_.authorizer)
    for (const auto& role : roles)
      if (auto d =
              config_.authorizer->authorize(principal, security::Action::register_frameworks, role);
          !d)
        return refuse_call(from, "not authorized: " + d.reason);
  if (!fresh && who && who->role == "framework" && fw->principal != principal)
    return refuse_call(from, "framework " + fid + " belongs to principal '" + fw->principal +
                                 "', not '" + principal + "'");
  if (fresh && frameworks_.size() >= config_.frameworks_max)
    return refuse_call(from, "too many frameworks");
  if (fid.empty())
    fid = next_id('F');
  // Recorded (new, or with new info) before it is answered.
  RegistryFramework record;
  record.id = fid;
  record.name = str(info.getName());
  record.user = str(info.getUser());
  record.principal = principal;
  record.roles = roles;
  record.failover_timeout_ns = info.getFailoverTimeoutNs();
  for (auto c : info.getCapabilities())
    record.capabilities.push_back(c);
  auto known = framework_records_.find(fid);
  if (known == framework_records_.end() || !(known->second == record)) {
    auto key = str(info.getFrameworkId()).empty() && !subscription.empty() ? subscription : fid;
    subscribing_[key] = fid;
    framework_records_[fid] = record;
    persist({framework_record(record)},
            [this, from, key, fid, kept = Kept<wire::SchedulerCall::Subscribe>(s)] {
              subscribing_.erase(key);
              admit_framework(from, kept.get(), fid);
            });
    return;
  }
  admit_framework(from, s, fid);
}

void Master::admit_framework(const Address& from, wire::SchedulerCall::Subscribe::Reader s,
                             FrameworkId fid) {
  auto info = s.getFrameworkInfo();
  auto subscription = str(s.getSubscriptionId());
  std::vector<std::string> roles;
  for (auto r : info.getRoles())
    roles.push_back(str(r));
  if (roles.empty())
    roles.push_back(std::string(any_role));
  if (removed(fid))
    return refuse_call(from, "framework " + fid + " has been removed");
  FrameworkEntry* fw = framework(fid);
  bool fresh = fw == nullptr;
  if (!fresh && fw->roles != roles)
    return refuse_call(from, "a framework cannot change its roles on resubscribe yet");
  if (fresh) {
    if (frameworks_.size() >= config_.frameworks_max)
      return refuse_call(from, "too many frameworks");
    fw = &frameworks_.emplace(fid, FrameworkEntry{}).first->second;
    fw->id = fid;
  } else if (fw->address && *fw->address != from) {
    // Failover: the new instance wins; the old one is told and forgotten.
    if (fw->connected)
      send(*fw->address, build<wire::SchedulerEvent>([](wire::SchedulerEvent::Builder b) {
        b.setError("framework failed over to another instance");
      }));
    framework_at_.erase(*fw->address);
    unwatch(*fw->address);
  }
  if (!fresh) {
    // Offers made before this subscribe: the instance subscribing now may
    // never have seen them (a new instance, or one whose earlier answer
    // was lost), so they would stay out of the pool for ever.
    for (auto& id : std::set<OfferId>(fw->offers))
      rescind(id, true);
  }
  if (fw->subscription_id != subscription) {
    if (auto it = framework_by_subscription_.find(fw->subscription_id);
        it != framework_by_subscription_.end() && it->second == fid)
      framework_by_subscription_.erase(it);
    fw->subscription_id = subscription;
    if (!subscription.empty())
      framework_by_subscription_[subscription] = fid;
  }
  if (fw->failover_timer) {
    cancel(fw->failover_timer);
    fw->failover_timer = 0;
  }
  bool in_allocator = !fresh;  // known frameworks are already in the allocator
  fw->name = str(info.getName());
  fw->user = str(info.getUser());
  auto record = framework_records_.find(fid);
  fw->principal =
      record != framework_records_.end() ? record->second.principal : str(info.getPrincipal());
  fw->roles = roles;
  fw->failover_timeout = Duration(info.getFailoverTimeoutNs());
  fw->capabilities.clear();
  for (auto c : info.getCapabilities())
    fw->capabilities.insert(c);
  fw->address = from;
  fw->connected = true;
  fw->registered_at_ns = timestamp_ns(node());
  mark_framework(fid);
  framework_at_[from] = fid;
  watch(from);
  ++counters_.frameworks_subscribed;
  if (!in_allocator) {
    to_allocator(build<wire::AllocatorAddFramework>([&](wire::AllocatorAddFramework::Builder b) {
      b.setFrameworkId(fid);
      auto list = b.initRoles(static_cast<unsigned>(roles.size()));
      for (unsigned i = 0; i < roles.size(); ++i)
        list.set(i, roles[i]);
    }));
  } else {
    // Back from a disconnection (suppressed as a whole meanwhile).
    to_allocator(build<wire::AllocatorRevive>(
        [&](wire::AllocatorRevive::Builder b) { b.setFrameworkId(fid); }));
  }
  fw->suppressed_roles.clear();
  for (auto r : s.getSuppressedRoles())
    fw->suppressed_roles.insert(str(r));
  if (s.getSuppressedRoles().size() > 0)
    to_allocator(build<wire::AllocatorSuppress>([&](wire::AllocatorSuppress::Builder b) {
      b.setFrameworkId(fid);
      b.setRoles(s.getSuppressedRoles());
    }));
  log().info("master: framework {} ({}) subscribed from {}{}", fid, fw->name, from.to_string(),
             fresh ? "" : " (resubscribed)");
  send(from, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
         auto sub = b.initSubscribed();
         sub.setFrameworkId(fid);
         sub.setHeartbeatIntervalNs(config_.framework_heartbeat_interval.count());
         sub.initMasterInfo().setAddress(me().to_string());
       }));
}

void Master::framework_disconnected(FrameworkEntry& fw) {
  if (!fw.connected)
    return;
  log().info("master: framework {} disconnected; failover timeout {} s", fw.id,
             std::chrono::duration<double>(fw.failover_timeout).count());
  fw.connected = false;
  mark_framework(fw.id);
  for (auto& id : std::set<OfferId>(fw.offers))
    rescind(id, false);
  to_allocator(build<wire::AllocatorSuppress>(
      [&](wire::AllocatorSuppress::Builder b) { b.setFrameworkId(fw.id); }));
  auto id = fw.id;
  fw.failover_timer = after(fw.failover_timeout, [this, id] {
    if (auto* f = framework(id)) {
      f->failover_timer = 0;
      if (!f->connected)
        remove_framework(id, "failover timeout expired");
    }
  });
}

void Master::remove_framework(const FrameworkId& id, const std::string& why) {
  auto* fw = framework(id);
  if (!fw || frameworks_removing_.count(id))
    return;
  // Recorded removed before its tasks are killed: no later master lets it
  // back. Its calls are ignored meanwhile.
  frameworks_removing_.insert(id);
  auto record = framework_record_of(*fw);
  record.removed = true;
  record.reason = why;
  record.order = removal_order_++;
  framework_records_[id] = record;
  persist({framework_record(record)}, [this, id, why] {
    frameworks_removing_.erase(id);
    removed_framework(id, why);
  });
}

void Master::removed_framework(const FrameworkId& id, const std::string& why) {
  auto* fw = framework(id);
  if (!fw)
    return;
  log().info("master: removing framework {}: {}", id, why);
  mark_framework(id);
  ++counters_.frameworks_removed;
  for (auto& oid : std::set<OfferId>(fw->offers))
    rescind(oid, false);
  if (fw->failover_timer)
    cancel(fw->failover_timer);
  // Agents kill its executors; their final updates are acknowledged by the
  // master (on_status_update), since nobody else will.
  std::set<AgentId> agents;
  for (auto& [tid, task] : fw->tasks)
    if (!is_terminal(task.state))
      agents.insert(task.agent);
  for (auto& aid : agents)
    if (auto* a = agent(aid))
      send(a->address, build<wire::ShutdownFramework>(
                           [&](wire::ShutdownFramework::Builder b) { b.setFrameworkId(id); }));
  for (auto& [tid, task] : fw->tasks) {
    if (auto* a = agent(task.agent))
      a->tasks.erase({id, tid});
    if (!is_terminal(task.state))
      set_task_state(task, State::KILLED, Reason::FRAMEWORK_REMOVED, "framework removed: " + why);
    mark_task_completed(task);
    completed_.push_back(
        {{id, tid}, task.agent, is_terminal(task.state) ? task.state : State::KILLED});
  }
  while (completed_.size() > config_.completed_tasks_max)
    completed_.pop_front();
  to_allocator(build<wire::AllocatorRemoveFramework>(
      [&](wire::AllocatorRemoveFramework::Builder b) { b.setFrameworkId(id); }));
  if (fw->address) {
    if (fw->connected)
      send(*fw->address, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
        b.setError("framework removed: " + why);
      }));
    framework_at_.erase(*fw->address);
    unwatch(*fw->address);
  }
  if (auto it = framework_by_subscription_.find(fw->subscription_id);
      it != framework_by_subscription_.end() && it->second == id)
    framework_by_subscription_.erase(it);
  for (auto it = deferred_reconciliations_.lower_bound({id, ""});
       it != deferred_reconciliations_.end() && it->first.first == id;)
    it = deferred_reconciliations_.erase(it);
  for (auto it = deferred_kills_.lower_bound({id, ""});
       it != deferred_kills_.end() && it->first.first == id;)
    it = deferred_kills_.erase(it);
  frameworks_.erase(id);
  removed_frameworks_.insert(id);
  removed_order_.push_back(id);
  std::vector<RegistryChange> forget;
  while (removed_order_.size() > config_.removed_frameworks_max) {
    // The oldest removal is forgotten here and in the registry.
    auto& oldest = removed_order_.front();
    removed_frameworks_.erase(oldest);
    framework_records_.erase(oldest);
    forget.push_back(framework_removal(oldest));
    removed_order_.pop_front();
  }
  // What it was told of its tasks is moot now: it never comes back.
  for (auto& [aid, keys] : ended_)
    for (auto it = keys.lower_bound({id, ""}); it != keys.end() && it->first == id;) {
      forget.push_back(ended_removal(aid, *it));
      it = keys.erase(it);
    }
  if (!forget.empty())
    persist(std::move(forget), [] {});
}

void Master::heartbeat() {
  for (auto& entry : frameworks_) {
    auto& fw = entry.second;
    send_event(fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
                 auto roles = b.initHeartbeat().initSuppressedRoles(
                     static_cast<unsigned>(fw.suppressed_roles.size()));
                 unsigned i = 0;
                 for (const auto& r : fw.suppressed_roles)
                   roles.set(i++, r);
               }));
  }
  after(config_.framework_heartbeat_interval, [this] { heartbeat(); });
}

void Master::kill(FrameworkEntry& fw, wire::SchedulerCall::Kill::Reader k) {
  auto tid = str(k.getTaskId());
  auto aid = str(k.getAgentId());
  int64_t grace_ns = k.hasKillPolicy() ? k.getKillPolicy().getGracePeriodNs() : 0;
  auto it = fw.tasks.find(tid);
  if (it == fw.tasks.end()) {
    if (!unknown_task_state(fw, aid)) {
      // Recovering: the task may be on an agent that has not come back
      // yet. Killed when it does; answered when the window closes.
      if (deferred_kills_.size() >= config_.deferred_kills_max &&
          !deferred_kills_.count({fw.id, tid})) {
        ++counters_.invalid_calls;
        log().warn("master: kill of unknown task {} not remembered: {} kills wait already", tid,
                   deferred_kills_.size());
        return;
      }
      ++counters_.kills_deferred;
      deferred_kills_[{fw.id, tid}] = {aid, grace_ns};
      log().info("master: kill of task {} of {} waits for its agent to reregister", tid, fw.id);
      return;
    }
    // Mesos: an unknown task is reported so the framework can stop asking.
    return answer_unknown(fw, tid, aid, fw.partition_aware() ? State::UNKNOWN : State::LOST,
                          Reason::TASK_UNKNOWN, "kill of an unknown task");
  }
  kill_task(it->second, grace_ns);
}

void Master::kill_task(Task& task, int64_t grace_ns) {
  if (is_terminal(task.state))
    return;
  auto* a = agent(task.agent);
  if (!a || a->state != AgentState::registered) {
    // Remembered: sent when the agent reregisters (send_pending_kills).
    ++counters_.kills_deferred;
    task.kill_pending = true;
    task.kill_grace_ns = grace_ns;
    log().info("master: kill of task {} waits for agent {} to come back", task.id, task.agent);
    return;
  }
  send(a->address, build<wire::KillTask>([&](wire::KillTask::Builder b) {
         b.setFrameworkId(task.framework);
         b.setTaskId(task.id);
         b.setGracePeriodNs(grace_ns);
       }));
}

void Master::acknowledge(FrameworkEntry& fw, wire::SchedulerCall::Acknowledge::Reader ack) {
  auto tid = str(ack.getTaskId());
  auto it = fw.tasks.find(tid);
  if (it == fw.tasks.end())
    return;  // already done, or never known: nothing to forward
  auto& task = it->second;
  auto uuid = str(ack.getUuid());
  auto* a = agent(task.agent);
  if (!a || a->state != AgentState::registered)
    return;  // the agent resends the update once it is back; acked then
  send(a->address, build<wire::StatusUpdateAck>([&](wire::StatusUpdateAck::Builder b) {
         b.setAgentId(a->id);
         b.setFrameworkId(fw.id);
         b.setTaskId(tid);
         b.setUuid(ack.getUuid());
       }));
  if (!uuid.empty() && uuid == task.forwarded_uuid && is_terminal(task.forwarded_state))
    complete_task(fw, tid);
}

void Master::reconcile(FrameworkEntry& fw, wire::SchedulerCall::Reconcile::Reader r) {
  auto tasks = r.getTasks();
  if (tasks.size() == 0) {
    // Implicit: every task the master knows for this framework.
    for (auto& [tid, task] : fw.tasks)
      send_master_update(fw, tid, task.agent, task.state, Reason::RECONCILIATION, task.message,
                         task.healthy);
    return;
  }
  // Completed tasks of this framework, indexed once per call.
  std::unordered_map<TaskId, const CompletedTask*> done;
  for (const auto& c : completed_)
    if (c.key.first == fw.id)
      done[c.key.second] = &c;
  size_t n = 0;
  for (auto t : tasks) {
    if (++n > reconcile_tasks_max)
      break;
    auto tid = str(t.getTaskId());
    auto aid = str(t.getAgentId());
    if (auto it = fw.tasks.find(tid); it != fw.tasks.end()) {
      send_master_update(fw, tid, it->second.agent, it->second.state, Reason::RECONCILIATION,
                         it->second.message, it->second.healthy);
      continue;
    }
    if (auto c = done.find(tid); c != done.end()) {
      send_master_update(fw, tid, c->second->agent, c->second->state, Reason::RECONCILIATION, "");
      continue;
    }
    auto state = unknown_task_state(fw, aid);
    if (!state) {
      defer_reconciliation(fw, tid, aid);
      continue;
    }
    answer_unknown(fw, tid, aid, *state, Reason::RECONCILIATION, "");
  }
}

std::optional<Master::State> Master::unknown_task_state(const FrameworkEntry& fw,
                                                        const AgentId& aid) const {
  // As Mesos: a registered agent that does not have it means it is gone;
  // an unreachable one might still run it.
  auto it = aid.empty() ? agents_.end() : agents_.find(aid);
  const AgentEntry* a = it == agents_.end() ? nullptr : &it->second;
  if (a && a->state == AgentState::unreachable)
    return fw.partition_aware() ? State::UNREACHABLE : State::LOST;
  if (!a && !aid.empty())
    if (auto r = agent_records_.find(aid);
        r != agent_records_.end() && r->second.state == RegistryAgent::State::unreachable)
      return fw.partition_aware() ? State::UNREACHABLE : State::LOST;
  if (!aid.empty() && removed_agents_.count(aid))
    return fw.partition_aware() ? State::GONE : State::LOST;
  // While recovering, the agent named, if this master has not heard from it
  // since it started (or it is away), may still come back with the task.
  // No agent named: unknown at once, as Mesos.
  if (recovering_ && !aid.empty() && (!a || a->state != AgentState::registered))
    return std::nullopt;
  if (a)
    return fw.partition_aware() ? State::GONE : State::LOST;
  return fw.partition_aware() ? State::UNKNOWN : State::LOST;
}

void Master::defer_reconciliation(const FrameworkEntry& fw, const TaskId& tid, const AgentId& aid) {
  if (deferred_reconciliations_.size() >= config_.deferred_reconciliations_max &&
      !deferred_reconciliations_.count({fw.id, tid})) {
    // No answer is what recovering promises anyway; the framework asks again.
    ++counters_.invalid_calls;
    return;
  }
  ++counters_.reconciliations_deferred;
  deferred_reconciliations_[{fw.id, tid}] = aid;
  log().debug("master: reconciliation of task {} of {} waits for agent '{}'", tid, fw.id, aid);
}

void Master::answer_deferred(const AgentEntry& a) {
  auto answer = [&](const TaskKey& key, const AgentId& named) {
    auto* fw = framework(key.first);
    if (!fw)
      return true;
    if (auto t = fw->tasks.find(key.second); t != fw->tasks.end()) {
      send_master_update(*fw, key.second, t->second.agent, t->second.state, Reason::RECONCILIATION,
                         t->second.message, t->second.healthy);
      return true;
    }
    if (named != a.id)
      return false;  // another agent's, or no agent named: wait for the window
    send_master_update(*fw, key.second, a.id, fw->partition_aware() ? State::GONE : State::LOST,
                       Reason::RECONCILIATION, "task unknown to its reregistered agent");
    return true;
  };
  for (auto it = deferred_reconciliations_.begin(); it != deferred_reconciliations_.end();)
    it = answer(it->first, it->second) ? deferred_reconciliations_.erase(it) : std::next(it);
  for (auto it = deferred_kills_.begin(); it != deferred_kills_.end();) {
    auto* fw = framework(it->first.first);
    if (!fw || fw->tasks.count(it->first.second)) {
      it = deferred_kills_.erase(it);  // gone, or adopted (and killed) since
    } else if (it->second.first == a.id) {
      send_master_update(*fw, it->first.second, a.id,
                         fw->partition_aware() ? State::GONE : State::LOST, Reason::TASK_UNKNOWN,
                         "kill of a task unknown to its reregistered agent");
      it = deferred_kills_.erase(it);
    } else {
      ++it;
    }
  }
}

void Master::end_recovery() {
  recovering_ = false;
  log().info(
      "master: agent reregistration window closed; {} reconciliation(s) and {} kill(s) "
      "of unknown tasks answered now",
      deferred_reconciliations_.size(), deferred_kills_.size());
  // As Mesos marks the agents that did not come back unreachable.
  auto state_for = [](const FrameworkEntry& fw, const AgentId& aid) {
    if (aid.empty())
      return fw.partition_aware() ? State::UNKNOWN : State::LOST;
    return fw.partition_aware() ? State::UNREACHABLE : State::LOST;
  };
  std::vector<RegistryChange> changes;
  for (auto& id : recovered_agents_) {
    auto& r = agent_records_[id];
    r.state = RegistryAgent::State::unreachable;
    r.since_ns = now().time_since_epoch().count();
    changes.push_back(agent_record(r));
  }
  if (!recovered_agents_.empty())
    log().warn("master: {} agent(s) of the registry did not reregister; marked unreachable",
               recovered_agents_.size());
  recovered_agents_.clear();
  if (!changes.empty())
    persist(std::move(changes), [] {});
  for (auto& [key, aid] : deferred_reconciliations_)
    if (auto* fw = framework(key.first))
      answer_unknown(*fw, key.second, aid, state_for(*fw, aid), Reason::RECONCILIATION,
                     "agent did not reregister within the reregistration timeout");
  for (auto& [key, kill] : deferred_kills_)
    if (auto* fw = framework(key.first))
      answer_unknown(*fw, key.second, kill.first, state_for(*fw, kill.first), Reason::TASK_UNKNOWN,
                     "kill of an unknown task");
  deferred_reconciliations_.clear();
  deferred_kills_.clear();
}

void Master::relay_message(FrameworkEntry& fw, wire::SchedulerCall::Message::Reader m) {
  auto* a = agent(str(m.getAgentId()));
  if (!a || a->state != AgentState::registered || m.getData().size() > message_bytes_max) {
    ++counters_.invalid_calls;
    return;
  }
  send(a->address, build<wire::FrameworkToExecutor>([&](wire::FrameworkToExecutor::Builder b) {
         b.setFrameworkId(fw.id);
         b.setExecutorId(m.getExecutorId());
         b.setData(m.getData());
       }));
}

void Master::shutdown_executor(FrameworkEntry& fw, wire::SchedulerCall::Shutdown::Reader s) {
  auto* a = agent(str(s.getAgentId()));
  if (!a || a->state != AgentState::registered) {
    ++counters_.invalid_calls;
    return;
  }
  send(a->address, build<wire::ShutdownExecutor>([&](wire::ShutdownExecutor::Builder b) {
         b.setFrameworkId(fw.id);
         b.setExecutorId(s.getExecutorId());
       }));
}

void Master::send_event(const FrameworkEntry& fw, const Outgoing& event) {
  if (fw.connected && fw.address)
    send(*fw.address, event);
}

void Master::send_master_update(const FrameworkEntry& fw, const TaskId& task, const AgentId& agent,
                                State state, Reason reason, const std::string& message,
                                int8_t healthy) {
  send_event(fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
               auto s = b.initUpdate();
               if (healthy >= 0) {
                 s.setHasHealthy(true);
                 s.setHealthy(healthy == 1);
               }
               s.setTaskId(task);
               s.setAgentId(agent);
               s.setState(state);
               s.setReason(reason);
               s.setMessage(message);
               s.setSource(wire::TaskStatus::Source::MASTER);
               s.setTimestampNs(timestamp_ns(node()));
             }));
}

}  // namespace tessera
