#include "services/jobs/jobs_service.hpp"

#include "runtime/log.hpp"

#include <filesystem>

namespace tessera::jobs {

expected<std::unique_ptr<JobsService>> JobsService::start(Node& node, JobsServiceConfig c) {
  std::unique_ptr<JobsService> service(new JobsService());
  if (!c.work_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(c.work_dir, ec);
    if (ec)
      return make_error(Errc::os_error, "jobs: cannot create " + c.work_dir + ": " + ec.message());
  }
  auto store = make_store(c.registry, c.work_dir);
  if (!store)
    return store.error();
  auto loaded = load_state(**store);
  if (!loaded)
    return make_error(Errc::os_error, "jobs: cannot read the store " + (*store)->describe() + ": " +
                                          describe(loaded.error()));
  service->store_desc_ = (*store)->describe();
  if (c.http) {
    auto server = http::Server::start(*c.http, jobs_http_handler(service->handle_));
    if (!server)
      return server.error();
    service->server_ = std::move(*server);
  }
  JobsConfig jc = std::move(c.tuning);
  jc.scheduler.master = c.master;
  jc.scheduler.detector = c.detector;
  jc.name = c.name;
  jc.role = c.role;
  jc.store = *store;
  jc.loaded = std::move(*loaded);
  jc.handle = service->handle_;
  jc.http_address = service->server_ ? service->server_->address() : c.http_address;
  auto actor = node.spawn<JobsFramework>(c.actor_name, std::move(jc));
  if (!actor) {
    service->stop();
    return actor.error();
  }
  service->actor_ = *actor;
  if (!service->handle_->wait_attached(std::chrono::seconds(10)))
    log().warn(
        "jobs: the framework actor has not started within 10 s; its API answers 503 "
        "until it does");
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
