#pragma once
// JobsFramework: the jobs framework (docs/jobs.md), Metronome's job on
// Tessera. A framework actor on the scheduler library: it starts a run of a
// job when one of its cron schedules comes due (or when asked: "run now"),
// launches the run's task on an offer that fits, follows it to its end and
// keeps the job's history.
//
// A run: STARTING (waiting for an offer, or launched and not yet running),
// ACTIVE (its task runs), then SUCCESS (the task finished) or FAILED (it
// failed, was killed, was lost, was stopped, or never started within the
// job's maxLaunchDelay). Under restart policy ON_FAILURE a task that ends
// other than FINISHED is replaced by a new one, for as long as the run is
// within activeDeadlineSeconds of its start (for ever without one); the run
// stays ACTIVE (or STARTING) meanwhile and FAILED carries the last task's
// exit code and reason.
//
// Schedules: each enabled schedule has its next time (cron.hpp: time zones
// and daylight saving). One timer waits for the earliest; when a time comes
// the run starts, unless concurrencyPolicy is FORBID and a run of the job is
// still going (then the time is recorded as skipped). The last time handled
// is recorded with the run it started, so a framework that was down runs,
// on recovery, the latest time it missed if that time is still within
// startingDeadlineSeconds, and records the others as missed.
//
// Durability: jobs, runs and the framework id are records in a
// RegistryStore (jobs_store.hpp). A run's task is recorded before it is
// launched; a framework killed at any point and started again fails over to
// its framework id and reconciles every task it may have launched: tasks
// the master never saw are replaced (or fail the run), tasks it knows and
// the store does not are killed.
//
// The HTTP API (jobs_api.cpp, Metronome's /v1) runs on this actor: the edge
// posts each request to its inbox (JobsHandle). Threading: an actor.

#include "services/common/actor_handle.hpp"
#include "services/jobs/job_spec.hpp"
#include "services/jobs/jobs_store.hpp"
#include "services/registry/store_writer.hpp"
#include "services/scheduler/scheduler.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera::jobs {

class JobsFramework;
using JobsHandle = ActorHandle<JobsFramework>;

// The HTTP handler for /v1/...: mount on any http::Server.
http::Handler jobs_http_handler(std::shared_ptr<JobsHandle> handle);

struct JobsConfig {
  SchedulerConfig scheduler;  // master, detector; framework info is filled in
  std::string name = "tessera-jobs";
  std::string role = "*";
  Duration failover_timeout = std::chrono::hours(24 * 7);
  std::shared_ptr<RegistryStore> store;  // required
  JobsState loaded;                      // what load_state() read from store
  std::shared_ptr<JobsHandle> handle;    // may be null: no HTTP
  std::string http_address;              // shown in /v1/info
  // The wall clock cron reads; null: the system's. Tests and the
  // benchmark move it.
  std::function<std::chrono::system_clock::time_point()> wall;
  // Finished runs kept per job, successes and failures each.
  size_t history_max = 10;
  size_t jobs_max = 100'000;
  size_t active_runs_per_job_max = 1'000;  // "run now" beyond: 409
  // After a restart, every missed time of a schedule is looked at up to
  // this many; older ones are counted as missed without being looked at.
  size_t missed_scan_max = 100'000;
  Duration tick = std::chrono::seconds(1);
  // The schedule timer waits at most this long before reading the wall
  // clock again (so a clock step is noticed).
  Duration schedule_recheck = std::chrono::seconds(30);
  Duration refuse_idle = std::chrono::seconds(30);  // decline filter, nothing waits
  Duration refuse_busy = std::chrono::seconds(1);   // decline filter, runs wait
  Duration kill_retry = std::chrono::seconds(30);
  Duration store_retry = std::chrono::seconds(1);
  size_t inbox_max = 4096;
  size_t launches_per_offer_max = 64;
  uint64_t seed = 0;  // run ids; zero: random
};

// Attempts (tasks) a run's record keeps, the latest; older ones are counted.
inline constexpr size_t run_attempts_kept = 20;

// The largest job definition accepted (its record also holds its history).
inline constexpr size_t job_definition_bytes_max = 64 * 1024;

class JobsFramework : public Scheduler {
 public:
  JobsFramework(caf::actor_config& cfg, ActorInit init, JobsConfig config);

  // -- the API (jobs_api.cpp): runs on this actor -----------------------------
  void serve(const http::Request& request, const http::Responder& responder);

  struct Counters {
    uint64_t runs_started = 0;
    uint64_t runs_succeeded = 0;
    uint64_t runs_failed = 0;
    uint64_t runs_missed = 0;   // scheduled times past their starting deadline
    uint64_t runs_skipped = 0;  // FORBID while a run was going
    uint64_t tasks_launched = 0;
    uint64_t task_restarts = 0;
    uint64_t strangers_killed = 0;
    uint64_t bad_requests = 0;
  };
  const Counters& counters() const { return counters_; }

  // Lateness, ms, of the last lag_samples_max scheduled runs: from the
  // schedule's time to the run started (schedule) and to its task running
  // (launch). /v1/info shows their percentiles.
  static constexpr size_t lag_samples_max = 100'000;
  struct LagSamples {
    std::vector<double> ms;
    size_t next = 0;
    void add(double v) {
      if (ms.size() < lag_samples_max)
        ms.push_back(v);
      else
        ms[next++ % lag_samples_max] = v;
    }
  };

  enum class RunStatus { starting, active, success, failed };

  struct RunTask {
    std::string id;
    std::string status = "TASK_STAGING";  // the last TaskState, by name
    std::string agent_id;
    int64_t started_ms = 0;  // launched (wall clock, ms since the epoch)
    int64_t completed_ms = 0;
  };

  struct Run {
    std::string id;
    std::string job_id;
    RunStatus status = RunStatus::starting;
    std::string trigger;       // "manual", or "schedule:ID"
    int64_t scheduled_ms = 0;  // the schedule's time it runs for; 0: manual
    int64_t created_ms = 0;
    int64_t completed_ms = 0;
    std::vector<RunTask> tasks;  // the last run_attempts_kept attempts, the current last
    uint64_t attempts = 0;       // tasks launched for it, ever
    bool waiting = true;         // a task is to be launched on the next offer that fits
    bool launched = false;       // the current task went out (after its record)
    bool stopping = false;       // stopped by an operator: ends FAILED
    std::string reason;          // why it failed
    std::optional<int> exit_code;
    TimePoint launch_deadline{};             // not running by then: FAILED
    std::optional<TimePoint> restart_until;  // none: restarts for ever
    TimePoint kill_sent{};
  };

  struct ScheduleState {
    std::optional<SysTime> next;  // unset: disabled, or it never matches
    std::optional<SysTime> last;  // the last time handled (ran, skipped or missed)
    uint64_t missed = 0;
    std::optional<SysTime> last_missed;
    bool disabled = false;  // as last planned: enabling it again starts from then
  };

  struct FinishedRun {
    std::string id;
    int64_t created_ms = 0, finished_ms = 0;
    std::vector<std::string> tasks;
    std::string reason;  // failures: why
    std::optional<int> exit_code;
  };

  struct History {
    uint64_t successes = 0, failures = 0;
    int64_t last_success_ms = 0, last_failure_ms = 0;
    std::deque<FinishedRun> succeeded, failed;  // newest first, history_max each
  };

  struct Job {
    JobSpec spec;
    nlohmann::json definition;  // to_json(spec)
    int64_t created_ms = 0;
    std::map<std::string, ScheduleState> schedules;  // by schedule id
    History history;
    std::set<std::string> active;  // run ids
    bool deleting = false;         // its runs are being stopped; then it goes
  };

 protected:
  void started() override;
  void subscribed(const std::string& framework_id) override;
  void disconnected(const caf::error& why) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;
  void on_stopping() override;

 private:
  friend class JobsApi;

  // -- runs (jobs_framework.cpp) ----------------------------------------------
  void load(const JobsState& state);
  void on_tick();
  SysTime wall() const;  // to the second, as cron reads it
  std::chrono::system_clock::time_point wall_precise() const;
  std::string new_run_id();
  Run& start_run(Job& job, std::string trigger, int64_t scheduled_ms);
  void task_ended(Run& run, const TaskStatus& s);
  void finish_run(Run& run, RunStatus status, std::string reason);
  void stop_run(Run& run, const std::string& why);
  void kill_current(Run& run);
  void remove_job(const std::string& job_id);
  bool waiting() const;

  // -- schedules (jobs_schedules.cpp) -----------------------------------------
  // Computes every schedule's next time from its last (or from now).
  void plan(const std::string& job_id, Job& job);
  // On start: runs or records what came due while the framework was away.
  void catch_up(const std::string& job_id, Job& job);
  void arm_schedule_timer();
  void on_schedule_timer(uint64_t generation);
  // The times of schedule after `after` up to t: starts the run of the
  // latest within its starting deadline (unless FORBID or too many runs
  // skip it) and counts the others missed; when names the case in logs.
  // False: none was due.
  bool handle_due(const std::string& job_id, Job& job, const JobSchedule& schedule, SysTime after,
                  SysTime t, const char* when);
  // Persists the runs handle_due started and their jobs' records, together.
  void record_started();

  // -- offers (jobs_framework.cpp) --------------------------------------------
  TaskSpec task_spec(const Run& run, const Job& job, const Resources& resources) const;
  void launch_recorded(std::string offer_id, std::vector<std::string> run_ids,
                       std::vector<TaskSpec> tasks);

  // -- records ----------------------------------------------------------------
  void persist(std::vector<RegistryChange> changes, std::function<void()> then = {}) {
    writer_->persist(std::move(changes), std::move(then));
  }
  void after_durable(std::function<void()> fn) { writer_->after_durable(std::move(fn)); }
  RegistryChange job_record(const std::string& job_id) const;
  RegistryChange run_record(const Run& run) const;

  JobsConfig config_;
  std::mt19937_64 rng_;
  Counters counters_;
  std::map<std::string, Job> jobs_;                                     // by id
  std::map<std::string, Run> runs_;                                     // unfinished, by run id
  std::unordered_map<std::string, std::string> task_run_;               // task id -> run id
  std::multimap<SysTime, std::pair<std::string, std::string>> agenda_;  // -> job, schedule
  uint64_t schedule_generation_ = 0;
  std::optional<SysTime> armed_for_;
  LagSamples schedule_lag_, launch_lag_;
  std::vector<std::string> started_;  // runs handle_due() started; recorded after the batch
  std::vector<std::string> touched_;  // jobs whose schedules moved; recorded with them
  bool was_waiting_ = false;
  std::unique_ptr<StoreWriter> writer_;
  std::shared_ptr<Inbox> inbox_;
};

const char* to_string(JobsFramework::RunStatus s);
std::string iso_time(int64_t ms);
int64_t to_ms(SysTime t);

}  // namespace tessera::jobs
