#pragma once
// An Inbox lets a thread the runtime does not own (an HTTP server's I/O
// thread, a library's callback thread) hand work to one actor, as often as it
// likes: post(fn) queues fn, and the actor runs it on its own thread like a
// handler. It is the many-shot sibling of Actor::continuation().
//
// Bounded: post() refuses (false) once capacity_max items wait, so a flood
// from outside meets a clear "overloaded" instead of an unbounded queue. The
// inbox holds its actor weakly: posting to an actor that has exited refuses
// and keeps nothing alive. One nudge message is in the actor's mailbox at a
// time, however many items wait; the actor drains them all at once.
//
// Thread-safety: post() and size() from any thread.

#include <caf/weak_intrusive_ptr.hpp>
#include <caf/actor_control_block.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace tessera {

class Simulation;

class Inbox {
 public:
  // False, and fn dropped, when the inbox is full or its actor is gone.
  bool post(std::function<void()> fn);
  size_t size() const;
  size_t capacity() const { return capacity_max_; }
  // Items refused because the inbox was full.
  uint64_t refused() const;

  // -- for Actor ------------------------------------------------------------
  Inbox(caf::weak_actor_ptr actor, Simulation* sim, uint64_t id, size_t capacity_max);
  // Takes every queued item and re-arms the nudge.
  std::deque<std::function<void()>> take();
  // The actor is exiting: refuse from now on, drop what waits.
  void close();

 private:
  mutable std::mutex mu_;
  std::deque<std::function<void()>> items_;
  caf::weak_actor_ptr actor_;
  Simulation* sim_;
  uint64_t id_;
  size_t capacity_max_;
  uint64_t refused_ = 0;
  bool nudged_ = false;
  bool closed_ = false;
};

}  // namespace tessera
