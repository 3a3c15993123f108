#include "services/apps/apps_store.hpp"

#include <algorithm>

namespace tessera::apps {

using json = nlohmann::json;

namespace {

constexpr std::string_view prefix_app = "apps/app/";
constexpr std::string_view prefix_task = "apps/task/";
constexpr std::string_view prefix_deployment = "apps/deployment/";

std::string flat(std::string id) {
  std::replace(id.begin(), id.end(), '/', '_');
  return id;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

StoredApp app_from(const json& j) {
  StoredApp a;
  a.id = j.at("id").get<std::string>();
  for (const auto& v : j.at("versions"))
    a.versions.push_back({v.at("version").get<std::string>(),
                          v.at("configVersion").get<std::string>(), v.at("definition")});
  a.target = j.at("target").get<std::string>();
  a.last_good = j.value("lastGood", "");
  a.last_scaling_ms = j.value("lastScalingMs", int64_t{0});
  a.last_config_ms = j.value("lastConfigMs", int64_t{0});
  a.deleting = j.value("deleting", false);
  if (a.versions.empty())
    throw std::runtime_error("no versions");
  return a;
}

StoredInstance instance_from(const json& j) {
  StoredInstance i;
  i.task_id = j.at("taskId").get<std::string>();
  i.app_id = j.at("appId").get<std::string>();
  i.version = j.at("version").get<std::string>();
  i.agent_id = j.at("agentId").get<std::string>();
  i.host = j.value("host", "");
  i.attributes = j.value("attributes", "");
  i.ports = j.value("ports", std::vector<uint32_t>{});
  i.staged_ms = j.value("stagedMs", int64_t{0});
  return i;
}

StoredDeployment deployment_from(const json& j) {
  StoredDeployment d;
  d.id = j.at("id").get<std::string>();
  d.app_id = j.at("appId").get<std::string>();
  d.kind = j.at("kind").get<std::string>();
  d.state = j.at("state").get<std::string>();
  d.from = j.value("from", "");
  d.to = j.at("to").get<std::string>();
  d.canary = j.value("canary", 0u);
  d.auto_rollback = j.value("autoRollback", true);
  d.started_ms = j.value("startedMs", int64_t{0});
  d.deadline_ms = j.value("deadlineMs", int64_t{0});
  return d;
}

}  // namespace

std::string framework_key() {
  return "apps/framework";
}
std::string app_key(const std::string& app_id) {
  return std::string(prefix_app) + flat(app_id);
}
std::string task_key(const std::string& task_id) {
  return std::string(prefix_task) + task_id;
}
std::string deployment_key(const std::string& app_id) {
  return std::string(prefix_deployment) + flat(app_id);
}

json to_json(const StoredApp& a) {
  json versions = json::array();
  for (const auto& v : a.versions)
    versions.push_back({{"version", v.version},
                        {"configVersion", v.config_version},
                        {"definition", v.definition}});
  return {{"id", a.id},
          {"versions", std::move(versions)},
          {"target", a.target},
          {"lastGood", a.last_good},
          {"lastScalingMs", a.last_scaling_ms},
          {"lastConfigMs", a.last_config_ms},
          {"deleting", a.deleting}};
}

json to_json(const StoredInstance& i) {
  return {{"taskId", i.task_id},   {"appId", i.app_id},      {"version", i.version},
          {"agentId", i.agent_id}, {"host", i.host},         {"attributes", i.attributes},
          {"ports", i.ports},      {"stagedMs", i.staged_ms}};
}

json to_json(const StoredDeployment& d) {
  return {{"id", d.id},
          {"appId", d.app_id},
          {"kind", d.kind},
          {"state", d.state},
          {"from", d.from},
          {"to", d.to},
          {"canary", d.canary},
          {"autoRollback", d.auto_rollback},
          {"startedMs", d.started_ms},
          {"deadlineMs", d.deadline_ms}};
}

expected<AppsState> load_state(RegistryStore& store) {
  auto snapshot = store.load();
  if (!snapshot)
    return snapshot.error();
  AppsState state;
  state.store_version = snapshot->version;
  for (const auto& [key, value] : snapshot->records) {
    if (!starts_with(key, "apps/"))
      continue;
    try {
      auto j = json::parse(value);
      if (key == framework_key())
        state.framework_id = j.at("frameworkId").get<std::string>();
      else if (starts_with(key, prefix_app))
        state.apps.push_back(app_from(j));
      else if (starts_with(key, prefix_task))
        state.instances.push_back(instance_from(j));
      else if (starts_with(key, prefix_deployment))
        state.deployments.push_back(deployment_from(j));
      else
        state.problems.push_back(key + ": unknown record");
    } catch (const std::exception& e) {
      state.problems.push_back(key + ": " + e.what());
    }
  }
  return state;
}

}  // namespace tessera::apps
