#include "services/master/master_http.hpp"

#include "runtime/log.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace tessera {

expected<std::unique_ptr<MasterHttp>> MasterHttp::start(
    http::ServerConfig config, std::shared_ptr<StateViewHandle> view, std::vector<Mount> mounts,
    std::shared_ptr<const security::HttpGuard> guard) {
  if (!guard)
    guard = std::make_shared<const security::HttpGuard>();
  std::unique_ptr<MasterHttp> edge(new MasterHttp(std::move(view), std::move(guard)));
  edge->mounts_ = std::move(mounts);
  // Reads wait for a free core rather than take the allocator's.
  config.io_thread_nice = std::max(config.io_thread_nice, master_io_thread_nice);
  auto* self = edge.get();
  auto server = http::Server::start(std::move(config), [self](http::Request r, http::Responder d) {
    self->handle(std::move(r), std::move(d));
  });
  if (!server)
    return server.error();
  edge->server_ = std::move(*server);
  return edge;
}

MasterHttp::~MasterHttp() {
  stop();
}

void MasterHttp::stop() {
  if (server_)
    server_->stop();
}

std::vector<std::pair<std::string, double>> MasterHttp::metrics() const {
  auto out = guard_->metrics();
  auto edge = http::counter_metrics(server_->counters(), bad_json_.load());
  edge.push_back({"tessera_http_overloaded_total", double(overloaded_.load())});
  out.insert(out.begin(), edge.begin(), edge.end());
  return out;
}

void MasterHttp::on_view(const http::Responder& responder, std::function<void(StateView&)> fn) {
  auto view = view_->view;
  bool posted = view_->inbox && view_->inbox->post([view, fn = std::move(fn)] { fn(*view); });
  if (!posted) {
    ++overloaded_;
    responder.respond(http::error_response(503, "the master's state view is busy or gone"));
  }
}

void MasterHttp::handle(http::Request request, http::Responder responder) {
  const auto& path = request.path;
  for (const auto& m : mounts_)
    if (path == m.prefix ||
        (path.size() > m.prefix.size() && path.compare(0, m.prefix.size(), m.prefix) == 0 &&
         path[m.prefix.size()] == '/'))
      return m.handler(std::move(request), std::move(responder));
  if (path == "/api/v1" || path == "/api/v1/") {
    if (request.method != "POST") {
      http::Response r = http::error_response(405, "use POST for /api/v1");
      r.headers.push_back({"Allow", "POST"});
      return responder.respond(std::move(r));
    }
    return api(request, responder);
  }
  if (request.method != "GET" && request.method != "HEAD")
    return responder.respond(http::error_response(405, "use GET for " + path));
  if (path == "/metrics" || path == "/metrics/snapshot") {
    auto principal = guard_->authenticate(request, responder);
    if (!principal ||
        !guard_->authorize(*principal, security::Action::view_cluster, std::nullopt, responder))
      return;
    return on_view(responder, [responder, prometheus = path == "/metrics"](StateView& v) {
      v.metrics(prometheus, responder);
    });
  }
  if (path == "/health")
    return responder.respond(http::json_response(200, "{\"healthy\":true}"));
  if (const auto* asset = find_ui_asset(path == "/" ? "/ui/index.html" : path)) {
    http::Response r;
    r.content_type = asset->content_type;
    r.body = std::string(asset->body);
    r.headers.push_back({"Cache-Control", "no-cache"});
    return responder.respond(std::move(r));
  }
  responder.respond(http::error_response(404, "no such endpoint: " + path));
}

void MasterHttp::api(const http::Request& request, const http::Responder& responder) {
  auto principal = guard_->authenticate(request, responder);
  if (!principal)
    return;
  nlohmann::json call;
  try {
    call = nlohmann::json::parse(request.body);
  } catch (const nlohmann::json::exception& e) {
    ++bad_json_;
    return responder.respond(http::error_response(400, std::string("bad JSON: ") + e.what()));
  }
  if (!call.is_object() || !call.contains("type") || !call["type"].is_string()) {
    ++bad_json_;
    return responder.respond(
        http::error_response(400, "a call is a JSON object with a \"type\" string"));
  }
  on_view(responder,
          [call = std::move(call), responder, caller = ViewCaller{std::move(*principal), guard_}](
              StateView& v) { v.api_call(call, responder, caller); });
}

}  // namespace tessera
