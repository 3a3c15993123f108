#pragma once
// MasterDetector: who leads, for whoever must talk to the leading master
// (agents, the scheduler library, `tessera run`) and for the masters that
// contend (contender.hpp). After Mesos's MasterDetector: a view that
// changes, and a one-shot wait for the next change.
//
// Threads: view() and on_change() may be called from any thread; the
// callback runs on the detector's own thread and must not block (actors
// pass Actor::continuation(...), which only posts a message).

#include "runtime/address.hpp"
#include "runtime/log.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tessera {

struct LeaderView {
  uint64_t generation = 0;            // raised by every change below
  std::optional<std::string> leader;  // the leader's address ("master@host:port"); none: no leader
  std::string leader_http;            // HOST:PORT of the leader's HTTP API; empty: unknown
  bool connected = false;             // the coordination service answers this process
  bool leading = false;               // a contender: this process leads
  std::string leader_node;            // the leader's election node (a znode path)
  uint64_t session = 0;               // the session leadership is held in (0: none)
  int session_timeout_ms = 0;         // as the service granted it
};

class MasterDetector {
 public:
  virtual ~MasterDetector() = default;
  virtual LeaderView view() const = 0;
  // Calls fn once, on the detector's thread, as soon as view().generation
  // is above seen_generation (at once, on the caller's thread, if it
  // already is).
  virtual void on_change(uint64_t seen_generation, std::function<void()> fn) = 0;
  virtual std::string describe() const = 0;
};

// For an actor that follows the leader (agent, scheduler library): reads
// the detector's view, arms on_next_change (an Actor::continuation) for the
// next one, and returns the leader's address when the view names one other
// than current. A leader that is not an address is logged and ignored; no
// leader known keeps current.
inline std::optional<Address> leader_to_follow(MasterDetector& detector, const Address& current,
                                               const Address& follower,
                                               std::function<void()> on_next_change) {
  auto view = detector.view();
  detector.on_change(view.generation, std::move(on_next_change));
  if (!view.leader)
    return std::nullopt;
  auto leader = Address::parse(*view.leader);
  if (!leader) {
    log().warn("{}: the detector names '{}' as leader, not a master's address",
               follower.to_string(), *view.leader);
    return std::nullopt;
  }
  if (*leader == current)
    return std::nullopt;
  log().info("{}: the leading master is {} (was {})", follower.to_string(), leader->to_string(),
             current.empty() ? "none" : current.to_string());
  return *leader;
}

}  // namespace tessera
