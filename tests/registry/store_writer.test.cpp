// StoreWriter: one commit in flight, order kept, answers after durability,
// failures retried, a conflict final. The owner's lanes are played by the
// test: blocking work and timers wait in queues until the test runs them.

#include "services/registry/store_writer.hpp"

#include <catch2/catch.hpp>

#include <deque>

using namespace tessera;

namespace {

// A store that fails the next commits it is told to, then behaves.
class FlakyStore : public MemoryStore {
 public:
  int fail_next = 0;
  int commits = 0;
  expected<uint64_t> commit(uint64_t version, const std::vector<RegistryChange>& changes) override {
    ++commits;
    if (fail_next > 0) {
      --fail_next;
      return make_error(Errc::os_error, "disk on fire");
    }
    return MemoryStore::commit(version, changes);
  }
};

struct Lanes {
  std::deque<StoreWriter::Work> work;       // the store lane's queue
  std::deque<std::function<void()>> later;  // timers and defers
  bool lost = false;
  StoreWriter::Hooks hooks() {
    return {[this](StoreWriter::Work w) {
              work.push_back(std::move(w));
              return true;
            },
            [this](Duration, std::function<void()> fn) { later.push_back(std::move(fn)); },
            [this](std::function<void()> fn) { later.push_back(std::move(fn)); },
            [this] { lost = true; }};
  }
  // Runs the lane's next work and then its answer on "the actor".
  void run_one() {
    REQUIRE(!work.empty());
    auto w = std::move(work.front());
    work.pop_front();
    w()();
  }
};

std::map<std::string, std::string> records(RegistryStore& s) {
  auto snap = s.load();
  REQUIRE(snap);
  return snap->records;
}

}  // namespace

TEST_CASE("StoreWriter keeps one commit in flight even when an answer persists more",
          "[registry][store_writer]") {
  auto store = std::make_shared<FlakyStore>();
  Lanes lanes;
  StoreWriter writer(store, 0, "test", std::chrono::seconds(1), lanes.hooks());
  std::vector<std::string> answered;
  writer.persist({{"a", "1"}}, [&] {
    answered.push_back("a");
    // Two more persists from the answer: each must wait for the one before.
    writer.persist({{"b", "2"}});
    writer.persist({{"c", "3"}}, [&] { answered.push_back("c"); });
  });
  REQUIRE(lanes.work.size() == 1);
  lanes.run_one();
  CHECK(answered == std::vector<std::string>{"a"});
  // b, then c: never two commits queued at once (both would expect the same
  // version, and the second would conflict).
  int rounds = 0;
  while (!lanes.work.empty() && ++rounds < 10) {
    CHECK(lanes.work.size() == 1);
    lanes.run_one();
  }
  CHECK(answered == std::vector<std::string>{"a", "c"});
  CHECK(records(*store) == std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}, {"c", "3"}});
  CHECK(store->commits == int(writer.counters().commits));
  CHECK_FALSE(lanes.lost);
}

TEST_CASE("StoreWriter answers after_durable only once what came before is written",
          "[registry][store_writer]") {
  auto store = std::make_shared<FlakyStore>();
  Lanes lanes;
  StoreWriter writer(store, 0, "test", std::chrono::seconds(1), lanes.hooks());
  bool done = false;
  writer.persist({{"a", "1"}});
  writer.after_durable([&] { done = true; });
  CHECK_FALSE(done);
  lanes.run_one();
  CHECK(done);
  // Nothing pending: soon (deferred), not at once.
  bool soon = false;
  writer.after_durable([&] { soon = true; });
  CHECK_FALSE(soon);
  REQUIRE(lanes.later.size() == 1);
  lanes.later.front()();
  CHECK(soon);
}

TEST_CASE("StoreWriter retries a failed commit with its changes in front, and stops on a conflict",
          "[registry][store_writer]") {
  auto store = std::make_shared<FlakyStore>();
  Lanes lanes;
  StoreWriter writer(store, 0, "test", std::chrono::seconds(1), lanes.hooks());
  store->fail_next = 1;
  writer.persist({{"k", "old"}});
  lanes.run_one();  // fails: retried after the retry delay
  CHECK(writer.counters().failures == 1);
  writer.persist({{"k", "new"}});  // comes after, and must win
  CHECK(lanes.work.empty());       // nothing starts while the retry waits
  REQUIRE(lanes.later.size() == 1);
  lanes.later.front()();
  lanes.later.pop_front();
  lanes.run_one();
  CHECK(records(*store)["k"] == "new");

  // Another writer moves the store: this one's next commit conflicts.
  auto at = store->load();
  REQUIRE(at);
  REQUIRE(store->commit(at->version, {{"other", "x"}}));
  writer.persist({{"k", "mine"}});
  lanes.run_one();
  CHECK(lanes.lost);
  CHECK(writer.lost());
  writer.persist({{"k", "after"}});
  CHECK(lanes.work.empty());  // a lost writer writes nothing more
  CHECK(records(*store)["k"] == "new");
}
