#include "runtime/backoff.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace std::chrono_literals;
using tessera::Backoff;
using tessera::BackoffPolicy;

TEST_CASE("backoff without jitter doubles from min to max and resets", "[backoff]") {
  Backoff b({50ms, 300ms, 2.0, 0.0});
  CHECK(b.next() == 50ms);
  CHECK(b.next() == 100ms);
  CHECK(b.next() == 200ms);
  CHECK(b.next() == 300ms);  // capped
  CHECK(b.next() == 300ms);
  b.reset();
  CHECK(b.ceiling() == 50ms);
  CHECK(b.next() == 50ms);
}

TEST_CASE("backoff without jitter draws nothing from the rng", "[backoff]") {
  std::mt19937_64 used(7), untouched(7);
  Backoff b({10ms, 1s, 2.0, 0.0});
  for (int i = 0; i < 5; ++i)
    b.next(used);
  CHECK(used() == untouched());
}

TEST_CASE("backoff jitter stays within [ceiling * (1 - jitter), ceiling]", "[backoff]") {
  std::mt19937_64 rng(42);
  Backoff b({100ms, 10s, 2.0, 0.5});
  bool below_ceiling = false;
  for (int round = 0; round < 200; ++round) {
    b.reset();
    for (auto ceiling = std::chrono::nanoseconds(100ms); ceiling <= 10s; ceiling *= 2) {
      REQUIRE(b.ceiling() == std::min<std::chrono::nanoseconds>(ceiling, 10s));
      auto d = b.next(rng);
      CHECK(d >= b.policy().min_ns / 2);
      CHECK(d <= std::min<std::chrono::nanoseconds>(ceiling, 10s));
      CHECK(d >= std::min<std::chrono::nanoseconds>(ceiling, 10s) / 2);
      below_ceiling = below_ceiling || d < std::min<std::chrono::nanoseconds>(ceiling, 10s);
    }
  }
  CHECK(below_ceiling);  // jitter does move delays
}

TEST_CASE("backoff with the same seed replays the same delays", "[backoff]") {
  std::mt19937_64 a(3), b(3);
  Backoff x({50ms, 5s, 2.0, 0.5}), y({50ms, 5s, 2.0, 0.5});
  for (int i = 0; i < 20; ++i)
    CHECK(x.next(a) == y.next(b));
}

TEST_CASE("peek jitters the ceiling without counting an attempt", "[backoff]") {
  std::mt19937_64 rng(1);
  Backoff b({80ms, 1s, 2.0, 0.5});
  auto d = b.peek(rng);
  CHECK(d >= 40ms);
  CHECK(d <= 80ms);
  CHECK(b.ceiling() == 80ms);
}

TEST_CASE("backoff policies out of range are made usable", "[backoff]") {
  Backoff b({200ms, 100ms, 0.5, 3.0});  // max below min, shrinking factor, jitter over 1
  std::mt19937_64 rng(1);
  CHECK(b.policy().max_ns == 200ms);
  CHECK(b.policy().factor == 1.0);
  CHECK(b.policy().jitter_fraction == 1.0);
  auto d = b.next(rng);
  CHECK(d >= 0ms);
  CHECK(d <= 200ms);
  CHECK(b.ceiling() == 200ms);
}

TEST_CASE("a large factor saturates at max instead of overflowing", "[backoff]") {
  Backoff b({1s, 24h, 1e12, 0.0});
  CHECK(b.next() == 1s);
  CHECK(b.next() == 24h);
  CHECK(b.next() == 24h);
}
