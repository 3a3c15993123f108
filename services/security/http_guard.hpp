#pragma once
// Authentication and authorization at an HTTP edge (issue #14): one guard
// per process, shared by every edge it runs (the master's operator API,
// the apps and jobs APIs mounted on it or served alone, an agent's API).
//
// Who a request comes from: the principal of its bearer token when it sends
// an Authorization header and credentials are configured; else, on an HTTPS
// edge, the name of the client certificate its connection proved (the
// NAME of urn:tessera:ROLE:NAME, as the transport names a node's principal;
// any role); else nobody. With credentials configured, nobody (or a token
// that does not check out) is answered 401 with `WWW-Authenticate: Bearer
// realm="tessera"`; without them nobody is anonymous (principal ""), which
// ACLs allow only through rules whose principals are {"type": "ANY"}. A principal the
// ACLs refuse is answered 403 with the reason. Both are counted
// (tessera_http_unauthenticated_total, tessera_http_forbidden_total) and
// logged (the first ten, then every thousandth). Error bodies carry the
// reason as "error" (the operator API's key) and "message" (Marathon's and
// Metronome's).
//
// Thread-safety: const after construction but for atomic counters; call it
// from any I/O thread.

#include "services/http/server.hpp"
#include "services/security/acls.hpp"
#include "services/security/credentials.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tessera::security {

struct HttpSecurity {
  std::shared_ptr<const Credentials> credentials;  // null: no authentication
  std::shared_ptr<const Authorizer> authorizer;    // null: everything allowed
};

class HttpGuard {
 public:
  explicit HttpGuard(HttpSecurity security = {});
  HttpGuard(const HttpGuard&) = delete;
  HttpGuard& operator=(const HttpGuard&) = delete;

  // Whether callers must authenticate.
  bool authenticating() const { return security_.credentials != nullptr; }

  // The caller's principal (see above; "" for nobody without credentials),
  // or why it is refused: then answer unauthorized(reason).
  expected<std::string> principal_of(const http::Request& request) const;
  // The same, answering the 401 itself (nullopt then).
  std::optional<std::string> authenticate(const http::Request& request,
                                          const http::Responder& responder) const;

  // The authorizer's decision (counted); a denial is counted here too.
  Decision check(const std::string& principal, Action action, Object object = std::nullopt) const;
  // The same, answering the 403 itself (false then).
  bool authorize(const std::string& principal, Action action, Object object,
                 const http::Responder& responder) const;

  // The answers, for edges that add headers of their own (CORS).
  static http::Response unauthorized(const std::string& reason);
  static http::Response forbidden(const std::string& reason);

  // Never null: a permissive one when no ACLs are configured.
  const std::shared_ptr<const Authorizer>& authorizer() const { return authorizer_; }

  uint64_t unauthenticated() const { return unauthenticated_.load(); }
  uint64_t forbidden() const { return forbidden_.load(); }
  // This guard's counters and the authorizer's (per action).
  std::vector<std::pair<std::string, double>> metrics() const;

 private:
  HttpSecurity security_;
  std::shared_ptr<const Authorizer> authorizer_;
  mutable std::atomic<uint64_t> unauthenticated_{0};
  mutable std::atomic<uint64_t> forbidden_{0};
};

// What one request needs: nothing (open: liveness routes), or each of
// checks to pass for the principal that made it.
struct RouteAccess {
  bool open = false;
  std::vector<std::pair<Action, std::optional<std::string>>> checks;
};
using RouteClassifier = std::function<RouteAccess(const http::Request&)>;

// inner behind guard: a request whose route is not open is authenticated
// (401) and each of its checks authorized (403) before inner sees it. What
// the apps and jobs APIs are served through, mounted or on their own.
http::Handler guarded_handler(std::shared_ptr<const HttpGuard> guard, RouteClassifier classify,
                              http::Handler inner);

}  // namespace tessera::security
