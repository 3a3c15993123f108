#include "services/security/http_guard.hpp"

#include "runtime/log.hpp"
#include "runtime/tls.hpp"

#include <nlohmann/json.hpp>

namespace tessera::security {

namespace {

constexpr uint64_t refusals_logged_first = 10;
constexpr uint64_t refusals_logged_every = 1000;

bool worth_logging(uint64_t n) {
  return n <= refusals_logged_first || n % refusals_logged_every == 0;
}

http::Response refusal(int status, const std::string& reason) {
  return http::json_response(status, nlohmann::json{{"error", reason}, {"message", reason}}.dump());
}

}  // namespace

HttpGuard::HttpGuard(HttpSecurity security)
    : security_(std::move(security)),
      authorizer_(security_.authorizer ? security_.authorizer
                                       : std::make_shared<const Authorizer>()) {
}

expected<std::string> HttpGuard::principal_of(const http::Request& request) const {
  auto it = request.headers.find("authorization");
  bool token = security_.credentials && it != request.headers.end();
  if (!token && request.peer_identity)
    return request.peer_identity->name;
  if (!security_.credentials)
    return std::string();
  auto principal = security_.credentials->authenticate(
      it == request.headers.end() ? std::string_view() : std::string_view(it->second));
  if (!principal) {
    auto n = unauthenticated_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (worth_logging(n))
      log().warn("http: {} {} from {} refused (401, {} so far): {}", request.method, request.path,
                 request.peer, n, what(principal.error()));
  }
  return principal;
}

std::optional<std::string> HttpGuard::authenticate(const http::Request& request,
                                                   const http::Responder& responder) const {
  auto principal = principal_of(request);
  if (principal)
    return std::move(*principal);
  responder.respond(unauthorized(what(principal.error())));
  return std::nullopt;
}

Decision HttpGuard::check(const std::string& principal, Action action, Object object) const {
  auto d = authorizer_->authorize(principal, action, object);
  if (!d)
    forbidden_.fetch_add(1, std::memory_order_relaxed);
  return d;
}

bool HttpGuard::authorize(const std::string& principal, Action action, Object object,
                          const http::Responder& responder) const {
  auto d = check(principal, action, object);
  if (!d)
    responder.respond(forbidden(d.reason));
  return d.allowed;
}

http::Response HttpGuard::unauthorized(const std::string& reason) {
  auto r = refusal(401, reason);
  r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"tessera\""});
  return r;
}

http::Response HttpGuard::forbidden(const std::string& reason) {
  return refusal(403, reason);
}

std::vector<std::pair<std::string, double>> HttpGuard::metrics() const {
  std::vector<std::pair<std::string, double>> out = {
      {"tessera_http_unauthenticated_total", double(unauthenticated_.load())},
      {"tessera_http_forbidden_total", double(forbidden_.load())},
  };
  for (auto& m : authorizer_->metrics())
    out.push_back(std::move(m));
  return out;
}

http::Handler guarded_handler(std::shared_ptr<const HttpGuard> guard, RouteClassifier classify,
                              http::Handler inner) {
  if (!guard)
    return inner;
  return [guard, classify = std::move(classify), inner = std::move(inner)](
             http::Request request, http::Responder responder) {
    auto access = classify(request);
    if (!access.open) {
      auto principal = guard->authenticate(request, responder);
      if (!principal)
        return;
      for (const auto& [action, object] : access.checks)
        if (!guard->authorize(*principal, action, object ? Object(*object) : Object(std::nullopt),
                              responder))
          return;
    }
    inner(std::move(request), std::move(responder));
  };
}

}  // namespace tessera::security
