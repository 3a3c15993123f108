// The agent's checkpoint writer: writes land in order and atomically, a write
// waiting in the queue is replaced by a newer one to the same file, and
// every done callback runs.

#include "services/agent/checkpoint.hpp"
#include "services/agent/checkpoint_writer.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <mutex>
#include <vector>

using namespace tessera;
using namespace std::chrono_literals;
using tessera::testing::read_file;
using tessera::testing::TempDir;

TEST_CASE("the checkpoint writer writes in order and coalesces queued writes",
          "[checkpoint][writer]") {
  TempDir dir;
  auto file = dir.path() / "meta" / "x.info";
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<int> done{0};
  {
    CheckpointWriter writer;
    // Hold the writer busy so the next writes wait in its queue.
    std::promise<void> release;
    auto gate = release.get_future().share();
    writer.run([gate] {
      gate.wait();
      return caf::error{};
    });
    for (int i = 0; i < 50; ++i)
      writer.write(file, "v" + std::to_string(i), [&, i](const caf::error& err) {
        CHECK_FALSE(err);
        std::lock_guard<std::mutex> guard(mu);
        order.push_back("write " + std::to_string(i));
        ++done;
      });
    writer.run(
        [&] {
          std::lock_guard<std::mutex> guard(mu);
          order.push_back("op");
          return caf::error{};
        },
        [&](const caf::error&) { ++done; });
    writer.write(file, "after", [&](const caf::error&) { ++done; });
    release.set_value();
    writer.flush();
    CHECK(done == 52);
    // The 50 queued writes were one: every callback ran, all after that one write.
    std::lock_guard<std::mutex> guard(mu);
    REQUIRE(order.size() == 51);
    CHECK(order.back() == "op");
  }
  CHECK(read_file(file) == "after");
}

TEST_CASE("a failing checkpoint write is reported to its callback and to on_error",
          "[checkpoint][writer]") {
  TempDir dir;
  std::atomic<int> errors{0};
  std::atomic<bool> failed{false};
  CheckpointWriter writer([&](const caf::error&) { ++errors; });
  // A regular file where a directory should be.
  { std::ofstream(dir.path() / "blocker") << "x"; }
  writer.write(dir.path() / "blocker" / "x.info", "v",
               [&](const caf::error& err) { failed = static_cast<bool>(err); });
  writer.flush();
  CHECK(failed);
  CHECK(errors == 1);
}

TEST_CASE("a full checkpoint queue refuses at once instead of blocking the caller",
          "[checkpoint][writer]") {
  TempDir dir;
  CheckpointWriter writer({}, 2);
  // Hold the writer busy; two operations then fill its queue.
  std::promise<void> release;
  auto gate = release.get_future().share();
  std::atomic<bool> started{false};
  REQUIRE(writer.run([gate, &started] {
    started = true;
    gate.wait();
    return caf::error{};
  }));
  std::atomic<int> done{0};
  auto count = [&](const caf::error& err) {
    CHECK_FALSE(err);
    ++done;
  };
  // Once the writer runs the gated operation, exactly two more fill the queue.
  REQUIRE(testing::wait_until([&] { return started.load(); }));
  REQUIRE(writer.write(dir.path() / "a.info", "a1", count));
  REQUIRE(writer.write(dir.path() / "b.info", "b1", count));
  // On another thread, so that a write that blocks shows as a failure, not a hang.
  auto third = std::async(std::launch::async,
                          [&] { return writer.write(dir.path() / "c.info", "c1", count); });
  bool returned = third.wait_for(10s) == std::future_status::ready;
  if (!returned)
    release.set_value();  // unblock it before failing
  REQUIRE(returned);
  CHECK_FALSE(third.get());  // refused: backpressure, nothing queued
  CHECK(writer.refused() == 1);
  CHECK_FALSE(writer.accepts(dir.path() / "c.info"));
  CHECK(is(writer.refusal(), Errc::overloaded));
  // A write to a file already queued replaces it, so it always fits.
  CHECK(writer.accepts(dir.path() / "a.info"));
  CHECK(writer.write(dir.path() / "a.info", "a2", count));
  CHECK_FALSE(writer.run([] { return caf::error{}; }));  // an operation does not fit either
  release.set_value();
  writer.flush();
  CHECK(done == 3);  // a1 and a2 (one write), b1; the refused c1 never called back
  CHECK(read_file(dir.path() / "a.info") == "a2");
  CHECK_FALSE(std::filesystem::exists(dir.path() / "c.info"));
  // With room again, the caller's retry is taken.
  CHECK(writer.write(dir.path() / "c.info", "c1", count));
  writer.flush();
  CHECK(done == 4);
}
