// `tessera run --master HOST:PORT [--cpus C] [--mem M] [--role R] [--name N]
//  [--timeout S] -- COMMAND [ARGS...]`: runs one command as a task on the
// cluster (services/frameworks/run_framework.hpp), prints its state changes
// and output, and exits with its exit code.

#include "services/election/zk_election.hpp"
#include "services/frameworks/run_framework.hpp"
#include "runtime/log.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/endpoints.hpp"
#include "tools/tessera/tls_flags.hpp"

#include <signal.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace tessera::cli {

namespace {

struct RunArgs {
  std::string master;
  double cpus = 0.1;
  double mem = 32;
  std::string role = "*";
  std::string name = "tessera-run";
  double timeout_s = 60;
  std::string listen;  // empty: 127.0.0.1:0 for a master on this machine, else 0.0.0.0:0
  std::string advertise;
  std::vector<std::string> command;
  TlsFlags tls;
};

// A CLI11 check: a finite number above zero.
CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        bool ok = end && *end == '\0' && std::isfinite(v) && v > 0;
        return ok ? "" : "'" + text + "' is not a positive number";
      },
      "POSITIVE");
}

// "HOST:PORT" names the master actor on that node; a full address is taken as is.
expected<Address> master_address(const std::string& text) {
  return Address::parse(text.find('@') == std::string::npos ? "master@" + text : text);
}

int run(const RunArgs& args, const CLI::App& sub) {
  // The runtime's own warnings (an undeliverable subscribe, say) would
  // repeat what the run prints in one clear line.
  quiet_unless_asked(sub, "error");
  std::shared_ptr<MasterDetector> detector;
  expected<Address> master = Address{};
  std::string master_host;
  if (args.master.rfind("zk://", 0) == 0) {
    auto spec = parse_zk_spec(args.master, "--master");
    if (!spec)
      return fail("run: " + what(spec.error()));
    auto election = ZkElection::open(args.master, {});
    if (!election)
      return fail("run: " + what(election.error()));
    detector = *election;
    master_host = spec->hosts.substr(0, spec->hosts.find_first_of(":,"));
  } else {
    master = master_address(args.master);
    if (!master)
      return fail("run: bad --master '" + args.master + "': expected HOST:PORT");
    master_host = master->host;
  }
  if (!valid_role(args.role))
    return fail("run: bad --role '" + args.role + "'");
  if (args.command.empty() || args.command.front().empty())
    return fail("run: no command given (tessera run [OPTIONS] -- COMMAND [ARGS...])");

  // Ctrl-C and SIGTERM are taken by sigtimedwait below: block them before
  // any thread starts, so every thread inherits the mask.
  block_stop_signals();

  // The master (and the agent, for the output) must reach this client: on
  // this machine a loopback address does, from another one the default
  // binds every interface and advertises this machine's name.
  auto listen = !args.listen.empty() ? args.listen
                                     : (loopback_host(master_host) ? "127.0.0.1:0" : "0.0.0.0:0");
  auto endpoints = parse_endpoints(listen, args.advertise);
  if (!endpoints)
    return fail("run: " + what(endpoints.error()));
  if (!endpoints->warning.empty())
    std::fprintf(stderr, "tessera: run: warning: %s\n", endpoints->warning.c_str());

  // A client mostly waits: it must not spin (NodeConfig::lean).
  auto tls = tls_config(args.tls);
  if (!tls)
    return fail("run: " + what(tls.error()));
  auto config = NodeConfig::lean();
  apply(*endpoints, config);
  config.tls = *tls;
  auto node = Node::start(config);
  if (!node)
    return fail("run: cannot start its node on " + listen + ": " + describe(node.error()));

  RunOptions options;
  options.master = *master;
  options.detector = detector;
  options.cpus = args.cpus;
  options.mem = args.mem;
  options.role = args.role;
  options.name = args.name;
  options.offer_timeout =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(args.timeout_s));
  options.argv = args.command;
  auto control = std::make_shared<RunControl>();
  if (auto spawned = (*node)->spawn<RunFramework>("tessera-run", options, control); !spawned)
    return fail("run: " + describe(spawned.error()));

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  std::optional<int> exit_code;
  while (!(exit_code = control->wait_for(std::chrono::milliseconds(0)))) {
    timespec poll{0, 100'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &poll) > 0)
      control->interrupt();
  }
  (*node)->stop();
  return *exit_code;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand("run", "Run one command as a task and print its output");
  sub->add_option("--master", args->master,
                  "The master: HOST:PORT (or master@HOST:PORT), or zk://HOST:PORT[,...]/PATH "
                  "to follow whichever of several masters leads")
      ->required();
  sub->add_option("--cpus", args->cpus, "CPUs for the task")->check(positive());
  sub->add_option("--mem", args->mem, "Memory for the task, MiB")->check(positive());
  sub->add_option("--role", args->role, "The role to be offered resources for");
  sub->add_option("--name", args->name, "The framework's and the task's name");
  sub->add_option("--timeout", args->timeout_s, "Seconds to wait for a fitting offer")
      ->check(CLI::Range(0.001, 86400.0));
  sub->add_option("--listen", args->listen,
                  "HOST:PORT this client listens on for the master and agent (default "
                  "127.0.0.1:0 for a master on this machine, else 0.0.0.0:0)");
  add_advertise_flag(sub, args->advertise);
  add_tls_flags(sub, args->tls);
  sub->add_option("command", args->command, "COMMAND [ARGS...], after --")->required();
  return {sub, [args, sub] { return run(*args, *sub); }};
}

}  // namespace tessera::cli
