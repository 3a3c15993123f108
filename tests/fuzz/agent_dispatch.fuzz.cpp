// The agent's dispatch of what other nodes send it: from its master
// AgentRegistered, AgentReregistered, Ping (a request; the agent answers
// Pong), KillTask, StatusUpdateAck, ShutdownFramework, ShutdownExecutor,
// ShutdownAgent, FrameworkToExecutor and NotLeader; from anyone the
// requests GetContainerUsage and ReadSandboxFile; from executors
// ExecutorCall (subscribe, update, message). Each is delivered as the
// transport delivers it, from the master, an executor, a reader, or an
// address nobody listens at. Virtual time moves when a record says so:
// registration retries, ping timeouts and status-update retries fire.
//
// Left out: the launch messages RunTask and RunTaskGroup. Their handling
// fetches URIs over the network and starts real processes (executors and
// their tasks), which a fuzzer must not do; without them the agent runs no
// executor, so executor calls exercise the paths for unknown executors.
//
// The agent keeps its checkpoints on an in-memory disk (fresh per input),
// its work directory is one temporary directory per process (removed at
// exit), and its isolator is the simulation's null one. The master peer
// registers it as the real master would (same id for the same boot), so
// records see a registered agent.
//
// Each input runs against a fresh Simulation and a fresh agent, so every
// input replays alone.
//
// Input: records as fuzz_world.hpp describes; the templates are the enum
// below. Seeds: tests/fuzz/corpus/agent_dispatch, made by fuzz_seeds.

#include "services/agent/agent.hpp"
#include "services/agent/disk.hpp"
#include "services/sim/null_isolator.hpp"
#include "tests/fuzz/agent_templates.hpp"
#include "tests/fuzz/fuzz_world.hpp"

#include <filesystem>
#include <unistd.h>

namespace {

using namespace tessera;

// One per process, removed when it exits.
struct WorkDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("tessera-fuzz-agent-" + std::to_string(::getpid()));
  WorkDir() { std::filesystem::create_directories(path); }
  ~WorkDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::filesystem::path& work_dir() {
  static const WorkDir dir;
  return dir.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::World world;
  auto master = world.add_peer("master", [](fuzz::Peer& p) {
    p.listen<wire::StatusUpdate, wire::ExitedExecutor, wire::ExecutorToFramework>();
    p.listen<wire::RegisterAgent>([](fuzz::Peer& self, const Received<wire::RegisterAgent>& m) {
      self.send(m.sender(), build<wire::AgentRegistered>([&](wire::AgentRegistered::Builder b) {
                  b.setAgentId("agent-1");
                  b.setPingIntervalNs(1'000'000'000);
                  b.setBootId(m.body().getBootId());
                  b.setRegistrationSeq(m.body().getRegistrationSeq());
                }));
    });
    p.listen<wire::ReregisterAgent>([](fuzz::Peer& self, const Received<wire::ReregisterAgent>& m) {
      self.send(m.sender(), build<wire::AgentReregistered>([&](wire::AgentReregistered::Builder b) {
                  b.setAgentId(m.body().getAgentInfo().getAgentId());
                  b.setPingIntervalNs(1'000'000'000);
                  b.setBootId(m.body().getBootId());
                  b.setRegistrationSeq(m.body().getRegistrationSeq());
                }));
    });
  });
  world.add_peer("executor", [](fuzz::Peer& p) { p.listen<wire::ExecutorEvent>(); });
  world.add_peer("reader", [](fuzz::Peer& p) {
    p.listen<wire::SandboxFile, wire::ContainerUsage, wire::Pong>();
  });
  AgentConfig config;
  config.master = master;
  config.work_dir = work_dir();
  auto resources = Resources::parse("cpus:4;mem:4096;disk:1000;ports:[31000-31009]");
  if (!resources)
    std::abort();
  config.resources = *resources;
  config.seed = 1;
  config.boot_id = "boot-1";
  config.isolator = std::make_shared<sim::NullIsolator>();
  config.disk = std::make_shared<MemoryDisk>();
  config.gc_interval_ms = std::chrono::milliseconds(0);
  config.container_monitor_interval_ms = std::chrono::milliseconds(0);
  if (!world.home.spawn<Agent>("agent", config))
    std::abort();
  world.started("agent");
  world.templates = fuzz::agent_templates(master);
  world.play(data, size);
  return 0;
}
