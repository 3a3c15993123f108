#include "tools/tessera/bench_jobs.hpp"

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "services/http/client.hpp"
#include "services/jobs/jobs_service.hpp"
#include "services/master/master.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/sim_agent.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using json = nlohmann::json;

json call(const std::string& http, const std::string& method, const std::string& path,
          const std::string& body, int expect) {
  auto r = http::request(http, method, path, body, "application/json", 60s);
  if (!r)
    throw std::runtime_error(method + " " + path + ": " + describe(r.error()));
  if (r->status != expect)
    throw std::runtime_error(method + " " + path + ": " + std::to_string(r->status) + " " +
                             r->body.substr(0, 200));
  return r->body.empty() ? json() : json::parse(r->body);
}

void wait_for(const std::function<bool()>& done, std::chrono::seconds timeout, const char* what) {
  auto deadline = WallClock::now() + timeout;
  while (!done()) {
    if (WallClock::now() > deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
    std::this_thread::sleep_for(50ms);
  }
}

Row measure(const JobsBenchOptions& o) {
  NodeConfig nc;
  nc.host = "127.0.0.1";
  auto node = Node::start(nc);
  if (!node)
    throw std::runtime_error("cannot start a node: " + describe(node.error()));
  struct StopNode {
    Node* node;
    ~StopNode() { node->stop(); }
  } stop_node{node->get()};
  MasterConfig mc;
  mc.agent_ping_interval = 10s;
  mc.allocation_interval = 100ms;
  auto master = (*node)->spawn<Master>("master", mc);
  if (!master)
    throw std::runtime_error("cannot start the master");
  // Room for every job's run at once.
  uint64_t per_agent = (o.jobs + o.agents - 1) / o.agents;
  auto total = *Resources::parse("cpus:" + std::to_string(per_agent / 10 + 2) +
                                 ";mem:" + std::to_string((per_agent + 2) * 16) + ";disk:1000");
  for (uint64_t i = 0; i < o.agents; ++i)
    (*node)->spawn<SimAgent>("agent-" + std::to_string(i), *master, total, i + 1,
                             std::chrono::seconds(1));

  auto dir =
      std::filesystem::temp_directory_path() / ("tessera-bench-jobs-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  struct RemoveDir {
    std::filesystem::path dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{dir};
  auto offset_ms = std::make_shared<std::atomic<int64_t>>(0);
  jobs::JobsServiceConfig jc;
  jc.master = *master;
  jc.work_dir = dir.string();
  jc.http = http::ServerConfig{};
  jc.tuning.schedule_recheck = 100ms;
  jc.tuning.wall = [offset_ms] {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(offset_ms->load());
  };
  auto service = jobs::JobsService::start(**node, jc);
  if (!service)
    throw std::runtime_error("cannot start the jobs framework: " + describe(service.error()));
  auto http = (*service)->http_address();
  wait_for([&] { return call(http, "GET", "/v1/info", "", 200)["connected"] == true; }, 60s,
           "the jobs framework to subscribe");

  // Far from a minute's start while the jobs are created: none fires early.
  auto wall_second = [&] {
    auto w = std::chrono::system_clock::now() + std::chrono::milliseconds(offset_ms->load());
    return std::chrono::duration<double>(w.time_since_epoch()).count();
  };
  auto move_to = [&](double second) {
    double into = std::fmod(wall_second(), 60.0);
    double by = second - into + (second <= into ? 60 : 0);
    offset_ms->fetch_add(static_cast<int64_t>(by * 1000));
  };
  move_to(1);
  for (uint64_t j = 0; j < o.jobs; ++j)
    call(http, "POST", "/v1/jobs",
         json{{"id", "bench.job-" + std::to_string(j)},
              {"run", {{"cmd", "true"}, {"cpus", 0.1}, {"mem", 16}}},
              {"schedules", json::array({{{"id", "m"}, {"cron", "* * * * *"}}})}}
             .dump(),
         201);
  Row row;
  std::vector<double> minute_s;
  uint64_t expected = 0;
  for (uint64_t m = 0; m < o.minutes; ++m) {
    move_to(57);  // the minute comes in 3 s
    auto due = WallClock::now() + 3s;
    expected += o.jobs;
    wait_for(
        [&] {
          auto c = call(http, "GET", "/v1/info", "", 200)["counters"];
          return c["runsSucceeded"].get<uint64_t>() + c["runsFailed"].get<uint64_t>() >= expected;
        },
        600s, "every run of the minute to end");
    minute_s.push_back(std::chrono::duration<double>(WallClock::now() - due).count());
  }
  auto info = call(http, "GET", "/v1/info", "", 200);
  if (info["counters"]["runsFailed"] != 0)
    throw std::runtime_error("runs failed: " + info["counters"].dump());
  row["schedule_lag_ms_p50"] = info["scheduleLagMs"]["p50"].get<double>();
  row["schedule_lag_ms_p99"] = info["scheduleLagMs"]["p99"].get<double>();
  row["launch_lag_ms_p99"] = info["launchLagMs"]["p99"].get<double>();
  row["minute_s"] = median(minute_s);
  (*service)->stop();
  return row;
}

}  // namespace

int run_jobs_bench(const JobsBenchOptions& o) {
  log().set_level(spdlog::level::warn);
  json params = {{"agents", o.agents}, {"jobs", o.jobs}, {"minutes", o.minutes}};
  return report_medians(
      "jobs", o.runs, o.json, params, [&](int) { return measure(o); },
      [&](const Row& r) {
        std::printf(
            "jobs framework, %llu simulated agents, %llu jobs every minute, %llu minutes "
            "(medians of %d)\n",
            static_cast<unsigned long long>(o.agents), static_cast<unsigned long long>(o.jobs),
            static_cast<unsigned long long>(o.minutes), o.runs);
        std::printf("  %-22s %10.1f\n", "schedule_lag_ms_p50", r.at("schedule_lag_ms_p50"));
        std::printf("  %-22s %10.1f   (target <= 500)\n", "schedule_lag_ms_p99",
                    r.at("schedule_lag_ms_p99"));
        std::printf("  %-22s %10.1f\n", "launch_lag_ms_p99", r.at("launch_lag_ms_p99"));
        std::printf("  %-22s %10.2f\n", "minute_s", r.at("minute_s"));
      });
}

}  // namespace tessera::bench
