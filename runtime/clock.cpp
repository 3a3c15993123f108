#include "runtime/clock.hpp"

#include "runtime/envelope.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <vector>

namespace tessera {

std::shared_ptr<Clock> Clock::make_real() {
  return std::shared_ptr<Clock>(new Clock(true));
}

std::shared_ptr<Clock> Clock::make_manual() {
  auto clock = std::shared_ptr<Clock>(new Clock(false));
  clock->paused_ = true;
  return clock;
}

Clock::Clock(bool with_thread) {
  paused_now_ = real_now();
  if (with_thread)
    thread_ = std::thread([this] { run(); });
}

Clock::~Clock() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

TimePoint Clock::real_now() const {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now()) + offset_;
}

TimePoint Clock::now() const {
  std::lock_guard<std::mutex> guard(mu_);
  return paused_ ? paused_now_ : real_now();
}

Clock::Key Clock::schedule(Duration delay, const caf::strong_actor_ptr& target, uint64_t timer_id,
                           std::atomic<int64_t>* inflight) {
  Key key;
  bool earliest = false;
  {
    std::lock_guard<std::mutex> guard(mu_);
    auto base = paused_ ? paused_now_ : real_now();
    // "Forever" (Duration::max()) must not wrap around into the past.
    auto deadline = delay >= TimePoint::max() - base ? TimePoint::max() : base + delay;
    key = Key{deadline, next_seq_++};
    timers_.emplace(key, Timer{caf::weak_actor_ptr{target.get()}, timer_id, inflight});
    earliest = key.deadline < wake_at_;
  }
  // Only a deadline before the thread's next wake-up needs to wake it; waking
  // it for every request timeout would cost a context switch per request.
  if (earliest && thread_.joinable())
    cv_.notify_all();
  return key;
}

void Clock::cancel(const Key& key) {
  std::lock_guard<std::mutex> guard(mu_);
  timers_.erase(key);
}

void Clock::pause() {
  std::lock_guard<std::mutex> guard(mu_);
  if (paused_)
    return;
  paused_now_ = real_now();
  paused_ = true;
}

void Clock::resume() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (!paused_ || !thread_.joinable())
      return;  // a manual clock has no real time to return to
    offset_ = Duration{0};
    offset_ = paused_now_ - real_now();
    paused_ = false;
  }
  cv_.notify_all();
}

bool Clock::paused() const {
  std::lock_guard<std::mutex> guard(mu_);
  return paused_;
}

size_t Clock::advance(Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!paused_)
    return 0;
  auto target = paused_now_ + d;
  return fire_due_locked(lock, target);
}

size_t Clock::advance_to(TimePoint t) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!paused_ || t < paused_now_)
    return 0;
  return fire_due_locked(lock, t);
}

// Fires timers due at or before t in deadline order and, when paused, moves
// time to t. Handlers run later, on their actors' threads, and read now() as
// t; the Simulation steps deadline by deadline when it needs more precision.
size_t Clock::fire_due_locked(std::unique_lock<std::mutex>& lock, TimePoint t) {
  std::vector<Timer> due;
  while (!timers_.empty() && timers_.begin()->first.deadline <= t) {
    due.push_back(std::move(timers_.begin()->second));
    timers_.erase(timers_.begin());
  }
  if (paused_)
    paused_now_ = t;
  lock.unlock();
  size_t fired = 0;
  for (auto& timer : due) {
    auto target = timer.target.lock();
    if (!target)
      continue;
    if (timer.inflight)
      timer.inflight->fetch_add(1, std::memory_order_relaxed);
    caf::anon_send(caf::actor_cast<caf::actor>(target), TimerFired{timer.id});
    ++fired;
  }
  lock.lock();
  return fired;
}

std::optional<TimePoint> Clock::next_deadline() const {
  std::lock_guard<std::mutex> guard(mu_);
  if (timers_.empty())
    return std::nullopt;
  return timers_.begin()->first.deadline;
}

size_t Clock::pending() const {
  std::lock_guard<std::mutex> guard(mu_);
  return timers_.size();
}

void Clock::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (paused_ || timers_.empty()) {
      wake_at_ = TimePoint::max();
      cv_.wait(lock);
      continue;
    }
    auto deadline = timers_.begin()->first.deadline;
    auto now = real_now();
    if (deadline > now) {
      wake_at_ = deadline;
      cv_.wait_for(lock, deadline - now);
      continue;
    }
    wake_at_ = now;  // firing: new timers are picked up on the next loop
    fire_due_locked(lock, now);
  }
}

}  // namespace tessera
