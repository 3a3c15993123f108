// tessera: the single command-line program. Each role and tool is a subcommand.

#include "runtime/log.hpp"
#include "tools/tessera/bench_allocator.hpp"
#include "tools/tessera/bench_failover.hpp"
#include "tools/tessera/bench_launch.hpp"
#include "tools/tessera/bench_registry.hpp"
#include "tools/tessera/bench_apps.hpp"
#include "tools/tessera/bench_jobs.hpp"
#include "tools/tessera/bench_dns.hpp"
#include "tools/tessera/bench_state.hpp"
#include "tools/tessera/bench_runtime.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/dns_flags.hpp"

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

namespace tessera::cli {

int fail(const std::string& message) {
  std::fprintf(stderr, "tessera: %s\n", message.c_str());
  return 2;
}

void quiet_unless_asked(const CLI::App& sub, const char* level) {
  const auto* parent = sub.get_parent();
  bool asked = parent && parent->get_option("--log-level")->count() > 0;
  if (!asked && !std::getenv("TESSERA_LOG_LEVEL"))
    tessera::set_log_level(level);
}

const std::string& self_path() {
  static const std::string path = [] {
    char buf[PATH_MAX];
    auto n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    return n <= 0 ? std::string("tessera") : std::string(buf, static_cast<size_t>(n));
  }();
  return path;
}

std::optional<HostPort> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return std::nullopt;
  HostPort out;
  out.host = text.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty())
    out.host = "127.0.0.1";
  auto port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  auto value = std::stoul(port);
  if (value > 65535)
    return std::nullopt;
  out.port = static_cast<uint16_t>(value);
  return out;
}

void add_allocation_flags(CLI::App* sub, double& allocation_interval_s, double& offer_timeout_s) {
  sub->add_option("--allocation-interval", allocation_interval_s,
                  "Seconds between allocation cycles (also run on events)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_option("--offer-timeout", offer_timeout_s,
                  "Seconds before an unused offer is rescinded; 0: never")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_stop_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

int wait_for_stop_signal(const std::function<bool()>& still_running) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec poll{0, 200'000'000};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &poll);
    if (sig > 0)
      return sig;
    if (!still_running())
      return 0;
  }
}

}  // namespace tessera::cli

namespace {

CLI::App* add_allocator_bench(CLI::App& bench, tessera::bench::AllocatorBenchOptions& o) {
  auto* al = bench.add_subcommand("allocator", "Allocation cycles at scale (Mesos DeclineOffers)");
  al->add_option("--agents", o.agents, "Agents")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}));
  al->add_option("--frameworks", o.frameworks, "Frameworks")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  al->add_option("--roles", o.roles, "Roles the frameworks are spread over")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  al->add_option("--cycles", o.cycles, "Measured cycles per run")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  al->add_option("--runs", o.runs, "Repetitions; medians are reported")->check(CLI::Range(1, 100));
  al->add_flag("--json", o.json, "Print one JSON object instead of a table");
  return al;
}

CLI::App* add_bench(CLI::App& app, tessera::bench::RuntimeBenchOptions& runtime) {
  auto* bench = app.add_subcommand("bench", "Measure Tessera's performance");
  bench->require_subcommand(1);
  auto* rt = bench->add_subcommand("runtime", "Message throughput and latency vs plain CAF");
  rt->add_option("--messages", runtime.messages, "One-way messages per measurement")
      ->check(CLI::Range(uint64_t{1000}, uint64_t{100'000'000}));
  rt->add_option("--round-trips", runtime.round_trips, "Request/response samples")
      ->check(CLI::Range(uint64_t{10}, uint64_t{10'000'000}));
  rt->add_option("--runs", runtime.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  rt->add_flag("--json", runtime.json, "Print one JSON object instead of a table");
  rt->add_flag("--tls", runtime.tls,
               "Also measure across processes over mutual TLS (tls_xproc_* beside xproc_*)");
  return bench;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tessera: a datacenter operating system kernel"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  tessera::bench::RuntimeBenchOptions runtime;
  runtime.self_path = tessera::cli::self_path();
  namespace cli = tessera::cli;
  std::vector<cli::Command> commands = {
      cli::add_master_command(app),      cli::add_agent_command(app),
      cli::add_cluster_command(app),     cli::add_run_command(app),
      cli::add_executor_command(app),    cli::add_sim_command(app),
      cli::add_apps_server_command(app), cli::add_jobs_server_command(app)};
  // Checked first: `tessera agent drain` parses `agent` too.
  auto ops = cli::add_ops_commands(app, commands[1].app);
  commands.insert(commands.begin(), ops.begin(), ops.end());
  auto apps = cli::add_apps_commands(app);
  commands.insert(commands.end(), apps.begin(), apps.end());
  auto jobs = cli::add_jobs_commands(app);
  commands.insert(commands.end(), jobs.begin(), jobs.end());
  auto certs = cli::add_certs_commands(app);
  commands.insert(commands.end(), certs.begin(), certs.end());
  auto credentials = cli::add_credentials_commands(app);
  commands.insert(commands.end(), credentials.begin(), credentials.end());
  commands.push_back(cli::add_dns_command(app));
  auto* bench = add_bench(app, runtime);
  tessera::bench::AllocatorBenchOptions allocator;
  auto* allocator_cmd = add_allocator_bench(*bench, allocator);
  tessera::bench::LaunchBenchOptions launch;
  auto* launch_cmd = bench->add_subcommand(
      "launch", "Tasks through framework, master, agent, executor and back, on a local cluster");
  launch_cmd->add_option("--tasks", launch.tasks, "Tasks to launch")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  launch_cmd->add_option("--batch", launch.batch, "Tasks per accept, at most")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  launch_cmd
      ->add_option("--in-flight", launch.in_flight,
                   "Tasks launched and not yet ended, at most (a closed loop)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  launch_cmd->add_option("--runs", launch.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  launch_cmd->add_flag("--process-executors", launch.process_executors,
                       "Run executors as processes instead of actors");
  launch_cmd
      ->add_option("--isolation", launch.isolation,
                   "Give the agent this isolator and then time launching, killing and "
                   "destroying --tasks containers at once")
      ->check(CLI::IsMember({"cgroups", "posix"}));
  launch_cmd->add_flag("--json", launch.json, "Print one JSON object instead of a table");
  tessera::bench::RegistryBenchOptions registry;
  auto* registry_cmd =
      bench->add_subcommand("registry", "The master's registry: commit latency, batches, reading");
  registry_cmd
      ->add_option("--backend", registry.backend,
                   "Store: sqlite, memory, or zk://HOST:PORT[,...]/PATH (tools/zk.sh starts one)")
      ->capture_default_str();
  registry_cmd->add_option("--dir", registry.dir,
                           "Directory for the SQLite file (default: a new one in /var/tmp)");
  registry_cmd->add_option("--writes", registry.writes, "Single-record commits timed")
      ->check(CLI::Range(uint64_t{10}, uint64_t{10'000'000}));
  registry_cmd->add_option("--batch", registry.batch, "Records per batched commit")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
  registry_cmd->add_option("--records", registry.records, "Records written in batches, then read")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}));
  registry_cmd->add_option("--runs", registry.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  registry_cmd->add_flag("--json", registry.json, "Print one JSON object instead of a table");
  tessera::bench::FailoverBenchOptions failover;
  failover.self_path = tessera::cli::self_path();
  auto* failover_cmd = bench->add_subcommand(
      "failover",
      "Kill -9 of the leading master of three: time to a new leader's offers and to "
      "every agent back");
  failover_cmd->add_option("--agents", failover.agents, "Agents (in this process)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  failover_cmd->add_option("--tasks", failover.tasks, "Tasks kept running")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1'000'000}))
      ->capture_default_str();
  failover_cmd->add_option("--zk", failover.zk,
                           "zk://HOSTS/PATH of a running ensemble (default: tools/zk.sh starts "
                           "three servers)");
  failover_cmd
      ->add_option("--zk-session-timeout", failover.session_timeout_ms,
                   "The masters' ZooKeeper session timeout, ms")
      ->check(CLI::Range(200, 600'000))
      ->capture_default_str();
  failover_cmd->add_option("--runs", failover.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  failover_cmd->add_flag("--json", failover.json, "Print one JSON object instead of a table");
  tessera::bench::StateBenchOptions state;
  auto* state_cmd = bench->add_subcommand(
      "state",
      "GET_STATE of a big cluster through the HTTP API, and what polling it costs the "
      "allocator");
  state_cmd->add_option("--agents", state.agents, "Simulated agents")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  state_cmd->add_option("--tasks", state.tasks, "Tasks running on them")
      ->check(CLI::Range(uint64_t{0}, uint64_t{10'000'000}))
      ->capture_default_str();
  state_cmd->add_option("--streams", state.streams, "Idle SUBSCRIBE streams to hold (0: none)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{20'000}))
      ->capture_default_str();
  state_cmd->add_option("--phase", state.phase_s, "Seconds per cycle measurement")
      ->check(CLI::Range(1.0, 600.0))
      ->capture_default_str();
  state_cmd->add_option("--runs", state.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  state_cmd->add_flag("--json", state.json, "Print one JSON object instead of a table");
  tessera::bench::AppsBenchOptions apps_bench;
  auto* apps_cmd = bench->add_subcommand(
      "apps",
      "The apps framework at scale: deploy and rolling-restart many apps on simulated "
      "agents");
  apps_cmd->add_option("--agents", apps_bench.agents, "Simulated agents")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  apps_cmd->add_option("--apps", apps_bench.apps, "Apps to deploy")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  apps_cmd->add_option("--instances", apps_bench.instances, "Instances of each app")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10'000}))
      ->capture_default_str();
  apps_cmd->add_option("--runs", apps_bench.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  apps_cmd->add_flag("--json", apps_bench.json, "Print one JSON object instead of a table");
  tessera::bench::JobsBenchOptions jobs_bench;
  auto* jobs_cmd = bench->add_subcommand(
      "jobs", "The jobs framework's scheduler: many jobs due every minute on simulated agents");
  jobs_cmd->add_option("--agents", jobs_bench.agents, "Simulated agents")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  jobs_cmd->add_option("--jobs", jobs_bench.jobs, "Jobs, each scheduled every minute")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  jobs_cmd->add_option("--minutes", jobs_bench.minutes, "Minutes to schedule (the clock jumps)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{60}))
      ->capture_default_str();
  jobs_cmd->add_option("--runs", jobs_bench.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  jobs_cmd->add_flag("--json", jobs_bench.json, "Print one JSON object instead of a table");
  tessera::bench::DnsBenchOptions dns_bench;
  auto* dns_cmd = bench->add_subcommand(
      "dns", "The DNS server: freshness of a task's name, and queries/s with dnsperf at scale");
  dns_cmd->add_option("--tasks", dns_bench.tasks, "Tasks (each with one port) to hold records of")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}))
      ->capture_default_str();
  dns_cmd->add_option("--agents", dns_bench.agents, "Simulated agents")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  dns_cmd->add_option("--samples", dns_bench.samples, "Tasks timed for freshness")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}))
      ->capture_default_str();
  dns_cmd->add_option("--dnsperf-seconds", dns_bench.dnsperf_s, "Seconds of dnsperf")
      ->check(CLI::Range(1.0, 600.0))
      ->capture_default_str();
  dns_cmd->add_option("--runs", dns_bench.runs, "Repetitions; medians are reported")
      ->check(CLI::Range(1, 100));
  dns_cmd->add_flag("--json", dns_bench.json, "Print one JSON object instead of a table");
  auto* peer = app.add_subcommand("bench-peer", "")->group("");  // hidden: the bench's peer
  std::string peer_tls_dir;
  peer->add_option("--tls-dir", peer_tls_dir);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // One clear line and exit code 2 for a bad command line, never a trace.
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "tessera: %s (see --help)\n", e.what());
    return 2;
  }
  tessera::set_log_level(log_level);
  for (auto& c : commands)
    if (c.app->parsed())
      return c.run();
  if (peer->parsed())
    return tessera::bench::run_runtime_bench_peer(peer_tls_dir);
  if (launch_cmd->parsed())
    return tessera::bench::run_launch_bench(launch);
  if (allocator_cmd->parsed())
    return tessera::bench::run_allocator_bench(allocator);
  if (failover_cmd->parsed())
    return tessera::bench::run_failover_bench(failover);
  if (state_cmd->parsed())
    return tessera::bench::run_state_bench(state);
  if (apps_cmd->parsed())
    return tessera::bench::run_apps_bench(apps_bench);
  if (jobs_cmd->parsed())
    return tessera::bench::run_jobs_bench(jobs_bench);
  if (dns_cmd->parsed())
    return tessera::bench::run_dns_bench(dns_bench);
  if (registry_cmd->parsed())
    return tessera::bench::run_registry_bench(registry);
  return tessera::bench::run_runtime_bench(runtime);
}
