#pragma once
// What the jobs framework's tests share: a real cluster in this process
// (master, agents, real task processes) with the jobs framework beside it
// serving /v1 on a real socket, and a wall clock the test moves (cron reads
// it; timers still run on the runtime's real clock).

#include "apps/apps_support.hpp"
#include "services/jobs/jobs_service.hpp"

#include <caf/send.hpp>

#include <atomic>

namespace tessera::testing {

struct JobsWorldOptions {
  size_t agents = 1;
  std::string resources = "cpus:4;mem:2048";
  size_t history_max = 10;
};

class JobsWorld {
 public:
  explicit JobsWorld(JobsWorldOptions o = {}) : options_(o) {
    LocalClusterConfig c;
    c.agents = o.agents;
    c.agent_resources = o.resources;
    c.work_dir = dir.path() / "cluster";
    c.master.allocation_interval = std::chrono::milliseconds(100);
    auto started = LocalCluster::start(c);
    REQUIRE(started);
    cluster = std::move(*started);
    start_jobs();
  }
  ~JobsWorld() {
    if (jobs)
      jobs->stop();
    cluster->stop();
    kill_processes_under(dir.path());
  }

  // The jobs framework, on the cluster's node; again after stop_jobs().
  void start_jobs() {
    jobs::JobsServiceConfig jc;
    jc.master = cluster->master_address();
    jc.work_dir = (dir.path() / "jobs").string();
    jc.http = http::ServerConfig{};
    jc.actor_name = "jobs-" + std::to_string(++generation_);
    jc.tuning.tick = std::chrono::milliseconds(100);
    jc.tuning.schedule_recheck = std::chrono::milliseconds(200);
    jc.tuning.refuse_idle = std::chrono::hours(1);  // every launch depends on the revive
    jc.tuning.history_max = options_.history_max;
    jc.tuning.wall = [offset = offset_] {
      return std::chrono::system_clock::now() + std::chrono::seconds(offset->load());
    };
    auto started = jobs::JobsService::start(cluster->node(), jc);
    REQUIRE(started);
    jobs = std::move(*started);
    http = jobs->http_address();
  }

  // Stops the framework actor as a crash would (no goodbye to the master).
  void stop_jobs() {
    jobs->stop();
    caf::anon_send_exit(cluster->node().lookup_local("jobs-" + std::to_string(generation_)),
                        caf::exit_reason::kill);
    jobs.reset();
    // Its last commit, if one was in flight, lands before the next instance
    // reads the store.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }

  // The wall clock cron reads: now, plus what the test moved it by.
  jobs::SysTime wall() const {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
           std::chrono::seconds(offset_->load());
  }
  void move_wall(std::chrono::seconds by) { offset_->fetch_add(by.count()); }
  // Moves the wall clock to `second` seconds past the next minute's start
  // minus one minute (e.g. 57: three seconds before a minute starts).
  void wall_to_second(int second) {
    auto w = wall();
    auto into = (w.time_since_epoch().count() % 60 + 60) % 60;
    offset_->fetch_add(second - into + (second <= into ? 60 : 0));
  }

  TempDir dir;
  std::unique_ptr<LocalCluster> cluster;
  std::unique_ptr<jobs::JobsService> jobs;
  std::string http;

 private:
  JobsWorldOptions options_;
  int generation_ = 0;
  std::shared_ptr<std::atomic<int64_t>> offset_ = std::make_shared<std::atomic<int64_t>>(0);
};

inline json job_of(const std::string& http, const std::string& id, const std::string& embed = "") {
  return call(http, "GET", "/v1/jobs/" + id + (embed.empty() ? "" : "?embed=" + embed));
}

inline json run_of(const std::string& http, const std::string& job, const std::string& run) {
  return call(http, "GET", "/v1/jobs/" + job + "/runs/" + run);
}

// Waits for the run to reach status; its JSON then (or the last seen).
inline json wait_run(const std::string& http, const std::string& job, const std::string& run,
                     const std::string& status, std::chrono::milliseconds timeout = 30s) {
  json last;
  eventually(
      [&] {
        auto r = http::request(http, "GET", "/v1/jobs/" + job + "/runs/" + run, "", "", 10s);
        if (!r || r->status != 200)
          return false;
        last = json::parse(r->body);
        return last["status"] == status;
      },
      timeout);
  INFO(last.dump());
  CHECK(last["status"] == status);
  return last;
}

}  // namespace tessera::testing
