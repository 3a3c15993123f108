// Checkpoints and recovery (Mesos's slave recovery): what the agent writes to
// <work_dir>/meta as it goes, and how a restarted agent takes its executors,
// tasks and unacknowledged updates back from there.
//
//  - Written: the agent's id once registered, each framework it runs tasks
//    for, each executor run (pid, container, sandbox, tasks) once started and
//    again once subscribed, and each task with its status update stream
//    whenever the stream changes. Task writes within one handler are
//    coalesced into one write at its end (flush_checkpoints).
//  - Recovered on start: a process executor whose pid still runs (and is
//    still that executor: its environment names it) is adopted and has
//    executor_reregistration_timeout_ms to resubscribe; it then resends the
//    updates it holds, and the agent resends the ones it holds. Any other run
//    is over: its container is destroyed and its unfinished tasks fail.
//    Containers in the agent's scope that no run claims are destroyed.
//  - A master that refuses the recovered id (ShutdownAgent before the agent
//    is registered again) makes the agent start over: every container of the
//    old id is destroyed, meta/ removed, and it registers as a new agent.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/checkpoint.hpp"
#include "services/agent/sandbox.hpp"

#include <signal.h>

#include <algorithm>

namespace tessera {

namespace {

using State = wire::TaskState;

// How soon task records refused by a full checkpoint queue are tried again.
constexpr auto checkpoint_retry_ms = std::chrono::milliseconds(50);

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

}  // namespace

// -- writing -------------------------------------------------------------------------

void Agent::checkpoint_failed(const caf::error& err) {
  metrics_.checkpoint_failures.fetch_add(1, std::memory_order_relaxed);
  log().error("{}: checkpoint: {}", me().to_string(), describe(err));
}

void Agent::checkpoint_agent() {
  if (!writer_)
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::AgentRecord>();
  fill_agent_info(r.initAgentInfo());
  r.setMasterAddress(config_.master.to_string());
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

void Agent::checkpoint_run(const Executor& e) {
  if (!writer_)
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ExecutorRunRecord>();
  r.setFrameworkId(e.framework_id);
  r.setExecutorId(e.executor_id);
  r.setRunId(e.run_id);
  r.setPid(e.pid);
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
          checkpoint::frame_record(b)))
    checkpoint_failed(writer_->refusal());
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
    if (!task.ack_after_write.empty()) {
      auto trigger = continuation(
          [this, key, executor_id = task.executor_id, uuids = std::move(task.ack_after_write)] {
            if (auto e = executors_.find({key.first, executor_id}); e != executors_.end())
              acknowledge_executor(e->second, key.second, uuids);
          });
      task.ack_after_write.clear();
      // Acknowledged even when the write failed (logged, counted): holding
      // the executor's updates for ever would stall it instead.
      done = [trigger](const caf::error&) { trigger(); };
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
  if (checkpoint_retry_timer_ != 0)
    return;
  log().warn("{}: checkpoint: {}; retrying", me().to_string(), describe(writer_->refusal()));
  checkpoint_retry_timer_ = after(checkpoint_retry_ms, [this] {
    checkpoint_retry_timer_ = 0;
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
  run_checkpoint_op([dir = config_.work_dir, key] {
    return as_error(checkpoint::remove_task(dir, key.first, key.second));
  });
}

void Agent::forget_checkpointed_run(const Executor& e) {
  if (!writer_)
    return;
  run_checkpoint_op([dir = config_.work_dir, f = e.framework_id, x = e.executor_id, r = e.run_id] {
    return as_error(checkpoint::remove_executor_run(dir, f, x, r));
  });
}

void Agent::forget_checkpointed_framework(const std::string& framework_id) {
  if (!writer_)
    return;
  run_checkpoint_op([dir = config_.work_dir, framework_id] {
    return as_error(checkpoint::remove_framework(dir, framework_id));
  });
}

void Agent::forget_all_checkpoints() {
  if (!writer_)
    return;
  dirty_tasks_.clear();
  run_checkpoint_op([dir = config_.work_dir] { return as_error(checkpoint::remove_all(dir)); });
}

// -- recovering ------------------------------------------------------------------------

void Agent::recover() {
  if (!writer_)
    return;
  auto state = checkpoint::recover(config_.work_dir);
  if (!state) {
    checkpoint_failed(state.error());
    return;
  }
  for (const auto& w : state->warnings)
    log().warn("{}: recovery: {}", me().to_string(), w);
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
  // Containers nobody claims are left from runs that ended with the agent.
  for (const auto& id : isolator_->containers())
    if (!claimed.count(id)) {
      log().info("{}: recovery: destroying orphan container {}", me().to_string(), id);
      destroy_container_id(id);
    }
  if (!recovered_ && state->records() > 0)
    forget_all_checkpoints();
}

void Agent::recover_framework(const std::string& fid, checkpoint::RecoveredFramework& fw,
                              std::set<std::string>& claimed) {
  if (fw.record)
    frameworks_.insert_or_assign(fid, Owned<wire::FrameworkInfo>(fw.record.get().getInfo()));
  for (auto& rec : fw.tasks) {
    auto r = rec.get();
    Key key{fid, str(r.getTask().getTaskId())};
    auto& task = tasks_[key];
    task.framework_id = fid;
    task.task_id = key.second;
    task.executor_id = str(r.getExecutorId());
    task.info = Owned<wire::TaskInfo>(r.getTask());
    task.stream = StatusUpdateStream::restore(r);
    task.retry_backoff = status_update_backoff();
  }
  std::vector<Key> ended;
  // A live run first: of two runs of one executor (an old one whose record
  // outlived it), the one still running is the one to keep.
  std::stable_partition(
      fw.runs.begin(), fw.runs.end(), [&](const Owned<wire::ExecutorRunRecord>& x) {
        auto r = x.get();
        return r.getPid() > 0 && is_executor(r.getPid(), fid, str(r.getExecutorId()));
      });
  for (auto& rec : fw.runs) {
    auto r = rec.get();
    Key key{fid, str(r.getExecutorId())};
    Executor e;
    e.framework_id = fid;
    e.executor_id = key.second;
    e.run_id = str(r.getRunId());
    e.sandbox = str(r.getSandbox());
    e.group = r.getTasks().size() > 1;
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
    int pid = r.getPid();
    bool live = config_.executor_mode == ExecutorMode::process && pid > 0 &&
                is_executor(pid, fid, e.executor_id) && !executors_.count(key);
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
    auto adopted = adopt_process(pid, executor_exit_hook(key, executor.run_id));
    if (!adopted) {
      ended.push_back(key);
      continue;
    }
    executor.pid = pid;
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
  // Tasks without a run to go with (lost between their launch and the
  // executor's start) cannot go on.
  for (auto& [key, task] : tasks_)
    if (key.first == fid && !task.stream.terminated() && !executors_.count({fid, task.executor_id}))
      agent_update(task, State::FAILED, Reason::AGENT_RESTARTED,
                   "the agent restarted before the task's executor started");
  for (auto it = tasks_.lower_bound({fid, ""}); it != tasks_.end() && it->first.first == fid;) {
    auto key = (it++)->first;
    maybe_forget(key);
  }
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
  try_register();
}

}  // namespace tessera
