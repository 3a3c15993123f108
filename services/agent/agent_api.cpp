// The agent's side of its HTTP API (agent_http.hpp): the calls answered from
// its own books, on its thread, in the JSON shapes of Mesos's agent v1 API;
// sandbox lookups whose file I/O then runs on the blocking pool.

#include "services/agent/agent.hpp"
#include "services/common/json_forms.hpp"

#include "services/agent/agent_http.hpp"

#include <nlohmann/json.hpp>

namespace tessera {

namespace {

using json = nlohmann::json;

json value(const std::string& v) {
  return {{"value", v}};
}

json ok(const std::string& type, const json& body) {
  std::string key = type;
  for (auto& c : key)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return {{"type", type}, {key, body}};
}

Resources resources_of(const Owned<wire::TaskInfo>& info) {
  if (!info)
    return {};
  auto r = from_wire(info.get().getResources());
  return r ? *r : Resources{};
}

struct TaskView {
  const std::string& framework_id;
  const std::string& task_id;
  const std::string& executor_id;
  wire::TaskState state;
  const Owned<wire::TaskInfo>& info;
  const std::filesystem::path& sandbox;
};

json task_json(const TaskView& t, const std::string& agent_id) {
  json out = {{"task_id", value(t.task_id)},
              {"framework_id", value(t.framework_id)},
              {"agent_id", value(agent_id)},
              {"name", t.info ? str(t.info.get().getName()) : std::string()},
              {"state", to_string(t.state)},
              {"resources", resources_json(resources_of(t.info))},
              {"sandbox_directory", t.sandbox.string()}};
  if (!t.executor_id.empty())
    out["executor_id"] = value(t.executor_id);
  return out;
}

json framework_json(wire::FrameworkInfo::Reader f) {
  auto roles = json::array();
  for (auto r : f.getRoles())
    roles.push_back(str(r));
  return {{"framework_info",
           {{"id", value(str(f.getFrameworkId()))},
            {"name", str(f.getName())},
            {"user", str(f.getUser())},
            {"principal", str(f.getPrincipal())},
            {"roles", roles}}}};
}

int64_t unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// -- the handle ------------------------------------------------------------------

bool AgentHttpHandle::post(std::function<void(Agent&)> fn) {
  std::shared_ptr<Inbox> inbox;
  Agent* agent = nullptr;
  {
    std::lock_guard<std::mutex> guard(mu_);
    inbox = inbox_;
    agent = agent_;
  }
  return inbox && inbox->post([agent, fn = std::move(fn)] { fn(*agent); });
}

size_t AgentHttpHandle::queued() const {
  std::lock_guard<std::mutex> guard(mu_);
  return inbox_ ? inbox_->size() : 0;
}

void AgentHttpHandle::attach(std::shared_ptr<Inbox> inbox, Agent* agent) {
  std::lock_guard<std::mutex> guard(mu_);
  inbox_ = std::move(inbox);
  agent_ = agent;
}

// -- reads from the books ----------------------------------------------------------

void Agent::api_read(const std::string& type, const http::Responder& responder) const {
  responder.respond(http::json_response(200, api_state_json(type)));
}

std::string Agent::api_state_json(const std::string& type) const {
  auto tasks = [this] {
    json launched = json::array(), terminated = json::array(), completed = json::array();
    for (const auto& [key, t] : tasks_) {
      auto state = t.stream.latest_state();
      auto j =
          task_json({key.first, key.second, t.executor_id, state, t.info, t.sandbox}, agent_id_);
      (is_terminal(state) ? terminated : launched).push_back(std::move(j));
    }
    for (const auto& c : completed_)
      completed.push_back(task_json(
          {c.task.first, c.task.second, c.executor_id, c.state, c.info, c.sandbox}, agent_id_));
    return json{{"pending_tasks", json::array()},
                {"queued_tasks", json::array()},
                {"launched_tasks", launched},
                {"terminated_tasks", terminated},
                {"completed_tasks", completed}};
  };
  auto executors = [this] {
    auto list = json::array();
    for (const auto& [key, e] : executors_) {
      auto ids = json::array();
      for (const auto& id : e.tasks)
        ids.push_back(value(id));
      list.push_back({{"executor_info",
                       {{"executor_id", value(key.second)}, {"framework_id", value(key.first)}}},
                      {"container_id", value(e.run_id)},
                      {"sandbox_directory", e.sandbox.string()},
                      {"tasks", ids}});
    }
    return json{{"executors", list}, {"completed_executors", json::array()}};
  };
  auto frameworks = [this] {
    auto list = json::array();
    for (const auto& [id, info] : frameworks_)
      list.push_back(framework_json(info.get()));
    return json{{"frameworks", list}, {"completed_frameworks", json::array()}};
  };
  if (type == "GET_HEALTH")
    return ok(type, {{"healthy", true}}).dump();
  if (type == "GET_VERSION")
    return ok(type, {{"version_info", {{"version", version}}}}).dump();
  if (type == "GET_AGENT")
    return ok(type, {{"agent_info",
                      {{"id", value(agent_id_)},
                       {"hostname", config_.hostname.empty() ? node().host() : config_.hostname},
                       {"port", node().port()},
                       {"http_address", config_.http_address},
                       {"resources", resources_json(config_.resources)},
                       {"attributes", attributes_json(config_.attributes)}}}})
        .dump();
  if (type == "GET_TASKS")
    return ok(type, tasks()).dump();
  if (type == "GET_EXECUTORS")
    return ok(type, executors()).dump();
  if (type == "GET_FRAMEWORKS")
    return ok(type, frameworks()).dump();
  return ok("GET_STATE", {{"get_tasks", tasks()},
                          {"get_executors", executors()},
                          {"get_frameworks", frameworks()}})
      .dump();
}

// -- containers --------------------------------------------------------------------

void Agent::api_containers(const http::Responder& responder) {
  struct Row {
    std::string framework_id, executor_id, run_id;
    ContainerLimits limits;
  };
  std::vector<Row> rows;
  std::vector<std::string> ids;
  for (const auto& [key, e] : executors_) {
    if (!e.container.active)
      continue;
    rows.push_back({e.framework_id, e.executor_id, e.run_id, e.container.limits});
    ids.push_back(e.run_id);
  }
  auto isolator = isolator_;
  bool queued = blocking(Work::usage, [=]() -> std::function<void()> {
    auto usage = ids.empty() ? std::map<std::string, ContainerStats>{} : isolator->usage_of(ids);
    auto list = json::array();
    for (const auto& r : rows) {
      json c = {{"framework_id", value(r.framework_id)},
                {"executor_id", value(r.executor_id)},
                {"container_id", value(r.run_id)},
                {"isolation", isolator->name()},
                {"limits",
                 {{"cpus", double(r.limits.cpus_milli) / 1000.0},
                  {"mem_bytes", r.limits.mem_bytes},
                  {"pids", r.limits.pids_max}}}};
      if (auto u = usage.find(r.run_id); u != usage.end())
        c["resource_statistics"] = {{"timestamp", double(unix_ns()) / 1e9},
                                    {"cpus_limit", double(r.limits.cpus_milli) / 1000.0},
                                    {"cpus_time_secs", double(u->second.cpu_time_ns) / 1e9},
                                    {"mem_rss_bytes", u->second.mem_rss_bytes},
                                    {"mem_peak_bytes", u->second.mem_peak_bytes},
                                    {"mem_limit_bytes", r.limits.mem_bytes},
                                    {"processes", u->second.processes},
                                    {"oom_kills", u->second.oom_kills}};
      list.push_back(std::move(c));
    }
    responder.respond(
        http::json_response(200, ok("GET_CONTAINERS", {{"containers", list}}).dump()));
    return {};
  });
  if (!queued) {
    metrics_.usage_requests_refused.fetch_add(1, std::memory_order_relaxed);
    responder.respond(http::error_response(503, "the agent is busy reading usage; try again"));
  }
}

// -- sandboxes ---------------------------------------------------------------------

std::optional<Agent::Key> Agent::api_task(const std::string& framework_id,
                                          const std::string& task_id,
                                          const std::function<void(http::Response)>& refuse) const {
  auto unknown = [&] {
    refuse(http::error_response(
        404, "unknown task '" + task_id + "'" +
                 (framework_id.empty() ? std::string() : " of framework '" + framework_id + "'")));
    return std::nullopt;
  };
  if (!framework_id.empty()) {
    Key key{framework_id, task_id};
    if (!sandbox_of(key))
      return unknown();
    return key;
  }
  std::set<Key> found;
  for (const auto& [key, t] : tasks_)
    if (key.second == task_id && !t.sandbox.empty())
      found.insert(key);
  for (const auto& c : completed_)
    if (c.task.second == task_id)
      found.insert(c.task);
  if (found.empty())
    return unknown();
  if (found.size() > 1) {
    refuse(http::error_response(400, "task id '" + task_id + "' is in " +
                                         std::to_string(found.size()) +
                                         " frameworks here: give framework_id"));
    return std::nullopt;
  }
  return *found.begin();
}

bool Agent::task_ended(const Key& key) const {
  auto it = tasks_.find(key);
  return it == tasks_.end() || it->second.stream.terminated();
}

std::vector<std::string> Agent::framework_roles(const std::string& framework_id) const {
  std::vector<std::string> out;
  auto it = frameworks_.find(framework_id);
  if (it == frameworks_.end())
    return out;
  for (auto r : it->second.get().getRoles())
    out.push_back(str(r));
  if (out.empty())
    out.push_back("*");
  return out;
}

void Agent::api_sandbox(const std::string& framework_id, const std::string& task_id, SandboxJob job,
                        const std::function<void(http::Response)>& refuse,
                        const SandboxAccess& access) {
  auto key = api_task(framework_id, task_id, refuse);
  if (!key || (access && !access(framework_roles(key->first))))
    return;
  auto dir = sandbox_of(*key)->string();
  bool queued = blocking([dir, job = std::move(job)]() -> std::function<void()> {
    job(dir);
    return {};
  });
  if (!queued)
    refuse(http::error_response(503, "the agent is busy; try again"));
}

}  // namespace tessera
