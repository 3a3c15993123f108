#include "tools/tessera/bench_apps.hpp"

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "services/http/client.hpp"
#include "services/master/master.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/sim_agent.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using json = nlohmann::json;

double seconds_since(WallClock::time_point t) {
  return std::chrono::duration<double>(WallClock::now() - t).count();
}

// `tessera apps` as a child process; stopped (SIGTERM, then SIGKILL) by pid.
class AppsProcess {
 public:
  AppsProcess(const std::string& master, const std::string& work_dir) {
    int fds[2];
    if (::pipe(fds) != 0)
      throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      const auto& self = cli::self_path();
      std::vector<std::string> args = {self,         "--log-level", "warn",   "apps",
                                       "--master",   master,        "--http", "127.0.0.1:0",
                                       "--work-dir", work_dir};
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(self.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    // "tessera apps: Marathon API on http://HOST:PORT/v2/apps"
    std::string out;
    char buf[512];
    auto deadline = WallClock::now() + 60s;
    while (http_.empty() && WallClock::now() < deadline) {
      auto n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0)
        break;
      out.append(buf, static_cast<size_t>(n));
      auto at = out.find("http://");
      auto end = at == std::string::npos ? at : out.find("/v2", at);
      if (end != std::string::npos)
        http_ = out.substr(at + 7, end - at - 7);
    }
    ::close(fds[0]);
    if (http_.empty()) {
      stop();
      throw std::runtime_error("tessera apps did not start: " + out);
    }
  }
  ~AppsProcess() { stop(); }
  const std::string& http() const { return http_; }
  double rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/statm");
    uint64_t pages = 0, resident = 0;
    in >> pages >> resident;
    return double(resident) * double(sysconf(_SC_PAGESIZE)) / 1024;
  }
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  int pid_ = 0;
  std::string http_;
};

json get(const std::string& http, const std::string& path) {
  auto r = http::request(http, "GET", path, "", "", 60s);
  if (!r || r->status != 200)
    throw std::runtime_error("GET " + path + ": " +
                             (r ? std::to_string(r->status) + " " + r->body : what(r.error())));
  return json::parse(r->body);
}

void post(const std::string& http, const std::string& path, const std::string& body, int expect) {
  auto r = http::request(http, "POST", path, body, "application/json", 60s);
  if (!r || r->status != expect)
    throw std::runtime_error("POST " + path + ": " +
                             (r ? std::to_string(r->status) + " " + r->body : what(r.error())));
}

void wait_for(const std::function<bool()>& done, std::chrono::seconds timeout, const char* what) {
  auto deadline = WallClock::now() + timeout;
  while (!done()) {
    if (WallClock::now() > deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
    std::this_thread::sleep_for(200ms);
  }
}

// Every instance running and no deployment left.
bool all_running(const std::string& http, uint64_t instances) {
  auto info = get(http, "/v2/info")["tessera"];
  return info["instancesRunning"].get<uint64_t>() == instances &&
         info["instances"].get<uint64_t>() == instances && info["deployments"] == 0;
}

Row measure(const AppsBenchOptions& o) {
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
  auto master = (*node)->spawn<Master>("master", mc);
  if (!master)
    throw std::runtime_error("cannot start the master");
  // Room for each agent's share of instances twice over (a rolling restart
  // runs old and new side by side), and a port range as real agents have.
  uint64_t per_agent = (o.apps * o.instances + o.agents - 1) / o.agents;
  auto total = *Resources::parse("cpus:" + std::to_string(per_agent + 4) +
                                 ";mem:" + std::to_string((per_agent + 4) * 64) +
                                 ";disk:100000;ports:[31000-32000]");
  for (uint64_t i = 0; i < o.agents; ++i)
    (*node)->spawn<SimAgent>("agent-" + std::to_string(i), *master, total, i + 1);

  auto dir =
      std::filesystem::temp_directory_path() / ("tessera-bench-apps-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  struct RemoveDir {
    std::filesystem::path dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{dir};
  AppsProcess apps(master->host + ":" + std::to_string(master->port), dir.string());
  const auto& http = apps.http();
  wait_for([&] { return !get(http, "/v2/info")["frameworkId"].get<std::string>().empty(); }, 60s,
           "the apps framework to subscribe");
  std::this_thread::sleep_for(1s);
  double rss_before = apps.rss_kib();
  uint64_t instances = o.apps * o.instances;

  Row row;
  auto t0 = WallClock::now();
  for (uint64_t a = 0; a < o.apps; ++a)
    post(http, "/v2/apps",
         json{{"id", "/bench/app-" + std::to_string(a)},
              {"cmd", "sleep forever"},
              {"instances", o.instances},
              {"cpus", 0.1},
              {"mem", 16}}
             .dump(),
         201);
  wait_for([&] { return all_running(http, instances); }, 1800s, "every instance to run");
  row["deploy_all_s"] = seconds_since(t0);
  std::this_thread::sleep_for(1s);
  row["kib_per_instance"] = (apps.rss_kib() - rss_before) / double(instances);

  std::vector<double> list_ms;
  for (int i = 0; i < 10; ++i) {
    auto t = WallClock::now();
    get(http, "/v2/apps");
    list_ms.push_back(seconds_since(t) * 1000);
  }
  row["app_list_ms"] = median(list_ms);

  auto t1 = WallClock::now();
  for (uint64_t a = 0; a < o.apps; ++a)
    post(http, "/v2/apps/bench/app-" + std::to_string(a) + "/restart", "", 200);
  wait_for([&] { return all_running(http, instances); }, 1800s, "every restart to finish");
  row["restart_all_s"] = seconds_since(t1);
  apps.stop();
  return row;
}

}  // namespace

int run_apps_bench(const AppsBenchOptions& o) {
  log().set_level(spdlog::level::warn);
  json params = {{"agents", o.agents}, {"apps", o.apps}, {"instances", o.instances}};
  return report_medians(
      "apps", o.runs, o.json, params, [&](int) { return measure(o); },
      [&](const Row& r) {
        std::printf(
            "apps framework, %llu simulated agents, %llu apps x %llu instances (medians "
            "of %d)\n",
            static_cast<unsigned long long>(o.agents), static_cast<unsigned long long>(o.apps),
            static_cast<unsigned long long>(o.instances), o.runs);
        std::printf("  %-22s %10.2f   (target <= 20)\n", "deploy_all_s", r.at("deploy_all_s"));
        std::printf("  %-22s %10.2f   (target <= 60)\n", "restart_all_s", r.at("restart_all_s"));
        std::printf("  %-22s %10.2f   (target <= 2)\n", "kib_per_instance",
                    r.at("kib_per_instance"));
        std::printf("  %-22s %10.2f\n", "app_list_ms", r.at("app_list_ms"));
      });
}

}  // namespace tessera::bench
