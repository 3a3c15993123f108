#include "services/security/acls.hpp"

#include "runtime/log.hpp"

#include <fstream>
#include <sstream>

namespace tessera::security {

namespace {

using json = nlohmann::json;

struct ActionInfo {
  const char* name;
  const char* object;  // its key in a rule; "" for none
  const char* verb;    // "register frameworks in"
  const char* noun;    // what the object is: "role"
};

// Indexed by Action.
constexpr std::array<ActionInfo, action_count> actions = {{
    {"register_frameworks", "roles", "register frameworks in", "role"},
    {"run_tasks", "users", "run tasks as", "user"},
    {"teardown_frameworks", "framework_principals", "tear down frameworks of", "principal"},
    {"kill_tasks", "roles", "kill tasks of", "role"},
    {"view_frameworks", "roles", "view frameworks of", "role"},
    {"view_tasks", "roles", "view tasks of", "role"},
    {"access_sandboxes", "roles", "access sandboxes of tasks of", "role"},
    {"update_quotas", "roles", "update the quota of", "role"},
    {"update_weights", "roles", "update the weight of", "role"},
    {"reserve_resources", "roles", "reserve resources for", "role"},
    {"unreserve_resources", "roles", "unreserve resources of", "role"},
    {"drain_agents", "agents", "drain", "agent"},
    {"deactivate_agents", "agents", "deactivate or reactivate", "agent"},
    {"view_cluster", "", "view the cluster's agents, roles, flags and metrics", ""},
    {"view_apps", "apps", "view", "app"},
    {"update_apps", "apps", "change", "app"},
    {"view_jobs", "jobs", "view", "job"},
    {"update_jobs", "jobs", "change", "job"},
}};

const ActionInfo& info(Action a) {
  return actions[size_t(a)];
}

constexpr uint64_t denials_logged_first = 10;
constexpr uint64_t denials_logged_every = 1000;
constexpr size_t rules_per_action_max = 10'000;
constexpr size_t values_per_entity_max = 10'000;

// Whether an ACL's value covers the request's object.
bool covers(Action action, std::string_view value, std::string_view object) {
  if (value == object)
    return true;
  char separator = 0;
  if (action == Action::view_apps || action == Action::update_apps) {
    separator = '/';
    if (value == "/")
      return !object.empty() && object.front() == '/';
    if (!value.empty() && value.back() == '/')
      value.remove_suffix(1);  // "/prod/" is the group "/prod"
    if (value == object)
      return true;
  } else if (action == Action::view_jobs || action == Action::update_jobs) {
    separator = '.';
  } else {
    return false;
  }
  return object.size() > value.size() && object.compare(0, value.size(), value) == 0 &&
         object[value.size()] == separator;
}

// Mesos's matches(): does the rule's entity apply to the request's?
bool matches(Action action, std::optional<std::string_view> request, const Entity& acl) {
  if (acl.type != Entity::Type::some)
    return true;
  if (!request)
    return false;
  for (const auto& v : acl.values)
    if (covers(action, v, *request))
      return true;
  return false;
}

// Mesos's allows(): once the rule applies, does its entity grant?
bool allows(Action action, std::optional<std::string_view> request, const Entity& acl) {
  switch (acl.type) {
    case Entity::Type::any:
      return true;
    case Entity::Type::none:
      return false;
    case Entity::Type::some:
      return matches(action, request, acl);
  }
  return false;
}

std::optional<std::string_view> subject_of(Principal p) {
  if (p.empty())
    return std::nullopt;
  return p;
}

// -- reading ----------------------------------------------------------------------

std::string pointer(const std::string& base, const std::string& key) {
  std::string out = base + "/";
  for (char c : key)
    out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

class Reader {
 public:
  std::vector<AclProblem> problems;
  Acls acls;

  void problem(std::string path, std::string message) {
    problems.push_back({std::move(path), std::move(message)});
  }

  void document(const json& doc) {
    if (!doc.is_object())
      return problem("", "an ACL file is a JSON object of actions");
    for (const auto& [key, value] : doc.items()) {
      auto path = pointer("", key);
      if (key == "permissive") {
        if (!value.is_boolean())
          problem(path, "must be true or false");
        else
          acls.permissive = value.get<bool>();
        continue;
      }
      auto action = action_from(key);
      if (!action) {
        problem(path, "unknown action '" + key + "' (known: " + known_actions() + ")");
        continue;
      }
      if (!value.is_array()) {
        problem(path, "must be a list of rules");
        continue;
      }
      if (value.size() > rules_per_action_max) {
        problem(path, "more than " + std::to_string(rules_per_action_max) + " rules");
        continue;
      }
      for (size_t i = 0; i < value.size(); ++i)
        rule(*action, value[i], path + "/" + std::to_string(i));
    }
  }

 private:
  static std::string known_actions() {
    std::string out;
    for (const auto& a : actions)
      out += (out.empty() ? "" : ", ") + std::string(a.name);
    return out;
  }

  void rule(Action action, const json& in, const std::string& path) {
    if (!in.is_object())
      return problem(path, "a rule is an object with \"principals\"");
    Rule r;
    std::string object = info(action).object;
    bool have_principals = false;
    for (const auto& [key, value] : in.items()) {
      auto at = pointer(path, key);
      if (key == "principals") {
        have_principals = true;
        r.principals = entity(value, at);
      } else if (!object.empty() && key == object) {
        r.object = entity(value, at);
      } else {
        problem(at, object.empty()
                        ? std::string(info(action).name) + " takes no object"
                        : std::string(info(action).name) + " takes \"principals\" and \"" + object +
                              "\", not \"" + key + "\"");
      }
    }
    if (!have_principals)
      problem(pointer(path, "principals"), "is required");
    acls.of(action).push_back(std::move(r));
  }

  Entity entity(const json& in, const std::string& path) {
    if (!in.is_object()) {
      problem(path, "must be {\"values\": [...]} or {\"type\": \"ANY\" | \"NONE\"}");
      return Entity::none();
    }
    bool has_type = in.contains("type"), has_values = in.contains("values");
    for (const auto& [key, value] : in.items())
      if (key != "type" && key != "values")
        problem(pointer(path, key), "unknown field (an entity has \"values\" or \"type\")");
    if (has_type == has_values) {
      problem(path, "give exactly one of \"values\" and \"type\"");
      return Entity::none();
    }
    if (has_type) {
      const auto& t = in["type"];
      if (t == "ANY")
        return Entity::any();
      if (t == "NONE")
        return Entity::none();
      problem(path + "/type", "must be \"ANY\" or \"NONE\"");
      return Entity::none();
    }
    const auto& values = in["values"];
    if (!values.is_array() || values.empty()) {
      problem(path + "/values", "must be a non-empty list of strings");
      return Entity::none();
    }
    if (values.size() > values_per_entity_max) {
      problem(path + "/values", "more than " + std::to_string(values_per_entity_max) + " values");
      return Entity::none();
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i].is_string() || values[i].get<std::string>().empty()) {
        problem(path + "/values/" + std::to_string(i), "must be a non-empty string");
        continue;
      }
      out.push_back(values[i].get<std::string>());
    }
    if (out.empty())
      return Entity::none();
    return Entity::some(std::move(out));
  }
};

}  // namespace

const char* to_string(Action action) {
  return info(action).name;
}

std::optional<Action> action_from(std::string_view name) {
  for (size_t i = 0; i < action_count; ++i)
    if (name == actions[i].name)
      return Action(i);
  return std::nullopt;
}

const char* object_key(Action action) {
  return info(action).object;
}

std::vector<AclProblem> check_acls(const json& document) {
  Reader r;
  r.document(document);
  return std::move(r.problems);
}

expected<Acls> parse_acls(const json& document) {
  Reader r;
  r.document(document);
  if (r.problems.empty())
    return std::move(r.acls);
  std::string text = "invalid ACLs:";
  for (const auto& p : r.problems)
    text += "\n  " + (p.path.empty() ? std::string("(top)") : p.path) + ": " + p.message;
  return make_error(Errc::invalid_argument, text);
}

expected<Acls> load_acls(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return make_error(Errc::invalid_argument, "cannot read the ACL file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = json::parse(text.str());
  } catch (const json::exception& e) {
    return make_error(Errc::invalid_argument,
                      "the ACL file " + file.string() + " is not JSON: " + e.what());
  }
  auto acls = parse_acls(doc);
  if (!acls)
    return make_error(Errc::invalid_argument, file.string() + ": " + what(acls.error()));
  return acls;
}

bool permits(const Acls& acls, Principal principal, Action action, Object object) {
  auto subject = subject_of(principal);
  for (const auto& rule : acls.of(action))
    if (matches(action, subject, rule.principals) && matches(action, object, rule.object))
      return allows(action, subject, rule.principals) && allows(action, object, rule.object);
  return acls.permissive;
}

// -- Authorizer ----------------------------------------------------------------------

bool Authorizer::permits(Principal principal, Action action, Object object) const {
  return !enabled_ || security::permits(acls_, principal, action, object);
}

bool Authorizer::permits_all(Principal principal, Action action) const {
  if (!enabled_)
    return true;
  auto subject = subject_of(principal);
  for (const auto& rule : acls_.of(action)) {
    if (!matches(action, subject, rule.principals))
      continue;
    if (rule.object.type == Entity::Type::some)
      return false;
    return allows(action, subject, rule.principals) && rule.object.type == Entity::Type::any;
  }
  return acls_.permissive;
}

Decision Authorizer::authorize(Principal principal, Action action, Object object) const {
  if (permits(principal, action, object)) {
    allowed_[size_t(action)].fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  auto n = denied_[size_t(action)].fetch_add(1, std::memory_order_relaxed) + 1;
  Decision d{false, denial_reason(principal, action, object)};
  if (n <= denials_logged_first || n % denials_logged_every == 0)
    log().warn("acls: denied ({} {} denial{} so far): {}", n, info(action).name, n == 1 ? "" : "s",
               d.reason);
  return d;
}

uint64_t Authorizer::denied_total() const {
  uint64_t sum = 0;
  for (const auto& d : denied_)
    sum += d.load();
  return sum;
}

std::vector<std::pair<std::string, double>> Authorizer::metrics() const {
  std::vector<std::pair<std::string, double>> out;
  uint64_t allowed_sum = 0;
  for (const auto& a : allowed_)
    allowed_sum += a.load();
  out.emplace_back("tessera_acl_allowed_total", double(allowed_sum));
  out.emplace_back("tessera_acl_denied_total", double(denied_total()));
  for (size_t i = 0; i < action_count; ++i) {
    out.emplace_back(std::string("tessera_acl_allowed_") + actions[i].name + "_total",
                     double(allowed_[i].load()));
    out.emplace_back(std::string("tessera_acl_denied_") + actions[i].name + "_total",
                     double(denied_[i].load()));
  }
  return out;
}

std::string Authorizer::denial_reason(Principal principal, Action action, Object object) {
  const auto& a = info(action);
  std::string who = principal.empty() ? "an unauthenticated caller"
                                      : "principal '" + std::string(principal) + "'";
  std::string what = a.verb;
  if (*a.noun) {
    if (object)
      what += std::string(" ") + a.noun + " '" + std::string(*object) + "'";
    else
      what += std::string(" every ") + a.noun;
  }
  return who + " may not " + what;
}

}  // namespace tessera::security
