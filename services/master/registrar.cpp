// The master's registry policy: what it records when, how it recovers from
// the registry when it starts, and the one-at-a-time, batched commits
// (mechanism: services/registry).

#include "services/master/master.hpp"

#include "runtime/log.hpp"

#include <algorithm>
#include <utility>

namespace tessera {

bool Master::on_store(std::function<std::function<void()>()> work) {
  // In a simulation the store runs inline (a MemoryStore, or a file the
  // test owns) and its answer comes as a message to self, so a seed
  // replays; elsewhere on the blocking pool's store lane.
  if (node().simulation()) {
    defer(work());
    return true;
  }
  return blocking(Work::store, std::move(work));
}

void Master::read_registry() {
  auto store = store_;
  bool queued = on_store([this, store]() -> std::function<void()> {
    auto snapshot = store->load();
    expected<RegistryState> state =
        snapshot ? decode_registry(*snapshot) : expected<RegistryState>(snapshot.error());
    return [this, state = std::move(state)]() mutable {
      if (!state)
        return registry_failed(state.error());
      recover_from_registry(std::move(*state));
    };
  });
  if (!queued)
    registry_failed(make_error(Errc::overloaded, "cannot queue the registry read"));
}

void Master::recover_from_registry(RegistryState state) {
  registry_version_ = state.version;
  epoch_ = state.epoch + 1;
  std::vector<const RegistryAgent*> removed_agents;
  size_t unreachable = 0;
  for (auto& [id, a] : state.agents) {
    removal_order_ = std::max(removal_order_, a.order + 1);
    switch (a.state) {
      case RegistryAgent::State::admitted:
        recovered_agents_.insert(id);
        break;
      case RegistryAgent::State::unreachable:
        ++unreachable;
        break;
      case RegistryAgent::State::removed:
        removed_agents.push_back(&a);
        break;
    }
  }
  std::sort(removed_agents.begin(), removed_agents.end(),
            [](auto* x, auto* y) { return x->order < y->order; });
  for (auto* a : removed_agents) {
    removed_agents_.emplace(a->id, a->reason);
    removed_agents_order_.push_back(a->id);
  }
  size_t ended = 0;
  for (auto& [agent_id, keys] : state.ended) {
    ended += keys.size();
    ended_[agent_id].insert(keys.begin(), keys.end());
  }
  std::vector<const RegistryFramework*> removed_frameworks;
  for (auto& [id, f] : state.frameworks) {
    removal_order_ = std::max(removal_order_, f.order + 1);
    if (f.removed) {
      removed_frameworks.push_back(&f);
      continue;
    }
    // Known before it resubscribes: it keeps its id and tasks; no offers
    // until it does.
    FrameworkEntry entry;
    entry.id = id;
    entry.name = f.name;
    entry.user = f.user;
    entry.principal = f.principal;
    entry.roles = f.roles;
    entry.failover_timeout = Duration(f.failover_timeout_ns);
    entry.capabilities.insert(f.capabilities.begin(), f.capabilities.end());
    add_unsubscribed_framework(std::move(entry));
  }
  std::sort(removed_frameworks.begin(), removed_frameworks.end(),
            [](auto* x, auto* y) { return x->order < y->order; });
  for (auto* f : removed_frameworks) {
    removed_frameworks_.insert(f->id);
    removed_order_.push_back(f->id);
  }
  // Weights and quotas in force before anything can be allocated: agents
  // are admitted only once this master serves.
  for (auto& [role, r] : state.roles) {
    roles_[role] = r;
    apply_role(r);
  }
  agent_records_.insert(state.agents.begin(), state.agents.end());
  framework_records_.insert(state.frameworks.begin(), state.frameworks.end());
  log().info(
      "master: registry read (version {}): {} agent(s) to reregister, {} unreachable, {} removed; "
      "{} framework(s), {} removed; {} task(s) told lost while away; {} role(s) with a weight or "
      "quota; this is epoch {}",
      state.version, recovered_agents_.size(), unreachable, removed_agents.size(),
      frameworks_.size(), removed_frameworks.size(), ended, roles_.size(), epoch_);
  persist({master_record(epoch_)}, [this] { start_serving(); });
}

void Master::start_serving() {
  serving_ = true;
  log().info("master {} serves (epoch {}); {} message(s) held meanwhile", me().to_string(), epoch_,
             held_.size());
  for (auto& env : std::exchange(held_, {}))
    redeliver(env);
  after(config_.agent_ping_interval, [this] { ping_agents(); });
  after(config_.framework_heartbeat_interval, [this] { heartbeat(); });
  after(config_.agent_reregister_timeout, [this] { end_recovery(); });
}

void Master::persist(std::vector<RegistryChange> changes, std::function<void()> then) {
  pending_writes_.push_back({std::move(changes), std::move(then)});
  if (!committing_)
    commit_next();
}

void Master::commit_next() {
  if (pending_writes_.empty())
    return;
  // Group commit: whole writes, up to the batch limit (at least one).
  auto changes = std::make_shared<std::vector<RegistryChange>>();
  std::vector<std::function<void()>> thens;
  while (!pending_writes_.empty()) {
    auto& next = pending_writes_.front();
    if (!thens.empty() &&
        changes->size() + next.changes.size() > config_.registry_changes_per_commit_max)
      break;
    for (auto& c : next.changes)
      changes->push_back(std::move(c));
    thens.push_back(std::move(next.then));
    pending_writes_.pop_front();
  }
  committing_ = true;
  if (changes->empty()) {
    // Nothing to write: the continuations still run after what was queued
    // before them, as a message to self.
    return defer([this, thens = std::move(thens)] { committed(thens); });
  }
  auto store = store_;
  auto version = registry_version_;
  bool queued = on_store(
      [this, store, version, changes, thens = std::move(thens)]() -> std::function<void()> {
        auto result = store->commit(version, *changes);
        return [this, result = std::move(result), n = changes->size(), thens]() {
          if (!result)
            return registry_failed(result.error());
          registry_version_ = *result;
          ++counters_.registry_commits;
          counters_.registry_changes += n;
          committed(thens);
        };
      });
  if (!queued)
    registry_failed(make_error(Errc::overloaded, "cannot queue a registry commit"));
}

void Master::committed(const std::vector<std::function<void()>>& thens) {
  // Still committing while they run: what they persist waits for the next
  // commit, which starts after them (one commit in flight, ever).
  for (auto& then : thens)
    if (then)
      then();
  committing_ = false;
  commit_next();
}

void Master::registry_failed(const caf::error& err) {
  // Acting on what is not recorded could tell a framework something a
  // later master contradicts; stopping cannot. A supervisor restarts the
  // master, which recovers from what the registry holds.
  log().error("master: registry {} failed: {}; the master stops", store_->describe(),
              describe(err));
  serving_ = false;
  pending_writes_.clear();
  stop();
}

std::vector<RegistryChange> Master::agent_changes(const AgentEntry& a, RegistryAgent::State s,
                                                  const std::string& reason) {
  return agent_changes(a.id, a.hostname, a.address.to_string(), s, reason);
}

std::vector<RegistryChange> Master::agent_changes(const AgentId& id, const std::string& hostname,
                                                  const std::string& address,
                                                  RegistryAgent::State s,
                                                  const std::string& reason) {
  RegistryAgent r;
  r.id = id;
  r.hostname = hostname;
  r.address = address;
  r.state = s;
  r.since_ns = now().time_since_epoch().count();
  if (auto old = agent_records_.find(id); old != agent_records_.end()) {
    // An operator's maintenance outlives reconnections and failovers.
    r.deactivated = old->second.deactivated;
    r.drain = old->second.drain;
    r.drain_grace_ns = old->second.drain_grace_ns;
    r.reservations = old->second.reservations;
  }
  std::vector<RegistryChange> changes;
  if (s == RegistryAgent::State::removed) {
    r.reason = reason;
    r.order = removal_order_++;
    r.reservations = {};  // a new agent id starts with none
    // It never comes back as itself: what it was told is moot.
    if (auto ended = ended_.find(id); ended != ended_.end()) {
      for (auto& key : ended->second)
        changes.push_back(ended_removal(id, key));
      ended_.erase(ended);
    }
  }
  agent_records_[id] = r;
  changes.push_back(agent_record(r));
  return changes;
}

void Master::persist_agent(const AgentId& id, std::vector<RegistryChange> changes,
                           std::function<void()> then) {
  ++agents_writing_[id];
  persist(std::move(changes), [this, id, then = std::move(then)] {
    if (--agents_writing_[id] == 0)
      agents_writing_.erase(id);
    then();
  });
}

bool Master::away_in_registry(const AgentId& id) const {
  if (auto it = agents_.find(id);
      it != agents_.end() && it->second.state != AgentState::unreachable)
    return false;
  auto r = agent_records_.find(id);
  return r != agent_records_.end() && r->second.state != RegistryAgent::State::removed;
}

void Master::answer_unknown(const FrameworkEntry& fw, const TaskId& tid, const AgentId& aid,
                            State state, Reason reason, const std::string& message) {
  if (state != State::LOST || aid.empty() || !away_in_registry(aid))
    return send_master_update(fw, tid, aid, state, reason, message);
  // The agent may come back running it: recorded told lost first.
  std::vector<RegistryChange> changes;
  if (ended_[aid].insert({fw.id, tid}).second)
    changes.push_back(ended_record(aid, {fw.id, tid}));
  persist(std::move(changes), [this, fid = fw.id, tid, aid, state, reason, message] {
    if (auto* f = framework(fid))
      send_master_update(*f, tid, aid, state, reason, message);
  });
}

RegistryFramework Master::framework_record_of(const FrameworkEntry& fw) const {
  if (auto it = framework_records_.find(fw.id); it != framework_records_.end())
    return it->second;
  RegistryFramework r;
  r.id = fw.id;
  r.name = fw.name;
  r.user = fw.user;
  r.principal = fw.principal;
  r.roles = fw.roles;
  r.failover_timeout_ns = fw.failover_timeout.count();
  r.capabilities.assign(fw.capabilities.begin(), fw.capabilities.end());
  return r;
}

}  // namespace tessera
