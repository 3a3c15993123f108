// The master's offers and tasks: turning grants into offers, accept and
// decline with their validation, launching, and a task's life in the books.

#include "services/master/master.hpp"

#include "runtime/log.hpp"

#include <algorithm>

namespace tessera {

namespace {

constexpr size_t task_id_bytes_max = 255;
constexpr size_t tasks_per_accept_max = 10'000;

// Task ids name sandbox directories on agents: printable, no path tricks.
bool valid_task_id(const std::string& id) {
  if (id.empty() || id.size() > task_id_bytes_max || id == "." || id == "..")
    return false;
  for (unsigned char c : id)
    if (c <= ' ' || c == '/' || c == '\\' || c >= 0x7f)
      return false;
  return true;
}

}  // namespace

void Master::on_grants(const Received<wire::AllocatorOffers>& m) {
  if (m.sender() != allocator_) {
    ++counters_.invalid_calls;
    return;
  }
  std::map<FrameworkId, std::vector<OfferId>> by_framework;
  for (auto g : m.body().getGrants()) {
    auto fid = str(g.getFrameworkId());
    auto aid = str(g.getAgentId());
    auto role = str(g.getRole());
    auto resources = from_wire(g.getResources());
    if (!resources)
      continue;
    auto* fw = framework(fid);
    auto* a = agent(aid);
    if (!fw || !a || !a->in_allocator || g.getAgentEpoch() != a->epoch)
      continue;  // removed (and maybe added again) since: the allocator forgot them
    if (!fw->connected || a->state != AgentState::registered) {
      recover(fid, aid, role, *resources);
      continue;
    }
    Offer offer;
    offer.id = next_id('O');
    offer.framework = fid;
    offer.agent = aid;
    offer.role = role;
    offer.resources = std::move(*resources);
    if (config_.offer_timeout > Duration::zero()) {
      auto id = offer.id;
      offer.timer = after(config_.offer_timeout, [this, id] { rescind(id, true); });
    }
    log().debug("master: offer {} to {} ({}) on {}: {}", offer.id, fid, role, aid,
                offer.resources.to_string());
    fw->offers.insert(offer.id);
    a->offers.insert(offer.id);
    by_framework[fid].push_back(offer.id);
    mark_offer(offer.id);
    offers_.emplace(offer.id, std::move(offer));
  }
  for (auto& entry : by_framework) {
    const auto& fid = entry.first;
    const auto& ids = entry.second;
    auto& fw = frameworks_.at(fid);
    counters_.offers_sent += ids.size();
    send_event(fw, build<wire::SchedulerEvent>([&](wire::SchedulerEvent::Builder b) {
                 auto list = b.initOffers(static_cast<unsigned>(ids.size()));
                 for (unsigned i = 0; i < ids.size(); ++i) {
                   const auto& o = offers_.at(ids[i]);
                   const auto& a = agents_.at(o.agent);
                   auto out = list[i];
                   out.setOfferId(o.id);
                   out.setFrameworkId(fid);
                   out.setAgentId(o.agent);
                   out.setHostname(a.hostname);
                   to_wire(o.resources, out.initResources(wire_size(o.resources)));
                   to_wire(a.attributes,
                           out.initAttributes(static_cast<unsigned>(a.attributes.size())));
                   out.setAllocationRole(o.role);
                   out.setAgentAddress(a.address.to_string());
                 }
               }));
  }
}

void Master::remove_offer(const OfferId& id) {
  auto it = offers_.find(id);
  if (it == offers_.end())
    return;
  if (it->second.timer)
    cancel(it->second.timer);
  if (auto* fw = framework(it->second.framework))
    fw->offers.erase(id);
  if (auto* a = agent(it->second.agent))
    a->offers.erase(id);
  offers_.erase(it);
  mark_offer(id);
}

void Master::rescind(const OfferId& id, bool tell_framework) {
  auto it = offers_.find(id);
  if (it == offers_.end())
    return;
  auto offer = it->second;
  remove_offer(id);
  ++counters_.offers_rescinded;
  recover(offer.framework, offer.agent, offer.role, offer.resources);
  if (auto* fw = framework(offer.framework); fw && tell_framework)
    send_event(*fw, build<wire::SchedulerEvent>(
                        [&](wire::SchedulerEvent::Builder b) { b.setRescind(id); }));
}

void Master::decline(FrameworkEntry& fw, capnp::List<capnp::Text>::Reader offer_ids,
                     double refuse_s) {
  for (auto raw : offer_ids) {
    auto id = str(raw);
    auto it = offers_.find(id);
    if (it == offers_.end() || it->second.framework != fw.id) {
      ++counters_.invalid_calls;
      continue;  // rescinded meanwhile, or not its offer: nothing to return
    }
    auto offer = it->second;
    remove_offer(id);
    ++counters_.offers_declined;
    log().debug("master: {} declines {} for {} s", fw.id, id, refuse_s);
    recover(fw.id, offer.agent, offer.role, offer.resources, refuse_s);
  }
}

void Master::accept(FrameworkEntry& fw, wire::SchedulerCall::Accept::Reader a) {
  // 1. The offers: known, this framework's, one agent, one role.
  std::string offer_error;
  std::vector<Offer> used;
  for (auto raw : a.getOfferIds()) {
    auto id = str(raw);
    auto it = offers_.find(id);
    if (it == offers_.end() || it->second.framework != fw.id) {
      offer_error = "offer " + id + " is unknown, expired or not this framework's";
      continue;
    }
    if (!used.empty() && it->second.agent != used.front().agent)
      offer_error = "offers from more than one agent";
    else if (!used.empty() && it->second.role != used.front().role)
      offer_error = "offers allocated to more than one role";
    used.push_back(it->second);
    remove_offer(id);
  }
  if (used.empty() && offer_error.empty())
    offer_error = "no offers";
  auto refuse_s = a.getFilters().getRefuseSeconds();

  // Every task named in a launch, with the offers' fate.
  auto tasks_of = [&](auto fn) {
    for (auto op : a.getOperations()) {
      if (op.isLaunch())
        for (auto t : op.getLaunch())
          fn(t, false);
      else if (op.isLaunchGroup())
        for (auto t : op.getLaunchGroup().getTasks())
          fn(t, true);
    }
  };

  if (!offer_error.empty()) {
    ++counters_.invalid_calls;
    log().info("master: framework {} accept refused: {}", fw.id, offer_error);
    tasks_of([&](wire::TaskInfo::Reader t, bool) {
      // A duplicated or retried ACCEPT whose first copy launched the task:
      // the task lives on, so no terminal state may be reported for it.
      TaskKey key{fw.id, str(t.getTaskId())};
      if (fw.tasks.count(key.second) > 0 ||
          std::any_of(completed_.begin(), completed_.end(),
                      [&](const CompletedTask& c) { return c.key == key; }))
        return;
      send_master_update(fw, str(t.getTaskId()), str(t.getAgentId()),
                         fw.partition_aware() ? State::DROPPED : State::LOST,
                         Reason::INVALID_OFFERS, offer_error);
    });
    for (auto& o : used)
      recover(fw.id, o.agent, o.role, o.resources);
    return;
  }

  // 2. The operations, against the pooled offers, in order.
  Resources pool;
  for (auto& o : used)
    pool += o.resources;
  const auto& role = used.front().role;
  auto* ag = agent(used.front().agent);
  if (!ag) {
    for (auto& o : used)
      recover(fw.id, o.agent, o.role, o.resources);
    return;
  }
  size_t count = 0;
  log().debug("master: {} accepts {} offer(s) on {} ({} operations)", fw.id, used.size(), ag->id,
              a.getOperations().size());
  for (auto op : a.getOperations()) {
    if (op.isLaunchGroup()) {
      auto group = op.getLaunchGroup();
      count += group.getTasks().size();
      if (count > tasks_per_accept_max)
        refuse_group(fw, *ag, group, "too many tasks in one accept");
      else
        launch_group(fw, *ag, role, group, pool);
      continue;
    }
    if (!op.isLaunch())
      continue;
    for (auto t : op.getLaunch()) {
      if (++count > tasks_per_accept_max) {
        ++counters_.tasks_invalid;
        send_master_update(fw, str(t.getTaskId()), ag->id, State::ERROR, Reason::TASK_INVALID,
                           "too many tasks in one accept");
        continue;
      }
      launch_task(fw, *ag, role, t, pool);
    }
  }
  // What no task took returns, filtered as the framework asked.
  recover(fw.id, ag->id, role, pool, refuse_s);
}

std::string Master::validate_task(const FrameworkEntry& fw, const AgentEntry& ag,
                                  wire::TaskInfo::Reader info, const Resources& pool,
                                  const std::set<TaskId>& batch, Resources& asked) {
  auto tid = str(info.getTaskId());
  if (!valid_task_id(tid))
    return "task id '" + tid + "' is empty, too long or holds spaces, '/' or control characters";
  if (fw.tasks.count(tid) || batch.count(tid))
    return "task id '" + tid + "' is already in use";
  auto aid = str(info.getAgentId());
  if (!aid.empty() && aid != ag.id)
    return "task names agent " + aid + " but the offers are from " + ag.id;
  auto r = from_wire(info.getResources());
  if (!r)
    return "bad resources: " + describe(r.error());
  if (r->empty())
    return "a task must use some resources";
  if (!pool.contains(*r))
    return "task uses " + r->to_string() + " but the offers have only " + pool.to_string() +
           " left";
  if (info.hasExecutor())
    return "custom executors are not supported yet; give the task a command";
  if (!info.hasCommand())
    return "task has no command";
  auto cmd = info.getCommand();
  if (cmd.isShell() && cmd.getShell().size() == 0)
    return "empty shell command";
  if (cmd.isArgv() && (cmd.getArgv().size() == 0 || cmd.getArgv()[0].size() == 0))
    return "empty argv";
  for (auto e : cmd.getEnvironment())
    if (e.getName().size() == 0 || str(e.getName()).find('=') != std::string::npos)
      return "bad environment variable name '" + str(e.getName()) + "'";
  if (config_.authorizer) {
    // The user the task runs as: its own, else its framework's (the agent
    // decides the same way).
    auto user = str(cmd.getUser());
    if (user.empty())
      user = fw.user;
    if (auto d = config_.authorizer->authorize(fw.principal, security::Action::run_tasks, user); !d)
      return "not authorized: " + d.reason;
  }
  asked = std::move(*r);
  return {};
}

void Master::launch_task(FrameworkEntry& fw, AgentEntry& ag, const std::string& role,
                         wire::TaskInfo::Reader info, Resources& pool) {
  static const std::set<TaskId> no_batch;
  Resources asked;
  auto why = validate_task(fw, ag, info, pool, no_batch, asked);
  auto tid = str(info.getTaskId());
  if (!why.empty()) {
    ++counters_.tasks_invalid;
    log().info("master: framework {} task '{}' invalid: {}", fw.id, tid, why);
    return send_master_update(fw, tid, ag.id, State::ERROR, Reason::TASK_INVALID, why);
  }
  if (fw.tasks.size() >= config_.tasks_per_framework_max) {
    ++counters_.tasks_invalid;
    return send_master_update(fw, tid, ag.id, State::ERROR, Reason::TASK_INVALID,
                              "too many tasks for one framework");
  }
  pool -= asked;
  book_task(fw, ag, role, tid, asked);
  fw.tasks[tid].name = str(info.getName());
  send(ag.address, build<wire::RunTask>([&](wire::RunTask::Builder b) {
         framework_to_wire(fw, b.initFrameworkInfo());
         b.setTask(info);
         b.getTask().setAgentId(ag.id);
         b.setBootId(ag.boot_id);
         b.setRegistrationSeq(ag.registration_seq);
       }));
}

void Master::book_task(FrameworkEntry& fw, AgentEntry& ag, const std::string& role,
                       const TaskId& tid, const Resources& asked) {
  auto& task = fw.tasks[tid];
  task.id = tid;
  task.framework = fw.id;
  task.agent = ag.id;
  task.role = role;
  task.resources = asked;
  task.state = State::STAGING;
  task.staged_at = now();
  task.status_time_ns = timestamp_ns(node());
  ag.tasks.insert({fw.id, tid});
  mark_task(fw.id, tid);
  ++counters_.tasks_launched;
}

void Master::framework_to_wire(const FrameworkEntry& fw, wire::FrameworkInfo::Builder fi) const {
  fi.setFrameworkId(fw.id);
  fi.setName(fw.name);
  fi.setUser(fw.user);
  fi.setPrincipal(fw.principal);
  auto roles = fi.initRoles(static_cast<unsigned>(fw.roles.size()));
  for (unsigned i = 0; i < fw.roles.size(); ++i)
    roles.set(i, fw.roles[i]);
  fi.setFailoverTimeoutNs(fw.failover_timeout.count());
  auto caps = fi.initCapabilities(static_cast<unsigned>(fw.capabilities.size()));
  unsigned i = 0;
  for (auto c : fw.capabilities)
    caps.set(i++, c);
}

std::string Master::validate_group(const FrameworkEntry& fw, const AgentEntry& ag,
                                   wire::Operation::LaunchGroup::Reader group,
                                   const Resources& pool, std::vector<Resources>& asked) {
  auto tasks = group.getTasks();
  if (tasks.size() == 0)
    return "the group has no tasks";
  Resources left = pool;
  if (group.hasExecutor()) {
    auto ex = group.getExecutor();
    if (ex.getType() != wire::ExecutorInfo::Type::DEFAULT)
      return "the group's executor must be of type default (custom executors are not "
             "supported yet)";
    auto eid = str(ex.getExecutorId());
    if (!eid.empty() && !valid_task_id(eid))
      return "executor id '" + eid + "' is too long or holds spaces, '/' or control characters";
    auto efid = str(ex.getFrameworkId());
    if (!efid.empty() && efid != fw.id)
      return "the group's executor names framework " + efid;
    if (ex.getResources().size() != 0)
      return "executor resources are not supported yet for task groups; give them to the "
             "tasks";
  }
  // Each task against what the tasks before it left: the group's sum must fit.
  std::set<TaskId> batch;
  asked.clear();
  for (auto t : tasks) {
    auto tid = str(t.getTaskId());
    if (t.hasExecutor())
      return "task '" + tid + "': a task of a group must not name an executor";
    if (!t.hasCommand())
      return "task '" + tid + "': task has no command";
    Resources r;
    auto why = validate_task(fw, ag, t, left, batch, r);
    if (!why.empty())
      return "task '" + tid + "': " + why +
             (batch.empty() ? "" : " (after the group's earlier tasks)");
    left -= r;
    batch.insert(tid);
    asked.push_back(std::move(r));
  }
  if (fw.tasks.size() + tasks.size() > config_.tasks_per_framework_max)
    return "too many tasks for one framework";
  return {};
}

void Master::refuse_group(const FrameworkEntry& fw, const AgentEntry& ag,
                          wire::Operation::LaunchGroup::Reader group, const std::string& why) {
  log().info("master: framework {} task group invalid: {}", fw.id, why);
  for (auto t : group.getTasks()) {
    ++counters_.tasks_invalid;
    send_master_update(fw, str(t.getTaskId()), ag.id, State::ERROR, Reason::TASK_GROUP_INVALID,
                       "task group invalid: " + why);
  }
}

void Master::launch_group(FrameworkEntry& fw, AgentEntry& ag, const std::string& role,
                          wire::Operation::LaunchGroup::Reader group, Resources& pool) {
  std::vector<Resources> asked;
  auto why = validate_group(fw, ag, group, pool, asked);
  if (!why.empty())
    return refuse_group(fw, ag, group, why);
  // Whole or nothing: from here on every task is booked.
  auto tasks = group.getTasks();
  std::string executor_id;
  if (group.hasExecutor())
    executor_id = str(group.getExecutor().getExecutorId());
  if (executor_id.empty())
    executor_id = "group-" + str(tasks[0].getTaskId());
  for (unsigned i = 0; i < tasks.size(); ++i) {
    pool -= asked[i];
    book_task(fw, ag, role, str(tasks[i].getTaskId()), asked[i]);
    auto& booked = fw.tasks[str(tasks[i].getTaskId())];
    booked.name = str(tasks[i].getName());
    booked.executor_id = executor_id;
  }
  log().debug("master: {} launches a group of {} task(s) under {} on {}", fw.id, tasks.size(),
              executor_id, ag.id);
  send(ag.address, build<wire::RunTaskGroup>([&](wire::RunTaskGroup::Builder b) {
         framework_to_wire(fw, b.initFrameworkInfo());
         b.setBootId(ag.boot_id);
         b.setRegistrationSeq(ag.registration_seq);
         if (group.hasExecutor())
           b.setExecutor(group.getExecutor());
         else
           b.initExecutor();
         auto ex = b.getExecutor();
         ex.setExecutorId(executor_id);
         ex.setFrameworkId(fw.id);
         ex.setType(wire::ExecutorInfo::Type::DEFAULT);
         auto out = b.initTasks(tasks.size());
         for (unsigned i = 0; i < tasks.size(); ++i) {
           out.setWithCaveats(i, tasks[i]);
           out[i].setAgentId(ag.id);
         }
       }));
}

void Master::free_task_resources(Task& task) {
  if (task.resources_freed)
    return;
  task.resources_freed = true;
  auto* a = agent(task.agent);
  if (a && a->in_allocator)
    recover(task.framework, task.agent, task.role, task.resources);
}

void Master::set_task_state(Task& task, State state, Reason reason, const std::string& message) {
  task.state = state;
  task.reason = reason;
  task.message = message;
  task.status_state = state;
  task.status_time_ns = timestamp_ns(node());
  mark_task(task.framework, task.id);
  if (is_terminal(state))
    if (auto* a = agent(task.agent); a && a->drain == wire::DrainState::DRAINING) {
      auto id = a->id;
      defer([this, id] {
        if (auto* drained = agent(id))
          check_drained(*drained);
      });
    }
}

void Master::complete_task(FrameworkEntry& fw, const TaskId& id) {
  auto it = fw.tasks.find(id);
  if (it == fw.tasks.end())
    return;
  free_task_resources(it->second);
  if (auto* a = agent(it->second.agent)) {
    a->tasks.erase({fw.id, id});
    a->kills_enforced.erase({fw.id, id});
  }
  mark_task_completed(it->second);
  completed_.push_back({{fw.id, id}, it->second.agent, it->second.state});
  while (completed_.size() > config_.completed_tasks_max)
    completed_.pop_front();
  fw.tasks.erase(it);
}

}  // namespace tessera
