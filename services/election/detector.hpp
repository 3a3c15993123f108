#pragma once
// MasterDetector: who leads, for whoever must talk to the leading master
// (agents, the scheduler library, `tessera run`) and for the masters that
// contend (contender.hpp). After Mesos's MasterDetector: a view that
// changes, and a one-shot wait for the next change.
//
// Threads: view() and on_change() may be called from any thread; the
// callback runs on the detector's own thread and must not block (actors
// pass Actor::continuation(...), which only posts a message).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tessera {

struct LeaderView {
  uint64_t generation = 0;            // raised by every change below
  std::optional<std::string> leader;  // the leader's address ("master@host:port"); none: no leader
  bool connected = false;             // the coordination service answers this process
  bool leading = false;               // a contender: this process leads
  uint64_t session = 0;               // the session leadership is held in (0: none)
  int session_timeout_ms = 0;         // as the service granted it
};

class MasterDetector {
 public:
  virtual ~MasterDetector() = default;
  virtual LeaderView view() const = 0;
  // Calls fn once, on the detector's thread, as soon as view().generation
  // is above seen_generation (at once if it already is).
  virtual void on_change(uint64_t seen_generation, std::function<void()> fn) = 0;
  virtual std::string describe() const = 0;
};

}  // namespace tessera
