#pragma once
// SimAgent: an agent as the master sees one, for benchmarks at a scale no
// machine runs real agents at. It registers, answers pings, reports every
// task it is given RUNNING (and, given finish_after, FINISHED that much
// later) and every task it is told to kill KILLED. Nothing runs, nothing
// is written.

#include "runtime/actor.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"

#include <capnp/agent.capnp.h>

#include <chrono>
#include <random>
#include <string>

namespace tessera::bench {

class SimAgent : public Actor {
 public:
  SimAgent(caf::actor_config& cfg, ActorInit init, Address master, Resources total, uint64_t seed,
           Duration finish_after = Duration::zero())
      : Actor(cfg, std::move(init)),
        master_(std::move(master)),
        total_(std::move(total)),
        rng_(seed),
        finish_after_(finish_after) {
    on<wire::AgentRegistered>([this](const auto& m) { id_ = str(m.body().getAgentId()); });
    on<wire::Ping>([this](const auto& m) {
      reply(m, build<wire::Pong>([&](wire::Pong::Builder b) { b.setSeq(m.body().getSeq()); }));
    });
    on<wire::RunTask>([this](const auto& m) {
      auto framework = str(m.body().getFrameworkInfo().getFrameworkId());
      auto task = str(m.body().getTask().getTaskId());
      report(framework, task, wire::TaskState::RUNNING);
      if (finish_after_ > Duration::zero())
        after(finish_after_,
              [this, framework, task] { report(framework, task, wire::TaskState::FINISHED); });
    });
    on<wire::StatusUpdateAck>([](const auto&) {});
    on<wire::KillTask>([this](const auto& m) {
      report(str(m.body().getFrameworkId()), str(m.body().getTaskId()), wire::TaskState::KILLED);
    });
  }

 protected:
  void on_start() override { register_agent(); }

 private:
  void register_agent() {
    if (!id_.empty())
      return;
    send(master_, build<wire::RegisterAgent>([&](wire::RegisterAgent::Builder b) {
           auto info = b.initAgentInfo();
           info.setHostname("sim-" + me().name);
           info.setPort(node().port());
           to_wire(total_, info.initResources(wire_size(total_)));
           b.setBootId(me().name);
         }));
    after(std::chrono::seconds(5), [this] { register_agent(); });  // until answered
  }

  void report(const std::string& framework_id, const std::string& task_id, wire::TaskState state) {
    send(master_, build<wire::StatusUpdate>([&](wire::StatusUpdate::Builder b) {
           b.setFrameworkId(framework_id);
           auto s = b.initStatus();
           s.setTaskId(task_id);
           s.setState(state);
           s.setSource(wire::TaskStatus::Source::AGENT);
           s.setAgentId(id_);
           s.setTimestampNs(timestamp_ns(node()));
           auto uuid = new_uuid_bytes(rng_);
           s.setUuid(
               capnp::Data::Reader(reinterpret_cast<const kj::byte*>(uuid.data()), uuid.size()));
           b.setLatestState(state);
         }));
  }

  Address master_;
  Resources total_;
  std::mt19937_64 rng_;
  Duration finish_after_;
  std::string id_;
};

}  // namespace tessera::bench
