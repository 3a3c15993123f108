#pragma once
// One subcommand of `tessera`: each lives in its own file and registers its
// flags on the shared CLI11 app; main() runs the one that was parsed.
//
// Exit codes: 0 success; 2 a bad command line or a startup failure the user
// can fix (bad resource string, port in use, master unreachable), printed as
// one line "tessera: ..." on stderr; anything else is the command's own
// result (`tessera run` exits with its task's code).

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tessera::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Prints "tessera: <message>" on stderr and returns 2.
int fail(const std::string& message);

// Sets the log level to level unless --log-level or TESSERA_LOG_LEVEL asked
// for one: for commands that report what matters themselves.
void quiet_unless_asked(const CLI::App& sub, const char* level);

// The absolute path of the running `tessera` binary (for child processes).
const std::string& self_path();

// Seconds from a flag as a runtime Duration.
inline std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

// --allocation-interval and --offer-timeout, which the master and the
// cluster share.
void add_allocation_flags(CLI::App* sub, double& allocation_interval_s, double& offer_timeout_s);

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:5050", "[::1]:5050", "localhost:0". Empty host: 127.0.0.1.
std::optional<HostPort> parse_host_port(const std::string& text);

// Blocks SIGINT and SIGTERM in this thread, so that every thread started
// afterwards (the node's) inherits the mask and the signal waits for
// wait_for_stop_signal(). Call it first thing in a long-running command.
void block_stop_signals();
// Waits for SIGINT or SIGTERM; returns the signal.
int wait_for_stop_signal();
// The same, returning 0 as soon as still_running() (asked every 200 ms) says
// the service stopped by itself.
int wait_for_stop_signal(const std::function<bool()>& still_running);

Command add_master_command(CLI::App& app);
Command add_agent_command(CLI::App& app);
Command add_cluster_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_executor_command(CLI::App& app);  // hidden: what agents start
Command add_sim_command(CLI::App& app);
// `tessera apps`: the apps framework as a process of its own (cmd_apps_server.cpp).
Command add_apps_server_command(CLI::App& app);
// `tessera jobs`: the jobs framework as a process of its own (cmd_jobs_server.cpp).
Command add_jobs_server_command(CLI::App& app);
// The operator commands (cmd_ops.cpp): agents, frameworks, tasks, roles,
// task log|kill, quota, weights, events, top, and agent drain|deactivate|
// reactivate under agent.
std::vector<Command> add_ops_commands(CLI::App& app, CLI::App* agent);
// The apps framework's commands (cmd_apps.cpp): app add|list|show|update|
// scale|restart|remove|plan|rollback|promote|abort|kill, deployments, queue.
std::vector<Command> add_apps_commands(CLI::App& app);
// The jobs framework's commands (cmd_jobs.cpp): job add|update|list|show|run|
// kill|remove and job schedule list|add|set|remove.
std::vector<Command> add_jobs_commands(CLI::App& app);
// `tessera certs init|issue` (cmd_certs.cpp): a small CA for mutual TLS.
std::vector<Command> add_certs_commands(CLI::App& app);
// `tessera credentials add|remove|list` and `tessera token create|revoke`
// (cmd_credentials.cpp): entries of an HTTP credentials file.
std::vector<Command> add_credentials_commands(CLI::App& app);

}  // namespace tessera::cli
