// `tessera jobs`: the jobs framework (services/jobs, docs/jobs.md) as a
// process of its own (framework_server.hpp), serving Metronome's /v1 API on
// --http (default 127.0.0.1:9000, Metronome's port). The same framework runs
// beside the master with `tessera master --jobs` and inside `tessera cluster`.

#include "services/jobs/jobs_service.hpp"
#include "tools/tessera/framework_server.hpp"

#include <memory>

namespace tessera::cli {

Command add_jobs_server_command(CLI::App& app) {
  auto o = std::make_shared<FrameworkServerOptions>();
  o->http = "127.0.0.1:9000";
  o->name = "tessera-jobs";
  auto history_max = std::make_shared<size_t>(10);
  auto* sub = app.add_subcommand(
      "jobs", "Run the jobs framework (cron jobs, Metronome's /v1 API) on its own");
  add_framework_server_flags(sub, *o, "jobs");
  sub->add_option("--history", *history_max,
                  "Finished runs kept per job, successes and failures each")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  return {sub, [o, history_max] {
            return run_framework_server(
                *o, "jobs",
                [history_max](Node& node, const FrameworkServerOptions& o,
                              FrameworkServerSetup setup) -> expected<FrameworkServerRunning> {
                  jobs::JobsServiceConfig jc;
                  jc.master = setup.master;
                  jc.detector = setup.detector;
                  jc.registry = o.registry;
                  jc.work_dir = o.work_dir;
                  jc.role = o.role;
                  jc.name = o.name;
                  jc.http = setup.http;
                  jc.guard = setup.guard;
                  jc.tuning.failover_timeout = seconds(o.failover_timeout_s);
                  jc.tuning.history_max = *history_max;
                  auto service = jobs::JobsService::start(node, std::move(jc));
                  if (!service)
                    return service.error();
                  std::shared_ptr<jobs::JobsService> s = std::move(*service);
                  return FrameworkServerRunning{
                      {"framework " + o.name + " following " + o.master + "; store " + s->store(),
                       std::string("Metronome API on ") + scheme_of(setup.http.tls) + "://" +
                           s->http_address() + "/v1/jobs"},
                      [s] { s->stop(); },
                      "jobs"};
                });
          }};
}

}  // namespace tessera::cli
