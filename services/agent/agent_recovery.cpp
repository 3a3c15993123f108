// Checkpoints and recovery (Mesos's slave recovery): what the agent writes to
// <work_dir>/meta as it goes, and how a restarted agent takes its executors,
// tasks and unacknowledged updates back from there.
//
//  - Written: the agent's id once registered, each framework it runs tasks
//    for, each executor run (container, sandbox, tasks) *before* its process
//    starts (pid 0: launch_run() waits for the writer to say it is durable),
//    again with the pid and its start time once started and once
//    subscribed, and each task with its status update stream whenever the
//    stream changes. Task writes within one handler are coalesced into one
//    write at its end (flush_checkpoints); an executor's update is
//    acknowledged to it only once its task's record is on disk.
//  - A failed write is never ignored: it is logged, counted, and the agent
//    takes no new task (each is dropped, saying why) and writes every
//    record again each checkpoint_retry_ms until a write succeeds. The
//    updates of the failed records are acknowledged once written. Mesos
//    stops the agent instead; this one keeps its running tasks served.
//  - Recovered on start: a process executor whose pid still runs and is
//    still that executor (the same start time, and its environment names
//    it) is adopted and has executor_reregistration_timeout_ms to
//    resubscribe; a run recorded before its process started is looked for
//    by its run id. The executor resends the updates it holds, and the
//    agent resends the ones it holds. Tasks of a recovered run that no
//    update shows started (queued for an executor that had not subscribed,
//    or whose launch was lost with the agent) end TASK_DROPPED (partition
//    aware) or TASK_LOST once the executor is back or gone. Any other run
//    is over: its container is destroyed and its unfinished tasks fail.
//    Containers in the agent's scope that no run claims are destroyed.
//  - A corrupt record stops the agent as it starts (strict_recovery), and
//    the operator is told which; not strict, it is skipped with a warning.
//  - A master that refuses the recovered id (ShutdownAgent before the agent
//    is registered again) makes the agent start over: every container of the
//    old id is destroyed, meta/ removed, and it registers as a new agent.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/checkpoint.hpp"
#include "services/agent/sandbox.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdlib>

namespace tessera {

namespace {

using State = wire::TaskState;

// How soon task records refused by a full checkpoint queue are tried again.
constexpr auto checkpoint_backpressure_retry_ms = std::chrono::milliseconds(50);

// Whether pid is still the executor the checkpoint says (a pid can be reused).
bool is_executor(int pid, const std::string& framework_id, const std::string& executor_id) {
  std::string env;
  if (auto f = std::fopen(("/proc/" + std::to_string(pid) + "/environ").c_str(), "rb")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && env.size() < (1u << 20))
      env.append(buf, n);
    std::fclose(f);
  }
  auto has = [&](const std::string& entry) {
    return env.find(std::string("\0", 1) + entry + std::string("\0", 1)) != std::string::npos ||
           env.rfind(entry + std::string("\0", 1), 0) == 0;
  };
  return has("TESSERA_FRAMEWORK_ID=" + framework_id) && has("TESSERA_EXECUTOR_ID=" + executor_id);
}

// The executor processes of this machine that name a run (TESSERA_RUN_ID):
// run id -> (pid, start time). For runs recorded before their process
// started; read from /proc once.
std::map<std::string, std::pair<int, uint64_t>> scan_run_processes() {
  std::map<std::string, std::pair<int, uint64_t>> found;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::string env;
    if (auto f = std::fopen((it->path() / "environ").c_str(), "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && env.size() < (1u << 20))
        env.append(buf, n);
      std::fclose(f);
    }
    env.insert(0, 1, '\0');  // every entry, the first too, follows a NUL
    const std::string key = std::string("\0", 1) + "TESSERA_RUN_ID=";
    auto at = env.find(key);
    if (at == std::string::npos)
      continue;
    auto start = at + key.size();
    auto run = env.substr(start, env.find('\0', start) - start);
    int pid = std::atoi(name.c_str());
    if (auto started = process_start_time(pid))
      found.emplace(run, std::pair{pid, *started});
  }
  return found;
}

}  // namespace

// -- writing -------------------------------------------------------------------------

void Agent::checkpoint_failed(const caf::error& err) {
  metrics_.checkpoint_failures.fetch_add(1, std::memory_order_relaxed);
  log().error("{}: checkpoint: {}", me().to_string(), describe(err));
}

// A done callback for the writer that runs then(error) on this actor's
// thread, like a handler.
CheckpointWriter::Done Agent::on_written(std::function<void(const caf::error&)> then) {
  auto error = std::make_shared<caf::error>();
  auto trigger = continuation([then = std::move(then), error] { then(*error); });
  return [trigger, error](const caf::error& err) {
    *error = err;
    trigger();  // a message to the actor: what it reads happens after this write
  };
}

// One continuation waits for the writer's next failure at a time; the
// writer's thread takes it (CheckpointHealth) and calls it.
void Agent::arm_checkpoint_failure_report() {
  if (!writer_)
    return;
  auto trigger = continuation([this] { on_checkpoint_failure(); });
  std::lock_guard<std::mutex> guard(checkpoint_health_->mu);
  checkpoint_health_->report = std::move(trigger);
}

void Agent::on_checkpoint_failure() {
  caf::error err;
  {
    std::lock_guard<std::mutex> guard(checkpoint_health_->mu);
    err = checkpoint_health_->last_error;
  }
  if (!checkpoint_error_)
    log().error(
        "{}: CHECKPOINT WRITES FAIL ({}): a restart could not recover what runs now. The "
        "agent takes no new task and writes its records again every {} ms until one succeeds",
        me().to_string(), describe(err), config_.checkpoint_retry_ms.count());
  checkpoint_error_ = err ? err : make_error(Errc::os_error, "checkpoint write failed");
  arm_checkpoint_failure_report();
  if (checkpoint_retry_timer_ == 0)
    checkpoint_retry_timer_ = after(config_.checkpoint_retry_ms, [this] {
      checkpoint_retry_timer_ = 0;
      retry_checkpoints();
    });
}

// Writes every record again; if none fails, checkpoints work again and the
// agent takes new tasks. (A failure re-arms the retry through
// on_checkpoint_failure.)
void Agent::retry_checkpoints() {
  if (!writer_ || !checkpoint_error_ || shutting_down_)
    return;
  uint64_t failures_before = 0;
  {
    std::lock_guard<std::mutex> guard(checkpoint_health_->mu);
    failures_before = checkpoint_health_->failures;
  }
  if (!agent_id_.empty())
    checkpoint_agent();
  for (const auto& [id, info] : frameworks_)
    checkpoint_framework(id);
  for (const auto& [key, e] : executors_)
    if (!e.starting)
      checkpoint_run(e);
  for (const auto& [key, task] : tasks_)
    dirty_tasks_.insert(key);
  flush_checkpoints();
  bool queued = writer_->run(
      [] { return caf::error{}; }, on_written([this, failures_before](const caf::error&) {
        uint64_t failures = 0;
        {
          std::lock_guard<std::mutex> guard(checkpoint_health_->mu);
          failures = checkpoint_health_->failures;
        }
        if (failures != failures_before || !checkpoint_error_)
          return;
        log().warn("{}: checkpoint writes succeed again; taking new tasks", me().to_string());
        checkpoint_error_ = caf::error{};
      }));
  if (!queued && checkpoint_retry_timer_ == 0)  // the queue is full: try again later
    checkpoint_retry_timer_ = after(config_.checkpoint_retry_ms, [this] {
      checkpoint_retry_timer_ = 0;
      retry_checkpoints();
    });
}

void Agent::checkpoint_agent() {
  if (!writer_)
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::AgentRecord>();
  fill_agent_info(r.initAgentInfo());
  r.setMasterAddress(master_.to_string());
  r.setVersion(version);
  if (!writer_->write(checkpoint::agent_path(config_.work_dir), checkpoint::frame_record(b)))
    checkpoint_failed(writer_->refusal());
}

void Agent::checkpoint_framework(const std::string& framework_id) {
  auto it = frameworks_.find(framework_id);
  if (!writer_ || it == frameworks_.end())
    return;
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::FrameworkRecord>().setInfo(it->second.get());
  if (!writer_->write(checkpoint::framework_path(config_.work_dir, framework_id),
                      checkpoint::frame_record(b)))
    checkpoint_failed(writer_->refusal());
}

void Agent::checkpoint_run(const Executor& e, CheckpointWriter::Done done) {
  if (!writer_)
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ExecutorRunRecord>();
  r.setFrameworkId(e.framework_id);
  r.setExecutorId(e.executor_id);
  r.setRunId(e.run_id);
  r.setPid(e.pid);
  r.setPidStartTime(e.pid == 0 ? 0 : e.pid_start_time);
  r.setContainerId(e.run_id);
  r.setIsolation(isolator_->name());
  auto cgroups = r.initCgroupPaths(static_cast<unsigned>(e.placement.cgroups.size()));
  for (unsigned i = 0; i < e.placement.cgroups.size(); ++i)
    cgroups.set(i, e.placement.cgroups[i]);
  if (!e.address.empty())
    r.setExecutorAddress(e.address.to_string());
  r.setSandbox(e.sandbox.string());
  std::vector<const Task*> given;
  for (const auto& id : e.tasks)
    if (auto t = tasks_.find({e.framework_id, id}); t != tasks_.end())
      given.push_back(&t->second);
  auto tasks = r.initTasks(static_cast<unsigned>(given.size()));
  for (unsigned i = 0; i < given.size(); ++i)
    tasks.setWithCaveats(i, given[i]->info.get());
  if (!writer_->write(
          checkpoint::executor_run_path(config_.work_dir, e.framework_id, e.executor_id, e.run_id),
          checkpoint::frame_record(b), done)) {
    // The writer's queue is full: the record is not written, and a launch
    // waiting for it hears so (the writer never calls a refused done).
    checkpoint_failed(writer_->refusal());
    if (done)
      done(writer_->refusal());
  }
}

void Agent::checkpoint_task_later(const Key& key) {
  if (!writer_)
    return;
  dirty_tasks_.insert(key);
  if (flush_scheduled_)
    return;
  flush_scheduled_ = true;
  defer([this] { flush_checkpoints(); });
}

// Writes the records of the tasks changed in this handler; the executor
// updates they took are acknowledged once their record is on disk.
void Agent::flush_checkpoints() {
  flush_scheduled_ = false;
  auto dirty = std::move(dirty_tasks_);
  dirty_tasks_.clear();
  for (const auto& key : dirty) {
    auto it = tasks_.find(key);
    if (it == tasks_.end())
      continue;  // forgotten meanwhile, record removed with it
    auto& task = it->second;
    auto path = checkpoint::task_path(config_.work_dir, key.first, key.second);
    if (!writer_->accepts(path)) {
      // Backpressure: the writer's queue is full. The record stays dirty and
      // its executor updates unacknowledged (the executor keeps them).
      checkpoint_task_retry(key);
      continue;
    }
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::TaskRecord>();
    r.setFrameworkId(task.framework_id);
    r.setExecutorId(task.executor_id);
    if (auto e = executors_.find({task.framework_id, task.executor_id}); e != executors_.end())
      r.setRunId(e->second.run_id);
    r.setTask(task.info.get());
    task.stream.save(r);
    CheckpointWriter::Done done;
    if (!task.ack_after_write.empty() || !task.record_durable ||
        task.updates_durable < task.updates_added) {
      // Acknowledged only once on disk. A failed write keeps them for the
      // next write of the record (retry_checkpoints): until then the
      // executor holds them, and resends them if the agent restarts.
      // Until its first write succeeds the task may not start
      // (on_run_checkpointed).
      done = on_written([this, key, executor_id = task.executor_id, added = task.updates_added,
                         uuids = std::move(task.ack_after_write)](const caf::error& err) {
        auto t = tasks_.find(key);
        if (err) {
          if (t != tasks_.end())
            t->second.ack_after_write.insert(t->second.ack_after_write.end(), uuids.begin(),
                                             uuids.end());
          return;
        }
        if (t != tasks_.end()) {
          auto& durable = t->second;
          bool waiting = durable.record_durable && !durable.front_durable();
          durable.record_durable = true;
          durable.updates_durable = std::max(durable.updates_durable, added);
          if (waiting && durable.front_durable())
            forward(durable);  // its front update was held until now
        }
        if (auto e = executors_.find({key.first, executor_id}); e != executors_.end())
          acknowledge_executor(e->second, key.second, uuids);
      });
      task.ack_after_write.clear();
    }
    writer_->write(path, checkpoint::frame_record(b), std::move(done));
  }
}

namespace {

caf::error as_error(const expected<void>& r) {
  return r ? caf::error{} : r.error();
}

}  // namespace

void Agent::checkpoint_task_retry(const Key& key) {
  dirty_tasks_.insert(key);
  metrics_.checkpoint_refusals.fetch_add(1, std::memory_order_relaxed);
  if (checkpoint_backpressure_timer_ != 0)
    return;
  log().warn("{}: checkpoint: {}; retrying", me().to_string(), describe(writer_->refusal()));
  checkpoint_backpressure_timer_ = after(checkpoint_backpressure_retry_ms, [this] {
    checkpoint_backpressure_timer_ = 0;
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      flush_checkpoints();
    }
  });
}

void Agent::run_checkpoint_op(std::function<caf::error()> op) {
  if (!writer_->run(std::move(op)))
    checkpoint_failed(writer_->refusal());
}

void Agent::forget_checkpointed_task(const Key& key) {
  if (!writer_)
    return;
  dirty_tasks_.erase(key);
  run_checkpoint_op([dir = config_.work_dir, key, disk = disk_] {
    return as_error(checkpoint::remove_task(dir, key.first, key.second, *disk));
  });
}

void Agent::forget_checkpointed_run(const Executor& e) {
  if (!writer_)
    return;
  run_checkpoint_op(
      [dir = config_.work_dir, f = e.framework_id, x = e.executor_id, r = e.run_id, disk = disk_] {
        return as_error(checkpoint::remove_executor_run(dir, f, x, r, *disk));
      });
}

void Agent::forget_checkpointed_framework(const std::string& framework_id) {
  if (!writer_)
    return;
  run_checkpoint_op([dir = config_.work_dir, framework_id, disk = disk_] {
    return as_error(checkpoint::remove_framework(dir, framework_id, *disk));
  });
}

void Agent::forget_all_checkpoints() {
  if (!writer_)
    return;
  dirty_tasks_.clear();
  run_checkpoint_op([dir = config_.work_dir, disk = disk_] {
    return as_error(checkpoint::remove_all(dir, *disk));
  });
}

// -- recovering ------------------------------------------------------------------------

bool Agent::recover() {
  if (!writer_)
    return true;
  auto state = checkpoint::recover(config_.work_dir, *disk_);
  if (!state) {
    if (config_.strict_recovery) {
      fail_to_start("cannot read the checkpoints in " +
                    checkpoint::meta_dir(config_.work_dir).string() + ": " +
                    describe(state.error()));
      return false;
    }
    checkpoint_failed(state.error());
    return true;
  }
  for (const auto& w : state->warnings)
    log().warn("{}: recovery: {}", me().to_string(), w);
  if (!state->errors.empty()) {
    if (config_.strict_recovery) {
      std::string more = state->errors.size() > 1
                             ? " (and " + std::to_string(state->errors.size() - 1) + " more)"
                             : std::string();
      fail_to_start("corrupt checkpoint record: " + state->errors.front() + more +
                    ". Refusing to start: fix or remove it, or start with --no-strict to skip "
                    "corrupt records (what they held is lost)");
      return false;
    }
    for (const auto& e : state->errors)
      log().warn("{}: recovery: skipping corrupt record: {}", me().to_string(), e);
  }
  std::set<std::string> claimed;  // container ids of recovered runs
  if (state->agent) {
    agent_id_ = str(state->agent.get().getAgentInfo().getAgentId());
    recovered_ = !agent_id_.empty();
  }
  if (recovered_) {
    for (auto& [fid, fw] : state->frameworks)
      recover_framework(fid, fw, claimed);
    log().info("{}: recovered agent {}: {} task(s), {} executor(s) still running", me().to_string(),
               agent_id_, tasks_.size(), executors_.size());
  }
  run_processes_.reset();
  // Containers nobody claims are left from runs that ended with the agent.
  for (const auto& id : isolator_->containers())
    if (!claimed.count(id)) {
      log().info("{}: recovery: destroying orphan container {}", me().to_string(), id);
      destroy_container_id(id);
    }
  if (!recovered_ && state->records() > 0)
    forget_all_checkpoints();
  return true;
}

// The process a run record names, if it still runs and is still that
// executor: (pid, start time), or (0, 0).
std::pair<int, uint64_t> Agent::running_process(wire::ExecutorRunRecord::Reader r,
                                                const std::string& fid) {
  if (config_.executor_mode != ExecutorMode::process)
    return {0, 0};
  auto executor_id = str(r.getExecutorId());
  int pid = r.getPid();
  if (pid > 0) {
    if (!is_executor(pid, fid, executor_id))
      return {0, 0};
    uint64_t recorded = r.getPidStartTime();
    if (recorded == 0)
      return {pid, 0};  // an older record: the environment check alone
    auto started = process_start_time(pid);
    if (!started || *started != recorded) {
      log().info("{}: recovery: pid {} of executor {} was reused (started at {}, not {})",
                 me().to_string(), pid, executor_id, started ? *started : 0, recorded);
      return {0, 0};
    }
    return {pid, recorded};
  }
  // Recorded before its process started; the agent may have died after the
  // start and before the pid was written.
  if (!run_processes_)
    run_processes_ = scan_run_processes();
  auto it = run_processes_->find(str(r.getRunId()));
  if (it == run_processes_->end() || !is_executor(it->second.first, fid, executor_id))
    return {0, 0};
  return it->second;
}

void Agent::recover_framework(const std::string& fid, checkpoint::RecoveredFramework& fw,
                              std::set<std::string>& claimed) {
  if (fw.record)
    frameworks_.insert_or_assign(fid, Owned<wire::FrameworkInfo>(fw.record.get().getInfo()));
  for (auto& rec : fw.tasks) {
    auto r = rec.get();
    Key key{fid, str(r.getTask().getTaskId())};
    auto& task = tasks_[key];
    task.record_durable = true;  // read back from its record
    task.framework_id = fid;
    task.task_id = key.second;
    task.executor_id = str(r.getExecutorId());
    task.info = Owned<wire::TaskInfo>(r.getTask());
    task.stream = StatusUpdateStream::restore(r);
    task.updates_added = task.updates_durable = task.stream.pending();
    task.retry_backoff = status_update_backoff();
  }
  std::vector<Key> ended;
  // A live run first: of two runs of one executor (an old one whose record
  // outlived it), the one still running is the one to keep.
  std::vector<std::pair<int, uint64_t>> processes;
  for (auto& rec : fw.runs)
    processes.push_back(running_process(rec.get(), fid));
  std::vector<size_t> order(fw.runs.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_partition(order.begin(), order.end(),
                        [&](size_t i) { return processes[i].first > 0; });
  for (size_t i : order) {
    auto& rec = fw.runs[i];
    auto r = rec.get();
    Key key{fid, str(r.getExecutorId())};
    Executor e;
    e.framework_id = fid;
    e.executor_id = key.second;
    e.run_id = str(r.getRunId());
    e.sandbox = str(r.getSandbox());
    e.group = r.getTasks().size() > 1;
    e.recovered = true;
    Resources resources;
    for (auto t : r.getTasks()) {
      auto id = str(t.getTaskId());
      e.tasks.push_back(id);
      if (auto task = tasks_.find({fid, id}); task != tasks_.end())
        task->second.sandbox = e.sandbox;
      if (auto res = from_wire(t.getResources()))
        resources += *res;
    }
    for (auto c : r.getCgroupPaths())
      e.placement.cgroups.push_back(str(c));
    e.container.active = true;
    e.container.limits.cpus_milli = static_cast<uint64_t>(resources.total("cpus") * 1000.0 + 0.5);
    e.container.limits.pids_max = config_.container_pids_max;
    {
      std::lock_guard<std::mutex> guard(containers_->mu);
      containers_->ids.insert(e.run_id);
    }
    claimed.insert(e.run_id);
    auto [pid, start_time] = processes[i];
    bool live = pid > 0 && !executors_.count(key);
    if (executors_.count(key)) {
      // An older run of the same executor: over.
      destroy_container(e);
      forget_checkpointed_run(e);
      continue;
    }
    auto& executor = executors_.emplace(key, std::move(e)).first->second;
    if (!live) {
      ended.push_back(key);
      continue;
    }
    // Adopted only while pid is still the process that started then
    // (checked through its pidfd: no reuse slips in between).
    auto adopted = adopt_process(pid, executor_exit_hook(key, executor.run_id), start_time);
    if (!adopted) {
      log().info("{}: recovery: executor {} (pid {}): {}", me().to_string(), key.second, pid,
                 describe(adopted.error()));
      ended.push_back(key);
      continue;
    }
    executor.pid = pid;
    executor.pid_start_time = start_time;
    if (r.getPid() == 0 || (start_time != 0 && r.getPidStartTime() == 0))
      checkpoint_run(executor);  // its pid (and start time) known now
    log().info("{}: recovery: executor {} of framework {} (pid {}) still runs; waiting for it",
               me().to_string(), key.second, fid, pid);
    executor.registration_timer = after(config_.executor_reregistration_timeout_ms, [this, key] {
      auto it = executors_.find(key);
      if (it == executors_.end() || it->second.subscribed)
        return;
      it->second.registration_timer = 0;
      log().info("{}: recovered executor {} did not resubscribe; killing it", me().to_string(),
                 key.second);
      destroy_executor(key);
    });
  }
  for (const auto& key : ended) {
    log().info("{}: recovery: executor {} of framework {} is gone", me().to_string(), key.second,
               fid);
    executor_terminated(key, 0);
  }
  // Tasks without a run to go with (lost between their launch and their
  // run's record) never started, and cannot now.
  for (auto& [key, task] : tasks_)
    if (key.first == fid && !task.stream.terminated() && !executors_.count({fid, task.executor_id}))
      drop_unlaunched(task, Reason::AGENT_RESTARTED,
                      "the agent restarted before the task's executor started");
  for (auto it = tasks_.lower_bound({fid, ""}); it != tasks_.end() && it->first.first == fid;) {
    auto key = (it++)->first;
    maybe_forget(key);
  }
}

// A recovered executor is back. Its tasks that neither the agent's records
// nor the updates it resent show started never reached it (queued while it
// had not subscribed, or the launch was lost with the agent): they end now,
// not never. An executor left with nothing to run is shut down.
void Agent::on_recovered_subscribe(const Key& key) {
  auto it = executors_.find(key);
  if (it == executors_.end())
    return;
  auto& e = it->second;
  for (const auto& id : e.tasks)
    if (auto t = tasks_.find({key.first, id}); t != tasks_.end() &&
                                               !t->second.stream.terminated() &&
                                               t->second.stream.latest_state() == State::STAGING)
      drop_unlaunched(t->second, Reason::AGENT_RESTARTED,
                      "the agent restarted before the task reached its executor");
  e.recovered = false;
  bool all_ended = std::all_of(e.tasks.begin(), e.tasks.end(), [&](const std::string& id) {
    auto t = tasks_.find({key.first, id});
    return t == tasks_.end() || t->second.stream.terminated();
  });
  if (all_ended)
    shutdown_executor(key);
}

// The master does not know the recovered id any more: everything that ran
// under it is over, and the agent begins again as a new one.
void Agent::start_over(const std::string& reason) {
  log().warn(
      "{}: the master refused agent id {} ({}); killing its executors and registering "
      "as a new agent",
      me().to_string(), agent_id_, reason);
  for (auto& [key, e] : executors_) {
    cancel(e.registration_timer);
    cancel(e.kill_timer);
    if (e.pid != 0)
      kill_process(e.pid, SIGKILL, true);
    destroy_container(e);
  }
  executors_.clear();
  executor_by_address_.clear();
  for (auto& [key, t] : tasks_)
    cancel(t.retry_timer);
  tasks_.clear();
  frameworks_.clear();
  completed_.clear();
  forget_all_checkpoints();
  agent_id_.clear();
  recovered_ = false;
  ++registration_seq_;  // launches meant for the old id are refused
  try_register();
}

}  // namespace tessera
