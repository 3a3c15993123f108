// tessera_test_peer: the other OS process in cross-process tests.
//
//   tessera_test_peer serve [--port N]           ponger + echo, until SIGTERM
//   tessera_test_peer flood --target A --count N  malformed messages to A
//
// Prints "READY <port>" once its node listens. Started and stopped by pid.

#include "runtime/actor.hpp"
#include "support/ping_pong.hpp"

#include <signal.h>

#include <cstdio>
#include <cstring>
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
  return 0;
}

// Payloads that must each be rejected by the receiver, never crash it.
std::vector<Envelope> bad_envelopes(const Address& target) {
  auto ping_id = capnp::typeId<testwire::Ping>();
  std::vector<Envelope> out;
  auto add = [&](uint64_t type, Payload p) {
    out.push_back(Envelope{type, Address{}, target, 0, 0, 0, std::move(p)});
  };
  // One segment that claims 1000 words but carries 3: "ends prematurely".
  uint32_t short_seg[6] = {0, 1000, 0, 0, 0, 0};
  add(ping_id, Payload::copy_of(short_seg, sizeof(short_seg)));
  // A root pointer whose struct lies far outside the segment.
  uint32_t far_ptr[4] = {0, 1, (100u << 2), 0x00010000};
  add(ping_id, Payload::copy_of(far_ptr, sizeof(far_ptr)));
  // 13 bytes: not a whole number of words.
  char odd[13] = {};
  add(ping_id, Payload::copy_of(odd, sizeof(odd)));
  // A valid Ping under a type id nobody handles.
  add(0x1234, make_ping(1).payload);
  return out;
}

int flood(Node& node, const Address& target, int count) {
  announce(node);
  for (int i = 0; i < count; ++i)
    for (auto& env : bad_envelopes(target))
      node.send_envelope(env);
  // A request after the flood: its reply proves every earlier message went
  // out on the same ordered connection and the receiver still serves.
  auto outcome = std::make_shared<PingOutcome>();
  Address ponger = target;
  if (!node.spawn<Pinger>("pinger", ponger, 1, 0, outcome))
    return 1;
  bool ok = outcome->wait_done(std::chrono::seconds(20)) && outcome->get().replies == 1;
  std::printf("FLOOD %s\n", ok ? "DONE" : "FAILED");
  std::fflush(stdout);
  return ok ? 0 : 1;
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
  std::fprintf(stderr, "peer: unknown mode %s\n", mode.c_str());
  return 2;
}
