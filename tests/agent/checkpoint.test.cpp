// Agent checkpoints without an agent: every record round-trips, a crash in
// the middle of a write leaves the previous content readable, removal, and
// recovery of a fresh, a full and a damaged meta/ folder.

#include "services/agent/checkpoint.hpp"
#include "services/agent/status_update_stream.hpp"
#include "services/common/wire.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace tessera;
namespace ck = tessera::checkpoint;
namespace fs = std::filesystem;
using State = wire::TaskState;

namespace {

Owned<wire::AgentRecord> agent_record(const std::string& id) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::AgentRecord>();
  r.initAgentInfo().setAgentId(id);
  r.getAgentInfo().setHostname("host-1");
  r.getAgentInfo().setPort(5051);
  r.setMasterAddress("master@127.0.0.1:5050");
  r.setVersion("tessera 0.1.0");
  return Owned<wire::AgentRecord>(r.asReader());
}

Owned<wire::FrameworkInfo> framework_info(const std::string& id) {
  capnp::MallocMessageBuilder b;
  auto f = b.initRoot<wire::FrameworkInfo>();
  f.setFrameworkId(id);
  f.setName("fw " + id);
  f.setUser("alice");
  f.initRoles(1).set(0, "analytics");
  f.setFailoverTimeoutNs(42);
  return Owned<wire::FrameworkInfo>(f.asReader());
}

Owned<wire::ExecutorRunRecord> run_record(const std::string& fw, const std::string& ex,
                                          const std::string& run) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ExecutorRunRecord>();
  r.setFrameworkId(fw);
  r.setExecutorId(ex);
  r.setRunId(run);
  r.setPid(4242);
  r.setContainerId(run);
  r.setIsolation("cgroups-v1");
  auto cgroups = r.initCgroupPaths(2);
  cgroups.set(0, "/sys/fs/cgroup/cpu/tessera/" + run);
  cgroups.set(1, "/sys/fs/cgroup/memory/tessera/" + run);
  r.setExecutorAddress("executor-" + run + "@127.0.0.1:5051");
  r.setSandbox("/tmp/work/frameworks/" + fw + "/executors/" + ex + "/runs/" + run);
  r.initExecutorInfo().setExecutorId(ex);
  r.getExecutorInfo().setFrameworkId(fw);
  r.getExecutorInfo().setType(wire::ExecutorInfo::Type::DEFAULT);
  auto tasks = r.initTasks(1);
  tasks[0].setTaskId("t1");
  tasks[0].initCommand().setShell("echo hi");
  return Owned<wire::ExecutorRunRecord>(r.asReader());
}

Owned<wire::TaskStatus> status(State state, const std::string& uuid) {
  capnp::MallocMessageBuilder b;
  auto s = b.initRoot<wire::TaskStatus>();
  s.setTaskId("t1");
  s.setState(state);
  s.setUuid(tessera::data(uuid));
  return Owned<wire::TaskStatus>(s.asReader());
}

// A task record whose stream took STARTING (acknowledged), RUNNING and
// FINISHED (both waiting).
Owned<wire::TaskRecord> task_record(const std::string& fw, const std::string& task_id) {
  StatusUpdateStream stream;
  REQUIRE(stream.add(status(State::STARTING, "u1").get()) == StatusUpdateStream::Added::fresh);
  REQUIRE(stream.ack("u1"));
  REQUIRE(stream.add(status(State::RUNNING, "u2").get()) == StatusUpdateStream::Added::fresh);
  REQUIRE(stream.add(status(State::FINISHED, "u3").get()) == StatusUpdateStream::Added::fresh);
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::TaskRecord>();
  r.setFrameworkId(fw);
  r.setExecutorId(task_id);
  r.setRunId("r1");
  r.initTask().setTaskId(task_id);
  r.getTask().initCommand().setShell("sleep 1");
  stream.save(r);
  return Owned<wire::TaskRecord>(r.asReader());
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool mentions(const std::vector<std::string>& warnings, const std::string& text) {
  for (const auto& w : warnings)
    if (w.find(text) != std::string::npos)
      return true;
  return false;
}

}  // namespace

TEST_CASE("a fresh work dir recovers empty", "[checkpoint]") {
  testing::TempDir dir;
  auto state = ck::recover(dir.path());
  REQUIRE(state);
  CHECK_FALSE(state->agent);
  CHECK(state->frameworks.empty());
  CHECK(state->warnings.empty());
  auto none = ck::read_agent(dir.path());
  REQUIRE_FALSE(none);
  CHECK(is(none.error(), Errc::os_error));
}

TEST_CASE("every record round-trips", "[checkpoint]") {
  testing::TempDir dir;
  const auto& w = dir.path();
  REQUIRE(ck::write_agent(w, agent_record("a1").get()));
  REQUIRE(ck::write_framework(w, framework_info("f1").get()));
  REQUIRE(ck::write_executor_run(w, run_record("f1", "e1", "r1").get()));
  REQUIRE(ck::write_task(w, task_record("f1", "t1").get()));

  auto agent = ck::read_agent(w);
  REQUIRE(agent);
  CHECK(str(agent->get().getAgentInfo().getAgentId()) == "a1");
  CHECK(agent->get().getAgentInfo().getPort() == 5051);
  CHECK(str(agent->get().getMasterAddress()) == "master@127.0.0.1:5050");

  auto fw = ck::read_framework(w, "f1");
  REQUIRE(fw);
  CHECK(str(fw->get().getInfo().getName()) == "fw f1");
  CHECK(str(fw->get().getInfo().getRoles()[0]) == "analytics");
  CHECK(fw->get().getInfo().getFailoverTimeoutNs() == 42);

  auto run = ck::read_executor_run(w, "f1", "e1", "r1");
  REQUIRE(run);
  CHECK(run->get().getPid() == 4242);
  CHECK(str(run->get().getIsolation()) == "cgroups-v1");
  CHECK(run->get().getCgroupPaths().size() == 2);
  CHECK(str(run->get().getExecutorAddress()) == "executor-r1@127.0.0.1:5051");
  CHECK(run->get().getExecutorInfo().getType() == wire::ExecutorInfo::Type::DEFAULT);
  CHECK(str(run->get().getTasks()[0].getCommand().getShell()) == "echo hi");

  auto task = ck::read_task(w, "f1", "t1");
  REQUIRE(task);
  CHECK(task->get().getPending().size() == 2);
  CHECK(task->get().getLatestState() == State::FINISHED);
  CHECK(task->get().getTerminated());

  // The stream comes back as it was: RUNNING first, u1..u3 seen, ended.
  auto stream = StatusUpdateStream::restore(task->get());
  REQUIRE(stream.front());
  CHECK(str(stream.front()->get().getUuid()) == "u2");
  CHECK(stream.next_state() == State::RUNNING);
  CHECK(stream.latest_state() == State::FINISHED);
  CHECK(stream.terminated());
  CHECK(stream.add(status(State::RUNNING, "u1").get()) == StatusUpdateStream::Added::duplicate);
  CHECK(stream.add(status(State::FAILED, "u9").get()) == StatusUpdateStream::Added::after_terminal);
  CHECK(stream.ack("u2"));
  CHECK(stream.ack("u3"));
  CHECK(stream.terminal_acknowledged());

  auto state = ck::recover(w);
  REQUIRE(state);
  CHECK(state->warnings.empty());
  REQUIRE(state->agent);
  REQUIRE(state->frameworks.count("f1"));
  const auto& f = state->frameworks.at("f1");
  CHECK(f.record);
  CHECK(f.runs.size() == 1);
  CHECK(f.tasks.size() == 1);
  CHECK(state->records() == 4);

  // A rewrite replaces the content.
  REQUIRE(ck::write_agent(w, agent_record("a2").get()));
  CHECK(str(ck::read_agent(w)->get().getAgentInfo().getAgentId()) == "a2");
}

TEST_CASE("unsafe ids and oversized records are refused", "[checkpoint]") {
  testing::TempDir dir;
  for (const char* id : {"", ".", "..", "a/b"}) {
    auto r = ck::write_framework(dir.path(), framework_info(id).get());
    REQUIRE_FALSE(r);
    CHECK(is(r.error(), Errc::invalid_argument));
  }
  CHECK_FALSE(ck::read_task(dir.path(), "f1", "../x"));
  auto big = ck::write_atomically(dir.path() / "big", std::string(ck::record_bytes_max + 1, 'x'));
  REQUIRE_FALSE(big);
  CHECK(is(big.error(), Errc::oversized));
  CHECK_FALSE(fs::exists(dir.path() / "big"));
}

TEST_CASE("a crash in the middle of a write leaves the previous record readable", "[checkpoint]") {
  testing::TempDir dir;
  const auto& w = dir.path();
  REQUIRE(ck::write_task(w, task_record("f1", "t1").get()));
  REQUIRE(ck::write_framework(w, framework_info("f1").get()));
  auto path = ck::task_path(w, "f1", "t1");

  // The crash came after the temp file was partly written, before rename:
  // the record is untouched and recover() deletes the temp file.
  auto good = testing::read_file(path);
  auto temp = path.parent_path() / "task.info.tmp.999.0";
  write_bytes(temp, good.substr(0, good.size() / 2));

  auto task = ck::read_task(w, "f1", "t1");
  REQUIRE(task);
  CHECK(task->get().getPending().size() == 2);
  auto state = ck::recover(w);
  REQUIRE(state);
  CHECK(state->frameworks.at("f1").tasks.size() == 1);
  REQUIRE(state->warnings.size() == 1);
  CHECK(mentions(state->warnings, "task.info.tmp.999.0"));
  CHECK(mentions(state->warnings, "leftover temp file"));
  CHECK_FALSE(fs::exists(temp));

  // A record damaged on disk (truncated, or flipped bytes) is skipped and
  // named; its neighbours still recover.
  REQUIRE(ck::write_task(w, task_record("f1", "t2").get()));
  REQUIRE(ck::write_task(w, task_record("f1", "t3").get()));
  auto t2 = ck::task_path(w, "f1", "t2");
  auto t3 = ck::task_path(w, "f1", "t3");
  auto bytes = testing::read_file(t2);
  fs::resize_file(t2, bytes.size() - 8);
  bytes = testing::read_file(t3);
  bytes[bytes.size() - 3] ^= 0x5a;
  write_bytes(t3, bytes);

  auto truncated = ck::read_task(w, "f1", "t2");
  REQUIRE_FALSE(truncated);
  CHECK(is(truncated.error(), Errc::truncated));
  auto corrupt = ck::read_task(w, "f1", "t3");
  REQUIRE_FALSE(corrupt);
  CHECK(is(corrupt.error(), Errc::malformed));

  state = ck::recover(w);
  REQUIRE(state);
  const auto& tasks = state->frameworks.at("f1").tasks;
  REQUIRE(tasks.size() == 1);
  CHECK(str(tasks[0].get().getTask().getTaskId()) == "t1");
  // Corrupt records are errors (the agent refuses to start on them unless
  // told --no-strict), not mere warnings.
  CHECK(state->warnings.empty());
  CHECK(state->errors.size() == 2);
  CHECK(mentions(state->errors, t2.string()));
  CHECK(mentions(state->errors, t3.string()));

  // Garbage where the agent record belongs, and a file nobody wrote.
  write_bytes(ck::agent_path(w), "not a record at all, but long enough");
  write_bytes(ck::meta_dir(w) / "stray", "x");
  state = ck::recover(w);
  REQUIRE(state);
  CHECK_FALSE(state->agent);
  CHECK(mentions(state->errors, "not a checkpoint record"));
  CHECK(mentions(state->warnings, "stray"));
}

TEST_CASE("a record under another record's path is refused", "[checkpoint]") {
  testing::TempDir dir;
  const auto& w = dir.path();
  REQUIRE(ck::write_task(w, task_record("f1", "t1").get()));
  fs::create_directories(ck::task_path(w, "f1", "t9").parent_path());
  fs::copy_file(ck::task_path(w, "f1", "t1"), ck::task_path(w, "f1", "t9"));
  auto moved = ck::read_task(w, "f1", "t9");
  REQUIRE_FALSE(moved);
  CHECK(is(moved.error(), Errc::malformed));
  auto state = ck::recover(w);
  REQUIRE(state);
  CHECK(state->frameworks.at("f1").tasks.size() == 1);
  CHECK(mentions(state->warnings, "framework.info: missing"));
  CHECK(mentions(state->errors, "ids differ from its path"));
}

TEST_CASE("removed records are not recovered", "[checkpoint]") {
  testing::TempDir dir;
  const auto& w = dir.path();
  REQUIRE(ck::write_agent(w, agent_record("a1").get()));
  for (const char* f : {"f1", "f2"}) {
    REQUIRE(ck::write_framework(w, framework_info(f).get()));
    REQUIRE(ck::write_executor_run(w, run_record(f, "e1", "r1").get()));
    REQUIRE(ck::write_executor_run(w, run_record(f, "e1", "r2").get()));
    REQUIRE(ck::write_task(w, task_record(f, "t1").get()));
    REQUIRE(ck::write_task(w, task_record(f, "t2").get()));
  }

  REQUIRE(ck::remove_task(w, "f1", "t1"));
  REQUIRE(ck::remove_task(w, "f1", "t1"));  // again: nothing to do
  REQUIRE(ck::remove_executor_run(w, "f1", "e1", "r1"));
  REQUIRE(ck::remove_framework(w, "f2"));
  CHECK_FALSE(fs::exists(ck::task_path(w, "f1", "t1").parent_path()));
  CHECK_FALSE(fs::exists(ck::framework_path(w, "f2").parent_path()));

  auto state = ck::recover(w);
  REQUIRE(state);
  CHECK(state->warnings.empty());
  CHECK(state->frameworks.size() == 1);
  const auto& f1 = state->frameworks.at("f1");
  REQUIRE(f1.tasks.size() == 1);
  CHECK(str(f1.tasks[0].get().getTask().getTaskId()) == "t2");
  REQUIRE(f1.runs.size() == 1);
  CHECK(str(f1.runs[0].get().getRunId()) == "r2");

  // The executor's folder goes with its last run.
  REQUIRE(ck::remove_executor_run(w, "f1", "e1", "r2"));
  CHECK_FALSE(fs::exists(ck::framework_path(w, "f1").parent_path() / "executors" / "e1"));

  REQUIRE(ck::remove_all(w));
  state = ck::recover(w);
  REQUIRE(state);
  CHECK_FALSE(state->agent);
  CHECK(state->frameworks.empty());
  CHECK(state->warnings.empty());
}
