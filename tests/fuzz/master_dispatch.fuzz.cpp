// The master's dispatch of what other nodes send it: every message type it
// registers a handler for (the agents' RegisterAgent, ReregisterAgent,
// StatusUpdate, ExitedExecutor, ExecutorToFramework and their Pong
// replies; the frameworks' SchedulerCall of every kind; the operators'
// OperatorCall, SubscribeMasterEvents and MasterMetricsRequest; and
// AllocatorOffers, which only its own allocator should send), each delivered
// as the transport delivers it, from two agents, two frameworks, an operator
// and an address nobody listens at, on a node of their own. Virtual time
// moves when a record says so: pings, heartbeats, allocation, offer and
// removal timeouts fire. The peers answer pings and remember the ids the
// master hands out, which patched fields then name.
//
// Each input runs against a fresh Simulation with a fresh master and an
// empty in-memory registry, so every input replays alone.
//
// Input: records as fuzz_world.hpp describes; the templates are below.
// Seeds: tests/fuzz/corpus/master_dispatch, made by fuzz_seeds.

#include "services/master/master.hpp"
#include "tests/fuzz/fuzz_world.hpp"
#include "tests/fuzz/master_templates.hpp"

namespace {

using namespace tessera;
using namespace std::chrono_literals;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::World world;
  fuzz::add_master(world);
  world.templates = fuzz::master_templates();
  world.play(data, size);
  return 0;
}
