// Health checks: the policy alone (no time, no processes), the network
// probes against tiny servers, and the executor acting on their results.

#include "agent/executor_harness.hpp"
#include "services/executor/health_policy.hpp"
#include "services/executor/health_probe.hpp"

#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

using namespace tessera;
using namespace tessera::executor_test;

namespace {

// A listening socket on 127.0.0.1 (an ephemeral port); closed on destruction.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port nobody listens on (it was just freed).
uint16_t closed_port() {
  Listener l;
  return l.port();
}

// Answers the n-th request with codes[min(n, last)]; runs until destroyed.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::vector<int> codes)
      : codes_(std::move(codes)), thread_([this] { serve(); }) {}
  ~TinyHttpServer() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return listener_.port(); }
  int requests() const { return served_.load(); }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      int c = ::accept(listener_.fd(), nullptr, nullptr);
      if (c < 0)
        continue;
      char buf[1024];
      static_cast<void>(::recv(c, buf, sizeof buf, 0));  // the request; not parsed
      auto n = static_cast<size_t>(served_.fetch_add(1));
      int code = codes_[std::min(n, codes_.size() - 1)];
      auto reply = "HTTP/1.0 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
      static_cast<void>(::send(c, reply.data(), reply.size(), MSG_NOSIGNAL));
      ::close(c);
    }
  }

  Listener listener_;
  std::vector<int> codes_;
  std::atomic<int> served_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void sleeping_task_with(wire::ExecutorEvent::Builder b,
                        const std::function<void(wire::HealthCheck::Builder)>& check) {
  auto task = b.initLaunch();
  shell_task(task, "t1", "exec sleep 30");
  auto hc = task.initHealthCheck();
  hc.setDelayNs(0);
  hc.setIntervalNs(Duration(20ms).count());
  hc.setTimeoutNs(Duration(2s).count());
  hc.setGracePeriodNs(0);
  check(hc);
}

std::vector<bool> health_reports(const ScriptedRun& run) {
  std::vector<bool> out;
  for (auto& u : run.updates_of("t1"))
    if (u.state == State::RUNNING && u.has_healthy)
      out.push_back(u.healthy);
  return out;
}

}  // namespace

// -- the policy ---------------------------------------------------------------------

TEST_CASE("failures within the grace period are not counted", "[health]") {
  HealthPolicy policy({10s, 2});
  auto v = policy.record(false, 1s);
  CHECK_FALSE(v.counted);
  CHECK_FALSE(v.report);
  CHECK_FALSE(policy.record(false, 9s).kill);  // still in grace: never kills
  CHECK(policy.failures() == 0);
  CHECK_FALSE(policy.healthy());
  // After the grace period failures count, and the first is reported.
  v = policy.record(false, 11s);
  CHECK((v.counted && v.report && !v.healthy && !v.kill));
  v = policy.record(false, 12s);
  CHECK((v.counted && !v.report && v.kill));
}

TEST_CASE("a success ends the grace period early", "[health]") {
  HealthPolicy policy({10s, 2});
  auto v = policy.record(true, 1s);
  CHECK((v.counted && v.report && v.healthy));
  v = policy.record(false, 2s);  // within the grace period, yet counted
  CHECK((v.counted && v.report && !v.healthy && !v.kill));
  v = policy.record(true, 3s);  // a success resets the count
  CHECK((v.report && v.healthy));
  CHECK_FALSE(policy.record(false, 4s).kill);
  CHECK(policy.record(false, 5s).kill);
}

TEST_CASE("only the first result and changes are reported", "[health]") {
  HealthPolicy policy({0s, 3});
  CHECK(policy.record(true, 0s).report);
  CHECK_FALSE(policy.record(true, 1s).report);
  CHECK(policy.record(false, 2s).report);
  CHECK_FALSE(policy.record(false, 3s).report);
  CHECK(policy.record(false, 4s).kill);
  CHECK(policy.failures() == 3);
}

// -- the probes ---------------------------------------------------------------------

TEST_CASE("HTTP probes read the status code", "[health][probe]") {
  TinyHttpServer server({200, 500, 302});
  auto ok = probe_http(server.port(), "/", 1000ms);
  CHECK(ok.healthy);
  auto bad = probe_http(server.port(), "/", 1000ms);
  CHECK_FALSE(bad.healthy);
  CHECK(bad.message == "HTTP GET 127.0.0.1:" + std::to_string(server.port()) + "/ returned 500");
  CHECK(probe_http(server.port(), "/", 1000ms).healthy);  // a redirect is healthy
  CHECK_FALSE(probe_http(server.port(), "/a b", 1000ms).healthy);
}

TEST_CASE("probes fail on a closed port and time out on a silent one", "[health][probe]") {
  auto port = closed_port();
  auto tcp = probe_tcp(port, 1000ms);
  CHECK_FALSE(tcp.healthy);
  CHECK_THAT(tcp.message, Catch::EndsWith("connection refused"));
  CHECK_THAT(probe_http(port, "/", 1000ms).message, Catch::EndsWith("connection refused"));
  // A listener that never accepts: the connection opens (the kernel's
  // backlog) but no response ever comes.
  Listener silent;
  CHECK(probe_tcp(silent.port(), 1000ms).healthy);
  auto http = probe_http(silent.port(), "/", 50ms);
  CHECK_FALSE(http.healthy);
  CHECK_THAT(http.message, Catch::EndsWith("timed out after 50 ms"));
}

TEST_CASE("probes reach a task listening on IPv6 loopback", "[health][probe]") {
  httplib::Server server;
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  int port = server.bind_to_any_port("::1");
  if (port <= 0) {
    WARN("skipped: cannot listen on [::1] here (no IPv6 loopback)");
    return;
  }
  std::thread serving([&] { server.listen_after_bind(); });
  auto p = static_cast<uint16_t>(port);
  auto http = probe_http(p, "/health", 2000ms, ProbeFamily::ipv6);
  CHECK(http.healthy);
  CHECK(http.message == "HTTP GET [::1]:" + std::to_string(port) + "/health returned 204");
  auto tcp = probe_tcp(p, 2000ms, ProbeFamily::ipv6);
  CHECK(tcp.healthy);
  CHECK(tcp.message == "TCP connection to [::1]:" + std::to_string(port) + " succeeded");
  // Bound to ::1 only: the same port on 127.0.0.1 is not the task.
  CHECK_FALSE(probe_tcp(p, 2000ms).healthy);
  CHECK_FALSE(probe_http(p, "/health", 2000ms).healthy);
  server.stop();
  serving.join();
}

TEST_CASE("an HTTP probe reads the status, not the body", "[health][probe]") {
  httplib::Server server;
  // A body the probe must not wait for: it never ends.
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      std::string chunk(4096, 'x');
      return sink.write(chunk.data(), chunk.size());
    });
  });
  int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });
  auto r = probe_http(static_cast<uint16_t>(port), "/", 2000ms);
  CHECK(r.healthy);
  CHECK(r.message == "HTTP GET 127.0.0.1:" + std::to_string(port) + "/ returned 200");
  server.stop();
  serving.join();
}

// -- the executor -------------------------------------------------------------------

TEST_CASE("an HTTP check that turns bad makes the task unhealthy, then kills it",
          "[executor][health]") {
  TinyHttpServer server({200, 500});
  auto port = server.port();
  ScriptedRun run([port](wire::ExecutorEvent::Builder b) {
    sleeping_task_with(b, [port](wire::HealthCheck::Builder hc) {
      hc.setType(wire::HealthCheck::Type::HTTP);
      hc.setPort(port);
      hc.setConsecutiveFailures(2);
    });
  });
  auto end = run.wait_terminal("t1");
  CHECK(end.state == State::FAILED);
  CHECK(end.reason == Reason::TASK_UNHEALTHY);
  CHECK_THAT(end.message,
             Catch::Contains("HTTP GET 127.0.0.1:" + std::to_string(port) + "/ returned 500"));
  CHECK((end.has_healthy && !end.healthy));
  CHECK(health_reports(run) == std::vector<bool>{true, false});
  CHECK(run.wait_done() == 0);
  CHECK(server.requests() == 3);  // one success, then two failures in a row
}

TEST_CASE("a TCP check on a closed port fails the task", "[executor][health]") {
  auto port = closed_port();
  ScriptedRun run([port](wire::ExecutorEvent::Builder b) {
    sleeping_task_with(b, [port](wire::HealthCheck::Builder hc) {
      hc.setType(wire::HealthCheck::Type::TCP);
      hc.setPort(port);
      hc.setConsecutiveFailures(1);
    });
  });
  auto end = run.wait_terminal("t1");
  CHECK(end.state == State::FAILED);
  CHECK(end.reason == Reason::TASK_UNHEALTHY);
  CHECK_THAT(end.message, Catch::Contains("connection refused"));
  CHECK(health_reports(run) == std::vector<bool>{false});
  CHECK(run.wait_done() == 0);
}

TEST_CASE("a command check that exits 0 reports the task healthy once", "[executor][health]") {
  TempDir marks;
  auto ran = marks.path() / "ran";
  AgentScript script;
  script.launch = [ran](wire::ExecutorEvent::Builder b) {
    sleeping_task_with(b, [ran](wire::HealthCheck::Builder hc) {
      hc.setType(wire::HealthCheck::Type::COMMAND);
      // Counts its runs in a file, in the task's directory.
      hc.initCommand().setShell("echo x >> " + ran.string() + "; test \"$TESSERA_TASK_ID\" = t1");
    });
  };
  // Once three checks have run (all healthy), the framework kills the task.
  script.on_update = [ran](Probe& self, const Address& executor, const Update& u) {
    if (!u.has_healthy || u.state != State::RUNNING)
      return;
    when(
        self, [ran] { return std::filesystem::exists(ran) && testing::read_file(ran).size() >= 6; },
        [&self, executor] { self.send(executor, kill_event("t1")); });
  };
  ScriptedRun run(script);
  auto end = run.wait_terminal("t1");
  CHECK(end.state == State::KILLED);
  CHECK((end.has_healthy && end.healthy));
  CHECK(health_reports(run) == std::vector<bool>{true});
  CHECK(run.wait_done() == 0);
}
