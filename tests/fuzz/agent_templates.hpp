#pragma once
// What a master, executors and readers send an agent under fuzz
// (agent_dispatch): valid messages of every type it handles but the
// launches. The enums give fuzz_seeds the record bytes of realistic flows.

#include "services/common/wire.hpp"
#include "tests/fuzz/fuzz_world.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/common.capnp.h>
#include <capnp/executor.capnp.h>

namespace tessera::fuzz {

// Who sends (a record's sender byte).
struct AgentFrom {
  enum : uint8_t { master, executor, reader, nobody };
};

// A record's kind byte: the template, or advance_time.
struct AgentKind {
  enum : uint8_t {
    registered,
    reregistered,
    ping,
    container_usage,
    kill_task,
    ack,
    shutdown_framework,
    shutdown_executor,
    shutdown_agent,
    framework_message,
    read_sandbox,
    not_leader,
    executor_subscribe,
    executor_update,
    executor_message,
    count,
    advance_time = count
  };
};

inline std::vector<Template> agent_templates(const Address& master) {
  using K = AgentKind;
  using Call = wire::ExecutorCall::Builder;
  auto call = [](std::function<void(Call, const Words&)> fill) {
    return template_of<wire::ExecutorCall>([fill](Call b, const Words& w) {
      b.setFrameworkId("f1");
      b.setExecutorId("e1");
      fill(b, w);
    });
  };
  auto status = [](wire::TaskStatus::Builder s) {
    s.setTaskId("t1");
    s.setState(wire::TaskState::RUNNING);
    s.setUuid(data("uuid-1"));
    s.setSource(wire::TaskStatus::Source::EXECUTOR);
  };
  std::vector<Template> t(K::count);
  t[K::registered] =
      template_of<wire::AgentRegistered>([](wire::AgentRegistered::Builder b, const Words& w) {
        b.setAgentId("agent-1");
        b.setPingIntervalNs(1'000'000'000);
        b.setBootId(w.last("bootId", "boot-1"));
      });
  t[K::reregistered] =
      template_of<wire::AgentReregistered>([](wire::AgentReregistered::Builder b, const Words& w) {
        b.setAgentId("agent-1");
        b.setPingIntervalNs(1'000'000'000);
        b.setBootId(w.last("bootId", "boot-1"));
        b.setRegistrationSeq(1);
      });
  t[K::ping] = template_of<wire::Ping>([](wire::Ping::Builder b, const Words&) {
    b.setSeq(1);
    auto k = b.initAudit(1)[0];
    k.setFrameworkId("f1");
    k.setTaskId("t1");
  });
  t[K::container_usage] =
      template_of<wire::GetContainerUsage>([](wire::GetContainerUsage::Builder, const Words&) {});
  t[K::kill_task] = template_of<wire::KillTask>([](wire::KillTask::Builder b, const Words&) {
    b.setFrameworkId("f1");
    b.setTaskId("t1");
    b.setGracePeriodNs(1'000'000'000);
  });
  t[K::ack] =
      template_of<wire::StatusUpdateAck>([](wire::StatusUpdateAck::Builder b, const Words& w) {
        b.setAgentId("agent-1");
        b.setFrameworkId("f1");
        b.setTaskId("t1");
        b.setUuid(data(w.last("uuid", "uuid-1")));
      });
  t[K::shutdown_framework] = template_of<wire::ShutdownFramework>(
      [](wire::ShutdownFramework::Builder b, const Words&) { b.setFrameworkId("f1"); });
  t[K::shutdown_executor] =
      template_of<wire::ShutdownExecutor>([](wire::ShutdownExecutor::Builder b, const Words&) {
        b.setFrameworkId("f1");
        b.setExecutorId("e1");
      });
  t[K::shutdown_agent] = template_of<wire::ShutdownAgent>(
      [](wire::ShutdownAgent::Builder b, const Words&) { b.setReason("removed"); });
  t[K::framework_message] = template_of<wire::FrameworkToExecutor>(
      [](wire::FrameworkToExecutor::Builder b, const Words&) {
        b.setFrameworkId("f1");
        b.setExecutorId("e1");
        b.setData(data("hi"));
      });
  t[K::read_sandbox] =
      template_of<wire::ReadSandboxFile>([](wire::ReadSandboxFile::Builder b, const Words&) {
        b.setFrameworkId("f1");
        b.setTaskId("t1");
        b.setPath("stdout");
        b.setLengthMax(100);
      });
  t[K::not_leader] = template_of<wire::NotLeader>(
      [master](wire::NotLeader::Builder b, const Words&) { b.setLeader(master.to_string()); });
  t[K::executor_subscribe] = call([status](Call b, const Words&) {
    auto s = b.initSubscribe();
    status(s.initUnacknowledgedUpdates(1)[0]);
    s.initUnacknowledgedTasks(1)[0].setTaskId("t1");
  });
  t[K::executor_update] = call([status](Call b, const Words&) { status(b.initUpdate()); });
  t[K::executor_message] = call([](Call b, const Words&) { b.setMessage(data("out")); });
  return t;
}

}  // namespace tessera::fuzz
