// The master's agent side: registration, reregistration, pings, status
// updates and losing agents. Framework calls are in scheduler_calls.cpp,
// offers and tasks in offers.cpp.

#include "services/master/master.hpp"

#include "runtime/log.hpp"

#include <algorithm>

namespace tessera {

Master::Master(caf::actor_config& cfg, ActorInit init, MasterConfig config)
    : Actor(cfg, std::move(init)),
      config_(std::move(config)),
      store_(config_.registry ? config_.registry : std::make_shared<MemoryStore>()),
      rng_(config_.seed ? config_.seed : std::random_device{}()) {
  run_id_ = hex(new_uuid_bytes(rng_).substr(0, 4));
  started_at_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // Nothing is served before the registry is read (registrar.cpp): what
  // comes meanwhile is held (bounded; beyond, dropped: peers retry) and
  // handled once the master serves.
  auto ready = [this](const auto& m) {
    if (serving_)
      return true;
    if (held_.size() < config_.held_messages_max)
      held_.push_back(m.envelope());
    else
      ++counters_.messages_before_recovery;
    return false;
  };
  // Over TLS each kind of message comes only from the role the CA signed for
  // it (or from this node itself): agents' messages from agents, calls from
  // frameworks, the operator's from operators.
  auto from = [this](std::initializer_list<std::string_view> roles, const auto& m) {
    std::string why;
    if (sender_in_role(roles, &why))
      return true;
    ++counters_.refused_principals;
    log().warn("master: refused a message from {}: {}", m.sender().to_string(), why);
    return false;
  };
  on<wire::RegisterAgent>([this, ready, from](const auto& m) {
    if (from({"agent"}, m) && ready(m))
      on_register_agent(m);
  });
  on<wire::ReregisterAgent>([this, ready, from](const auto& m) {
    if (from({"agent"}, m) && ready(m))
      on_reregister_agent(m.sender(), m.body());
  });
  on<wire::StatusUpdate>([this, ready, from](const auto& m) {
    if (from({"agent"}, m) && ready(m))
      on_status_update(m);
  });
  on<wire::ExitedExecutor>([this, ready, from](const auto& m) {
    if (from({"agent"}, m) && ready(m))
      on_exited_executor(m);
  });
  on<wire::ExecutorToFramework>([this, ready, from](const auto& m) {
    if (from({"agent"}, m) && ready(m))
      on_executor_message(m);
  });
  on<wire::SchedulerCall>([this, ready, from](const auto& m) {
    if (from({"framework"}, m) && ready(m))
      on_call(m);
  });
  on<wire::OperatorCall>([this, ready, from](const auto& m) {
    if (from({"operator"}, m) && ready(m))
      on_operator_call(m);
  });
  on<wire::SubscribeMasterEvents>([this, ready, from](const auto& m) {
    if (from({"operator"}, m) && ready(m))
      on_subscribe_events(m);
  });
  on<wire::MasterMetricsRequest>([this, from](const auto& m) {
    if (from({"operator"}, m))
      on_metrics_request(m);
  });
  on<wire::AllocatorOffers>([this, from](const auto& m) {
    if (from({}, m))
      on_grants(m);
  });
  on_lost([this](const Address& who, const caf::error&) {
    event_subscribers_.erase(who);
    if (auto a = agent_at_.find(who); a != agent_at_.end())
      if (auto* entry = agent(a->second))
        agent_disconnected(*entry);
    if (auto f = framework_at_.find(who); f != framework_at_.end())
      if (auto* entry = framework(f->second))
        framework_disconnected(*entry);
  });
}

void Master::on_start() {
  AllocatorActorConfig ac;
  ac.allocator = config_.allocator;
  ac.master = me();
  ac.allocation_interval = config_.allocation_interval;
  auto spawned = node().spawn<AllocatorActor>(me().name + ".allocator", ac);
  if (!spawned) {
    log().error("master: cannot start the allocator: {}", describe(spawned.error()));
    return stop();
  }
  allocator_ = *spawned;
  watch(allocator_);
  log().info("master {} started (run {}); reading the registry at {}", me().to_string(), run_id_,
             store_->describe());
  read_registry();
}

// -- registration -------------------------------------------------------------

void Master::on_register_agent(const Received<wire::RegisterAgent>& m) {
  auto info = m.body().getAgentInfo();
  auto boot = str(m.body().getBootId());
  auto total = from_wire(info.getResources());
  if (!total) {
    ++counters_.invalid_calls;
    log().warn("master: agent at {} registers with bad resources: {}", m.sender().to_string(),
               describe(total.error()));
    return;
  }
  if (!boot.empty() && retired(boot)) {
    ++counters_.agents_stale_registrations;
    log().info("master: ignoring a registration from {} of replaced boot {}",
               m.sender().to_string(), boot);
    return;
  }
  if (auto old = agent_at_.find(m.sender()); old != agent_at_.end()) {
    if (auto* entry = agent(old->second)) {
      // A retry of a registration already made (the answer was late or
      // lost): the same id, as often as asked.
      if (!boot.empty() && entry->boot_id == boot)
        return answer_again(*entry, false);
      // Registering anew from an address we know: the agent restarted
      // without its state, and what ran there is gone.
      retire_boot(entry->boot_id);
      remove_agent(*entry, Reason::AGENT_RESTARTED, "agent restarted without recovery");
    }
  }
  if (agents_.size() >= config_.agents_max) {
    ++counters_.invalid_calls;
    log().warn("master: refusing agent at {}: {} agents already", m.sender().to_string(),
               agents_.size());
    return;
  }
  AgentEntry entry;
  entry.id = next_id('S');
  entry.address = m.sender();
  entry.hostname = str(info.getHostname());
  entry.http_address = str(info.getHttpAddress());
  set_advertised(entry, std::move(*total));
  entry.attributes = from_wire(info.getAttributes());
  entry.boot_id = boot;
  entry.registration_seq = m.body().getRegistrationSeq();
  entry.state = AgentState::admitting;
  auto id = entry.id;
  agent_at_[entry.address] = id;
  auto& a = agents_.emplace(id, std::move(entry)).first->second;
  watch(a.address);
  // Admitted once recorded (as Mesos): a master that dies meanwhile never
  // answered, and the agent registers again with the next one.
  persist(agent_changes(a, RegistryAgent::State::admitted), [this, id] {
    auto* admitted = agent(id);
    if (!admitted || admitted->state != AgentState::admitting)
      return;
    admitted->state = AgentState::registered;
    add_agent_to_allocator(*admitted);
    ++counters_.agents_registered;
    log().info("master: registered agent {} at {} with {}", id, admitted->address.to_string(),
               admitted->total.to_string());
    send_registered(*admitted, false);
  });
}

void Master::send_registered(AgentEntry& a, bool reregistered) {
  a.registered_at_ns = timestamp_ns(node());
  mark_agent(a.id);
  if (reregistered)
    send(a.address, build<wire::AgentReregistered>([&](wire::AgentReregistered::Builder b) {
           b.setAgentId(a.id);
           b.setPingIntervalNs(config_.agent_ping_interval.count());
           b.setBootId(a.boot_id);
           b.setRegistrationSeq(a.registration_seq);
         }));
  else
    send(a.address, build<wire::AgentRegistered>([&](wire::AgentRegistered::Builder b) {
           b.setAgentId(a.id);
           b.setPingIntervalNs(config_.agent_ping_interval.count());
           b.setBootId(a.boot_id);
           b.setRegistrationSeq(a.registration_seq);
         }));
}

void Master::answer_again(AgentEntry& a, bool reregistered) {
  if (a.state == AgentState::admitting || a.state == AgentState::removing ||
      agents_writing_.count(a.id)) {
    // Answered once its record is written.
    ++counters_.registrations_while_writing;
    return;
  }
  if (a.state != AgentState::registered) {
    auto rec = agent_records_.find(a.id);
    if (rec == agent_records_.end() || rec->second.state != RegistryAgent::State::admitted) {
      // Back after it was recorded unreachable: recorded back first.
      auto id = a.id;
      persist_agent(id, agent_changes(a, RegistryAgent::State::admitted), [this, id, reregistered] {
        if (auto* back = agent(id))
          answer_again(*back, reregistered);
      });
      return;
    }
  }
  ++counters_.agents_duplicate_registrations;
  log().debug("master: agent {} at {} retried its {}registration; answered again", a.id,
              a.address.to_string(), reregistered ? "re" : "");
  if (a.state != AgentState::registered) {
    // Lost meanwhile (its tasks were already reported), and here again:
    // admitted as it is.
    if (a.removal_timer) {
      cancel(a.removal_timer);
      a.removal_timer = 0;
    }
    a.state = AgentState::registered;
    a.pings_missed = 0;
    a.ping_outstanding = false;
    watch(a.address);
    if (a.in_allocator)
      remove_agent_from_allocator(a);
    add_agent_to_allocator(a);
    send_pending_kills(a);
  }
  send_registered(a, reregistered);
}

void Master::retire_boot(const std::string& boot) {
  if (boot.empty() || !retired_boots_.insert(boot).second)
    return;
  retired_boots_order_.push_back(boot);
  while (retired_boots_order_.size() > config_.retired_boots_max) {
    retired_boots_.erase(retired_boots_order_.front());
    retired_boots_order_.pop_front();
  }
}

void Master::on_reregister_agent(const Address& sender, wire::ReregisterAgent::Reader body) {
  auto info = body.getAgentInfo();
  auto id = str(info.getAgentId());
  auto boot = str(body.getBootId());
  auto seq = body.getRegistrationSeq();
  auto total = from_wire(info.getResources());
  if (id.empty() || id.size() > registry_id_bytes_max || !total) {
    ++counters_.invalid_calls;
    log().warn("master: bad reregistration from {}", sender.to_string());
    return;
  }
  if (agents_writing_.count(id)) {
    // Its record is being written (admitted, unreachable or removed): the
    // agent retries, and is answered by what the registry then says.
    ++counters_.registrations_while_writing;
    return;
  }
  if (!boot.empty() && retired(boot)) {
    ++counters_.agents_stale_registrations;
    log().info("master: ignoring a reregistration of agent {} from replaced boot {}", id, boot);
    return;
  }
  if (auto gone = removed_agents_.find(id); gone != removed_agents_.end()) {
    // Its tasks were reported gone or lost and forgotten; adopting them now
    // would resurrect them. It must start afresh with a new id.
    ++counters_.agents_refused_removed;
    auto reason = "agent id " + id + " was removed by the master (" + gone->second +
                  "); kill its tasks, discard its checkpoints and register as a new agent";
    log().info("master: agent {} at {} reregisters after its removal; shutting it down", id,
               sender.to_string());
    send(sender,
         build<wire::ShutdownAgent>([&](wire::ShutdownAgent::Builder b) { b.setReason(reason); }));
    return;
  }
  auto* a = agent(id);
  if (a && !boot.empty() && a->boot_id == boot && a->address == sender) {
    // The same agent process: order its episodes. Its task list is as old
    // as its episode; RunTasks sent since the episode was processed would
    // look lost in it.
    if (seq < a->registration_seq) {
      ++counters_.agents_stale_registrations;
      log().info("master: ignoring agent {}'s reregistration #{} (#{} already processed)", id, seq,
                 a->registration_seq);
      return;
    }
    if (seq == a->registration_seq)
      return answer_again(*a, true);
  }
  // A new episode. Recorded admitted first when the registry does not hold
  // it so. Tasks told lost stay recorded even when the agent no longer
  // reports them: an agent that crashes can lose the checkpoint of an
  // acknowledgement and report such a task again.
  recovered_agents_.erase(id);
  auto rec = agent_records_.find(id);
  if (rec != agent_records_.end() && rec->second.state == RegistryAgent::State::admitted)
    return admit_reregistered(sender, body);
  persist_agent(id,
                agent_changes(id, str(info.getHostname()), sender.to_string(),
                              RegistryAgent::State::admitted),
                [this, sender, kept = Kept<wire::ReregisterAgent>(body)] {
                  on_reregister_agent(sender, kept.get());
                });
}

void Master::admit_reregistered(const Address& sender, wire::ReregisterAgent::Reader body) {
  auto info = body.getAgentInfo();
  auto id = str(info.getAgentId());
  auto boot = str(body.getBootId());
  auto seq = body.getRegistrationSeq();
  auto total = from_wire(info.getResources());
  // Another agent registered from this address restarted as this one.
  if (auto old = agent_at_.find(sender); old != agent_at_.end() && old->second != id)
    if (auto* entry = agent(old->second)) {
      retire_boot(entry->boot_id);
      remove_agent(*entry, Reason::AGENT_RESTARTED, "agent restarted as " + id);
    }
  auto* a = agent(id);
  if (!a) {
    if (agents_.size() >= config_.agents_max) {
      ++counters_.invalid_calls;
      log().warn("master: refusing agent {} at {}: {} agents already", id, sender.to_string(),
                 agents_.size());
      return;
    }
    // Unknown id: this master restarted (or never knew it). Admit it with
    // the id it brings, as Mesos does after a failover.
    AgentEntry entry;
    entry.id = id;
    a = &agents_.emplace(id, std::move(entry)).first->second;
    a->state = AgentState::disconnected;
    restore_maintenance(*a);
  }
  if (!a->boot_id.empty() && a->boot_id != boot)
    retire_boot(a->boot_id);  // the agent restarted (and recovered)
  a->boot_id = boot;
  a->registration_seq = seq;
  if (a->address != sender) {
    agent_at_.erase(a->address);
    unwatch(a->address);
  }
  a->address = sender;
  agent_at_[a->address] = id;
  a->hostname = str(info.getHostname());
  a->http_address = str(info.getHttpAddress());
  set_advertised(*a, std::move(*total));
  a->attributes = from_wire(info.getAttributes());
  a->pings_missed = 0;
  a->ping_outstanding = false;
  if (a->removal_timer) {
    cancel(a->removal_timer);
    a->removal_timer = 0;
  }
  watch(a->address);
  reconcile_agent_tasks(*a, body);
  bool was_registered = a->state == AgentState::registered;
  a->state = AgentState::registered;
  // Its total or its tasks may have changed: the allocator hears it anew
  // (a stale grant of the old epoch is then dropped).
  if (a->in_allocator)
    remove_agent_from_allocator(*a);
  add_agent_to_allocator(*a);
  ++counters_.agents_reregistered;
  log().info("master: reregistered agent {} at {} ({} tasks){}", id, a->address.to_string(),
             a->tasks.size(), was_registered ? "" : " after a disconnection");
  send_registered(*a, true);
  send_pending_kills(*a);
  answer_deferred(*a);
  if (a->drain == wire::DrainState::DRAINING) {
    // A drain a master before this one began: its tasks are killed anew.
    for (auto& [fid, tid] : std::set<TaskKey>(a->tasks))
      if (auto* fw = framework(fid))
        if (auto t = fw->tasks.find(tid); t != fw->tasks.end())
          kill_task(t->second, a->drain_grace_ns);
    check_drained(*a);
  }
}

void Master::reconcile_agent_tasks(AgentEntry& agent, wire::ReregisterAgent::Reader body) {
  // The agent is the truth about what runs on it.
  std::set<TaskKey> reported;
  for (auto t : body.getTasks()) {
    reported.emplace(str(t.getFrameworkId()), str(t.getTask().getTaskId()));
    adopt_agent_task(agent, t, body.getFrameworks());
  }
  for (auto key : std::set<TaskKey>(agent.tasks)) {
    if (reported.count(key))
      continue;
    auto* fw = framework(key.first);
    if (!fw)
      continue;
    auto it = fw->tasks.find(key.second);
    if (it == fw->tasks.end())
      continue;
    if (is_terminal(it->second.state)) {
      // Told ended (lost while its agent was away) and now over there too.
      if (it->second.ended_by_master)
        complete_task(*fw, key.second);
      continue;
    }
    // Launched here but unknown to the agent: the RunTask never arrived
    // (or crossed this reregistration, and the agent dropped it).
    set_task_state(it->second, fw->partition_aware() ? State::GONE : State::LOST,
                   Reason::AGENT_RESTARTED, "task unknown to the reregistered agent");
    send_master_update(*fw, key.second, agent.id, it->second.state, Reason::AGENT_RESTARTED,
                       it->second.message);
    complete_task(*fw, key.second);
  }
}

void Master::enforce_end(FrameworkEntry& fw, AgentEntry& a, const TaskId& tid, bool alive) {
  auto& task = fw.tasks[tid];
  if (task.id.empty()) {
    // Completed here already: kept as an ended entry until its agent says
    // it is over, so its updates are absorbed and the kill resent.
    task.id = tid;
    task.framework = fw.id;
    task.role = fw.roles.front();
    task.state = fw.partition_aware() ? State::GONE : State::LOST;
    for (auto it = completed_.rbegin(); it != completed_.rend(); ++it)
      if (it->key == TaskKey{fw.id, tid}) {
        task.state = it->state;
        break;
      }
    task.resources_freed = true;
  }
  if (!task.agent.empty() && task.agent != a.id)
    if (auto* other = agent(task.agent))
      other->tasks.erase({fw.id, tid});
  task.agent = a.id;
  task.ended_by_master = true;
  a.tasks.insert({fw.id, tid});
  if (!alive)
    return;  // over there too: its last update is absorbed when it comes
  a.kills_enforced.insert({fw.id, tid});
  log().info("master: task {} of {} runs on {} though its framework was told it ended; killing it",
             tid, fw.id, a.id);
  send_kill(a, fw.id, tid, 0);
}

void Master::send_kill(const AgentEntry& a, const FrameworkId& fid, const TaskId& tid,
                       int64_t grace_ns) {
  send(a.address, build<wire::KillTask>([&](wire::KillTask::Builder b) {
         b.setFrameworkId(fid);
         b.setTaskId(tid);
         b.setGracePeriodNs(grace_ns);
       }));
}

void Master::resend_enforced_kills(AgentEntry& a) {
  for (auto it = a.kills_enforced.begin(); it != a.kills_enforced.end();) {
    auto* fw = framework(it->first);
    if (!fw || !fw->tasks.count(it->second) || !a.tasks.count(*it)) {
      it = a.kills_enforced.erase(it);
      continue;
    }
    send_kill(a, it->first, it->second, 0);
    ++it;
  }
}

void Master::send_pending_kills(AgentEntry& a) {
  for (auto& key : a.tasks) {
    auto* fw = framework(key.first);
    if (!fw)
      continue;
    auto it = fw->tasks.find(key.second);
    if (it == fw->tasks.end() || !it->second.kill_pending || is_terminal(it->second.state))
      continue;
    log().info("master: killing task {} of {} on {}, as asked while the agent was away", key.second,
               key.first, a.id);
    send(a.address, build<wire::KillTask>([&](wire::KillTask::Builder b) {
           b.setFrameworkId(key.first);
           b.setTaskId(key.second);
           b.setGracePeriodNs(it->second.kill_grace_ns);
         }));
  }
}

void Master::adopt_agent_task(AgentEntry& agent, wire::AgentTask::Reader t,
                              capnp::List<wire::FrameworkInfo>::Reader frameworks) {
  auto fid = str(t.getFrameworkId());
  auto info = t.getTask();
  auto tid = str(info.getTaskId());
  if (fid.empty() || tid.empty())
    return;
  auto* fw = framework(fid);
  if (!fw && removed(fid)) {
    // Its framework is gone: the agent must stop what it still runs (the
    // shutdown sent at removal may have missed an agent that was away).
    send(agent.address, build<wire::ShutdownFramework>(
                            [&](wire::ShutdownFramework::Builder b) { b.setFrameworkId(fid); }));
    return;
  }
  if (!fw) {
    if (frameworks_.size() >= config_.frameworks_max)
      return;
    // A framework this master has not met: it will resubscribe. Keep its
    // tasks; until then it gets no offers.
    FrameworkEntry entry;
    entry.id = fid;
    for (auto f : frameworks) {
      if (str(f.getFrameworkId()) != fid)
        continue;
      entry.name = str(f.getName());
      entry.user = str(f.getUser());
      for (auto r : f.getRoles())
        entry.roles.push_back(str(r));
      entry.failover_timeout = Duration(f.getFailoverTimeoutNs());
      for (auto c : f.getCapabilities())
        entry.capabilities.insert(c);
    }
    fw = &add_unsubscribed_framework(std::move(entry));
  }
  auto resources = from_wire(info.getResources());
  if (!resources)
    return;
  auto known = fw->tasks.find(tid);
  bool told_ended = known != fw->tasks.end() ? known->second.state == State::LOST
                                             : recently_completed({fid, tid});
  // Told lost while its agent was away, by this master or one before it.
  if (auto ended = ended_.find(agent.id); ended != ended_.end() && ended->second.count({fid, tid}))
    told_ended = true;
  if (told_ended) {
    // The framework was told this task ended (lost, or gone from an agent
    // that reregistered without it) and may have replaced it; as Mesos, a
    // copy that comes back is killed, not adopted, and what its agent
    // reports of it later is acknowledged by the master (on_status_update).
    enforce_end(*fw, agent, tid, !is_terminal(t.getLatestState()));
    return;
  }
  if (!fw->tasks.count(tid) && fw->tasks.size() >= config_.tasks_per_framework_max) {
    ++counters_.invalid_calls;
    log().warn("master: agent {} reports task {} beyond framework {}'s task limit", agent.id, tid,
               fid);
    return;
  }
  auto& task = fw->tasks[tid];
  bool fresh = task.id.empty();
  task.id = tid;
  task.framework = fid;
  if (!task.agent.empty() && task.agent != agent.id)
    if (auto* other = this->agent(task.agent))
      other->tasks.erase({fid, tid});
  task.agent = agent.id;
  if (fresh) {
    // The role a task's resources were allocated to is not on the wire;
    // a reservation names it, otherwise the framework's first role.
    auto reserved = resources->roles();
    task.role = !reserved.empty() ? *reserved.begin() : fw->roles.front();
  }
  if (fresh || task.resources_freed) {
    task.resources = *resources;
    task.resources_freed = false;
  }
  task.state = t.getLatestState();
  if (fresh)
    task.name = str(info.getName());
  if (is_terminal(task.state))
    task.resources_freed = true;  // not counted as used when re-added
  agent.tasks.insert({fid, tid});
  mark_task(fid, tid);
  if (auto k = deferred_kills_.find({fid, tid}); k != deferred_kills_.end()) {
    // Killed while this master did not know it yet: send_pending_kills.
    task.kill_pending = true;
    task.kill_grace_ns = k->second.second;
    deferred_kills_.erase(k);
  }
}

Master::FrameworkEntry& Master::add_unsubscribed_framework(FrameworkEntry entry) {
  if (entry.roles.empty())
    entry.roles.push_back(std::string(any_role));
  auto id = entry.id;
  auto& fw = frameworks_.emplace(id, std::move(entry)).first->second;
  mark_framework(id);
  to_allocator(build<wire::AllocatorAddFramework>([&](wire::AllocatorAddFramework::Builder b) {
    b.setFrameworkId(id);
    auto roles = b.initRoles(static_cast<unsigned>(fw.roles.size()));
    for (unsigned i = 0; i < fw.roles.size(); ++i)
      roles.set(i, fw.roles[i]);
    b.setSuppressed(true);
  }));
  return fw;
}

void Master::add_agent_to_allocator(AgentEntry& a) {
  mark_agent(a.id);
  if (a.deactivated)
    return;  // an operator took it out of the pool: REACTIVATE_AGENT brings it back
  if (a.reservation_writes > 0)
    return;  // back once its reservations are durable (update_reservation)
  // What live tasks hold there, per framework and role.
  std::map<std::pair<FrameworkId, std::string>, Resources> used;
  for (auto& key : a.tasks) {
    auto* fw = framework(key.first);
    if (!fw)
      continue;
    auto it = fw->tasks.find(key.second);
    if (it != fw->tasks.end() && !it->second.resources_freed)
      used[{key.first, it->second.role}] += it->second.resources;
  }
  a.epoch = next_epoch_++;
  to_allocator(build<wire::AllocatorAddAgent>([&](wire::AllocatorAddAgent::Builder b) {
    b.setAgentId(a.id);
    b.setEpoch(a.epoch);
    to_wire(a.total, b.initTotal(wire_size(a.total)));
    auto list = b.initUsed(static_cast<unsigned>(used.size()));
    unsigned i = 0;
    for (auto& [key, r] : used) {
      auto u = list[i++];
      u.setFrameworkId(key.first);
      u.setRole(key.second);
      to_wire(r, u.initResources(wire_size(r)));
    }
  }));
  a.in_allocator = true;
}

void Master::remove_agent_from_allocator(AgentEntry& a) {
  mark_agent(a.id);
  for (auto& id : std::set<OfferId>(a.offers))
    rescind(id, true);
  if (!a.in_allocator)
    return;
  to_allocator(build<wire::AllocatorRemoveAgent>(
      [&](wire::AllocatorRemoveAgent::Builder b) { b.setAgentId(a.id); }));
  a.in_allocator = false;
  // Resources of tasks there are gone with the agent; if it comes back,
  // add_agent_to_allocator counts live tasks again.
}

// -- health -------------------------------------------------------------------

void Master::ping_agents() {
  bool audit = now() >= next_audit_;
  if (audit)
    next_audit_ = now() + config_.agent_task_audit_interval;
  for (auto& [id, a] : agents_) {
    if ((a.state != AgentState::registered && a.state != AgentState::disconnected) ||
        a.ping_outstanding)
      continue;
    a.ping_outstanding = true;
    auto seq = ++ping_seq_;
    auto staging = audit ? long_staging(a) : std::vector<TaskKey>{};
    resend_enforced_kills(a);
    request<wire::Pong>(
        a.address, build<wire::Ping>([&](wire::Ping::Builder b) {
          b.setSeq(seq);
          auto list = b.initAudit(static_cast<unsigned>(staging.size()));
          for (unsigned i = 0; i < staging.size(); ++i) {
            list[i].setFrameworkId(staging[i].first);
            list[i].setTaskId(staging[i].second);
          }
        }),
        config_.agent_ping_timeout,
        [this, id = id](const Received<wire::Pong>& m) { on_pong(id, m.body()); },
        [this, id = id](const caf::error&) { on_ping_failed(id); });
  }
  after(config_.agent_ping_interval, [this] { ping_agents(); });
}

std::vector<Master::TaskKey> Master::long_staging(const AgentEntry& a) const {
  std::vector<TaskKey> out;
  auto before = now() - config_.agent_task_audit_age;
  for (const auto& key : a.tasks) {
    if (out.size() >= config_.audit_tasks_per_ping_max)
      break;
    auto fw = frameworks_.find(key.first);
    if (fw == frameworks_.end())
      continue;
    auto t = fw->second.tasks.find(key.second);
    if (t != fw->second.tasks.end() && t->second.state == State::STAGING &&
        t->second.staged_at <= before)
      out.push_back(key);
  }
  return out;
}

void Master::on_pong(const AgentId& id, wire::Pong::Reader pong) {
  auto* a = agent(id);
  if (!a)
    return;
  a->ping_outstanding = false;
  a->pings_missed = 0;
  for (auto k : pong.getUnknown())
    end_unknown_task(*a, {str(k.getFrameworkId()), str(k.getTaskId())});
  for (auto f : pong.getFrameworks()) {
    auto fid = str(f);
    if (framework(fid) || !removed(fid))
      continue;
    // Removed, yet it still runs there: the ShutdownFramework sent at its
    // removal was lost (or the agent was away). Sent again until it is gone.
    log().info("master: agent {} still runs removed framework {}; shutting it down again", a->id,
               fid);
    send(a->address, build<wire::ShutdownFramework>(
                         [&](wire::ShutdownFramework::Builder b) { b.setFrameworkId(fid); }));
  }
}

void Master::end_unknown_task(AgentEntry& a, const TaskKey& key) {
  auto* fw = framework(key.first);
  if (!fw || !a.tasks.count(key))
    return;
  auto it = fw->tasks.find(key.second);
  if (it == fw->tasks.end() || it->second.state != State::STAGING)
    return;
  // Its launch never reached the agent (lost on a link that stayed up), and
  // the agent now refuses it should it still come: as Mesos reports a task
  // a reregistering agent does not know.
  ++counters_.tasks_lost_launches;
  log().warn("master: task {} of {} is unknown to agent {}: its launch was lost", key.second,
             key.first, a.id);
  auto state = fw->partition_aware() ? State::DROPPED : State::LOST;
  set_task_state(it->second, state, Reason::RECONCILIATION,
                 "task unknown to its agent: the launch was lost");
  send_master_update(*fw, key.second, a.id, state, Reason::RECONCILIATION, it->second.message);
  complete_task(*fw, key.second);
}

void Master::on_ping_failed(const AgentId& id) {
  auto* a = agent(id);
  if (!a)
    return;
  a->ping_outstanding = false;
  if (a->state != AgentState::registered && a->state != AgentState::disconnected)
    return;
  if (++a->pings_missed >= config_.agent_pings_missed_max)
    mark_unreachable(*a);
}

void Master::agent_disconnected(AgentEntry& a) {
  if (a.state != AgentState::registered)
    return;
  log().info("master: agent {} at {} disconnected", a.id, a.address.to_string());
  a.state = AgentState::disconnected;
  // No offers for an agent we cannot reach; its tasks stay until the pings
  // say it is unreachable or it reregisters.
  remove_agent_from_allocator(a);
}

void Master::mark_unreachable(AgentEntry& a) {
  log().warn("master: agent {} at {} is unreachable ({} pings missed)", a.id, a.address.to_string(),
             a.pings_missed);
  ++counters_.agents_unreachable;
  a.state = AgentState::unreachable;
  remove_agent_from_allocator(a);
  // Recorded before anyone is told: the agent unreachable, and each task
  // whose framework will hear TASK_LOST, so that whichever master sees the
  // agent again kills those tasks instead of adopting them.
  auto changes = agent_changes(a, RegistryAgent::State::unreachable);
  auto& ended = ended_[a.id];
  for (auto& key : a.tasks) {
    auto* fw = framework(key.first);
    if (!fw || fw->partition_aware())
      continue;
    auto it = fw->tasks.find(key.second);
    if (it == fw->tasks.end() || is_terminal(it->second.state))
      continue;
    if (ended.insert(key).second)
      changes.push_back(ended_record(a.id, key));
  }
  auto id = a.id;
  persist_agent(id, std::move(changes), [this, id] { report_unreachable(id); });
}

void Master::report_unreachable(const AgentId& id) {
  auto* found = agent(id);
  if (!found || found->state != AgentState::unreachable)
    return;
  auto& a = *found;
  for (auto& key : std::set<TaskKey>(a.tasks)) {
    auto* fw = framework(key.first);
    if (!fw)
      continue;
    auto it = fw->tasks.find(key.second);
    if (it == fw->tasks.end() || is_terminal(it->second.state))
      continue;
    auto state = lost_state(*fw);
    set_task_state(it->second, state, Reason::AGENT_UNREACHABLE,
                   "agent " + a.id + " is unreachable");
    it->second.resources_freed = true;  // the agent left the allocator
    it->second.ended_by_master = is_terminal(state);
    send_master_update(*fw, key.second, a.id, state, Reason::AGENT_UNREACHABLE, it->second.message);
  }
  for (auto& [fid, fw] : frameworks_)
    send_event(fw, build<wire::SchedulerEvent>(
                       [&](wire::SchedulerEvent::Builder b) { b.initFailure().setAgentId(a.id); }));
  a.removal_timer = after(config_.agent_removal_timeout, [this, id = a.id] {
    auto* gone = agent(id);
    if (!gone)
      return;
    gone->removal_timer = 0;
    if (gone->state == AgentState::unreachable)
      remove_agent(*gone, Reason::AGENT_REMOVED, "agent unreachable for too long");
  });
}

void Master::remove_agent(AgentEntry& a, Reason reason, const std::string& why) {
  if (a.state == AgentState::removing)
    return;
  log().info("master: removing agent {}: {}", a.id, why);
  remove_agent_from_allocator(a);
  if (a.removal_timer) {
    cancel(a.removal_timer);
    a.removal_timer = 0;
  }
  // Out of reach at once (its address may register anew meanwhile); its
  // tasks are reported gone once the removal is recorded.
  a.state = AgentState::removing;
  if (auto at = agent_at_.find(a.address); at != agent_at_.end() && at->second == a.id)
    agent_at_.erase(at);
  unwatch(a.address);
  auto id = a.id;
  persist_agent(id, agent_changes(a, RegistryAgent::State::removed, why),
                [this, id, reason, why] { removed_agent(id, reason, why); });
}

void Master::removed_agent(const AgentId& id, Reason reason, const std::string& why) {
  auto* found = agent(id);
  if (!found)
    return;
  log().info("master: removed agent {} (recorded): {}", id, why);
  mark_agent(id);
  auto& a = *found;
  for (auto& key : std::set<TaskKey>(a.tasks)) {
    auto* fw = framework(key.first);
    if (!fw)
      continue;
    auto it = fw->tasks.find(key.second);
    if (it == fw->tasks.end())
      continue;
    if (!is_terminal(it->second.state)) {
      auto state = fw->partition_aware() ? State::GONE : State::LOST;
      it->second.resources_freed = true;
      set_task_state(it->second, state, reason, why);
      send_master_update(*fw, key.second, a.id, state, reason, why);
    }
    complete_task(*fw, key.second);
  }
  ++counters_.agents_removed;
  std::vector<RegistryChange> forget;
  if (removed_agents_.emplace(a.id, why).second) {
    removed_agents_order_.push_back(a.id);
    while (removed_agents_order_.size() > config_.removed_agents_max) {
      // The oldest removal is forgotten here and in the registry.
      auto& oldest = removed_agents_order_.front();
      removed_agents_.erase(oldest);
      agent_records_.erase(oldest);
      forget.push_back(agent_removal(oldest));
      removed_agents_order_.pop_front();
    }
  }
  agents_.erase(a.id);  // a is gone from here on
  if (!forget.empty())
    persist(std::move(forget), [] {});
}

// -- agent messages -------------------------------------------------------------

Master::AgentEntry* Master::agent_at(const Address& sender, const char* what) {
  auto it = agent_at_.find(sender);
  AgentEntry* a = it == agent_at_.end() ? nullptr : agent(it->second);
  if (!a || (a->state != AgentState::registered && a->state != AgentState::disconnected)) {
    // Unknown: this master restarted and the agent has not reregistered yet
    // (it will, and resend), or the sender is not an agent at all.
    ++counters_.invalid_calls;
    log().debug("master: {} from {}, not a registered agent; dropped", what, sender.to_string());
    return nullptr;
  }
  return a;
}

void Master::on_status_update(const Received<wire::StatusUpdate>& m) {
  auto* a = agent_at(m.sender(), "status update");
  if (!a)
    return;
  ++counters_.status_updates;
  auto body = m.body();
  auto status = body.getStatus();
  auto fid = str(body.getFrameworkId());
  auto tid = str(status.getTaskId());
  auto* fw = framework(fid);
  if (!fw) {
    if (removed(fid)) {
      // Nobody will acknowledge for a removed framework: the master does,
      // so the agent stops retrying. A task still alive there was launched
      // by a RunTask that overtook its framework's shutdown: it goes too.
      acknowledge_for_framework(*a, fid, tid, status.getUuid());
      if (!is_terminal(body.getLatestState()))
        send(a->address, build<wire::ShutdownFramework>(
                             [&](wire::ShutdownFramework::Builder b) { b.setFrameworkId(fid); }));
    }
    return;
  }
  if (!fw->tasks.count(tid) && fw->tasks.size() >= config_.tasks_per_framework_max) {
    ++counters_.invalid_calls;  // the agent retries; adopted once there is room
    return;
  }
  if (auto known = fw->tasks.find(tid); known != fw->tasks.end() && known->second.agent != a->id) {
    // Only the agent the task was placed on speaks for it.
    auto n = ++counters_.status_updates_refused;
    if ((n & (n - 1)) == 0)
      log().warn(
          "master: refused a status update for task {} of {} from agent {}: the task is "
          "on agent {} ({} refused so far)",
          tid, fid, a->id, known->second.agent, n);
    return;
  }
  if (auto known = fw->tasks.find(tid); known != fw->tasks.end() && known->second.ended_by_master) {
    // The framework was told this task is lost; as it came back the master
    // killed it. Its updates end here: a framework hears one terminal state.
    ++counters_.status_updates_absorbed;
    acknowledge_for_framework(*a, fid, tid, status.getUuid());
    if (is_terminal(status.getState()))
      complete_task(*fw, tid);
    return;
  }
  if (!fw->tasks.count(tid) &&
      (recently_completed({fid, tid}) || told_lost_away(a->id, {fid, tid}))) {
    // A retry of an update of a task already done (its acknowledgement to
    // the agent was lost), or of one a master told its framework was lost
    // while the agent was away: acknowledged, not adopted as a new task.
    // Alive there, it is a RunTask that crossed a reregistration after the
    // master reported the task gone: killed, as Mesos kills such a task.
    ++counters_.status_updates_absorbed;
    acknowledge_for_framework(*a, fid, tid, status.getUuid());
    if (!is_terminal(body.getLatestState()))
      enforce_end(*fw, *a, tid);
    return;
  }
  auto& task = fw->tasks[tid];
  if (task.id.empty()) {
    // A task the master did not know (it restarted, and the agent's
    // reregistration has not been seen): adopt it.
    task.id = tid;
    task.framework = fid;
    task.agent = a->id;
    task.role = fw->roles.front();
    task.resources_freed = true;
    a->tasks.insert({fid, tid});
  }
  auto latest = body.getLatestState();
  set_task_state(task, latest, status.getReason(), str(status.getMessage()));
  note_status(task, status);
  if (is_terminal(latest))
    free_task_resources(task);
  if (!fw->connected)
    return;  // the agent retries until the framework is back and acknowledges
  task.forwarded_uuid = str(status.getUuid());
  task.forwarded_state = status.getState();
  send_event(*fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
    b.setUpdate(status);
    b.getUpdate().setAgentId(a->id);
  }));
}

void Master::acknowledge_for_framework(const AgentEntry& agent, const FrameworkId& fid,
                                       const TaskId& tid, capnp::Data::Reader uuid) {
  send(agent.address, build<wire::StatusUpdateAck>([&](wire::StatusUpdateAck::Builder b) {
         b.setAgentId(agent.id);
         b.setFrameworkId(fid);
         b.setTaskId(tid);
         b.setUuid(uuid);
       }));
}

bool Master::recently_completed(const TaskKey& key) const {
  // Linear in completed_tasks_max, and only for updates of unknown tasks.
  return std::any_of(completed_.begin(), completed_.end(),
                     [&](const CompletedTask& c) { return c.key == key; });
}

void Master::on_exited_executor(const Received<wire::ExitedExecutor>& m) {
  auto* a = agent_at(m.sender(), "exited executor");
  if (!a)
    return;
  auto body = m.body();
  if (auto* fw = framework(str(body.getFrameworkId())))
    send_event(*fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
      auto f = b.initFailure();
      f.setAgentId(a->id);
      f.setExecutorId(body.getExecutorId());
      f.setStatus(body.getStatus());
    }));
}

void Master::on_executor_message(const Received<wire::ExecutorToFramework>& m) {
  auto* a = agent_at(m.sender(), "executor message");
  if (!a)
    return;
  auto body = m.body();
  if (auto* fw = framework(str(body.getFrameworkId())))
    send_event(*fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
      auto msg = b.initMessage();
      msg.setAgentId(a->id);
      msg.setExecutorId(body.getExecutorId());
      msg.setData(body.getData());
    }));
}

// -- helpers ------------------------------------------------------------------

void Master::to_allocator(const Outgoing& msg) {
  send(allocator_, msg);
}

void Master::recover(const FrameworkId& fw, const AgentId& agent, const std::string& role,
                     const Resources& r, double refuse_s) {
  if (r.empty())
    return;
  to_allocator(build<wire::AllocatorRecover>([&](wire::AllocatorRecover::Builder b) {
    b.setFrameworkId(fw);
    b.setAgentId(agent);
    b.setRole(role);
    to_wire(r, b.initResources(wire_size(r)));
    b.setRefuseSeconds(refuse_s);
  }));
}

std::string Master::next_id(char kind) {
  // The epoch makes ids unique across master runs that share a registry
  // (and a seed, in tests).
  return run_id_ + "-" + std::to_string(epoch_) + "-" + kind + std::to_string(next_id_++);
}

Master::FrameworkEntry* Master::framework(const FrameworkId& id) {
  auto it = frameworks_.find(id);
  return it == frameworks_.end() ? nullptr : &it->second;
}

Master::AgentEntry* Master::agent(const AgentId& id) {
  auto it = agents_.find(id);
  return it == agents_.end() ? nullptr : &it->second;
}

}  // namespace tessera
