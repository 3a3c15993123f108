// `tessera master`: one master (and its allocator) on a node of its own.

#include "runtime/log.hpp"
#include "services/apps/apps_service.hpp"
#include "services/jobs/jobs_service.hpp"
#include "services/master/contender.hpp"
#include "services/master/master.hpp"
#include "tools/tessera/security_flags.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/dns_flags.hpp"
#include "tools/tessera/endpoints.hpp"
#include "tools/tessera/tls_flags.hpp"
#include "tools/tessera/operator_window.hpp"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>

namespace tessera::cli {

namespace {

struct MasterOptions {
  std::string listen = "127.0.0.1:5050";
  std::string advertise;
  std::string http;
  std::string work_dir;
  SecurityFlags security;
  std::string registry = "sqlite";
  bool registry_given = false;
  std::string zk;  // zk://HOSTS/PATH: contend for the lead with other masters
  int zk_session_timeout_ms = 10'000;
  double allocation_interval_s = 1.0;
  double offer_timeout_s = 0;
  double agent_ping_interval_s = 5.0;
  double agent_ping_timeout_s = 5.0;
  uint32_t agent_pings_missed_max = 3;
  double agent_removal_timeout_s = 600;
  double agent_reregister_timeout_s = 600;
  double agent_task_audit_interval_s = 30;
  double agent_task_audit_age_s = 10;
  double heartbeat_interval_s = 15.0;
  std::string sorter = "drf";
  bool apps = false;
  bool jobs = false;
  bool dns = false;
  DnsFlags dns_flags;
  TlsFlags tls;
};

// Who leads, for the state view of a standby (its thread) while this
// thread opens the election.
class LeaderInfo {
 public:
  void set(std::shared_ptr<ZkElection> election) {
    std::lock_guard lock(mu_);
    election_ = std::move(election);
  }
  StateViewConfig::Leader leader() const {
    std::shared_ptr<ZkElection> election;
    {
      std::lock_guard lock(mu_);
      election = election_;
    }
    if (!election)
      return {};
    auto v = election->view();
    if (!v.leader || v.leading)
      return {};
    return {*v.leader, v.leader_http};
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<ZkElection> election_;
};

// What GET_FLAGS answers.
std::vector<std::pair<std::string, std::string>> flags_of(const MasterOptions& o) {
  auto num = [](double v) { return fmt::format("{}", v); };
  return {{"listen", o.listen},
          {"advertise", o.advertise},
          {"http", o.http},
          {"work_dir", o.work_dir},
          {"registry", o.registry},
          {"zk", o.zk},
          {"zk_session_timeout", std::to_string(o.zk_session_timeout_ms)},
          {"allocation_interval", num(o.allocation_interval_s)},
          {"offer_timeout", num(o.offer_timeout_s)},
          {"agent_ping_interval", num(o.agent_ping_interval_s)},
          {"agent_ping_timeout", num(o.agent_ping_timeout_s)},
          {"agent_pings_missed", std::to_string(o.agent_pings_missed_max)},
          {"agent_removal_timeout", num(o.agent_removal_timeout_s)},
          {"agent_reregister_timeout", num(o.agent_reregister_timeout_s)},
          {"heartbeat_interval", num(o.heartbeat_interval_s)},
          {"sorter", o.sorter}};
}

int run_master(const MasterOptions& o) {
  block_stop_signals();
  auto endpoints = parse_endpoints(o.listen, o.advertise);
  if (!endpoints)
    return fail(what(endpoints.error()));
  std::error_code ec;
  std::filesystem::create_directories(o.work_dir, ec);
  if (ec)
    return fail("--work-dir " + o.work_dir + ": " + ec.message());
  if (!endpoints->warning.empty())
    std::fprintf(stderr, "tessera: master: warning: %s\n", endpoints->warning.c_str());
  // With --zk, the masters share one registry in ZooKeeper (by default
  // under the same path): a file of one machine's would diverge.
  std::string registry = o.zk.empty() || o.registry_given ? o.registry : o.zk;
  if (o.apps && !o.zk.empty())
    return fail(
        "--apps runs one apps framework per master process; with --zk, run it once, on "
        "its own: tessera apps --master " +
        o.zk);
  if (o.jobs && !o.zk.empty())
    return fail(
        "--jobs runs one jobs framework per master process; with --zk, run it once, on "
        "its own: tessera jobs --master " +
        o.zk);
  if (o.dns && !o.zk.empty())
    return fail(
        "--dns follows the master of its own process; with --zk, run it on its own: "
        "tessera dns --master " +
        o.zk);
  if (!o.zk.empty()) {
    if (auto spec = parse_zk_spec(o.zk, "--zk"); !spec)
      return fail(what(spec.error()));
    if (registry.rfind("zk://", 0) != 0)
      return fail(
          "--zk: masters that take turns must share their registry: --registry "
          "zk://HOSTS/PATH (the default with --zk is the --zk path)");
  }
  auto http = http_config(o.http, *endpoints);
  if (!http)
    return fail(what(http.error()));
  auto guard = load_guard(o.security, "master");
  if (!guard)
    return fail(what(guard.error()));
  auto store = make_store(registry, o.work_dir, o.zk_session_timeout_ms);
  if (!store)
    return fail(what(store.error()));
  auto tls = tls_config(o.tls);
  if (!tls)
    return fail("master: " + what(tls.error()));
  auto https = edge_tls(*tls);
  if (!https)
    return fail("master: HTTPS: " + what(https.error()));
  http->tls = *https;
  NodeConfig nc;
  apply(*endpoints, nc);
  nc.tls = *tls;
  auto node = Node::start(nc);
  if (!node)
    return fail("master: cannot start its node on " + o.listen + ": " + describe(node.error()));
  // The operator's window first: with --zk, its address goes into this
  // master's election node, for standbys' redirects and the CLI.
  auto leader_info = std::make_shared<LeaderInfo>();
  StateViewConfig view;
  view.flags = flags_of(o);
  view.leader = [leader_info] { return leader_info->leader(); };
  // --apps: the apps framework beside the master, on this node, its /v2
  // API on the master's HTTP edge and its state in work_dir/apps.
  std::unique_ptr<apps::AppsService> apps;
  std::vector<MasterHttp::Mount> mounts;
  if (o.apps) {
    apps::AppsServiceConfig ac;
    ac.master = (*node)->address_of("master");
    ac.work_dir = (std::filesystem::path(o.work_dir) / "apps").string();
    ac.guard = *guard;
    auto started = apps::AppsService::start(**node, std::move(ac));
    if (!started) {
      (*node)->stop();
      return fail(what(started.error()));
    }
    apps = std::move(*started);
    mounts.push_back({"/v2", apps->handler()});
  }
  // --jobs: the jobs framework beside the master, its /v1/jobs API on the
  // master's HTTP edge and its state in work_dir/jobs.
  std::unique_ptr<jobs::JobsService> jobs;
  if (o.jobs) {
    jobs::JobsServiceConfig jc;
    jc.master = (*node)->address_of("master");
    jc.work_dir = (std::filesystem::path(o.work_dir) / "jobs").string();
    jc.guard = *guard;
    auto started = jobs::JobsService::start(**node, std::move(jc));
    if (!started) {
      (*node)->stop();
      return fail(what(started.error()));
    }
    jobs = std::move(*started);
    mounts.push_back({"/v1/jobs", jobs->handler()});
  }
  // --dns: the DNS server beside the master, kept from its events.
  std::unique_ptr<dns::DnsService> dns;
  if (o.dns) {
    auto dc = dns_service_config(o.dns_flags);
    if (!dc) {
      (*node)->stop();
      return fail(what(dc.error()));
    }
    dc->master = (*node)->address_of("master");
    auto started = dns::DnsService::start(node->get(), std::move(*dc));
    if (!started) {
      (*node)->stop();
      return fail(what(started.error()));
    }
    dns = std::move(*started);
  }
  // The DNS server's counters on the master's /metrics, as tessera_dns_*.
  if (dns)
    view.extra_metrics = [d = dns.get()] {
      auto out = d->metrics();
      for (auto& [name, value] : out)
        name = "tessera_dns_" + name;
      return out;
    };
  auto window =
      start_operator_window(**node, "master", *http, std::move(view), std::move(mounts), *guard);
  if (!window) {
    (*node)->stop();
    return fail(what(window.error()));
  }
  MasterConfig mc;
  mc.registry = *store;
  mc.allocator.sorter = o.sorter;
  mc.allocation_interval = seconds(o.allocation_interval_s);
  mc.offer_timeout = seconds(o.offer_timeout_s);
  mc.agent_ping_interval = seconds(o.agent_ping_interval_s);
  mc.agent_ping_timeout = seconds(o.agent_ping_timeout_s);
  mc.agent_pings_missed_max = o.agent_pings_missed_max;
  mc.agent_removal_timeout = seconds(o.agent_removal_timeout_s);
  mc.agent_reregister_timeout = seconds(o.agent_reregister_timeout_s);
  mc.agent_task_audit_interval = seconds(o.agent_task_audit_interval_s);
  mc.agent_task_audit_age = seconds(o.agent_task_audit_age_s);
  mc.framework_heartbeat_interval = seconds(o.heartbeat_interval_s);
  mc.authorizer = (*guard)->authorizer();
  auto bound = nc.host.find(':') == std::string::npos ? nc.host : "[" + nc.host + "]";
  // Single-master mode: the master runs from the start. With --zk, a
  // contender runs it only while this process leads.
  const char* alive = "master";
  expected<Address> master = (*node)->address_of("master");
  // Held here too, so that it closes (and its node goes) on this thread
  // once the node has stopped, never on a thread of its own client.
  std::shared_ptr<ZkElection> held_election;
  std::shared_ptr<std::atomic<bool>> leading;  // the contender's
  if (o.zk.empty()) {
    master = (*node)->spawn<Master>("master", mc);
  } else {
    auto election =
        ZkElection::open(o.zk, {o.zk_session_timeout_ms, (*node)->address_of("master").to_string(),
                                window->edge->address()});
    if (!election) {
      window->stop();
      (*node)->stop();
      return fail(what(election.error()));
    }
    held_election = *election;
    leader_info->set(*election);
    MasterContenderConfig cc;
    cc.master = mc;
    cc.registry_spec = registry;
    cc.work_dir = o.work_dir;
    cc.zk_session_timeout_ms = o.zk_session_timeout_ms;
    cc.election = *election;
    alive = "master-contender";
    leading = cc.leading;
    if (auto contender = (*node)->spawn<MasterContender>(alive, cc); !contender)
      master = contender.error();
  }
  if (!master) {
    window->stop();
    (*node)->stop();
    return fail("cannot start the master: " + describe(master.error()));
  }
  const char* scheme = scheme_of(http->tls);
  std::printf("tessera master: HTTP API and web UI on %s://%s/\n", scheme,
              window->edge->address().c_str());
  if (jobs)
    std::printf("tessera master: jobs API on %s://%s/v1/jobs\n", scheme,
                window->edge->address().c_str());
  if (dns)
    std::printf("tessera master: DNS on %s\n", dns_banner(*dns).c_str());
  std::printf("tessera master %s on %s (bound to %s:%u; work dir %s; registry %s%s%s)\n",
              o.zk.empty() ? "listening" : "contending", master->to_string().c_str(), bound.c_str(),
              (*node)->bound_port(), o.work_dir.c_str(), mc.registry->describe().c_str(),
              o.zk.empty() ? "" : "; election ", o.zk.c_str());
  std::fflush(stdout);
  // With --zk, each change of role is a line on stdout: what an operator
  // watching this master wants to know first.
  std::string role_said;
  auto say_role = [&] {
    if (!held_election)
      return;
    auto view = held_election->view();
    std::string role = "standing by; no leader known yet";
    if (leading->load())
      role = "leading";
    else if (view.leading)
      role = "taking the lead";
    else if (view.leader)
      role = "standing by; " + *view.leader + " leads";
    if (role != role_said) {
      role_said = role;
      std::printf("tessera master: %s\n", role.c_str());
      std::fflush(stdout);
    }
  };
  int sig = wait_for_stop_signal([&] {
    say_role();
    return bool((*node)->lookup_local(alive));
  });
  window->stop();
  if (sig == 0) {
    (*node)->stop();
    return fail("the master stopped by itself (its log says why)");
  }
  log().info("master: stopping on signal {}", sig);
  (*node)->stop();
  return 0;
}

}  // namespace

Command add_master_command(CLI::App& app) {
  auto o = std::make_shared<MasterOptions>();
  auto* sub = app.add_subcommand("master",
                                 "Run a master: it pools agents and offers them to "
                                 "frameworks");
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  add_advertise_flag(sub, o->advertise);
  add_tls_flags(sub, o->tls);
  add_http_flag(sub, o->http);
  sub->add_option("--work-dir", o->work_dir, "Directory for the master's state")->required();
  add_security_flags(sub, o->security);
  sub->add_option(
         "--registry", o->registry,
         "Where the master records what must outlive it: sqlite (registry.db in "
         "--work-dir), sqlite:PATH, zk://HOST:PORT[,HOST:PORT...]/PATH (ZooKeeper), or memory "
         "(nothing survives a restart)")
      ->capture_default_str()
      ->each([o](const std::string&) { o->registry_given = true; });
  sub->add_flag("--apps", o->apps,
                "Run the apps framework beside the master (its /v2 API on the master's HTTP "
                "edge, its state in --work-dir/apps)");
  sub->add_flag("--jobs", o->jobs,
                "Run the jobs framework beside the master (its /v1/jobs API on the master's "
                "HTTP edge, its state in --work-dir/jobs)");
  sub->add_flag("--dns", o->dns,
                "Run the DNS server beside the master (names of tasks, agents and the leader)");
  add_dns_flags(sub, o->dns_flags, true);
  sub->add_option("--zk", o->zk,
                  "zk://HOST:PORT[,HOST:PORT...]/PATH: run as one of several masters that "
                  "elect a leader through ZooKeeper; the others stand by (the registry defaults "
                  "to the same path)");
  sub->add_option("--zk-session-timeout", o->zk_session_timeout_ms,
                  "Milliseconds of ZooKeeper silence before a master's session (and lead) "
                  "expires; a leader that loses ZooKeeper steps down after a sixth of it")
      ->check(CLI::Range(200, 600'000))
      ->capture_default_str();
  add_allocation_flags(sub, o->allocation_interval_s, o->offer_timeout_s);
  sub->add_option("--agent-ping-interval", o->agent_ping_interval_s, "Seconds between agent pings")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_option("--agent-ping-timeout", o->agent_ping_timeout_s,
                  "Seconds an agent has to answer a ping")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_option("--agent-pings-missed", o->agent_pings_missed_max,
                  "Missed pings in a row before an agent is unreachable")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub->add_option("--agent-removal-timeout", o->agent_removal_timeout_s,
                  "Seconds an unreachable agent is kept before it is removed (its tasks GONE)")
      ->check(CLI::Range(0.001, 31'536'000.0))
      ->capture_default_str();
  sub->add_option("--agent-reregister-timeout", o->agent_reregister_timeout_s,
                  "Seconds after the master starts that agents have to reregister; until then "
                  "reconciliation and kills of tasks it does not know wait for their agent")
      ->check(CLI::Range(0.001, 31'536'000.0))
      ->capture_default_str();
  sub->add_option("--agent-task-audit-interval", o->agent_task_audit_interval_s,
                  "Seconds between audits of tasks still STAGING on their agent (a launch lost "
                  "on the way ends TASK_DROPPED)")
      ->check(CLI::Range(0.001, 86'400.0))
      ->capture_default_str();
  sub->add_option("--agent-task-audit-age", o->agent_task_audit_age_s,
                  "Seconds a task must have been STAGING before an audit asks its agent")
      ->check(CLI::Range(0.0, 86'400.0))
      ->capture_default_str();
  sub->add_option("--heartbeat-interval", o->heartbeat_interval_s,
                  "Seconds between heartbeats to frameworks")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_option("--sorter", o->sorter, "Allocation policy")
      ->check(CLI::IsMember({"drf", "random"}))
      ->capture_default_str();
  return {sub, [o] { return run_master(*o); }};
}

}  // namespace tessera::cli
