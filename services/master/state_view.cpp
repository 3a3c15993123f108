// The state view following its master: subscribing, applying the snapshot
// and each batch of changes, and turning them into SUBSCRIBE events.

#include "services/master/state_view.hpp"

#include "runtime/log.hpp"

namespace tessera {

namespace {

bool terminal(wire::TaskState s) {
  return is_terminal(s);
}

// Subtracts what from holds of r. The view's books follow the master's, but
// an agent removed and added again starts from nothing while its old tasks
// may still end: never take what is not there.
void take(Resources& from, const Resources& r) {
  if (from.contains(r)) {
    from -= r;
    return;
  }
  Resources present;
  r.visit(
      [&](const std::string& name, const std::string& role, Milli) {
        auto q = std::min(from.get(name, role), r.get(name, role));
        if (q > 0)
          present += Resources::scalar(name, q, role);
      },
      [](auto&&...) {}, [](auto&&...) {});
  from -= present;
}

}  // namespace

StateView::StateView(caf::actor_config& cfg, ActorInit init, StateViewConfig config,
                     std::shared_ptr<StateViewHandle> handle)
    : Actor(cfg, std::move(init)), config_(std::move(config)), handle_(std::move(handle)) {
  handle_->inbox = make_inbox(config_.inbox_capacity);
  handle_->view = this;
  on<wire::MasterEventBatch>([this](const auto& m) { on_batch(m); });
  on_lost([this](const Address& who, const caf::error& why) {
    if (who == config_.master)
      lost_master("the master is gone: " + describe(why));
  });
}

void StateView::on_start() {
  subscribe_to_master();
  after(config_.heartbeat_interval, [this] { heartbeat(); });
}

void StateView::on_stopping() {
  close_streams();
}

void StateView::subscribe_to_master() {
  if (ready_)
    return;
  watch(config_.master);
  send(config_.master, build<wire::SubscribeMasterEvents>([](auto) {}));
  resubscribe_timer_ = after(config_.resubscribe_interval, [this] {
    resubscribe_timer_ = 0;
    if (!ready_ && !loading_)
      subscribe_to_master();
  });
}

void StateView::lost_master(const std::string& why) {
  if (ready_ || loading_)
    log().info("state view: {}; following the next master", why);
  ready_ = false;
  loading_ = false;
  close_streams();
  if (!resubscribe_timer_)
    resubscribe_timer_ = after(config_.resubscribe_interval, [this] {
      resubscribe_timer_ = 0;
      subscribe_to_master();
    });
}

void StateView::on_batch(const Received<wire::MasterEventBatch>& m) {
  if (m.sender() != config_.master)
    return;
  ++generation_;
  auto b = m.body();
  if (b.getReset()) {
    agents_.clear();
    frameworks_.clear();
    tasks_.clear();
    for (auto& b : task_buckets_)
      b = TaskBucket{};
    executors_.clear();
    offers_.clear();
    roles_.clear();
    close_streams();
    ready_ = false;
    loading_ = true;
    next_sequence_ = b.getFirstSequence();
    master_started_ns_ = b.getMasterStartNs();
  }
  if (!ready_ && !loading_)
    return;  // a change for a copy already dropped: wait for the snapshot
  if (b.getFirstSequence() != next_sequence_) {
    ++gaps_;
    log().warn("state view: missed events {} to {} of the master; subscribing again",
               next_sequence_, b.getFirstSequence());
    lost_master("events were missed");
    return;
  }
  next_sequence_ += b.getEvents().size();
  for (auto e : b.getEvents())
    apply(e);
  if (b.getSnapshotDone()) {
    loading_ = false;
    ready_ = true;
    log().info("state view: following {} ({} agents, {} frameworks, {} tasks)",
               config_.master.to_string(), agents_.size(), frameworks_.size(), tasks_.size());
  }
}

void StateView::apply(wire::MasterEvent::Reader e) {
  switch (e.which()) {
    case wire::MasterEvent::AGENT_ADDED:
      return apply_agent(e.getAgentAdded());
    case wire::MasterEvent::AGENT_REMOVED:
      return remove_agent(str(e.getAgentRemoved()));
    case wire::MasterEvent::FRAMEWORK_ADDED:
      return apply_framework(e.getFrameworkAdded());
    case wire::MasterEvent::FRAMEWORK_REMOVED:
      return remove_framework(str(e.getFrameworkRemoved()));
    case wire::MasterEvent::TASK_ADDED:
      return apply_task(e.getTaskAdded(), false);
    case wire::MasterEvent::TASK_COMPLETED:
      return apply_task(e.getTaskCompleted(), true);
    case wire::MasterEvent::OFFER_ADDED:
      return apply_offer(e.getOfferAdded());
    case wire::MasterEvent::OFFER_REMOVED:
      return remove_offer(str(e.getOfferRemoved()));
    case wire::MasterEvent::ROLE_UPDATED: {
      auto r = e.getRoleUpdated();
      auto quota = from_wire(r.getQuota());
      auto& role = roles_[str(r.getRole())] =
          RoleEntry{r.getWeight(), quota ? *quota : Resources{}};
      if (!loading_)
        publish("ROLE_UPDATED", {{"role_updated", {{"role", role_json(str(r.getRole()), role)}}}},
                nullptr, nullptr);
      return;
    }
  }
}

void StateView::apply_agent(wire::AgentView::Reader in) {
  auto id = str(in.getId());
  auto [it, fresh] = agents_.try_emplace(id);
  auto& a = it->second;
  bool changed = fresh || a.state != in.getState() || a.deactivated != in.getDeactivated() ||
                 a.drain != in.getDrain();
  a.id = id;
  a.address = str(in.getAddress());
  a.hostname = str(in.getHostname());
  a.http_address = str(in.getHttpAddress());
  auto total = from_wire(in.getTotal());
  auto reserved = from_wire(in.getReservedDynamic());
  if (total && reserved) {
    changed = changed || a.total != *total || a.reserved_dynamic != *reserved;
    a.total = std::move(*total);
    a.reserved_dynamic = std::move(*reserved);
  }
  a.attributes = from_wire(in.getAttributes());
  a.state = in.getState();
  a.deactivated = in.getDeactivated();
  a.drain = in.getDrain();
  a.registered_at_ns = in.getRegisteredAtNs();
  render(a);
  if (!changed || loading_)
    return;
  publish(fresh ? "AGENT_ADDED" : "AGENT_UPDATED",
          {{fresh ? "agent_added" : "agent_updated", {{"agent", agent_json(a)}}}}, nullptr,
          nullptr);
}

void StateView::remove_agent(const std::string& id) {
  if (!agents_.erase(id))
    return;
  if (!loading_)
    publish("AGENT_REMOVED", {{"agent_removed", {{"agent_id", {{"value", id}}}}}}, nullptr,
            nullptr);
}

void StateView::apply_framework(wire::FrameworkView::Reader in) {
  auto info = in.getInfo();
  auto id = str(info.getFrameworkId());
  auto [it, fresh] = frameworks_.try_emplace(id);
  auto& f = it->second;
  f.id = id;
  f.name = str(info.getName());
  f.user = str(info.getUser());
  f.principal = str(info.getPrincipal());
  f.roles.clear();
  for (auto r : info.getRoles())
    f.roles.push_back(str(r));
  f.capabilities.clear();
  for (auto c : info.getCapabilities()) {
    static const char* names[] = {"PARTITION_AWARE", "MULTI_ROLE", "TASK_KILLED_STATE",
                                  "REVOCABLE_RESOURCES", "GPU_RESOURCES"};
    auto i = static_cast<size_t>(c);
    if (i < std::size(names))
      f.capabilities.push_back(names[i]);
  }
  f.suppressed_roles.clear();
  for (auto r : in.getSuppressedRoles())
    f.suppressed_roles.push_back(str(r));
  f.failover_timeout_s = double(info.getFailoverTimeoutNs()) / 1e9;
  f.address = str(in.getAddress());
  f.connected = in.getConnected();
  f.registered_at_ns = in.getRegisteredAtNs();
  if (loading_)
    return;
  const char* key = fresh ? "framework_added" : "framework_updated";
  publish(fresh ? "FRAMEWORK_ADDED" : "FRAMEWORK_UPDATED",
          {{key, {{"framework", framework_json(f)}}}}, nullptr, &f);
}

void StateView::remove_framework(const std::string& id) {
  auto it = frameworks_.find(id);
  if (it == frameworks_.end())
    return;
  auto json = framework_json(it->second);
  if (!loading_)
    publish("FRAMEWORK_REMOVED",
            {{"framework_removed", {{"framework_info", json["framework_info"]}}}}, nullptr,
            &it->second);
  completed_frameworks_.push_back(std::move(json));
  while (completed_frameworks_.size() > config_.completed_frameworks_max)
    completed_frameworks_.pop_front();
  frameworks_.erase(it);
}

void StateView::apply_task(wire::TaskView::Reader in, bool completed) {
  auto st = in.getStatus();
  TaskKey key{str(in.getFrameworkId()), str(st.getTaskId())};
  auto [it, fresh] = tasks_.try_emplace(key);
  auto& t = it->second;
  bool was_terminal = !fresh && terminal(t.state);
  if (!fresh)
    account(t, -1);
  Status s;
  s.state = st.getState();
  s.reason = st.getReason() == wire::TaskStatus::Reason::NONE ? "" : to_string(st.getReason());
  s.message = str(st.getMessage());
  s.timestamp_ns = st.getTimestampNs();
  s.healthy = st.getHasHealthy() ? (st.getHealthy() ? 1 : 0) : -1;
  s.exit_code = st.getExitCode();
  s.term_signal = st.getTermSignal();
  bool status_changed = fresh || t.statuses.empty() || t.statuses.back().state != s.state ||
                        t.statuses.back().healthy != s.healthy;
  t.framework = key.first;
  t.id = key.second;
  t.agent = str(in.getAgentId());
  t.name = str(in.getName());
  t.role = str(in.getRole());
  if (st.getExecutorId().size() > 0)
    t.executor = str(st.getExecutorId());
  if (auto r = from_wire(in.getResources()))
    t.resources = std::move(*r);
  t.state = in.getState();
  if (status_changed) {
    t.statuses.push_back(s);
    while (t.statuses.size() > config_.statuses_per_task_max)
      t.statuses.pop_front();
  } else {
    t.statuses.back() = s;
  }
  render(t);
  auto& bucket = bucket_of(key);
  bucket.dirty = true;
  if (fresh)
    bucket.keys.insert(key);
  if (terminal(t.state) && !was_terminal)
    ++terminal_counts_[t.state];
  account(t, +1);
  if (!loading_) {
    auto* fw = frameworks_.count(t.framework) ? &frameworks_.at(t.framework) : nullptr;
    if (fresh)
      publish("TASK_ADDED", {{"task_added", {{"task", nlohmann::json::parse(t.json)}}}}, &t, fw);
    else if (status_changed)
      publish("TASK_UPDATED",
              {{"task_updated",
                {{"framework_id", {{"value", t.framework}}},
                 {"agent_id", {{"value", t.agent}}},
                 {"state", to_string(t.state)},
                 {"status", status_json(t, t.statuses.back())}}}},
              &t, fw);
  }
  if (completed)
    complete(key);
}

void StateView::complete(const TaskKey& key) {
  auto it = tasks_.find(key);
  if (it == tasks_.end())
    return;
  account(it->second, -1);
  auto& bucket = bucket_of(key);
  bucket.keys.erase(key);
  bucket.dirty = true;
  completed_.push_back(std::move(it->second));
  tasks_.erase(it);
  while (completed_.size() > config_.completed_tasks_max)
    completed_.pop_front();
}

void StateView::account(const TaskEntry& t, int sign) {
  if (terminal(t.state))
    return;
  if (!t.executor.empty()) {
    auto key = std::make_tuple(t.agent, t.framework, t.executor);
    if (sign > 0)
      ++executors_[key];
    else if (auto e = executors_.find(key); e != executors_.end() && --e->second == 0)
      executors_.erase(e);
  }
  auto add = [&](Resources& r) {
    if (sign > 0)
      r += t.resources;
    else
      take(r, t.resources);
  };
  if (auto a = agents_.find(t.agent); a != agents_.end())
    add(a->second.used);
  if (auto f = frameworks_.find(t.framework); f != frameworks_.end())
    add(f->second.used);
}

void StateView::apply_offer(wire::OfferView::Reader in) {
  auto id = str(in.getId());
  remove_offer(id);
  OfferEntry o{str(in.getFrameworkId()), str(in.getAgentId()), str(in.getRole()), {}};
  if (auto r = from_wire(in.getResources()))
    o.resources = std::move(*r);
  if (auto a = agents_.find(o.agent); a != agents_.end())
    a->second.offered += o.resources;
  if (auto f = frameworks_.find(o.framework); f != frameworks_.end())
    f->second.offered += o.resources;
  offers_.emplace(id, std::move(o));
}

void StateView::remove_offer(const std::string& id) {
  auto it = offers_.find(id);
  if (it == offers_.end())
    return;
  auto& o = it->second;
  if (auto a = agents_.find(o.agent); a != agents_.end())
    take(a->second.offered, o.resources);
  if (auto f = frameworks_.find(o.framework); f != frameworks_.end())
    take(f->second.offered, o.resources);
  offers_.erase(it);
}

}  // namespace tessera
