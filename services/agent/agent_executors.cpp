// Tasks and the executors that run them: launch, subscription, kill, shutdown
// and the end of an executor.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "services/agent/sandbox.hpp"
#include "services/executor/command_executor.hpp"
#include "services/executor/task_process.hpp"

#include <caf/send.hpp>

#include <signal.h>

#include <algorithm>
#include <set>

namespace tessera {

namespace {

using State = wire::TaskState;
using Event = wire::ExecutorEvent;

// The wait status an executor process's exit means, as waitpid() reports it.
int wait_status(const ProcessExit& exit) {
  return exit.term_signal != 0 ? exit.term_signal : (exit.exit_code & 0xff) << 8;
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

// -- launching -------------------------------------------------------------------

void Agent::run_task(const Received<wire::RunTask>& m) {
  auto body = m.body();
  auto info = body.getTask();
  if (!launch_allowed(str(body.getBootId()), body.getRegistrationSeq(),
                      "RunTask of task " + str(info.getTaskId())))
    return;
  Task* task = add_task(str(body.getFrameworkInfo().getFrameworkId()), info);
  if (!task)
    return;
  remember_framework(body.getFrameworkInfo());
  if (refuse_launch({task}))
    return;
  if (info.hasExecutor() || body.hasExecutor()) {
    agent_update(*task, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED,
                 "custom executors not supported yet");
    return;
  }
  if (!info.hasCommand()) {
    agent_update(*task, State::FAILED, Reason::TASK_INVALID,
                 "task has neither a command nor an executor");
    return;
  }
  launch_command_task(*task);
}

void Agent::run_task_group(const Received<wire::RunTaskGroup>& m) {
  auto body = m.body();
  if (!launch_allowed(str(body.getBootId()), body.getRegistrationSeq(), "RunTaskGroup"))
    return;
  auto fid = str(body.getFrameworkInfo().getFrameworkId());
  auto infos = body.getTasks();
  auto executor_id = body.hasExecutor() ? str(body.getExecutor().getExecutorId()) : std::string();
  if (executor_id.empty() && infos.size() > 0)
    executor_id = "group-" + str(infos[0].getTaskId());
  // A group launches whole or not at all: whatever is wrong with one task
  // fails every task of it.
  std::string invalid;
  std::set<std::string> ids;
  if (infos.size() == 0)
    invalid = "empty task group";
  else if (!sandbox::valid_path_id(executor_id))
    invalid = "bad executor id '" + executor_id + "'";
  for (auto info : infos) {
    auto id = str(info.getTaskId());
    if (!ids.insert(id).second && invalid.empty())
      invalid = "task id '" + id + "' twice in the group";
    if (!info.hasCommand() && invalid.empty())
      invalid = "task '" + id + "' has no command";
  }
  std::vector<Task*> tasks;
  for (auto info : infos)
    if (Task* task = add_task(fid, info))
      tasks.push_back(task);
  if (tasks.size() != infos.size() && invalid.empty())
    invalid = "a task of the group was refused (bad or duplicate id)";
  if (tasks.empty())
    return;
  remember_framework(body.getFrameworkInfo());
  if (!invalid.empty()) {
    for (auto* t : tasks)
      agent_update(*t, State::FAILED, Reason::TASK_GROUP_INVALID, invalid);
    return;
  }
  if (refuse_launch(tasks))
    return;
  launch_executor(fid, executor_id, tasks, true);
}

// While checkpoint writes fail, a task started now could not be recovered:
// none is, and the framework hears why (DROPPED or LOST: it was never
// started, so it may be launched elsewhere).
//
// Paths in text made relative to the work dir, for messages to frameworks:
// they need not know the agent's layout (its log has the full error), and a
// simulation's messages stay the same in every process.
std::string Agent::in_work_dir(std::string text) const {
  auto prefix = config_.work_dir.string() + "/";
  for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at))
    text.erase(at, prefix.size());
  return text;
}

// The refusal waits checkpoint_retry_ms: refused at once, the task's
// resources would be offered again at once and launched here again, a busy
// loop of launches and refusals (in the chaos simulation, an endless one in
// zero virtual time: seed 1 of disk-full).
bool Agent::refuse_launch(const std::vector<Task*>& tasks) {
  if (!checkpoint_error_)
    return false;
  std::vector<Key> keys;
  for (auto* t : tasks)
    keys.emplace_back(t->framework_id, t->task_id);
  auto why = "the agent cannot write its checkpoints (" + in_work_dir(what(checkpoint_error_)) +
             "); it takes no new task until it can";
  after(config_.checkpoint_retry_ms, [this, keys = std::move(keys), why = std::move(why)] {
    for (const auto& key : keys)
      if (auto it = tasks_.find(key); it != tasks_.end() && !it->second.stream.terminated())
        drop_unlaunched(it->second, Reason::CONTAINER_LAUNCH_FAILED, why);
  });
  return true;
}

// A task that never reached an executor and never will: TASK_DROPPED for a
// partition-aware framework, TASK_LOST for others (as Mesos).
void Agent::drop_unlaunched(Task& task, Reason reason, const std::string& why) {
  bool partition_aware = false;
  if (auto f = frameworks_.find(task.framework_id); f != frameworks_.end())
    for (auto c : f->second.get().getCapabilities())
      partition_aware = partition_aware || c == wire::FrameworkCapability::PARTITION_AWARE;
  agent_update(task, partition_aware ? State::DROPPED : State::LOST, reason, why);
}

Agent::Task* Agent::add_task(const std::string& framework_id, wire::TaskInfo::Reader info) {
  auto task_id = str(info.getTaskId());
  auto named_agent = str(info.getAgentId());
  if (!sandbox::valid_path_id(framework_id) || !sandbox::valid_path_id(task_id)) {
    refuse(metrics_.refused_invalid, "task with a bad framework or task id '" + task_id + "'");
    return nullptr;
  }
  if (!named_agent.empty() && named_agent != agent_id_) {
    refuse(metrics_.refused_invalid, "task " + task_id + " for agent " + named_agent);
    return nullptr;
  }
  Key key{framework_id, task_id};
  if (tasks_.count(key)) {
    refuse(metrics_.refused_invalid, "second launch of task " + task_id);
    return nullptr;
  }
  if (never_launch_.count(key)) {
    refuse(metrics_.refused_stale_launches,
           "launch of task " + task_id + ", which this agent told the master it never got");
    return nullptr;
  }
  if (tasks_.size() >= tasks_max) {
    refuse(metrics_.refused_invalid, "task " + task_id + " beyond tasks_max");
    return nullptr;
  }
  auto& task = tasks_[key];
  task.framework_id = framework_id;
  task.task_id = task_id;
  task.info = Owned<wire::TaskInfo>(info);
  task.retry_backoff = status_update_backoff();
  checkpoint_task_later(key);
  return &task;
}

void Agent::launch_command_task(Task& task) {
  // A command task's executor id is its task id.
  launch_executor(task.framework_id, task.task_id, {&task}, false);
}

// Starts one executor run, in a container sized to its tasks, that runs
// tasks (a group: together, in one launchGroup). Any failure fails them all.
void Agent::launch_executor(const std::string& framework_id, const std::string& executor_id,
                            const std::vector<Task*>& tasks, bool group) {
  Key key{framework_id, executor_id};
  auto fail_all = [&](const std::string& why) {
    for (auto* t : tasks)
      agent_update(*t, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED, why);
  };
  if (executors_.size() >= executors_max || executors_.count(key))
    return fail_all(executors_.count(key) ? "executor id in use" : "too many executors");
  Executor e;
  e.framework_id = framework_id;
  e.executor_id = executor_id;
  e.group = group;
  e.run_id = hex(new_uuid_bytes(rng_));
  e.sandbox = sandbox::directory(config_.work_dir, e.framework_id, e.executor_id, e.run_id);
  // Who runs the tasks, before anything of the run exists.
  if (auto err = choose_users(e, tasks))
    return fail_all(what(err));
  std::error_code ec;
  std::filesystem::create_directories(e.sandbox, ec);
  // A group's task directories too, while the sandbox is still the agent's.
  for (size_t i = 0; group && !ec && i < tasks.size(); ++i)
    std::filesystem::create_directories(group_task_placement(e.sandbox, tasks[i]->task_id).cwd, ec);
  if (ec == std::errc::no_space_on_device)
    return fail_all("cannot create sandbox " + e.sandbox.string() + ": " + ec.message() +
                    " (ENOSPC): the agent's disk is full");
  if (ec)
    return fail_all("cannot create sandbox " + e.sandbox.string() + ": " + ec.message());
  Resources resources;
  for (auto* t : tasks) {
    t->executor_id = e.executor_id;
    t->sandbox = e.sandbox;
    e.tasks.push_back(t->task_id);
    e.queued.push_back(t->task_id);
    if (auto r = from_wire(t->info.get().getResources()))
      resources += *r;
  }
  auto& executor = executors_.emplace(key, std::move(e)).first->second;
  auto placement = prepare_container(executor, resources);
  if (!placement) {
    executors_.erase(key);
    return fail_all("cannot make the container: " + describe(placement.error()));
  }
  executor.placement = std::move(*placement);
  if (fetch_uris(executor))
    return;  // the sandbox is handed over after the fetch, on the fetch lane
  // Nothing fetched: the directories are empty, a few chowns.
  if (auto err = hand_over(executor.owners)) {
    for (auto* t : tasks)
      agent_update(*t, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED, in_work_dir(what(err)));
    executor.queued.clear();
    executor_terminated(key, 0);
    return;
  }
  start_run(key);
}

// Fetches the URIs of the executor's tasks off the actor's thread, each
// task's into its own directory; false when there is nothing to fetch.
bool Agent::fetch_uris(Executor& e) {
  struct Job {
    std::vector<FetchUri> uris;
    std::filesystem::path dir;
  };
  std::vector<Job> jobs;
  for (const auto& id : e.tasks) {
    auto t = tasks_.find({e.framework_id, id});
    if (t == tasks_.end())
      continue;
    auto info = t->second.info.get();
    if (!info.hasCommand() || info.getCommand().getUris().size() == 0)
      continue;
    Job job;
    job.dir = e.group ? group_task_placement(e.sandbox, id).cwd : e.sandbox;
    for (auto u : info.getCommand().getUris())
      job.uris.push_back({str(u.getValue()), u.getExtract(), u.getExecutable(), u.getCache()});
    jobs.push_back(std::move(job));
  }
  if (jobs.empty())
    return false;
  e.fetching = true;
  Key key{e.framework_id, e.executor_id};
  auto fetcher = fetcher_;
  auto cache = fetcher_cache_;  // the fetcher points to it: it must outlive the job
  auto queued =
      blocking(Work::fetch,
               [this, fetcher, cache, jobs, key, run = e.run_id,
                owners = e.owners]() -> std::function<void()> {
                 caf::error error;
                 auto reason = Reason::FETCH_FAILED;
                 for (const auto& job : jobs) {
                   std::error_code ec;
                   std::filesystem::create_directories(job.dir, ec);
                   if (ec) {
                     error = make_os_error(ec.value(), "create " + job.dir.string());
                     break;
                   }
                   if (auto fetched = fetcher->fetch(job.uris, job.dir); !fetched) {
                     error = fetched.error();
                     break;
                   }
                 }
                 // Fetched as root into directories only root may write: now the user's.
                 if (!error && (error = hand_over(owners)))
                   reason = Reason::CONTAINER_LAUNCH_FAILED;
                 // The continuation runs on the actor's thread.
                 return [this, key, run, error, reason] { on_fetched(key, run, error, reason); };
               });
  if (!queued)
    on_fetched(key, e.run_id, make_error(Errc::stopped, "the agent's worker pool is full"));
  return true;
}

void Agent::on_fetched(const Key& key, const std::string& run_id, const caf::error& error,
                       Reason reason) {
  auto it = executors_.find(key);
  if (it == executors_.end() || it->second.run_id != run_id)
    return;
  auto& e = it->second;
  e.fetching = false;
  metrics_.fetches.fetch_add(1, std::memory_order_relaxed);
  if (error) {
    metrics_.fetch_failures.fetch_add(1, std::memory_order_relaxed);
    log().info("{}: fetching for executor {} of framework {} failed: {}", me().to_string(),
               key.second, key.first, what(error));
    for (const auto& id : e.queued)
      if (auto t = tasks_.find({key.first, id}); t != tasks_.end())
        agent_update(t->second, State::FAILED, reason, in_work_dir(what(error)));
    e.queued.clear();
  }
  // Killed (or failed) while fetching: the run ends without an executor.
  if (e.destroyed || e.queued.empty()) {
    executor_terminated(key, error ? 0 : SIGKILL);
    return;
  }
  start_run(key);
}

// A run whose container is ready and files fetched: its record goes to disk
// first (pid 0), so that whenever the agent dies from here on, the next one
// knows the run; the writer's thread says when, and launch_run() goes on.
// The actor does not wait meanwhile.
void Agent::start_run(const Key& key) {
  auto& executor = executors_.at(key);
  if (!writer_) {
    launch_run(key);
    return;
  }
  executor.starting = true;
  // Its tasks' records go to the writer before the run's, so when the run
  // is on disk their fate is known (the writer is first in, first out).
  if (flush_scheduled_ || !dirty_tasks_.empty())
    flush_checkpoints();
  checkpoint_run(executor, on_written([this, key, run = executor.run_id](const caf::error& err) {
                   on_run_checkpointed(key, run, err);
                 }));
}

void Agent::on_run_checkpointed(const Key& key, const std::string& run_id,
                                const caf::error& error) {
  auto it = executors_.find(key);
  if (it == executors_.end() || it->second.run_id != run_id)
    return;
  auto& e = it->second;
  e.starting = false;
  // Killed (or shut down) while its record was written: it ends unstarted.
  if (e.destroyed || e.queued.empty()) {
    executor_terminated(key, SIGKILL);
    return;
  }
  // Checkpoint before launch: the run and each of its tasks are on disk,
  // or none of them starts (a full disk may have room for one record and
  // not the next).
  std::string undurable;
  for (const auto& id : e.queued)
    if (auto t = tasks_.find({key.first, id}); t != tasks_.end() && !t->second.record_durable)
      undurable = id;
  if (error || !undurable.empty()) {
    auto why = error ? in_work_dir(what(error))
                     : "the record of task " + undurable + " could not be written";
    for (const auto& id : e.queued)
      if (auto t = tasks_.find({key.first, id}); t != tasks_.end())
        agent_update(t->second, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED,
                     "cannot checkpoint the executor run before starting it: " + why);
    e.queued.clear();
    executor_terminated(key, 0);
    return;
  }
  launch_run(key);
}

// Starts the executor of a run (its record on disk, when checkpointing).
void Agent::launch_run(const Key& key) {
  auto& executor = executors_.at(key);
  if (auto started = start_executor(executor, executor.placement); !started) {
    for (const auto& id : executor.queued)
      if (auto t = tasks_.find({key.first, id}); t != tasks_.end())
        agent_update(t->second, State::FAILED, Reason::CONTAINER_LAUNCH_FAILED,
                     "cannot start executor: " + describe(started.error()));
    executor.queued.clear();
    executor_terminated(key, 0);
    return;
  }
  checkpoint_run(executor);  // now with its pid and start time
  metrics_.tasks_launched.fetch_add(executor.tasks.size(), std::memory_order_relaxed);
  log().info("{}: launching {} {} of framework {} in {}", me().to_string(),
             executor.group ? "task group" : "task", key.second, key.first,
             executor.sandbox.string());
  executor.registration_timer = after(config_.executor_registration_timeout_ms, [this, key] {
    auto it = executors_.find(key);
    if (it == executors_.end() || it->second.subscribed)
      return;
    it->second.registration_timer = 0;
    for (const auto& id : it->second.queued)
      if (auto t = tasks_.find({key.first, id}); t != tasks_.end())
        agent_update(t->second, State::FAILED, Reason::EXECUTOR_REGISTRATION_TIMEOUT,
                     "executor did not register within " +
                         ms_text(config_.executor_registration_timeout_ms));
    it->second.queued.clear();
    destroy_executor(key);
  });
}

expected<void> Agent::start_executor(Executor& e, const Placement& placement) {
  Key key{e.framework_id, e.executor_id};
  if (config_.executor_mode == ExecutorMode::in_process) {
    CommandExecutorConfig c;
    c.agent = me();
    c.framework_id = e.framework_id;
    c.executor_id = e.executor_id;
    c.sandbox = e.sandbox;
    c.kill_grace_ms = config_.kill_grace_ms;
    c.recovery_timeout_ms = config_.executor_recovery_timeout_ms;
    c.seed = rng_();
    c.cgroups = placement.cgroups;  // the executor is an actor here: its tasks go in
    c.pid_namespace = config_.pid_namespace;
    c.container_env = placement.env;
    c.base_env = base_env_;
    c.simulated = config_.simulated_tasks;
    e.actor_name = "executor." + e.run_id;
    auto address = node().spawn<CommandExecutor>(e.actor_name, std::move(c));
    if (!address)
      return address.error();
    e.address = *address;
    executor_by_address_[e.address] = key;
    watch(e.address);
    return caf::unit;
  }
  ProcessSpec spec;
  spec.argv = {config_.executor_binary, "executor"};
  spec.env = executor_environment(e, placement);
  spec.inherit_env = false;          // never the agent's environment (agent_users.cpp)
  spec.cgroups = placement.cgroups;  // the executor, and so everything it starts
  spec.working_dir = e.sandbox.string();
  spec.stdout_path = (e.sandbox / "executor.stdout").string();
  spec.stderr_path = (e.sandbox / "executor.stderr").string();
  spec.new_session = true;
  auto pid = start_process(spec, executor_exit_hook(key, e.run_id));
  if (!pid)
    return pid.error();
  e.pid = *pid;
  // The child exists (posix_spawn returned), so its start time can be read;
  // exec does not change it. Without it recovery falls back to the
  // environment check alone.
  if (auto started = process_start_time(*pid))
    e.pid_start_time = *started;
  else
    log().warn("{}: start time of executor {} (pid {}): {}", me().to_string(), e.executor_id, *pid,
               describe(started.error()));
  return caf::unit;
}

// -- executor calls --------------------------------------------------------------

void Agent::install_executor_handlers() {
  on<wire::ExecutorCall>([this](const Received<wire::ExecutorCall>& m) { on_executor_call(m); });
}

void Agent::on_executor_call(const Received<wire::ExecutorCall>& m) {
  // Executors speak with this agent's own certificate (tls_environment).
  if (std::string why; !sender_in_role({}, &why)) {
    refuse(metrics_.refused_executor_calls,
           "executor call from " + m.sender().to_string() + ": " + why);
    return;
  }
  auto call = m.body();
  Key key{str(call.getFrameworkId()), str(call.getExecutorId())};
  auto it = executors_.find(key);
  if (it == executors_.end()) {
    refuse(metrics_.refused_executor_calls, "call from unknown executor '" + key.second +
                                                "' of framework '" + key.first + "' at " +
                                                m.sender().to_string());
    return;
  }
  auto& e = it->second;
  if (call.isSubscribe()) {
    on_executor_subscribe(e, m.sender(), call.getSubscribe());
    return;
  }
  if (!e.subscribed || m.sender() != e.address) {
    refuse(metrics_.refused_executor_calls,
           "call for executor " + key.second + " from " + m.sender().to_string());
    return;
  }
  switch (call.which()) {
    case wire::ExecutorCall::UPDATE:
      on_executor_update(e, call.getUpdate());
      break;
    case wire::ExecutorCall::MESSAGE: {
      if (!registered_) {
        log().debug("{}: dropping a message of executor {}: not registered", me().to_string(),
                    key.second);
        break;
      }
      auto bytes = call.getMessage();
      send(master_, build<wire::ExecutorToFramework>([&](wire::ExecutorToFramework::Builder b) {
             b.setAgentId(agent_id_);
             b.setFrameworkId(key.first);
             b.setExecutorId(key.second);
             b.setData(bytes);
           }));
      break;
    }
    default:
      refuse(metrics_.refused_executor_calls, "executor call of unknown kind");
      break;
  }
}

void Agent::on_executor_subscribe(Executor& e, const Address& sender,
                                  wire::ExecutorCall::Subscribe::Reader sub) {
  Key key{e.framework_id, e.executor_id};
  if (e.destroyed) {
    log().debug("{}: ignoring the subscription of executor {}: it is being killed",
                me().to_string(), e.executor_id);
    return;
  }
  if (!e.address.empty() && sender != e.address) {
    refuse(metrics_.refused_executor_calls, "subscribe of executor " + e.executor_id + " from " +
                                                sender.to_string() + ", expected " +
                                                e.address.to_string());
    return;
  }
  e.subscribed = true;
  e.address = sender;
  checkpoint_run(e);
  executor_by_address_[sender] = key;
  watch(sender);
  cancel(e.registration_timer);
  e.registration_timer = 0;
  if (!e.shutdown_requested) {
    cancel(e.kill_timer);  // a process executor that reconnected in time
    e.kill_timer = 0;
  }
  for (auto update : sub.getUnacknowledgedUpdates())
    on_executor_update(e, update);
  send(sender, executor_event([&](Event::Builder b) {
         auto s = b.initSubscribed();
         auto info = s.initExecutorInfo();
         info.setExecutorId(e.executor_id);
         info.setFrameworkId(e.framework_id);
         if (auto f = frameworks_.find(e.framework_id); f != frameworks_.end())
           s.setFrameworkInfo(f->second.get());
         fill_agent_info(s.initAgentInfo());
       }));
  std::vector<const Task*> launch;
  for (const auto& id : e.queued)
    if (auto t = tasks_.find({e.framework_id, id});
        t != tasks_.end() && !t->second.stream.terminated())
      launch.push_back(&t->second);
  e.queued.clear();
  if (e.group && !launch.empty())
    send(sender, executor_event([&](Event::Builder b) {
           auto list = b.initLaunchGroup(static_cast<unsigned>(launch.size()));
           for (unsigned i = 0; i < launch.size(); ++i) {
             list.setWithCaveats(i, launch[i]->info.get());
             set_run_as(list[i], *launch[i]);
           }
         }));
  else
    for (const auto* t : launch)
      send(sender, executor_event([&](Event::Builder b) {
             b.setLaunch(t->info.get());
             set_run_as(b.getLaunch(), *t);
           }));
  if (e.shutdown_requested)
    send(sender, executor_event([](Event::Builder b) { b.setShutdown(); }));
  if (e.recovered)
    on_recovered_subscribe(key);
}

void Agent::on_executor_update(Executor& e, wire::TaskStatus::Reader status) {
  auto task_id = str(status.getTaskId());
  auto it = tasks_.find({e.framework_id, task_id});
  if (it == tasks_.end() || it->second.executor_id != e.executor_id) {
    refuse(metrics_.refused_executor_calls,
           "update from executor " + e.executor_id + " for task '" + task_id + "' it does not run");
    return;
  }
  // A task the kernel (or the agent) killed for memory ends with that reason.
  Owned<wire::TaskStatus> limited;
  if (status.getState() == State::FAILED && check_limitation(e)) {
    limited = Owned<wire::TaskStatus>(status);
    auto b = limited.edit();
    b.setReason(e.container.limitation);
    b.setMessage(e.container.limitation_message + " (" + str(status.getMessage()) + ")");
    status = limited.get();
  }
  auto added = ingest(it->second, status);
  if (added == StatusUpdateStream::Added::full || added == StatusUpdateStream::Added::invalid)
    return;  // not ours yet: the executor keeps it
  auto uuid = str(status.getUuid());
  if (writer_) {
    // Acknowledged once it is on disk: until then the executor keeps it.
    it->second.ack_after_write.push_back(uuid);
    checkpoint_task_later(it->first);
    return;
  }
  acknowledge_executor(e, task_id, {uuid});
}

void Agent::acknowledge_executor(const Executor& e, const std::string& task_id,
                                 const std::vector<std::string>& uuids) {
  if (e.address.empty())
    return;
  for (const auto& uuid : uuids)
    send(e.address, executor_event([&](Event::Builder b) {
           auto ack = b.initAcknowledged();
           ack.setTaskId(task_id);
           ack.setUuid(tessera::data(uuid));
         }));
}

Outgoing Agent::executor_event(const std::function<void(Event::Builder)>& fill) const {
  return build<Event>([&](Event::Builder b) { fill(b); });
}

// -- kill, shutdown, exit ----------------------------------------------------------

void Agent::kill_task(const Received<wire::KillTask>& m) {
  Key key{str(m.body().getFrameworkId()), str(m.body().getTaskId())};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    refuse(metrics_.unknown_tasks, "KillTask of unknown task '" + key.second + "'");
    return;
  }
  auto& task = it->second;
  if (task.stream.terminated())
    return;  // already ended; its updates are on their way
  task.kill_requested = true;
  auto e = executors_.find({key.first, task.executor_id});
  if (e == executors_.end()) {
    agent_update(task, State::KILLED, Reason::KILLED_BY_SCHEDULER, "Killed");
    return;
  }
  auto& queued = e->second.queued;
  if (!e->second.subscribed || std::count(queued.begin(), queued.end(), key.second)) {
    queued.erase(std::remove(queued.begin(), queued.end(), key.second), queued.end());
    agent_update(task, State::KILLED, Reason::TASK_KILLED_DURING_LAUNCH,
                 "Killed before the executor registered");
    // A group goes as a whole (as Mesos pods), a command executor has
    // nothing else to run.
    if (e->second.group)
      for (const auto& id : queued)
        if (auto t = tasks_.find({key.first, id}); t != tasks_.end())
          agent_update(t->second, State::KILLED, Reason::TASK_KILLED_DURING_LAUNCH,
                       "Killed before the executor registered: task " + key.second +
                           " of its group was killed");
    if (e->second.group)
      queued.clear();
    if (queued.empty())
      destroy_executor(e->first);
    return;
  }
  // 0 when the framework named none: the executor then applies the task's
  // kill policy, or its default (config_.kill_grace_ms).
  auto grace_ns = std::max<int64_t>(0, m.body().getGracePeriodNs());
  Duration grace{grace_ns};
  send(e->second.address, executor_event([&](Event::Builder b) {
         auto kill = b.initKill();
         kill.setTaskId(key.second);
         kill.setGracePeriodNs(grace.count());
       }));
}

void Agent::shutdown_executor(const Key& key) {
  auto it = executors_.find(key);
  if (it == executors_.end() || it->second.shutdown_requested)
    return;
  auto& e = it->second;
  e.shutdown_requested = true;
  if (!e.subscribed) {
    destroy_executor(key);
    return;
  }
  send(e.address, executor_event([](Event::Builder b) { b.setShutdown(); }));
  cancel(e.kill_timer);
  e.kill_timer = after(config_.executor_shutdown_grace_ms, [this, key] {
    if (auto it = executors_.find(key); it != executors_.end())
      it->second.kill_timer = 0;
    destroy_executor(key);
  });
}

// Ends an executor now. Its end comes back as on_lost (in-process) or as the
// process's exit, and executor_terminated() takes it from there.
void Agent::destroy_executor(const Key& key) {
  auto it = executors_.find(key);
  if (it == executors_.end())
    return;
  auto& e = it->second;
  e.destroyed = true;
  log().info("{}: destroying executor {} of framework {}", me().to_string(), key.second, key.first);
  if (config_.executor_mode == ExecutorMode::in_process) {
    // The executor kills its task's process group as it ends.
    if (auto handle = node().lookup_local(e.actor_name))
      caf::anon_send_exit(handle, caf::exit_reason::kill);
    return;
  }
  if (e.pid != 0)
    kill_process(e.pid, SIGKILL, true, [this, id = key.second](const caf::error& err) {
      if (err)
        log().warn("{}: killing executor {}: {}", me().to_string(), id, describe(err));
    });
  destroy_container(e);  // and whatever left its process group
}

void Agent::on_executor_lost(const Key& key) {
  auto it = executors_.find(key);
  if (it == executors_.end())
    return;
  if (config_.executor_mode == ExecutorMode::in_process) {
    executor_terminated(key, it->second.destroyed ? SIGKILL : 0);
    return;
  }
  // A process executor: its exit is what counts. It normally follows at once;
  // one that hangs on (or lost only its connection) is killed if it does not
  // resubscribe in time.
  auto& e = it->second;
  e.subscribed = false;
  if (e.pid != 0 && e.kill_timer == 0)
    e.kill_timer = after(config_.executor_shutdown_grace_ms, [this, key] {
      if (auto it = executors_.find(key); it != executors_.end())
        it->second.kill_timer = 0;
      destroy_executor(key);
    });
}

// What a process executor's exit (started or adopted) does: the run's end,
// if that run is still the executor's.
std::function<void(const ProcessExit&)> Agent::executor_exit_hook(const Key& key,
                                                                  const std::string& run_id) {
  return [this, key, run_id](const ProcessExit& exit) {
    auto it = executors_.find(key);
    if (it == executors_.end() || it->second.run_id != run_id)
      return;
    it->second.pid = 0;
    executor_exited(key, wait_status(exit));
  };
}

// A process executor's exit can overtake its last messages (they come
// through its connection, the exit through a pidfd): unless every task of it
// has ended already, its end is taken only after a short drain.
void Agent::executor_exited(const Key& key, int status) {
  auto it = executors_.find(key);
  if (it == executors_.end())
    return;
  auto& e = it->second;
  bool all_ended = std::all_of(e.tasks.begin(), e.tasks.end(), [&](const std::string& id) {
    auto t = tasks_.find({key.first, id});
    return t == tasks_.end() || t->second.stream.terminated();
  });
  if (all_ended || e.destroyed || config_.executor_exit_drain_ms.count() <= 0) {
    executor_terminated(key, status);
    return;
  }
  after(config_.executor_exit_drain_ms, [this, key, run = e.run_id, status] {
    auto it = executors_.find(key);
    if (it != executors_.end() && it->second.run_id == run)
      executor_terminated(key, status);
  });
}

void Agent::executor_terminated(const Key& key, int status) {
  auto it = executors_.find(key);
  if (it == executors_.end())
    return;
  Executor e = std::move(it->second);
  executors_.erase(it);
  forget_checkpointed_run(e);
  cancel(e.registration_timer);
  cancel(e.kill_timer);
  if (!e.address.empty()) {
    executor_by_address_.erase(e.address);
    unwatch(e.address);
  }
  metrics_.executors_exited.fetch_add(1, std::memory_order_relaxed);
  log().info("{}: executor {} of framework {} exited (status {})", me().to_string(), e.executor_id,
             e.framework_id, status);
  bool limited = check_limitation(e);
  destroy_container(e);  // whatever it left behind goes with it
  mark_run_ended(e.sandbox);
  for (const auto& id : e.tasks) {
    auto t = tasks_.find({e.framework_id, id});
    if (t == tasks_.end() || t->second.stream.terminated())
      continue;
    bool killed = e.shutdown_requested || t->second.kill_requested;
    if (e.recovered && t->second.stream.latest_state() == State::STAGING && !killed)
      // Given to the executor by the agent before this one, and never
      // reported by it: it never started.
      drop_unlaunched(t->second, Reason::AGENT_RESTARTED,
                      "the agent restarted before the task reached its executor, which ended");
    else if (limited && !killed)
      agent_update(t->second, State::FAILED, e.container.limitation,
                   e.container.limitation_message);
    else
      agent_update(t->second, killed ? State::KILLED : State::FAILED, Reason::EXECUTOR_TERMINATED,
                   "Executor terminated");
  }
  if (registered_)
    send(master_, build<wire::ExitedExecutor>([&](wire::ExitedExecutor::Builder b) {
           b.setFrameworkId(e.framework_id);
           b.setExecutorId(e.executor_id);
           b.setStatus(status);
         }));
  for (const auto& id : e.tasks)
    maybe_forget({e.framework_id, id});
  maybe_forget_framework(e.framework_id);
  if (shutting_down_ && executors_.empty())
    finish_shutdown();
}

}  // namespace tessera
