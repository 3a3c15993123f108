// Time under the test's control: pause, advance, settle (libprocess Clock).

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

TEST_CASE("a 75-second timer fires only when paused time reaches it", "[clock]") {
  PausedNode t;
  std::atomic<int> fired{0};
  std::atomic<int> cancelled_fired{0};
  REQUIRE(t.node->spawn<Probe>("timed", [&](Probe& self) {
    self.after(75s, [&] { ++fired; });
    auto id = self.after(10s, [&] { ++cancelled_fired; });
    self.cancel(id);
  }));
  REQUIRE(t.node->settle());
  t.advance(74s);
  CHECK(fired == 0);
  t.advance(1s);
  CHECK(fired == 1);
  CHECK(cancelled_fired == 0);
  CHECK(t.clock->pending() == 0);
}

TEST_CASE("timers fire in deadline order", "[clock]") {
  PausedNode t;
  std::mutex mu;
  std::vector<int> order;
  auto start = t.clock->now();
  REQUIRE(t.node->spawn<Probe>("timed", [&](Probe& self) {
    for (int s : {3, 1, 2})
      self.after(std::chrono::seconds(s), [&, s] {
        std::lock_guard<std::mutex> guard(mu);
        order.push_back(s);
      });
  }));
  REQUIRE(t.node->settle());
  t.advance(10s);
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(t.clock->now() - start == 10s);
}

TEST_CASE("a request times out on paused time, not on the wall clock", "[clock][request]") {
  PausedNode t;
  REQUIRE(t.node->spawn<Probe>("silent", [](Probe& self) {
    self.on<testwire::Ping>([](const Received<testwire::Ping>&) {});
  }));
  std::atomic<int> errors{0};
  REQUIRE(t.node->spawn<Probe>("asker", [&](Probe& self) {
    self.request<testwire::Pong>(
        t.node->address_of("silent"), make_ping(1), 30s, [](const Received<testwire::Pong>&) {},
        [&](const caf::error& err) {
          if (is(err, Errc::timeout))
            ++errors;
        });
  }));
  REQUIRE(t.node->settle());
  t.advance(29s);
  CHECK(errors == 0);
  t.advance(1s);
  CHECK(errors == 1);
}

TEST_CASE("paused time stands still and resumes without going backwards", "[clock]") {
  auto clock = Clock::make_real();
  clock->pause();
  auto frozen = clock->now();
  std::this_thread::sleep_for(5ms);
  CHECK(clock->now() == frozen);
  clock->advance(1h);
  CHECK(clock->now() == frozen + 1h);
  clock->resume();
  CHECK(clock->now() >= frozen + 1h);
  CHECK_FALSE(clock->paused());
}

TEST_CASE("an unpaused clock fires timers in real time", "[clock]") {
  auto node = Node::start();
  REQUIRE(node);
  std::atomic<int> fired{0};
  REQUIRE((*node)->spawn<Probe>("timed", [&](Probe& self) { self.after(20ms, [&] { ++fired; }); }));
  CHECK(wait_until([&] { return fired == 1; }));
}

TEST_CASE("a timer set for ever never fires, however far time advances", "[clock]") {
  PausedNode t;
  std::atomic<int> fired{0};
  REQUIRE(t.node->spawn<Probe>(
      "timed", [&](Probe& self) { self.after(Duration::max(), [&] { ++fired; }); }));
  REQUIRE(t.node->settle());
  t.advance(std::chrono::hours(24 * 365 * 100));
  CHECK(fired == 0);
}
