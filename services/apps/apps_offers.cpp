// Offers: which waiting app's instances go where. App by app (in id order,
// starting one further each batch so no app is always last), each placing
// one instance per offer per pass, so an app spreads over the agents of a
// batch; SPREAD constraints re-rank the offers after each placement. Every
// offer an app could not use is counted under the first reason that refused
// it: the queue's "why not running". An instance's record is written before
// its task is launched.

#include "services/apps/apps_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"

#include <algorithm>
#include <numeric>

namespace tessera::apps {

namespace {

// "shop_web.1b2c3d4e5f60": the app id's path as dots would be ambiguous with
// Marathon's own ids; '_' never appears in an app id.
std::string task_id_for(const std::string& app_id, std::mt19937_64& rng) {
  std::string base = app_id.substr(1);
  std::replace(base.begin(), base.end(), '/', '_');
  return base + "." + hex(new_uuid_bytes(rng)).substr(0, 16);
}

bool larger(const Offer& a, const Offer& b) {
  double ca = a.resources.total("cpus"), cb = b.resources.total("cpus");
  if (ca != cb)
    return ca > cb;
  return a.resources.total("mem") > b.resources.total("mem");
}

}  // namespace

void AppsFramework::remember_agent(const Offer& offer) {
  auto& seen = agents_[offer.agent_id];
  seen.hostname = offer.hostname;
  seen.attributes = offer.attributes;
  seen.last_offer = offer;
  seen.seen = now();
}

void AppsFramework::offers(const std::vector<Offer>& offers) {
  for (const auto& o : offers)
    remember_agent(o);
  std::vector<OfferView> views;
  views.reserve(offers.size());
  for (const auto& o : offers)
    views.push_back({&o, o.resources});
  std::vector<std::vector<TaskSpec>> tasks(offers.size());
  std::vector<std::vector<std::string>> made(offers.size());
  auto t = now();
  std::vector<std::string> waiting;
  for (auto& [id, app] : apps_)
    if (app.to_launch > 0 && app.not_before <= t && !app.deleting)
      waiting.push_back(id);
  if (!waiting.empty()) {
    auto first = rotation_++ % waiting.size();
    std::rotate(waiting.begin(), waiting.begin() + static_cast<long>(first), waiting.end());
  }
  for (const auto& id : waiting) {
    auto& app = apps_.at(id);
    auto placed = placed_values(app);
    bool spread = std::any_of(app.checks.begin(), app.checks.end(),
                              [](auto& c) { return c.constraint().op == Constraint::Op::spread; });
    std::vector<size_t> order(views.size());
    std::iota(order.begin(), order.end(), 0);
    std::vector<bool> refused(views.size()), used(views.size());
    while (app.to_launch > 0) {
      if (spread)
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
          return spread_load(app.checks, placed, offers[a]) <
                 spread_load(app.checks, placed, offers[b]);
        });
      bool any = false;
      for (auto k : order) {
        if (refused[k] || tasks[k].size() >= config_.launches_per_offer_max)
          continue;
        auto r = fit(app.target->spec,
                     app.target->spec.role.empty() ? config_.role : app.target->spec.role,
                     app.checks, placed, views[k]);
        if (!r.placed) {
          refused[k] = true;
          if (!used[k])
            count_offer(app, offers[k], r);
          continue;
        }
        if (!used[k]) {
          used[k] = true;
          count_offer(app, offers[k], r);
        }
        auto& i = new_instance(id, app, offers[k], *r.placed);
        tasks[k].push_back(task_spec(app, i, *r.placed));
        made[k].push_back(i.task_id);
        for (size_t c = 0; c < app.checks.size(); ++c)
          placed[c].push_back(field_value(app.checks[c].constraint().field, offers[k].hostname,
                                          offers[k].attributes));
        --app.to_launch;
        any = true;
        if (spread || app.to_launch == 0)
          break;
      }
      if (!any)
        break;
    }
  }
  bool still_wanting = wanting();
  // Offers declined now get the long filter when nothing waits: the next
  // app that wants some must revive (converge_marked) to see them again.
  was_wanting_ = still_wanting;
  for (size_t k = 0; k < offers.size(); ++k) {
    if (tasks[k].empty()) {
      decline({offers[k].id}, still_wanting ? config_.refuse_busy : config_.refuse_idle);
      continue;
    }
    std::vector<RegistryChange> records;
    for (const auto& task_id : made[k])
      records.push_back(instance_record(tasks_.at(task_id)));
    persist(std::move(records), [this, offer_id = offers[k].id, ids = std::move(made[k]),
                                 specs = std::move(tasks[k])]() mutable {
      launch_recorded(std::move(offer_id), std::move(ids), std::move(specs));
    });
  }
}

void AppsFramework::count_offer(App& app, const Offer& offer, const FitResult& r) {
  auto& stats = app.stats;
  auto ms = wall_ms();
  auto bucket_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.queue_window).count() /
      static_cast<int64_t>(QueueStats::buckets);
  auto start = bucket_ms > 0 ? ms - ms % bucket_ms : ms;
  auto& b =
      stats.ring[static_cast<size_t>(bucket_ms > 0 ? (ms / bucket_ms) : 0) % QueueStats::buckets];
  if (b.start_ms != start)
    b = QueueStats::Bucket{start, 0, 0, {}};
  ++b.seen;
  if (r.refusal == Refusal::none) {
    ++b.used;
    stats.last_used_ms = ms;
  } else {
    ++b.declined[to_string(r.refusal)];
    if (r.refusal == Refusal::constraint)
      ++b.declined[r.constraint];  // under the constraint's own name too
    stats.last_unused_ms = ms;
  }
  auto window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.queue_window).count();
  if (!stats.largest || ms - stats.largest_ms > window_ms || larger(offer, *stats.largest)) {
    stats.largest = offer;
    stats.largest_ms = ms;
  }
}

std::vector<std::vector<std::optional<std::string>>> AppsFramework::placed_values(
    const App& app) const {
  std::vector<std::vector<std::optional<std::string>>> placed(app.checks.size());
  if (app.checks.empty())
    return placed;
  for (const auto& task_id : app.tasks) {
    const auto& i = tasks_.at(task_id);
    if (i.killing)
      continue;
    auto agent = agents_.find(i.agent_id);
    static const std::vector<Attribute> none;
    const auto& attrs = agent != agents_.end() ? agent->second.attributes : none;
    for (size_t c = 0; c < app.checks.size(); ++c)
      placed[c].push_back(field_value(app.checks[c].constraint().field, i.host, attrs));
  }
  return placed;
}

AppsFramework::Instance& AppsFramework::new_instance(const std::string& app_id, App& app,
                                                     const Offer& offer, const Placed& placed) {
  Instance i;
  i.task_id = task_id_for(app_id, rng_);
  i.app_id = app_id;
  i.version = app.target;
  i.agent_id = offer.agent_id;
  i.host = offer.hostname;
  i.ports = placed.ports;
  i.staged_ms = wall_ms();
  app.tasks.insert(i.task_id);
  auto [it, inserted] = tasks_.emplace(i.task_id, std::move(i));
  (void)inserted;
  return it->second;
}

TaskSpec AppsFramework::task_spec(const App& app, const Instance& i, const Placed& placed) const {
  const auto& spec = i.version->spec;
  TaskSpec t;
  t.id = i.task_id;
  t.name = i.app_id;
  t.resources = placed.resources;
  if (spec.cmd)
    t.shell = *spec.cmd;
  else
    t.argv = spec.args;
  t.env = spec.env;
  std::string all_ports;
  for (size_t p = 0; p < placed.ports.size(); ++p) {
    auto port = std::to_string(placed.ports[p]);
    t.env["PORT" + std::to_string(p)] = port;
    if (!spec.ports[p].name.empty())
      t.env["PORT_" + spec.ports[p].name] = port;
    all_ports += (p ? "," : "") + port;
  }
  if (!placed.ports.empty()) {
    t.env["PORT"] = std::to_string(placed.ports[0]);
    t.env["PORTS"] = all_ports;
  }
  t.env["HOST"] = i.host;
  t.env["MARATHON_APP_ID"] = i.app_id;
  t.env["MARATHON_APP_VERSION"] = i.version->version;
  t.env["MARATHON_APP_RESOURCE_CPUS"] = std::to_string(spec.cpus);
  t.env["MARATHON_APP_RESOURCE_MEM"] = std::to_string(spec.mem);
  t.env["MESOS_TASK_ID"] = i.task_id;
  if (spec.user)
    t.user = *spec.user;
  if (spec.task_kill_grace_period_s)
    t.kill_grace = std::chrono::duration_cast<Duration>(
        std::chrono::duration<double>(*spec.task_kill_grace_period_s));
  t.labels = spec.labels;
  for (const auto& f : spec.fetch)
    t.uris.push_back({f.uri, f.extract, f.executable, f.cache});
  if (!spec.health_checks.empty()) {
    // The executor runs one check per task: the first (docs/apps.md).
    const auto& hc = spec.health_checks.front();
    HealthCheckSpec h;
    auto secs = [](double s) {
      return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
    };
    if (hc.protocol == "COMMAND") {
      h.type = HealthCheckType::COMMAND;
      h.command = hc.command;
    } else {
      // HTTPS is checked as a TCP connect: the executor has no TLS client.
      bool http = hc.protocol == "HTTP" || hc.protocol == "MESOS_HTTP";
      h.type = http ? HealthCheckType::HTTP : HealthCheckType::TCP;
      h.path = hc.path;
      h.port = hc.port ? *hc.port
                       : (hc.port_index < placed.ports.size() ? placed.ports[hc.port_index] : 0);
    }
    h.delay = secs(hc.delay_s);
    h.interval = secs(hc.interval_s);
    h.timeout = secs(hc.timeout_s);
    h.grace_period = secs(hc.grace_period_s);
    // Marathon's 0 means "never kill for failing checks".
    h.consecutive_failures =
        hc.max_consecutive_failures == 0 ? UINT32_MAX : hc.max_consecutive_failures;
    t.health_check = h;
  }
  (void)app;
  return t;
}

void AppsFramework::launch_recorded(std::string offer_id, std::vector<std::string> task_ids,
                                    std::vector<TaskSpec> specs) {
  std::vector<TaskSpec> go;
  std::vector<Instance*> going;
  for (size_t k = 0; k < task_ids.size(); ++k) {
    auto it = tasks_.find(task_ids[k]);
    if (it == tasks_.end())
      continue;
    if (it->second.killing) {  // killed while its record was written
      auto app_id = it->second.app_id;
      forget(task_ids[k]);
      mark(app_id);
      continue;
    }
    go.push_back(std::move(specs[k]));
    going.push_back(&it->second);
  }
  if (go.empty()) {
    decline({offer_id}, config_.refuse_busy);
    return;
  }
  auto err = accept({offer_id}, go, config_.refuse_busy);
  for (auto* i : going) {
    if (!err) {
      i->launched = true;
      ++counters_.launched;
      continue;
    }
    TaskStatus dropped;
    dropped.task_id = i->task_id;
    dropped.state = TaskState::DROPPED;
    dropped.message = "the launch did not go out: " + describe(err);
    task_ended(*i, dropped);
  }
  if (err)
    log().warn("apps: launching {} task(s) on offer {} failed: {}", go.size(), offer_id,
               describe(err));
}

}  // namespace tessera::apps
