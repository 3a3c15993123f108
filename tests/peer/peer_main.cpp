// tessera_test_peer: the other OS process in cross-process tests.
//
//   tessera_test_peer serve [--port N] [--address-space-mb M]
//                                                ponger + echo, until SIGTERM;
//                                                then prints its transport counters
//   tessera_test_peer flood --target A --count N  malformed messages to A
//
// Prints "READY <port>" once its node listens. Started and stopped by pid.

#include "runtime/actor.hpp"
#include "runtime/atoms.hpp"
#include "support/ping_pong.hpp"

#include <signal.h>
#include <sys/resource.h>

#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <cstdio>
#include <cstring>
#include <future>
#include <iostream>
#include <string>

using namespace tessera;
using namespace tessera::testing;

namespace {

std::string arg_value(int argc, char** argv, const char* flag, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0)
      return argv[i + 1];
  return fallback;
}

void announce(const Node& node) {
  std::printf("READY %u\n", node.port());
  std::fflush(stdout);
}

int serve(Node& node) {
  if (!node.spawn<Ponger>("ponger") || !node.spawn<Echo>("echo"))
    return 1;
  announce(node);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  const auto& c = node.transport_counters();
  std::printf("refused_frames %llu\nrefused_connections %llu\nidle_closed %llu\n",
              static_cast<unsigned long long>(c.refused_frames.load()),
              static_cast<unsigned long long>(c.refused_connections.load()),
              static_cast<unsigned long long>(c.idle_closed.load()));
  std::fflush(stdout);
  return 0;
}

// Payloads that must each be rejected by the receiver, never crash it.
std::vector<Outgoing> bad_messages() {
  auto ping_id = capnp::typeId<testwire::Ping>();
  std::vector<Outgoing> out;
  // One segment that claims 1000 words but carries 3: "ends prematurely".
  uint32_t short_seg[6] = {0, 1000, 0, 0, 0, 0};
  out.push_back({ping_id, Payload::copy_of(short_seg, sizeof(short_seg))});
  // A root pointer whose struct lies far outside the segment.
  uint32_t far_ptr[4] = {0, 1, (100u << 2), 0x00010000};
  out.push_back({ping_id, Payload::copy_of(far_ptr, sizeof(far_ptr))});
  // 13 bytes: not a whole number of words.
  char odd[13] = {};
  out.push_back({ping_id, Payload::copy_of(odd, sizeof(odd))});
  // A valid Ping under a type id nobody handles.
  out.push_back({0x1234, make_ping(1).payload});
  return out;
}

// Sends the flood, then one request. Both go from this one actor over one
// ordered connection, so the reply proves the receiver has dealt with every
// bad message before it and still serves.
class Flooder : public Actor {
 public:
  Flooder(caf::actor_config& cfg, ActorInit init, Address target, int count, std::promise<bool>* ok)
      : Actor(cfg, std::move(init)), target_(std::move(target)), count_(count), ok_(ok) {}

 private:
  void on_start() override {
    auto bad = bad_messages();
    for (int i = 0; i < count_; ++i)
      for (auto& msg : bad)
        send(target_, msg);
    request<testwire::Pong>(
        target_, make_ping(0), std::chrono::seconds(20),
        [this](const Received<testwire::Pong>&) { ok_->set_value(true); },
        [this](const caf::error&) { ok_->set_value(false); });
  }

  Address target_;
  int count_;
  std::promise<bool>* ok_;
};

int flood(Node& node, const Address& target, int count) {
  announce(node);
  std::promise<bool> ok;
  auto done = ok.get_future();
  if (!node.spawn<Flooder>("flooder", target, count, &ok))
    return 1;
  bool replied = done.get();
  std::printf("FLOOD %s\n", replied ? "DONE" : "FAILED");
  std::fflush(stdout);
  return replied ? 0 : 1;
}

// Sends the runtime's internal messages to target from this process, as a
// hostile peer could: each must be counted and dropped, never obeyed.
int forge(Node& node, const Address& target, int count) {
  announce(node);
  auto router = node.system().middleman().remote_actor(target.host, target.port);
  if (!router)
    return 1;
  caf::scoped_actor self{node.system()};
  caf::strong_actor_ptr handle;
  self->request(*router, std::chrono::seconds(10), lookup_atom::value, target.name)
      .receive([&](caf::strong_actor_ptr& h) { handle = h; }, [](caf::error&) {});
  if (!handle)
    return 1;
  auto victim = caf::actor_cast<caf::actor>(handle);
  for (int i = 0; i < count; ++i) {
    self->send(victim, deferred_atom::value);
    self->send(victim, exited_atom::value, i, 0, 0);
  }
  // Wait for the victim to report every forgery (a request answered after
  // them would prove nothing about another sender's order).
  std::printf("FORGED %d\n", 2 * count);
  std::fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  const auto& c = node.transport_counters();
  std::printf("refused_frames %llu\nrefused_connections %llu\nidle_closed %llu\n",
              static_cast<unsigned long long>(c.refused_frames.load()),
              static_cast<unsigned long long>(c.refused_connections.load()),
              static_cast<unsigned long long>(c.idle_closed.load()));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tessera_test_peer serve|flood [options]\n");
    return 2;
  }
  // Block the stop signals before any thread starts so sigwait() gets them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  // A bound on the address space: a node tricked into a huge allocation
  // fails here instead of taking the machine's memory.
  // AddressSanitizer reserves terabytes of shadow address space, which no
  // such limit admits: there the test relies on its RSS check alone.
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool address_sanitizer = true;
#else
  constexpr bool address_sanitizer = false;
#endif
  if (auto mb = std::stoull(arg_value(argc, argv, "--address-space-mb", "0")); mb > 0) {
    if (address_sanitizer) {
      std::fprintf(stderr, "peer: --address-space-mb ignored under AddressSanitizer\n");
    } else {
      rlimit limit{mb << 20, mb << 20};
      setrlimit(RLIMIT_AS, &limit);
    }
  }

  NodeConfig config;
  config.port = static_cast<uint16_t>(std::stoi(arg_value(argc, argv, "--port", "0")));
  auto node = Node::start(config);
  if (!node) {
    std::fprintf(stderr, "peer: %s\n", describe(node.error()).c_str());
    return 1;
  }
  std::string mode = argv[1];
  if (mode == "serve")
    return serve(**node);
  if (mode == "flood") {
    auto target = Address::parse(arg_value(argc, argv, "--target", ""));
    if (!target) {
      std::fprintf(stderr, "peer: %s\n", describe(target.error()).c_str());
      return 2;
    }
    return flood(**node, *target, std::stoi(arg_value(argc, argv, "--count", "100")));
  }
  if (mode == "forge") {
    auto target = Address::parse(arg_value(argc, argv, "--target", ""));
    if (!target)
      return 2;
    return forge(**node, *target, std::stoi(arg_value(argc, argv, "--count", "100")));
  }
  std::fprintf(stderr, "peer: unknown mode %s\n", mode.c_str());
  return 2;
}
