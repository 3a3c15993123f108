#include "tools/tessera/bench_state.hpp"

#include "runtime/log.hpp"
#include "runtime/node.hpp"
#include "services/common/wire.hpp"
#include "services/http/client.hpp"
#include "services/master/master.hpp"
#include "services/master/master_http.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tools/tessera/bench_report.hpp"
#include "tools/tessera/sim_agent.hpp"

#include <capnp/agent.capnp.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

namespace tessera::bench {

namespace {

using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using json = nlohmann::json;

struct Progress {
  std::atomic<uint64_t> running{0};
};

// Launches `tasks` tasks as offers allow, then declines everything (so the
// allocator keeps offering: its cycles are the work measured).
class Filler : public Scheduler {
 public:
  Filler(caf::actor_config& cfg, ActorInit init, SchedulerConfig config, uint64_t tasks,
         Resources per_task, std::shared_ptr<Progress> progress)
      : Scheduler(cfg, std::move(init), std::move(config)),
        tasks_(tasks),
        per_task_(std::move(per_task)),
        progress_(std::move(progress)) {}

 protected:
  void offers(const std::vector<Offer>& offers) override {
    for (const auto& o : offers) {
      std::vector<TaskSpec> specs;
      auto left = o.resources.allocatable_to(o.role);
      while (next_ < tasks_ && left.contains(per_task_) && specs.size() < 16) {
        TaskSpec t;
        t.id = "t" + std::to_string(next_++);
        t.argv = {"sleep", "forever"};  // simulated: nothing runs
        t.resources = per_task_;
        left -= per_task_;
        specs.push_back(std::move(t));
      }
      if (specs.empty())
        decline({o.id}, 0s);
      else
        accept({o.id}, specs, 0s);
    }
  }
  void update(const TaskStatus& s) override {
    if (s.state == TaskState::RUNNING)
      ++progress_->running;
  }

 private:
  uint64_t tasks_;
  Resources per_task_;
  std::shared_ptr<Progress> progress_;
  uint64_t next_ = 0;
};

json snapshot(const std::string& http) {
  auto r = http::request(http, "GET", "/metrics/snapshot", "", "", 120s);
  if (!r || r->status != 200)
    throw std::runtime_error("cannot read /metrics/snapshot: " +
                             (r ? std::to_string(r->status) + " " + r->body : what(r.error())));
  return json::parse(r->body);
}

double snapshot_value(const std::string& http, const char* key) {
  auto s = snapshot(http);
  return s.contains(key) ? s[key].get<double>() : 0;
}

// Resident memory of this process, MiB.
double rss_mib() {
  std::ifstream in("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  in >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

void wait_for(const std::function<bool()>& done, std::chrono::seconds timeout, const char* what) {
  auto deadline = WallClock::now() + timeout;
  while (!done()) {
    if (WallClock::now() > deadline)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
    std::this_thread::sleep_for(100ms);
  }
}

// The allocator's p50 over its latest cycles (the last 64), after letting
// `settle` pass so that they are all of this phase.
double cycle_p50(const std::string& http, std::chrono::milliseconds settle) {
  std::this_thread::sleep_for(settle);
  return snapshot_value(http, "allocator/mesos/allocation_run_ms/p50");
}

// Holds n SUBSCRIBE streams open on raw sockets (one thread reads them all):
// what the server spends on idle subscribers.
class Subscribers {
 public:
  Subscribers(const std::string& http, size_t n) {
    auto colon = http.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(http.substr(colon + 1))));
    ::inet_pton(AF_INET, http.substr(0, colon).c_str(), &addr.sin_addr);
    std::string body = R"({"type":"SUBSCRIBE"})";
    std::string request =
        "POST /api/v1 HTTP/1.1\r\nHost: " + http +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    for (size_t i = 0; i < n; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (fd >= 0)
          ::close(fd);
        throw std::runtime_error("cannot open subscriber " + std::to_string(i));
      }
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0)
        throw std::runtime_error("cannot send a SUBSCRIBE");
      fds_.push_back(fd);
    }
    streams_.resize(fds_.size());
    // Each answer is drained as it comes, so no stream lags and is evicted.
    reader_ = std::thread([this] {
      std::vector<char> buffer(1 << 16);
      while (!stop_) {
        bool any = false;
        for (size_t i = 0; i < fds_.size(); ++i) {
          auto got = ::recv(fds_[i], buffer.data(), buffer.size(), MSG_DONTWAIT);
          if (got > 0) {
            any = true;
            note(streams_[i], std::string_view(buffer.data(), static_cast<size_t>(got)));
          }
        }
        if (!any)
          std::this_thread::sleep_for(5ms);
      }
    });
  }
  // Streams whose whole SUBSCRIBED record has arrived.
  size_t subscribed() const { return subscribed_; }

 private:
  // What one stream has received: its start (head, first chunk line, the
  // record's length line) until the SUBSCRIBED record's end is known.
  struct StreamProgress {
    std::string start;
    size_t received = 0;
    size_t record_end = 0;  // 0: not known yet
    bool done = false;
  };
  void note(StreamProgress& s, std::string_view bytes) {
    s.received += bytes.size();
    if (s.record_end == 0 && s.start.size() < 64 * 1024) {
      s.start.append(bytes.substr(0, 64 * 1024 - s.start.size()));
      // HTTP head, then "<hex chunk size>\r\n", then RecordIO "<length>\n".
      auto head = s.start.find("\r\n\r\n");
      auto chunk_line = head == std::string::npos ? head : s.start.find("\r\n", head + 4);
      auto length_line =
          chunk_line == std::string::npos ? chunk_line : s.start.find('\n', chunk_line + 2);
      if (length_line != std::string::npos)
        s.record_end =
            length_line + 1 + std::stoull(s.start.substr(chunk_line + 2, length_line - chunk_line));
    }
    if (!s.done && s.record_end != 0 && s.received >= s.record_end) {
      s.done = true;
      s.start = {};
      ++subscribed_;
    }
  }

 public:
  ~Subscribers() {
    stop_ = true;
    reader_.join();
    for (int fd : fds_)
      ::close(fd);
  }

 private:
  std::vector<int> fds_;
  std::vector<StreamProgress> streams_;  // the reader thread's
  std::atomic<bool> stop_{false};
  std::atomic<size_t> subscribed_{0};
  std::thread reader_;
};

Row measure(const StateBenchOptions& o) {
  NodeConfig nc;
  nc.host = "127.0.0.1";
  auto node = Node::start(nc);
  if (!node)
    throw std::runtime_error("cannot start a node: " + describe(node.error()));
  MasterConfig mc;
  mc.allocation_interval = 100ms;
  mc.agent_ping_interval = 10s;
  auto master = (*node)->spawn<Master>("master", mc);
  if (!master)
    throw std::runtime_error("cannot start the master");
  auto handle = std::make_shared<StateViewHandle>();
  StateViewConfig vc;
  vc.master = *master;
  vc.allocator = (*node)->address_of("master.allocator");
  vc.heartbeat_interval = 5s;
  vc.subscribers_max = o.streams + 100;
  if (!(*node)->spawn<StateView>("master.state", vc, handle))
    throw std::runtime_error("cannot start the state view");
  http::ServerConfig hc;
  hc.connections_max = o.streams + 1000;
  auto edge = MasterHttp::start(hc, handle);
  if (!edge)
    throw std::runtime_error("cannot start the HTTP edge: " + what(edge.error()));
  auto http = (*edge)->address();
  struct Stop {
    MasterHttp* edge;
    Node* node;
    ~Stop() {
      edge->stop();
      node->stop();
    }
  } stop{edge->get(), node->get()};

  // Agents big enough for their share of tasks, with room left to offer.
  uint64_t per_agent = (o.tasks + o.agents - 1) / o.agents;
  auto total = *Resources::parse("cpus:" + std::to_string(per_agent + 8) +
                                 ";mem:" + std::to_string((per_agent + 8) * 128) + ";disk:100000");
  for (uint64_t i = 0; i < o.agents; ++i)
    (*node)->spawn<SimAgent>("agent-" + std::to_string(i), *master, total, i + 1);
  wait_for(
      [&] {
        try {
          return snapshot_value(http, "master/slaves_connected") >= double(o.agents);
        } catch (const std::exception&) {
          return false;  // the state view has no snapshot yet
        }
      },
      300s, "the agents to register");
  auto progress = std::make_shared<Progress>();
  SchedulerConfig sc;
  sc.master = *master;
  sc.framework.name = "bench-state";
  sc.framework.user = "bench";
  (*node)->spawn<Filler>("filler", sc, o.tasks, *Resources::parse("cpus:1;mem:64"), progress);
  wait_for([&] { return progress->running.load() >= o.tasks; }, 900s, "the tasks to run");
  wait_for([&] { return snapshot_value(http, "master/tasks_running") >= double(o.tasks); }, 120s,
           "the state view to see every task");

  Row row;
  // GET_STATE, end to end through the HTTP edge.
  std::vector<double> ms;
  size_t bytes = 0;
  for (int i = 0; i < 10; ++i) {
    auto started = WallClock::now();
    auto r =
        http::request(http, "POST", "/api/v1", R"({"type":"GET_STATE"})", "application/json", 120s);
    if (!r || r->status != 200)
      throw std::runtime_error(
          "GET_STATE failed: " +
          (r ? std::to_string(r->status) + " " + r->body.substr(0, 200) : what(r.error())));
    ms.push_back(std::chrono::duration<double, std::milli>(WallClock::now() - started).count());
    bytes = r->body.size();
  }
  row["state_ms_p50"] = median(ms);
  // The same, timed to the first byte of the answer: what the master
  // takes (waiting its turn, rendering) apart from the transfer.
  std::vector<double> first_ms;
  for (int i = 0; i < 10; ++i) {
    auto started = WallClock::now();
    double first = -1;
    auto status = http::stream(
        http, "POST", "/api/v1", R"({"type":"GET_STATE"})",
        [&](std::string_view) {
          if (first < 0)
            first = std::chrono::duration<double, std::milli>(WallClock::now() - started).count();
          return true;
        },
        120s);
    if (!status || *status != 200 || first < 0)
      throw std::runtime_error("GET_STATE (streamed) failed");
    first_ms.push_back(first);
  }
  row["state_first_byte_ms_p50"] = median(first_ms);
  row["state_bytes"] = double(bytes);

  auto phase = std::chrono::milliseconds(static_cast<int64_t>(o.phase_s * 1000));
  row["cycle_ms_p50_idle"] = cycle_p50(http, phase);
  {
    std::atomic<bool> stop_polling{false};
    std::atomic<uint64_t> polls{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 20; ++c)
      clients.emplace_back([&] {
        // The pollers stand in for clients on other machines: on this
        // one they must not take the cores the allocator runs on.
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
        while (!stop_polling) {
          auto r = http::request(http, "POST", "/api/v1", R"({"type":"GET_STATE"})",
                                 "application/json", 120s);
          if (r && r->status == 200)
            ++polls;
        }
      });
    row["cycle_ms_p50_polled"] = cycle_p50(http, phase);
    stop_polling = true;
    for (auto& t : clients)
      t.join();
    row["state_polls_per_s"] = double(polls.load()) / o.phase_s;
  }
  // Idle SUBSCRIBE streams: memory once their snapshots are read.
  if (o.streams > 0) {
    ::malloc_trim(0);  // what is held, not what malloc kept after the polls
    auto before = rss_mib();
    Subscribers subs(http, o.streams);
    wait_for([&] { return snapshot_value(http, "master/subscribers") >= double(o.streams); }, 600s,
             "the subscribers");
    wait_for([&] { return subs.subscribed() >= o.streams; }, 600s, "the subscribers' snapshots");
    std::this_thread::sleep_for(1s);
    ::malloc_trim(0);
    row["streams"] = double(o.streams);
    row["streams_extra_mib"] = rss_mib() - before;
  }
  return row;
}

}  // namespace

int run_state_bench(const StateBenchOptions& o) {
  set_log_level("error");
  json params = {{"agents", o.agents}, {"tasks", o.tasks}, {"streams", o.streams}};
  return report_medians(
      "state", o.runs, o.json, params, [&](int) { return measure(o); },
      [&](const Row& r) {
        std::printf("GET_STATE, %llu agents, %llu tasks (medians of %d runs)\n",
                    static_cast<unsigned long long>(o.agents),
                    static_cast<unsigned long long>(o.tasks), o.runs);
        std::printf("  %-28s %12.1f ms\n", "state_ms_p50", r.at("state_ms_p50"));
        std::printf("  %-28s %12.1f ms\n", "state_first_byte_ms_p50",
                    r.at("state_first_byte_ms_p50"));
        std::printf("  %-28s %12.0f bytes\n", "state_bytes", r.at("state_bytes"));
        std::printf("  %-28s %12.3f ms\n", "cycle_ms_p50_idle", r.at("cycle_ms_p50_idle"));
        std::printf("  %-28s %12.3f ms\n", "cycle_ms_p50_polled", r.at("cycle_ms_p50_polled"));
        std::printf("  %-28s %12.1f\n", "state_polls_per_s", r.at("state_polls_per_s"));
        if (r.count("streams"))
          std::printf("  %-28s %12.1f MiB for %.0f streams\n", "streams_extra_mib",
                      r.at("streams_extra_mib"), r.at("streams"));
      });
}

}  // namespace tessera::bench
