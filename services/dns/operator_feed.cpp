#include "services/dns/operator_feed.hpp"

namespace tessera::dns {

namespace {

using json = nlohmann::json;

std::string id_value(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key))
    return {};
  const auto& v = j[key];
  if (v.is_object())
    return v.value("value", "");
  return v.is_string() ? v.get<std::string>() : std::string();
}

bool terminal(const std::string& state) {
  return state == "TASK_FINISHED" || state == "TASK_FAILED" || state == "TASK_KILLED" ||
         state == "TASK_ERROR" || state == "TASK_LOST" || state == "TASK_DROPPED" ||
         state == "TASK_GONE" || state == "TASK_UNKNOWN";
}

std::vector<uint16_t> ports_of(const json& resources) {
  std::vector<uint16_t> out;
  if (!resources.is_array())
    return out;
  for (const auto& r : resources) {
    if (r.value("name", "") != "ports" || !r.contains("ranges"))
      continue;
    const auto& ranges = r["ranges"].value("range", json::array());
    for (const auto& range : ranges) {
      auto begin = range.value("begin", uint64_t{1});
      auto end = range.value("end", uint64_t{0});
      for (auto p = begin; p <= end && p <= 65535 && out.size() < 64; ++p)
        out.push_back(static_cast<uint16_t>(p));
    }
  }
  return out;
}

// The newest health report of a task's statuses: -1 none, 0 unhealthy, 1 healthy.
int health_of(const json& statuses) {
  if (!statuses.is_array() || statuses.empty())
    return -1;
  const auto& last = statuses.back();
  if (!last.contains("healthy") || !last["healthy"].is_boolean())
    return -1;
  return last["healthy"].get<bool>() ? 1 : 0;
}

void agent(RecordTable::Batch& b, const json& a) {
  const auto& info = a.value("agent_info", json::object());
  auto id = id_value(info, "id");
  if (!id.empty())
    b.upsert_agent(id, a.value("pid", ""), info.value("hostname", ""));
}

void framework(RecordTable::Batch& b, const json& f) {
  const auto& info = f.value("framework_info", json::object());
  auto id = id_value(info, "id");
  if (!id.empty())
    b.upsert_framework(id, info.value("name", ""));
}

}  // namespace

OperatorFeed::OperatorFeed(std::shared_ptr<RecordTable> table, std::optional<Ip> leader,
                           uint16_t leader_port)
    : table_(std::move(table)), leader_(leader), leader_port_(leader_port) {
}

void OperatorFeed::task(RecordTable::Batch& b, const json& t) {
  TaskFacts f;
  f.framework_id = id_value(t, "framework_id");
  f.task_id = id_value(t, "task_id");
  if (f.framework_id.empty() || f.task_id.empty())
    return;
  f.name = t.value("name", "");
  f.agent_id = id_value(t, "agent_id");
  f.ports = ports_of(t.value("resources", json::array()));
  auto state = t.value("state", "");
  f.listed = state == "TASK_RUNNING" && health_of(t.value("statuses", json::array())) != 0;
  auto key = std::make_pair(f.framework_id, f.task_id);
  if (terminal(state)) {
    b.remove_task(f.framework_id, f.task_id);
    tasks_.erase(key);
    return;
  }
  b.upsert_task(f);
  tasks_[key] = std::move(f);
}

void OperatorFeed::snapshot(const json& state) {
  auto next = table_->successor();
  tasks_.clear();
  next->apply([&](RecordTable::Batch& b) {
    b.set_leader(leader_, leader_port_);
    for (const auto& a : state["get_agents"].value("agents", json::array()))
      agent(b, a);
    for (const auto& f : state["get_frameworks"].value("frameworks", json::array()))
      framework(b, f);
    for (const auto& t : state["get_tasks"].value("tasks", json::array()))
      task(b, t);
  });
  table_->replace_with(*next);
  ready_ = true;
}

bool OperatorFeed::on_record(const json& e) {
  if (!e.is_object())
    return false;
  auto type = e.value("type", "");
  try {
    if (type == "SUBSCRIBED") {
      snapshot(e.at("subscribed").at("get_state"));
      return true;
    }
    if (type == "HEARTBEAT")
      return true;
    if (!ready_)
      return false;
    bool known = true;
    table_->apply([&](RecordTable::Batch& b) {
      if (type == "TASK_ADDED") {
        task(b, e.at("task_added").at("task"));
      } else if (type == "TASK_UPDATED") {
        const auto& u = e.at("task_updated");
        const auto& status = u.value("status", json::object());
        auto key = std::make_pair(id_value(u, "framework_id"), id_value(status, "task_id"));
        auto it = tasks_.find(key);
        auto state = u.value("state", "");
        if (terminal(state)) {
          b.remove_task(key.first, key.second);
          if (it != tasks_.end())
            tasks_.erase(it);
          return;
        }
        if (it == tasks_.end())
          return;
        bool unhealthy = status.contains("healthy") && status["healthy"].is_boolean() &&
                         !status["healthy"].get<bool>();
        it->second.agent_id = id_value(u, "agent_id");
        it->second.listed = state == "TASK_RUNNING" && !unhealthy;
        b.upsert_task(it->second);
      } else if (type == "AGENT_ADDED" || type == "AGENT_UPDATED") {
        const auto& body = e.at(type == "AGENT_ADDED" ? "agent_added" : "agent_updated");
        agent(b, body.at("agent"));
      } else if (type == "AGENT_REMOVED") {
        b.remove_agent(id_value(e.at("agent_removed"), "agent_id"));
      } else if (type == "FRAMEWORK_ADDED" || type == "FRAMEWORK_UPDATED") {
        const auto& body =
            e.at(type == "FRAMEWORK_ADDED" ? "framework_added" : "framework_updated");
        framework(b, body.at("framework"));
      } else if (type == "FRAMEWORK_REMOVED") {
        const auto& info = e.at("framework_removed").value("framework_info", json::object());
        b.remove_framework(id_value(info, "id"));
      } else {
        known = false;
      }
    });
    return known;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace tessera::dns
