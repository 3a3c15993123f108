#pragma once
// The master's HTTP edge: one http::Server (services/http) whose handler,
// on the server's I/O thread, parses and routes each request and hands it to
// the state view actor through its Inbox. Nothing here touches the master.
//
//   POST /api/v1           the operator API (calls by "type"; state_view_api.cpp)
//   GET  /metrics          Prometheus text exposition
//   GET  /metrics/snapshot Mesos's metric keys, as one JSON object
//   GET  /health           200 while the edge serves (never authenticated)
//   GET  /, /ui/...        the web UI (static assets built into the binary;
//                          never authenticated: the UI asks for a token)
//   /v2/...                mounted routes: the apps framework's API when it
//                          runs beside the master (MasterHttp::Mount)
//
// Errors are JSON {"error": "..."} with the status that fits: 400 for bad
// JSON or a bad call (counted), 404 for an unknown path, 405 for a wrong
// method, 503 when the state view is gone or its inbox is full.
//
// With a guard that authenticates (security/http_guard.hpp), /api/v1 and
// /metrics* answer 401 to a request without valid credentials and 403 to
// a principal the ACLs refuse; the state view filters what each principal
// may see (ViewCaller). Mounted routes check for themselves.

#include "services/http/server.hpp"
#include "services/master/state_view.hpp"

#include <atomic>
#include <memory>

namespace tessera {

// The nice value the edge's I/O thread gets at least (ServerConfig).
inline constexpr int master_io_thread_nice = 10;

class MasterHttp {
 public:
  // Requests whose path is prefix or starts with prefix + "/" go to handler
  // (on the I/O thread, as every handler).
  struct Mount {
    std::string prefix;  // "/v2"
    http::Handler handler;
  };
  static expected<std::unique_ptr<MasterHttp>> start(
      http::ServerConfig config, std::shared_ptr<StateViewHandle> view,
      std::vector<Mount> mounts = {}, std::shared_ptr<const security::HttpGuard> guard = nullptr);
  ~MasterHttp();
  void stop();
  std::string address() const { return server_->address(); }
  const http::ServerCounters& counters() const { return server_->counters(); }
  // The edge's own counters, for GET /metrics (StateViewConfig::extra_metrics).
  std::vector<std::pair<std::string, double>> metrics() const;

 private:
  MasterHttp(std::shared_ptr<StateViewHandle> view,
             std::shared_ptr<const security::HttpGuard> guard)
      : view_(std::move(view)), guard_(std::move(guard)) {}
  void handle(http::Request request, http::Responder responder);
  void api(const http::Request& request, const http::Responder& responder);
  // Runs fn on the state view's thread, or answers 503.
  void on_view(const http::Responder& responder, std::function<void(StateView&)> fn);

  std::shared_ptr<StateViewHandle> view_;
  std::shared_ptr<const security::HttpGuard> guard_;  // never null
  std::vector<Mount> mounts_;
  std::unique_ptr<http::Server> server_;
  std::atomic<uint64_t> bad_json_{0};
  std::atomic<uint64_t> overloaded_{0};
};

// The web UI's files, built in (services/master/ui): content type and body
// for a path such as "/ui/app.js"; null when there is none.
struct UiAsset {
  const char* content_type;
  std::string_view body;
};
const UiAsset* find_ui_asset(const std::string& path);

}  // namespace tessera
