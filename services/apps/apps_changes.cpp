// What the API's writes do: every change of an app is a new version and a
// deployment (at most one per app: a second change is refused with 409
// unless forced, which cancels the first where it stands). Rollback, canary
// promote and abort, cancel, and killing one task.

#include "services/apps/apps_framework.hpp"

#include "runtime/log.hpp"
#include "services/apps/apps_time.hpp"

#include <algorithm>

namespace tessera::apps {

using json = nlohmann::json;

namespace {

// The definition without instances: what decides whether tasks restart.
json config_of(const AppSpec& spec) {
  auto j = to_json(spec);
  j.erase("instances");
  return j;
}

json text_of(const std::string& text) {
  return {{"message", text}};
}

}  // namespace

AppsFramework::VersionPtr AppsFramework::make_version(const AppSpec& spec, const App* app,
                                                      bool restart) {
  auto ms = wall_ms();
  auto text = iso_time(ms);
  // Several changes in one millisecond: versions stay unique and ordered.
  while (app && std::any_of(app->versions.begin(), app->versions.end(),
                            [&](const VersionPtr& v) { return v->version >= text; }))
    text = iso_time(++ms);
  Version v;
  v.version = text;
  v.spec = spec;
  bool same_config = app && !restart && config_of(app->target->spec) == config_of(spec);
  v.config_version = same_config ? app->target->config_version : text;
  return std::make_shared<const Version>(std::move(v));
}

AppsFramework::Deployment& AppsFramework::start_deployment(const std::string& app_id, App& app,
                                                           DeployKind kind, VersionPtr from,
                                                           VersionPtr to) {
  Deployment d;
  auto bytes = new_uuid_bytes(rng_);
  auto h = hex(bytes);
  d.id = h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
  d.app_id = app_id;
  d.kind = kind;
  d.from = std::move(from);
  d.to = std::move(to);
  d.canary = kind == DeployKind::upgrade ? d.to->spec.canary_instances : 0;
  d.started_ms = wall_ms();
  d.deadline = now() + std::chrono::duration_cast<Duration>(
                           std::chrono::duration<double>(d.to->spec.progress_deadline_s));
  app.deployment = d.id;
  log().info("apps: deployment {} ({} of {} to version {}{})", d.id, to_string(kind), app_id,
             d.to->version, d.canary ? ", canary " + std::to_string(d.canary) : "");
  publish("deployment_info",
          {{"plan", {{"id", d.id}, {"version", d.to->version}, {"affectedApps", {app_id}}}},
           {"currentStep", {{"actions", {{{"action", "RestartApplication"}, {"app", app_id}}}}}}});
  auto [it, inserted] = deployments_.emplace(d.id, std::move(d));
  (void)inserted;
  mark(app_id);
  return it->second;
}

std::optional<AppsFramework::Change> AppsFramework::locked(const App& app, bool force) {
  if (app.deployment.empty())
    return std::nullopt;
  if (!force)
    return Change{409,
                  {{"message",
                    "App is locked by one or more deployments. Override with the "
                    "option '?force=true'. View details at '/v2/deployments/" +
                        app.deployment + "'."},
                   {"deployments", {{{"id", app.deployment}}}}}};
  auto it = deployments_.find(app.deployment);
  if (it != deployments_.end())
    finish_deployment(it->second, DeployState::canceled, "overridden by a forced change");
  return std::nullopt;
}

void AppsFramework::trim_versions(const std::string& app_id, App& app) {
  std::set<const Version*> used = {app.target.get(), app.last_good.get()};
  for (const auto& task_id : app.tasks)
    used.insert(tasks_.at(task_id).version.get());
  if (auto d = deployments_.find(app.deployment); d != deployments_.end())
    used.insert(d->second.from.get());
  auto drop_oldest_unused = [&] {
    for (size_t k = app.versions.size(); k-- > 0;)
      if (!used.count(app.versions[k].get())) {
        app.versions.erase(app.versions.begin() + static_cast<long>(k));
        return true;
      }
    return false;
  };
  while (app.versions.size() > config_.versions_max && drop_oldest_unused()) {
  }
  while (app_record(app_id).value->size() > RegistryStore::value_bytes_max / 2 &&
         drop_oldest_unused()) {
  }
}

AppsFramework::Change AppsFramework::put_app(const AppSpec& spec, bool force, bool restart,
                                             bool created_ok) {
  if (auto bytes = to_json(spec).dump().size(); bytes > app_definition_bytes_max)
    return {422,
            problems_json({{"", "the definition has " + std::to_string(bytes) + " bytes; at most " +
                                    std::to_string(app_definition_bytes_max)}})};
  auto role = spec.role.empty() ? config_.role : spec.role;
  if (role != config_.role)
    return {422, problems_json({{"/role", "the apps framework runs in role " + config_.role +
                                              "; role " + role + " is not one of its roles"}})};
  auto it = apps_.find(spec.id);
  if (it == apps_.end()) {
    if (!created_ok)
      return {404, text_of("App '" + spec.id + "' does not exist")};
    App app;
    auto v = make_version(spec, nullptr, true);
    app.versions = {v};
    app.target = v;
    app.checks = compile_checks(spec);
    app.last_scaling_ms = app.last_config_ms = wall_ms();
    auto& a = apps_.emplace(spec.id, std::move(app)).first->second;
    auto& d = start_deployment(spec.id, a, DeployKind::start, nullptr, v);
    persist({app_record(spec.id), deployment_record(d)});
    publish("api_post_event", {{"appDefinition", to_json(spec)}});
    return {201, {{"version", v->version}, {"deploymentId", d.id}}};
  }
  App& app = it->second;
  if (app.deleting)
    return {409, text_of("App '" + spec.id + "' is being removed")};
  if (auto refused = locked(app, force))
    return *refused;
  auto from = app.target;
  auto v = make_version(spec, &app, restart);
  bool config_change = v->config_version != from->config_version;
  auto kind =
      restart ? DeployKind::restart : (config_change ? DeployKind::upgrade : DeployKind::scale);
  app.versions.insert(app.versions.begin(), v);
  app.target = v;
  app.checks = compile_checks(spec);
  app.last_scaling_ms = wall_ms();
  if (config_change)
    app.last_config_ms = app.last_scaling_ms;
  reset_backoff(app);
  auto& d = start_deployment(spec.id, app, kind, from, v);
  trim_versions(spec.id, app);
  persist({app_record(spec.id), deployment_record(d)});
  publish("api_post_event", {{"appDefinition", to_json(spec)}});
  return {200, {{"version", v->version}, {"deploymentId", d.id}}};
}

AppsFramework::Change AppsFramework::delete_app(const std::string& id, bool force) {
  auto it = apps_.find(id);
  if (it == apps_.end())
    return {404, text_of("App '" + id + "' does not exist")};
  App& app = it->second;
  if (app.deleting)
    return {409, text_of("App '" + id + "' is already being removed")};
  if (auto refused = locked(app, force))
    return *refused;
  app.deleting = true;
  auto& d = start_deployment(id, app, DeployKind::stop, app.target, app.target);
  d.auto_rollback = false;
  persist({app_record(id), deployment_record(d)});
  return {200, {{"version", app.target->version}, {"deploymentId", d.id}}};
}

AppsFramework::Change AppsFramework::restart_app(const std::string& id, bool force) {
  auto it = apps_.find(id);
  if (it == apps_.end())
    return {404, text_of("App '" + id + "' does not exist")};
  return put_app(it->second.target->spec, force, true, false);
}

AppsFramework::Change AppsFramework::rollback_app(const std::string& id) {
  auto it = apps_.find(id);
  if (it == apps_.end())
    return {404, text_of("App '" + id + "' does not exist")};
  App& app = it->second;
  if (app.deleting)
    return {409, text_of("App '" + id + "' is being removed")};
  if (!app.deployment.empty())
    return cancel_deployment(app.deployment, false);
  VersionPtr back = app.last_good != app.target ? app.last_good : nullptr;
  if (!back)
    for (const auto& v : app.versions)
      if (v->config_version != app.target->config_version) {
        back = v;
        break;
      }
  if (!back)
    return {409, text_of("App '" + id + "' has no earlier version to roll back to")};
  auto from = app.target;
  app.target = back;
  app.checks = compile_checks(back->spec);
  reset_backoff(app);
  auto& d = start_deployment(id, app, DeployKind::rollback, from, back);
  d.auto_rollback = false;
  ++counters_.rollbacks;
  persist({app_record(id), deployment_record(d)});
  return {200, {{"version", back->version}, {"deploymentId", d.id}}};
}

AppsFramework::Change AppsFramework::promote(const std::string& id) {
  auto it = apps_.find(id);
  if (it == apps_.end())
    return {404, text_of("App '" + id + "' does not exist")};
  auto d = deployments_.find(it->second.deployment);
  if (d == deployments_.end() || d->second.canary == 0)
    return {409, text_of("App '" + id + "' has no canary step to promote")};
  auto& dep = d->second;
  dep.canary = 0;
  dep.state = DeployState::running;
  // The wait for the promotion does not count against the deadline.
  dep.deadline = now() + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
                             it->second.target->spec.progress_deadline_s));
  log().info("apps: deployment {} of {} promoted", dep.id, id);
  persist({deployment_record(dep)});
  mark(id);
  return {200, {{"deploymentId", dep.id}}};
}

AppsFramework::Change AppsFramework::abort_canary(const std::string& id) {
  auto it = apps_.find(id);
  if (it == apps_.end())
    return {404, text_of("App '" + id + "' does not exist")};
  auto d = deployments_.find(it->second.deployment);
  if (d == deployments_.end() || d->second.canary == 0)
    return {409, text_of("App '" + id + "' has no canary step to abort")};
  return cancel_deployment(d->first, false);
}

AppsFramework::Change AppsFramework::cancel_deployment(const std::string& deployment_id,
                                                       bool force) {
  auto it = deployments_.find(deployment_id);
  if (it == deployments_.end())
    return {404, text_of("DeploymentPlan " + deployment_id + " does not exist")};
  auto& d = it->second;
  auto app_id = d.app_id;
  auto& app = apps_.at(app_id);
  if (force) {
    finish_deployment(d, DeployState::canceled, "canceled without rollback");
    return {202, json::object()};
  }
  auto from = d.from;
  auto to = d.to;
  auto kind = d.kind;
  finish_deployment(d, DeployState::rolled_back, "canceled; rolling back");
  if (!from) {  // a new app: rolling back is removing it
    app.deleting = true;
    auto& stop = start_deployment(app_id, app, DeployKind::stop, to, to);
    stop.auto_rollback = false;
    persist({app_record(app_id), deployment_record(stop)});
    return {200, {{"version", to->version}, {"deploymentId", stop.id}}};
  }
  if (kind == DeployKind::stop)
    app.deleting = false;
  app.target = from;
  app.checks = compile_checks(from->spec);
  reset_backoff(app);
  auto& r = start_deployment(app_id, app, DeployKind::rollback, to, from);
  r.auto_rollback = false;
  ++counters_.rollbacks;
  persist({app_record(app_id), deployment_record(r)});
  return {200, {{"version", from->version}, {"deploymentId", r.id}}};
}

AppsFramework::Change AppsFramework::kill_task(const std::string& app_id,
                                               const std::string& task_id, bool scale) {
  auto app = apps_.find(app_id);
  if (app == apps_.end())
    return {404, text_of("App '" + app_id + "' does not exist")};
  auto it = tasks_.find(task_id);
  if (it == tasks_.end() || it->second.app_id != app_id)
    return {404, text_of("Task '" + task_id + "' of app '" + app_id + "' does not exist")};
  if (it->second.killing)  // asked again: it is already going, and counted
    return {200, json::object()};
  if (scale && (!app->second.deployment.empty() || app->second.deleting))
    return {409, text_of("App '" + app_id + "' is changing (a deployment or its removal); " +
                         "kill without scale=true, or wait")};
  if (scale && app->second.target->spec.instances > 0) {
    // One instance fewer, without a deployment: a scale of the same config.
    auto spec = app->second.target->spec;
    spec.instances -= 1;
    auto v = make_version(spec, &app->second, false);
    app->second.versions.insert(app->second.versions.begin(), v);
    app->second.target = v;
    app->second.last_scaling_ms = wall_ms();
    if (app->second.last_good && app->second.last_good->config_version == v->config_version)
      app->second.last_good = v;
    trim_versions(app_id, app->second);
    persist({app_record(app_id)});
  }
  kill_instance(it->second, scale ? "killed and scaled down by request" : "killed by request");
  mark(app_id);
  return {200, json::object()};
}

void AppsFramework::reset_delay(App& app) {
  reset_backoff(app);
  for (auto& [id, a] : apps_)
    if (&a == &app)
      mark(id);
}

}  // namespace tessera::apps
