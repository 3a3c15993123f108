#pragma once
// AppsFramework: the apps framework (docs/apps.md), Marathon's job on
// Tessera. A framework actor on the scheduler library: it keeps every app's
// instances running, launches them on offers as placement allows, and moves
// each app from one version to the next through deployments.
//
// Control loop. Every change (an update, a call, a timer) marks its app
// dirty; converge() then compares what runs with what the app's target
// version wants and decides: how many instances to launch (to_launch, which
// offers then consume), and which to kill. A deployment is that loop under
// its upgrade strategy: new instances (launched with the target config)
// count once healthy; old ones are killed only while the healthy count stays
// at or above minimumHealthCapacity × instances, and no more than
// maximumOverCapacity × instances run beyond the target. A canary step
// launches canaryInstances new ones and waits for promote() or abort(). A
// deployment not done by its deadline fails and rolls back to the app's last
// version that was fully healthy.
//
// Keeping instances: a task that fails (TASK_FAILED, TASK_ERROR) is replaced
// after the app's backoff (backoffSeconds × backoffFactor^(failures-1), at
// most maxLaunchDelaySeconds; reset by a new version, by reset_delay(), or
// by an instance that stays up backoff_reset_after). Unhealthy tasks are
// killed by their executor (health checks) and replaced like failed ones.
// An unreachable task is replaced after inactiveAfterSeconds and forgotten
// (killed should it come back) after expungeAfterSeconds.
//
// Durability: apps, versions, instances, deployments and the framework id
// are records in a RegistryStore (apps_store.hpp). An instance is recorded
// before its task is launched, so a framework killed at any point and
// started again (it fails over to its framework id) reconciles every task
// it may have launched: the ones the master does not know are replaced,
// the ones it knows and the store does not are killed. No loss, no
// duplicate.
//
// The HTTP API (apps_api.cpp) runs on this actor: the edge posts each
// request to its inbox (AppsHttp). Threading: an actor; all state is its own.

#include "services/apps/app_spec.hpp"
#include "services/apps/apps_store.hpp"
#include "services/apps/constraints.hpp"
#include "services/apps/placement.hpp"
#include "services/common/actor_handle.hpp"
#include "services/http/server.hpp"
#include "services/registry/store.hpp"
#include "services/registry/store_writer.hpp"
#include "services/scheduler/scheduler.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera::apps {

class AppsFramework;

// Between the HTTP edge's thread and the framework actor: the edge posts
// requests here; the actor attaches when it starts.
using AppsHandle = ActorHandle<AppsFramework>;

// The HTTP handler for /v2/...: mount on any http::Server (the master's
// edge, or the framework's own).
http::Handler apps_http_handler(std::shared_ptr<AppsHandle> handle);

struct AppsConfig {
  SchedulerConfig scheduler;  // master, detector; framework info is filled in
  std::string name = "tessera-apps";
  std::string role = "*";  // the framework's role; apps default to it
  // How long the master keeps the apps' tasks while this framework is away
  // (Marathon's default: a week).
  Duration failover_timeout = std::chrono::hours(24 * 7);
  std::shared_ptr<RegistryStore> store;  // required
  AppsState loaded;                      // what load_state() read from store
  std::shared_ptr<AppsHandle> handle;    // may be null: no HTTP
  std::string http_address;              // shown in /v2/info
  Duration tick = std::chrono::seconds(1);
  Duration queue_window = std::chrono::seconds(60);
  Duration agents_seen_window = std::chrono::seconds(300);
  Duration refuse_idle = std::chrono::seconds(30);  // decline filter, nothing waiting
  Duration refuse_busy = std::chrono::seconds(1);   // decline filter, instances waiting
  Duration backoff_reset_after = std::chrono::seconds(60);
  Duration kill_retry = std::chrono::seconds(30);
  Duration store_retry = std::chrono::seconds(1);
  // After a restart, kill and launch decisions wait this long at most for
  // the master to confirm the instances the store recorded.
  Duration reconcile_wait = std::chrono::seconds(30);
  size_t finished_deployments_max = 100;
  size_t versions_max = 20;
  size_t event_streams_max = 1000;
  size_t inbox_max = 4096;
  size_t launches_per_offer_max = 64;
  uint64_t seed = 0;  // task ids; zero: random
};

// The largest app definition accepted (its record keeps several versions,
// and a record is at most RegistryStore::value_bytes_max).
inline constexpr size_t app_definition_bytes_max = 64 * 1024;

class AppsFramework : public Scheduler {
 public:
  AppsFramework(caf::actor_config& cfg, ActorInit init, AppsConfig config);

  // -- the API (apps_api.cpp): runs on this actor -----------------------------
  void serve(const http::Request& request, const http::Responder& responder);

  // Counters, for tests and /metrics.
  struct Counters {
    uint64_t launched = 0;
    uint64_t failed = 0;  // tasks that failed or errored (backoff)
    uint64_t killed = 0;  // kills sent
    uint64_t deployments_succeeded = 0;
    uint64_t deployments_failed = 0;
    uint64_t rollbacks = 0;
    uint64_t strangers_killed = 0;  // tasks the master knew and the store did not
    uint64_t bad_requests = 0;
  };

  // -- what the loop works on -------------------------------------------------
  struct Version {
    std::string version;         // ISO time of the change
    std::string config_version;  // the last change that restarts instances
    AppSpec spec;
  };
  using VersionPtr = std::shared_ptr<const Version>;

  struct Instance {
    std::string task_id;
    std::string app_id;
    VersionPtr version;
    std::string agent_id;
    std::string host;
    std::vector<uint32_t> ports;
    TaskState state = TaskState::STAGING;
    std::optional<bool> healthy;
    bool launched = false;  // the launch went out (after its record was written)
    bool killing = false;
    // Loaded from the store and not yet confirmed by the master: no kill
    // decision counts on what it was before the framework restarted.
    bool known = true;
    // Of an app whose record could not be read: never killed for it, only
    // forgotten once it ends.
    bool keep = false;
    int64_t staged_ms = 0;   // wall clock, ms since the epoch
    int64_t started_ms = 0;  // first RUNNING; 0: not yet
    std::optional<TimePoint> running_since;
    std::optional<TimePoint> unreachable_since;
    TimePoint kill_sent{};
  };

  enum class DeployState { running, canary, success, failed, canceled, rolled_back };
  enum class DeployKind { start, scale, upgrade, restart, stop, rollback };
  struct Deployment {
    std::string id;
    std::string app_id;
    DeployKind kind = DeployKind::start;
    DeployState state = DeployState::running;
    std::string reason;
    VersionPtr from;  // null: none (a new app)
    VersionPtr to;
    uint32_t canary = 0;  // 0: no canary step (or promoted)
    bool auto_rollback = true;
    TimePoint deadline{};
    int64_t started_ms = 0;
    int64_t finished_ms = 0;
    // Progress, as of the last converge.
    uint32_t new_count = 0, new_healthy = 0, old_count = 0, old_healthy = 0;
    uint32_t min_healthy = 0, max_total = 0;
    bool finished() const { return state != DeployState::running && state != DeployState::canary; }
  };

  // Offers seen while instances waited, per reason: counted in buckets of
  // queue_window / buckets, so the queue shows the last window.
  struct QueueStats {
    static constexpr size_t buckets = 6;
    struct Bucket {
      int64_t start_ms = 0;
      uint64_t seen = 0, used = 0;
      std::map<std::string, uint64_t> declined;  // "cpus", "constraint", "hostname:UNIQUE", ...
    };
    std::array<Bucket, buckets> ring;
    std::optional<Offer> largest;  // by cpus, then mem, of the last window
    int64_t largest_ms = 0;
    int64_t last_unused_ms = 0, last_used_ms = 0;
    int64_t waiting_since_ms = 0;
  };

  struct TaskFailure {
    std::string task_id, host, message, state, version;
    int64_t at_ms = 0;
  };

  struct App {
    std::vector<VersionPtr> versions;  // newest first
    VersionPtr target;
    VersionPtr last_good;  // the last version that ran fully healthy
    std::vector<ConstraintCheck> checks;
    std::set<std::string> tasks;  // its instances' task ids
    uint32_t to_launch = 0;       // decided by converge(), taken by offers
    uint32_t failures = 0;        // since the backoff was last reset
    TimePoint last_failure_at{};  // an instance up since then resets the backoff
    Duration delay{0};
    TimePoint not_before{};
    std::optional<TaskFailure> last_failure;
    QueueStats stats;
    std::string deployment;  // the running deployment's id, or empty
    bool deleting = false;
    int64_t last_scaling_ms = 0, last_config_ms = 0;
  };

  const Counters& counters() const { return counters_; }

 protected:
  void started() override;
  void subscribed(const std::string& framework_id) override;
  void disconnected(const caf::error& why) override;
  void offers(const std::vector<Offer>& offers) override;
  void update(const TaskStatus& status) override;
  void error(const std::string& message) override;
  void on_stopping() override;

 private:
  friend class AppsApi;

  // -- the loop (apps_framework.cpp) ------------------------------------------
  void load(const AppsState& state);
  void on_tick();
  void mark(const std::string& app_id);
  void converge_marked();
  void converge(const std::string& app_id, App& app);
  void converge_steady(App& app, std::vector<Instance*>& active);
  void converge_deployment(App& app, Deployment& d, std::vector<Instance*>& active);
  void finish_deployment(Deployment& d, DeployState state, const std::string& reason);
  void deadline_passed(Deployment& d);
  bool healthy(const Instance& i) const;
  bool is_new(const App& app, const Instance& i) const;
  void kill_instance(Instance& i, const std::string& why);
  // The instances to give up first: not running, unhealthy, then by killSelection.
  void order_for_kill(const App& app, std::vector<Instance*>& list) const;
  void task_ended(Instance& i, const TaskStatus& s);
  void forget(std::string task_id);
  void backoff(App& app, const Instance& i, const TaskStatus& s);
  void reset_backoff(App& app);
  bool wanting() const;

  // -- offers (apps_offers.cpp) -----------------------------------------------
  void place(const Offer& offer, std::vector<TaskSpec>& tasks, std::vector<Instance*>& made);
  void count_offer(App& app, const Offer& offer, const FitResult& r);
  std::vector<std::vector<std::optional<std::string>>> placed_values(const App& app) const;
  Instance& new_instance(const std::string& app_id, App& app, const Offer& offer,
                         const Placed& placed);
  TaskSpec task_spec(const App& app, const Instance& i, const Placed& placed) const;
  void launch_recorded(std::string offer_id, std::vector<std::string> task_ids,
                       std::vector<TaskSpec> tasks);
  void remember_agent(const Offer& offer);

  // -- changes (apps_changes.cpp): what the API calls -------------------------
  struct Change {
    int status = 200;
    nlohmann::json body;
  };
  Change put_app(const AppSpec& spec, bool force, bool restart, bool created_ok);
  Change delete_app(const std::string& id, bool force);
  Change restart_app(const std::string& id, bool force);
  Change rollback_app(const std::string& id);
  Change promote(const std::string& id);
  Change abort_canary(const std::string& id);
  Change cancel_deployment(const std::string& deployment_id, bool force);
  Change kill_task(const std::string& app_id, const std::string& task_id, bool scale);
  void reset_delay(App& app);
  Deployment& start_deployment(const std::string& app_id, App& app, DeployKind kind,
                               VersionPtr from, VersionPtr to);
  std::optional<Change> locked(const App& app, bool force);
  VersionPtr make_version(const AppSpec& spec, const App* app, bool restart);
  // Drops the oldest versions no one uses (target, last good, a deployment's,
  // an instance's) beyond versions_max, and while the app's record is large.
  void trim_versions(const std::string& app_id, App& app);

  // -- durability (apps_framework.cpp) ----------------------------------------
  void persist(std::vector<RegistryChange> changes, std::function<void()> then = {}) {
    writer_->persist(std::move(changes), std::move(then));
  }
  // fn runs once everything persisted so far is durable (soon if it is).
  void after_durable(std::function<void()> fn) { writer_->after_durable(std::move(fn)); }
  RegistryChange app_record(const std::string& app_id) const;
  RegistryChange instance_record(const Instance& i) const;
  RegistryChange deployment_record(const Deployment& d) const;

  // -- events -----------------------------------------------------------------
  void publish(const std::string& type, nlohmann::json event);
  void open_events(const http::Request& request, const http::Responder& responder);

  AppsConfig config_;
  std::mt19937_64 rng_;
  Counters counters_;
  std::map<std::string, App> apps_;                  // by id, "/shop/web"
  std::unordered_map<std::string, Instance> tasks_;  // by task id
  std::map<std::string, Deployment> deployments_;    // running ones, by id
  std::deque<Deployment> finished_;                  // the last ones, newest last
  struct AgentSeen {
    std::string hostname;
    std::vector<Attribute> attributes;
    std::optional<Offer> last_offer;
    TimePoint seen{};
  };
  std::unordered_map<std::string, AgentSeen> agents_;
  std::set<std::string> marked_;
  bool converge_queued_ = false;
  TimePoint subscribed_at_{};  // the last subscription's reconciliation went out then
  bool was_wanting_ = false;
  size_t rotation_ = 0;  // which waiting app places first in the next batch
  // Store writes: one commit in flight; later changes wait and go together.
  // Lost (another writer took the store): stop serving.
  std::unique_ptr<StoreWriter> writer_;
  struct EventStream {
    std::shared_ptr<http::Stream> stream;
    std::set<std::string> types;  // empty: all
  };
  std::vector<EventStream> streams_;
  std::shared_ptr<Inbox> inbox_;
};

const char* to_string(AppsFramework::DeployState s);
const char* to_string(AppsFramework::DeployKind k);

}  // namespace tessera::apps
