// `tessera apps`: the apps framework (services/apps, docs/apps.md) as a
// process of its own (framework_server.hpp), serving Marathon's /v2 API on
// --http (default 127.0.0.1:8080, Marathon's port). The same framework runs
// beside the master with `tessera master --apps` and inside `tessera cluster`.

#include "services/apps/apps_service.hpp"
#include "tools/tessera/framework_server.hpp"

#include <memory>

namespace tessera::cli {

Command add_apps_server_command(CLI::App& app) {
  auto o = std::make_shared<FrameworkServerOptions>();
  o->http = "127.0.0.1:8080";
  o->name = "tessera-apps";
  auto* sub = app.add_subcommand(
      "apps", "Run the apps framework (long-running services, Marathon's /v2 API) on its own");
  add_framework_server_flags(sub, *o, "apps");
  return {sub, [o] {
            return run_framework_server(
                *o, "apps",
                [](Node& node, const FrameworkServerOptions& o,
                   FrameworkServerSetup setup) -> expected<FrameworkServerRunning> {
                  apps::AppsServiceConfig ac;
                  ac.master = setup.master;
                  ac.detector = setup.detector;
                  ac.registry = o.registry;
                  ac.work_dir = o.work_dir;
                  ac.role = o.role;
                  ac.name = o.name;
                  ac.http = setup.http;
                  ac.guard = setup.guard;
                  ac.tuning.failover_timeout = seconds(o.failover_timeout_s);
                  auto service = apps::AppsService::start(node, std::move(ac));
                  if (!service)
                    return service.error();
                  std::shared_ptr<apps::AppsService> s = std::move(*service);
                  return FrameworkServerRunning{
                      {"framework " + o.name + " following " + o.master + "; store " + s->store(),
                       std::string("Marathon API on ") + scheme_of(setup.http.tls) + "://" +
                           s->http_address() + "/v2/apps"},
                      [s] { s->stop(); },
                      "apps"};
                });
          }};
}

}  // namespace tessera::cli
