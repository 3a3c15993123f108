// The scheduler library's driver (services/scheduler, what every framework
// is built on) receiving what other nodes send it: SchedulerEvent of every
// kind (subscribed, offers, rescind, update - reconciliation answers too -,
// message, failure, error, heartbeat) and NotLeader from its master, and
// SandboxFile replies from an agent it reads a sandbox from, each delivered
// as the transport delivers it, from the master, the agent, or an address
// nobody listens at (the library must ignore strangers). A trivial
// framework on top uses what it is told: it launches a task on the first
// offer of each event and declines the rest, reads the sandbox of running
// tasks, reconciles on subscribing and failed tasks, kills every third
// task it hears of, and answers executor messages. Virtual time moves when
// a record says so: heartbeat checks, resubscription backoff, subscribe
// and sandbox-read timeouts fire.
//
// Each input runs against a fresh Simulation and a fresh framework, so
// every input replays alone.
//
// Input: records as fuzz_world.hpp describes; the templates are the enum
// below. Seeds: tests/fuzz/corpus/scheduler_dispatch, made by fuzz_seeds.

#include "services/common/wire.hpp"
#include "services/scheduler/scheduler.hpp"
#include "tests/fuzz/fuzz_world.hpp"
#include "tests/fuzz/scheduler_templates.hpp"

namespace {

using namespace tessera;

class Trivial : public Scheduler {
 public:
  using Scheduler::Scheduler;

 protected:
  void subscribed(const std::string&) override { (void)reconcile(); }
  void offers(const std::vector<Offer>& offers) override {
    std::vector<std::string> rest;
    for (size_t i = 0; i < offers.size(); ++i) {
      if (i > 0) {
        rest.push_back(offers[i].id);
        continue;
      }
      agent_ = offers[i].agent_address;
      TaskSpec task;
      task.id = "t" + std::to_string(++launched_);
      task.resources = offers[i].resources;
      task.shell = "true";
      if (accept({offers[i].id}, {task}))
        rest.push_back(offers[i].id);
    }
    if (!rest.empty())
      (void)decline(rest);
  }
  void update(const TaskStatus& status) override {
    if (++updates_ % 3 == 0)
      (void)kill(status.task_id, status.agent_id);
    if (status.state == TaskState::RUNNING && !agent_.empty())
      read_sandbox_file(agent_, status.task_id, "stdout", 0, 64, [](expected<SandboxData>) {});
    if (status.state == TaskState::FAILED)
      (void)reconcile({{status.task_id, status.agent_id}});
  }
  void message(const std::string& agent_id, const std::string& executor_id,
               const std::string& data) override {
    (void)send_message(agent_id, executor_id, data);
  }
  void failure(const std::string&, const std::string&, int) override { (void)revive(); }

 private:
  Address agent_;
  uint64_t launched_ = 0;
  uint64_t updates_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::World world;
  auto master = world.add_peer("master", [](fuzz::Peer& p) { p.listen<wire::SchedulerCall>(); });
  world.add_peer("agent", [](fuzz::Peer& p) {
    p.listen<wire::ReadSandboxFile>([](fuzz::Peer& self, const Received<wire::ReadSandboxFile>& m) {
      self.reply(m, build<wire::SandboxFile>([](wire::SandboxFile::Builder b) {
                   b.setData(tessera::data("hello"));
                   b.setSize(5);
                 }));
    });
  });
  SchedulerConfig config;
  config.master = master;
  config.framework.name = "fuzz";
  config.framework.failover_timeout = std::chrono::minutes(1);
  config.seed = 1;
  if (!world.home.spawn<Trivial>("framework", config))
    std::abort();
  world.started("framework");
  world.templates = fuzz::scheduler_templates(master);
  world.play(data, size);
  return 0;
}
