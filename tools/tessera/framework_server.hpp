#pragma once
// What `tessera apps` and `tessera jobs` share: a framework service (the
// apps or the jobs framework) as a process of its own. It reaches the master
// by address or follows the leader (--master zk://...), serves its HTTP API
// on --http, and keeps its state in --registry (default: SQLite in
// --work-dir), so a restarted process fails over to its framework id and
// keeps what it had.

#include "runtime/node.hpp"
#include "services/election/detector.hpp"
#include "services/http/server.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/tls_flags.hpp"
#include "tools/tessera/security_flags.hpp"

#include <functional>
#include <memory>
#include <string>

namespace tessera::cli {

struct FrameworkServerOptions {
  std::string master = "127.0.0.1:5050";
  std::string listen;
  std::string advertise;
  std::string http;  // the command's default
  std::string work_dir;
  std::string registry = "sqlite";
  std::string role = "*";
  std::string name;  // the command's default
  double failover_timeout_s = 7 * 24 * 3600;
  TlsFlags tls;
  SecurityFlags security;
};

// Where the framework finds its master, and the rest of what it is given.
struct FrameworkServerSetup {
  Address master;
  std::shared_ptr<MasterDetector> detector;
  http::ServerConfig http;
  std::shared_ptr<const security::HttpGuard> guard;  // from --credentials, --acls
};

// A started service: the lines to print, how to stop it, and the name of
// its actor (while it lives, the service runs).
struct FrameworkServerRunning {
  std::vector<std::string> banner;
  std::function<void()> stop;
  std::string actor_name;
};

using FrameworkServerStart = std::function<expected<FrameworkServerRunning>(
    Node& node, const FrameworkServerOptions& o, FrameworkServerSetup setup)>;

// Adds the shared flags; what names the framework in their help.
void add_framework_server_flags(CLI::App* sub, FrameworkServerOptions& o, const std::string& what);

// Parses the options, starts a node and the service, and waits for SIGINT
// or SIGTERM (or for the service to stop by itself: exit 2).
int run_framework_server(const FrameworkServerOptions& o, const std::string& what,
                         const FrameworkServerStart& start);

}  // namespace tessera::cli
