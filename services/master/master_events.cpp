// The master's event stream (capnp/operator.capnp MasterEventBatch): how the
// state view, and through it every operator read and SUBSCRIBE stream, learns
// what the master knows without ever asking it.
//
// Mechanism: handlers mark what they changed (mark_task, mark_agent, ...);
// the first mark of a handler defers one publish_events(), which reads the
// marked objects as they are now and sends them as one batch. So a handler
// that changes a task three times sends it once, the events cost nothing
// while no one subscribes, and the master never formats JSON or serves a
// read. A task that leaves the books (acknowledged terminal, or removed with
// its agent or framework) is copied when it leaves, since it is gone by the
// time the batch is built.

#include "services/master/master.hpp"

#include "runtime/log.hpp"

namespace tessera {

namespace {

wire::AgentViewState view_state(int state) {
  // Master::AgentState, in its declaration order.
  static constexpr wire::AgentViewState states[] = {
      wire::AgentViewState::ADMITTING, wire::AgentViewState::REGISTERED,
      wire::AgentViewState::DISCONNECTED, wire::AgentViewState::UNREACHABLE,
      wire::AgentViewState::REMOVING};
  return states[state];
}

void role_to_wire(const RegistryRole& r, wire::RoleView::Builder out) {
  out.setRole(r.role);
  out.setWeight(r.weight == 0 ? 1.0 : r.weight);
  to_wire(r.quota, out.initQuota(wire_size(r.quota)));
}

// Builds batches of at most max events, each sent with its first sequence.
class BatchWriter {
 public:
  BatchWriter(uint64_t& sequence, int64_t started_at_ns, size_t max)
      : sequence_(sequence), started_at_ns_(started_at_ns), max_(max) {}

  template <class Fill>
  void add(Fill fill) {
    pending_.push_back(std::move(fill));
    if (pending_.size() >= max_)
      flush(false);
  }

  // Sends what is pending (reset on the first batch when asked; done marks
  // the last batch of a snapshot).
  template <class Send>
  void finish(Send send, bool reset_first, bool snapshot) {
    send_ = std::function<void(const Outgoing&)>(std::move(send));
    reset_ = reset_first;
    snapshot_ = snapshot;
    for (auto& out : ready_)
      send_(out);
    ready_.clear();
    flush(true);
  }

 private:
  void flush(bool last) {
    if (pending_.empty() && !(last && (snapshot_ || reset_)))
      return;
    auto first = sequence_;
    sequence_ += pending_.size();
    auto out = build<wire::MasterEventBatch>([&](wire::MasterEventBatch::Builder b) {
      b.setReset(reset_);
      b.setSnapshotDone(last && snapshot_);
      b.setFirstSequence(first);
      b.setMasterStartNs(started_at_ns_);
      auto list = b.initEvents(static_cast<unsigned>(pending_.size()));
      for (unsigned i = 0; i < pending_.size(); ++i)
        pending_[i](list[i]);
    });
    reset_ = false;
    pending_.clear();
    if (send_)
      send_(out);
    else
      ready_.push_back(std::move(out));
  }

  uint64_t& sequence_;
  int64_t started_at_ns_;
  size_t max_;
  bool reset_ = false;
  bool snapshot_ = false;
  std::vector<std::function<void(wire::MasterEvent::Builder)>> pending_;
  std::vector<Outgoing> ready_;
  std::function<void(const Outgoing&)> send_;
};

}  // namespace

void Master::on_subscribe_events(const Received<wire::SubscribeMasterEvents>& m) {
  // Only actors of this node: the state view runs beside its master.
  if (!node().is_local(m.sender())) {
    ++counters_.invalid_calls;
    log().warn("master: refusing an event subscription from {}: not on this node",
               m.sender().to_string());
    return;
  }
  if (!event_subscribers_.count(m.sender()) && event_subscribers_.size() >= event_subscribers_max) {
    ++counters_.invalid_calls;
    log().warn("master: refusing an event subscription from {}: {} subscribers already",
               m.sender().to_string(), event_subscribers_.size());
    return;
  }
  event_subscribers_.insert(m.sender());
  watch(m.sender());
  send_snapshot(m.sender());
}

void Master::send_snapshot(const Address& to) {
  // Pending marks go out first, so the snapshot is the newest state and
  // nothing marked before it is sent after it.
  if (dirty_.scheduled)
    publish_events();
  // The snapshot's events are numbered so that its last is the stream's
  // last: the next change is the one after it. The stream's counter does
  // not move, so other subscribers see no gap. (Only with no subscriber so
  // far can there be more objects than events ever numbered; the counter
  // then jumps, unseen.)
  uint64_t total = agents_.size() + frameworks_.size() + offers_.size() + roles_.size();
  for (auto& [id, fw] : frameworks_)
    total += fw.tasks.size();
  if (event_sequence_ < total)
    event_sequence_ = total;
  uint64_t sequence = event_sequence_ - total;
  BatchWriter w(sequence, started_at_ns_, events_per_batch_max);
  // Named references, not structured bindings: the lambdas capture them.
  for (auto& entry : agents_) {
    auto& a = entry.second;
    w.add([this, &a](wire::MasterEvent::Builder e) { agent_to_wire(a, e.initAgentAdded()); });
  }
  for (auto& entry : frameworks_) {
    auto& fw = entry.second;
    w.add([this, &fw](wire::MasterEvent::Builder e) {
      framework_view_to_wire(fw, e.initFrameworkAdded());
    });
  }
  for (auto& entry : frameworks_)
    for (auto& task : entry.second.tasks) {
      auto& t = task.second;
      w.add([this, &t](wire::MasterEvent::Builder e) { task_to_wire(t, e.initTaskAdded()); });
    }
  for (auto& entry : offers_) {
    auto& o = entry.second;
    w.add([this, &o](wire::MasterEvent::Builder e) { offer_to_wire(o, e.initOfferAdded()); });
  }
  for (auto& entry : roles_) {
    auto& r = entry.second;
    w.add([&r](wire::MasterEvent::Builder e) { role_to_wire(r, e.initRoleUpdated()); });
  }
  w.finish([this, &to](const Outgoing& out) { send(to, out); }, true, true);
}

void Master::schedule_publish() {
  if (dirty_.scheduled)
    return;
  dirty_.scheduled = true;
  defer([this] {
    if (dirty_.scheduled)
      publish_events();
  });
}

void Master::mark_task(const FrameworkId& fid, const TaskId& tid) {
  if (event_subscribers_.empty())
    return;
  // A task marked again before its batch went out (its STARTING and RUNNING
  // handled back to back): the earlier state goes out first, so operators
  // see every state a task passed through.
  if (dirty_.tasks.count({fid, tid}))
    publish_events();
  dirty_.tasks.insert({fid, tid});
  schedule_publish();
}

void Master::mark_task_completed(const Task& task) {
  if (event_subscribers_.empty())
    return;
  dirty_.tasks.erase({task.framework, task.id});
  dirty_.completed.push_back(task);
  schedule_publish();
}

void Master::mark_agent(const AgentId& id) {
  if (event_subscribers_.empty())
    return;
  dirty_.agents.insert(id);
  schedule_publish();
}

void Master::mark_framework(const FrameworkId& id) {
  if (event_subscribers_.empty())
    return;
  dirty_.frameworks.insert(id);
  schedule_publish();
}

void Master::mark_offer(const OfferId& id) {
  if (event_subscribers_.empty())
    return;
  dirty_.offers.insert(id);
  schedule_publish();
}

void Master::mark_role(const std::string& role) {
  if (event_subscribers_.empty())
    return;
  dirty_.roles.insert(role);
  schedule_publish();
}

void Master::publish_events() {
  auto dirty = std::exchange(dirty_, Dirty{});
  if (event_subscribers_.empty())
    return;
  BatchWriter w(event_sequence_, started_at_ns_, events_per_batch_max);
  for (auto& id : dirty.agents)
    if (auto* a = agent(id))
      w.add([this, a](wire::MasterEvent::Builder e) { agent_to_wire(*a, e.initAgentAdded()); });
  for (auto& id : dirty.frameworks)
    if (auto* fw = framework(id))
      w.add([this, fw](wire::MasterEvent::Builder e) {
        framework_view_to_wire(*fw, e.initFrameworkAdded());
      });
  for (auto& [fid, tid] : dirty.tasks) {
    auto* fw = framework(fid);
    if (!fw)
      continue;
    if (auto it = fw->tasks.find(tid); it != fw->tasks.end())
      w.add([this, &t = it->second](wire::MasterEvent::Builder e) {
        task_to_wire(t, e.initTaskAdded());
      });
  }
  for (auto& t : dirty.completed)
    w.add([this, &t](wire::MasterEvent::Builder e) { task_to_wire(t, e.initTaskCompleted()); });
  for (auto& id : dirty.offers) {
    auto it = offers_.find(id);
    if (it == offers_.end()) {
      w.add([&id](wire::MasterEvent::Builder e) { e.setOfferRemoved(id); });
      continue;
    }
    w.add([this, &o = it->second](wire::MasterEvent::Builder e) {
      offer_to_wire(o, e.initOfferAdded());
    });
  }
  for (auto& role : dirty.roles) {
    auto it = roles_.find(role);
    RegistryRole r = it != roles_.end() ? it->second : RegistryRole{role, 0, {}};
    w.add([r](wire::MasterEvent::Builder e) { role_to_wire(r, e.initRoleUpdated()); });
  }
  // Removals last: an agent's or framework's tasks end before it goes.
  for (auto& id : dirty.frameworks)
    if (!framework(id))
      w.add([&id](wire::MasterEvent::Builder e) { e.setFrameworkRemoved(id); });
  for (auto& id : dirty.agents)
    if (!agent(id))
      w.add([&id](wire::MasterEvent::Builder e) { e.setAgentRemoved(id); });
  w.finish(
      [this](const Outgoing& out) {
        for (auto& to : event_subscribers_)
          send(to, out);
      },
      false, false);
}

void Master::task_to_wire(const Task& t, wire::TaskView::Builder out) const {
  out.setFrameworkId(t.framework);
  out.setAgentId(t.agent);
  out.setName(t.name);
  out.setRole(t.role);
  to_wire(t.resources, out.initResources(wire_size(t.resources)));
  out.setState(t.state);
  auto s = out.initStatus();
  s.setTaskId(t.id);
  s.setState(t.status_state);
  s.setReason(t.reason);
  s.setMessage(t.message);
  s.setTimestampNs(t.status_time_ns);
  s.setHasHealthy(t.healthy >= 0);
  s.setHealthy(t.healthy > 0);
  s.setAgentId(t.agent);
  s.setExecutorId(t.executor_id);
  s.setExitCode(t.exit_code);
  s.setTermSignal(t.term_signal);
}

void Master::offer_to_wire(const Offer& o, wire::OfferView::Builder out) const {
  out.setId(o.id);
  out.setFrameworkId(o.framework);
  out.setAgentId(o.agent);
  out.setRole(o.role);
  to_wire(o.resources, out.initResources(wire_size(o.resources)));
}

void Master::agent_to_wire(const AgentEntry& a, wire::AgentView::Builder out) const {
  out.setId(a.id);
  out.setAddress(a.address.to_string());
  out.setHostname(a.hostname);
  to_wire(a.total, out.initTotal(wire_size(a.total)));
  to_wire(a.attributes, out.initAttributes(static_cast<unsigned>(a.attributes.size())));
  out.setState(view_state(static_cast<int>(a.state)));
  out.setDeactivated(a.deactivated);
  out.setDrain(a.drain);
  out.setRegisteredAtNs(a.registered_at_ns);
  out.setHttpAddress(a.http_address);
  to_wire(a.reserved, out.initReservedDynamic(wire_size(a.reserved)));
}

void Master::framework_view_to_wire(const FrameworkEntry& fw,
                                    wire::FrameworkView::Builder out) const {
  framework_to_wire(fw, out.initInfo());
  out.setAddress(fw.address ? fw.address->to_string() : "");
  out.setConnected(fw.connected);
  auto roles = out.initSuppressedRoles(static_cast<unsigned>(fw.suppressed_roles.size()));
  unsigned i = 0;
  for (auto& r : fw.suppressed_roles)
    roles.set(i++, r);
  out.setRegisteredAtNs(fw.registered_at_ns);
}

void Master::note_status(Task& task, wire::TaskStatus::Reader status) {
  task.status_state = status.getState();
  task.status_time_ns = status.getTimestampNs();
  if (status.getHasHealthy())
    task.healthy = status.getHealthy() ? 1 : 0;
  task.exit_code = status.getExitCode();
  task.term_signal = status.getTermSignal();
  if (status.hasExecutorId() && status.getExecutorId().size() > 0)
    task.executor_id = str(status.getExecutorId());
}

void Master::on_metrics_request(const Received<wire::MasterMetricsRequest>& m) {
  // Only from this node: the state view asks for them on a scrape.
  if (!node().is_local(m.sender()))
    return;
  const auto& c = counters_;
  std::vector<std::pair<const char*, double>> values = {
      {"agents_registered_total", double(c.agents_registered)},
      {"agents_reregistered_total", double(c.agents_reregistered)},
      {"agents_unreachable_total", double(c.agents_unreachable)},
      {"agents_removed_total", double(c.agents_removed)},
      {"agents_refused_removed_total", double(c.agents_refused_removed)},
      {"frameworks_subscribed_total", double(c.frameworks_subscribed)},
      {"frameworks_removed_total", double(c.frameworks_removed)},
      {"offers_sent_total", double(c.offers_sent)},
      {"offers_rescinded_total", double(c.offers_rescinded)},
      {"offers_declined_total", double(c.offers_declined)},
      {"tasks_launched_total", double(c.tasks_launched)},
      {"tasks_invalid_total", double(c.tasks_invalid)},
      {"status_updates_total", double(c.status_updates)},
      {"status_updates_refused_total", double(c.status_updates_refused)},
      {"status_updates_absorbed_total", double(c.status_updates_absorbed)},
      {"invalid_calls_total", double(c.invalid_calls)},
      {"refused_principals_total", double(c.refused_principals)},
      // The node's transport security (runtime/peers.hpp).
      {"tls_established_total", double(node().peers().counters().tls_established.load())},
      {"tls_refused_total", double(node().peers().counters().tls_refused.load())},
      {"forged_senders_total", double(node().peers().counters().forged_senders.load())},
      {"forged_sources_total", double(node().peers().counters().forged_sources.load())},
      {"nodes_refused_total", double(node().peers().counters().nodes_refused.load())},
      {"registry_commits_total", double(c.registry_commits)},
      {"registry_changes_total", double(c.registry_changes)},
      {"messages_before_recovery_total", double(c.messages_before_recovery)},
  };
  reply(m, build<wire::MasterMetrics>([&](wire::MasterMetrics::Builder b) {
          auto list = b.initCounters(static_cast<unsigned>(values.size()));
          for (unsigned i = 0; i < values.size(); ++i) {
            list[i].setName(values[i].first);
            list[i].setValue(values[i].second);
          }
        }));
}

}  // namespace tessera
