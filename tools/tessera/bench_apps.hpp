#pragma once
// `tessera bench apps`: the apps framework at scale. A master on a node of
// this process with `agents` simulated agents (sim_agent.hpp: tasks are
// reported RUNNING at once, nothing runs), and the apps framework as its own
// `tessera apps` process (SQLite store in a temporary directory), driven
// through its /v2 HTTP API. Reported (medians of `runs`):
//   deploy_all_s        from the first POST /v2/apps of `apps` apps of
//                       `instances` instances each to all of them running
//   restart_all_s       POST /v2/apps/{id}/restart of every app, until every
//                       deployment is done (a rolling restart of all)
//   app_list_ms         GET /v2/apps with every app deployed (p50 of 10)
//   kib_per_instance    the framework process's resident memory added by
//                       the deployed instances, per instance

#include <cstdint>

namespace tessera::bench {

struct AppsBenchOptions {
  uint64_t agents = 1000;
  uint64_t apps = 1000;
  uint64_t instances = 10;
  int runs = 3;
  bool json = false;
};

int run_apps_bench(const AppsBenchOptions& options);

}  // namespace tessera::bench
