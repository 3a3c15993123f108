// `tessera agent`: one machine's agent. It registers with the master (and
// keeps retrying while the master is away) and runs tasks under `tessera
// executor` processes.
//
//   tessera agent --master HOST:PORT --work-dir DIR [--listen HOST:PORT]
//                 [--advertise HOST:PORT] [--http HOST:PORT]
//                 [--resources TEXT] [--attributes TEXT] [--hostname H]
//                 [--isolation cgroups|posix|auto[,pid-ns]]
//                 [--gc-delay SECONDS] [--gc-disk-headroom FRACTION]
//                 [--no-strict] [--drain-on-stop]
//                 [--switch-user[=false]] [--executor-env-allow NAME,...]
//                 [--fetcher-allowed-paths DIR,...] [--fetcher-ca-file PEM]
//
// Tasks run as their user when the agent is root (--switch-user, on by
// default): the task's, else its framework's. Executors and tasks get PATH
// and the variables --executor-env-allow names, never the agent's whole
// environment. Local URIs (file://, paths) are fetched only from under
// --fetcher-allowed-paths (none by default).
//
// Stopping keeps the work: on SIGTERM or SIGINT the agent exits 0 and leaves
// its executors and tasks running and its checkpoints in DIR, so that an
// agent started again on the same DIR and address takes them back (an
// upgrade, `systemctl restart`). Draining is explicit: SIGUSR1, or SIGTERM /
// SIGINT with --drain-on-stop, shuts every executor down (killing its tasks),
// removes the checkpoints and exits 0; the next start is a new agent.
// A corrupt checkpoint stops the start with exit code 2 unless --no-strict.
// The agent's HTTP API (services/agent/agent_http.hpp) listens on --http,
// by default on the --listen host at the --listen port + 1000; it starts
// before the agent, so its address goes into the registration.

#include "runtime/actor.hpp"
#include "services/agent/agent.hpp"
#include "services/agent/agent_http.hpp"
#include "services/election/zk_election.hpp"
#include "tools/tessera/agent_flags.hpp"
#include "tools/tessera/security_flags.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/endpoints.hpp"
#include "tools/tessera/tls_flags.hpp"
#include "tools/tessera/operator_window.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

namespace tessera::cli {

namespace {

struct AgentOptions {
  std::string master;
  std::string listen = "127.0.0.1:5051";
  std::string advertise;
  std::string http;
  std::string work_dir;
  SecurityFlags security;
  std::string resources;
  std::string attributes;
  std::string hostname;
  std::string isolation = "auto";
  double gc_delay_s = 7 * 86400.0;
  double gc_disk_headroom = 0.1;
  bool no_strict = false;
  bool drain_on_stop = false;
  TlsFlags tls;
  TaskFlags tasks;
};

// The agent tells the main thread it has ended with this signal (blocked,
// taken by sigwait like the operator's signals, and obeyed only once the
// agent has really ended).
constexpr int stopped_signal = SIGUSR2;

// Longest --gc-delay: a century, far inside the milliseconds' range.
constexpr double gc_delay_s_max = 100 * 365 * 86400.0;

// How long the agent may take to register before the command says it waits.
constexpr std::chrono::seconds registration_notice_after{2};
// Beyond the executors' shutdown grace, what a clean stop may take.
constexpr std::chrono::seconds stop_slack{3};  // with the last updates' acknowledgements (1 s)

// "HOST:PORT" as an address of actor name; a host name becomes its first IPv4
// address, because the master's messages carry the host it advertises and the
// agent obeys only that exact address.
expected<Address> parse_endpoint(const std::string& name, const std::string& text) {
  auto endpoint = parse_host_port(text);
  if (!endpoint || endpoint->port == 0)
    return make_error(Errc::bad_address, "'" + text + "' is not HOST:PORT");
  Address address{name, endpoint->host, endpoint->port};
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* found = nullptr;
  if (::getaddrinfo(address.host.c_str(), nullptr, &hints, &found) == 0 && found) {
    char ip[INET_ADDRSTRLEN] = {};
    auto* in = reinterpret_cast<sockaddr_in*>(found->ai_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
      address.host = ip;
    ::freeaddrinfo(found);
  }
  return address;
}

int wait_signal(const sigset_t& set, std::chrono::seconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count()), 0};
  return sigtimedwait(&set, nullptr, &ts);
}

std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", x);
  return text;
}

// The sandbox GC flags, checked: 0 < delay <= gc_delay_s_max, 0 <= headroom < 1.
caf::error set_gc(const AgentOptions& o, AgentConfig& c) {
  if (!(o.gc_delay_s > 0 && o.gc_delay_s <= gc_delay_s_max))
    return make_error(Errc::invalid_argument, "bad --gc-delay: " + number(o.gc_delay_s) +
                                                  " (seconds, more than 0 and at most 100 years)");
  if (!(o.gc_disk_headroom >= 0 && o.gc_disk_headroom < 1))
    return make_error(Errc::invalid_argument,
                      "bad --gc-disk-headroom: " + number(o.gc_disk_headroom) +
                          " (a fraction, at least 0 and less than 1)");
  c.gc_delay_ms = std::max(std::chrono::milliseconds(1),
                           std::chrono::ceil<std::chrono::milliseconds>(seconds(o.gc_delay_s)));
  c.gc_disk_headroom = o.gc_disk_headroom;
  return caf::none;
}

expected<AgentConfig> make_config(const AgentOptions& o) {
  AgentConfig c;
  if (auto err = set_gc(o, c))
    return err;
  if (o.master.rfind("zk://", 0) == 0) {
    // Several masters: follow whichever leads.
    auto detector = ZkElection::open(o.master, {});
    if (!detector)
      return detector.error();
    c.detector = *detector;
  } else {
    auto master = parse_endpoint("master", o.master);
    if (!master)
      return make_error(Errc::invalid_argument, "bad --master: " + what(master.error()));
    c.master = *master;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.work_dir, ec);
  if (ec)
    return make_error(Errc::invalid_argument,
                      "cannot create --work-dir " + o.work_dir + ": " + ec.message());
  // Absolute: sandboxes are handed to executors, which run in them (a
  // relative path would be taken from the sandbox again).
  c.work_dir = std::filesystem::absolute(o.work_dir, ec);
  if (ec)
    return make_error(Errc::invalid_argument, "bad --work-dir " + o.work_dir + ": " + ec.message());
  auto given = Resources::parse(o.resources);
  if (!given)
    return make_error(Errc::invalid_argument, "bad --resources: " + what(given.error()));
  auto detected = detect_resources(c.work_dir);
  if (!detected)
    return make_error(Errc::invalid_argument, "cannot detect resources: " + what(detected.error()));
  c.resources = merge_resources(*given, *detected);
  auto attributes = parse_attributes(o.attributes);
  if (!attributes)
    return make_error(Errc::invalid_argument, "bad --attributes: " + what(attributes.error()));
  c.attributes = *attributes;
  c.hostname = o.hostname;
  IsolationConfig isolation;
  if (auto err = parse_isolation(o.isolation, isolation, c.pid_namespace))
    return make_error(Errc::invalid_argument, "bad --isolation: " + what(err));
  isolation.scope = isolation_scope(c.work_dir);
  std::string warning;
  auto isolator = make_isolator(isolation, &warning);
  if (!isolator)
    return make_error(Errc::invalid_argument,
                      "--isolation " + o.isolation + ": " + what(isolator.error()));
  if (!warning.empty())
    std::fprintf(stderr, "tessera: agent: warning: %s\n", warning.c_str());
  c.isolator = std::move(*isolator);
  c.executor_mode = ExecutorMode::process;
  c.executor_binary = self_path();
  c.strict_recovery = !o.no_strict;
  if (auto err = apply_task_flags(o.tasks, c))
    return err;
  return c;
}

int run_agent(const AgentOptions& o) {
  if (o.master.empty())
    return fail("agent: --master is required (see --help)");
  if (o.work_dir.empty())
    return fail("agent: --work-dir is required (see --help)");
  auto endpoints = parse_endpoints(o.listen, o.advertise);
  if (!endpoints)
    return fail("agent: " + what(endpoints.error()));
  auto http = http_config(o.http, *endpoints);
  if (!http)
    return fail("agent: " + what(http.error()));
  auto guard = load_guard(o.security, "agent");
  if (!guard)
    return fail("agent: " + what(guard.error()));
  auto config = make_config(o);
  if (!config)
    return fail(what(config.error()));
  if (!endpoints->warning.empty())
    std::fprintf(stderr, "tessera: agent: warning: %s\n", endpoints->warning.c_str());
  // Signals are taken by sigwait; the node's threads inherit this mask.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, stopped_signal})
    sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto tls = tls_config(o.tls);
  if (!tls)
    return fail("agent: " + what(tls.error()));
  auto https = edge_tls(*tls);
  if (!https)
    return fail("agent: HTTPS: " + what(https.error()));
  http->tls = *https;
  NodeConfig node_config;
  node_config.tls = *tls;
  apply(*endpoints, node_config);
  auto node = Node::start(node_config);
  if (!node)
    return fail("agent: cannot start its node on " + o.listen + ": " + describe(node.error()));
  config->http = std::make_shared<AgentHttpHandle>();
  auto edge = AgentHttp::start(*http, config->http, *guard);
  if (!edge) {
    (*node)->stop();
    return fail("agent: " + what(edge.error()));
  }
  config->http_address = (*edge)->advertised_address((*node)->host());
  auto http_address = config->http_address;
  auto registered = std::make_shared<std::atomic<bool>>(false);
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  auto fatal = std::make_shared<std::string>();  // written before stopped is set
  config->on_registered = [registered](const std::string&) { registered->store(true); };
  config->on_fatal = [fatal](const std::string& why) { *fatal = why; };
  config->on_stopped = [stopped] {
    stopped->store(true);
    ::kill(::getpid(), stopped_signal);
  };
  auto stopper = std::make_shared<AgentStopper>();
  config->stopper = stopper;
  auto master = config->detector ? "the leader at " + o.master : config->master.to_string();
  // Held until the node has stopped: the detector then closes on this
  // thread, never on a thread of its own client.
  auto detector = config->detector;
  auto grace = std::chrono::duration_cast<std::chrono::seconds>(config->executor_shutdown_grace_ms);
  auto agent = (*node)->spawn<Agent>("agent", std::move(*config));
  if (!agent) {
    (*edge)->stop();
    return fail("agent: " + describe(agent.error()));
  }
  std::printf("tessera agent listening on %s, master %s\n", agent->to_string().c_str(),
              master.c_str());
  std::printf("tessera agent: HTTP API on %s://%s/\n", scheme_of(http->tls), http_address.c_str());
  std::fflush(stdout);
  // Until the operator's signal, or the agent's own end (the master's
  // ShutdownAgent, a failed start).
  int sig = wait_signal(set, registration_notice_after);
  if (sig < 0 && !registered->load())
    std::fprintf(stderr, "tessera: agent: waiting for master %s (retrying)\n", master.c_str());
  while (sig < 0 || (sig == stopped_signal && !stopped->load()))
    sigwait(&set, &sig);
  if (sig != stopped_signal) {
    bool drain = sig == SIGUSR1 || o.drain_on_stop;
    std::fprintf(stderr, "tessera: agent: %s\n",
                 drain ? "draining: shutting every executor down, removing the checkpoints"
                       : "stopping; tasks keep running and checkpoints stay for the next start "
                         "(SIGUSR1 or --drain-on-stop drains instead)");
    if (stopper->stop(drain)) {
      // A drain lets executors end their tasks first, so none outlives it.
      sigset_t wake;
      sigemptyset(&wake);
      sigaddset(&wake, stopped_signal);
      auto deadline = std::chrono::steady_clock::now() + grace + stop_slack;
      while (!stopped->load() && std::chrono::steady_clock::now() < deadline)
        wait_signal(wake, std::chrono::seconds(1));
    }
  }
  (*edge)->stop();
  (*node)->stop();
  if (!fatal->empty())
    return fail("agent: " + *fatal);
  return 0;
}

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    auto end = std::min(text.find(',', begin), text.size());
    if (end > begin)
      out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

bool variable_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])))
    return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
  });
}

}  // namespace

void add_task_flags(CLI::App* sub, TaskFlags& flags) {
  sub->add_flag("--switch-user,!--no-switch-user", flags.switch_user,
                "Run each task as its user (the task's, else its framework's, else the agent's) "
                "when the agent is root; =false: every task runs as the agent's user")
      ->capture_default_str();
  sub->add_option("--executor-env-allow", flags.executor_env_allow,
                  "Comma-separated names of the agent's environment variables that executors "
                  "and tasks get besides PATH (never the rest of the agent's environment)")
      ->capture_default_str();
  sub->add_option("--fetcher-allowed-paths", flags.fetcher_allowed_paths,
                  "Comma-separated absolute directories that file:// and plain-path URIs may be "
                  "fetched from (symlinks and '..' resolved); default: none");
  sub->add_option("--fetcher-ca-file", flags.fetcher_ca_file,
                  "PEM file of the CAs https:// fetches trust (default: the system's)");
}

caf::error apply_task_flags(const TaskFlags& flags, AgentConfig& config) {
  config.switch_user = flags.switch_user;
  config.executor_env_allow.clear();
  for (const auto& name : split_list(flags.executor_env_allow)) {
    if (!variable_name(name))
      return make_error(Errc::invalid_argument,
                        "bad --executor-env-allow: '" + name + "' is not a variable name");
    config.executor_env_allow.push_back(name);
  }
  config.fetcher.allowed_paths.clear();
  for (const auto& dir : split_list(flags.fetcher_allowed_paths)) {
    std::error_code ec;
    auto real = std::filesystem::canonical(dir, ec);
    if (dir.front() != '/' || ec || !std::filesystem::is_directory(real, ec))
      return make_error(Errc::invalid_argument, "bad --fetcher-allowed-paths: '" + dir +
                                                    "' is not an absolute path of "
                                                    "a directory" +
                                                    (ec ? ": " + ec.message() : std::string()));
    config.fetcher.allowed_paths.push_back(real);
  }
  if (!flags.fetcher_ca_file.empty()) {
    if (::access(flags.fetcher_ca_file.c_str(), R_OK) != 0)
      return make_os_error(errno, "--fetcher-ca-file " + flags.fetcher_ca_file);
    config.fetcher.ca_file = flags.fetcher_ca_file;
  }
  return caf::none;
}

Command add_agent_command(CLI::App& app) {
  auto options = std::make_shared<AgentOptions>();
  auto* sub = app.add_subcommand("agent", "Run an agent: offer this machine's resources");
  sub->footer(
      "Signals: SIGTERM/SIGINT stop the agent and leave its tasks running and its checkpoints "
      "in --work-dir, for an agent started again there (same --listen) to take them back. "
      "SIGUSR1 drains: kills every task, removes the checkpoints, then stops.");
  sub->add_option("--master", options->master,
                  "The master's HOST:PORT, or zk://HOST:PORT[,...]/PATH to follow whichever of "
                  "several masters leads (required)");
  sub->add_option("--listen", options->listen,
                  "HOST:PORT to listen on (0.0.0.0: every interface; port 0: any free one)")
      ->capture_default_str();
  add_advertise_flag(sub, options->advertise);
  add_tls_flags(sub, options->tls);
  add_http_flag(sub, options->http);
  // Checked in run_agent, not by CLI11: `tessera agent drain ID` (cmd_ops.cpp)
  // is a subcommand of this one and needs neither.
  sub->add_option("--work-dir", options->work_dir, "Directory for sandboxes (required)");
  add_security_flags(sub, options->security);
  sub->add_option("--resources", options->resources,
                  "e.g. 'cpus:4;mem:8192;ports:[31000-32000]' (default: detected)");
  sub->add_option("--attributes", options->attributes, "e.g. 'rack:r1;zone:a'");
  sub->add_option("--hostname", options->hostname, "Hostname to advertise");
  sub->add_option("--isolation", options->isolation,
                  "cgroups, posix or auto (cgroups when writable), optionally ',pid-ns'")
      ->capture_default_str();
  sub->add_option("--gc-delay", options->gc_delay_s,
                  "Seconds an ended executor's sandbox is kept, at most (less as the disk fills)")
      ->capture_default_str();
  sub->add_option("--gc-disk-headroom", options->gc_disk_headroom,
                  "Fraction of the disk kept free: sandboxes are kept gc-delay * max(0, 1 - "
                  "headroom - disk used fraction)")
      ->capture_default_str();
  sub->add_flag("--no-strict", options->no_strict,
                "Start even if checkpoint records are corrupt: skip them with a warning (what "
                "they held is lost). By default a corrupt record stops the start (exit 2)");
  sub->add_flag("--drain-on-stop", options->drain_on_stop,
                "On SIGTERM/SIGINT, kill every task and remove the checkpoints (as SIGUSR1 "
                "always does). By default SIGTERM/SIGINT leave tasks running and checkpoints "
                "intact for the next start on this --work-dir and --listen address");
  add_task_flags(sub, options->tasks);
  return {sub, [options] { return run_agent(*options); }};
}

}  // namespace tessera::cli
