#include "tools/tessera/framework_server.hpp"

#include "services/common/resources.hpp"
#include "services/election/zk_election.hpp"
#include "services/election/zk_spec.hpp"
#include "tools/tessera/endpoints.hpp"

#include <cstdio>

namespace tessera::cli {

void add_framework_server_flags(CLI::App* sub, FrameworkServerOptions& o, const std::string& what) {
  sub->add_option("--master", o.master,
                  "The master: HOST:PORT (or master@HOST:PORT), or zk://HOST:PORT[,...]/PATH to "
                  "follow the leader")
      ->capture_default_str();
  sub->add_option("--http", o.http, "HOST:PORT for the HTTP API")->capture_default_str();
  sub->add_option("--listen", o.listen,
                  "HOST:PORT of this process's node (default: a free port, loopback for a local "
                  "master)");
  add_advertise_flag(sub, o.advertise);
  add_tls_flags(sub, o.tls);
  sub->add_option("--work-dir", o.work_dir, "Directory for the framework's state")->required();
  add_security_flags(sub, o.security);
  sub->add_option("--registry", o.registry,
                  "Where its state lives: sqlite (in --work-dir), sqlite:PATH, zk://HOSTS/PATH or "
                  "memory")
      ->capture_default_str();
  sub->add_option("--role", o.role, "The framework's role; " + what + " run in it")
      ->capture_default_str();
  sub->add_option("--name", o.name, "The framework's name")->capture_default_str();
  sub->add_option("--failover-timeout", o.failover_timeout_s,
                  "Seconds the master keeps the " + what + "' tasks while this framework is away")
      ->check(CLI::Range(0.0, 365.0 * 24 * 3600))
      ->capture_default_str();
}

int run_framework_server(const FrameworkServerOptions& o, const std::string& what,
                         const FrameworkServerStart& start) {
  block_stop_signals();
  FrameworkServerSetup setup;
  std::string master_host;
  if (o.master.rfind("zk://", 0) == 0) {
    auto spec = parse_zk_spec(o.master, "--master");
    if (!spec)
      return fail(what + ": " + tessera::what(spec.error()));
    auto election = ZkElection::open(o.master, {});
    if (!election)
      return fail(what + ": " + tessera::what(election.error()));
    setup.detector = *election;
    master_host = spec->hosts.substr(0, spec->hosts.find_first_of(":,"));
  } else {
    auto master =
        Address::parse(o.master.find('@') == std::string::npos ? "master@" + o.master : o.master);
    if (!master)
      return fail(what + ": bad --master '" + o.master + "': expected HOST:PORT");
    setup.master = *master;
    master_host = master->host;
  }
  if (!valid_role(o.role))
    return fail(what + ": bad --role '" + o.role + "'");
  auto http = parse_host_port(o.http);
  if (!http)
    return fail(what + ": bad --http '" + o.http + "': expected HOST:PORT");
  auto guard = load_guard(o.security, what);
  if (!guard)
    return fail(what + ": " + tessera::what(guard.error()));
  setup.guard = *guard;
  setup.http.host = http->host;
  setup.http.port = http->port;
  auto listen =
      !o.listen.empty() ? o.listen : (loopback_host(master_host) ? "127.0.0.1:0" : "0.0.0.0:0");
  auto endpoints = parse_endpoints(listen, o.advertise);
  if (!endpoints)
    return fail(what + ": " + tessera::what(endpoints.error()));
  auto tls = tls_config(o.tls);
  if (!tls)
    return fail(what + ": " + tessera::what(tls.error()));
  auto https = edge_tls(*tls);
  if (!https)
    return fail(what + ": HTTPS: " + tessera::what(https.error()));
  setup.http.tls = *https;
  auto nc = NodeConfig::lean();
  apply(*endpoints, nc);
  nc.tls = *tls;
  auto node = Node::start(nc);
  if (!node)
    return fail(what + ": cannot start its node on " + listen + ": " + describe(node.error()));
  auto running = start(**node, o, std::move(setup));
  if (!running) {
    (*node)->stop();
    return fail(tessera::what(running.error()));
  }
  for (const auto& line : running->banner)
    std::printf("tessera %s: %s\n", what.c_str(), line.c_str());
  std::fflush(stdout);
  int sig = wait_for_stop_signal([&] { return bool((*node)->lookup_local(running->actor_name)); });
  running->stop();
  (*node)->stop();
  if (sig == 0)
    return fail("the " + what + " framework stopped by itself (its log says why)");
  std::printf("tessera %s: stopped\n", what.c_str());
  return 0;
}

}  // namespace tessera::cli
