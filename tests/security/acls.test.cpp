// The ACL model: Mesos's first-match semantics, deny by default once ACLs
// are given, group and prefix objects for apps and jobs, parse errors with
// their JSON paths, and denials counted with a reason.

#include "services/security/acls.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::security;
using json = nlohmann::json;

namespace {

Acls acls_of(const char* text) {
  auto acls = parse_acls(json::parse(text));
  INFO((acls ? std::string() : what(acls.error())));
  REQUIRE(acls);
  return *acls;
}

}  // namespace

TEST_CASE("acls: the first matching rule decides, no match denies unless permissive", "[acls]") {
  auto acls = acls_of(R"({
    "register_frameworks": [
      {"principals": {"values": ["etl"]}, "roles": {"values": ["analytics", "batch"]}},
      {"principals": {"type": "NONE"}, "roles": {"values": ["prod"]}},
      {"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}
    ]
  })");
  auto reg = Action::register_frameworks;
  CHECK(permits(acls, "etl", reg, "analytics"));
  CHECK(permits(acls, "etl", reg, "batch"));
  CHECK_FALSE(permits(acls, "etl", reg, "web"));   // no rule: deny by default
  CHECK_FALSE(permits(acls, "ops", reg, "prod"));  // the NONE rule comes first
  CHECK(permits(acls, "ops", reg, "web"));
  CHECK_FALSE(permits(acls, "", reg, "analytics"));              // unauthenticated
  CHECK_FALSE(permits(acls, "etl", Action::run_tasks, "root"));  // no rules for it

  acls.permissive = true;
  CHECK(permits(acls, "etl", reg, "web"));         // no rule matches: permissive
  CHECK_FALSE(permits(acls, "ops", reg, "prod"));  // a matching rule still denies
}

TEST_CASE("acls: an unauthenticated caller matches only ANY principals", "[acls]") {
  auto acls = acls_of(R"({
    "view_tasks": [
      {"principals": {"values": ["alice"]}, "roles": {"type": "ANY"}},
      {"principals": {"type": "ANY"}, "roles": {"values": ["public"]}}
    ]
  })");
  CHECK(permits(acls, "", Action::view_tasks, "public"));
  CHECK_FALSE(permits(acls, "", Action::view_tasks, "secret"));
  CHECK(permits(acls, "alice", Action::view_tasks, "secret"));
  CHECK(permits(acls, "bob", Action::view_tasks, "public"));
}

TEST_CASE("acls: actions without an object and calls on every object", "[acls]") {
  auto acls = acls_of(R"({
    "drain_agents": [{"principals": {"values": ["ops"]}}],
    "view_cluster": [{"principals": {"values": ["ops", "viewer"]}}],
    "view_frameworks": [
      {"principals": {"values": ["viewer"]}, "roles": {"values": ["a"]}},
      {"principals": {"values": ["ops"]}, "roles": {"type": "ANY"}}
    ]
  })");
  CHECK(permits(acls, "ops", Action::drain_agents, std::nullopt));
  CHECK(permits(acls, "ops", Action::drain_agents, "agent-1"));  // a rule without object: ANY
  CHECK_FALSE(permits(acls, "viewer", Action::drain_agents, std::nullopt));
  CHECK(permits(acls, "viewer", Action::view_cluster, std::nullopt));
  // An ANY request (every role) is not allowed by a rule that lists values.
  CHECK_FALSE(permits(acls, "viewer", Action::view_frameworks, std::nullopt));
  CHECK(permits(acls, "ops", Action::view_frameworks, std::nullopt));

  Authorizer authorizer(acls);
  CHECK(authorizer.permits_all("ops", Action::view_frameworks));
  CHECK_FALSE(authorizer.permits_all("viewer", Action::view_frameworks));
  CHECK_FALSE(authorizer.permits_all("nobody", Action::view_frameworks));
  Authorizer none;
  CHECK(none.permits_all("", Action::update_quotas));
}

TEST_CASE("acls: app groups and job prefixes cover what is under them", "[acls]") {
  auto acls = acls_of(R"({
    "update_apps": [{"principals": {"values": ["team"]}, "apps": {"values": ["/prod/"]}}],
    "view_apps": [{"principals": {"values": ["team"]}, "apps": {"values": ["/"]}}],
    "update_jobs": [{"principals": {"values": ["team"]}, "jobs": {"values": ["nightly"]}}]
  })");
  CHECK(permits(acls, "team", Action::update_apps, "/prod"));
  CHECK(permits(acls, "team", Action::update_apps, "/prod/web"));
  CHECK(permits(acls, "team", Action::update_apps, "/prod/web/restart"));
  CHECK_FALSE(permits(acls, "team", Action::update_apps, "/production"));
  CHECK_FALSE(permits(acls, "team", Action::update_apps, "/dev/web"));
  CHECK(permits(acls, "team", Action::view_apps, "/dev/web"));
  CHECK(permits(acls, "team", Action::update_jobs, "nightly"));
  CHECK(permits(acls, "team", Action::update_jobs, "nightly.backup"));
  CHECK_FALSE(permits(acls, "team", Action::update_jobs, "nightlybackup"));
  // Roles are exact.
  auto roles = acls_of(
      R"({"update_quotas": [{"principals": {"values": ["q"]}, "roles": {"values": ["a"]}}]})");
  CHECK_FALSE(permits(roles, "q", Action::update_quotas, "a/b"));
}

TEST_CASE("acls: every problem of a file is named by its JSON path", "[acls]") {
  auto problems = check_acls(json::parse(R"({
    "permissive": "no",
    "register_framework": [],
    "run_tasks": {"principals": {"type": "ANY"}},
    "kill_tasks": [
      {"roles": {"type": "ANY"}},
      {"principals": {"type": "SOME"}, "roles": {"values": []}},
      {"principals": {"values": ["a", 3]}, "users": {"type": "ANY"}},
      {"principals": {"values": ["a"], "type": "ANY"}},
      "everyone"
    ],
    "view_cluster": [{"principals": {"type": "ANY"}, "roles": {"type": "ANY"}}]
  })"));
  std::vector<std::string> paths;
  for (auto& p : problems)
    paths.push_back(p.path);
  CHECK(paths == std::vector<std::string>{
                     "/kill_tasks/0/principals",
                     "/kill_tasks/1/principals/type",
                     "/kill_tasks/1/roles/values",
                     "/kill_tasks/2/principals/values/1",
                     "/kill_tasks/2/users",
                     "/kill_tasks/3/principals",
                     "/kill_tasks/4",
                     "/permissive",
                     "/register_framework",
                     "/run_tasks",
                     "/view_cluster/0/roles",
                 });
  auto parsed = parse_acls(json::parse(R"({"kill_tasks": [{"principals": {"type": "any"}}]})"));
  REQUIRE_FALSE(parsed);
  CHECK(what(parsed.error()).find("/kill_tasks/0/principals/type: must be \"ANY\" or \"NONE\"") !=
        std::string::npos);
  CHECK_FALSE(parse_acls(json::array()));
}

TEST_CASE("acls: the authorizer counts every decision and says why it denies", "[acls]") {
  Authorizer authorizer(acls_of(R"({
    "register_frameworks": [{"principals": {"values": ["x"]}, "roles": {"values": ["a"]}}]
  })"));
  CHECK(authorizer.enabled());
  CHECK(authorizer.authorize("x", Action::register_frameworks, "a"));
  auto d = authorizer.authorize("x", Action::register_frameworks, "y");
  CHECK_FALSE(d);
  CHECK(d.reason == "principal 'x' may not register frameworks in role 'y'");
  auto anon = authorizer.authorize("", Action::drain_agents);
  CHECK(anon.reason == "an unauthenticated caller may not drain every agent");
  CHECK(authorizer.allowed(Action::register_frameworks) == 1);
  CHECK(authorizer.denied(Action::register_frameworks) == 1);
  CHECK(authorizer.denied(Action::drain_agents) == 1);
  CHECK(authorizer.denied_total() == 2);
  // Filtering is not a denial.
  CHECK_FALSE(authorizer.permits("x", Action::register_frameworks, "b"));
  CHECK(authorizer.denied_total() == 2);
  bool found = false;
  for (auto& [name, value] : authorizer.metrics())
    if (name == "tessera_acl_denied_register_frameworks_total") {
      found = true;
      CHECK(value == 1);
    }
  CHECK(found);

  Authorizer open;  // no ACLs: everything allowed
  CHECK_FALSE(open.enabled());
  CHECK(open.authorize("", Action::update_weights, "r"));
  CHECK(open.allowed(Action::update_weights) == 1);
}
