// The blocking pool's lanes: each class of work has its own threads and its
// own bounded queue, so slow work of one class never delays another's.

#include "runtime/blocking_pool.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using tessera::BlockingPool;
using tessera::Work;

namespace {

// Jobs that wait until it opens (or a minute, so a broken test still ends).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, 1min, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> guard(mu);
      open = true;
    }
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("a lane whose threads are all stalled does not hold up another lane", "[pool]") {
  auto gate = std::make_shared<Gate>();
  BlockingPool pool;
  auto fetch = BlockingPool::default_limits(Work::fetch);
  // Every fetch thread stalled, and more fetches queued behind them.
  for (size_t i = 0; i < fetch.threads_max + 3; ++i)
    REQUIRE(pool.submit(Work::fetch, [gate] { gate->wait(); }));
  // Threads start as work arrives: wait until every fetch thread holds one.
  for (int i = 0; i < 3000 && pool.running(Work::fetch) < fetch.threads_max; ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(pool.running(Work::fetch) == fetch.threads_max);
  std::promise<void> destroyed, read;
  REQUIRE(pool.submit(Work::container, [&] { destroyed.set_value(); }));
  REQUIRE(pool.submit(Work::usage, [&] { read.set_value(); }));
  // Generous bounds: only a pool that makes them wait for the gate fails.
  CHECK(destroyed.get_future().wait_for(30s) == std::future_status::ready);
  CHECK(read.get_future().wait_for(30s) == std::future_status::ready);
  CHECK(pool.queued(Work::fetch) == 3);  // still stalled throughout
  CHECK(pool.running(Work::fetch) == fetch.threads_max);
  gate->release();
  pool.shutdown();
}

TEST_CASE("each lane's queue is bounded on its own", "[pool]") {
  auto gate = std::make_shared<Gate>();
  BlockingPool pool;
  pool.set_limits(Work::probe, {1, 2});
  REQUIRE(pool.submit(Work::probe, [gate] { gate->wait(); }));
  for (int i = 0; i < 3000 && pool.running(Work::probe) == 0; ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(pool.running(Work::probe) == 1);
  // One running, two queued: full.
  REQUIRE(pool.submit(Work::probe, [gate] { gate->wait(); }));
  REQUIRE(pool.submit(Work::probe, [gate] { gate->wait(); }));
  CHECK_FALSE(pool.submit(Work::probe, [] {}));
  // Other lanes still take work.
  std::promise<void> general;
  CHECK(pool.submit([&] { general.set_value(); }));
  CHECK(general.get_future().wait_for(30s) == std::future_status::ready);
  gate->release();
  pool.shutdown();
  CHECK_FALSE(pool.submit(Work::general, [] {}));  // stopped
}

TEST_CASE("work classes have names", "[pool]") {
  CHECK(std::string(to_string(Work::fetch)) == "fetch");
  CHECK(std::string(to_string(Work::container)) == "container");
  CHECK(std::string(to_string(Work::usage)) == "usage");
  CHECK(std::string(to_string(Work::probe)) == "probe");
  CHECK(std::string(to_string(Work::general)) == "general");
}
