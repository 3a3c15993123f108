// Interception: observe, drop, delay and duplicate by type, sender or receiver.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

struct Fixture : PausedNode {
  std::mutex mu;
  std::vector<uint64_t> seqs;

  Fixture() {
    REQUIRE(node->spawn<Probe>("sink", [this](Probe& self) {
      self.on<testwire::Ping>([this](const Received<testwire::Ping>& m) {
        std::lock_guard<std::mutex> guard(mu);
        seqs.push_back(m.body().getSeq());
      });
    }));
    REQUIRE(node->spawn<Probe>("source", [this](Probe& self) {
      // The source sends a ping to the sink for each ping it gets.
      self.on<testwire::Ping>([this, &self](const Received<testwire::Ping>& m) {
        self.send(node->address_of("sink"), make_ping(m.body().getSeq()));
      });
    }));
  }
  std::vector<uint64_t> delivered() {
    REQUIRE(node->settle());
    std::lock_guard<std::mutex> guard(mu);
    return seqs;
  }
  Address sink() { return node->address_of("sink"); }
  Address source() { return node->address_of("source"); }
};

}  // namespace

TEST_CASE("a rule drops a bounded number of matching messages", "[filter]") {
  Fixture f;
  auto id = f.node->filters().add(match_type<testwire::Ping>(), FilterAction::Drop(), 1);
  for (uint64_t i = 1; i <= 3; ++i) {
    f.node->send(f.sink(), make_ping(i));
    REQUIRE(f.node->settle());
  }
  CHECK(f.delivered() == std::vector<uint64_t>{2, 3});
  CHECK(f.node->filters().hits(id) == 1);
}

TEST_CASE("a rule matches by sender", "[filter]") {
  Fixture f;
  f.node->filters().add(MessageMatch{std::nullopt, f.source(), std::nullopt}, FilterAction::Drop());
  f.node->send(f.sink(), make_ping(1));    // from outside: passes
  f.node->send(f.source(), make_ping(2));  // relayed by source: dropped
  CHECK(f.delivered() == std::vector<uint64_t>{1});
}

TEST_CASE("a rule matches by receiver", "[filter]") {
  Fixture f;
  f.node->filters().add(MessageMatch{std::nullopt, std::nullopt, f.source()}, FilterAction::Drop());
  f.node->send(f.source(), make_ping(1));  // dropped before the source sees it
  f.node->send(f.sink(), make_ping(2));
  CHECK(f.delivered() == std::vector<uint64_t>{2});
}

TEST_CASE("duplicate delivers a message several times", "[filter]") {
  Fixture f;
  f.node->filters().add(match_type<testwire::Ping>(), FilterAction::Duplicate(3), 1);
  f.node->send(f.sink(), make_ping(9));
  CHECK(f.delivered() == std::vector<uint64_t>{9, 9, 9});
}

TEST_CASE("delay holds a message on the runtime clock", "[filter][clock]") {
  Fixture f;
  f.node->filters().add(match_type<testwire::Ping>(), FilterAction::Delay(5s), 1);
  f.node->send(f.sink(), make_ping(1));
  f.node->send(f.sink(), make_ping(2));
  CHECK(f.delivered() == std::vector<uint64_t>{2});
  f.clock->advance(5s);
  CHECK(f.delivered() == std::vector<uint64_t>{2, 1});
}

TEST_CASE("a general filter observes every delivery, removing it stops it", "[filter]") {
  Fixture f;
  std::atomic<int> seen{0};
  auto id = f.node->filters().add([&](const Envelope&) {
    ++seen;
    return FilterAction::Pass();
  });
  f.node->send(f.source(), make_ping(1));  // source, then sink
  REQUIRE(f.node->settle());
  CHECK(seen == 2);
  f.node->filters().remove(id);
  CHECK(f.node->filters().empty());
  f.node->send(f.sink(), make_ping(2));
  CHECK(f.delivered() == std::vector<uint64_t>{1, 2});
  CHECK(seen == 2);
}
