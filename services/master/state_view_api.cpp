// The operator API's calls (POST /api/v1, after Mesos's v1 operator API),
// served by the state view: reads from its copy, writes forwarded to the
// master as OperatorCalls, and SUBSCRIBE streams.

#include "services/master/state_view.hpp"

#include "runtime/log.hpp"
#include "services/http/recordio.hpp"
#include "services/master/view_json.hpp"

#include <atomic>
#include <cmath>

namespace tessera {

namespace {

using json = nlohmann::json;

http::Response ok(const std::string& type, const std::string& key, const json& body) {
  return http::json_response(200, json{{"type", type}, {key, body}}.dump());
}

// Lower-case key of a call type: GET_TASKS -> get_tasks.
std::string key_of(std::string type) {
  for (auto& c : type)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

// A string field of obj, or a Mesos-style {"value": "..."} object.
std::string id_field(const json& obj, const char* name) {
  if (!obj.is_object() || !obj.contains(name))
    return {};
  const auto& v = obj[name];
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object() && v.contains("value") && v["value"].is_string())
    return v["value"].get<std::string>();
  throw std::invalid_argument(std::string("'") + name + "' must be a string or {\"value\": ...}");
}

std::set<std::string> string_set(const json& obj, const char* name) {
  std::set<std::string> out;
  if (!obj.is_object() || !obj.contains(name))
    return out;
  const auto& v = obj[name];
  if (v.is_string()) {
    out.insert(v.get<std::string>());
    return out;
  }
  if (!v.is_array())
    throw std::invalid_argument(std::string("'") + name + "' must be a list of strings");
  for (auto& item : v) {
    if (item.is_string())
      out.insert(item.get<std::string>());
    else if (item.is_object() && item.contains("value") && item["value"].is_string())
      out.insert(item["value"].get<std::string>());
    else
      throw std::invalid_argument(std::string("'") + name + "' must be a list of strings");
  }
  return out;
}

// A non-negative number field, or fallback when absent.
double number_field(const json& obj, const char* name, double fallback) {
  if (!obj.is_object() || !obj.contains(name))
    return fallback;
  const auto& v = obj[name];
  if (!v.is_number() || v.get<double>() < 0 || !std::isfinite(v.get<double>()))
    throw std::invalid_argument(std::string("'") + name + "' must be a number >= 0");
  return v.get<double>();
}

// Mesos resources JSON ([{"name","type","scalar":{"value"}}] or a
// {"cpus": 1, "mem": 128} object) to Resources; scalars only.
expected<Resources> scalar_resources(const json& in) {
  Resources out;
  auto add = [&](const std::string& name, const json& v) -> caf::error {
    if (!v.is_number())
      return make_error(Errc::invalid_argument, "'" + name + "' must be a number");
    auto value = v.get<double>();
    if (!(value >= 0) || !std::isfinite(value))
      return make_error(Errc::invalid_argument, "'" + name + "' must be a number >= 0");
    if (value > 0)
      out += Resources::scalar(name, value);
    return {};
  };
  if (in.is_object()) {
    for (auto& [name, v] : in.items())
      if (auto err = add(name, v))
        return err;
    return out;
  }
  if (!in.is_array())
    return make_error(Errc::invalid_argument, "resources must be a list or an object");
  for (auto& r : in) {
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      return make_error(Errc::invalid_argument, "each resource needs a name");
    if (!r.contains("scalar") || !r["scalar"].is_object() || !r["scalar"].contains("value"))
      return make_error(Errc::invalid_argument,
                        "resource '" + r["name"].get<std::string>() + "' must be a scalar");
    if (auto err = add(r["name"].get<std::string>(), r["scalar"]["value"]))
      return err;
  }
  return out;
}

const std::set<std::string> read_calls = {"GET_HEALTH",
                                          "GET_VERSION",
                                          "GET_FLAGS",
                                          "GET_METRICS",
                                          "GET_STATE",
                                          "GET_AGENTS",
                                          "GET_FRAMEWORKS",
                                          "GET_TASKS",
                                          "GET_ROLES",
                                          "GET_EXECUTORS",
                                          "GET_MAINTENANCE_STATUS"};
const std::set<std::string> write_calls = {
    "UPDATE_QUOTA",       "UPDATE_WEIGHTS",   "TEARDOWN",         "KILL",
    "DRAIN_AGENT",        "DEACTIVATE_AGENT", "REACTIVATE_AGENT", "RESERVE_RESOURCES",
    "UNRESERVE_RESOURCES"};

}  // namespace

void StateView::api_call(const json& call, const http::Responder& responder,
                         const ViewCaller& caller) {
  auto type = call.value("type", std::string());
  try {
    if (!ready_ && type != "GET_HEALTH" && type != "GET_VERSION" && type != "GET_FLAGS" &&
        type != "GET_METRICS" && redirect_to_leader(responder))
      return;
    if (auto key = key_of(type); call.contains(key) && !call[key].is_object()) {
      ++bad_calls_;
      return responder.respond(
          http::error_response(400, "bad " + type + " call: '" + key + "' must be an object"));
    }
    if (type == "SUBSCRIBE")
      return subscribe_client(call, responder, caller);
    if (read_calls.count(type))
      return answer_read(type, call, responder, caller);
    if (write_calls.count(type))
      return forward_write(type, call, responder, caller);
    ++bad_calls_;
    responder.respond(http::error_response(400, "unknown call type '" + type + "'"));
  } catch (const std::exception& e) {
    ++bad_calls_;
    responder.respond(http::error_response(400, "bad " + type + " call: " + e.what()));
  }
}

StateView::Filter StateView::access_filter(const ViewCaller& caller) {
  Filter f;
  if (!caller.guard || !caller.guard->authorizer()->enabled())
    return f;
  auto authorizer = caller.guard->authorizer();
  const auto& p = caller.principal;
  using security::Action;
  for (auto [action, predicate] : {std::pair{Action::view_frameworks, &f.may_view_framework_role},
                                   std::pair{Action::view_tasks, &f.may_view_task_role}})
    if (!authorizer->permits_all(p, action))
      *predicate = [authorizer, p, action = action](const std::string& role) {
        return authorizer->permits(p, action, role);
      };
  f.may_view_cluster = authorizer->permits(p, Action::view_cluster, std::nullopt);
  return f;
}

bool StateView::allowed(const ViewCaller& caller, security::Action action, security::Object object,
                        const http::Responder& responder) {
  if (!caller.guard)
    return true;
  auto d = caller.guard->check(caller.principal, action, object);
  if (!d)
    responder.respond(security::HttpGuard::forbidden(d.reason));
  return d.allowed;
}

void StateView::answer_read(const std::string& type, const json& call,
                            const http::Responder& responder, const ViewCaller& caller) {
  using security::Action;
  if (type == "GET_HEALTH")
    return responder.respond(ok(type, "get_health", {{"healthy", true}}));
  if (type == "GET_VERSION")
    return responder.respond(
        ok(type, "get_version", {{"version_info", {{"version", config_.version}}}}));
  bool cluster_read = type == "GET_FLAGS" || type == "GET_METRICS" || type == "GET_AGENTS" ||
                      type == "GET_ROLES" || type == "GET_MAINTENANCE_STATUS";
  if (cluster_read && !allowed(caller, Action::view_cluster, std::nullopt, responder))
    return;
  if (type == "GET_FLAGS") {
    auto flags = json::array();
    for (auto& [name, value] : config_.flags)
      flags.push_back({{"name", name}, {"value", value}});
    return responder.respond(ok(type, "get_flags", {{"flags", flags}}));
  }
  if (type == "GET_METRICS")
    return metrics(false, responder, true);
  if (!ready_)
    return responder.respond(http::error_response(503, not_leading_message()));
  auto args = call.value(key_of(type), json::object());
  auto access = access_filter(caller);
  const Filter* filter = access.empty() ? nullptr : &access;
  if (type == "GET_STATE") {
    if (filter)  // rendered for this caller alone
      return responder.respond(http::json_response(
          200, "{\"type\":\"GET_STATE\",\"get_state\":" + state_body(filter) + "}"));
    http::Response r;
    r.shared_body = state_response();
    return responder.respond(std::move(r));
  }
  if (type == "GET_TASKS") {
    std::string error;
    auto body = get_tasks_json(args, error, filter);
    if (!error.empty()) {
      ++bad_calls_;
      return responder.respond(http::error_response(400, error));
    }
    return responder.respond(
        http::json_response(200, "{\"type\":\"GET_TASKS\",\"get_tasks\":" + body + "}"));
  }
  if (type == "GET_AGENTS")
    return responder.respond(
        http::json_response(200, "{\"type\":\"GET_AGENTS\",\"get_agents\":" + agents_text() + "}"));
  if (type == "GET_FRAMEWORKS")
    return responder.respond(ok(type, "get_frameworks", get_frameworks(filter)));
  if (type == "GET_ROLES")
    return responder.respond(ok(type, "get_roles", get_roles()));
  if (type == "GET_EXECUTORS") {
    std::string body = "{\"type\":\"GET_EXECUTORS\",\"get_executors\":";
    append_executors(body, filter);
    return responder.respond(http::json_response(200, body + "}"));
  }
  return responder.respond(ok(type, "get_maintenance_status", get_maintenance_status()));
}

// -- reads --------------------------------------------------------------------

std::string StateView::get_tasks_json(const json& args, std::string& error, const Filter* access) {
  std::string framework, agent, state;
  size_t offset = 0, limit = SIZE_MAX;
  try {
    framework = id_field(args, "framework_id");
    agent = id_field(args, "agent_id");
    if (args.contains("state")) {
      if (!args["state"].is_string())
        throw std::invalid_argument("'state' must be a string such as TASK_RUNNING");
      state = args["state"].get<std::string>();
      static const std::set<std::string> states = {
          "TASK_STAGING",     "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED",
          "TASK_FAILED",      "TASK_KILLED",   "TASK_ERROR",   "TASK_LOST",    "TASK_DROPPED",
          "TASK_UNREACHABLE", "TASK_GONE",     "TASK_UNKNOWN"};
      if (!states.count(state))
        throw std::invalid_argument("unknown task state '" + state + "'");
    }
    offset = static_cast<size_t>(std::min(number_field(args, "offset", 0), 1e15));
    if (args.contains("limit"))
      limit = static_cast<size_t>(std::min(number_field(args, "limit", 0), 1e15));
  } catch (const std::exception& e) {
    error = std::string("bad GET_TASKS call: ") + e.what();
    return {};
  }
  auto passes = [&](const TaskEntry& t) {
    return (framework.empty() || t.framework == framework) && (agent.empty() || t.agent == agent) &&
           (state.empty() || to_string(t.state) == state) && (!access || access->passes_task(t));
  };
  // One page over the live tasks then the completed ones, in a stable
  // order (framework, task; completed in the order they ended).
  size_t matched = 0, shown = 0;
  std::string live = "[", done = "[";
  auto take = [&](const TaskEntry& t, std::string& out) {
    if (!passes(t))
      return;
    if (matched++ < offset || shown >= limit)
      return;
    if (out.size() > 1)
      out += ',';
    out += t.json;
    ++shown;
  };
  for (auto& [key, t] : tasks_)
    take(t, live);
  for (auto& t : completed_)
    take(t, done);
  return "{\"tasks\":" + live + "],\"completed_tasks\":" + done +
         "],\"total\":" + std::to_string(matched) + "}";
}

void StateView::append_tasks(std::string& out, const Filter* filter) const {
  size_t bytes = 64;
  for (auto& [key, t] : tasks_)
    bytes += t.json.size() + 1;
  for (auto& t : completed_)
    bytes += t.json.size() + 1;
  out.reserve(out.size() + bytes + agents_.size() * 1024);
  auto list = [&](auto& tasks) {
    out += '[';
    bool first = true;
    for (auto& entry : tasks) {
      const TaskEntry& t = [&]() -> const TaskEntry& {
        if constexpr (std::is_same_v<std::decay_t<decltype(entry)>, TaskEntry>)
          return entry;
        else
          return entry.second;
      }();
      if (filter && !filter->passes_task(t))
        continue;
      if (!first)
        out += ',';
      first = false;
      out += t.json;
    }
    out += ']';
  };
  out += "{\"tasks\":";
  list(tasks_);
  out += ",\"completed_tasks\":";
  list(completed_);
  out += '}';
}

std::string StateView::state_body(const Filter* filter) {
  std::string out;
  append_state(out, filter);
  return out;
}

StateView::TaskBucket& StateView::bucket_of(const TaskKey& key) {
  auto h = std::hash<std::string>{}(key.first) * 31 + std::hash<std::string>{}(key.second);
  return task_buckets_[h % task_buckets_.size()];
}

void StateView::append_live_tasks(std::string& out) {
  bool first = true;
  for (auto& b : task_buckets_) {
    if (b.dirty) {
      b.text.clear();
      for (auto& key : b.keys) {
        auto it = tasks_.find(key);
        if (it == tasks_.end())
          continue;  // cannot be: complete() takes it out of its bucket
        if (!b.text.empty())
          b.text += ',';
        b.text += it->second.json;
      }
      if (b.text.capacity() > 2 * b.text.size() + 4096)
        b.text.shrink_to_fit();
      b.dirty = false;
    }
    if (b.text.empty())
      continue;
    if (!first)
      out += ',';
    first = false;
    out += b.text;
  }
}

void StateView::append_state(std::string& out, const Filter* filter) {
  out += "{\"get_tasks\":";
  if (filter) {
    append_tasks(out, filter);
  } else {
    out += "{\"tasks\":[";
    append_live_tasks(out);
    out += "],\"completed_tasks\":[";
    bool first = true;
    for (auto& t : completed_) {
      if (!first)
        out += ',';
      first = false;
      out += t.json;
    }
    out += "]}";
  }
  out += ",\"get_executors\":";
  append_executors(out, filter);
  out += ",\"get_frameworks\":";
  out += get_frameworks(filter).dump();
  out += ",\"get_agents\":";
  if (filter && !filter->may_view_cluster)
    out += "{\"agents\":[]}";
  else
    append_agents(out);
  out += '}';
}

std::shared_ptr<const std::string> StateView::state_response() {
  if (state_rendered_ && state_generation_ == generation_) {
    ++state_reuses_;
    return state_rendered_;
  }
  // Only this actor hands the buffer out, so a count of one means no
  // response (on the I/O thread) still reads it.
  if (!state_rendered_ || state_rendered_.use_count() > 1)
    state_rendered_ = std::make_shared<std::string>();
  else  // the last reader's release (a relaxed count) happens before the rewrite
    std::atomic_thread_fence(std::memory_order_acquire);
  auto& out = *state_rendered_;
  out.clear();
  out.reserve(state_bytes_last_ + state_bytes_last_ / 8);  // no regrowth on a fresh buffer
  out += "{\"type\":\"GET_STATE\",\"get_state\":";
  append_state(out, nullptr);
  out += '}';
  if (out.capacity() > 2 * out.size() + (size_t{1} << 20))
    out.shrink_to_fit();  // the cluster shrank: give back what is not needed
  state_generation_ = generation_;
  state_bytes_last_ = out.size();
  ++state_renders_;
  return state_rendered_;
}

std::string StateView::state_json() {
  return state_body(nullptr);
}

std::string StateView::agents_text() const {
  std::string out;
  append_agents(out);
  return out;
}

void StateView::append_agents(std::string& out) const {
  out += "{\"agents\":[";
  bool first = true;
  for (auto& [id, a] : agents_) {
    if (!first)
      out += ',';
    first = false;
    append_agent(out, a);
  }
  out += "]}";
}

json StateView::get_frameworks(const Filter* filter) const {
  auto frameworks = json::array();
  for (auto& [id, f] : frameworks_)
    if (!filter || filter->passes_framework(f))
      frameworks.push_back(framework_json(f));
  if (!filter || !filter->may_view_framework_role)
    return {{"frameworks", frameworks}, {"completed_frameworks", completed_frameworks_}};
  auto completed = json::array();
  for (auto& c : completed_frameworks_)
    if (c.contains("framework_info") &&
        filter->passes_framework_roles(c["framework_info"].value("roles", json::array())))
      completed.push_back(c);
  return {{"frameworks", frameworks}, {"completed_frameworks", completed}};
}

json StateView::get_roles() const {
  struct Books {
    Resources allocated, offered, reserved;
    std::set<std::string> frameworks;
  };
  std::map<std::string, Books> books;
  for (auto& [id, role] : roles_)
    books[id];
  for (auto& [id, a] : agents_)
    for (auto& role : a.total.roles())
      books[role].reserved += a.total.reserved(role);
  for (auto& [id, f] : frameworks_)
    for (auto& r : f.roles)
      books[r].frameworks.insert(id);
  for (auto& [key, t] : tasks_)
    if (!is_terminal(t.state))
      books[t.role].allocated += t.resources;
  for (auto& [id, o] : offers_)
    books[o.role].offered += o.resources;
  auto roles = json::array();
  for (auto& [name, b] : books) {
    auto it = roles_.find(name);
    double weight = it != roles_.end() ? it->second.weight : 1.0;
    auto frameworks = json::array();
    for (auto& f : b.frameworks)
      frameworks.push_back({{"value", f}});
    json role = {{"name", name},
                 {"weight", weight},
                 {"frameworks", frameworks},
                 {"resources", resources_json(b.allocated + b.offered)},
                 {"allocated", resources_json(b.allocated)},
                 {"offered", resources_json(b.offered)},
                 {"reserved", resources_json(b.reserved)}};
    if (it != roles_.end() && !it->second.quota.empty())
      role["quota"] = {{"role", name},
                       {"limit", resources_json(it->second.quota)},
                       {"consumed", resources_json(b.allocated)}};
    roles.push_back(std::move(role));
  }
  return {{"roles", roles}};
}

json StateView::get_maintenance_status() const {
  auto draining = json::array(), down = json::array(), agents = json::array();
  for (auto& [id, a] : agents_) {
    if (!a.deactivated)
      continue;
    json machine = {{"id", {{"hostname", a.hostname}}}, {"agent_id", {{"value", id}}}};
    if (a.drain == wire::DrainState::NONE)
      down.push_back(machine);
    else
      draining.push_back(machine);
    agents.push_back({{"agent_id", {{"value", id}}},
                      {"hostname", a.hostname},
                      {"deactivated", true},
                      {"drain_info", {{"state", drain_state_name(a.drain)}}}});
  }
  return {{"status", {{"draining_machines", draining}, {"down_machines", down}}},
          {"agents", agents}};
}

// -- writes -------------------------------------------------------------------

void StateView::forward_write(const std::string& type, const json& call,
                              const http::Responder& responder, const ViewCaller& caller) {
  using security::Action;
  auto args = call.value(key_of(type), json::object());
  auto refuse = [&](const std::string& why) {
    ++bad_calls_;
    responder.respond(http::error_response(400, "bad " + type + " call: " + why));
  };
  std::optional<Outgoing> out;
  if (type == "UPDATE_QUOTA") {
    // Mesos: {"quota_configs": [{"role": r, "limits": {"cpus": {"value": 1}}}]};
    // also {"role": r, "limit": {"cpus": 1}} or a resource list.
    const json* config = &args;
    if (args.contains("quota_configs")) {
      if (!args["quota_configs"].is_array() || args["quota_configs"].size() != 1)
        return refuse("give exactly one quota config");
      config = &args["quota_configs"][0];
    }
    auto role = config->value("role", std::string());
    if (role.empty())
      return refuse("a role is needed");
    json limit = config->contains("limits")  ? (*config)["limits"]
                 : config->contains("limit") ? (*config)["limit"]
                                             : json::object();
    if (limit.is_object())  // {"cpus": {"value": 1}} or {"cpus": 1}
      for (auto& [name, v] : limit.items())
        if (v.is_object() && v.contains("value"))
          v = v["value"];
    auto resources = scalar_resources(limit);
    if (!resources)
      return refuse(what(resources.error()));
    if (!allowed(caller, Action::update_quotas, role, responder))
      return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
      auto q = b.initUpdateQuota();
      q.setRole(role);
      to_wire(*resources, q.initLimit(wire_size(*resources)));
    });
  } else if (type == "UPDATE_WEIGHTS") {
    // Mesos: {"weight_infos": [{"role": r, "weight": w}]}
    if (!args.contains("weight_infos") || !args["weight_infos"].is_array() ||
        args["weight_infos"].empty())
      return refuse("'weight_infos' must be a non-empty list of {role, weight}");
    for (auto& w : args["weight_infos"])
      if (!w.is_object() || !w.contains("role") || !w["role"].is_string() ||
          !w.contains("weight") || !w["weight"].is_number())
        return refuse("each weight info needs a role (string) and a weight (number)");
    for (auto& w : args["weight_infos"])
      if (!allowed(caller, Action::update_weights, w["role"].get<std::string>(), responder))
        return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
      auto list = b.initUpdateWeights(static_cast<unsigned>(args["weight_infos"].size()));
      unsigned i = 0;
      for (auto& w : args["weight_infos"]) {
        list[i].setRole(w["role"].get<std::string>());
        list[i].setWeight(w["weight"].get<double>());
        ++i;
      }
    });
  } else if (type == "TEARDOWN") {
    auto id = id_field(args, "framework_id");
    if (id.empty())
      return refuse("'framework_id' is needed");
    // Unknown here: only a right over every framework's principal allows it.
    auto known = frameworks_.find(id);
    security::Object principal = std::nullopt;
    if (known != frameworks_.end())
      principal = known->second.principal;
    if (!allowed(caller, Action::teardown_frameworks, principal, responder))
      return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) { b.setTeardown(id); });
  } else if (type == "KILL") {
    // Ours (Mesos kills through the scheduler API): {task_id, framework_id?}.
    auto task = id_field(args, "task_id");
    auto framework = id_field(args, "framework_id");
    if (task.empty())
      return refuse("'task_id' is needed");
    if (framework.empty()) {
      std::vector<std::string> owners;
      for (auto& [key, t] : tasks_)
        if (key.second == task)
          owners.push_back(key.first);
      if (owners.size() != 1)
        return responder.respond(http::error_response(
            owners.empty() ? 404 : 400,
            owners.empty() ? "no live task " + task
                           : "task id " + task + " is in several frameworks: give framework_id"));
      framework = owners.front();
    }
    auto grace_s = number_field(args, "grace_period_seconds", 0);
    auto task_entry = tasks_.find({framework, task});
    security::Object role = std::nullopt;  // unknown here: every role's right
    if (task_entry != tasks_.end())
      role = task_entry->second.role;
    if (!allowed(caller, Action::kill_tasks, role, responder))
      return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
      auto k = b.initKillTask();
      k.setFrameworkId(framework);
      k.setTaskId(task);
      k.setGracePeriodNs(static_cast<int64_t>(grace_s * 1e9));
    });
  } else if (type == "RESERVE_RESOURCES" || type == "UNRESERVE_RESOURCES") {
    // Mesos: {"agent_id": {"value": A}, "resources": [{"name": "cpus", "type": "SCALAR",
    // "scalar": {"value": 1}, "reservations": [{"type": "DYNAMIC", "role": R}]}]};
    // the resources may also be the text form "cpus(R):1;mem(R):512".
    auto agent = id_field(args, "agent_id");
    if (agent.empty())
      return refuse("'agent_id' is needed");
    if (!args.contains("resources"))
      return refuse("'resources' is needed");
    auto resources = resources_from_json(args["resources"]);
    if (!resources)
      return refuse(what(resources.error()));
    auto action =
        type == "RESERVE_RESOURCES" ? Action::reserve_resources : Action::unreserve_resources;
    auto roles = resources->roles();
    if (roles.empty() && !allowed(caller, action, std::nullopt, responder))
      return;
    for (auto& role : roles)
      if (!allowed(caller, action, role, responder))
        return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
      auto r = type == "RESERVE_RESOURCES" ? b.initReserveResources() : b.initUnreserveResources();
      r.setAgentId(agent);
      to_wire(*resources, r.initResources(wire_size(*resources)));
    });
  } else {
    auto agent = id_field(args, "agent_id");
    if (agent.empty())
      return refuse("'agent_id' is needed");
    double grace_s = 0;
    if (args.contains("max_grace_period"))  // Mesos: {"nanoseconds": N}
      grace_s = args["max_grace_period"].is_object()
                    ? number_field(args["max_grace_period"], "nanoseconds", 0) / 1e9
                    : number_field(args, "max_grace_period", 0);
    auto action = type == "DRAIN_AGENT" ? Action::drain_agents : Action::deactivate_agents;
    if (!allowed(caller, action, agent, responder))
      return;
    out = build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
      if (type == "DEACTIVATE_AGENT")
        b.setDeactivateAgent(agent);
      else if (type == "REACTIVATE_AGENT")
        b.setReactivateAgent(agent);
      else {
        auto d = b.initDrainAgent();
        d.setAgentId(agent);
        d.setMaxGracePeriodNs(static_cast<int64_t>(grace_s * 1e9));
      }
    });
  }
  request<wire::OperatorResponse>(
      config_.master, *out, config_.master_call_timeout,
      [responder, type](const Received<wire::OperatorResponse>& r) {
        auto error = str(r.body().getError());
        if (error.empty())
          return responder.respond(http::json_response(200, "{}"));
        int status = error.rfind("no ", 0) == 0 ? 404 : 400;
        responder.respond(http::error_response(status, error));
      },
      [this, responder](const caf::error& err) {
        responder.respond(http::error_response(
            503, "the master did not answer: " + what(err) + "; " + not_leading_message()));
      });
}

bool StateView::redirect_to_leader(const http::Responder& responder) {
  auto leader = config_.leader ? config_.leader() : StateViewConfig::Leader{};
  if (leader.http.empty())
    return false;
  // 307 keeps the method and body: a POST is sent again, to the leader.
  auto r = http::error_response(307, "this master is not leading; " + leader.http + " leads");
  r.headers.push_back({"Location", config_.http_scheme + "://" + leader.http + "/api/v1"});
  responder.respond(std::move(r));
  return true;
}

std::string StateView::not_leading_message() const {
  auto leader = config_.leader ? config_.leader() : StateViewConfig::Leader{};
  if (!leader.address.empty())
    return "this master is not leading; " + leader.address + " leads";
  return "this master has no state yet (recovering, or not leading)";
}

// -- SUBSCRIBE ------------------------------------------------------------------

bool StateView::Filter::passes_task(const TaskEntry& t) const {
  return (frameworks.empty() || frameworks.count(t.framework)) &&
         (roles.empty() || roles.count(t.role)) &&
         (!may_view_task_role || may_view_task_role(t.role));
}

bool StateView::Filter::passes_framework_roles(const json& list) const {
  if (!may_view_framework_role)
    return true;
  if (!list.is_array() || list.empty())
    return may_view_framework_role("*");
  for (auto& r : list)
    if (r.is_string() && may_view_framework_role(r.get<std::string>()))
      return true;
  return false;
}

bool StateView::Filter::passes_framework(const FrameworkEntry& f) const {
  if (!frameworks.empty() && !frameworks.count(f.id))
    return false;
  if (may_view_framework_role) {
    bool any = f.roles.empty() && may_view_framework_role("*");
    for (auto& r : f.roles)
      any = any || may_view_framework_role(r);
    if (!any)
      return false;
  }
  if (roles.empty())
    return true;
  for (auto& r : f.roles)
    if (roles.count(r))
      return true;
  return false;
}

void StateView::subscribe_client(const json& call, const http::Responder& responder,
                                 const ViewCaller& caller) {
  if (!ready_)
    return responder.respond(http::error_response(503, not_leading_message()));
  if (subscribers_.size() >= config_.subscribers_max)
    return responder.respond(http::error_response(
        503, "too many subscribers (" + std::to_string(subscribers_.size()) + ")"));
  auto args = call.value("subscribe", json::object());
  Filter filter = access_filter(caller);
  filter.frameworks = string_set(args, "framework_ids");
  filter.roles = string_set(args, "roles");
  auto stream = responder.open_stream(200, "application/recordio",
                                      {{"Record-Io-Content-Type", "application/json"}});
  if (!stream)
    return;
  const Filter* f = filter.empty() ? nullptr : &filter;
  std::string first =
      "{\"type\":\"SUBSCRIBED\",\"sequence\":0,\"subscribed\":{\"get_state\":" + state_body(f) +
      ",\"heartbeat_interval_seconds\":" +
      std::to_string(std::chrono::duration<double>(config_.heartbeat_interval).count()) + "}}";
  if (!stream->write(http::recordio_frame(first)))
    return;
  subscribers_.push_back(Subscriber{stream, std::move(filter), 1});
}

void StateView::publish(const std::string& type, const json& body, const TaskEntry* task,
                        const FrameworkEntry* framework) {
  if (subscribers_.empty())
    return;
  json event = body;
  event["type"] = type;
  // Rendered once; each stream's own sequence number goes in front.
  auto rest = event.dump().substr(1);
  std::erase_if(subscribers_, [&](Subscriber& s) {
    if (s.stream->closed())
      return true;
    if (task && !s.filter.passes_task(*task))
      return false;
    if (!task && framework && !s.filter.passes_framework(*framework))
      return false;
    if (!task && !framework && !s.filter.may_view_cluster)
      return false;  // agents and roles
    auto text = "{\"sequence\":" + std::to_string(s.sequence++) + "," + rest;
    return !s.stream->write(http::recordio_frame(text));
  });
}

void StateView::heartbeat() {
  std::erase_if(subscribers_, [](Subscriber& s) {
    if (s.stream->closed())
      return true;
    json event = {{"type", "HEARTBEAT"}, {"sequence", s.sequence++}};
    return !s.stream->write(http::recordio_frame(event.dump()));
  });
  after(config_.heartbeat_interval, [this] { heartbeat(); });
}

void StateView::close_streams() {
  for (auto& s : subscribers_)
    s.stream->close();
  subscribers_.clear();
}

std::vector<std::string> operator_call_types() {
  std::vector<std::string> out(read_calls.begin(), read_calls.end());
  out.insert(out.end(), write_calls.begin(), write_calls.end());
  out.push_back("SUBSCRIBE");
  return out;
}

}  // namespace tessera
