#include "services/jobs/jobs_service.hpp"

#include "services/common/framework_service.hpp"

namespace tessera::jobs {

expected<std::unique_ptr<JobsService>> JobsService::start(Node& node, JobsServiceConfig c) {
  std::unique_ptr<JobsService> service(new JobsService());
  auto parts = open_framework_service("jobs", c.registry, c.work_dir, c.http,
                                      jobs_http_handler(service->handle_));
  if (!parts)
    return parts.error();
  service->server_ = std::move(parts->server);
  auto loaded = load_state(*parts->store);
  if (!loaded) {
    service->stop();
    return make_error(Errc::os_error, "jobs: cannot read the store " + parts->store->describe() +
                                          ": " + describe(loaded.error()));
  }
  service->store_desc_ = parts->store->describe();
  JobsConfig jc = std::move(c.tuning);
  jc.scheduler.master = c.master;
  jc.scheduler.detector = c.detector;
  jc.name = c.name;
  jc.role = c.role;
  jc.store = parts->store;
  jc.loaded = std::move(*loaded);
  jc.handle = service->handle_;
  jc.http_address = service->server_ ? service->server_->address() : c.http_address;
  auto actor = spawn_framework(node, "jobs", c.actor_name, std::move(jc), *service->handle_);
  if (!actor) {
    service->stop();
    return actor.error();
  }
  service->actor_ = *actor;
  return service;
}

JobsService::~JobsService() {
  stop();
}

void JobsService::stop() {
  if (server_)
    server_->stop();
}

}  // namespace tessera::jobs
