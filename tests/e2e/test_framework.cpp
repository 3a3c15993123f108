#include "e2e/test_framework.hpp"

namespace tessera::testing {

using namespace std::chrono_literals;

void TestFrameworkLog::launch(TaskSpec task) {
  std::lock_guard<std::mutex> lock(mu_);
  to_launch_.push_back(std::move(task));
}

void TestFrameworkLog::post(std::function<void(TestFramework&)> action) {
  std::lock_guard<std::mutex> lock(mu_);
  actions_.push_back(std::move(action));
}

std::string TestFrameworkLog::framework_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return framework_id_;
}

int TestFrameworkLog::subscribed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribed_;
}

int TestFrameworkLog::disconnected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return disconnected_;
}

std::vector<TaskStatus> TestFrameworkLog::updates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return updates_;
}

std::vector<std::string> TestFrameworkLog::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

size_t TestFrameworkLog::count(const std::string& task, TaskState state) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& u : updates_)
    n += u.task_id == task && u.state == state;
  return n;
}

std::optional<TaskStatus> TestFrameworkLog::last(const std::string& task) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = updates_.rbegin(); it != updates_.rend(); ++it)
    if (it->task_id == task)
      return *it;
  return std::nullopt;
}

TestFramework::TestFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                             std::shared_ptr<TestFrameworkLog> log)
    : Scheduler(cfg, std::move(init), std::move(config)), log_(std::move(log)) {
}

void TestFramework::subscribed(const std::string& framework_id) {
  {
    std::lock_guard<std::mutex> lock(log_->mu_);
    log_->framework_id_ = framework_id;
    ++log_->subscribed_;
  }
  if (!polling_) {
    polling_ = true;
    poll();
  }
}

void TestFramework::disconnected(const caf::error&) {
  std::lock_guard<std::mutex> lock(log_->mu_);
  ++log_->disconnected_;
}

void TestFramework::offers(const std::vector<Offer>& offers) {
  for (const auto& o : offers) {
    std::optional<TaskSpec> task;
    {
      std::lock_guard<std::mutex> lock(log_->mu_);
      if (!log_->to_launch_.empty() &&
          o.resources.allocatable_to(o.role).contains(log_->to_launch_.front().resources)) {
        task = std::move(log_->to_launch_.front());
        log_->to_launch_.pop_front();
      }
    }
    if (task)
      accept({o.id}, {*task}, 0s);
    else
      decline({o.id}, 100ms);
  }
}

void TestFramework::update(const TaskStatus& status) {
  std::lock_guard<std::mutex> lock(log_->mu_);
  log_->updates_.push_back(status);
}

void TestFramework::error(const std::string& message) {
  std::lock_guard<std::mutex> lock(log_->mu_);
  log_->errors_.push_back(message);
}

void TestFramework::poll() {
  std::deque<std::function<void(TestFramework&)>> actions;
  {
    std::lock_guard<std::mutex> lock(log_->mu_);
    actions.swap(log_->actions_);
  }
  for (auto& a : actions)
    a(*this);
  after(10ms, [this] { poll(); });
}

SchedulerConfig test_framework_config(const Address& master, const std::string& role,
                                      uint64_t seed) {
  SchedulerConfig c;
  c.master = master;
  c.framework.name = "test-" + role;
  c.framework.roles = {role};
  c.seed = seed;
  c.resubscribe_backoff_min = 20ms;
  c.resubscribe_backoff_max = 500ms;
  return c;
}

TaskSpec shell_task(std::string id, std::string shell, const std::string& resources) {
  TaskSpec t;
  t.id = std::move(id);
  t.shell = std::move(shell);
  t.resources = *Resources::parse(resources);
  return t;
}

}  // namespace tessera::testing
