#pragma once
// The apps framework as a service: its store, its actor and, optionally, an
// HTTP server of its own. `tessera apps` runs it alone (own HTTP, Marathon's
// port 8080 by default); `tessera master --apps` and `tessera cluster` run
// it beside the master and mount handler() on the master's HTTP edge at /v2.
// The same code either way: the framework reaches the master by address.

#include "runtime/node.hpp"
#include "services/apps/apps_framework.hpp"
#include "services/http/server.hpp"
#include "services/security/http_guard.hpp"

#include <memory>
#include <optional>
#include <string>

namespace tessera::apps {

struct AppsServiceConfig {
  Address master;
  std::shared_ptr<MasterDetector> detector;  // set: follow the leader
  // The store: "sqlite" (registry.db in work_dir), "sqlite:PATH",
  // "zk://HOSTS/PATH" or "memory".
  std::string registry = "sqlite";
  std::string work_dir;
  std::string role = "*";
  std::string name = "tessera-apps";
  std::string actor_name = "apps";
  // Set: serve the API on a server of its own. Unset: mount handler().
  std::optional<http::ServerConfig> http;
  // Set: callers authenticate and are authorized (issue #14; see
  // apps_access); null: the API is open.
  std::shared_ptr<const security::HttpGuard> guard;
  std::string http_address;  // shown in /v2/info when mounted elsewhere
  // Applied over the defaults (store, handle and loaded are filled in).
  AppsConfig tuning;
};

// What a request to the apps API needs (ACL actions view_apps and
// update_apps, objects app ids and groups): GET routes view_apps, of the app
// a /v2/apps/ID... path names or, for the lists (/v2/apps, deployments,
// queue, tasks, info, events), of every app; a POST, PUT or PATCH of
// /v2/apps (and POST /v2/plan: view_apps) the ids in its body; any other
// method on /v2/apps/ID... update_apps of that path, on /v2/queue/ID/delay
// of that app, and on a deployment update_apps of every app (a deployment
// may span several). /ping and /v2/ping are open.
security::RouteAccess apps_access(const http::Request& request);

class AppsService {
 public:
  // Opens the store, reads the framework's records, spawns the actor and
  // starts the HTTP server if asked. Errors: the store cannot be opened or
  // read, the port is taken, the actor name is taken.
  static expected<std::unique_ptr<AppsService>> start(Node& node, AppsServiceConfig config);
  ~AppsService();

  // The API behind the guard (when one is configured).
  http::Handler handler() const;
  // "host:port" of its own server; empty when mounted.
  std::string http_address() const { return server_ ? server_->address() : std::string(); }
  const Address& actor() const { return actor_; }
  const std::string& store() const { return store_desc_; }
  // Stops its HTTP server; the actor stops with its node.
  void stop();

 private:
  AppsService() = default;
  std::shared_ptr<AppsHandle> handle_ = std::make_shared<AppsHandle>();
  std::shared_ptr<const security::HttpGuard> guard_;
  std::unique_ptr<http::Server> server_;
  Address actor_;
  std::string store_desc_;
};

}  // namespace tessera::apps
