// Actors start processes through the node's libuv launcher and hear of their
// exit as a message on their own thread.

#include "runtime/actor.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <stdexcept>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

TEST_CASE("an actor starts a process and receives its exit status", "[process]") {
  auto node = Node::start();
  REQUIRE(node);
  TempDir dir;
  std::atomic<int> code{-100};
  std::string spawn_error;
  std::atomic<bool> done{false};
  std::atomic<bool> started{false};
  REQUIRE((*node)->spawn<Probe>("launcher", [&](Probe& self) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", "echo hello; exit 3"};
    spec.stdout_path = (dir.path() / "out").string();
    auto pid = self.start_process(spec, [&](const ProcessExit& e) { code = e.exit_code; });
    started = static_cast<bool>(pid);
    ProcessSpec missing;
    missing.argv = {"/no/such/binary"};
    auto bad = self.start_process(missing, [](const ProcessExit&) {});
    if (!bad)
      spawn_error = describe(bad.error());
    done = true;
  }));
  REQUIRE(wait_until([&] { return done.load(); }));
  REQUIRE(started);
  REQUIRE(wait_until([&] { return code != -100; }));
  CHECK(code == 3);
  CHECK(read_file(dir.path() / "out") == "hello\n");
  CHECK(spawn_error.rfind("spawn_failed", 0) == 0);
}

TEST_CASE("an actor kills its process with a chosen signal", "[process]") {
  auto node = Node::start();
  REQUIRE(node);
  std::atomic<int> sig{0};
  std::atomic<int> pid{0};
  REQUIRE((*node)->spawn<Probe>("launcher", [&](Probe& self) {
    ProcessSpec spec;
    spec.argv = {"sleep", "100"};
    auto started = self.start_process(spec, [&](const ProcessExit& e) { sig = e.term_signal; });
    pid = started ? *started : -1;
  }));
  REQUIRE(wait_until([&] { return pid != 0; }));
  REQUIRE(pid > 0);
  REQUIRE_FALSE((*node)->launcher().kill(pid, SIGTERM));
  REQUIRE(wait_until([&] { return sig != 0; }));
  CHECK(sig == SIGTERM);
}

TEST_CASE("an actor runs blocking work off its thread and continues on it", "[blocking]") {
  auto node = Node::start();
  REQUIRE(node);
  std::atomic<bool> ran_elsewhere{false};
  std::atomic<int> result{0};
  std::atomic<bool> continued_on_actor{false};
  REQUIRE((*node)->spawn<Probe>("worker", [&](Probe& self) {
    auto actor_thread = std::this_thread::get_id();
    bool queued = self.blocking([&, actor_thread]() -> std::function<void()> {
      ran_elsewhere = std::this_thread::get_id() != actor_thread;
      int value = 42;
      return [&, value] {
        continued_on_actor = self.me().name == "worker";
        result = value;
      };
    });
    CHECK(queued);
  }));
  REQUIRE(wait_until([&] { return result.load() != 0; }));
  CHECK(result == 42);
  CHECK(ran_elsewhere);
  CHECK(continued_on_actor);
}

TEST_CASE("blocking work that throws is logged and its actor goes on", "[blocking]") {
  auto node = Node::start();
  REQUIRE(node);
  std::atomic<int> step{0};
  REQUIRE((*node)->spawn<Probe>("worker", [&](Probe& self) {
    self.blocking([]() -> std::function<void()> { throw std::runtime_error("boom"); });
    self.blocking([&]() -> std::function<void()> { return [&] { step = 2; }; });
  }));
  REQUIRE(wait_until([&] { return step.load() == 2; }));
}
