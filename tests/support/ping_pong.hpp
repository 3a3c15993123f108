#pragma once
// The ping/pong-with-state scenario every deployment mode runs. A Ponger
// counts the pings it has seen and answers each with that count; a Pinger
// sends `rounds` requests one after another, then a burst of one-way pings,
// and records what came back. All three modes must produce the same Result.

#include "runtime/actor.hpp"

#include <capnp/testing.capnp.h>

#include <condition_variable>
#include <mutex>
#include <ostream>
#include <vector>

namespace tessera::testing {

namespace testwire = tessera::wire::testing;

class Ponger : public Actor {
 public:
  Ponger(caf::actor_config& cfg, ActorInit init);
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
};

// Answers each message type of testing.capnp with the same content, so a
// remote round trip proves the type survives the network both ways.
class Echo : public Actor {
 public:
  Echo(caf::actor_config& cfg, ActorInit init);
};

struct PingResult {
  uint64_t replies = 0;      // request/response round trips completed
  uint64_t last_count = 0;   // the ponger's count in the last reply
  uint64_t burst_pongs = 0;  // one-way pongs received for the burst
  bool in_order = true;      // pongs arrived in the order pings were sent
  std::vector<std::string> errors;
  bool done = false;

  friend bool operator==(const PingResult&, const PingResult&) = default;
};

// What a correct run of the scenario yields, whatever the deployment.
PingResult expected_result(uint64_t rounds, uint64_t burst);
std::ostream& operator<<(std::ostream& os, const PingResult& r);

// A test actor whose handlers and first actions are given by the test. The
// setup function runs on the actor's own thread when it starts.
class Probe : public Actor {
 public:
  using Setup = std::function<void(Probe&)>;
  Probe(caf::actor_config& cfg, ActorInit init, Setup setup)
      : Actor(cfg, std::move(init)), setup_(std::move(setup)) {}
  using Actor::after;
  using Actor::blocking;
  using Actor::cancel;
  using Actor::on;
  using Actor::on_lost;
  using Actor::reply;
  using Actor::request;
  using Actor::send;
  using Actor::start_process;
  using Actor::stop;
  using Actor::unwatch;
  using Actor::watch;

 private:
  void on_start() override {
    if (setup_)
      setup_(*this);
  }
  Setup setup_;
};

// Shared between the Pinger (writer, on its actor thread) and the test.
class PingOutcome {
 public:
  void update(const std::function<void(PingResult&)>& fn);
  PingResult get() const;
  bool wait_done(std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  PingResult result_;
};

class Pinger : public Actor {
 public:
  Pinger(caf::actor_config& cfg, ActorInit init, Address ponger, uint64_t rounds, uint64_t burst,
         std::shared_ptr<PingOutcome> outcome);

 private:
  void on_start() override;
  void next_round();
  void start_burst();
  void finish();

  Address ponger_;
  uint64_t rounds_;
  uint64_t burst_;
  uint64_t sent_ = 0;
  uint64_t next_burst_seq_ = 0;
  std::shared_ptr<PingOutcome> outcome_;
};

Outgoing make_ping(uint64_t seq);

}  // namespace tessera::testing
