// The value types' wire conversions and checks, without any actor: a task's
// URIs and health check as the agent and executor will read them, the
// schema's defaults for what a framework leaves unset, what validate()
// refuses, and the health a status carries.

#include "services/scheduler/types.hpp"

#include <capnp/message.h>

#include <catch2/catch.hpp>

using namespace tessera;
using namespace std::chrono_literals;

namespace {

TaskSpec web_task() {
  TaskSpec t;
  t.id = "web";
  t.shell = "python3 -m http.server $PORT0";
  auto r = Resources::parse("cpus:1;mem:128");
  REQUIRE(r);
  t.resources = *r;
  return t;
}

HealthCheckSpec http_check(uint32_t port) {
  HealthCheckSpec c;
  c.type = HealthCheckType::HTTP;
  c.port = port;
  return c;
}

// validate() refused the task with Errc::invalid_argument and a message
// containing `words`.
bool refused(const TaskSpec& t, const std::string& words) {
  auto err = validate(t);
  INFO(describe(err));
  return is(err, Errc::invalid_argument) && what(err).find(words) != std::string::npos;
}

}  // namespace

TEST_CASE("a task's uris go on the wire in order with their flags", "[scheduler][types]") {
  auto t = web_task();
  t.uris = {{"http://10.0.0.1:8080/app.tar.gz"}, {"/opt/tools/run.sh", false, true, true}};
  REQUIRE(!validate(t));
  capnp::MallocMessageBuilder m;
  auto info = m.initRoot<wire::TaskInfo>();
  to_wire(t, info);
  auto uris = info.getCommand().getUris();
  REQUIRE(uris.size() == 2);
  CHECK(str(uris[0].getValue()) == "http://10.0.0.1:8080/app.tar.gz");
  CHECK(uris[0].getExtract());  // UriSpec's defaults are the schema's
  CHECK(!uris[0].getExecutable());
  CHECK(!uris[0].getCache());
  CHECK(str(uris[1].getValue()) == "/opt/tools/run.sh");
  CHECK(!uris[1].getExtract());
  CHECK(uris[1].getExecutable());
  CHECK(uris[1].getCache());
  CHECK(!info.hasHealthCheck());

  t.uris.push_back({});
  CHECK(refused(t, "uri without a value"));
}

TEST_CASE("an http health check goes on the wire with what the framework set",
          "[scheduler][types]") {
  auto t = web_task();
  auto c = http_check(31005);
  c.path = "/healthz";
  c.delay = 100ms;
  c.interval = 250ms;
  c.timeout = 1s;
  c.consecutive_failures = 2;
  c.grace_period = 0s;
  t.health_check = c;
  REQUIRE(!validate(t));
  capnp::MallocMessageBuilder m;
  auto info = m.initRoot<wire::TaskInfo>();
  to_wire(t, info);
  REQUIRE(info.hasHealthCheck());
  auto check = info.getHealthCheck();
  CHECK(check.getType() == wire::HealthCheck::Type::HTTP);
  CHECK(check.getPort() == 31005);
  CHECK(str(check.getPath()) == "/healthz");
  CHECK(check.getDelayNs() == 100'000'000);
  CHECK(check.getIntervalNs() == 250'000'000);
  CHECK(check.getTimeoutNs() == 1'000'000'000);
  CHECK(check.getConsecutiveFailures() == 2);
  CHECK(check.getGracePeriodNs() == 0);  // set to zero is not unset
  CHECK(!check.hasCommand());
}

TEST_CASE("an unset health check field reads as Mesos's default", "[scheduler][types]") {
  auto t = web_task();
  HealthCheckSpec c;
  c.command = "test -f ready";
  t.health_check = c;
  REQUIRE(!validate(t));
  capnp::MallocMessageBuilder m;
  auto info = m.initRoot<wire::TaskInfo>();
  to_wire(t, info);
  auto check = info.getHealthCheck();
  CHECK(check.getType() == wire::HealthCheck::Type::COMMAND);
  REQUIRE(check.getCommand().isShell());
  CHECK(str(check.getCommand().getShell()) == "test -f ready");
  CHECK(check.getDelayNs() == 15'000'000'000);
  CHECK(check.getIntervalNs() == 10'000'000'000);
  CHECK(check.getTimeoutNs() == 20'000'000'000);
  CHECK(check.getConsecutiveFailures() == 3);
  CHECK(check.getGracePeriodNs() == 10'000'000'000);

  auto tcp = web_task();
  HealthCheckSpec tc;
  tc.type = HealthCheckType::TCP;
  tc.port = 65535;
  tcp.health_check = tc;
  REQUIRE(!validate(tcp));
  capnp::MallocMessageBuilder m2;
  auto tcp_info = m2.initRoot<wire::TaskInfo>();
  to_wire(tcp, tcp_info);
  CHECK(tcp_info.getHealthCheck().getType() == wire::HealthCheck::Type::TCP);
  CHECK(tcp_info.getHealthCheck().getPort() == 65535);
}

TEST_CASE("validate refuses health checks the executor could not run", "[scheduler][types]") {
  auto t = web_task();
  HealthCheckSpec command;  // COMMAND by default, and no command
  t.health_check = command;
  CHECK(refused(t, "needs a command"));

  for (uint32_t port : {0u, 65536u, 100000u}) {
    t.health_check = http_check(port);
    CHECK(refused(t, "port " + std::to_string(port) + " is not in 1..65535"));
    auto tcp = http_check(port);
    tcp.type = HealthCheckType::TCP;
    t.health_check = tcp;
    CHECK(refused(t, "not in 1..65535"));
  }
  t.health_check = http_check(1);
  CHECK(!validate(t));

  for (const char* path : {"", "healthz", "/a b", "/a\r\nX: y"}) {
    auto c = http_check(8080);
    c.path = path;
    t.health_check = c;
    CHECK(refused(t, "must start with /"));
  }

  auto negative = [&](auto field, const std::string& name) {
    auto c = http_check(8080);
    c.*field = -1ns;
    t.health_check = c;
    CHECK(refused(t, "negative health check " + name));
  };
  negative(&HealthCheckSpec::delay, "delay");
  negative(&HealthCheckSpec::interval, "interval");
  negative(&HealthCheckSpec::timeout, "timeout");
  negative(&HealthCheckSpec::grace_period, "grace period");

  auto zero_failures = http_check(8080);
  zero_failures.consecutive_failures = 0;
  t.health_check = zero_failures;
  CHECK(refused(t, "at least 1"));

  auto zeros = http_check(8080);  // zero durations are allowed (no delay, no grace)
  zeros.delay = zeros.interval = zeros.timeout = zeros.grace_period = 0ns;
  t.health_check = zeros;
  CHECK(!validate(t));
}

TEST_CASE("a status carries healthy only when the executor set it", "[scheduler][types]") {
  capnp::MallocMessageBuilder m;
  auto s = m.initRoot<wire::TaskStatus>();
  s.setTaskId("web");
  s.setState(wire::TaskState::RUNNING);
  CHECK(!from_wire(s.asReader()).healthy);
  s.setHealthy(true);  // without hasHealthy it means nothing
  CHECK(!from_wire(s.asReader()).healthy);
  s.setHasHealthy(true);
  CHECK(from_wire(s.asReader()).healthy == std::optional<bool>(true));
  s.setHealthy(false);
  CHECK(from_wire(s.asReader()).healthy == std::optional<bool>(false));

  s.setState(wire::TaskState::FAILED);
  s.setReason(wire::TaskStatus::Reason::TASK_UNHEALTHY);
  s.setTermSignal(9);
  auto got = from_wire(s.asReader());
  CHECK(got.reason == TaskReason::TASK_UNHEALTHY);
  CHECK(got.term_signal == 9);
  CHECK(got.exit_code == -1);
}

TEST_CASE("the framework guide's fetch and health check examples are valid tasks",
          "[scheduler][types][docs]") {
  // As in docs/framework-guide.md, "Fetching, health checks and kill policies".
  tessera::TaskSpec task;
  task.id = "app-1";
  task.resources = tessera::Resources::scalar("cpus", 0.5) + tessera::Resources::scalar("mem", 128);
  task.uris = {{"http://10.0.0.5:8000/app.tar.gz"}};  // unpacked: holds run.sh
  task.shell = "./run.sh";
  CHECK(!validate(task));

  tessera::TaskSpec web;
  web.id = "web-1";
  web.resources = *tessera::Resources::parse("cpus:0.5;mem:128;ports:[31000-31000]");
  web.shell = "exec python3 -m http.server $PORT0";
  tessera::HealthCheckSpec check;
  check.type = tessera::HealthCheckType::HTTP;
  check.port = 31000;  // the port in web.resources, which PORT0 names
  check.path = "/";
  check.delay = std::chrono::seconds(1);
  check.interval = std::chrono::seconds(2);
  check.grace_period = std::chrono::seconds(5);
  web.health_check = check;
  web.kill_grace = std::chrono::seconds(2);
  CHECK(!validate(web));
}
