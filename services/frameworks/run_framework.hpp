#pragma once
// RunFramework: the one-shot framework behind `tessera run`. It subscribes,
// takes the first offer that fits (declining the others, and every later one,
// with a long filter), runs one command as one task, prints each state change
// with a timestamp, and when the task ends prints its stdout and stderr (read
// from the agent's sandbox) and reports the exit code:
//   the command's exit code; 128 + signal when a signal ended it;
//   1 for any other end (TASK_ERROR, TASK_LOST, ...: the message is printed),
//     for no fitting offer within offer_timeout, for the master removing us,
//     and for a task that succeeded but whose output could not be read (what
//     could not be read is printed);
//   2 when the master could not be reached within offer_timeout (a failed
//     SUBSCRIBE is retried with backoff until then);
//   130 when interrupted (the task is killed first).
// Then it tears the framework down.

#include "services/scheduler/scheduler.hpp"

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

namespace tessera {

struct RunOptions {
  Address master;
  std::shared_ptr<MasterDetector> detector;  // --master zk://...: follow the leader
  double cpus = 0.1;
  double mem = 32;  // MiB
  std::string role = "*";
  std::string name = "tessera-run";
  Duration offer_timeout = std::chrono::seconds(60);
  std::vector<std::string> argv;                   // the command and its arguments
  std::FILE* out = stdout;                         // the task's stdout goes here
  std::FILE* err = stderr;                         // state changes, the task's stderr, errors
  uint64_t output_bytes_max = uint64_t{64} << 20;  // per stream
  // How long to wait for the killed task's end after an interrupt.
  Duration kill_wait = std::chrono::seconds(30);
  uint64_t seed = 0;  // task id and backoff jitter; zero: random
};

// Between the command's thread and the framework actor. Thread-safe.
class RunControl {
 public:
  // Ctrl-C; a second one ends the run without waiting for the kill.
  void interrupt() { interrupts_.fetch_add(1); }
  int interrupts() const { return interrupts_.load(); }
  void finish(int exit_code);
  // The exit code once the run has finished.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);

 private:
  std::atomic<int> interrupts_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> exit_code_;
};

class RunFramework : public Scheduler {
 public:
  RunFramework(caf::actor_config& cfg, ActorInit init, RunOptions options,
               std::shared_ptr<RunControl> control);

  // What the task asks for: cpus and mem, unreserved.
  Resources wanted() const;
  // The exit code `tessera run` reports for a task's terminal status.
  static int exit_code_of(const TaskStatus& status);

 protected:
  void started() override;
  void subscribed(const std::string& framework_id) override;
  void subscribe_failed(const caf::error& why) override;
  void disconnected(const caf::error& why) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;

 private:
  // Polls RunControl for interrupts this often.
  static constexpr auto interrupt_poll = std::chrono::milliseconds(50);
  // Declined offers are not offered again for this long: we need one.
  static constexpr auto refuse_long = std::chrono::hours(1);
  // Sandbox reads that failed on the way are tried this often in all.
  static constexpr int sandbox_read_attempts_max = 3;
  static constexpr auto sandbox_read_retry_delay = std::chrono::seconds(1);

  std::optional<Resources> fit(const Offer& offer) const;
  void launch_on(const Offer& offer, const Resources& take);
  void poll_interrupts();
  void on_interrupt();
  void task_ended(const TaskStatus& status);
  void print_sandbox(const char* path, std::FILE* to, std::function<void()> next, int attempt = 1);
  void print_state(const TaskStatus& status);
  void done(int exit_code);
  std::string last_failure_text() const;

  RunOptions options_;
  std::shared_ptr<RunControl> control_;
  std::string task_id_;
  bool ever_subscribed_ = false;
  bool launched_ = false;
  bool ended_ = false;
  bool finished_ = false;
  int interrupts_seen_ = 0;
  bool output_unread_ = false;          // a sandbox read failed
  std::string last_subscribe_failure_;  // why, while never subscribed
  std::string agent_id_;
  Address agent_address_;
  TimerId offer_timer_ = 0;
};

}  // namespace tessera
