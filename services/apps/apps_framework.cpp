// The apps framework's control loop: converge each app to its target
// version, under its deployment's strategy; replace what ends; keep the
// records. Offers are in apps_offers.cpp, the calls in apps_changes.cpp, the
// HTTP API in apps_api.cpp.

#include "services/apps/apps_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace tessera::apps {

using json = nlohmann::json;

const char* to_string(AppsFramework::DeployState s) {
  using S = AppsFramework::DeployState;
  switch (s) {
    case S::running:
      return "running";
    case S::canary:
      return "canary";
    case S::success:
      return "success";
    case S::failed:
      return "failed";
    case S::canceled:
      return "canceled";
    case S::rolled_back:
      return "rolled_back";
  }
  return "?";
}

const char* to_string(AppsFramework::DeployKind k) {
  using K = AppsFramework::DeployKind;
  switch (k) {
    case K::start:
      return "start";
    case K::scale:
      return "scale";
    case K::upgrade:
      return "upgrade";
    case K::restart:
      return "restart";
    case K::stop:
      return "stop";
    case K::rollback:
      return "rollback";
  }
  return "?";
}

namespace {

SchedulerConfig scheduler_config(const AppsConfig& c) {
  SchedulerConfig s = c.scheduler;
  s.framework.name = c.name;
  s.framework.roles = {c.role};
  s.framework.failover_timeout = c.failover_timeout;
  s.framework.framework_id = c.loaded.framework_id;
  s.framework.capabilities = {FrameworkCapability::PARTITION_AWARE,
                              FrameworkCapability::TASK_KILLED_STATE};
  s.seed = c.seed;
  return s;
}

std::optional<AppsFramework::DeployKind> kind_from(const std::string& s) {
  using K = AppsFramework::DeployKind;
  for (auto k : {K::start, K::scale, K::upgrade, K::restart, K::stop, K::rollback})
    if (s == to_string(k))
      return k;
  return std::nullopt;
}

}  // namespace

AppsFramework::AppsFramework(caf::actor_config& cfg, ActorInit init, AppsConfig config)
    : Scheduler(cfg, std::move(init), scheduler_config(config)),
      config_(std::move(config)),
      rng_(config_.seed != 0 ? config_.seed : std::random_device{}()) {
}

void AppsFramework::started() {
  StoreWriter::Hooks hooks;
  hooks.blocking = [this](StoreWriter::Work w) { return blocking(Work::store, std::move(w)); };
  hooks.after = [this](Duration d, std::function<void()> fn) { after(d, std::move(fn)); };
  hooks.defer = [this](std::function<void()> fn) { defer(std::move(fn)); };
  hooks.lost = [this] { stop(); };
  writer_ = std::make_unique<StoreWriter>(config_.store, config_.loaded.store_version, "apps",
                                          config_.store_retry, std::move(hooks));
  load(config_.loaded);
  config_.loaded = {};  // the records now live in apps_
  if (config_.handle) {
    inbox_ = make_inbox(config_.inbox_max);
    config_.handle->attach(inbox_, this);
  }
  after(config_.tick, [this] { on_tick(); });
}

void AppsFramework::on_stopping() {
  if (config_.handle)
    config_.handle->detach();
  for (auto& s : streams_)
    s.stream->close();
  streams_.clear();
}

// -- loading what the store kept -------------------------------------------

void AppsFramework::load(const AppsState& state) {
  for (const auto& p : state.problems)
    log().error("apps: skipped a stored record: {}", p);
  std::map<std::pair<std::string, std::string>, VersionPtr> versions;
  for (const auto& a : state.apps) {
    App app;
    for (const auto& v : a.versions) {
      auto parsed = parse_app(v.definition);
      if (!parsed.ok()) {
        log().error("apps: stored version {} of {} no longer parses: {}", v.version, a.id,
                    parsed.problems.front().message);
        continue;
      }
      auto version =
          std::make_shared<const Version>(Version{v.version, v.config_version, parsed.app});
      versions[{a.id, v.version}] = version;
      app.versions.push_back(version);
      if (v.version == a.target)
        app.target = version;
      if (v.version == a.last_good)
        app.last_good = version;
    }
    if (!app.target) {
      log().error("apps: app {} has no usable target version; skipped", a.id);
      continue;
    }
    app.checks = compile_checks(app.target->spec);
    app.last_scaling_ms = a.last_scaling_ms;
    app.last_config_ms = a.last_config_ms;
    app.deleting = a.deleting;
    apps_.emplace(a.id, std::move(app));
  }
  std::set<std::string> unreadable;  // apps whose record is there but did not load
  for (const auto& a : state.apps)
    if (!apps_.count(a.id))
      unreadable.insert(a.id);
  for (const auto& s : state.instances) {
    auto app = apps_.find(s.app_id);
    auto version = versions.find({s.app_id, s.version});
    Instance i;
    i.task_id = s.task_id;
    i.app_id = s.app_id;
    i.agent_id = s.agent_id;
    i.host = s.host;
    i.ports = s.ports;
    i.staged_ms = s.staged_ms;
    i.launched = true;  // it may have been: the master says (reconciliation)
    i.known = false;
    i.version = version != versions.end() ? version->second : nullptr;
    if (unreadable.count(s.app_id)) {
      // Its app's record did not load: leave the task alone (an operator
      // fixes the record); forget it when it ends.
      i.keep = true;
      i.app_id.clear();
    } else if (app == apps_.end() || !i.version) {
      // Its app is gone: kill the task once subscribed, then forget it.
      i.app_id.clear();
    } else {
      app->second.tasks.insert(s.task_id);
    }
    if (auto attrs = parse_attributes(s.attributes); attrs && !s.agent_id.empty()) {
      auto& seen = agents_[s.agent_id];
      seen.hostname = s.host;
      seen.attributes = *attrs;
    }
    tasks_.emplace(s.task_id, std::move(i));
  }
  for (const auto& s : state.deployments) {
    auto app = apps_.find(s.app_id);
    auto kind = kind_from(s.kind);
    if (app == apps_.end() || !kind)
      continue;
    Deployment d;
    d.id = s.id;
    d.app_id = s.app_id;
    d.kind = *kind;
    d.state = s.state == "canary" ? DeployState::canary : DeployState::running;
    auto from = versions.find({s.app_id, s.from});
    auto to = versions.find({s.app_id, s.to});
    // A from that is named but gone (trimmed) is the app's target before:
    // only an empty one means a new app (whose rollback removes it).
    d.from =
        s.from.empty() ? nullptr : (from != versions.end() ? from->second : app->second.last_good);
    d.to = to != versions.end() ? to->second : app->second.target;
    d.canary = s.canary;
    d.auto_rollback = s.auto_rollback;
    d.started_ms = s.started_ms;
    // The deadline was wall time; what is left of it runs on the runtime clock.
    auto left_ms = std::max<int64_t>(0, s.deadline_ms - wall_ms());
    d.deadline = now() + std::chrono::milliseconds(left_ms);
    app->second.deployment = d.id;
    deployments_.emplace(d.id, std::move(d));
  }
  for (auto& [id, app] : apps_)
    mark(id);
  log().info("apps: loaded {} app(s), {} instance(s), {} deployment(s) from {}", apps_.size(),
             tasks_.size(), deployments_.size(), config_.store->describe());
}

// -- subscription ----------------------------------------------------------

void AppsFramework::subscribed(const std::string& framework_id) {
  log().info("apps: subscribed as framework {}", framework_id);
  persist({{framework_key(), json{{"frameworkId", framework_id}}.dump()}});
  // Explicit reconciliation of every task we recorded: the answers say which
  // still run. Then implicit: tasks the master knows and we do not (a record
  // lost) are strangers, and are killed.
  // (In chunks the master answers whole: it takes at most 10,000 per call.)
  constexpr size_t reconcile_chunk = 5'000;
  std::vector<TaskRef> refs;
  for (const auto& [id, i] : tasks_) {
    if (!i.launched)
      continue;
    refs.push_back({id, i.agent_id});
    if (refs.size() == reconcile_chunk) {
      reconcile(refs);
      refs.clear();
    }
  }
  if (!refs.empty())
    reconcile(refs);
  reconcile();
  subscribed_at_ = now();
  was_wanting_ = false;
  for (auto& [id, app] : apps_)
    mark(id);
}

void AppsFramework::disconnected(const caf::error& why) {
  log().warn("apps: lost the master ({}); resubscribing", describe(why));
}

void AppsFramework::error(const std::string& message) {
  log().error("apps: the master ended the framework: {}", message);
}

// -- updates ---------------------------------------------------------------

void AppsFramework::update(const TaskStatus& s) {
  auto it = tasks_.find(s.task_id);
  if (it == tasks_.end()) {
    if (!is_terminal(s.state)) {
      ++counters_.strangers_killed;
      log().warn("apps: the master runs task {} the framework has no record of; killing it",
                 s.task_id);
      kill(s.task_id, s.agent_id);
    }
    return;
  }
  Instance& i = it->second;
  i.known = true;
  auto previous_health = i.healthy;
  if (i.keep) {  // of an app whose record did not load: only watched
    if (is_terminal(s.state) || s.state == TaskState::UNKNOWN)
      forget(s.task_id);
    return;
  }
  if (i.app_id.empty()) {  // of an app that is gone
    if (is_terminal(s.state) || s.state == TaskState::UNKNOWN)
      forget(s.task_id);
    else
      kill_instance(i, "its app was removed");
    return;
  }
  if (s.state == TaskState::UNKNOWN) {  // reconciliation: the master never saw it
    TaskStatus lost = s;
    lost.state = TaskState::DROPPED;
    task_ended(i, lost);
    return;
  }
  i.state = s.state;
  if (!s.agent_id.empty())
    i.agent_id = s.agent_id;
  if (s.healthy)
    i.healthy = s.healthy;
  if (s.state == TaskState::RUNNING) {
    if (i.started_ms == 0)
      i.started_ms = wall_ms();
    if (!i.running_since)
      i.running_since = now();
    i.unreachable_since.reset();
  } else if (s.state == TaskState::UNREACHABLE) {
    if (!i.unreachable_since)
      i.unreachable_since = now();
  }
  publish("status_update_event", {{"appId", i.app_id},
                                  {"taskId", i.task_id},
                                  {"taskStatus", std::string(tessera::to_string(s.state))},
                                  {"host", i.host},
                                  {"agentId", i.agent_id},
                                  {"slaveId", i.agent_id},
                                  {"ports", i.ports},
                                  {"version", i.version ? i.version->version : ""},
                                  {"message", s.message},
                                  {"healthy", s.healthy ? json(*s.healthy) : json()}});
  if (s.healthy && previous_health != s.healthy)
    publish("health_status_changed_event", {{"appId", i.app_id},
                                            {"taskId", i.task_id},
                                            {"instanceId", i.task_id},
                                            {"version", i.version ? i.version->version : ""},
                                            {"alive", *s.healthy}});
  if (is_terminal(s.state) || s.state == TaskState::GONE)
    task_ended(i, s);
  else
    mark(i.app_id);
}

void AppsFramework::task_ended(Instance& i, const TaskStatus& s) {
  auto app_id = i.app_id;
  auto app = apps_.find(app_id);
  bool by_us = i.killing;
  // A service that ends by itself, successfully or not, is restarted after
  // the backoff (a command that exits 0 at once must not spin).
  if (app != apps_.end() && !by_us &&
      (s.state == TaskState::FAILED || s.state == TaskState::ERROR ||
       s.state == TaskState::FINISHED)) {
    counters_.failed += s.state == TaskState::FINISHED ? 0 : 1;
    backoff(app->second, i, s);
  }
  if (app != apps_.end() && !by_us && s.state != TaskState::FINISHED)
    app->second.last_failure = TaskFailure{i.task_id,
                                           i.host,
                                           s.message.empty() ? describe(s) : s.message,
                                           std::string(tessera::to_string(s.state)),
                                           i.version ? i.version->version : "",
                                           wall_ms()};
  log().info("apps: {} of {} ended: {}", i.task_id, app_id, describe(s));
  forget(i.task_id);
  if (app != apps_.end())
    mark(app_id);
}

void AppsFramework::forget(std::string task_id) {  // a copy: the instance holds the original
  auto it = tasks_.find(task_id);
  if (it == tasks_.end())
    return;
  if (auto app = apps_.find(it->second.app_id); app != apps_.end())
    app->second.tasks.erase(task_id);
  tasks_.erase(it);
  persist({{task_key(task_id), std::nullopt}});
}

void AppsFramework::backoff(App& app, const Instance& i, const TaskStatus& s) {
  const auto& spec = app.target->spec;
  ++app.failures;
  double delay_s = spec.backoff_s * std::pow(spec.backoff_factor, app.failures - 1);
  delay_s = std::min(delay_s, spec.max_launch_delay_s);
  app.delay = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(delay_s));
  app.not_before = now() + app.delay;
  app.last_failure_at = now();
  log().info("apps: {} failed ({}); next launch of {} in {:.1f} s (failure {})", i.task_id,
             describe(s), i.app_id, delay_s, app.failures);
}

void AppsFramework::reset_backoff(App& app) {
  app.failures = 0;
  app.delay = Duration::zero();
  app.not_before = TimePoint{};
}

// -- the tick: time-driven changes ----------------------------------------

void AppsFramework::on_tick() {
  auto t = now();
  for (auto& [id, d] : deployments_)
    if (d.state == DeployState::running && t >= d.deadline)
      mark(d.app_id);
  for (auto& [id, i] : tasks_) {
    if (i.unreachable_since && !i.app_id.empty())
      mark(i.app_id);
    if (i.killing && i.launched && t - i.kill_sent >= config_.kill_retry && connected()) {
      i.kill_sent = t;
      kill(i.task_id, i.agent_id);
    }
  }
  for (auto& [id, app] : apps_) {
    if (app.failures > 0)
      mark(id);  // a backoff may have passed, or may be reset
  }
  // Streams whose clients went away.
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [](const EventStream& s) { return s.stream->closed(); }),
                 streams_.end());
  after(config_.tick, [this] { on_tick(); });
}

void AppsFramework::mark(const std::string& app_id) {
  marked_.insert(app_id);
  if (converge_queued_)
    return;
  converge_queued_ = true;
  defer([this] { converge_marked(); });
}

void AppsFramework::converge_marked() {
  converge_queued_ = false;
  auto marked = std::move(marked_);
  marked_.clear();
  for (const auto& id : marked)
    if (auto it = apps_.find(id); it != apps_.end())
      converge(id, it->second);
  bool want = wanting();
  if (want && !was_wanting_ && connected())
    revive();  // offers declined with a long filter while nothing waited
  was_wanting_ = want;
}

bool AppsFramework::wanting() const {
  auto t = now();
  return std::any_of(apps_.begin(), apps_.end(),
                     [&](auto& a) { return a.second.to_launch > 0 && a.second.not_before <= t; });
}

bool AppsFramework::healthy(const Instance& i) const {
  if (i.killing || i.state != TaskState::RUNNING)
    return false;
  bool checked = i.version && !i.version->spec.health_checks.empty();
  return !checked || i.healthy.value_or(false);
}

bool AppsFramework::is_new(const App& app, const Instance& i) const {
  return i.version && i.version->config_version == app.target->config_version;
}

void AppsFramework::order_for_kill(const App& app, std::vector<Instance*>& list) const {
  bool oldest = app.target->spec.kill_selection == KillSelection::oldest_first;
  std::stable_sort(list.begin(), list.end(), [&](const Instance* a, const Instance* b) {
    bool ha = healthy(*a), hb = healthy(*b);
    if (ha != hb)
      return !ha;  // unhealthy or not yet running first
    return oldest ? a->staged_ms < b->staged_ms : a->staged_ms > b->staged_ms;
  });
}

void AppsFramework::kill_instance(Instance& i, const std::string& why) {
  if (i.killing)
    return;
  i.killing = true;
  i.kill_sent = now();
  ++counters_.killed;
  log().info("apps: killing {} of {}: {}", i.task_id, i.app_id, why);
  if (!i.launched) {
    // Its record is being written; the launch will not go out.
    return;
  }
  if (connected())
    kill(i.task_id, i.agent_id);
}

void AppsFramework::converge(const std::string& app_id, App& app) {
  auto t = now();
  // Instances that count: not being killed, and not unreachable past the
  // app's inactiveAfterSeconds (then they are replaced), nor expunged.
  std::vector<Instance*> active;
  const auto& unreachable = app.target->spec.unreachable;
  for (const auto& task_id : std::vector<std::string>(app.tasks.begin(), app.tasks.end())) {
    auto& i = tasks_.at(task_id);
    if (i.unreachable_since && unreachable.enabled) {
      auto away = t - *i.unreachable_since;
      if (away >= std::chrono::seconds(unreachable.expunge_after_s)) {
        log().warn("apps: {} of {} unreachable for {} s: expunged", i.task_id, app_id,
                   unreachable.expunge_after_s);
        kill_instance(i, "expunged");
        forget(task_id);
        continue;
      }
      if (away >= std::chrono::seconds(unreachable.inactive_after_s))
        continue;  // replaced; still known, so it is killed should it return
    }
    if (i.killing)
      continue;
    active.push_back(&i);
  }
  // After a restart, until the master has confirmed what it recorded (or a
  // while has passed), nothing is launched or killed on stale beliefs.
  bool unconfirmed = std::any_of(active.begin(), active.end(), [](auto* i) { return !i->known; });
  if (unconfirmed && (!connected() || t - subscribed_at_ < config_.reconcile_wait)) {
    app.to_launch = 0;
    return;
  }
  // Backoff: reset once an instance started since the last failure has
  // stayed up (and healthy) long enough.
  if (app.failures > 0)
    for (auto* i : active)
      if (i->running_since && *i->running_since > app.last_failure_at && healthy(*i) &&
          t - *i->running_since >= config_.backoff_reset_after) {
        reset_backoff(app);
        break;
      }
  auto d = app.deployment.empty() ? deployments_.end() : deployments_.find(app.deployment);
  if (d != deployments_.end())
    converge_deployment(app, d->second, active);
  else
    converge_steady(app, active);
  if (app.deleting && app.tasks.empty() && app.deployment.empty()) {
    publish("app_terminated_event", {{"appId", app_id}});
    persist({{app_key(app_id), std::nullopt}});
    apps_.erase(app_id);
    return;
  }
  if (app.to_launch > 0 && app.stats.waiting_since_ms == 0)
    app.stats.waiting_since_ms = wall_ms();
  if (app.to_launch == 0)
    app.stats = QueueStats{};
}

void AppsFramework::converge_steady(App& app, std::vector<Instance*>& active) {
  uint32_t want = app.deleting ? 0 : app.target->spec.instances;
  auto have = static_cast<uint32_t>(active.size());
  app.to_launch = have < want ? want - have : 0;
  if (have > want) {
    order_for_kill(app, active);
    for (uint32_t k = 0; k < have - want; ++k)
      kill_instance(*active[k], "the app wants " + std::to_string(want) + " instance(s)");
  }
}

void AppsFramework::converge_deployment(App& app, Deployment& d, std::vector<Instance*>& active) {
  const auto& spec = app.target->spec;
  uint32_t n = d.kind == DeployKind::stop ? 0 : spec.instances;
  std::vector<Instance*> fresh, old;
  for (auto* i : active)
    (is_new(app, *i) ? fresh : old).push_back(i);
  auto count_healthy = [&](const std::vector<Instance*>& l) {
    return static_cast<uint32_t>(
        std::count_if(l.begin(), l.end(), [&](auto* i) { return healthy(*i); }));
  };
  d.min_healthy = static_cast<uint32_t>(std::ceil(n * spec.minimum_health_capacity - 1e-9));
  d.max_total = n + static_cast<uint32_t>(std::floor(n * spec.maximum_over_capacity + 1e-9));
  if (d.max_total == n && d.min_healthy >= n && n > 0)
    d.max_total = n + 1;  // no room to move otherwise: one over, as Marathon does
  bool canary_phase = d.canary > 0;
  uint32_t new_target = canary_phase ? std::min(d.canary, n) : n;
  // Extra new instances (a scale down): the surplus goes first.
  if (fresh.size() > new_target) {
    order_for_kill(app, fresh);
    auto surplus = fresh.size() - new_target;
    for (size_t k = 0; k < surplus; ++k)
      kill_instance(*fresh[k], "the deployment wants " + std::to_string(new_target));
    fresh.erase(fresh.begin(), fresh.begin() + static_cast<long>(surplus));
  }
  uint32_t new_healthy = count_healthy(fresh);
  uint32_t old_healthy = count_healthy(old);
  // Kill old ones while the healthy count stays at the minimum; old ones
  // that are not healthy serve no one and always go. In the canary step no
  // healthy old one goes: the canaries come on top.
  order_for_kill(app, old);
  uint32_t healthy_total = new_healthy + old_healthy;
  std::vector<Instance*> kept;
  for (auto* i : old) {
    bool h = healthy(*i);
    if (h && (canary_phase || healthy_total <= d.min_healthy)) {
      kept.push_back(i);
      continue;
    }
    kill_instance(*i, "replaced by version " + app.target->version);
    if (h)
      --healthy_total;
  }
  // Launch new ones within the capacity bound (in the canary step the
  // canaries may go beyond it: nothing old is killed for them).
  auto total = static_cast<uint32_t>(fresh.size() + kept.size());
  uint32_t room_total = canary_phase ? std::max(d.max_total, total + new_target) : d.max_total;
  uint32_t want_new =
      fresh.size() < new_target ? new_target - static_cast<uint32_t>(fresh.size()) : 0;
  uint32_t room = total < room_total ? room_total - total : 0;
  app.to_launch = std::min(want_new, room);
  d.new_count = static_cast<uint32_t>(fresh.size());
  d.new_healthy = new_healthy;
  d.old_count = static_cast<uint32_t>(kept.size());
  d.old_healthy = count_healthy(kept);
  // Done?
  if (canary_phase) {
    // Canaries that never come up fail the deployment at its deadline; the
    // wait for promote or abort (state canary) does not.
    if (d.state == DeployState::running && new_healthy < new_target && now() >= d.deadline) {
      deadline_passed(d);
      return;
    }
    if (new_healthy >= new_target && d.state == DeployState::running) {
      d.state = DeployState::canary;
      log().info(
          "apps: deployment {} of {}: {} canary instance(s) healthy; waiting for promote "
          "or abort",
          d.id, d.app_id, new_healthy);
      persist({deployment_record(d)});
      publish("deployment_step_success", {{"plan", json{{"id", d.id}}}, {"appId", d.app_id}});
    }
    return;
  }
  bool settled = d.new_count == n && new_healthy == n && d.old_count == 0;
  // Killed instances must have ended too: until then they hold resources.
  for (const auto& task_id : app.tasks)
    if (tasks_.at(task_id).killing)
      settled = false;
  if (settled) {
    finish_deployment(d, DeployState::success, "");
    return;
  }
  if (d.state == DeployState::running && now() >= d.deadline)
    deadline_passed(d);
}

void AppsFramework::deadline_passed(Deployment& d) {
  auto app_id = d.app_id;  // finish_deployment erases d
  auto& app = apps_.at(app_id);
  char why[200];
  std::snprintf(why, sizeof(why),
                "not done within progressDeadlineSeconds=%g: %u of %u new instance(s) healthy, "
                "%u old left",
                app.target->spec.progress_deadline_s, d.new_healthy,
                d.kind == DeployKind::stop ? 0u : app.target->spec.instances, d.old_count);
  auto back_to = app.last_good;
  bool can_roll_back = d.auto_rollback && back_to && back_to != app.target &&
                       back_to->config_version != app.target->config_version;
  finish_deployment(d, DeployState::failed, why);
  if (!can_roll_back) {
    log().warn("apps: deployment of {} failed ({}); no earlier healthy version to roll back to",
               app_id, why);
    return;
  }
  ++counters_.rollbacks;
  log().warn("apps: deployment of {} failed ({}); rolling back to {}", app_id, why,
             back_to->version);
  auto from = app.target;
  // The old version's instances still running are "new" again: only the
  // failed version's go.
  app.target = back_to;
  app.checks = compile_checks(app.target->spec);
  reset_backoff(app);
  auto& r = start_deployment(app_id, app, DeployKind::rollback, from, back_to);
  r.auto_rollback = false;
  persist({app_record(app_id), deployment_record(r)});
}

void AppsFramework::finish_deployment(Deployment& d, DeployState state, const std::string& reason) {
  d.state = state;
  d.reason = reason;
  d.finished_ms = wall_ms();
  auto app = apps_.find(d.app_id);
  if (app != apps_.end() && app->second.deployment == d.id) {
    app->second.deployment.clear();
    if (state == DeployState::success && !app->second.deleting)
      app->second.last_good = app->second.target;
  }
  if (state == DeployState::success)
    ++counters_.deployments_succeeded;
  else if (state == DeployState::failed)
    ++counters_.deployments_failed;
  log().info("apps: deployment {} ({} of {}) {}{}{}", d.id, to_string(d.kind), d.app_id,
             to_string(state), reason.empty() ? "" : ": ", reason);
  std::vector<RegistryChange> changes{{deployment_key(d.app_id), std::nullopt}};
  if (app != apps_.end() && !app->second.deleting)
    changes.push_back(app_record(d.app_id));
  persist(std::move(changes));
  json plan = {{"id", d.id}, {"appId", d.app_id}};
  if (state == DeployState::success)
    publish("deployment_success", {{"id", d.id}, {"plan", plan}});
  else
    publish("deployment_failed", {{"id", d.id}, {"plan", plan}, {"reason", reason}});
  finished_.push_back(d);
  while (finished_.size() > config_.finished_deployments_max)
    finished_.pop_front();
  auto id = d.id;
  deployments_.erase(id);  // d is gone from here on
  if (app != apps_.end())
    mark(app->first);
}

// -- durability ------------------------------------------------------------

RegistryChange AppsFramework::app_record(const std::string& app_id) const {
  const auto& app = apps_.at(app_id);
  StoredApp s;
  s.id = app_id;
  for (const auto& v : app.versions)
    s.versions.push_back({v->version, v->config_version, to_json(v->spec)});
  s.target = app.target->version;
  s.last_good = app.last_good ? app.last_good->version : "";
  s.last_scaling_ms = app.last_scaling_ms;
  s.last_config_ms = app.last_config_ms;
  s.deleting = app.deleting;
  return {app_key(app_id), to_json(s).dump(-1, ' ', false, json::error_handler_t::replace)};
}

RegistryChange AppsFramework::instance_record(const Instance& i) const {
  StoredInstance s;
  s.task_id = i.task_id;
  s.app_id = i.app_id;
  s.version = i.version ? i.version->version : "";
  s.agent_id = i.agent_id;
  s.host = i.host;
  if (auto a = agents_.find(i.agent_id); a != agents_.end())
    s.attributes = tessera::to_string(a->second.attributes);
  s.ports = i.ports;
  s.staged_ms = i.staged_ms;
  return {task_key(i.task_id), to_json(s).dump(-1, ' ', false, json::error_handler_t::replace)};
}

RegistryChange AppsFramework::deployment_record(const Deployment& d) const {
  StoredDeployment s;
  s.id = d.id;
  s.app_id = d.app_id;
  s.kind = to_string(d.kind);
  s.state = to_string(d.state);
  s.from = d.from ? d.from->version : "";
  s.to = d.to ? d.to->version : "";
  s.canary = d.canary;
  s.auto_rollback = d.auto_rollback;
  s.started_ms = d.started_ms;
  s.deadline_ms =
      wall_ms() + std::chrono::duration_cast<std::chrono::milliseconds>(d.deadline - now()).count();
  return {deployment_key(d.app_id),
          to_json(s).dump(-1, ' ', false, json::error_handler_t::replace)};
}

// -- events ----------------------------------------------------------------

void AppsFramework::publish(const std::string& type, json event) {
  if (streams_.empty())
    return;
  event["eventType"] = type;
  event["timestamp"] = iso_time(wall_ms());
  std::string chunk = "event: " + type +
                      "\ndata: " + event.dump(-1, ' ', false, json::error_handler_t::replace) +
                      "\n\n";
  for (auto& s : streams_)
    if (s.types.empty() || s.types.count(type))
      s.stream->write(chunk);
}

void AppsFramework::open_events(const http::Request& request, const http::Responder& responder) {
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [](const EventStream& s) { return s.stream->closed(); }),
                 streams_.end());
  if (streams_.size() >= config_.event_streams_max) {
    responder.respond(http::json_response(
        503, json{{"message", "too many event streams (at most " +
                                  std::to_string(config_.event_streams_max) + ")"}}
                 .dump()));
    return;
  }
  EventStream s;
  for (auto [it, end] = request.query.equal_range("event_type"); it != end; ++it)
    s.types.insert(it->second);
  s.stream = responder.open_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  // A first comment line, so a client knows the stream is open.
  s.stream->write(": tessera-apps events\n\n");
  streams_.push_back(std::move(s));
}

}  // namespace tessera::apps
