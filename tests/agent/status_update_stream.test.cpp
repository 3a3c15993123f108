// The agent's plain parts, without actors: one task's update stream, sandbox
// reads and resource detection.

#include "services/agent/agent.hpp"
#include "services/agent/sandbox.hpp"
#include "services/agent/status_update_stream.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace tessera;
using State = wire::TaskState;

namespace {

Owned<wire::TaskStatus> status(State state, const std::string& uuid) {
  capnp::MallocMessageBuilder b;
  auto s = b.initRoot<wire::TaskStatus>();
  s.setTaskId("t1");
  s.setState(state);
  s.setUuid(tessera::data(uuid));
  return Owned<wire::TaskStatus>(s.asReader());
}

using Added = StatusUpdateStream::Added;

}  // namespace

TEST_CASE("a stream hands out updates one at a time, in order", "[stream]") {
  StatusUpdateStream s;
  CHECK(s.front() == nullptr);
  CHECK(s.add(status(State::STARTING, "u1").get()) == Added::fresh);
  CHECK(s.add(status(State::RUNNING, "u2").get()) == Added::fresh);
  CHECK(s.latest_state() == State::RUNNING);
  CHECK(s.next_state() == State::STARTING);
  REQUIRE(s.front());
  CHECK(str(s.front()->get().getUuid()) == "u1");
  CHECK_FALSE(s.ack("u2"));  // only the front can be acknowledged
  CHECK(s.ack("u1"));
  CHECK_FALSE(s.ack("u1"));  // a duplicate acknowledgement
  CHECK(str(s.front()->get().getUuid()) == "u2");
  CHECK(s.ack("u2"));
  CHECK(s.front() == nullptr);
  CHECK(s.next_state() == State::RUNNING);
  CHECK_FALSE(s.terminated());
}

TEST_CASE("a stream ignores duplicates and ends with its terminal update", "[stream]") {
  StatusUpdateStream s;
  CHECK(s.add(status(State::RUNNING, "u1").get()) == Added::fresh);
  CHECK(s.add(status(State::RUNNING, "u1").get()) == Added::duplicate);
  CHECK(s.pending() == 1);
  CHECK(s.add(status(State::FINISHED, "u2").get()) == Added::fresh);
  CHECK(s.terminated());
  CHECK_FALSE(s.terminal_acknowledged());
  CHECK(s.add(status(State::FAILED, "u3").get()) == Added::after_terminal);
  CHECK(s.add(status(State::RUNNING, "").get()) == Added::invalid);
  CHECK(s.ack("u1"));
  CHECK(s.ack("u2"));
  CHECK(s.terminal_acknowledged());
  CHECK(s.latest_state() == State::FINISHED);
}

TEST_CASE("a stream holds at most pending_max updates", "[stream]") {
  StatusUpdateStream s;
  for (size_t i = 0; i < StatusUpdateStream::pending_max; ++i)
    REQUIRE(s.add(status(State::RUNNING, "u" + std::to_string(i)).get()) == Added::fresh);
  CHECK(s.add(status(State::RUNNING, "one-more").get()) == Added::full);
  CHECK(s.ack("u0"));
  CHECK(s.add(status(State::RUNNING, "one-more").get()) == Added::fresh);
}

TEST_CASE("sandbox reads stay inside the sandbox and are bounded", "[sandbox]") {
  testing::TempDir dir;
  auto box = dir.path() / "box";
  std::filesystem::create_directories(box / "sub");
  std::ofstream(box / "stdout") << "hello world";
  std::ofstream(dir.path() / "secret") << "secret";
  std::filesystem::create_symlink(dir.path() / "secret", box / "escape");

  auto all = sandbox::read(box, "stdout", 0, 100);
  REQUIRE(all);
  CHECK(all->data == "hello world");
  CHECK(all->size == 11);
  auto part = sandbox::read(box, "stdout", 6, 3);
  REQUIRE(part);
  CHECK(part->data == "wor");
  auto past = sandbox::read(box, "stdout", 50, 3);
  REQUIRE(past);
  CHECK(past->data.empty());
  CHECK(past->size == 11);
  for (auto bad : {"", "/etc/passwd", "../secret", "sub/../../secret", "escape"}) {
    INFO(bad);
    auto refused = sandbox::read(box, bad, 0, 100);
    REQUIRE_FALSE(refused);
    CHECK(is(refused.error(), Errc::invalid_argument));
  }
  CHECK_FALSE(sandbox::read(box, "missing", 0, 100));
  CHECK_FALSE(sandbox::read(box, "sub", 0, 100));  // a directory
}

TEST_CASE("only plain path components are ids", "[sandbox]") {
  CHECK(sandbox::valid_path_id("task-1.a_b"));
  CHECK_FALSE(sandbox::valid_path_id(""));
  CHECK_FALSE(sandbox::valid_path_id("."));
  CHECK_FALSE(sandbox::valid_path_id(".."));
  CHECK_FALSE(sandbox::valid_path_id("a/b"));
  CHECK_FALSE(sandbox::valid_path_id(std::string("a\nb")));
  CHECK_FALSE(sandbox::valid_path_id(std::string(300, 'x')));
}

TEST_CASE("detected resources fill in what the operator did not give", "[resources]") {
  testing::TempDir dir;
  auto detected = detect_resources(dir.path());
  REQUIRE(detected);
  CHECK(detected->get("cpus") >= 1);
  CHECK(detected->get("mem") > 0);
  CHECK(detected->get_ranges("ports") == std::vector<Range>{{31000, 32000}});
  auto merged = merge_resources(*Resources::parse("cpus:0.5;gpus:1"), *detected);
  CHECK(merged.get("cpus") == 0.5);
  CHECK(merged.get("gpus") == 1);
  CHECK(merged.get("mem") == detected->get("mem"));
}
