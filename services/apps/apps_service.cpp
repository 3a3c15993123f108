#include "services/apps/apps_service.hpp"

#include "services/common/framework_service.hpp"

namespace tessera::apps {

expected<std::unique_ptr<AppsService>> AppsService::start(Node& node, AppsServiceConfig c) {
  std::unique_ptr<AppsService> service(new AppsService());
  service->guard_ = c.guard;
  auto parts = open_framework_service("apps", c.registry, c.work_dir, c.http, service->handler());
  if (!parts)
    return parts.error();
  service->server_ = std::move(parts->server);
  auto loaded = load_state(*parts->store);
  if (!loaded) {
    service->stop();
    return make_error(Errc::os_error, "apps: cannot read the store " + parts->store->describe() +
                                          ": " + describe(loaded.error()));
  }
  service->store_desc_ = parts->store->describe();
  AppsConfig ac = std::move(c.tuning);
  ac.scheduler.master = c.master;
  ac.scheduler.detector = c.detector;
  ac.name = c.name;
  ac.role = c.role;
  ac.store = parts->store;
  ac.loaded = std::move(*loaded);
  ac.handle = service->handle_;
  ac.http_address = service->server_ ? service->server_->address() : c.http_address;
  auto actor = spawn_framework(node, "apps", c.actor_name, std::move(ac), *service->handle_);
  if (!actor) {
    service->stop();
    return actor.error();
  }
  service->actor_ = *actor;
  return service;
}

namespace {

// An app id as Marathon normalizes it: with its leading '/'.
std::string absolute(std::string id) {
  return id.empty() || id.front() != '/' ? "/" + id : id;
}

}  // namespace

security::RouteAccess apps_access(const http::Request& r) {
  using security::Action;
  security::RouteAccess out;
  const auto& p = r.path;
  if (p == "/ping" || p == "/v2/ping") {
    out.open = true;
    return out;
  }
  bool read = r.method == "GET" || r.method == "HEAD";
  const std::string apps = "/v2/apps";
  bool under_apps = p.size() > apps.size() + 1 && p.compare(0, apps.size() + 1, apps + "/") == 0;
  if (under_apps) {  // one app (and its tasks, versions, restart, ...)
    out.checks.push_back({read ? Action::view_apps : Action::update_apps, p.substr(apps.size())});
    return out;
  }
  if (read) {
    out.checks.push_back({Action::view_apps, std::nullopt});
    return out;
  }
  const std::string queue = "/v2/queue/";
  if (p.compare(0, queue.size(), queue) == 0) {  // DELETE /v2/queue/ID/delay
    out.checks.push_back({Action::update_apps, "/" + p.substr(queue.size())});
    return out;
  }
  auto action = p == "/v2/plan" ? Action::view_apps : Action::update_apps;
  if (p == apps || p == apps + "/" || p == "/v2/plan") {  // the definitions in the body
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    auto list = body.is_array() ? body : nlohmann::json::array({body});
    for (const auto& app : list)
      if (app.is_object() && app.contains("id") && app["id"].is_string())
        out.checks.push_back({action, absolute(app["id"].get<std::string>())});
      else
        out.checks.push_back({action, std::nullopt});  // refused anyway: every app's right
    if (out.checks.empty())
      out.checks.push_back({action, std::nullopt});
    return out;
  }
  out.checks.push_back({Action::update_apps, std::nullopt});  // deployments, unknown routes
  return out;
}

http::Handler AppsService::handler() const {
  return security::guarded_handler(guard_, apps_access, apps_http_handler(handle_));
}

AppsService::~AppsService() {
  stop();
}

void AppsService::stop() {
  if (server_)
    server_->stop();
}

}  // namespace tessera::apps
