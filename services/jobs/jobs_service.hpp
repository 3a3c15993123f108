#pragma once
// The jobs framework as a service: its store, its actor and, optionally, an
// HTTP server of its own. `tessera jobs` runs it alone (own HTTP, port 9000
// by default, as Metronome); `tessera master --jobs` and `tessera cluster`
// run it beside the master and mount handler() on the master's HTTP edge at
// /v1/jobs. The same code either way: the framework reaches the master by
// address.

#include "runtime/node.hpp"
#include "services/http/server.hpp"
#include "services/security/http_guard.hpp"
#include "services/jobs/jobs_framework.hpp"

#include <memory>
#include <optional>
#include <string>

namespace tessera::jobs {

struct JobsServiceConfig {
  Address master;
  std::shared_ptr<MasterDetector> detector;  // set: follow the leader
  // The store: "sqlite" (registry.db in work_dir), "sqlite:PATH",
  // "zk://HOSTS/PATH" or "memory".
  std::string registry = "sqlite";
  std::string work_dir;
  std::string role = "*";
  std::string name = "tessera-jobs";
  std::string actor_name = "jobs";
  // Set: serve the API on a server of its own. Unset: mount handler().
  std::optional<http::ServerConfig> http;
  // Set: callers authenticate and are authorized (issue #14; see
  // jobs_access); null: the API is open.
  std::shared_ptr<const security::HttpGuard> guard;
  std::string http_address;  // shown in /v1/info when mounted elsewhere
  // Applied over the defaults (store, handle and loaded are filled in).
  JobsConfig tuning;
};

// What a request to the jobs API needs (ACL actions view_jobs and
// update_jobs, objects job ids and dotted prefixes): GET /v1/jobs and
// /v1/info view_jobs of every job; GET /v1/jobs/ID... view_jobs of ID;
// POST /v1/jobs update_jobs of the id in its body; any other method on
// /v1/jobs/ID... (update, delete, start a run, kill, schedules)
// update_jobs of ID.
security::RouteAccess jobs_access(const http::Request& request);

class JobsService {
 public:
  // Opens the store, reads the framework's records, spawns the actor and
  // starts the HTTP server if asked. Errors: the store cannot be opened or
  // read, the port is taken, the actor name is taken.
  static expected<std::unique_ptr<JobsService>> start(Node& node, JobsServiceConfig config);
  ~JobsService();

  // The API behind the guard (when one is configured).
  http::Handler handler() const;
  // "host:port" of its own server; empty when mounted.
  std::string http_address() const { return server_ ? server_->address() : std::string(); }
  const Address& actor() const { return actor_; }
  const std::string& store() const { return store_desc_; }
  // Stops its HTTP server; the actor stops with its node (or stop_actor()).
  void stop();

 private:
  JobsService() = default;
  std::shared_ptr<JobsHandle> handle_ = std::make_shared<JobsHandle>();
  std::shared_ptr<const security::HttpGuard> guard_;
  std::unique_ptr<http::Server> server_;
  Address actor_;
  std::string store_desc_;
};

}  // namespace tessera::jobs
