// The agent's durability against a fake master: a run's record is on disk
// before its executor starts, a full disk stops launches and says so, a
// reused pid is not adopted, and tasks queued for an executor that had not
// subscribed when its agent stopped end instead of waiting for ever.

#include "agent/fake_master.hpp"
#include "runtime/process_launcher.hpp"
#include "services/agent/checkpoint.hpp"

#include <signal.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

using namespace tessera;
using namespace tessera::agent_test;

namespace {

// An executor binary for process mode: a shell script that runs pre, then
// execs the real `tessera executor`.
std::string executor_script(const std::filesystem::path& dir, const std::string& pre) {
  auto path = dir / "executor.sh";
  std::ofstream(path) << "#!/bin/sh\n" << pre << "\nexec " << TESSERA_BIN << " executor\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path.string();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A tmpfs of size_kib mounted on dir for the test's lifetime.
class TmpfsMount {
 public:
  TmpfsMount(const std::filesystem::path& dir, int size_kib) : dir_(dir) {
    std::filesystem::create_directories(dir);
    auto options = "size=" + std::to_string(size_kib) + "k";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0)
      mounted_ = true;
    else
      why_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0)
      std::fprintf(stderr, "umount %s: %s\n", dir_.c_str(), std::strerror(errno));
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string why_;
};

// A 512 KiB tmpfs at dir/disk to fill up; false (the skip printed) when
// this machine cannot mount one.
bool small_disk_or_skip(const TmpfsMount& mount) {
  if (mount.mounted())
    return true;
  std::printf("SKIPPED: cannot mount a 512 KiB tmpfs (%s); needs root\n", mount.why().c_str());
  WARN("skipped: cannot mount a tmpfs: " << mount.why());
  return false;
}

// An agent on that disk that retries failed checkpoint writes every 100 ms.
void on_small_disk(AgentConfig& a, const std::filesystem::path& work) {
  a.work_dir = work;
  a.checkpoint_retry_ms = std::chrono::milliseconds(100);
}

// Writes into dir until the file system is full.
void fill(const std::filesystem::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  REQUIRE(f);
  std::string block(4096, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
}

// The records of agent-1 running task t1 of fw-1 under executor t1, run r1,
// whose process is pid (started at start_time; pid 0: not started yet).
void write_run_records(const std::filesystem::path& work, int pid, uint64_t start_time) {
  namespace ck = checkpoint;
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::AgentRecord>();
    r.initAgentInfo().setAgentId("agent-1");
    REQUIRE(ck::write_agent(work, r.asReader()));
  }
  {
    capnp::MallocMessageBuilder b;
    auto info = b.initRoot<wire::FrameworkInfo>();
    info.setFrameworkId("fw-1");
    REQUIRE(ck::write_framework(work, info.asReader()));
  }
  capnp::MallocMessageBuilder task_message;
  auto task = task_message.initRoot<wire::TaskInfo>();
  task.setTaskId("t1");
  task.initCommand().setShell("sleep 60");
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::ExecutorRunRecord>();
    r.setFrameworkId("fw-1");
    r.setExecutorId("t1");
    r.setRunId("r1");
    r.setPid(pid);
    r.setPidStartTime(start_time);
    r.setSandbox((work / "sandbox").string());
    r.initTasks(1).setWithCaveats(0, task.asReader());
    REQUIRE(ck::write_executor_run(work, r.asReader()));
  }
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::TaskRecord>();
    r.setFrameworkId("fw-1");
    r.setExecutorId("t1");
    r.setRunId("r1");
    r.setTask(task.asReader());
    r.setLatestState(State::RUNNING);
    REQUIRE(ck::write_task(work, r.asReader()));
  }
}

}  // namespace

TEST_CASE("an executor run is on disk before its executor starts", "[agent][checkpoint][process]") {
  testing::TempDir bin;
  // The executor looks for its own run's record as it starts.
  auto script = executor_script(
      bin.path(),
      "run=$(basename \"$TESSERA_SANDBOX\"); work=${TESSERA_SANDBOX%/frameworks/*}\n"
      "if [ -f \"$work/meta/frameworks/$TESSERA_FRAMEWORK_ID/executors/$TESSERA_EXECUTOR_ID/"
      "runs/$run/run.info\" ]; then echo yes > \"$TESSERA_SANDBOX/seen\"; else echo no > "
      "\"$TESSERA_SANDBOX/seen\"; fi");
  Cluster c([&](AgentConfig& a) {
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = script;
  });
  constexpr int tasks = 10;
  for (int i = 0; i < tasks; ++i)
    c.master.send_to_agent(run_task("t" + std::to_string(i), "true"));
  for (int i = 0; i < tasks; ++i) {
    auto id = "t" + std::to_string(i);
    c.master.wait_state(id, State::FINISHED);
    INFO("task " << id);
    CHECK(testing::read_file(c.sandbox(id) / "seen") == "yes\n");
  }
}

TEST_CASE("a full disk fails the launch saying so, and stops launches until it has room",
          "[agent][checkpoint][disk]") {
  testing::TempDir dir;
  TmpfsMount mount(dir.path() / "disk", 512);
  if (!small_disk_or_skip(mount))
    return;
  auto work = dir.path() / "disk" / "work";
  {
    Cluster c([&](AgentConfig& a) { on_small_disk(a, work); });
    c.master.send_to_agent(run_task("before", "true"));
    c.master.wait_state("before", State::FINISHED);
    // Its records written and removed: no write is under way as the disk fills.
    REQUIRE(wait_until([&] {
      return !std::filesystem::exists(checkpoint::meta_dir(work) / "frameworks" / "fw-1");
    }));

    fill(dir.path() / "disk" / "filler");
    c.master.send_to_agent(run_task("full", "true"));
    auto failed = c.master.wait_state("full", State::FAILED);
    INFO(failed.message);
    CHECK(contains(failed.message, "No space left on device"));
    CHECK(c.metrics->checkpoint_failures.load() > 0);

    // Nothing more is launched while records cannot be written; the
    // framework hears why (LOST: it is not partition-aware).
    c.master.send_to_agent(run_task("refused", "true"));
    auto refused = c.master.wait_state("refused", State::LOST);
    INFO(refused.message);
    CHECK(contains(refused.message, "cannot write its checkpoints"));
    CHECK(c.master.states_of("refused") == std::vector<State>{State::LOST});

    // Room again: the agent writes its records and launches again.
    std::filesystem::remove(dir.path() / "disk" / "filler");
    bool finished = false;
    for (int i = 0; i < 100 && !finished; ++i) {
      if (i > 0)
        std::this_thread::sleep_for(50ms);  // a poll: the agent retries every 100 ms
      auto id = "after-" + std::to_string(i);
      c.master.send_to_agent(run_task(id, "true"));
      REQUIRE(wait_until([&] {
        auto states = c.master.states_of(id);
        return !states.empty() && is_terminal(states.back());
      }));
      finished = c.master.states_of(id).back() == State::FINISHED;
    }
    CHECK(finished);
  }
}

TEST_CASE("a status update reaches the master only once its checkpoint is written",
          "[agent][checkpoint][disk]") {
  // Forwarded before it is durable, an update could be contradicted by the
  // agent itself: a crash loses it, and recovery reports the task anew
  // (TASK_FINISHED heard, then TASK_FAILED). As Mesos's status update
  // manager: written, then forwarded.
  testing::TempDir dir;
  TmpfsMount mount(dir.path() / "disk", 512);
  if (!small_disk_or_skip(mount))
    return;
  auto work = dir.path() / "disk" / "work";
  Cluster c([&](AgentConfig& a) { on_small_disk(a, work); });
  c.master.send_to_agent(run_task("short", "sleep 1"));
  c.master.wait_state("short", State::RUNNING);
  fill(dir.path() / "disk" / "filler");
  // The task ends while its record cannot be written: its end waits.
  REQUIRE(wait_until([&] { return c.metrics->checkpoint_failures.load() > 0; }));
  std::this_thread::sleep_for(1500ms);
  CHECK(c.master.states_of("short").back() == State::RUNNING);
  // Room again: written, then forwarded.
  std::filesystem::remove(dir.path() / "disk" / "filler");
  c.master.wait_state("short", State::FINISHED);
  CHECK(c.master.states_of("short").back() == State::FINISHED);
}

TEST_CASE("recovery does not adopt a pid that another process reuses", "[agent][recovery]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  // A process that looks like the executor (its environment names it) but
  // started after the checkpointed one: the pid was reused.
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"sleep", "60"};
  spec.env = {"TESSERA_FRAMEWORK_ID=fw-1", "TESSERA_EXECUTOR_ID=t1"};
  auto exited = std::make_shared<std::atomic<bool>>(false);
  auto impostor = launcher.spawn(spec, [exited](const ProcessExit&) { exited->store(true); });
  REQUIRE(impostor);
  auto started = process_start_time(*impostor);
  REQUIRE(started);

  write_run_records(work, *impostor, *started - 1);  // it had this pid, started earlier

  {
    Cluster c([&](AgentConfig& a) {
      a.work_dir = work;
      a.executor_mode = ExecutorMode::process;
      a.executor_binary = TESSERA_BIN;
      a.executor_reregistration_timeout_ms = 300ms;
    });
    // The run is over (its executor is gone): its task fails at once.
    auto failed = c.master.wait_state("t1", State::FAILED);
    CHECK(failed.reason == Reason::EXECUTOR_TERMINATED);
    // And the process that reuses the pid is left alone.
    CHECK_FALSE(exited->load());
  }
  CHECK_FALSE(exited->load());
  REQUIRE_FALSE(launcher.kill(*impostor, SIGKILL));
}

TEST_CASE("a task queued for an executor that had not subscribed ends after a restart",
          "[agent][recovery][process]") {
  testing::TempDir bin;
  auto flag = bin.path() / "subscribe";
  // The executor subscribes only once flag exists: not before the agent stops.
  auto script =
      executor_script(bin.path(), "while [ ! -e " + flag.string() + " ]; do sleep 0.02; done");
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto config = [&](AgentConfig& a) {
    a.work_dir = work;
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = script;
  };
  MasterNode master;
  master.start();
  auto node = testing::start_node();
  auto port = node->port();
  auto a1 = test_agent_config(master.address(), work);
  config(a1);
  a1.stopper = std::make_shared<AgentStopper>();
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  a1.on_stopped = [stopped] { stopped->store(true); };
  REQUIRE(node->spawn<Agent>("agent", a1));
  REQUIRE(wait_until([&] { return master.with([](MasterState& s) { return s.registers; }) == 1; }));
  master.send_to_agent(run_task("queued", "echo ran > ran"));
  // Its executor runs (the script waits), not subscribed.
  REQUIRE(wait_until([&] {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(work / "meta", ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->path().filename() == "run.info") {
        auto run = checkpoint::read_record<wire::ExecutorRunRecord>(it->path());
        if (run && run->get().getPid() > 0)
          return true;
      }
    return false;
  }));

  // The agent stops keeping its work, and a new one starts on the same dir
  // and address.
  REQUIRE(wait_until([&] { return a1.stopper->stop(false); }));
  REQUIRE(wait_until([&] { return stopped->load(); }));
  node->stop();
  NodeConfig same;
  same.port = port;
  node = testing::start_node(same);
  auto a2 = test_agent_config(master.address(), work);
  config(a2);
  REQUIRE(node->spawn<Agent>("agent", a2));
  REQUIRE(
      wait_until([&] { return master.with([](MasterState& s) { return s.reregisters; }) == 1; }));
  { std::ofstream(flag.string()) << "go"; }

  // The executor subscribes to the new agent; the task it never received
  // ends LOST (the framework is not partition-aware), never silence.
  auto lost = master.wait_state("queued", State::LOST);
  CHECK(lost.reason == Reason::AGENT_RESTARTED);
  CHECK(master.states_of("queued") == std::vector<State>{State::LOST});
  // The executor, left with nothing to run, is shut down.
  REQUIRE(wait_until([&] { return master.with([](MasterState& s) { return s.exited.size(); }); }));
  node->stop();
  testing::kill_processes_under(work);
}

TEST_CASE("recovery finds the executor of a run recorded before its process started",
          "[agent][recovery]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  // The agent died after starting the executor and before writing its pid:
  // the record says pid 0, the process names its run in its environment.
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv = {"sleep", "60"};
  spec.env = {"TESSERA_FRAMEWORK_ID=fw-1", "TESSERA_EXECUTOR_ID=t1", "TESSERA_RUN_ID=r1"};
  auto exited = std::make_shared<std::atomic<bool>>(false);
  auto executor = launcher.spawn(spec, [exited](const ProcessExit&) { exited->store(true); });
  REQUIRE(executor);
  write_run_records(work, 0, 0);

  Cluster c([&](AgentConfig& a) {
    a.work_dir = work;
    a.executor_mode = ExecutorMode::process;
    a.executor_binary = TESSERA_BIN;
    a.executor_reregistration_timeout_ms = 300ms;
  });
  // Adopted: known, so it is waited for, and (as it never resubscribes)
  // killed when its time is up; only then does its task end.
  c.master.wait_state("t1", State::FAILED);
  CHECK(wait_until([&] { return exited->load(); }));
}
