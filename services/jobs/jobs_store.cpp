#include "services/jobs/jobs_store.hpp"

namespace tessera::jobs {

namespace {

constexpr std::string_view prefix_job = "jobs/job/";
constexpr std::string_view prefix_run = "jobs/run/";

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::string framework_key() {
  return "jobs/framework";
}
std::string job_key(const std::string& job_id) {
  return std::string(prefix_job) + job_id;
}
std::string run_key(const std::string& run_id) {
  return std::string(prefix_run) + run_id;
}

expected<JobsState> load_state(RegistryStore& store) {
  auto snapshot = store.load();
  if (!snapshot)
    return snapshot.error();
  JobsState state;
  state.store_version = snapshot->version;
  for (const auto& [key, value] : snapshot->records) {
    bool job = starts_with(key, prefix_job), run = starts_with(key, prefix_run);
    if (!job && !run && key != framework_key())
      continue;
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object()) {
      state.problems.push_back(key + ": not a JSON object");
      continue;
    }
    if (key == framework_key()) {
      if (j.contains("frameworkId") && j["frameworkId"].is_string())
        state.framework_id = j["frameworkId"].get<std::string>();
      else
        state.problems.push_back(key + ": no frameworkId text");
    } else if (job)
      state.jobs.push_back(std::move(j));
    else
      state.runs.push_back(std::move(j));
  }
  return state;
}

}  // namespace tessera::jobs
