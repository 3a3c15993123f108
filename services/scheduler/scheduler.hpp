#pragma once
// tessera::Scheduler: the library a framework is written with (Mesos's v1
// scheduler library, as a base class). A framework derives from it, overrides
// the callbacks it cares about and makes calls:
//
//   class Hello : public tessera::Scheduler {
//    public:
//     Hello(caf::actor_config& cfg, tessera::ActorInit init, tessera::SchedulerConfig c)
//         : Scheduler(cfg, std::move(init), std::move(c)) {}
//    protected:
//     void offers(const std::vector<tessera::Offer>& offers) override {
//       accept({offers[0].id}, {task}, std::chrono::seconds(5));
//     }
//     void update(const tessera::TaskStatus& s) override { ... }
//   };
//   node->spawn<Hello>("hello", config);
//
// Protocol: capnp/scheduler.capnp. The library subscribes when the actor
// starts, keeps the framework id the master assigns, and puts it on every
// call. It watches the master (connection loss, and heartbeats: missing
// heartbeats_missed_max of them in a row counts as a loss); on a loss it calls
// disconnected() and resubscribes with the same framework id, after a delay
// that doubles from resubscribe_backoff_min to resubscribe_backoff_max, each
// delay jittered down by up to a half (seeded rng). A failed attempt
// (unreachable master, no answer within subscribe_timeout) calls
// subscribe_failed() and retries the same way. An error event from the master
// (the framework was removed) or teardown() ends all of it for good.
//
// Calls while not subscribed fail, they are never queued: each call returns
// a caf::error, empty when the call was sent, else
//   Errc::peer_lost         not subscribed right now (connecting or reconnecting);
//   Errc::stopped           after teardown() or the master's error event;
//   Errc::invalid_argument  the call itself is wrong (unknown offer id, a task
//                           without a command, ...); nothing was sent.
// The first refusal after each disconnection is logged at warn level. After
// subscribed() runs again the framework should reconcile() and re-issue what
// still matters: offers from before a disconnection are void.
//
// Updates with a uuid are acknowledged by the library right after update()
// returns (auto_acknowledge, the default); a framework that turns it off calls
// acknowledge(status) itself once it has acted on the update.
//
// Exactly once: an agent that restarts from its checkpoints may resend an
// update the framework already acknowledged (the acknowledgement was lost
// with the agent). The library remembers the uuids of the last
// acknowledged_uuids_count_max updates it acknowledged; an update carrying
// one of them is acknowledged again, so the agent stops resending, counted
// (duplicate_updates()) and logged at debug level, and update() is not
// called. The window lives as long as this actor: a framework process that
// fails over starts with an empty one.
//
// One terminal state per launch: once update() was called with a terminal
// state for a task (not an answer to reconciliation, which may come from a
// master that does not know the task yet), later updates of that task
// (until the framework launches the id again) are acknowledged and not
// delivered, except terminal answers to reconciliation; one saying the
// task is alive makes the library kill it (updates_after_end()). A master that restarted
// without a registry does not know it told the framework TASK_LOST, and
// would otherwise forward the task's later TASK_FINISHED.
//
// Deployment: a framework uses only addresses, so it runs unchanged in the
// master's process or in its own, on any node that can reach the master.
// Threading: an actor; callbacks and calls run on its thread, one at a time.
// Callbacks are never made from inside a call.

#include "runtime/actor.hpp"
#include "runtime/backoff.hpp"
#include "services/election/detector.hpp"
#include "services/scheduler/types.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/scheduler.capnp.h>

#include <deque>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tessera {

struct SchedulerConfig {
  Address master;  // the master actor, e.g. master@10.0.0.1:5050
  // Follows the leading master (`--master zk://...`, election/detector.hpp):
  // on a change of leader the library resubscribes to the new one with its
  // framework id. Null: `master` is the master.
  std::shared_ptr<MasterDetector> detector;
  FrameworkInfo framework;
  std::vector<std::string> suppressed_roles;  // start with no offers for these
  bool auto_acknowledge = true;
  // A subscribe unanswered this long is a failed attempt.
  Duration subscribe_timeout = std::chrono::seconds(5);
  Duration resubscribe_backoff_min = std::chrono::milliseconds(100);
  Duration resubscribe_backoff_max = std::chrono::seconds(10);
  // Heartbeats missed in a row before the master counts as lost.
  uint32_t heartbeats_missed_max = 5;
  Duration sandbox_read_timeout = std::chrono::seconds(10);
  uint64_t seed = 0;  // the backoff jitter's rng; zero: from std::random_device
};

// Errc::invalid_argument naming the bad field, or none.
caf::error validate(const SchedulerConfig& config);

class Scheduler : public Actor {
 public:
  // An invalid config (see validate()) is reported through error() when the
  // actor starts; it then never subscribes.
  Scheduler(caf::actor_config& cfg, ActorInit init, SchedulerConfig config);

  const SchedulerConfig& config() const { return config_; }
  // Empty until the first subscribed event (or the configured failover id).
  const std::string& framework_id() const { return framework_id_; }
  bool connected() const { return state_ == State::subscribed; }

  // Largest chunk read_sandbox_file asks for (the agent's own cap).
  static constexpr uint64_t sandbox_chunk_bytes_max = uint64_t{1} << 20;
  // How many acknowledged update uuids are remembered to drop duplicates
  // (about 2 MiB at 16-byte uuids plus the set's overhead).
  static constexpr size_t acknowledged_uuids_count_max = 65536;

  // Updates dropped as duplicates of acknowledged ones (and acknowledged again).
  uint64_t duplicate_updates() const { return duplicate_updates_; }
  // Heartbeats that showed a SUPPRESS or REVIVE lost on the way (resent).
  uint64_t calls_resent() const { return calls_resent_; }
  // Updates of tasks already reported ended (not delivered; see above).
  uint64_t updates_after_end() const { return updates_after_end_; }
  static constexpr size_t ended_tasks_count_max = 65536;

 protected:
  // -- callbacks: override what the framework needs ------------------------
  // The actor runs; called once, before the first subscribe.
  virtual void started() {}
  // Subscribed (again, after a reconnection): calls can be made.
  virtual void subscribed(const std::string& framework_id);
  // A subscribe attempt failed (master unreachable, no answer); the library
  // retries after the backoff. The default logs a warning.
  virtual void subscribe_failed(const caf::error& why);
  // The master was lost while subscribed; the library resubscribes.
  virtual void disconnected(const caf::error& why);
  // New offers. The default declines them all (with the default filter).
  virtual void offers(const std::vector<Offer>& offers);
  virtual void rescinded(const std::string& offer_id);
  // A task's state changed, or a reconciliation answer.
  virtual void update(const TaskStatus& status);
  // Bytes one of the framework's executors sent.
  virtual void message(const std::string& agent_id, const std::string& executor_id,
                       const std::string& data);
  // An agent was lost (executor_id empty), or an executor exited (status is
  // its wait status).
  virtual void failure(const std::string& agent_id, const std::string& executor_id, int status);
  // The master removed the framework, or the config is invalid. Final: the
  // library makes no more calls; the framework should stop().
  virtual void error(const std::string& message);
  // A peer other than the master that this actor watch()es was lost.
  virtual void lost(const Address& peer, const caf::error& why);

  // -- calls ----------------------------------------------------------------
  // Launches tasks on the offers (all of one agent); what is left over is not
  // offered again to this framework for `refuse`.
  caf::error accept(const std::vector<std::string>& offer_ids, const std::vector<TaskSpec>& tasks,
                    Duration refuse = std::chrono::seconds(5));
  // Launches tasks as one group (LAUNCH_GROUP) under one executor, the
  // agent's default executor: the master launches all of them or none (each
  // then gets TASK_ERROR with reason TASK_GROUP_INVALID and the master's
  // reason). Every task needs a command; the group's resources are the sum
  // of the tasks'. executor_id empty: the master names it
  // "group-<first task id>".
  caf::error launch_group(const std::vector<std::string>& offer_ids,
                          const std::vector<TaskSpec>& tasks, const std::string& executor_id = {},
                          Duration refuse = std::chrono::seconds(5));
  caf::error decline(const std::vector<std::string>& offer_ids,
                     Duration refuse = std::chrono::seconds(5));
  // Clears decline filters and unsuppresses roles (empty: all its roles).
  caf::error revive(const std::vector<std::string>& roles = {});
  // No more offers for the roles (empty: all its roles) until revive().
  // Kept across resubscriptions.
  caf::error suppress(const std::vector<std::string>& roles = {});
  // The end arrives as an update. grace overrides the task's kill policy.
  caf::error kill(const std::string& task_id, const std::string& agent_id = {},
                  std::optional<Duration> grace = std::nullopt);
  caf::error acknowledge(const TaskStatus& status);
  // Latest states arrive as updates (reason REASON_RECONCILIATION); no tasks:
  // all the master knows of ("implicit").
  caf::error reconcile(const std::vector<TaskRef>& tasks = {});
  // Ends the framework: the master kills its tasks and forgets it.
  caf::error teardown();
  caf::error shutdown_executor(const std::string& executor_id, const std::string& agent_id);
  caf::error send_message(const std::string& agent_id, const std::string& executor_id,
                          const std::string& data);

  // Reads [offset, offset + length_max) of a file in a task's sandbox ("stdout",
  // "stderr", ...) from the agent (an offer's agent_address). fn gets the
  // bytes (shorter at the end of the file) and the file's size, or an error.
  // Works while disconnected from the master (it talks to the agent); needs
  // a framework id. fn runs on this actor, never inside the call.
  using SandboxFn = std::function<void(expected<SandboxData>)>;
  void read_sandbox_file(const Address& agent, const std::string& task_id, const std::string& path,
                         uint64_t offset, uint64_t length_max, SandboxFn fn);
  // Reads the file from the start in chunks until its end, at most bytes_max
  // bytes (SandboxData::file_size tells whether there was more).
  void read_whole_sandbox_file(const Address& agent, const std::string& task_id,
                               const std::string& path, uint64_t bytes_max, SandboxFn fn);

 private:
  enum class State {
    subscribing,   // a subscribe is out
    subscribed,    // calls go out
    disconnected,  // waiting for the backoff to resubscribe
    closed,        // torn down, removed by the master, or misconfigured
  };
  template <class Fill>
  caf::error call(const char* what, Fill&& fill);
  // The agent of offer_ids if accept may use them with tasks, else an error.
  expected<std::string> check_accept(const char* what, const std::vector<std::string>& offer_ids,
                                     const std::vector<TaskSpec>& tasks, Duration refuse);
  void remember_acknowledged(const std::string& uuid);
  caf::error ready(const char* what);

  void on_start() final;
  using Actor::on_lost;  // the library owns loss reports; frameworks get lost()
  void subscribe_now();
  void on_event(const Received<wire::SchedulerEvent>& m);
  void on_subscribed(wire::SchedulerEvent::Subscribed::Reader s);
  void on_heartbeat(wire::SchedulerEvent::Heartbeat::Reader h);
  void remember_ended(const std::string& task_id);
  void relaunching(const std::vector<TaskSpec>& tasks);
  void on_offers(capnp::List<wire::Offer>::Reader list);
  void on_update(wire::TaskStatus::Reader s);
  void on_peer_lost(const Address& peer, const caf::error& why);
  void attempt_failed(const caf::error& why);
  void master_lost(const caf::error& why);
  void close();
  void retry_later();
  void check_heartbeats();
  bool is_master(const Address& a) const;
  void follow_leader();
  void on_not_leader(const Received<wire::NotLeader>& m);
  void read_chunks(const Address& agent, const std::string& task_id, const std::string& path,
                   uint64_t bytes_max, SandboxData so_far, SandboxFn fn);

  SchedulerConfig config_;
  Address master_;  // the master subscribed to: config_.master, or the detector's leader
  State state_ = State::disconnected;
  std::string framework_id_;
  // Sent with every subscribe of this instance: the master matches a
  // retried first subscribe to the framework the first one made.
  std::string subscription_id_;
  std::set<std::string> suppressed_;                     // roles, resent on every subscribe
  std::unordered_map<std::string, std::string> offers_;  // offer id -> agent id
  TimerId subscribe_timer_ = 0;
  TimerId retry_timer_ = 0;
  TimerId heartbeat_timer_ = 0;
  Duration heartbeat_interval_ = Duration::zero();
  TimePoint last_event_{};
  Backoff backoff_;
  std::mt19937_64 rng_;
  bool refusal_logged_ = false;
  // Uuids this library acknowledged, oldest first, and the same as a set;
  // at most acknowledged_uuids_count_max.
  std::deque<std::string> acknowledged_order_;
  std::unordered_set<std::string> acknowledged_;
  uint64_t duplicate_updates_ = 0;
  uint64_t calls_resent_ = 0;
  uint64_t updates_after_end_ = 0;
  // Task ids reported ended (a terminal update delivered), oldest first;
  // at most ended_tasks_count_max.
  std::deque<std::string> ended_order_;
  std::unordered_set<std::string> ended_;
  bool stranger_logged_ = false;
};

}  // namespace tessera
