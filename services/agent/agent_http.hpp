#pragma once
// The agent's HTTP edge: one http::Server (services/http) in front of one
// Agent, after Mesos's agent v1 API and its /files endpoints.
//
// Routes:
//   POST /api/v1            calls by "type" (Mesos agent v1 shapes):
//                           GET_HEALTH, GET_VERSION, GET_AGENT, GET_STATE,
//                           GET_TASKS, GET_EXECUTORS, GET_FRAMEWORKS,
//                           GET_CONTAINERS, LIST_FILES, READ_FILE (data in
//                           base64; "follow": true streams RecordIO records
//                           {"type":"DATA","data":"<base64>","offset":N})
//   GET  /files/read        ?framework_id=&task_id=&path=&offset=&length=
//                           {"data":"<text>","offset":N,"size":S}; offset -1:
//                           only the size (data empty, offset = size)
//   GET  /files/browse      ?framework_id=&task_id=&path= : a JSON list
//   GET  /metrics           Prometheus text exposition
//   GET  /metrics/snapshot  Mesos's agent keys (slave/...), one JSON object
//   GET  /health            200 while the edge serves (never authenticated)
//   OPTIONS /files/*        the CORS preflight of a browser that sends an
//                           Authorization header (never authenticated)
// Files are named by task (framework_id may be left out when the task id is
// unique on the agent) and a path relative to its sandbox, confined to it
// (sandbox_files.hpp). /files/* answer with Access-Control-Allow-Origin: *,
// so the master's web UI (another origin) can browse and tail them.
//
// Authentication (issue #14; security/http_guard.hpp): with credentials
// configured, every other route answers 401 without valid credentials.
// Authorization by the ACLs: GET_HEALTH and GET_VERSION need nothing more;
// GET_AGENT, GET_CONTAINERS and /metrics* need view_cluster; GET_STATE,
// GET_TASKS, GET_EXECUTORS and GET_FRAMEWORKS need view_frameworks and
// view_tasks of every role (the agent does not filter its answers); a
// sandbox (LIST_FILES, READ_FILE, /files/*) needs access_sandboxes of every
// role of the task's framework (403 otherwise).
//
// Errors are JSON {"error": "..."}: 400 for bad JSON, an unknown call type,
// a missing or mistyped field (all counted, bad_calls()) and for a path the
// sandbox rules refuse as malformed; 403 for a path that leaves the sandbox
// or goes through a symlink; 404 for an unknown task, file or endpoint; 405
// for a wrong method; 500 when the file system fails; 503 when the agent is
// gone, its inbox is full or its blocking pool refuses work.
//
// Threading: the handler runs on the server's I/O thread. It only parses
// and validates, then posts to the agent's thread through AgentHttpHandle
// (an Inbox); the agent answers from its books, or hands file I/O to its
// node's BlockingPool, whose job answers the Responder (thread-safe)
// directly. Nothing here touches the agent's state.
//
// Limits: the server's (ServerConfig); the agent's inbox capacity
// (AgentConfig::http_inbox_capacity); reads of at most sandbox_read_bytes_max
// (16 MiB) per call; at most AgentConfig::followers_max follow streams, each
// sending at most follow_tick_bytes_max per poll and evicted by the server
// when it cannot keep up (stream_buffer_bytes_max unsent bytes).

#include "services/agent/agent.hpp"
#include "services/agent/sandbox_files.hpp"
#include "services/http/server.hpp"
#include "services/security/http_guard.hpp"

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessera {

class AgentHttp {
 public:
  static expected<std::unique_ptr<AgentHttp>> start(
      http::ServerConfig config, std::shared_ptr<AgentHttpHandle> agent,
      std::shared_ptr<const security::HttpGuard> guard = nullptr);
  ~AgentHttp();
  AgentHttp(const AgentHttp&) = delete;
  AgentHttp& operator=(const AgentHttp&) = delete;

  // Idempotent; open follow streams end. Not from the I/O thread.
  void stop();
  // "host:port" bound.
  std::string address() const { return server_->address(); }
  // The address to advertise: address(), with advertise_host in place of a
  // wildcard bind host (0.0.0.0, ::).
  std::string advertised_address(const std::string& advertise_host) const;
  const http::ServerCounters& counters() const { return server_->counters(); }
  // Calls refused with a 400 for their shape (bad JSON, type, fields).
  uint64_t bad_calls() const { return bad_calls_.load(); }
  // The edge's gauges and counters, for GET /metrics.
  std::vector<std::pair<std::string, double>> metrics() const;

  // What one file call names, parsed from JSON or a query string.
  struct FileCall {
    std::string framework_id;
    std::string task_id;
    std::string path;
    int64_t offset = 0;                        // -1: the size only (reads)
    uint64_t length = sandbox_read_bytes_max;  // clamped to it
    bool follow = false;
  };

 private:
  AgentHttp(std::shared_ptr<AgentHttpHandle> agent,
            std::shared_ptr<const security::HttpGuard> guard)
      : agent_(std::move(agent)), guard_(std::move(guard)) {}
  void handle(http::Request request, http::Responder responder);
  void api(const http::Request& request, const http::Responder& responder,
           const std::string& principal);
  void files(const http::Request& request, const http::Responder& responder,
             const std::string& principal);
  void list_files(const FileCall& call, bool v1, const http::Responder& responder,
                  const std::string& principal);
  void read_file(const FileCall& call, bool v1, const http::Responder& responder,
                 const std::string& principal);
  // The ACLs' check of a task's sandbox for principal; null without ACLs.
  Agent::SandboxAccess sandbox_access(const std::string& principal,
                                      std::function<void(http::Response)> refuse) const;
  // Runs fn on the agent's thread, or gives refuse a 503.
  void on_agent(const std::function<void(http::Response)>& refuse, std::function<void(Agent&)> fn);
  void bad_call(const http::Responder& responder, const std::string& why);

  std::shared_ptr<AgentHttpHandle> agent_;
  std::shared_ptr<const security::HttpGuard> guard_;  // never null
  std::unique_ptr<http::Server> server_;
  std::atomic<uint64_t> bad_calls_{0};
  std::atomic<uint64_t> overloaded_{0};
};

// The answer to a sandbox file call that failed: 403, 404, 400 or 500 by
// kind, with describe(error) as its message.
http::Response sandbox_error_response(const caf::error& error, SandboxFileError kind);

// The largest piece of a followed file sent per poll and per follower.
inline constexpr uint64_t follow_tick_bytes_max = uint64_t{1} << 20;

}  // namespace tessera
