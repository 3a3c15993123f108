#pragma once
// The master tests' harness: a deterministic Simulation with the real
// master, scripted agents and frameworks (Probe actors) that log what the
// master tells them, and builders for the messages they send. Included by
// each test file of tests/master (an anonymous namespace: one copy per file).

#include "runtime/simulation.hpp"
#include "services/master/master.hpp"
#include "support/ping_pong.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

namespace tessera::testing {

using namespace std::chrono_literals;
using State = wire::TaskState;
using Reason = wire::TaskStatus::Reason;

struct Update {
  std::string task;
  State state;
  Reason reason;
  std::string message;
  std::string uuid;
  std::string agent;
};

struct OfferSeen {
  std::string id;
  std::string agent;
  std::string role;
  std::string resources;
  std::string agent_address;
};

// What a scripted framework has heard.
struct FrameworkLog {
  std::string id;
  std::vector<std::string> ids;  // every subscribed event's, in order
  std::vector<OfferSeen> offers;
  std::vector<std::string> rescinded;
  std::vector<Update> updates;
  std::vector<std::string> errors;
  size_t heartbeats = 0;
  size_t failures = 0;
};

// What a scripted agent has heard.
struct AgentLog {
  std::string id;
  std::vector<std::string> ids;  // every AgentRegistered's, in order
  size_t registered = 0;
  size_t reregistered = 0;
  std::vector<std::string> run_tasks;
  struct Group {
    std::string framework;
    std::string executor;
    wire::ExecutorInfo::Type type;
    std::string executor_framework;
    std::vector<std::string> tasks;
    std::vector<std::string> task_agents;
  };
  std::vector<Group> run_groups;
  std::vector<std::string> shutdowns;  // ShutdownAgent reasons
  std::vector<std::string> kills;
  std::vector<std::string> acks;  // uuids
  std::vector<std::string> shutdown_frameworks;
  size_t pings = 0;
  bool answer_pings = true;
  // Launches "lost on the way": not recorded as received.
  std::set<std::string> lost_launches;
  std::vector<std::string> audited;              // task ids pings asked about
  std::vector<std::string> frameworks_reported;  // put in every Pong
};

inline Update to_update(wire::TaskStatus::Reader s) {
  return Update{str(s.getTaskId()),  s.getState(),     s.getReason(),
                str(s.getMessage()), str(s.getUuid()), str(s.getAgentId())};
}

struct Cluster {
  Simulation sim{7};
  Node& master_node = sim.add_node("master");
  Address master = master_node.address_of("master");
  MasterConfig config;
  // The registry every master of this cluster uses: it outlives their crashes.
  std::shared_ptr<MemoryStore> registry = std::make_shared<MemoryStore>();
  int masters_started = 0;

  Cluster() {
    config.registry = registry;
    config.seed = 1;
    config.agent_ping_interval = 1s;
    config.agent_ping_timeout = 1s;
    config.agent_pings_missed_max = 3;
    config.framework_heartbeat_interval = 5s;
    config.allocation_interval = 1s;
  }

  void start_master() {
    REQUIRE(master_node.spawn<Master>("master", config));
    ++masters_started;
    sim.run();
  }

  // kill -9 of the master's node; a new master starts on a node of its own
  // (config.registry decides what it remembers).
  Node* restart_master() {
    sim.crash(*current_master_node);
    sim.run();
    current_master_node = &sim.add_node("master" + std::to_string(++masters_started));
    REQUIRE(current_master_node->spawn<Master>("master", config));
    master = current_master_node->address_of("master");
    sim.run();
    return current_master_node;
  }
  Node* current_master_node = &master_node;

  // The running master (between simulation steps).
  Master* master_actor() {
    auto h = sim.lookup(master);
    return h ? dynamic_cast<Master*>(caf::actor_cast<caf::abstract_actor*>(h)) : nullptr;
  }

  Address add_agent(Node& node, AgentLog& log, const std::string& resources,
                    const std::string& boot = {}) {
    auto total = Resources::parse(resources);
    REQUIRE(total);
    return spawn_agent(node, log, build<wire::RegisterAgent>([&](wire::RegisterAgent::Builder b) {
                         b.setBootId(boot);
                         auto info = b.initAgentInfo();
                         info.setHostname("host-" + std::to_string(node.port()));
                         to_wire(*total, info.initResources(wire_size(*total)));
                       }));
  }

  // A scripted agent whose first message to the master is first.
  Address spawn_agent(Node& node, AgentLog& log, Outgoing first) {
    auto addr = node.spawn<Probe>("agent", [&log, first, this](Probe& self) {
      self.on<wire::AgentRegistered>([&log](const Received<wire::AgentRegistered>& m) {
        log.id = str(m.body().getAgentId());
        log.ids.push_back(log.id);
        ++log.registered;
      });
      self.on<wire::AgentReregistered>(
          [&log](const Received<wire::AgentReregistered>&) { ++log.reregistered; });
      self.on<wire::RunTask>([&log](const Received<wire::RunTask>& m) {
        auto id = str(m.body().getTask().getTaskId());
        if (!log.lost_launches.count(id))
          log.run_tasks.push_back(id);
      });
      self.on<wire::RunTaskGroup>([&log](const Received<wire::RunTaskGroup>& m) {
        auto b = m.body();
        AgentLog::Group g{str(b.getFrameworkInfo().getFrameworkId()),
                          str(b.getExecutor().getExecutorId()),
                          b.getExecutor().getType(),
                          str(b.getExecutor().getFrameworkId()),
                          {},
                          {}};
        for (auto t : b.getTasks()) {
          g.tasks.push_back(str(t.getTaskId()));
          g.task_agents.push_back(str(t.getAgentId()));
        }
        log.run_groups.push_back(std::move(g));
      });
      self.on<wire::ShutdownAgent>([&log](const Received<wire::ShutdownAgent>& m) {
        log.shutdowns.push_back(str(m.body().getReason()));
      });
      self.on<wire::KillTask>([&log](const Received<wire::KillTask>& m) {
        log.kills.push_back(str(m.body().getTaskId()));
      });
      self.on<wire::StatusUpdateAck>([&log](const Received<wire::StatusUpdateAck>& m) {
        log.acks.push_back(str(m.body().getUuid()));
      });
      self.on<wire::ShutdownFramework>([&log](const Received<wire::ShutdownFramework>& m) {
        log.shutdown_frameworks.push_back(str(m.body().getFrameworkId()));
      });
      self.on<wire::Ping>([&log, &self](const Received<wire::Ping>& m) {
        ++log.pings;
        // As the real agent: the audited tasks it never got are named.
        std::vector<std::pair<std::string, std::string>> unknown;
        for (auto k : m.body().getAudit()) {
          auto id = str(k.getTaskId());
          log.audited.push_back(id);
          if (std::find(log.run_tasks.begin(), log.run_tasks.end(), id) == log.run_tasks.end())
            unknown.emplace_back(str(k.getFrameworkId()), id);
        }
        if (log.answer_pings)
          self.reply(m, build<wire::Pong>([&](wire::Pong::Builder b) {
                       b.setSeq(m.body().getSeq());
                       auto list = b.initUnknown(static_cast<unsigned>(unknown.size()));
                       for (unsigned i = 0; i < unknown.size(); ++i) {
                         list[i].setFrameworkId(unknown[i].first);
                         list[i].setTaskId(unknown[i].second);
                       }
                       auto fws =
                           b.initFrameworks(static_cast<unsigned>(log.frameworks_reported.size()));
                       for (unsigned i = 0; i < log.frameworks_reported.size(); ++i)
                         fws.set(i, log.frameworks_reported[i]);
                     }));
      });
      self.send(master, first);
    });
    REQUIRE(addr);
    sim.run();
    return *addr;
  }

  Address add_framework(Node& node, FrameworkLog& log, const std::string& role,
                        bool partition_aware = false, std::string name = "framework",
                        int64_t failover_ns = 0) {
    auto addr = node.spawn<Probe>(name, [=, &log, this](Probe& self) {
      self.on<wire::SchedulerEvent>([&log](const Received<wire::SchedulerEvent>& m) {
        auto e = m.body();
        switch (e.which()) {
          case wire::SchedulerEvent::SUBSCRIBED:
            log.id = str(e.getSubscribed().getFrameworkId());
            log.ids.push_back(log.id);
            break;
          case wire::SchedulerEvent::OFFERS:
            for (auto o : e.getOffers()) {
              auto r = from_wire(o.getResources());
              log.offers.push_back({str(o.getOfferId()), str(o.getAgentId()),
                                    str(o.getAllocationRole()), r ? r->to_string() : "?",
                                    str(o.getAgentAddress())});
            }
            break;
          case wire::SchedulerEvent::RESCIND:
            log.rescinded.push_back(str(e.getRescind()));
            break;
          case wire::SchedulerEvent::UPDATE:
            log.updates.push_back(to_update(e.getUpdate()));
            break;
          case wire::SchedulerEvent::ERROR:
            log.errors.push_back(str(e.getError()));
            break;
          case wire::SchedulerEvent::HEARTBEAT:
            ++log.heartbeats;
            break;
          case wire::SchedulerEvent::FAILURE:
            ++log.failures;
            break;
          default:
            break;
        }
      });
      self.send(master, subscribe_call(log.id, role, partition_aware, failover_ns));
    });
    REQUIRE(addr);
    sim.run();
    return *addr;
  }

  static Outgoing subscribe_call(const std::string& id, const std::string& role,
                                 bool partition_aware, int64_t failover_ns,
                                 const std::string& subscription = {}) {
    return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
      b.setFrameworkId(id);
      b.initSubscribe().setSubscriptionId(subscription);
      auto info = b.getSubscribe().initFrameworkInfo();
      info.setFrameworkId(id);
      info.setName("test");
      info.initRoles(1).set(0, role);
      info.setFailoverTimeoutNs(failover_ns);
      if (partition_aware)
        info.initCapabilities(1).set(0, wire::FrameworkCapability::PARTITION_AWARE);
    });
  }

  // Sends msg to the master as if from the actor at `from` on `node`.
  void call(Node& from, const Address& fw_addr, const Outgoing& msg) {
    Envelope env;
    env.type_id = msg.type_id;
    env.payload = msg.payload;
    env.sender = fw_addr;
    env.receiver = master;
    from.send_envelope(std::move(env));
    sim.run();
  }
};

inline Outgoing launch_call(const std::string& fid, const std::vector<std::string>& offers,
                            const std::string& task, const std::string& resources,
                            const std::string& shell = "true") {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    auto a = b.initAccept();
    auto ids = a.initOfferIds(static_cast<unsigned>(offers.size()));
    for (unsigned i = 0; i < offers.size(); ++i)
      ids.set(i, offers[i]);
    auto t = a.initOperations(1)[0].initLaunch(1)[0];
    t.setTaskId(task);
    t.setName(task);
    auto r = Resources::parse(resources);
    REQUIRE(r);
    to_wire(*r, t.initResources(wire_size(*r)));
    t.initCommand().setShell(shell);
    a.initFilters().setRefuseSeconds(0);
  });
}

struct GroupTask {
  std::string id;
  std::string resources;
  std::string shell = "true";
};

inline Outgoing launch_group_call(const std::string& fid, const std::string& offer,
                                  const std::vector<GroupTask>& tasks,
                                  const std::string& executor_id = {}) {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    auto a = b.initAccept();
    a.initOfferIds(1).set(0, offer);
    auto group = a.initOperations(1)[0].initLaunchGroup();
    if (!executor_id.empty()) {
      group.initExecutor().setExecutorId(executor_id);
      group.getExecutor().setType(wire::ExecutorInfo::Type::DEFAULT);
    }
    auto list = group.initTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      list[i].setTaskId(tasks[i].id);
      auto r = Resources::parse(tasks[i].resources);
      REQUIRE(r);
      to_wire(*r, list[i].initResources(wire_size(*r)));
      list[i].initCommand().setShell(tasks[i].shell);
    }
    a.initFilters().setRefuseSeconds(0);
  });
}

inline Outgoing reregister(const std::string& agent_id, const std::string& fid,
                           const std::string& task) {
  return build<wire::ReregisterAgent>([&](wire::ReregisterAgent::Builder b) {
    auto info = b.initAgentInfo();
    info.setAgentId(agent_id);
    auto total = *Resources::parse("cpus:2;mem:512");
    to_wire(total, info.initResources(wire_size(total)));
    auto t = b.initTasks(1)[0];
    auto r = *Resources::parse("cpus:1");
    t.setFrameworkId(fid);
    t.initTask().setTaskId(task);
    to_wire(r, t.getTask().initResources(wire_size(r)));
    t.setState(State::RUNNING);
    t.setLatestState(State::RUNNING);
  });
}

inline Outgoing register_call(const std::string& boot,
                              const std::string& resources = "cpus:2;mem:512") {
  return build<wire::RegisterAgent>([&](wire::RegisterAgent::Builder b) {
    b.setBootId(boot);
    auto total = *Resources::parse(resources);
    to_wire(total, b.initAgentInfo().initResources(wire_size(total)));
  });
}

struct ReportedTask {
  std::string framework;
  std::string task;
  State state = State::RUNNING;
};

inline Outgoing reregister_call(const std::string& agent_id, const std::string& boot, uint64_t seq,
                                const std::vector<ReportedTask>& tasks,
                                const std::string& resources = "cpus:2;mem:512") {
  return build<wire::ReregisterAgent>([&](wire::ReregisterAgent::Builder b) {
    b.setBootId(boot);
    b.setRegistrationSeq(seq);
    auto info = b.initAgentInfo();
    info.setAgentId(agent_id);
    auto total = *Resources::parse(resources);
    to_wire(total, info.initResources(wire_size(total)));
    auto list = b.initTasks(static_cast<unsigned>(tasks.size()));
    auto r = *Resources::parse("cpus:1");
    for (unsigned i = 0; i < tasks.size(); ++i) {
      list[i].setFrameworkId(tasks[i].framework);
      list[i].initTask().setTaskId(tasks[i].task);
      to_wire(r, list[i].getTask().initResources(wire_size(r)));
      list[i].setState(tasks[i].state);
      list[i].setLatestState(tasks[i].state);
    }
  });
}

inline Outgoing reconcile_call(const std::string& fid,
                               const std::vector<std::pair<std::string, std::string>>& tasks) {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    auto list = b.initReconcile().initTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      list[i].setTaskId(tasks[i].first);
      list[i].setAgentId(tasks[i].second);
    }
  });
}

inline Outgoing kill_call(const std::string& fid, const std::string& task,
                          const std::string& agent) {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    b.initKill().setTaskId(task);
    b.getKill().setAgentId(agent);
  });
}

inline Outgoing status_update(const std::string& fid, const std::string& task, State state,
                              const std::string& uuid) {
  return build<wire::StatusUpdate>([&](wire::StatusUpdate::Builder b) {
    b.setFrameworkId(fid);
    auto s = b.initStatus();
    s.setTaskId(task);
    s.setState(state);
    s.setUuid(data(uuid));
    s.setSource(wire::TaskStatus::Source::EXECUTOR);
    b.setLatestState(state);
  });
}

inline Outgoing ack_call(const std::string& fid, const Update& u) {
  return build<wire::SchedulerCall>([&](wire::SchedulerCall::Builder b) {
    b.setFrameworkId(fid);
    auto a = b.initAcknowledge();
    a.setAgentId(u.agent);
    a.setTaskId(u.task);
    a.setUuid(data(u.uuid));
  });
}

// Sends an operator call from a probe on node and returns the master's
// answer ("" for done; "no answer: ..." when the request failed).
inline std::string operator_call(Cluster& c, Node& node, const std::string& name,
                                 const Outgoing& call) {
  auto answer = std::make_shared<std::optional<std::string>>();
  REQUIRE(node.spawn<Probe>(name, [&c, call, answer](Probe& self) {
    self.request<wire::OperatorResponse>(
        c.master, call, 5s,
        [answer](const Received<wire::OperatorResponse>& m) { *answer = str(m.body().getError()); },
        [answer](const caf::error& err) { *answer = "no answer: " + describe(err); });
  }));
  c.sim.run();
  REQUIRE(answer->has_value());
  return **answer;
}

inline Outgoing quota_call(const std::string& role, const std::string& limit) {
  return build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
    auto q = b.initUpdateQuota();
    q.setRole(role);
    auto r = *Resources::parse(limit);
    to_wire(r, q.initLimit(wire_size(r)));
  });
}

inline Outgoing weight_call(const std::string& role, double weight) {
  return build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
    auto w = b.initUpdateWeights(1)[0];
    w.setRole(role);
    w.setWeight(weight);
  });
}

// RESERVE_RESOURCES (reserve) or UNRESERVE_RESOURCES of resources (text form).
inline Outgoing reservation_call(const std::string& agent, const std::string& resources,
                                 bool reserve = true) {
  return build<wire::OperatorCall>([&](wire::OperatorCall::Builder b) {
    auto r = reserve ? b.initReserveResources() : b.initUnreserveResources();
    r.setAgentId(agent);
    auto parsed = Resources::parse(resources);
    REQUIRE(parsed);
    to_wire(*parsed, r.initResources(wire_size(*parsed)));
  });
}

}  // namespace tessera::testing
