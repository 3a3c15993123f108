#include "services/apps/apps_service.hpp"

#include "runtime/log.hpp"

#include <filesystem>

namespace tessera::apps {

expected<std::unique_ptr<AppsService>> AppsService::start(Node& node, AppsServiceConfig c) {
  std::unique_ptr<AppsService> service(new AppsService());
  if (!c.work_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(c.work_dir, ec);
    if (ec)
      return make_error(Errc::os_error, "apps: cannot create " + c.work_dir + ": " + ec.message());
  }
  auto store = make_store(c.registry, c.work_dir);
  if (!store)
    return store.error();
  auto loaded = load_state(**store);
  if (!loaded)
    return make_error(Errc::os_error, "apps: cannot read the store " + (*store)->describe() + ": " +
                                          describe(loaded.error()));
  service->store_desc_ = (*store)->describe();
  if (c.http) {
    auto server = http::Server::start(*c.http, apps_http_handler(service->handle_));
    if (!server)
      return server.error();
    service->server_ = std::move(*server);
  }
  AppsConfig ac = std::move(c.tuning);
  ac.scheduler.master = c.master;
  ac.scheduler.detector = c.detector;
  ac.name = c.name;
  ac.role = c.role;
  ac.store = *store;
  ac.loaded = std::move(*loaded);
  ac.handle = service->handle_;
  ac.http_address = service->server_ ? service->server_->address() : c.http_address;
  auto actor = node.spawn<AppsFramework>(c.actor_name, std::move(ac));
  if (!actor) {
    service->stop();
    return actor.error();
  }
  service->actor_ = *actor;
  // Serve only once the actor runs: until then every request would be a 503.
  if (!service->handle_->wait_attached(std::chrono::seconds(10)))
    log().warn(
        "apps: the framework actor has not started within 10 s; its API answers 503 "
        "until it does");
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
