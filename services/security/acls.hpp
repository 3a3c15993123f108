#pragma once
// Who may do what (issue #14): access control lists after Mesos's local
// authorizer (its docs/authorization.md), read from a JSON file (`--acls`).
//
//   {
//     "permissive": false,                      // optional; false here
//     "register_frameworks": [
//       {"principals": {"values": ["etl"]}, "roles": {"values": ["analytics"]}},
//       {"principals": {"type": "ANY"}, "roles": {"type": "NONE"}}
//     ],
//     "view_tasks": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]
//   }
//
// Each action holds a list of rules. A rule names a subject ("principals")
// and, for actions that act on something, an object (`roles`, `users`,
// `framework_principals`, `agents`, `apps`, `jobs`: see object_key()). An
// entity is {"values": [...]} (SOME) or {"type": "ANY" | "NONE"}; a rule
// without its object means {"type": "ANY"}. Rules are tried in order and
// the first one that matches the request decides (Mesos's semantics):
//   - a request's subject is a principal (SOME) or, for an unauthenticated
//     caller, ANY; its object is one value, or ANY for actions without one
//     (drain_agents, deactivate_agents, view_cluster) and for calls that
//     span every app or job (listing them);
//   - a rule matches when its subject and its object each match: an ANY or
//     NONE entity matches every request, a SOME entity one whose value it
//     holds (an ANY request matches no SOME entity);
//   - the first matching rule allows when its subject and object both allow:
//     ANY allows everything, NONE nothing, SOME the values it holds;
//   - no rule matches: `permissive` decides, false unless the file says so.
// So an unauthenticated caller is allowed only by rules whose principals
// are {"type": "ANY"}. Without an ACL file nothing is checked: every
// request is allowed (Authorizer::enabled() is false).
//
// Objects compare as exact strings, but for apps and jobs a value also
// covers what is under it: "/prod" covers the app "/prod/web" (and its
// routes "/prod/web/restart"), and the job prefix "prod" covers the job
// "prod.backup" (Marathon's groups and Metronome's dotted ids, as DC/OS's
// per-group permissions).
//
// Thread-safety: Acls is a value. An Authorizer is immutable after it is
// made except for its counters (atomics): any thread may call it at once,
// the HTTP edges' I/O threads and actors alike.

#include "runtime/error.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::security {

enum class Action : uint8_t {
  register_frameworks,  // object: role a framework subscribes in
  run_tasks,            // object: the user a task runs as
  teardown_frameworks,  // object: the principal of the framework torn down
  kill_tasks,           // object: the role of the task killed
  view_frameworks,      // object: a role of the framework seen
  view_tasks,           // object: the role of the task seen
  access_sandboxes,     // object: the role of the task whose sandbox is read
  update_quotas,        // object: role
  update_weights,       // object: role
  reserve_resources,    // object: the role reserved for
  unreserve_resources,  // object: the role whose reservation is undone
  drain_agents,         // object: agent id (ANY for "every agent")
  deactivate_agents,    // object: agent id; also reactivation
  view_cluster,         // no object: agents, roles, flags, metrics, maintenance
  view_apps,            // object: app id or group ("/prod/web", "/prod")
  update_apps,          // object: app id or group
  view_jobs,            // object: job id or dotted prefix ("prod.backup", "prod")
  update_jobs,          // object: job id or dotted prefix
};
inline constexpr size_t action_count = size_t(Action::update_jobs) + 1;

// "register_frameworks": the key in the ACL file and in metric names.
const char* to_string(Action action);
std::optional<Action> action_from(std::string_view name);
// The key of the action's object in a rule ("roles"); empty for view_cluster.
const char* object_key(Action action);

// One side of a rule: ANY, NONE or SOME values.
struct Entity {
  enum class Type : uint8_t { some, any, none };
  Type type = Type::any;
  std::vector<std::string> values;  // for some; never empty then

  static Entity any() { return {Type::any, {}}; }
  static Entity none() { return {Type::none, {}}; }
  static Entity some(std::vector<std::string> values) { return {Type::some, std::move(values)}; }
};

struct Rule {
  Entity principals;
  Entity object;  // Entity::any() for actions without one
};

struct Acls {
  bool permissive = false;
  std::array<std::vector<Rule>, action_count> rules;

  const std::vector<Rule>& of(Action a) const { return rules[size_t(a)]; }
  std::vector<Rule>& of(Action a) { return rules[size_t(a)]; }
};

// One problem of an ACL file, at a JSON pointer ("/run_tasks/0/users").
struct AclProblem {
  std::string path;
  std::string message;
};

// Every problem of the document, in order; empty: it is valid.
std::vector<AclProblem> check_acls(const nlohmann::json& document);
// The ACLs of a document, or Errc::invalid_argument listing every problem
// as "PATH: MESSAGE" lines.
expected<Acls> parse_acls(const nlohmann::json& document);
// The same from a file; also "cannot read FILE" and "FILE is not JSON: ...".
expected<Acls> load_acls(const std::filesystem::path& file);

// The answer to one request. Converts to true when allowed; reason says
// why not ("principal 'x' may not register frameworks in role 'y'").
struct Decision {
  bool allowed = true;
  std::string reason;
  explicit operator bool() const { return allowed; }
};

// A request's principal: a name, or empty for an unauthenticated caller
// (who is allowed only by rules whose principals are {"type": "ANY"}).
using Principal = std::string_view;
// A request's object: one value, or nullopt for ANY (actions without an
// object; a call that spans every app or job).
using Object = std::optional<std::string_view>;

// The decision of rules alone (no counting, no logging).
bool permits(const Acls& acls, Principal principal, Action action, Object object);

// Holds the ACLs, counts every decision per action and logs denials (the
// first ten, then every thousandth). Without ACLs (the default Authorizer)
// it allows everything and counts that.
class Authorizer {
 public:
  Authorizer() = default;  // no ACLs: everything allowed
  explicit Authorizer(Acls acls) : acls_(std::move(acls)), enabled_(true) {}
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  bool enabled() const { return enabled_; }

  // The decision, counted; a denial is logged with its reason. What every
  // caller that lets something happen or refuses it uses, e.g. the master
  // for a framework subscribing with the principal of its certificate:
  //   if (auto d = authorizer.authorize(principal, Action::register_frameworks, role); !d)
  //     refuse(d.reason);
  Decision authorize(Principal principal, Action action, Object object = std::nullopt) const;

  // Uncounted, unlogged: for filtering what a principal sees (a GET_STATE
  // leaves out the frameworks of roles it may not view; that is not a
  // denial of the call).
  bool permits(Principal principal, Action action, Object object) const;
  // Whether principal may do action on every object: the first rule whose
  // principals match it has an object of ANY and allows (conservative: a
  // rule listing values answers false even if a later one allows all).
  // Readers use it to skip filtering.
  bool permits_all(Principal principal, Action action) const;

  uint64_t allowed(Action a) const { return allowed_[size_t(a)].load(); }
  uint64_t denied(Action a) const { return denied_[size_t(a)].load(); }
  uint64_t denied_total() const;
  // tessera_acl_allowed_total, tessera_acl_denied_total and per action
  // tessera_acl_denied_<action>_total, tessera_acl_allowed_<action>_total.
  std::vector<std::pair<std::string, double>> metrics() const;

  // "principal 'x' may not register frameworks in role 'y'".
  static std::string denial_reason(Principal principal, Action action, Object object);

 private:
  Acls acls_;
  bool enabled_ = false;
  mutable std::array<std::atomic<uint64_t>, action_count> allowed_{};
  mutable std::array<std::atomic<uint64_t>, action_count> denied_{};
};

}  // namespace tessera::security
