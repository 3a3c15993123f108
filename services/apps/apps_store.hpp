#pragma once
// The apps framework's records in a RegistryStore (services/registry/
// store.hpp), as JSON, one record per thing so each stays small:
//   apps/framework          {"frameworkId"}
//   apps/app/<key>          an app: its versions (definitions), target and
//                           last fully healthy version, backoff state
//   apps/task/<task id>     an instance: app, version, agent, host, ports
//   apps/deployment/<key>   the app's running deployment
// <key> is the app id with '/' as '_' (ids never hold '_'), so ids never
// nest in stores with paths (ZooKeeper).
//
// load_state() reads them all; a record that does not parse is skipped and
// named in problems (the framework logs it) rather than failing the load.

#include "services/registry/store.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::apps {

struct StoredVersion {
  std::string version;
  std::string config_version;
  nlohmann::json definition;
};

struct StoredApp {
  std::string id;
  std::vector<StoredVersion> versions;  // newest first
  std::string target;                   // a version in versions
  std::string last_good;                // empty: none
  int64_t last_scaling_ms = 0;
  int64_t last_config_ms = 0;
  bool deleting = false;  // being removed: never brought back
};

struct StoredInstance {
  std::string task_id;
  std::string app_id;
  std::string version;
  std::string agent_id;
  std::string host;
  std::string attributes;  // text form (wire.hpp to_string)
  std::vector<uint32_t> ports;
  int64_t staged_ms = 0;
};

struct StoredDeployment {
  std::string id;
  std::string app_id;
  std::string kind;
  std::string state;
  std::string from;  // version; empty: none
  std::string to;
  uint32_t canary = 0;
  bool auto_rollback = true;
  int64_t started_ms = 0;
  int64_t deadline_ms = 0;  // wall clock
};

struct AppsState {
  uint64_t store_version = 0;
  std::string framework_id;
  std::vector<StoredApp> apps;
  std::vector<StoredInstance> instances;
  std::vector<StoredDeployment> deployments;
  std::vector<std::string> problems;  // records skipped, and why
};

std::string framework_key();
std::string app_key(const std::string& app_id);
std::string task_key(const std::string& task_id);
std::string deployment_key(const std::string& app_id);

nlohmann::json to_json(const StoredApp& a);
nlohmann::json to_json(const StoredInstance& i);
nlohmann::json to_json(const StoredDeployment& d);

// Every apps/ record of the store.
expected<AppsState> load_state(RegistryStore& store);

}  // namespace tessera::apps
