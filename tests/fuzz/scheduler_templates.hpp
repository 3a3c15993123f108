#pragma once
// What a master (and an agent) sends a scheduler driver under fuzz
// (scheduler_dispatch): valid messages of every type it handles. The enums
// give fuzz_seeds the record bytes of realistic flows.

#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "tests/fuzz/fuzz_world.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/common.capnp.h>
#include <capnp/scheduler.capnp.h>

namespace tessera::fuzz {

// Who sends (a record's sender byte).
struct SchedulerFrom {
  enum : uint8_t { master, agent, nobody };
};

// A record's kind byte: the template, or advance_time.
struct SchedulerKind {
  enum : uint8_t {
    subscribed,
    offers,
    rescind,
    update_running,
    update_failed,
    update_reconciled,
    executor_message,
    failure,
    error,
    heartbeat,
    not_leader,
    sandbox_file,
    count,
    advance_time = count
  };
};

inline std::vector<Template> scheduler_templates(const Address& master) {
  using Event = wire::SchedulerEvent::Builder;
  auto event = [](std::function<void(Event, const Words&)> fill) {
    return template_of<wire::SchedulerEvent>(std::move(fill));
  };
  auto update = [event](wire::TaskState state, wire::TaskStatus::Reason reason) {
    return event([state, reason](Event b, const Words& w) {
      auto s = b.initUpdate();
      s.setTaskId(w.last("taskId", "t1"));
      s.setAgentId("a1");
      s.setState(state);
      s.setReason(reason);
      s.setSource(wire::TaskStatus::Source::EXECUTOR);
      s.setUuid(tessera::data("uuid-" + std::to_string(static_cast<int>(state))));
    });
  };
  std::vector<Template> t(SchedulerKind::count);
  t[SchedulerKind::subscribed] = event([](Event b, const Words&) {
    auto s = b.initSubscribed();
    s.setFrameworkId("f1");
    s.setHeartbeatIntervalNs(15'000'000'000);
  });
  t[SchedulerKind::offers] = event([master](Event b, const Words&) {
    auto list = b.initOffers(2);
    auto r = Resources::parse("cpus:2;mem:512;ports:[31000-31004]");
    if (!r)
      std::abort();
    for (unsigned i = 0; i < list.size(); ++i) {
      list[i].setOfferId("o" + std::to_string(i + 1));
      list[i].setFrameworkId("f1");
      list[i].setAgentId("a" + std::to_string(i + 1));
      list[i].setHostname("host");
      to_wire(*r, list[i].initResources(wire_size(*r)));
      list[i].setAllocationRole("*");
      list[i].setAgentAddress(Address{"agent", master.host, master.port}.to_string());
    }
  });
  t[SchedulerKind::rescind] = event([](Event b, const Words&) { b.setRescind("o1"); });
  t[SchedulerKind::update_running] =
      update(wire::TaskState::RUNNING, wire::TaskStatus::Reason::NONE);
  t[SchedulerKind::update_failed] =
      update(wire::TaskState::FAILED, wire::TaskStatus::Reason::COMMAND_EXITED);
  t[SchedulerKind::update_reconciled] =
      update(wire::TaskState::LOST, wire::TaskStatus::Reason::RECONCILIATION);
  t[SchedulerKind::executor_message] = event([](Event b, const Words&) {
    auto m = b.initMessage();
    m.setAgentId("a1");
    m.setExecutorId("e1");
    m.setData(tessera::data("ping"));
  });
  t[SchedulerKind::failure] = event([](Event b, const Words&) {
    auto f = b.initFailure();
    f.setAgentId("a1");
    f.setExecutorId("e1");
    f.setStatus(256);
  });
  t[SchedulerKind::error] = event([](Event b, const Words&) { b.setError("framework removed"); });
  t[SchedulerKind::heartbeat] =
      event([](Event b, const Words&) { b.initHeartbeat().initSuppressedRoles(1).set(0, "*"); });
  t[SchedulerKind::not_leader] = template_of<wire::NotLeader>(
      [master](wire::NotLeader::Builder b, const Words&) { b.setLeader(master.to_string()); });
  t[SchedulerKind::sandbox_file] =
      template_of<wire::SandboxFile>([](wire::SandboxFile::Builder b, const Words&) {
        b.setData(tessera::data("out"));
        b.setSize(3);
      });
  return t;
}

}  // namespace tessera::fuzz
