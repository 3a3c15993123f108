// App definitions: checked parsing and writing back (app_spec.hpp).

#include "services/apps/app_spec.hpp"

#include "services/apps/constraints.hpp"

#include <cmath>
#include <set>

namespace tessera::apps {

namespace {

using json = nlohmann::json;

// Fields Marathon sends back that describe a running app, not its spec.
const std::set<std::string> reported_fields = {
    "version",         "versionInfo",    "tasksStaged",           "tasksRunning",
    "tasksHealthy",    "tasksUnhealthy", "deployments",           "tasks",
    "lastTaskFailure", "taskStats",      "readinessCheckResults", "tessera"};

// Marathon fields this framework does not implement: accepted only empty.
const std::set<std::string> unsupported_fields = {
    "container", "networks",  "secrets",   "dependencies",          "readinessChecks",
    "residency", "ipAddress", "storeUrls", "acceptedResourceRoles", "executor"};

// What Marathon itself fills in for fields this framework does not
// implement, meaning "nothing special": host networking, any role.
bool marathon_default(const std::string& name, const json& v) {
  if (name == "networks")
    return v.is_array() && v.size() == 1 && v[0].is_object() && v[0].value("mode", "") == "host" &&
           v[0].size() == 1;
  if (name == "acceptedResourceRoles")
    return v.is_array() && v.size() == 1 && v[0] == "*";
  return false;
}

bool empty_value(const json& v) {
  return v.is_null() || (v.is_string() && v.get<std::string>().empty()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

bool valid_segment(const std::string& s) {
  if (s.empty())
    return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back()))
    return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '.')
      return false;
  return true;
}

// Problems are collected by a SpecReader over the definition.
using Reader = SpecReader;

void read_ports(Reader& r, const json& in, AppSpec& app) {
  bool has_ports = in.contains("ports") && !in["ports"].is_null();
  bool has_defs = in.contains("portDefinitions") && !in["portDefinitions"].is_null();
  if (has_ports && has_defs) {
    r.problem("/portDefinitions", "give ports or portDefinitions, not both");
    return;
  }
  if (has_ports) {
    auto* list = r.array("ports");
    if (!list)
      return;
    app.ports.clear();
    for (size_t i = 0; i < list->size(); ++i) {
      PortDefinition p;
      p.port = static_cast<uint32_t>(
          r.integer_at((*list)[i], "/ports/" + std::to_string(i), 0, 0, 65535));
      app.ports.push_back(std::move(p));
    }
  } else if (has_defs) {
    auto* list = r.array("portDefinitions");
    if (!list)
      return;
    app.ports.clear();
    for (size_t i = 0; i < list->size(); ++i) {
      const auto& d = (*list)[i];
      auto path = "/portDefinitions/" + std::to_string(i);
      if (!d.is_object()) {
        r.problem(path, "must be an object");
        continue;
      }
      PortDefinition p;
      if (d.contains("port"))
        p.port = static_cast<uint32_t>(r.integer_at(d["port"], path + "/port", 0, 0, 65535));
      if (d.contains("name")) {
        if (d["name"].is_string())
          p.name = d["name"].get<std::string>();
        else
          r.problem(path + "/name", "must be a string");
      }
      if (d.contains("protocol")) {
        auto proto = d["protocol"].is_string() ? d["protocol"].get<std::string>() : "";
        if (proto != "tcp" && proto != "udp" && proto != "udp,tcp" && proto != "tcp,udp")
          r.problem(path + "/protocol", "must be tcp, udp or udp,tcp");
        else
          p.protocol = proto;
      }
      if (d.contains("labels")) {
        if (!d["labels"].is_object())
          r.problem(path + "/labels", "must be an object of strings");
        else
          for (auto& [k, v] : d["labels"].items())
            if (v.is_string())
              p.labels[k] = v.get<std::string>();
            else
              r.problem(path + "/labels/" + pointer_segment(k), "must be a string");
      }
      app.ports.push_back(std::move(p));
    }
  }
  std::set<uint32_t> fixed;
  for (size_t i = 0; i < app.ports.size(); ++i)
    if (app.ports[i].port != 0 && !fixed.insert(app.ports[i].port).second)
      r.problem((has_ports ? "/ports/" : "/portDefinitions/") + std::to_string(i),
                "port " + std::to_string(app.ports[i].port) + " is given twice");
}

void read_fetch(Reader& r, const json& in, AppSpec& app) {
  if (auto* uris = r.array("uris")) {
    for (size_t i = 0; i < uris->size(); ++i) {
      if (!(*uris)[i].is_string() || (*uris)[i].get<std::string>().empty()) {
        r.problem("/uris/" + std::to_string(i), "must be a URI");
        continue;
      }
      FetchUri f;
      f.uri = (*uris)[i].get<std::string>();
      app.fetch.push_back(std::move(f));
    }
  }
  auto* list = r.array("fetch");
  if (!list)
    return;
  if (in.contains("uris") && !empty_value(in["uris"]))
    r.problem("/fetch", "give fetch or uris, not both");
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& f = (*list)[i];
    auto path = "/fetch/" + std::to_string(i);
    if (!f.is_object() || !f.contains("uri") || !f["uri"].is_string() ||
        f["uri"].get<std::string>().empty()) {
      r.problem(path + "/uri", "each fetch entry needs a uri");
      continue;
    }
    FetchUri out;
    out.uri = f["uri"].get<std::string>();
    for (auto [key, target] : {std::pair{"executable", &out.executable},
                               {"extract", &out.extract},
                               {"cache", &out.cache}}) {
      if (!f.contains(key))
        continue;
      if (f[key].is_boolean())
        *target = f[key].get<bool>();
      else
        r.problem(path + "/" + key, "must be true or false");
    }
    if (f.contains("destPath")) {
      if (f["destPath"].is_string())
        out.dest_path = f["destPath"].get<std::string>();
      else
        r.problem(path + "/destPath", "must be a string");
    }
    app.fetch.push_back(std::move(out));
  }
}

void read_health_checks(Reader& r, AppSpec& app) {
  auto* list = r.array("healthChecks");
  if (!list)
    return;
  const std::set<std::string> protocols = {"HTTP",       "HTTPS",       "TCP",      "COMMAND",
                                           "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"};
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& h = (*list)[i];
    auto path = "/healthChecks/" + std::to_string(i);
    if (!h.is_object()) {
      r.problem(path, "must be an object");
      continue;
    }
    HealthCheck c;
    if (h.contains("protocol")) {
      if (h["protocol"].is_string() && protocols.count(h["protocol"].get<std::string>()))
        c.protocol = h["protocol"].get<std::string>();
      else
        r.problem(path + "/protocol",
                  "must be HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS or MESOS_TCP");
    }
    if (c.protocol == "COMMAND") {
      const json* command = h.contains("command") ? &h["command"] : nullptr;
      if (command && command->is_object() && command->contains("value") &&
          (*command)["value"].is_string() && !(*command)["value"].get<std::string>().empty())
        c.command = (*command)["value"].get<std::string>();
      else
        r.problem(path + "/command", "a COMMAND check needs \"command\": {\"value\": \"...\"}");
    }
    if (h.contains("path")) {
      if (h["path"].is_string())
        c.path = h["path"].get<std::string>();
      else
        r.problem(path + "/path", "must be a string");
    }
    if (h.contains("portIndex"))
      c.port_index = static_cast<uint32_t>(
          r.integer_at(h["portIndex"], path + "/portIndex", 0, 0, app_list_items_max));
    if (h.contains("port"))
      c.port = static_cast<uint32_t>(r.integer_at(h["port"], path + "/port", 0, 1, 65535));
    for (auto [key, target, min] : {std::tuple{"gracePeriodSeconds", &c.grace_period_s, 0.0},
                                    {"intervalSeconds", &c.interval_s, 1.0},
                                    {"timeoutSeconds", &c.timeout_s, 1.0},
                                    {"delaySeconds", &c.delay_s, 0.0}})
      if (h.contains(key))
        *target = r.number_at(h[key], path + "/" + key, *target, min, 86'400);
    if (h.contains("maxConsecutiveFailures"))
      c.max_consecutive_failures = static_cast<uint32_t>(r.integer_at(
          h["maxConsecutiveFailures"], path + "/maxConsecutiveFailures", 3, 0, 1'000'000));
    if (h.contains("ignoreHttp1xx")) {
      if (h["ignoreHttp1xx"].is_boolean())
        c.ignore_http1xx = h["ignoreHttp1xx"].get<bool>();
      else
        r.problem(path + "/ignoreHttp1xx", "must be true or false");
    }
    if (c.timeout_s >= c.interval_s)
      r.problem(path + "/timeoutSeconds", "must be less than intervalSeconds");
    bool probes_port = c.protocol != "COMMAND";
    if (probes_port && !c.port && c.port_index >= app.ports.size())
      r.problem(path + "/portIndex", "the app has " + std::to_string(app.ports.size()) +
                                         " port(s); there is no port index " +
                                         std::to_string(c.port_index));
    app.health_checks.push_back(std::move(c));
  }
}

std::optional<Constraint::Op> constraint_op(const std::string& s) {
  using Op = Constraint::Op;
  static const std::map<std::string, Op> ops = {
      {"UNIQUE", Op::unique},   {"CLUSTER", Op::cluster}, {"GROUP_BY", Op::group_by},
      {"MAX_PER", Op::max_per}, {"LIKE", Op::like},       {"UNLIKE", Op::unlike},
      {"IS", Op::is},           {"SPREAD", Op::spread}};
  auto it = ops.find(s);
  return it == ops.end() ? std::nullopt : std::optional(it->second);
}

void read_constraints(Reader& r, AppSpec& app) {
  using Op = Constraint::Op;
  auto* list = r.array("constraints");
  if (!list)
    return;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& c = (*list)[i];
    auto path = "/constraints/" + std::to_string(i);
    bool strings = c.is_array() && (c.size() == 2 || c.size() == 3);
    for (size_t k = 0; strings && k < c.size(); ++k)
      strings = c[k].is_string();
    if (!strings) {
      r.problem(path, "must be [field, operator] or [field, operator, value], all strings");
      continue;
    }
    Constraint out;
    out.field = c[0].get<std::string>();
    if (out.field.empty()) {
      r.problem(path, "the field is empty (hostname or an agent attribute)");
      continue;
    }
    auto op = constraint_op(c[1].get<std::string>());
    if (!op) {
      r.problem(path, "unknown operator '" + c[1].get<std::string>() +
                          "' (UNIQUE, CLUSTER, GROUP_BY, MAX_PER, LIKE, UNLIKE, IS, SPREAD)");
      continue;
    }
    out.op = *op;
    bool has_value = c.size() == 3 && !c[2].get<std::string>().empty();
    if (has_value)
      out.value = c[2].get<std::string>();
    if ((out.op == Op::unique || out.op == Op::spread) && has_value)
      r.problem(path, std::string(to_string(out.op)) + " takes no value");
    else if ((out.op == Op::cluster || out.op == Op::is || out.op == Op::like ||
              out.op == Op::unlike || out.op == Op::max_per) &&
             !has_value)
      r.problem(path, std::string(to_string(out.op)) + " needs a value");
    else if (auto compiled = ConstraintCheck::compile(out); !compiled)
      r.problem(path, what(compiled.error()));
    app.constraints.push_back(std::move(out));
  }
}

void read_strategies(Reader& r, AppSpec& app) {
  if (auto* u = r.field("upgradeStrategy")) {
    if (!u->is_object()) {
      r.problem("/upgradeStrategy", "must be an object");
    } else {
      if (u->contains("minimumHealthCapacity"))
        app.minimum_health_capacity = r.number_at(
            (*u)["minimumHealthCapacity"], "/upgradeStrategy/minimumHealthCapacity", 1, 0, 1);
      if (u->contains("maximumOverCapacity"))
        app.maximum_over_capacity = r.number_at((*u)["maximumOverCapacity"],
                                                "/upgradeStrategy/maximumOverCapacity", 1, 0, 1);
      if (u->contains("canaryInstances"))
        app.canary_instances = static_cast<uint32_t>(r.integer_at(
            (*u)["canaryInstances"], "/upgradeStrategy/canaryInstances", 0, 0, app_instances_max));
      if (u->contains("progressDeadlineSeconds"))
        app.progress_deadline_s =
            r.number_at((*u)["progressDeadlineSeconds"], "/upgradeStrategy/progressDeadlineSeconds",
                        600, 1, 31'536'000);
    }
  }
  if (auto* u = r.field("unreachableStrategy")) {
    if (u->is_string() && u->get<std::string>() == "disabled") {
      app.unreachable.enabled = false;
    } else if (!u->is_object()) {
      r.problem("/unreachableStrategy",
                "must be \"disabled\" or {inactiveAfterSeconds, expungeAfterSeconds}");
    } else {
      if (u->contains("inactiveAfterSeconds"))
        app.unreachable.inactive_after_s =
            r.integer_at((*u)["inactiveAfterSeconds"], "/unreachableStrategy/inactiveAfterSeconds",
                         300, 0, 31'536'000);
      if (u->contains("expungeAfterSeconds"))
        app.unreachable.expunge_after_s =
            r.integer_at((*u)["expungeAfterSeconds"], "/unreachableStrategy/expungeAfterSeconds",
                         600, 0, 31'536'000);
      if (app.unreachable.inactive_after_s > app.unreachable.expunge_after_s)
        r.problem("/unreachableStrategy/expungeAfterSeconds",
                  "must not be less than inactiveAfterSeconds");
    }
  }
  if (auto kill = r.string("killSelection")) {
    if (*kill == "YOUNGEST_FIRST")
      app.kill_selection = KillSelection::youngest_first;
    else if (*kill == "OLDEST_FIRST")
      app.kill_selection = KillSelection::oldest_first;
    else
      r.problem("/killSelection", "must be YOUNGEST_FIRST or OLDEST_FIRST");
  }
}

}  // namespace

const char* to_string(Constraint::Op op) {
  switch (op) {
    case Constraint::Op::unique:
      return "UNIQUE";
    case Constraint::Op::cluster:
      return "CLUSTER";
    case Constraint::Op::group_by:
      return "GROUP_BY";
    case Constraint::Op::max_per:
      return "MAX_PER";
    case Constraint::Op::like:
      return "LIKE";
    case Constraint::Op::unlike:
      return "UNLIKE";
    case Constraint::Op::is:
      return "IS";
    case Constraint::Op::spread:
      return "SPREAD";
  }
  return "?";
}

std::string normalize_app_id(const std::string& id) {
  if (id.empty() || id.size() > app_id_bytes_max)
    return {};
  std::string out;
  size_t start = id.front() == '/' ? 1 : 0;
  while (start < id.size()) {
    auto end = id.find('/', start);
    if (end == std::string::npos)
      end = id.size();
    auto segment = id.substr(start, end - start);
    if (!valid_segment(segment))
      return {};
    out += '/' + segment;
    start = end + 1;
  }
  return out;
}

ParsedApp parse_app(const json& in) {
  ParsedApp parsed;
  if (!in.is_object()) {
    parsed.problems.push_back({"", "an app definition must be a JSON object"});
    return parsed;
  }
  Reader r(in, "", app_list_items_max);
  auto& app = parsed.app;
  for (auto& [name, value] : in.items()) {
    static const std::set<std::string> known = {"id",
                                                "cmd",
                                                "args",
                                                "instances",
                                                "cpus",
                                                "mem",
                                                "disk",
                                                "gpus",
                                                "ports",
                                                "portDefinitions",
                                                "requirePorts",
                                                "env",
                                                "fetch",
                                                "uris",
                                                "healthChecks",
                                                "constraints",
                                                "upgradeStrategy",
                                                "backoffSeconds",
                                                "backoffFactor",
                                                "maxLaunchDelaySeconds",
                                                "unreachableStrategy",
                                                "killSelection",
                                                "labels",
                                                "role",
                                                "user",
                                                "taskKillGracePeriodSeconds"};
    if (known.count(name) || reported_fields.count(name))
      continue;
    if (unsupported_fields.count(name)) {
      if (!empty_value(value) && !marathon_default(name, value))
        r.problem("/" + pointer_segment(name), "is not supported by Tessera's apps framework");
      continue;
    }
    r.problem("/" + pointer_segment(name), "unknown field");
  }

  auto id = r.string("id");
  if (!id)
    r.problem("/id", "an app needs an id, as /group/name");
  else if (app.id = normalize_app_id(*id); app.id.empty())
    r.problem("/id", "'" + *id +
                         "' is not a path of lower-case letters, digits, '-' and '.' "
                         "(each part starting and ending with a letter or digit)");

  app.cmd = r.string("cmd");
  if (app.cmd && app.cmd->empty())
    r.problem("/cmd", "must not be empty");
  if (auto* args = r.array("args")) {
    for (size_t i = 0; i < args->size(); ++i) {
      if ((*args)[i].is_string())
        app.args.push_back((*args)[i].get<std::string>());
      else
        r.problem("/args/" + std::to_string(i), "must be a string");
    }
  }
  if (app.cmd && !app.args.empty())
    r.problem("/args", "give cmd or args, not both");
  else if (!app.cmd && app.args.empty())
    r.problem("/cmd", "an app needs cmd or args");

  app.instances =
      static_cast<uint32_t>(r.integer("instances", app.instances, 0, app_instances_max));
  app.cpus = r.number("cpus", app.cpus, 0.001, 1e6);
  app.mem = r.number("mem", app.mem, 0, 1e9);
  app.disk = r.number("disk", app.disk, 0, 1e12);
  app.gpus = static_cast<uint32_t>(r.integer("gpus", app.gpus, 0, 1024));
  read_ports(r, in, app);
  app.require_ports = r.boolean("requirePorts", app.require_ports);
  if (app.require_ports)
    for (size_t i = 0; i < app.ports.size(); ++i)
      if (app.ports[i].port == 0)
        r.problem("/requirePorts",
                  "requirePorts needs every port fixed (port " + std::to_string(i) + " is 0)");
  app.env = r.string_map("env");
  read_fetch(r, in, app);
  read_health_checks(r, app);
  read_constraints(r, app);
  read_strategies(r, app);
  app.backoff_s = r.number("backoffSeconds", app.backoff_s, 0, 86'400);
  app.backoff_factor = r.number("backoffFactor", app.backoff_factor, 1, 100);
  app.max_launch_delay_s = r.number("maxLaunchDelaySeconds", app.max_launch_delay_s, 0, 86'400);
  app.labels = r.string_map("labels");
  if (auto role = r.string("role"))
    app.role = *role;
  app.user = r.string("user");
  if (r.field("taskKillGracePeriodSeconds"))
    app.task_kill_grace_period_s = r.number("taskKillGracePeriodSeconds", 0, 0, 86'400);
  parsed.problems = r.take();
  return parsed;
}

json to_json(const AppSpec& app) {
  json out = {
      {"id", app.id},
      {"instances", app.instances},
      {"cpus", app.cpus},
      {"mem", app.mem},
      {"disk", app.disk},
      {"gpus", app.gpus},
      {"requirePorts", app.require_ports},
      {"env", app.env},
      {"labels", app.labels},
      {"backoffSeconds", app.backoff_s},
      {"backoffFactor", app.backoff_factor},
      {"maxLaunchDelaySeconds", app.max_launch_delay_s},
      {"upgradeStrategy",
       {{"minimumHealthCapacity", app.minimum_health_capacity},
        {"maximumOverCapacity", app.maximum_over_capacity},
        {"canaryInstances", app.canary_instances},
        {"progressDeadlineSeconds", app.progress_deadline_s}}},
      {"killSelection",
       app.kill_selection == KillSelection::youngest_first ? "YOUNGEST_FIRST" : "OLDEST_FIRST"}};
  if (app.cmd)
    out["cmd"] = *app.cmd;
  else
    out["args"] = app.args;
  auto ports = json::array();
  for (auto& p : app.ports) {
    json d = {{"port", p.port}, {"protocol", p.protocol}};
    if (!p.name.empty())
      d["name"] = p.name;
    if (!p.labels.empty())
      d["labels"] = p.labels;
    ports.push_back(std::move(d));
  }
  out["portDefinitions"] = std::move(ports);
  auto fetch = json::array();
  for (auto& f : app.fetch) {
    json e = {
        {"uri", f.uri}, {"executable", f.executable}, {"extract", f.extract}, {"cache", f.cache}};
    if (!f.dest_path.empty())
      e["destPath"] = f.dest_path;
    fetch.push_back(std::move(e));
  }
  out["fetch"] = std::move(fetch);
  auto checks = json::array();
  for (auto& c : app.health_checks) {
    json h = {
        {"protocol", c.protocol},          {"gracePeriodSeconds", c.grace_period_s},
        {"intervalSeconds", c.interval_s}, {"timeoutSeconds", c.timeout_s},
        {"delaySeconds", c.delay_s},       {"maxConsecutiveFailures", c.max_consecutive_failures}};
    if (c.protocol == "COMMAND") {
      h["command"] = {{"value", c.command}};
    } else {
      if (c.port)
        h["port"] = *c.port;
      else
        h["portIndex"] = c.port_index;
      if (c.protocol.find("HTTP") != std::string::npos) {
        h["path"] = c.path;
        h["ignoreHttp1xx"] = c.ignore_http1xx;
      }
    }
    checks.push_back(std::move(h));
  }
  out["healthChecks"] = std::move(checks);
  auto constraints = json::array();
  for (auto& c : app.constraints) {
    json e = {c.field, to_string(c.op)};
    if (!c.value.empty())
      e.push_back(c.value);
    constraints.push_back(std::move(e));
  }
  out["constraints"] = std::move(constraints);
  if (app.unreachable.enabled)
    out["unreachableStrategy"] = {{"inactiveAfterSeconds", app.unreachable.inactive_after_s},
                                  {"expungeAfterSeconds", app.unreachable.expunge_after_s}};
  else
    out["unreachableStrategy"] = "disabled";
  if (!app.role.empty())
    out["role"] = app.role;
  if (app.user)
    out["user"] = *app.user;
  if (app.task_kill_grace_period_s)
    out["taskKillGracePeriodSeconds"] = *app.task_kill_grace_period_s;
  return out;
}

}  // namespace tessera::apps
