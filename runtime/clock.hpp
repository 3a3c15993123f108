#pragma once
// The runtime clock: every timer and delayed message goes through it, so tests
// control time (libprocess Clock::pause/advance, FoundationDB simulated time).
//
// Modes:
//  - real: time is the steady clock; a timer thread fires due timers.
//  - paused: now() stands still; timers fire only when advance() passes them.
//    pause()/resume() switch at any time; resume() continues from the paused
//    instant, so time never runs backwards.
//  - manual (make_manual): paused forever and without a thread; the
//    deterministic Simulation drives it.
//
// A timer delivers TimerFired{id} to an actor. The clock holds only weak
// references to actors: a timer whose actor is gone is dropped.
// Thread-safety: all members may be called from any thread.

#include <caf/actor_control_block.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <compare>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace tessera {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  static std::shared_ptr<Clock> make_real();
  static std::shared_ptr<Clock> make_manual();
  ~Clock();
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;

  TimePoint now() const;

  // Identifies a scheduled timer for cancel().
  struct Key {
    TimePoint deadline{};
    uint64_t seq = 0;
    friend auto operator<=>(const Key&, const Key&) = default;
  };

  // Delivers TimerFired{timer_id} to target at now() + delay. inflight, when
  // given, is incremented as the timer fires (the node's settle count).
  Key schedule(Duration delay, const caf::strong_actor_ptr& target, uint64_t timer_id,
               std::atomic<int64_t>* inflight = nullptr);
  // Forgets a timer that has not fired; a no-op for one that has.
  void cancel(const Key& key);

  void pause();
  void resume();
  bool paused() const;

  // Paused only: moves time forward by d, firing every timer due on the way in
  // deadline order. Returns the number of timers fired.
  size_t advance(Duration d);
  // Paused only: moves to t (if later than now) firing due timers.
  size_t advance_to(TimePoint t);

  std::optional<TimePoint> next_deadline() const;
  size_t pending() const;

 private:
  struct Timer {
    caf::weak_actor_ptr target;
    uint64_t id;
    std::atomic<int64_t>* inflight;
  };
  explicit Clock(bool with_thread);
  TimePoint real_now() const;
  size_t fire_due_locked(std::unique_lock<std::mutex>& lock, TimePoint t);
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Timer> timers_;
  uint64_t next_seq_ = 0;
  bool paused_ = false;
  TimePoint paused_now_{};
  Duration offset_{0};
  bool stopping_ = false;
  // When the timer thread will next wake by itself; a new timer only needs to
  // wake it if it is due earlier.
  TimePoint wake_at_ = TimePoint::max();
  std::thread thread_;
};

}  // namespace tessera
