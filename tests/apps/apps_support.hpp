#pragma once
// What the apps framework's end-to-end tests share: a real cluster in this
// process (master, agents, real task processes) with the apps framework
// beside it serving /v2 on a real socket, HTTP calls, and a reader of the
// /v2/events stream.

#include "services/apps/apps_service.hpp"
#include "services/cluster/local_cluster.hpp"
#include "services/http/client.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mutex>
#include <thread>

namespace tessera::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct AppsWorldOptions {
  size_t agents = 2;
  std::string resources = "cpus:2;mem:1024";
  std::vector<std::string> hostnames;
  std::string attributes;
  // The master's watch over agents (fast, for tests that partition one).
  Duration agent_ping_interval = std::chrono::seconds(5);
  Duration agent_ping_timeout = std::chrono::seconds(5);
};

class AppsWorld {
 public:
  explicit AppsWorld(AppsWorldOptions o = {}) {
    LocalClusterConfig c;
    c.agents = o.agents;
    c.agent_resources = o.resources;
    c.agent_attributes = o.attributes;
    c.agent_hostnames = o.hostnames;
    c.work_dir = dir.path() / "cluster";
    c.master.allocation_interval = std::chrono::milliseconds(100);
    c.master.agent_ping_interval = o.agent_ping_interval;
    c.master.agent_ping_timeout = o.agent_ping_timeout;
    auto started = LocalCluster::start(c);
    REQUIRE(started);
    cluster = std::move(*started);
    start_apps();
  }
  ~AppsWorld() {
    if (apps)
      apps->stop();
    cluster->stop();
    kill_processes_under(dir.path());
  }

  // The apps framework, on the cluster's node; again after stop_apps().
  void start_apps() {
    apps::AppsServiceConfig ac;
    ac.master = cluster->master_address();
    ac.work_dir = (dir.path() / "apps").string();
    ac.http = http::ServerConfig{};
    ac.actor_name = "apps-" + std::to_string(++generation_);
    ac.tuning.tick = std::chrono::milliseconds(200);
    // Offers declined while nothing waits come back only after a revive:
    // an hour-long filter makes every test depend on the revive.
    ac.tuning.refuse_idle = std::chrono::hours(1);
    auto started = apps::AppsService::start(cluster->node(), ac);
    REQUIRE(started);
    apps = std::move(*started);
    http = apps->http_address();
  }

  TempDir dir;
  std::unique_ptr<LocalCluster> cluster;
  std::unique_ptr<apps::AppsService> apps;
  std::string http;

 private:
  int generation_ = 0;
};

// wait_until at a pace an HTTP API can take: every 50 ms.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        if (pred())
          return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return false;
      },
      timeout);
}

inline json call(const std::string& http, const std::string& method, const std::string& path,
                 const json& body = nullptr, int expect = 200) {
  auto r =
      http::request(http, method, path, body.is_null() ? "" : body.dump(), "application/json", 20s);
  REQUIRE(r);
  INFO(method << " " << path << " " << body.dump() << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == expect);
  return r->body.empty() ? json() : json::parse(r->body);
}

inline json app_of(const std::string& http, const std::string& id) {
  return call(http, "GET", "/v2/apps" + id)["app"];
}

// The app has n instances running (and healthy, if it checks health), all of
// its current version, and no deployment.
inline bool settled(const std::string& http, const std::string& id, int n) {
  auto r = http::request(http, "GET", "/v2/apps" + id, "", "", 10s);
  if (!r || r->status != 200)
    return false;
  auto app = json::parse(r->body)["app"];
  if (app["tasksRunning"] != n || !app["deployments"].empty() || app["tasks"].size() != size_t(n))
    return false;
  bool checks = !app["healthChecks"].empty();
  for (const auto& t : app["tasks"])
    // Launched with the current config (a scale keeps older instances).
    if (t["version"].get<std::string>() <
            app["versionInfo"]["lastConfigChangeAt"].get<std::string>() ||
        (checks && (t["healthCheckResults"].empty() || !t["healthCheckResults"][0]["alive"])))
      return false;
  return true;
}

struct Event {
  std::string type;
  json data;
};

// Reads /v2/events on a thread of its own until the server goes away. The
// thread is detached; what it fills is shared.
class EventLog {
 public:
  explicit EventLog(const std::string& http) {
    std::thread([shared = shared_, http] {
      std::string buffer;
      http::stream(http, "GET", "/v2/events", "", [&](std::string_view chunk) {
        buffer.append(chunk);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
          auto block = buffer.substr(0, end);
          buffer.erase(0, end + 2);
          Event e;
          size_t at = 0;
          while (at < block.size()) {
            auto nl = block.find('\n', at);
            auto line = block.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
            at = nl == std::string::npos ? block.size() : nl + 1;
            if (line.rfind("event: ", 0) == 0)
              e.type = line.substr(7);
            else if (line.rfind("data: ", 0) == 0)
              e.data = json::parse(line.substr(6));
          }
          std::lock_guard lock(shared->mu);
          if (e.type.empty()) {
            shared->open = true;
            continue;
          }
          shared->events.push_back(std::move(e));
        }
        return true;
      });
    }).detach();
    REQUIRE(wait_until([&] {
      std::lock_guard lock(shared_->mu);
      return shared_->open;
    }));
  }
  std::vector<Event> events() const {
    std::lock_guard lock(shared_->mu);
    return shared_->events;
  }

 private:
  struct Shared {
    std::mutex mu;
    bool open = false;
    std::vector<Event> events;
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace tessera::testing
