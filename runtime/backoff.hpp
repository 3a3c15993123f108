#pragma once
// Backoff: the delays between retries of one thing (a registration, a
// subscription, a status update), growing from min to max by factor, each
// jittered down by up to jitter_fraction of itself so that many peers
// retrying at once spread out.
//
//   Backoff b({.min_ns = 50ms, .max_ns = 5s, .factor = 2, .jitter_fraction = 0.5});
//   after(b.next(rng), retry);   // 25-50 ms, then 50-100 ms, ... up to 2.5-5 s
//   b.reset();                   // on success: the next retry starts at min again
//
// The random source is the caller's (a seeded std::mt19937_64), so a test
// or a simulation replays the same delays. With jitter_fraction 0 no number
// is drawn: the rng's sequence is left as it was.
// Invariants: min_ns <= ceiling() <= max_ns; every delay is in
// [ceiling * (1 - jitter_fraction), ceiling].
// Thread-safety: none; one owner (an actor's state).

#include <algorithm>
#include <chrono>
#include <random>

namespace tessera {

struct BackoffPolicy {
  std::chrono::nanoseconds min_ns{std::chrono::milliseconds(100)};
  std::chrono::nanoseconds max_ns{std::chrono::seconds(10)};
  double factor = 2.0;           // the ceiling's growth per attempt; at least 1
  double jitter_fraction = 0.5;  // in [0, 1]: how far below the ceiling a delay may fall
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy) : policy_(sanitized(policy)), ceiling_(policy_.min_ns) {}

  // The delay before the next attempt; the ceiling then grows.
  template <class Rng>
  std::chrono::nanoseconds next(Rng& rng) {
    auto delay = peek(rng);
    grow();
    return delay;
  }

  // A delay at the current ceiling, jittered, without counting an attempt
  // (the ceiling stays): a first wait before a series of attempts.
  template <class Rng>
  std::chrono::nanoseconds peek(Rng& rng) const {
    if (policy_.jitter_fraction <= 0)
      return ceiling_;
    std::uniform_real_distribution<double> scale(1.0 - policy_.jitter_fraction, 1.0);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(ceiling_ * scale(rng));
  }

  // next() for a policy without jitter (jitter_fraction is ignored).
  std::chrono::nanoseconds next() {
    auto delay = ceiling_;
    grow();
    return delay;
  }

  // Back to min_ns (the thing succeeded, or a new series of attempts begins).
  void reset() { ceiling_ = policy_.min_ns; }

  // The ceiling of the next delay.
  std::chrono::nanoseconds ceiling() const { return ceiling_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  static BackoffPolicy sanitized(BackoffPolicy p) {
    p.min_ns = std::max(p.min_ns, std::chrono::nanoseconds(0));
    p.max_ns = std::max(p.max_ns, p.min_ns);
    p.factor = std::max(p.factor, 1.0);
    p.jitter_fraction = std::clamp(p.jitter_fraction, 0.0, 1.0);
    return p;
  }

  void grow() {
    // In double, so a large factor cannot overflow the count.
    auto grown = static_cast<double>(ceiling_.count()) * policy_.factor;
    auto max = static_cast<double>(policy_.max_ns.count());
    ceiling_ =
        grown >= max ? policy_.max_ns : std::chrono::nanoseconds(static_cast<int64_t>(grown));
  }

  BackoffPolicy policy_;
  std::chrono::nanoseconds ceiling_;
};

}  // namespace tessera
