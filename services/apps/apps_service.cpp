#include "services/apps/apps_service.hpp"

#include "services/common/framework_service.hpp"

namespace tessera::apps {

expected<std::unique_ptr<AppsService>> AppsService::start(Node& node, AppsServiceConfig c) {
  std::unique_ptr<AppsService> service(new AppsService());
  auto parts = open_framework_service("apps", c.registry, c.work_dir, c.http,
                                      apps_http_handler(service->handle_));
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

AppsService::~AppsService() {
  stop();
}

void AppsService::stop() {
  if (server_)
    server_->stop();
}

}  // namespace tessera::apps
