#pragma once
// A master under fuzz (master_dispatch, operator_api) and the templates of
// what its peers send it: valid messages of every type it handles, filled
// with the ids the peers heard last (fuzz_world.hpp patches them). The
// enums give fuzz_seeds the record bytes of realistic flows.

#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "services/master/master.hpp"
#include "tests/fuzz/fuzz_world.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/allocator.capnp.h>
#include <capnp/operator.capnp.h>
#include <capnp/scheduler.capnp.h>

namespace tessera::fuzz {

// Who sends (a record's sender byte), in the order add_master adds them.
struct MasterFrom {
  enum : uint8_t { agent1, agent2, framework1, framework2, operator1, nobody };
};

// A record's kind byte: the template, or advance_time.
struct MasterKind {
  enum : uint8_t {
    register_agent,
    reregister_agent,
    update_running,
    update_finished,
    exited_executor,
    executor_message,
    pong,
    subscribe,
    accept_launch,
    accept_group,
    decline,
    revive,
    suppress,
    kill,
    shutdown_executor,
    acknowledge,
    reconcile,
    framework_message,
    teardown,
    op_quota,
    op_weights,
    op_teardown,
    op_kill,
    op_deactivate,
    op_reactivate,
    op_drain,
    op_reserve,
    op_unreserve,
    subscribe_events,
    metrics,
    allocator_offers,
    count,
    advance_time = count
  };
};

// Resources (text form, valid) into a list the builder inits.
template <class Init>
void put_resources(const char* text, Init&& init) {
  auto r = Resources::parse(text);
  if (!r)
    std::abort();
  to_wire(*r, init(wire_size(*r)));
}

inline void launch_task(wire::TaskInfo::Builder t, const Words& w) {
  t.setTaskId(w.last("taskId", "t1"));
  t.setName("task");
  put_resources("cpus:1;mem:128", [&](unsigned n) { return t.initResources(n); });
  t.initCommand().setShell("true");
}

inline std::vector<Template> master_templates() {
  using Call = wire::SchedulerCall::Builder;
  using Op = wire::OperatorCall::Builder;
  auto call = [](std::function<void(Call, const Words&)> fill) {
    return template_of<wire::SchedulerCall>([fill](Call b, const Words& w) {
      b.setFrameworkId(w.last("frameworkId"));
      fill(b, w);
    });
  };
  auto op = [](std::function<void(Op, const Words&)> fill) {
    return template_of<wire::OperatorCall>(std::move(fill));
  };
  auto update = [](wire::TaskState state) {
    return template_of<wire::StatusUpdate>([state](wire::StatusUpdate::Builder b, const Words& w) {
      b.setFrameworkId(w.last("frameworkId"));
      auto s = b.initStatus();
      s.setTaskId(w.last("taskId", "t1"));
      s.setAgentId(w.last("agentId"));
      s.setState(state);
      s.setUuid(data("uuid-" + std::to_string(static_cast<int>(state))));
      s.setSource(wire::TaskStatus::Source::EXECUTOR);
      b.setLatestState(state);
    });
  };
  std::vector<Template> t(MasterKind::count);
  t[MasterKind::register_agent] =
      template_of<wire::RegisterAgent>([](wire::RegisterAgent::Builder b, const Words&) {
        b.setBootId("boot-1");
        auto info = b.initAgentInfo();
        info.setHostname("host-a");
        put_resources("cpus:4;mem:4096;disk:1000;ports:[31000-31009]",
                      [&](unsigned n) { return info.initResources(n); });
      });
  t[MasterKind::reregister_agent] =
      template_of<wire::ReregisterAgent>([](wire::ReregisterAgent::Builder b, const Words& w) {
        b.setBootId("boot-2");
        b.setRegistrationSeq(1);
        auto info = b.initAgentInfo();
        info.setAgentId(w.last("agentId", "a1"));
        put_resources("cpus:4;mem:4096", [&](unsigned n) { return info.initResources(n); });
        auto task = b.initTasks(1)[0];
        task.setFrameworkId(w.last("frameworkId"));
        launch_task(task.initTask(), w);
        task.setState(wire::TaskState::RUNNING);
        task.setLatestState(wire::TaskState::RUNNING);
      });
  t[MasterKind::update_running] = update(wire::TaskState::RUNNING);
  t[MasterKind::update_finished] = update(wire::TaskState::FINISHED);
  t[MasterKind::exited_executor] =
      template_of<wire::ExitedExecutor>([](wire::ExitedExecutor::Builder b, const Words& w) {
        b.setFrameworkId(w.last("frameworkId"));
        b.setExecutorId(w.last("executorId", "e1"));
        b.setStatus(9);
      });
  t[MasterKind::executor_message] = template_of<wire::ExecutorToFramework>(
      [](wire::ExecutorToFramework::Builder b, const Words& w) {
        b.setAgentId(w.last("agentId"));
        b.setFrameworkId(w.last("frameworkId"));
        b.setExecutorId(w.last("executorId", "e1"));
        b.setData(data("hello"));
      });
  t[MasterKind::pong] = template_of<wire::Pong>([](wire::Pong::Builder b, const Words& w) {
    b.setSeq(1);
    b.initFrameworks(1).set(0, w.last("frameworkId", "f1"));
    auto u = b.initUnknown(1)[0];
    u.setFrameworkId(w.last("frameworkId"));
    u.setTaskId(w.last("taskId", "t1"));
  });
  t[MasterKind::subscribe] = call([](Call b, const Words&) {
    auto s = b.initSubscribe();
    s.setSubscriptionId("sub-1");
    auto info = s.initFrameworkInfo();
    info.setName("fuzz");
    info.initRoles(1).set(0, "*");
    info.setFailoverTimeoutNs(60'000'000'000);
    info.initCapabilities(1).set(0, wire::FrameworkCapability::PARTITION_AWARE);
  });
  t[MasterKind::accept_launch] = call([](Call b, const Words& w) {
    auto a = b.initAccept();
    a.initOfferIds(1).set(0, w.last("offerId"));
    launch_task(a.initOperations(1)[0].initLaunch(1)[0], w);
    a.initFilters().setRefuseSeconds(0);
  });
  t[MasterKind::accept_group] = call([](Call b, const Words& w) {
    auto a = b.initAccept();
    a.initOfferIds(1).set(0, w.last("offerId"));
    auto group = a.initOperations(1)[0].initLaunchGroup();
    group.initExecutor().setExecutorId("e1");
    group.getExecutor().setType(wire::ExecutorInfo::Type::DEFAULT);
    launch_task(group.initTasks(1)[0], w);
  });
  t[MasterKind::decline] = call([](Call b, const Words& w) {
    auto d = b.initDecline();
    d.initOfferIds(1).set(0, w.last("offerId"));
    d.initFilters().setRefuseSeconds(1);
  });
  t[MasterKind::revive] = call([](Call b, const Words&) { b.initRevive(); });
  t[MasterKind::suppress] =
      call([](Call b, const Words&) { b.initSuppress().initRoles(1).set(0, "*"); });
  t[MasterKind::kill] = call([](Call b, const Words& w) {
    auto k = b.initKill();
    k.setTaskId(w.last("taskId", "t1"));
    k.setAgentId(w.last("agentId"));
  });
  t[MasterKind::shutdown_executor] = call([](Call b, const Words& w) {
    auto s = b.initShutdown();
    s.setExecutorId(w.last("executorId", "e1"));
    s.setAgentId(w.last("agentId"));
  });
  t[MasterKind::acknowledge] = call([](Call b, const Words& w) {
    auto a = b.initAcknowledge();
    a.setAgentId(w.last("agentId"));
    a.setTaskId(w.last("taskId", "t1"));
    a.setUuid(data(w.last("uuid")));
  });
  t[MasterKind::reconcile] = call([](Call b, const Words& w) {
    auto r = b.initReconcile().initTasks(1)[0];
    r.setTaskId(w.last("taskId", "t1"));
    r.setAgentId(w.last("agentId"));
  });
  t[MasterKind::framework_message] = call([](Call b, const Words& w) {
    auto m = b.initMessage();
    m.setAgentId(w.last("agentId"));
    m.setExecutorId(w.last("executorId", "e1"));
    m.setData(data("hi"));
  });
  t[MasterKind::teardown] = call([](Call b, const Words&) { b.setTeardown(); });
  t[MasterKind::op_quota] = op([](Op b, const Words&) {
    auto q = b.initUpdateQuota();
    q.setRole("web");
    put_resources("cpus:2;mem:256", [&](unsigned n) { return q.initLimit(n); });
  });
  t[MasterKind::op_weights] = op([](Op b, const Words&) {
    auto w = b.initUpdateWeights(1)[0];
    w.setRole("web");
    w.setWeight(2.5);
  });
  t[MasterKind::op_teardown] =
      op([](Op b, const Words& w) { b.setTeardown(w.last("frameworkId")); });
  t[MasterKind::op_kill] = op([](Op b, const Words& w) {
    auto k = b.initKillTask();
    k.setFrameworkId(w.last("frameworkId"));
    k.setTaskId(w.last("taskId", "t1"));
  });
  t[MasterKind::op_deactivate] =
      op([](Op b, const Words& w) { b.setDeactivateAgent(w.last("agentId")); });
  t[MasterKind::op_reactivate] =
      op([](Op b, const Words& w) { b.setReactivateAgent(w.last("agentId")); });
  t[MasterKind::op_drain] = op([](Op b, const Words& w) {
    auto d = b.initDrainAgent();
    d.setAgentId(w.last("agentId"));
    d.setMaxGracePeriodNs(1'000'000'000);
  });
  auto reservation = [](bool reserve) {
    return [reserve](Op b, const Words& w) {
      auto r = reserve ? b.initReserveResources() : b.initUnreserveResources();
      r.setAgentId(w.last("agentId"));
      put_resources("cpus(web):1;mem(web):64", [&](unsigned n) { return r.initResources(n); });
    };
  };
  t[MasterKind::op_reserve] = op(reservation(true));
  t[MasterKind::op_unreserve] = op(reservation(false));
  t[MasterKind::subscribe_events] = template_of<wire::SubscribeMasterEvents>(
      [](wire::SubscribeMasterEvents::Builder, const Words&) {});
  t[MasterKind::metrics] = template_of<wire::MasterMetricsRequest>(
      [](wire::MasterMetricsRequest::Builder, const Words&) {});
  t[MasterKind::allocator_offers] =
      template_of<wire::AllocatorOffers>([](wire::AllocatorOffers::Builder b, const Words& w) {
        auto g = b.initGrants(1)[0];
        g.setFrameworkId(w.last("frameworkId"));
        g.setAgentId(w.last("agentId"));
        g.setRole("*");
        put_resources("cpus:1;mem:64", [&](unsigned n) { return g.initResources(n); });
        g.setAgentEpoch(1);
      });
  return t;
}

// Records of a cluster at work: an agent registers, a framework subscribes,
// takes an offer with a launch, and the task runs.
inline std::string master_flow() {
  using K = MasterKind;
  using F = MasterFrom;
  return record(K::register_agent, F::agent1) + record(K::subscribe, F::framework1) +
         record(K::advance_time, 1) + record(K::accept_launch, F::framework1) +
         record(K::update_running, F::agent1);
}

// The master as "master" on the world's home node, with its peers: two
// agents that answer pings, two frameworks and an operator.
inline void add_master(World& world, MasterConfig config = {}) {
  using namespace std::chrono_literals;
  config.registry = std::make_shared<MemoryStore>();
  config.seed = 1;
  config.agent_ping_interval = 1s;
  config.agent_ping_timeout = 1s;
  config.framework_heartbeat_interval = 5s;
  config.offer_timeout = 30s;
  config.agent_reregister_timeout = 1min;
  config.agent_removal_timeout = 5min;
  if (!world.home.spawn<Master>("master", config))
    std::abort();
  auto agent = [](Peer& p) {
    p.listen<wire::AgentRegistered, wire::AgentReregistered, wire::RunTask, wire::RunTaskGroup,
             wire::KillTask, wire::StatusUpdateAck, wire::ShutdownFramework, wire::ShutdownExecutor,
             wire::ShutdownAgent, wire::FrameworkToExecutor>();
    p.listen<wire::Ping>([](Peer& self, const Received<wire::Ping>& m) {
      self.reply(m, build<wire::Pong>([&](wire::Pong::Builder b) { b.setSeq(m.body().getSeq()); }));
    });
  };
  auto framework = [](Peer& p) { p.listen<wire::SchedulerEvent>(); };
  world.add_peer("agent1", agent);
  world.add_peer("agent2", agent);
  world.add_peer("framework1", framework);
  world.add_peer("framework2", framework);
  world.add_peer("operator", [](Peer& p) {
    p.listen<wire::OperatorResponse, wire::MasterEventBatch, wire::MasterMetrics>();
  });
  world.started("master");
}

}  // namespace tessera::fuzz
