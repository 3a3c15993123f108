#include "services/jobs/jobs_service.hpp"

#include "services/common/framework_service.hpp"

namespace tessera::jobs {

expected<std::unique_ptr<JobsService>> JobsService::start(Node& node, JobsServiceConfig c) {
  std::unique_ptr<JobsService> service(new JobsService());
  service->guard_ = c.guard;
  auto parts = open_framework_service("jobs", c.registry, c.work_dir, c.http, service->handler());
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

security::RouteAccess jobs_access(const http::Request& r) {
  using security::Action;
  security::RouteAccess out;
  bool read = r.method == "GET" || r.method == "HEAD";
  const std::string jobs = "/v1/jobs/";
  if (r.path.size() > jobs.size() && r.path.compare(0, jobs.size(), jobs) == 0) {
    auto id = r.path.substr(jobs.size());
    id = id.substr(0, id.find('/'));
    out.checks.push_back({read ? Action::view_jobs : Action::update_jobs, id});
    return out;
  }
  if (read) {
    out.checks.push_back({Action::view_jobs, std::nullopt});
    return out;
  }
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("id") && body["id"].is_string())
    out.checks.push_back({Action::update_jobs, body["id"].get<std::string>()});
  else
    out.checks.push_back({Action::update_jobs, std::nullopt});
  return out;
}

http::Handler JobsService::handler() const {
  return security::guarded_handler(guard_, jobs_access, jobs_http_handler(handle_));
}

JobsService::~JobsService() {
  stop();
}

void JobsService::stop() {
  if (server_)
    server_->stop();
}

}  // namespace tessera::jobs
