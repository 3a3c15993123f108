#pragma once
// The jobs framework's records in a RegistryStore, as JSON, one per thing:
//   jobs/framework       {"frameworkId"}
//   jobs/job/<id>        a job: its definition, its schedules' progress
//                        (the last scheduled time handled, missed runs) and
//                        its history (counts, last times, the last runs)
//   jobs/run/<run id>    a run that has not finished: its tasks so far
// A run that finishes leaves jobs/run and enters its job's history in the
// same commit. Job ids are [a-z0-9.-] and run ids [0-9a-z], so keys never
// nest in stores with paths (ZooKeeper).
//
// load_state() reads the records; the framework parses them (a record that
// does not is skipped, named in problems, not fatal).

#include "services/registry/store.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tessera::jobs {

struct JobsState {
  uint64_t store_version = 0;
  std::string framework_id;
  std::vector<nlohmann::json> jobs;
  std::vector<nlohmann::json> runs;
  std::vector<std::string> problems;  // records skipped, and why
};

std::string framework_key();
std::string job_key(const std::string& job_id);
std::string run_key(const std::string& run_id);

// Every jobs/ record of the store.
expected<JobsState> load_state(RegistryStore& store);

}  // namespace tessera::jobs
