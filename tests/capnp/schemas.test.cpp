// Round trips of representative messages of the core wire schemas through the
// flat-array encoding, and checks that every enum and union variant exists.
#include <capnp/agent.capnp.h>
#include <capnp/common.capnp.h>
#include <capnp/executor.capnp.h>
#include <capnp/scheduler.capnp.h>

#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wire = tessera::wire;

namespace {

// Encodes the builder's message and reads it back as a fresh reader would.
struct RoundTrip {
  kj::Array<capnp::word> words;
  capnp::FlatArrayMessageReader reader;
  explicit RoundTrip(capnp::MessageBuilder& m)
      : words(capnp::messageToFlatArray(m)), reader(words.asPtr()) {}
  template <typename T>
  typename T::Reader root() {
    return reader.getRoot<T>();
  }
};

std::string str(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

std::string_view name(wire::TaskState s) {
  switch (s) {
    case wire::TaskState::STAGING:
      return "staging";
    case wire::TaskState::STARTING:
      return "starting";
    case wire::TaskState::RUNNING:
      return "running";
    case wire::TaskState::KILLING:
      return "killing";
    case wire::TaskState::FINISHED:
      return "finished";
    case wire::TaskState::FAILED:
      return "failed";
    case wire::TaskState::KILLED:
      return "killed";
    case wire::TaskState::ERROR:
      return "error";
    case wire::TaskState::LOST:
      return "lost";
    case wire::TaskState::DROPPED:
      return "dropped";
    case wire::TaskState::UNREACHABLE:
      return "unreachable";
    case wire::TaskState::GONE:
      return "gone";
    case wire::TaskState::UNKNOWN:
      return "unknown";
  }
  return "?";
}

void fill_resources(capnp::List<wire::Resource>::Builder rs) {
  rs[0].setName("cpus");
  rs[0].setScalarMilli(1500);
  rs[1].setName("mem");
  rs[1].setRole("analytics");
  rs[1].setScalarMilli(4096000);
  rs[2].setName("ports");
  auto ranges = rs[2].initRanges(1);
  ranges[0].setBegin(31000);
  ranges[0].setEnd(32000);
}

}  // namespace

TEST_CASE("every TaskState has a distinct name") {
  auto enumerants = capnp::Schema::from<wire::TaskState>().getEnumerants();
  CHECK(enumerants.size() == 13);
  std::set<std::string_view> names;
  for (auto e : enumerants) {
    auto n = name(static_cast<wire::TaskState>(e.getOrdinal()));
    CHECK(n == e.getProto().getName().cStr());
    names.insert(n);
  }
  CHECK(names.size() == 13);
}

TEST_CASE("the enums hold the variants the protocols use") {
  using R = wire::TaskStatus::Reason;
  for (R r :
       {R::NONE, R::COMMAND_EXITED, R::CONTAINER_LIMITATION_MEMORY, R::TASK_UNHEALTHY,
        R::FETCH_FAILED, R::INVALID_OFFERS, R::TASK_INVALID, R::AGENT_REMOVED, R::AGENT_UNREACHABLE,
        R::FRAMEWORK_REMOVED, R::EXECUTOR_TERMINATED, R::RECONCILIATION, R::KILLED_BY_SCHEDULER}) {
    (void)r;
  }
  using S = wire::TaskStatus::Source;
  CHECK(capnp::Schema::from<S>().getEnumerants().size() == 3);
  for (S s : {S::MASTER, S::AGENT, S::EXECUTOR}) {
    (void)s;
  }
  using C = wire::FrameworkCapability;
  CHECK(capnp::Schema::from<C>().getEnumerants().size() == 5);
  for (C c : {C::PARTITION_AWARE, C::MULTI_ROLE, C::TASK_KILLED_STATE, C::REVOCABLE_RESOURCES,
              C::GPU_RESOURCES}) {
    (void)c;
  }
}

TEST_CASE("the unions hold the variants the protocols use") {
  auto count = [](auto schema) { return schema.getUnionFields().size(); };
  CHECK(count(capnp::Schema::from<wire::Resource>()) == 3);
  CHECK(count(capnp::Schema::from<wire::Attribute>()) == 3);
  CHECK(count(capnp::Schema::from<wire::CommandInfo>()) == 2);
  CHECK(count(capnp::Schema::from<wire::Operation>()) == 2);
  CHECK(count(capnp::Schema::from<wire::SchedulerCall>()) == 11);
  CHECK(count(capnp::Schema::from<wire::SchedulerEvent>()) == 8);
  CHECK(count(capnp::Schema::from<wire::ExecutorCall>()) == 3);
  CHECK(count(capnp::Schema::from<wire::ExecutorEvent>()) == 8);

  using Call = wire::SchedulerCall;
  for (auto w :
       {Call::SUBSCRIBE, Call::TEARDOWN, Call::ACCEPT, Call::DECLINE, Call::REVIVE, Call::SUPPRESS,
        Call::KILL, Call::SHUTDOWN, Call::ACKNOWLEDGE, Call::RECONCILE, Call::MESSAGE}) {
    (void)w;
  }
  using Event = wire::SchedulerEvent;
  for (auto w : {Event::SUBSCRIBED, Event::OFFERS, Event::RESCIND, Event::UPDATE, Event::MESSAGE,
                 Event::FAILURE, Event::ERROR, Event::HEARTBEAT}) {
    (void)w;
  }
  using ECall = wire::ExecutorCall;
  for (auto w : {ECall::SUBSCRIBE, ECall::UPDATE, ECall::MESSAGE}) {
    (void)w;
  }
  using EEvent = wire::ExecutorEvent;
  for (auto w : {EEvent::SUBSCRIBED, EEvent::LAUNCH, EEvent::LAUNCH_GROUP, EEvent::KILL,
                 EEvent::ACKNOWLEDGED, EEvent::MESSAGE, EEvent::SHUTDOWN, EEvent::ERROR}) {
    (void)w;
  }
}

TEST_CASE("defaults: unreserved role, 5 s refuse filter, extract URIs") {
  capnp::MallocMessageBuilder m;
  auto offer = m.initRoot<wire::Offer>();
  offer.initResources(1)[0].setName("cpus");
  offer.initAttributes(0);
  RoundTrip rt(m);
  auto r = rt.root<wire::Offer>();
  CHECK(str(r.getResources()[0].getRole()) == "*");

  capnp::MallocMessageBuilder f;
  f.initRoot<wire::Filters>();
  CHECK(f.getRoot<wire::Filters>().asReader().getRefuseSeconds() == 5.0);

  capnp::MallocMessageBuilder u;
  u.initRoot<wire::Uri>();
  CHECK(u.getRoot<wire::Uri>().asReader().getExtract());
}

TEST_CASE("a TaskInfo with argv and environment round trips") {
  capnp::MallocMessageBuilder m;
  auto task = m.initRoot<wire::TaskInfo>();
  task.setTaskId("t-1");
  task.setName("sleeper");
  task.setAgentId("a-1");
  fill_resources(task.initResources(3));
  auto cmd = task.initCommand();
  auto argv = cmd.initArgv(2);
  argv.set(0, "sleep");
  argv.set(1, "10");
  auto env = cmd.initEnvironment(1);
  env[0].setName("HOME");
  env[0].setValue("/tmp");
  cmd.setUser("nobody");
  auto uri = cmd.initUris(1)[0];
  uri.setValue("http://example.test/app.tar.gz");
  uri.setCache(true);
  task.initKillPolicy().setGracePeriodNs(3'000'000'000);
  auto label = task.initLabels(1)[0];
  label.setKey("team");
  label.setValue("infra");

  RoundTrip rt(m);
  auto r = rt.root<wire::TaskInfo>();
  CHECK(str(r.getTaskId()) == "t-1");
  CHECK(str(r.getName()) == "sleeper");
  CHECK(str(r.getAgentId()) == "a-1");
  REQUIRE(r.getResources().size() == 3);
  CHECK(r.getResources()[0].isScalarMilli());
  CHECK(r.getResources()[0].getScalarMilli() == 1500);
  CHECK(str(r.getResources()[1].getRole()) == "analytics");
  REQUIRE(r.hasCommand());
  CHECK_FALSE(r.hasExecutor());
  auto rc = r.getCommand();
  REQUIRE(rc.isArgv());
  REQUIRE(rc.getArgv().size() == 2);
  CHECK(str(rc.getArgv()[0]) == "sleep");
  CHECK(str(rc.getArgv()[1]) == "10");
  REQUIRE(rc.getEnvironment().size() == 1);
  CHECK(str(rc.getEnvironment()[0].getName()) == "HOME");
  CHECK(str(rc.getEnvironment()[0].getValue()) == "/tmp");
  CHECK(str(rc.getUser()) == "nobody");
  CHECK(rc.getUris()[0].getExtract());
  CHECK(rc.getUris()[0].getCache());
  CHECK_FALSE(rc.getUris()[0].getExecutable());
  CHECK(r.getKillPolicy().getGracePeriodNs() == 3'000'000'000);
  CHECK(str(r.getLabels()[0].getValue()) == "infra");
}

TEST_CASE("a TaskStatus round trips") {
  capnp::MallocMessageBuilder m;
  auto s = m.initRoot<wire::TaskStatus>();
  s.setTaskId("t-1");
  s.setState(wire::TaskState::FAILED);
  s.setReason(wire::TaskStatus::Reason::COMMAND_EXITED);
  s.setMessage("Command exited with status 3");
  s.setTimestampNs(1'700'000'000'000'000'000);
  const std::vector<capnp::byte> uuid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  s.setUuid(capnp::Data::Reader(uuid.data(), uuid.size()));
  s.setSource(wire::TaskStatus::Source::EXECUTOR);
  s.setHasHealthy(true);
  s.setHealthy(false);
  s.setAgentId("a-1");
  s.setExecutorId("e-1");

  RoundTrip rt(m);
  auto r = rt.root<wire::TaskStatus>();
  CHECK(str(r.getTaskId()) == "t-1");
  CHECK(r.getState() == wire::TaskState::FAILED);
  CHECK(name(r.getState()) == "failed");
  CHECK(r.getReason() == wire::TaskStatus::Reason::COMMAND_EXITED);
  CHECK(str(r.getMessage()) == "Command exited with status 3");
  CHECK(r.getTimestampNs() == 1'700'000'000'000'000'000);
  CHECK(std::vector<capnp::byte>(r.getUuid().begin(), r.getUuid().end()) == uuid);
  CHECK(r.getSource() == wire::TaskStatus::Source::EXECUTOR);
  CHECK(r.getHasHealthy());
  CHECK_FALSE(r.getHealthy());
  CHECK(str(r.getAgentId()) == "a-1");
  CHECK(str(r.getExecutorId()) == "e-1");
}

TEST_CASE("a SchedulerCall ACCEPT with a LAUNCH operation round trips") {
  capnp::MallocMessageBuilder m;
  auto call = m.initRoot<wire::SchedulerCall>();
  call.setFrameworkId("f-1");
  auto accept = call.initAccept();
  auto ids = accept.initOfferIds(2);
  ids.set(0, "o-1");
  ids.set(1, "o-2");
  auto ops = accept.initOperations(1);
  auto tasks = ops[0].initLaunch(1);
  tasks[0].setTaskId("t-1");
  tasks[0].setAgentId("a-1");
  fill_resources(tasks[0].initResources(3));
  tasks[0].initCommand().setShell("echo hi");
  accept.initFilters().setRefuseSeconds(30.0);

  RoundTrip rt(m);
  auto r = rt.root<wire::SchedulerCall>();
  CHECK(str(r.getFrameworkId()) == "f-1");
  REQUIRE(r.which() == wire::SchedulerCall::ACCEPT);
  auto ra = r.getAccept();
  REQUIRE(ra.getOfferIds().size() == 2);
  CHECK(str(ra.getOfferIds()[1]) == "o-2");
  REQUIRE(ra.getOperations().size() == 1);
  auto op = ra.getOperations()[0];
  REQUIRE(op.which() == wire::Operation::LAUNCH);
  REQUIRE(op.getLaunch().size() == 1);
  auto t = op.getLaunch()[0];
  CHECK(str(t.getTaskId()) == "t-1");
  REQUIRE(t.getCommand().isShell());
  CHECK(str(t.getCommand().getShell()) == "echo hi");
  CHECK(t.getResources()[2].getRanges()[0].getEnd() == 32000);
  CHECK(ra.getFilters().getRefuseSeconds() == 30.0);
}

TEST_CASE("an Offer with a port range and a reservation round trips") {
  capnp::MallocMessageBuilder m;
  auto event = m.initRoot<wire::SchedulerEvent>();
  auto offers = event.initOffers(1);
  auto o = offers[0];
  o.setOfferId("o-1");
  o.setFrameworkId("f-1");
  o.setAgentId("a-1");
  o.setHostname("host1");
  o.setAllocationRole("analytics");
  fill_resources(o.initResources(3));
  auto attrs = o.initAttributes(2);
  attrs[0].setName("rack");
  attrs[0].setText("r1");
  attrs[1].setName("generation");
  attrs[1].setScalar(3.0);

  RoundTrip rt(m);
  auto e = rt.root<wire::SchedulerEvent>();
  REQUIRE(e.which() == wire::SchedulerEvent::OFFERS);
  REQUIRE(e.getOffers().size() == 1);
  auto r = e.getOffers()[0];
  CHECK(str(r.getOfferId()) == "o-1");
  CHECK(str(r.getFrameworkId()) == "f-1");
  CHECK(str(r.getAgentId()) == "a-1");
  CHECK(str(r.getHostname()) == "host1");
  CHECK(str(r.getAllocationRole()) == "analytics");
  auto rs = r.getResources();
  REQUIRE(rs.size() == 3);
  CHECK(str(rs[0].getRole()) == "*");
  CHECK(str(rs[1].getName()) == "mem");
  CHECK(str(rs[1].getRole()) == "analytics");
  CHECK(rs[1].getScalarMilli() == 4096000);
  REQUIRE(rs[2].isRanges());
  REQUIRE(rs[2].getRanges().size() == 1);
  CHECK(rs[2].getRanges()[0].getBegin() == 31000);
  CHECK(rs[2].getRanges()[0].getEnd() == 32000);
  CHECK(r.getAttributes()[0].isText());
  CHECK(str(r.getAttributes()[0].getText()) == "r1");
  CHECK(r.getAttributes()[1].getScalar() == 3.0);
}

TEST_CASE("agent and executor messages round trip") {
  capnp::MallocMessageBuilder m;
  auto rr = m.initRoot<wire::ReregisterAgent>();
  rr.initAgentInfo().setAgentId("a-1");
  rr.getAgentInfo().setPort(5051);
  auto at = rr.initTasks(1)[0];
  at.initTask().setTaskId("t-1");
  at.setState(wire::TaskState::RUNNING);
  RoundTrip rt(m);
  auto r = rt.root<wire::ReregisterAgent>();
  CHECK(r.getAgentInfo().getPort() == 5051);
  CHECK(str(r.getTasks()[0].getTask().getTaskId()) == "t-1");
  CHECK(r.getTasks()[0].getState() == wire::TaskState::RUNNING);

  capnp::MallocMessageBuilder k;
  auto ev = k.initRoot<wire::ExecutorEvent>();
  auto kill = ev.initKill();
  kill.setTaskId("t-1");
  kill.setGracePeriodNs(5);
  RoundTrip kt(k);
  auto kr = kt.root<wire::ExecutorEvent>();
  REQUIRE(kr.which() == wire::ExecutorEvent::KILL);
  CHECK(str(kr.getKill().getTaskId()) == "t-1");
  CHECK(kr.getKill().getGracePeriodNs() == 5);
}
