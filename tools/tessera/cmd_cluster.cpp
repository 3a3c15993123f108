// `tessera cluster`: a master and N agents in this one process (what
// mesos-local was); frameworks reach it from anywhere at the printed address.

#include "runtime/log.hpp"
#include "services/apps/apps_service.hpp"
#include "services/jobs/jobs_service.hpp"
#include "services/cluster/local_cluster.hpp"
#include "tools/tessera/agent_flags.hpp"
#include "tools/tessera/security_flags.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/dns_flags.hpp"
#include "tools/tessera/endpoints.hpp"
#include "tools/tessera/tls_flags.hpp"
#include "tools/tessera/operator_window.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <memory>

namespace tessera::cli {

namespace {

struct ClusterOptions {
  std::string listen = "127.0.0.1:5050";
  std::string advertise;
  std::string http;
  size_t agents = 1;
  std::string agent_resources;
  std::string agent_attributes;
  std::string work_dir;
  double allocation_interval_s = 1.0;
  double offer_timeout_s = 0;
  bool process_executors = false;
  std::string isolation = "auto";
  bool no_apps = false;
  bool no_jobs = false;
  bool no_dns = false;
  DnsFlags dns;
  TlsFlags tls;
  TaskFlags tasks;
  SecurityFlags security;
};

int run_cluster(const ClusterOptions& o) {
  block_stop_signals();
  auto endpoints = parse_endpoints(o.listen, o.advertise);
  if (!endpoints)
    return fail(what(endpoints.error()));
  if (!endpoints->warning.empty())
    std::fprintf(stderr, "tessera: cluster: warning: %s\n", endpoints->warning.c_str());
  auto http = http_config(o.http, *endpoints);
  if (!http)
    return fail(what(http.error()));
  // A cluster in one process is for a laptop or a test: on loopback it may
  // speak plaintext without being told, and says so.
  auto tls_flags = o.tls;
  bool plaintext_by_default = !tls_flags.insecure && tls_flags.cert.empty() &&
                              tls_flags.key.empty() && tls_flags.ca.empty() &&
                              loopback_host(endpoints->bind_host);
  if (plaintext_by_default)
    tls_flags.insecure = true;
  auto tls = tls_config(tls_flags);
  if (!tls)
    return fail("cluster: " + what(tls.error()));
  if (plaintext_by_default)
    std::fprintf(stderr,
                 "tessera: cluster: plaintext on loopback (--insecure): for this machine only; "
                 "pass --tls-cert/--tls-key/--tls-ca for mutual TLS\n");
  auto guard = load_guard(o.security, "cluster");
  if (!guard)
    return fail(what(guard.error()));
  auto https = edge_tls(*tls);  // plaintext unless given certificates
  if (!https)
    return fail("cluster: HTTPS: " + what(https.error()));
  http->tls = *https;
  LocalClusterConfig config;
  config.agent_http_guard = *guard;
  config.agent_http_tls = *https;
  apply(*endpoints, config.node);
  config.node.tls = *tls;
  config.agents = o.agents;
  config.agent_resources = o.agent_resources;
  config.agent_attributes = o.agent_attributes;
  if (o.work_dir.empty()) {
    char tmpl[] = "/tmp/tessera-cluster-XXXXXX";
    if (!::mkdtemp(tmpl))
      return fail("cannot create a work directory in /tmp");
    // mkdtemp's 0700 would keep the tasks of other users (--switch-user)
    // out of their own sandboxes; 0755 lets them in and write nowhere.
    if (::chmod(tmpl, 0755) != 0)
      return fail(std::string("cannot make ") + tmpl + " 0755");
    config.work_dir = tmpl;
  } else {
    config.work_dir = o.work_dir;
  }
  // The master's registry: beside the agents' directories, so a cluster
  // started again on the same --work-dir remembers its agents and frameworks.
  auto master_dir = std::filesystem::path(config.work_dir) / "master";
  std::error_code ec;
  std::filesystem::create_directories(master_dir, ec);
  if (ec)
    return fail("cannot create " + master_dir.string() + ": " + ec.message());
  auto store = make_store("sqlite", master_dir.string());
  if (!store)
    return fail(what(store.error()));
  config.master.registry = *store;
  config.master.allocation_interval = seconds(o.allocation_interval_s);
  config.master.offer_timeout = seconds(o.offer_timeout_s);
  config.master.authorizer = (*guard)->authorizer();
  if (o.process_executors) {
    config.agent.executor_mode = ExecutorMode::process;
    config.agent.executor_binary = self_path();
  }
  if (auto err = parse_isolation(o.isolation, config.isolation, config.agent.pid_namespace))
    return fail("--isolation: " + what(err));
  if (auto err = apply_task_flags(o.tasks, config.agent))
    return fail(what(err));
  config.agent_http_host = http->host;  // each agent's HTTP API, at a free port
  auto cluster = LocalCluster::start(config);
  if (!cluster)
    return fail(what(cluster.error()));
  auto master = (*cluster)->master_address();
  // The apps framework (on by default): beside the master, its /v2 API
  // on the master's HTTP edge, its state in work_dir/apps.
  std::unique_ptr<apps::AppsService> apps;
  std::vector<MasterHttp::Mount> mounts;
  if (!o.no_apps) {
    apps::AppsServiceConfig ac;
    ac.master = master;
    ac.work_dir = (std::filesystem::path(config.work_dir) / "apps").string();
    ac.guard = *guard;
    auto started = apps::AppsService::start((*cluster)->node(), std::move(ac));
    if (!started) {
      (*cluster)->stop();
      return fail(what(started.error()));
    }
    apps = std::move(*started);
    mounts.push_back({"/v2", apps->handler()});
  }
  // The jobs framework (on by default): its /v1/jobs API on the master's
  // HTTP edge, its state in work_dir/jobs.
  std::unique_ptr<jobs::JobsService> jobs;
  if (!o.no_jobs) {
    jobs::JobsServiceConfig jc;
    jc.master = master;
    jc.work_dir = (std::filesystem::path(config.work_dir) / "jobs").string();
    jc.guard = *guard;
    auto started = jobs::JobsService::start((*cluster)->node(), std::move(jc));
    if (!started) {
      (*cluster)->stop();
      return fail(what(started.error()));
    }
    jobs = std::move(*started);
    mounts.push_back({"/v1/jobs", jobs->handler()});
  }
  // The DNS server (on by default): names of the cluster's tasks from the
  // master's events. On the default address, a port already taken (another
  // cluster on this machine) only costs this one its DNS, with a warning.
  std::unique_ptr<dns::DnsService> dns;
  if (!o.no_dns) {
    auto dc = dns_service_config(o.dns);
    if (!dc) {
      (*cluster)->stop();
      return fail(what(dc.error()));
    }
    dc->master = master;
    auto started = dns::DnsService::start(&(*cluster)->node(), std::move(*dc));
    if (!started && o.dns.address_given) {
      (*cluster)->stop();
      return fail(what(started.error()));
    }
    if (!started)
      std::fprintf(stderr, "tessera: cluster: warning: no DNS server: %s\n",
                   what(started.error()).c_str());
    else
      dns = std::move(*started);
  }
  StateViewConfig view;
  view.flags = {{"listen", o.listen},
                {"http", o.http},
                {"agents", std::to_string(o.agents)},
                {"work_dir", config.work_dir},
                {"isolation", o.isolation},
                {"apps", o.no_apps ? "false" : "true"},
                {"jobs", o.no_jobs ? "false" : "true"}};
  // The DNS server's counters on the master's /metrics, as tessera_dns_*.
  if (dns)
    view.extra_metrics = [d = dns.get()] {
      auto out = d->metrics();
      for (auto& [name, value] : out)
        name = "tessera_dns_" + name;
      return out;
    };
  auto window = start_operator_window((*cluster)->node(), master.name, *http, std::move(view),
                                      std::move(mounts), *guard);
  if (!window) {
    (*cluster)->stop();
    return fail(what(window.error()));
  }
  std::printf("tessera cluster: master at %s:%u with %zu agent(s), work dir %s\n",
              master.host.c_str(), master.port, o.agents, config.work_dir.c_str());
  const char* scheme = scheme_of(http->tls);
  std::printf("HTTP API and web UI: %s://%s/\n", scheme, window->edge->address().c_str());
  std::printf("run a task:   tessera run --master %s:%u -- echo hello\n", master.host.c_str(),
              master.port);
  if (apps)
    std::printf("apps:         %s://%s/v2/apps (tessera app add FILE --apps %s)\n", scheme,
                window->edge->address().c_str(), window->edge->address().c_str());
  if (jobs)
    std::printf("jobs:         %s://%s/v1/jobs (tessera job add FILE --jobs %s)\n", scheme,
                window->edge->address().c_str(), window->edge->address().c_str());
  if (dns)
    std::printf("dns:          %s (dig @%s -p %s leader.%s)\n", dns_banner(*dns).c_str(),
                dns->address().substr(0, dns->address().rfind(':')).c_str(),
                dns->address().substr(dns->address().rfind(':') + 1).c_str(),
                dns->domain().c_str());
  std::printf("stop:         Ctrl-C\n");
  std::fflush(stdout);
  int sig = wait_for_stop_signal();
  log().info("cluster: stopping on signal {}", sig);
  window->stop();
  if (dns)
    dns->stop();
  (*cluster)->stop();
  std::printf("tessera cluster: stopped\n");
  return 0;
}

}  // namespace

Command add_cluster_command(CLI::App& app) {
  auto o = std::make_shared<ClusterOptions>();
  auto* sub = app.add_subcommand("cluster", "Run a master and N agents in this one process");
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  add_advertise_flag(sub, o->advertise);
  add_tls_flags(sub, o->tls);
  add_http_flag(sub, o->http);
  sub->add_option("--agents", o->agents, "Number of agents")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  sub->add_option("--agent-resources", o->agent_resources,
                  "Each agent's resources, e.g. 'cpus:2;mem:1024'; the rest is detected");
  sub->add_option("--agent-attributes", o->agent_attributes, "Each agent's attributes");
  sub->add_option("--work-dir", o->work_dir, "Directory for sandboxes; default: a new one in /tmp");
  add_security_flags(sub, o->security);
  add_allocation_flags(sub, o->allocation_interval_s, o->offer_timeout_s);
  sub->add_flag("--process-executors", o->process_executors,
                "Run executors as processes instead of actors in this process");
  sub->add_flag("--no-apps", o->no_apps, "Do not run the apps framework beside the master");
  sub->add_flag("--no-jobs", o->no_jobs, "Do not run the jobs framework beside the master");
  sub->add_flag("--no-dns", o->no_dns, "Do not run the DNS server beside the master");
  add_dns_flags(sub, o->dns, true);
  sub->add_option("--isolation", o->isolation,
                  "cgroups, posix or auto (cgroups when writable), optionally ',pid-ns'")
      ->capture_default_str();
  add_task_flags(sub, o->tasks);
  return {sub, [o] { return run_cluster(*o); }};
}

}  // namespace tessera::cli
