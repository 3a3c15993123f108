// The runtime's receive path for bytes off the network: a CAF message body
// decoded as an EnvelopeBatch (our inspect() overloads: addresses, payload
// sizes, the 1 GiB cap), handed to an actor exactly as the transport hands
// it (one mailbox message), then the actor's delivery contract - payload
// size and alignment, full Cap'n Proto validation under the node's traversal
// and nesting limits, dispatch by type id, and a handler that reads every
// field (capnp's pretty printer walks the whole message).
//
// Input: the serialized batch (what CAF's binary serializer writes for
// tessera.envelope_batch). Seeds: tests/fuzz/corpus/envelope, made by
// fuzz_seeds.

#include "runtime/actor.hpp"
#include "runtime/log.hpp"
#include "runtime/simulation.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/scheduler.capnp.h>
#include <capnp/testing.capnp.h>

#include <caf/binary_deserializer.hpp>
#include <caf/send.hpp>
#include <kj/string.h>

namespace {

using namespace tessera;

// Reads every field of what it is given, as a careless handler might.
class Sink : public Actor {
 public:
  Sink(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
    read_all<wire::testing::Ping>();
    read_all<wire::RegisterAgent>();
    read_all<wire::RunTask>();
    read_all<wire::StatusUpdate>();
    read_all<wire::SchedulerCall>();
    read_all<wire::SchedulerEvent>();
  }

 private:
  template <class T>
  void read_all() {
    on<T>([this](const Received<T>& m) {
      read_bytes_ += kj::str(m.body()).size();
      if (m.envelope().request_id != 0)
        reply(m, build_default<wire::testing::Ping>());
    });
  }
  size_t read_bytes_ = 0;
};

struct World {
  Simulation sim{1};
  Node& node = sim.add_node("fuzz");
  caf::actor sink;
  World() {
    set_log_level("off");
    if (!node.spawn<Sink>("sink"))
      std::abort();
    sim.run();
    sink = sim.lookup(node.address_of("sink"));
    if (!sink)
      std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed: an actor system torn down among the exit-time
  // destructors of other statics corrupts the heap.
  static World& world = *new World;
  EnvelopeBatch batch;
  caf::binary_deserializer source(world.sim.system(), reinterpret_cast<const char*>(data), size);
  if (auto err = source(batch))
    return 0;  // the transport drops the connection's message
  caf::anon_send(world.sink, std::move(batch));
  world.sim.run(100'000);
  return 0;
}
