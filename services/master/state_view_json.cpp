// How the state view renders the cluster as JSON: the shapes of Mesos's v1
// operator API (master.proto, as JSON), so its tools read them. A task is
// rendered once per change and kept as text; GET_STATE and GET_TASKS splice
// those texts, so a read of 100,000 tasks formats none of them.

#include "services/master/state_view.hpp"

#include "services/common/json_forms.hpp"
#include "services/master/view_json.hpp"

#include <fmt/format.h>

#include <iterator>
#include <set>
#include <string_view>
#include <tuple>

namespace tessera {

const char* agent_state_name(wire::AgentViewState s) {
  switch (s) {
    case wire::AgentViewState::REGISTERED:
      return "REGISTERED";
    case wire::AgentViewState::DISCONNECTED:
      return "DISCONNECTED";
    case wire::AgentViewState::UNREACHABLE:
      return "UNREACHABLE";
    case wire::AgentViewState::ADMITTING:
      return "ADMITTING";
    case wire::AgentViewState::REMOVING:
      return "REMOVING";
  }
  return "UNKNOWN";
}

const char* drain_state_name(wire::DrainState s) {
  switch (s) {
    case wire::DrainState::NONE:
      return "NONE";
    case wire::DrainState::DRAINING:
      return "DRAINING";
    case wire::DrainState::DRAINED:
      return "DRAINED";
  }
  return "UNKNOWN";
}

nlohmann::json StateView::status_json(const TaskEntry& t, const Status& s) const {
  // The task's agent and executor are the task's own (not repeated here).
  nlohmann::json out = {{"task_id", {{"value", t.id}}},
                        {"state", to_string(s.state)},
                        {"timestamp", double(s.timestamp_ns) / 1e9}};
  if (!s.reason.empty())
    out["reason"] = s.reason;
  if (!s.message.empty())
    out["message"] = s.message;
  if (s.healthy >= 0)
    out["healthy"] = s.healthy > 0;
  if (s.exit_code >= 0)
    out["exit_code"] = s.exit_code;
  if (s.term_signal > 0)
    out["term_signal"] = s.term_signal;
  return out;
}

void StateView::render(TaskEntry& t) const {
  auto statuses = nlohmann::json::array();
  for (auto& s : t.statuses)
    statuses.push_back(status_json(t, s));
  nlohmann::json out = {{"name", t.name},
                        {"task_id", {{"value", t.id}}},
                        {"framework_id", {{"value", t.framework}}},
                        {"agent_id", {{"value", t.agent}}},
                        {"state", to_string(t.state)},
                        {"resources", resources_json(t.resources)},
                        {"role", t.role},
                        {"statuses", std::move(statuses)}};
  if (!t.executor.empty())
    out["executor_id"] = {{"value", t.executor}};
  t.json = out.dump();
}

void StateView::render(AgentEntry& a) const {
  // Text, not a DOM: GET_STATE writes 10,000s of these, and a DOM per agent
  // costs more than the whole text. Everything but what offers and tasks
  // change (allocated and offered resources, appended per read) is kept.
  auto host_port = a.address.substr(a.address.find('@') + 1);
  auto colon = host_port.rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(host_port.c_str() + colon + 1);
  bool active = a.state == wire::AgentViewState::REGISTERED && !a.deactivated;
  auto& out = a.json_head;
  out.clear();
  out += "{\"active\":";
  out += active ? "true" : "false";
  out += ",\"agent_info\":{\"attributes\":";
  out += a.attributes.empty() ? "[]" : attributes_json(a.attributes).dump();
  out += ",\"hostname\":";
  append_string(out, a.hostname);
  out += ",\"id\":{\"value\":";
  append_string(out, a.id);
  out += "},\"port\":" + std::to_string(port) + ",\"resources\":";
  append_resources(out, a.total);
  out += "},\"deactivated\":";
  out += a.deactivated ? "true" : "false";
  out += ",\"dynamic_reservations\":";
  append_resources(out, a.reserved_dynamic);
  out += ",\"drain_info\":{\"state\":\"";
  out += drain_state_name(a.drain);
  out += "\"},\"http_address\":";
  append_string(out, a.http_address);
  out += ",\"pid\":";
  append_string(out, a.address);
  out += ",\"registered_time\":{\"nanoseconds\":" + std::to_string(a.registered_at_ns) +
         "},\"state\":\"";
  out += agent_state_name(a.state);
  out += "\",\"total_resources\":";
  append_resources(out, a.total);
}

void StateView::append_agent(std::string& out, const AgentEntry& a) const {
  out += a.json_head;
  out += ",\"allocated_resources\":";
  append_resources(out, a.used);
  out += ",\"offered_resources\":";
  append_resources(out, a.offered);
  out += '}';
}

void StateView::append_executors(std::string& out, const Filter* filter) const {
  out += "{\"executors\":[";
  bool first = true;
  for (auto& [key, live] : executors_) {
    auto& [agent, framework, executor] = key;
    if (filter && filter->may_view_framework_role) {
      auto f = frameworks_.find(framework);
      if (f == frameworks_.end() || !filter->passes_framework(f->second))
        continue;
    }
    if (!first)
      out += ',';
    first = false;
    out += "{\"agent_id\":{\"value\":";
    append_string(out, agent);
    out += "},\"executor_info\":{\"executor_id\":{\"value\":";
    append_string(out, executor);
    out += "},\"framework_id\":{\"value\":";
    append_string(out, framework);
    out += "}}}";
  }
  out += "]}";
}

nlohmann::json StateView::agent_json(const AgentEntry& a) const {
  auto host_port = a.address.substr(a.address.find('@') + 1);
  auto colon = host_port.rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(host_port.c_str() + colon + 1);
  return {{"agent_info",
           {{"id", {{"value", a.id}}},
            {"hostname", a.hostname},
            {"port", port},
            {"resources", resources_json(a.total)},
            {"attributes", attributes_json(a.attributes)}}},
          {"pid", a.address},
          {"http_address", a.http_address},
          {"active", a.state == wire::AgentViewState::REGISTERED && !a.deactivated},
          {"deactivated", a.deactivated},
          {"dynamic_reservations", resources_json(a.reserved_dynamic)},
          {"state", agent_state_name(a.state)},
          {"drain_info", {{"state", drain_state_name(a.drain)}}},
          {"registered_time", {{"nanoseconds", a.registered_at_ns}}},
          {"total_resources", resources_json(a.total)},
          {"allocated_resources", resources_json(a.used)},
          {"offered_resources", resources_json(a.offered)}};
}

nlohmann::json StateView::role_json(const std::string& name, const RoleEntry& r) const {
  nlohmann::json out = {{"name", name}, {"weight", r.weight}};
  if (!r.quota.empty())
    out["quota"] = {{"role", name}, {"limit", resources_json(r.quota)}};
  return out;
}

nlohmann::json StateView::framework_json(const FrameworkEntry& f) const {
  auto caps = nlohmann::json::array();
  for (auto& c : f.capabilities)
    caps.push_back({{"type", c}});
  return {{"framework_info",
           {{"id", {{"value", f.id}}},
            {"name", f.name},
            {"user", f.user},
            {"principal", f.principal},
            {"roles", f.roles},
            {"failover_timeout", f.failover_timeout_s},
            {"capabilities", caps}}},
          {"active", f.connected},
          {"connected", f.connected},
          {"recovered", f.address.empty()},
          {"pid", f.address},
          {"suppressed_roles", f.suppressed_roles},
          {"registered_time", {{"nanoseconds", f.registered_at_ns}}},
          {"allocated_resources", resources_json(f.used)},
          {"offered_resources", resources_json(f.offered)}};
}

}  // namespace tessera
