// Status updates (the agent's side of Mesos's status update manager) and
// sandbox reads.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/sandbox.hpp"

namespace tessera {

namespace {

using Added = StatusUpdateStream::Added;

}  // namespace

StatusUpdateStream::Added Agent::ingest(Task& task, wire::TaskStatus::Reader status) {
  auto added = task.stream.add(status);
  switch (added) {
    case Added::fresh:
      metrics_.updates_received.fetch_add(1, std::memory_order_relaxed);
      if (is_terminal(status.getState()))
        ++terminal_counts_[status.getState()];
      ++task.updates_added;
      if (!writer_)
        task.updates_durable = task.updates_added;  // no checkpoints: nothing to wait for
      checkpoint_task_later({task.framework_id, task.task_id});
      log().debug("{}: task {} of framework {} is {}", me().to_string(), task.task_id,
                  task.framework_id, to_string(status.getState()));
      if (task.stream.pending() == 1)
        forward(task);  // nothing older in flight
      break;
    case Added::duplicate:
      metrics_.updates_duplicate.fetch_add(1, std::memory_order_relaxed);
      break;
    case Added::after_terminal:
      refuse(metrics_.refused_invalid, "update after the end of task " + task.task_id);
      break;
    case Added::full:
      refuse(metrics_.refused_invalid, "update beyond the stream limit of task " + task.task_id);
      break;
    case Added::invalid:
      refuse(metrics_.refused_invalid, "update without uuid for task " + task.task_id);
      break;
  }
  return added;
}

void Agent::agent_update(Task& task, wire::TaskState state, Reason reason,
                         const std::string& message) {
  capnp::MallocMessageBuilder builder(build_first_segment_words);
  auto status = builder.initRoot<wire::TaskStatus>();
  status.setTaskId(task.task_id);
  status.setState(state);
  status.setReason(reason);
  status.setMessage(message);
  status.setTimestampNs(timestamp_ns(node()));
  status.setUuid(tessera::data(new_uuid_bytes(rng_)));
  status.setSource(wire::TaskStatus::Source::AGENT);
  status.setAgentId(agent_id_);
  status.setExecutorId(task.executor_id);
  log().info("{}: task {} of framework {}: {} ({}): {}", me().to_string(), task.task_id,
             task.framework_id, to_string(state), to_string(reason), message);
  ingest(task, status.asReader());
}

// Sends the task's oldest unacknowledged update and arms its retry.
void Agent::forward(Task& task) {
  if (!registered_)
    return;  // resent by forward_all() on (re)registration
  auto* front = task.stream.front();
  if (!front || (!task.front_durable() && !forgetting_))
    return;  // sent once its checkpoint is written (flush_checkpoints)
  send(master_, build<wire::StatusUpdate>([&](wire::StatusUpdate::Builder b) {
         b.setFrameworkId(task.framework_id);
         b.setStatus(front->get());
         b.getStatus().setAgentId(agent_id_);
         b.setLatestState(task.stream.latest_state());
       }));
  metrics_.updates_forwarded.fetch_add(1, std::memory_order_relaxed);
  cancel(task.retry_timer);
  auto delay = task.retry_backoff.next();
  task.retry_timer = after(delay, [this, key = Key{task.framework_id, task.task_id}] {
    auto it = tasks_.find(key);
    if (it == tasks_.end())
      return;
    it->second.retry_timer = 0;
    metrics_.updates_retried.fetch_add(1, std::memory_order_relaxed);
    forward(it->second);
  });
}

void Agent::forward_all() {
  for (auto& [key, task] : tasks_) {
    task.retry_backoff.reset();
    forward(task);
  }
}

void Agent::on_ack(const Received<wire::StatusUpdateAck>& m) {
  auto body = m.body();
  Key key{str(body.getFrameworkId()), str(body.getTaskId())};
  auto uuid = str(body.getUuid());
  if (str(body.getAgentId()) != agent_id_) {
    refuse(metrics_.refused_invalid, "acknowledgement for agent '" + str(body.getAgentId()) + "'");
    return;
  }
  auto it = tasks_.find(key);
  if (it == tasks_.end() || !it->second.stream.ack(uuid)) {
    refuse(metrics_.acks_unexpected,
           "acknowledgement " + hex(uuid) + " for task '" + key.second + "' (none waits)");
    return;
  }
  auto& task = it->second;
  cancel(task.retry_timer);
  task.retry_timer = 0;
  task.retry_backoff.reset();
  checkpoint_task_later(key);
  forward(task);
  maybe_forget(key);
  if (shutting_down_ && forgetting_ && executors_.empty())
    finish_shutdown();  // it may have waited for this acknowledgement
}

void Agent::maybe_forget(const Key& key) {
  auto it = tasks_.find(key);
  if (it == tasks_.end())
    return;
  auto& task = it->second;
  if (!task.stream.terminal_acknowledged())
    return;
  if (!task.executor_id.empty() && executors_.count({task.framework_id, task.executor_id}))
    return;  // its executor still runs; it is forgotten when that exits
  cancel(task.retry_timer);
  if (!task.sandbox.empty()) {
    auto fw = frameworks_.find(key.first);
    completed_.push_back(Completed{
        key, task.sandbox, task.executor_id, task.stream.latest_state(), std::move(task.info),
        fw != frameworks_.end() ? str(fw->second.get().getPrincipal()) : std::string()});
    if (completed_.size() > completed_tasks_max)
      completed_.pop_front();
  }
  log().debug("{}: forgetting task {} of framework {}", me().to_string(), key.second, key.first);
  tasks_.erase(it);
  forget_checkpointed_task(key);
  maybe_forget_framework(key.first);
}

// -- sandboxes -------------------------------------------------------------------

const std::filesystem::path* Agent::sandbox_of(const Key& task) const {
  if (auto it = tasks_.find(task); it != tasks_.end())
    return it->second.sandbox.empty() ? nullptr : &it->second.sandbox;
  for (auto it = completed_.rbegin(); it != completed_.rend(); ++it)
    if (it->task == task)
      return &it->sandbox;
  return nullptr;
}

void Agent::on_read_sandbox(const Received<wire::ReadSandboxFile>& m) {
  auto body = m.body();
  Key key{str(body.getFrameworkId()), str(body.getTaskId())};
  auto answer_error = [&](const std::string& text) {
    reply(m, build<wire::SandboxFile>([&](wire::SandboxFile::Builder b) { b.setError(text); }));
  };
  // Over TLS: the master and operators read any sandbox, a framework only
  // its own tasks' (by the principal its certificate and FrameworkInfo name).
  if (std::string why; !sender_in_role({"master", "operator"}, &why)) {
    const auto* who = sender_principal();
    std::optional<std::string> principal;
    if (auto fw = frameworks_.find(key.first); fw != frameworks_.end())
      principal = str(fw->second.get().getPrincipal());
    for (auto it = completed_.rbegin(); !principal && it != completed_.rend(); ++it)
      if (it->task == key)
        principal = it->principal;
    bool own = who && who->role == "framework" && principal && *principal == who->name;
    if (!own) {
      refuse(metrics_.refused_not_master, "sandbox read of framework '" + key.first + "' from " +
                                              m.sender().to_string() + ": " + why +
                                              ", nor the framework's own principal");
      answer_error("forbidden: " + why + ", nor framework '" + key.first + "''s principal");
      return;
    }
  }
  const auto* dir = sandbox_of(key);
  if (!dir) {
    refuse(metrics_.unknown_tasks, "sandbox read of unknown task '" + key.second + "'");
    answer_error("unknown task '" + key.second + "' of framework '" + key.first + "'");
    return;
  }
  // Read on the blocking pool (up to read_bytes_max from disk), answered
  // when it is back.
  auto path = str(body.getPath());
  auto answer = [this, request = m.envelope(), path](const expected<sandbox::FileChunk>& chunk) {
    if (!chunk) {
      if (is(chunk.error(), Errc::invalid_argument))
        refuse(metrics_.refused_invalid,
               "sandbox read of '" + path + "' from " + request.sender.to_string());
      reply_later(request, build<wire::SandboxFile>([&](wire::SandboxFile::Builder b) {
                    b.setError(describe(chunk.error()));
                  }));
      return;
    }
    reply_later(request, build<wire::SandboxFile>([&](wire::SandboxFile::Builder b) {
                  b.setData(tessera::data(chunk->data));
                  b.setSize(chunk->size);
                }));
  };
  auto queued = blocking([answer, dir = *dir, path, offset = body.getOffset(),
                          length_max = body.getLengthMax()]() -> std::function<void()> {
    auto chunk = sandbox::read(dir, path, offset, length_max);
    return [answer, chunk = std::move(chunk)] { answer(chunk); };
  });
  if (!queued)
    answer_error("the agent is busy; try again");
}

}  // namespace tessera
