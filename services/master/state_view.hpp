#pragma once
// The state view: the operator's side of the master. It keeps its own copy of
// the cluster, built from the master's event stream (capnp/operator.capnp
// MasterEventBatch), and serves every read of the operator API, every
// SUBSCRIBE stream and the metrics from that copy. A flood of reads costs the
// view's thread, never the master's: the master only ever sends it batches of
// what changed (master_events.cpp), and nothing it asks blocks an allocation
// or an offer. Writes (quota, weights, drain, kill, teardown) go on to the
// master as OperatorCalls; their answer comes back here.
//
// The HTTP edge (operator_api.hpp) hands requests to this actor through an
// Inbox (runtime/inbox.hpp); answers go back through the request's
// http::Responder, which is safe from any thread.
//
// Consistency: the view follows one master run at a time. It subscribes
// (again every resubscribe_interval until a snapshot arrives), applies the
// snapshot, then each batch in sequence. A gap in the sequence, or the
// master's loss, drops the copy, closes every SUBSCRIBE stream (clients
// subscribe again and get a whole snapshot), and subscribes anew; until a
// snapshot is back, reads answer 503.
//
// Bounds: completed tasks kept (completed_tasks_max), statuses per task
// (statuses_per_task_max), SUBSCRIBE streams (subscribers_max; each one's
// unsent bytes are bounded by the HTTP server, which evicts a slow one).

#include "runtime/actor.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "services/http/server.hpp"
#include "services/security/http_guard.hpp"

#include <capnp/operator.capnp.h>
#include <nlohmann/json.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tessera {

struct StateViewConfig {
  Address master;     // whose events it follows
  Address allocator;  // asked for its cycle metrics
  size_t completed_tasks_max = 1000;
  size_t completed_frameworks_max = 100;
  size_t statuses_per_task_max = 16;
  size_t subscribers_max = 10'000;
  size_t inbox_capacity = 10'000;  // requests waiting for the view's thread
  Duration heartbeat_interval = std::chrono::seconds(15);
  Duration resubscribe_interval = std::chrono::seconds(1);
  Duration master_call_timeout = std::chrono::seconds(30);
  // What GET_FLAGS and GET_VERSION answer.
  std::vector<std::pair<std::string, std::string>> flags;
  std::string version;
  // Where the leading master is when this node's master is not it (HA
  // standby): its actor address and its HTTP API's HOST:PORT, each empty
  // when unknown; both empty when this one leads or there is no election.
  struct Leader {
    std::string address;
    std::string http;
  };
  std::function<Leader()> leader;
  // The scheme of the masters' HTTP APIs, for a standby's redirect: "https"
  // when they serve TLS (every master of a deployment shares its TLS).
  std::string http_scheme = "http";
  // More gauges and counters for GET /metrics (the HTTP edge's own).
  std::function<std::vector<std::pair<std::string, double>>()> extra_metrics;
};

// Who makes an operator call (issue #14): the principal the HTTP edge
// authenticated ("" when it authenticates nobody) and the ACLs to check it
// against (null: everything allowed). Writes need their action (quota:
// update_quotas, weights: update_weights, teardown: teardown_frameworks of
// the framework's principal, kill: kill_tasks of the task's role,
// reserve/unreserve: of each role reserved, drain: drain_agents,
// deactivate/reactivate: deactivate_agents); reads of agents, roles, flags,
// metrics and maintenance need view_cluster; frameworks, tasks and
// executors are filtered by view_frameworks and view_tasks per role.
struct ViewCaller {
  std::string principal;
  std::shared_ptr<const security::HttpGuard> guard;  // null: everything allowed
};

// How the HTTP edge reaches a StateView: filled in by the actor as it is
// made, and valid (post() refuses once the actor is gone) for the edge's life.
struct StateViewHandle {
  std::shared_ptr<Inbox> inbox;
  // Only for items posted to inbox: they run on the view's thread while it
  // lives (an exited actor's inbox drops them unrun).
  class StateView* view = nullptr;
};

class StateView : public Actor {
 public:
  StateView(caf::actor_config& cfg, ActorInit init, StateViewConfig config,
            std::shared_ptr<StateViewHandle> handle);

  // -- served on this actor's thread (posted by the HTTP edge) --------------
  // POST /api/v1 with a parsed call.
  void api_call(const nlohmann::json& call, const http::Responder& responder,
                const ViewCaller& caller = {});
  // GET /metrics (Prometheus text) and GET /metrics/snapshot (Mesos keys).
  // as_call: GET_METRICS's answer ({"type", "get_metrics": {"metrics"}}).
  void metrics(bool prometheus, const http::Responder& responder, bool as_call = false);
  // The JSON body of GET_STATE, for the bench and the UI's first paint.
  std::string state_json();
  bool ready() const { return ready_; }

 protected:
  void on_start() override;
  void on_stopping() override;

 private:
  struct Status {
    wire::TaskState state = wire::TaskState::STAGING;
    std::string reason;
    std::string message;
    int64_t timestamp_ns = 0;
    int8_t healthy = -1;
    int32_t exit_code = -1;
    int32_t term_signal = 0;
  };
  struct TaskEntry {
    std::string framework, agent, id, name, role, executor;
    Resources resources;
    wire::TaskState state = wire::TaskState::STAGING;
    std::deque<Status> statuses;
    std::string json;  // rendered once per change
  };
  struct AgentEntry {
    std::string id, address, hostname, http_address;
    Resources total, used, offered;
    Resources reserved_dynamic;  // the part of total operators reserved
    std::vector<Attribute> attributes;
    wire::AgentViewState state = wire::AgentViewState::REGISTERED;
    bool deactivated = false;
    wire::DrainState drain = wire::DrainState::NONE;
    int64_t registered_at_ns = 0;
    // Its JSON up to what offers and tasks change, rendered once per change
    // of the agent; append_agent finishes it per read.
    std::string json_head;
  };
  struct FrameworkEntry {
    std::string id, name, user, principal, address;
    std::vector<std::string> roles;
    std::vector<std::string> capabilities;
    std::vector<std::string> suppressed_roles;
    double failover_timeout_s = 0;
    bool connected = false;
    int64_t registered_at_ns = 0;
    Resources used, offered;
  };
  struct OfferEntry {
    std::string framework, agent, role;
    Resources resources;
  };
  struct RoleEntry {
    double weight = 1;
    Resources quota;
  };
  using TaskKey = std::pair<std::string, std::string>;  // framework, task
  struct Filter {
    std::set<std::string> frameworks;
    std::set<std::string> roles;
    // What the caller may see (ACLs): null predicates see everything.
    std::function<bool(const std::string& role)> may_view_framework_role;
    std::function<bool(const std::string& role)> may_view_task_role;
    bool may_view_cluster = true;  // agents, roles
    bool empty() const {
      return frameworks.empty() && roles.empty() && !may_view_framework_role &&
             !may_view_task_role && may_view_cluster;
    }
    bool passes_task(const TaskEntry& t) const;
    bool passes_framework(const FrameworkEntry& f) const;
    bool passes_framework_roles(const nlohmann::json& roles) const;
  };
  // The filter of what caller may see; empty() when it may see everything.
  static Filter access_filter(const ViewCaller& caller);
  // Whether caller may do action on object; else a 403 is answered.
  bool allowed(const ViewCaller& caller, security::Action action, security::Object object,
               const http::Responder& responder);
  struct Subscriber {
    std::shared_ptr<http::Stream> stream;
    Filter filter;
    uint64_t sequence = 0;  // of the next event on this stream
  };

  // -- following the master (state_view.cpp) --------------------------------
  void subscribe_to_master();
  void on_batch(const Received<wire::MasterEventBatch>& m);
  void lost_master(const std::string& why);
  void apply(wire::MasterEvent::Reader e);
  void apply_agent(wire::AgentView::Reader a);
  void apply_framework(wire::FrameworkView::Reader f);
  void apply_task(wire::TaskView::Reader t, bool completed);
  void apply_offer(wire::OfferView::Reader o);
  void remove_offer(const std::string& id);
  void remove_agent(const std::string& id);
  void remove_framework(const std::string& id);
  // Adds (sign +1) or takes away (-1) what a live task holds from its
  // agent's and framework's books.
  void account(const TaskEntry& t, int sign);
  void complete(const TaskKey& key);

  // -- the operator API (state_view_api.cpp) ---------------------------------
  void answer_read(const std::string& type, const nlohmann::json& call,
                   const http::Responder& responder, const ViewCaller& caller);
  void forward_write(const std::string& type, const nlohmann::json& call,
                     const http::Responder& responder, const ViewCaller& caller);
  void subscribe_client(const nlohmann::json& call, const http::Responder& responder,
                        const ViewCaller& caller);
  // While this view has no state and another master leads: a 307 to the
  // leader's API (true), or nothing known (false).
  bool redirect_to_leader(const http::Responder& responder);
  std::string not_leading_message() const;
  std::string get_tasks_json(const nlohmann::json& args, std::string& error,
                             const Filter* access = nullptr);
  nlohmann::json get_frameworks(const Filter* access = nullptr) const;
  nlohmann::json get_roles() const;
  nlohmann::json get_maintenance_status() const;
  std::string state_body(const Filter* filter);
  // Appends GET_STATE's get_state object (filtered, for SUBSCRIBE) to out.
  void append_state(std::string& out, const Filter* filter);
  void append_tasks(std::string& out, const Filter* filter) const;
  // GET_STATE's live tasks: every task is in one of task_buckets_max
  // buckets (by a hash of its key), and each bucket keeps its tasks' texts
  // joined, built at a read after one of them changed. A read of 100,000
  // tasks then copies a few hundred texts, not a hundred thousand. Built
  // only for GET_STATE: a view nobody reads that way holds no second copy.
  struct TaskBucket {
    std::set<TaskKey> keys;
    std::string text;  // the tasks' JSON, comma-separated
    bool dirty = true;
  };
  static constexpr size_t task_buckets_max = 1024;
  TaskBucket& bucket_of(const TaskKey& key);
  void append_live_tasks(std::string& out);
  // GET_STATE's whole answer. Rendered at most once per change to the copy
  // (generation_) and shared by every request until the next change; a new
  // rendering reuses the buffer of the last when no response holds it any
  // more, so a poller costs neither a copy nor fresh pages.
  std::shared_ptr<const std::string> state_response();

  // -- SUBSCRIBE streams (state_view_api.cpp) ---------------------------------
  void publish(const std::string& type, const nlohmann::json& body, const TaskEntry* task,
               const FrameworkEntry* framework);
  void heartbeat();
  void close_streams();

  // -- rendering (state_view_json.cpp) ---------------------------------------
  void render(TaskEntry& t) const;
  void render(AgentEntry& a) const;
  nlohmann::json agent_json(const AgentEntry& a) const;
  // The same as text, appended: for GET_STATE and GET_AGENTS.
  void append_agent(std::string& out, const AgentEntry& a) const;
  void append_executors(std::string& out, const Filter* filter = nullptr) const;
  std::string agents_text() const;
  void append_agents(std::string& out) const;
  nlohmann::json framework_json(const FrameworkEntry& f) const;
  nlohmann::json status_json(const TaskEntry& t, const Status& s) const;
  nlohmann::json role_json(const std::string& name, const RoleEntry& r) const;

  // -- metrics (state_view_metrics.cpp) ---------------------------------------
  // Gauges from the view's copy plus the master's and allocator's counters.
  std::vector<std::pair<std::string, double>> snapshot_values(wire::MasterMetrics::Reader master,
                                                              wire::MasterMetrics::Reader alloc);
  std::string prometheus_text(wire::MasterMetrics::Reader master,
                              wire::MasterMetrics::Reader alloc);

  StateViewConfig config_;
  std::shared_ptr<StateViewHandle> handle_;
  bool ready_ = false;    // a snapshot is complete
  bool loading_ = false;  // a snapshot is arriving
  uint64_t next_sequence_ = 0;
  int64_t master_started_ns_ = 0;
  Actor::TimerId resubscribe_timer_ = 0;
  std::map<std::string, AgentEntry> agents_;
  std::map<std::string, FrameworkEntry> frameworks_;
  std::deque<nlohmann::json> completed_frameworks_;
  std::map<TaskKey, TaskEntry> tasks_;
  std::deque<TaskEntry> completed_;
  std::map<std::string, OfferEntry> offers_;
  std::map<std::string, RoleEntry> roles_;
  // Live tasks per executor (agent, framework, executor), kept by account().
  std::map<std::tuple<std::string, std::string, std::string>, uint32_t> executors_;
  std::vector<Subscriber> subscribers_;
  // Terminal states seen, by state (Mesos's master/tasks_finished, ...).
  std::map<wire::TaskState, uint64_t> terminal_counts_;
  uint64_t bad_calls_ = 0;  // refused with a 400
  uint64_t gaps_ = 0;       // resubscriptions after a missed batch
  std::vector<TaskBucket> task_buckets_ = std::vector<TaskBucket>(task_buckets_max);
  // Bumped by every batch from the master: what the copy is a version of.
  uint64_t generation_ = 0;
  std::shared_ptr<std::string> state_rendered_;  // GET_STATE of state_generation_
  uint64_t state_generation_ = 0;
  size_t state_bytes_last_ = 0;
  uint64_t state_renders_ = 0;  // GET_STATEs rendered
  uint64_t state_reuses_ = 0;   // GET_STATEs answered with the last rendering
};

// Every call type the operator API serves (reads, writes, SUBSCRIBE).
std::vector<std::string> operator_call_types();

}  // namespace tessera
