#pragma once
// A framework for tests: it launches the tasks a test queues (one per offer
// that fits), records every update, and runs actions the test posts (kill,
// reconcile, ...) on its own thread. The test and the actor share a
// TestFrameworkLog, which is thread-safe.

#include "services/scheduler/scheduler.hpp"

#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tessera::testing {

class TestFramework;

class TestFrameworkLog {
 public:
  void launch(TaskSpec task);
  void post(std::function<void(TestFramework&)> action);

  std::string framework_id() const;
  int subscribed() const;
  int disconnected() const;
  std::vector<TaskStatus> updates() const;
  std::vector<std::string> errors() const;
  // How many updates of task in state arrived (duplicates included).
  size_t count(const std::string& task, TaskState state) const;
  bool has(const std::string& task, TaskState state) const { return count(task, state) > 0; }
  std::optional<TaskStatus> last(const std::string& task) const;

 private:
  friend class TestFramework;
  mutable std::mutex mu_;
  std::string framework_id_;
  int subscribed_ = 0;
  int disconnected_ = 0;
  std::vector<TaskStatus> updates_;
  std::vector<std::string> errors_;
  std::deque<TaskSpec> to_launch_;
  std::deque<std::function<void(TestFramework&)>> actions_;
};

class TestFramework : public Scheduler {
 public:
  TestFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                std::shared_ptr<TestFrameworkLog> log);

  using Scheduler::kill;
  using Scheduler::reconcile;
  using Scheduler::teardown;

 protected:
  void subscribed(const std::string& framework_id) override;
  void disconnected(const caf::error& why) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;

 private:
  void poll();
  std::shared_ptr<TestFrameworkLog> log_;
  bool polling_ = false;
};

SchedulerConfig test_framework_config(const Address& master, const std::string& role,
                                      uint64_t seed = 1);

TaskSpec shell_task(std::string id, std::string shell,
                    const std::string& resources = "cpus:0.5;mem:32");

}  // namespace tessera::testing
