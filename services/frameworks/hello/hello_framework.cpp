#include "services/frameworks/hello/hello_framework.hpp"

#include "runtime/log.hpp"

namespace tessera {

HelloFramework::HelloFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                               HelloOptions options, Done done)
    : Scheduler(cfg, std::move(init), std::move(config)),
      options_(std::move(options)),
      done_(std::move(done)) {
}

void HelloFramework::subscribed(const std::string& framework_id) {
  log().info("hello: subscribed as {}", framework_id);
  // After a reconnection, updates sent meanwhile may be lost: ask again.
  if (!active_.empty()) {
    std::vector<TaskRef> tasks;
    for (const auto& id : active_)
      tasks.push_back({id, {}});
    reconcile(tasks);
  }
}

std::vector<TaskSpec> HelloFramework::tasks_for(const Offer& offer) {
  std::vector<TaskSpec> tasks;
  Resources left = offer.resources;
  while (launched_ + tasks.size() < options_.tasks && left.contains(options_.per_task)) {
    auto i = std::to_string(launched_ + tasks.size() + 1);
    TaskSpec task;
    task.id = "hello-" + i;
    task.shell = "echo hello " + i;
    task.resources = options_.per_task;
    left -= options_.per_task;
    tasks.push_back(std::move(task));
  }
  return tasks;
}

void HelloFramework::offers(const std::vector<Offer>& offers) {
  for (const auto& offer : offers) {
    auto tasks = tasks_for(offer);
    if (tasks.empty()) {
      decline({offer.id}, std::chrono::minutes(1));
      continue;
    }
    if (auto err = accept({offer.id}, tasks)) {
      log().warn("hello: accept failed: {}", describe(err));
      continue;  // nothing was launched; a later offer will do
    }
    agents_[offer.agent_id] = offer.agent_address;
    launched_ += static_cast<uint32_t>(tasks.size());
    for (const auto& task : tasks)
      active_.insert(task.id);
    if (launched_ == options_.tasks)
      suppress();  // everything is launched: no more offers, please
  }
}

void HelloFramework::update(const TaskStatus& status) {
  log().info("hello: {} {}", status.task_id, describe(status));
  if (!status.terminal() || active_.erase(status.task_id) == 0)
    return;
  if (status.state == TaskState::FINISHED) {
    ++result_.finished;
    read_stdout(status);
  } else {
    ++result_.failed;
  }
  finish_if_done();
}

void HelloFramework::read_stdout(const TaskStatus& status) {
  auto agent = agents_.find(status.agent_id);
  if (agent == agents_.end())
    return;
  ++reads_;
  read_whole_sandbox_file(agent->second, status.task_id, "stdout", 4096,
                          [this, id = status.task_id](expected<SandboxData> file) {
                            --reads_;
                            result_.outputs[id] = file ? file->bytes : describe(file.error());
                            finish_if_done();
                          });
}

void HelloFramework::error(const std::string& message) {
  result_.error = message;
  done_(result_);
  stop();
}

void HelloFramework::finish_if_done() {
  if (launched_ < options_.tasks || !active_.empty() || reads_ > 0)
    return;
  teardown();  // the framework is finished: the master may forget it
  done_(result_);
  stop();
}

}  // namespace tessera
