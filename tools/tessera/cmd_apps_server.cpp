// `tessera apps`: the apps framework (services/apps, docs/apps.md) as a
// process of its own, reaching the master by address or following the
// leader (--master zk://...), and serving Marathon's /v2 API on --http
// (default 127.0.0.1:8080, Marathon's port). Its state is in --registry
// (default: SQLite in --work-dir), so a restarted process fails over to its
// framework id and keeps its apps. The same framework runs beside the master
// with `tessera master --apps` and inside `tessera cluster`.

#include "runtime/log.hpp"
#include "services/apps/apps_service.hpp"
#include "services/election/zk_election.hpp"
#include "services/election/zk_spec.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/endpoints.hpp"

#include <cstdio>
#include <memory>

namespace tessera::cli {

namespace {

struct AppsServerOptions {
  std::string master = "127.0.0.1:5050";
  std::string listen;
  std::string advertise;
  std::string http = "127.0.0.1:8080";
  std::string work_dir;
  std::string registry = "sqlite";
  std::string role = "*";
  std::string name = "tessera-apps";
  double failover_timeout_s = 7 * 24 * 3600;
};

int run_apps_server(const AppsServerOptions& o) {
  block_stop_signals();
  apps::AppsServiceConfig ac;
  std::string master_host;
  if (o.master.rfind("zk://", 0) == 0) {
    auto spec = parse_zk_spec(o.master, "--master");
    if (!spec)
      return fail("apps: " + what(spec.error()));
    auto election = ZkElection::open(o.master, {});
    if (!election)
      return fail("apps: " + what(election.error()));
    ac.detector = *election;
    master_host = spec->hosts.substr(0, spec->hosts.find_first_of(":,"));
  } else {
    auto master =
        Address::parse(o.master.find('@') == std::string::npos ? "master@" + o.master : o.master);
    if (!master)
      return fail("apps: bad --master '" + o.master + "': expected HOST:PORT");
    ac.master = *master;
    master_host = master->host;
  }
  if (!valid_role(o.role))
    return fail("apps: bad --role '" + o.role + "'");
  auto http = parse_host_port(o.http);
  if (!http)
    return fail("apps: bad --http '" + o.http + "': expected HOST:PORT");
  auto listen =
      !o.listen.empty() ? o.listen : (loopback_host(master_host) ? "127.0.0.1:0" : "0.0.0.0:0");
  auto endpoints = parse_endpoints(listen, o.advertise);
  if (!endpoints)
    return fail("apps: " + what(endpoints.error()));
  auto nc = NodeConfig::lean();
  apply(*endpoints, nc);
  auto node = Node::start(nc);
  if (!node)
    return fail("apps: cannot listen on " + listen + ": " + describe(node.error()));
  ac.registry = o.registry;
  ac.work_dir = o.work_dir;
  ac.role = o.role;
  ac.name = o.name;
  http::ServerConfig hc;
  hc.host = http->host;
  hc.port = http->port;
  ac.http = hc;
  ac.tuning.failover_timeout = seconds(o.failover_timeout_s);
  auto service = apps::AppsService::start(**node, std::move(ac));
  if (!service) {
    (*node)->stop();
    return fail(what(service.error()));
  }
  std::printf("tessera apps: framework %s following %s; store %s\n", o.name.c_str(),
              o.master.c_str(), (*service)->store().c_str());
  std::printf("tessera apps: Marathon API on http://%s/v2/apps\n",
              (*service)->http_address().c_str());
  std::fflush(stdout);
  int sig = wait_for_stop_signal([&] { return bool((*node)->lookup_local("apps")); });
  (*service)->stop();
  (*node)->stop();
  if (sig == 0)
    return fail("the apps framework stopped by itself (its log says why)");
  std::printf("tessera apps: stopped\n");
  return 0;
}

}  // namespace

Command add_apps_server_command(CLI::App& app) {
  auto o = std::make_shared<AppsServerOptions>();
  auto* sub = app.add_subcommand(
      "apps", "Run the apps framework (long-running services, Marathon's /v2 API) on its own");
  sub->add_option("--master", o->master,
                  "The master: HOST:PORT (or master@HOST:PORT), or zk://HOST:PORT[,...]/PATH to "
                  "follow the leader")
      ->capture_default_str();
  sub->add_option("--http", o->http, "HOST:PORT for the /v2 HTTP API")->capture_default_str();
  sub->add_option("--listen", o->listen,
                  "HOST:PORT of this process's node (default: a free port, loopback for a local "
                  "master)");
  add_advertise_flag(sub, o->advertise);
  sub->add_option("--work-dir", o->work_dir, "Directory for the framework's state")->required();
  sub->add_option("--registry", o->registry,
                  "Where its state lives: sqlite (in --work-dir), sqlite:PATH, zk://HOSTS/PATH or "
                  "memory")
      ->capture_default_str();
  sub->add_option("--role", o->role, "The framework's role; apps run in it")->capture_default_str();
  sub->add_option("--name", o->name, "The framework's name")->capture_default_str();
  sub->add_option("--failover-timeout", o->failover_timeout_s,
                  "Seconds the master keeps the apps' tasks while this framework is away")
      ->check(CLI::Range(0.0, 365.0 * 24 * 3600))
      ->capture_default_str();
  return {sub, [o] { return run_apps_server(*o); }};
}

}  // namespace tessera::cli
