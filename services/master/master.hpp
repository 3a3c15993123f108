#pragma once
// The master: admits agents and frameworks, turns the allocator's grants into
// offers, validates what frameworks do with them, launches tasks on agents,
// relays status updates (and their acknowledgements) between agents and
// frameworks, and notices when either goes away. Semantics follow Mesos's
// master; protocols are capnp/scheduler.capnp and capnp/agent.capnp.
//
// What lives elsewhere: allocation policy and its books are the allocator
// actor (services/allocator/allocator_actor.hpp), which the master spawns on
// its own node and talks to with capnp/allocator.capnp; status-update
// reliability is the agent's (it retries until the framework acknowledges).
//
// Failure handling, as Mesos:
//  - an agent that misses agent_pings_missed_max pings in a row is
//    unreachable: its offers are rescinded, its resources leave the pool and
//    its tasks are reported TASK_UNREACHABLE (partition-aware frameworks) or
//    TASK_LOST; when it reregisters, its tasks come back as it reports them;
//  - a framework whose connection drops keeps its tasks for its failover
//    timeout; resubscribing with its id in time takes them back, otherwise
//    its tasks are killed and it is removed;
//  - an agent that reregisters with an id this master removed (removal
//    timeout, or it registered anew from the same address) is answered with
//    ShutdownAgent, whose reason says that id was removed: its tasks were
//    reported gone or lost, so it must kill them, forget its checkpoints and
//    register as a new agent. The last removed_agents_max ids are kept;
//  - after a master restart, agents reregister with their tasks and
//    frameworks resubscribe with their ids; both are admitted with the ids
//    they bring. For agent_reregister_timeout after it starts the master is
//    recovering: it cannot tell an agent it never knew from one that has
//    not come back yet, so an explicit reconciliation of a task it does not
//    know (and a kill of one) naming an agent that is not registered waits
//    for that agent to reregister, and
//    is answered LOST/UNREACHABLE only when the window closes (Mesos answers
//    nothing for tasks of recovered agents until they reregister or their
//    reregistration timeout expires).
//
// Idempotence (every message may be retried or duplicated):
//  - RegisterAgent carries the agent's boot id: every retry from the same
//    address and boot gets the same agent id; another boot from that
//    address is an agent that restarted without its state. A boot replaced
//    that way is retired and its late messages are ignored;
//  - ReregisterAgent carries (boot id, registrationSeq): the agent's tasks
//    are reconciled once per episode; a retry of a processed episode is
//    answered again and changes nothing, an older one is ignored;
//  - SUBSCRIBE carries the scheduler's subscriptionId: a retried first
//    subscribe gets the framework id the first one made. Any subscribe of
//    a known framework rescinds its outstanding offers (the instance that
//    subscribes may never have seen them).
//
// Authority: a StatusUpdate is applied only from the agent the task was
// placed on; a kill of a task whose agent is away is remembered and sent
// when the agent reregisters.
//
// Registry (services/registry, policy in registrar.cpp): what must outlive
// a master run is written to a RegistryStore before the master acts on it,
// as Mesos's registrar: an agent is admitted, marked unreachable or removed,
// a framework admitted or removed, and a task's TASK_LOST told while its
// agent is away, only once recorded. Commits go one at a time, batched, on
// the blocking pool's store lane; the handler that needs one goes on when it
// is durable (registration retries meanwhile are dropped: the peer retries).
// A failed commit stops the master: it must not act on what it cannot
// record. A master that starts reads the registry before it serves anything
// (messages before then are dropped and counted): removed agents stay
// removed, known frameworks keep their ids, agents that do not reregister
// within agent_reregister_timeout are marked unreachable, and a task told
// lost is killed, never adopted, when its agent comes back to any master.

#include "runtime/actor.hpp"
#include "services/allocator/allocator_actor.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"
#include "services/registry/registry.hpp"
#include "services/security/acls.hpp"

#include <capnp/agent.capnp.h>
#include <capnp/allocator.capnp.h>
#include <capnp/operator.capnp.h>
#include <capnp/scheduler.capnp.h>

#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera {

struct MasterConfig {
  AllocatorConfig allocator;
  // The ACLs (--acls) for what frameworks do over the actor transport:
  // register_frameworks when one subscribes, run_tasks for each task. The
  // principal is the framework certificate's over TLS (on a plaintext node,
  // the one its FrameworkInfo claims). Null: everything allowed.
  std::shared_ptr<const security::Authorizer> authorizer;
  // Where the registry lives; null: a MemoryStore of the master's own, so
  // nothing outlives the actor (tests that do not restart masters).
  std::shared_ptr<RegistryStore> registry;
  // Changes per registry commit (batches of several handlers' changes).
  size_t registry_changes_per_commit_max = 10'000;
  // Messages held while the registry is read, handled once it is.
  size_t held_messages_max = 100'000;
  Duration allocation_interval = std::chrono::seconds(1);
  // An offer not used within this long is rescinded; zero: never.
  Duration offer_timeout = Duration::zero();
  Duration agent_ping_interval = std::chrono::seconds(5);
  Duration agent_ping_timeout = std::chrono::seconds(5);
  uint32_t agent_pings_missed_max = 3;
  // How often pings carry an audit of the agent's tasks still STAGING this
  // long after their launch was sent: those the agent does not have (their
  // RunTask was lost on a link that stayed up) end DROPPED (LOST for
  // frameworks that are not partition-aware).
  Duration agent_task_audit_interval = std::chrono::seconds(30);
  Duration agent_task_audit_age = std::chrono::seconds(10);
  size_t audit_tasks_per_ping_max = 1000;
  // An agent unreachable this long is removed: its tasks are GONE (LOST for
  // frameworks that are not partition-aware) and it must register anew.
  Duration agent_removal_timeout = std::chrono::minutes(10);
  // After the master starts, how long agents have to reregister before
  // reconciliation answers for tasks it does not know (Mesos's
  // agent_reregister_timeout).
  Duration agent_reregister_timeout = std::chrono::minutes(10);
  Duration framework_heartbeat_interval = std::chrono::seconds(15);
  uint64_t seed = 0;  // ids; zero: from std::random_device
  size_t agents_max = 100'000;
  size_t frameworks_max = 10'000;
  size_t tasks_per_framework_max = 1'000'000;
  size_t completed_tasks_max = 10'000;            // kept for reconciliation
  size_t removed_frameworks_max = 10'000;         // ids refused on resubscribe
  size_t removed_agents_max = 100'000;            // ids told to shut down on reregister
  size_t retired_boots_max = 100'000;             // agent boots replaced by a newer one
  size_t deferred_reconciliations_max = 100'000;  // unanswered while recovering
  size_t deferred_kills_max = 100'000;            // kills of unknown tasks while recovering
};

// What the master counts; read with Master::counters() from its own thread
// or with a MasterStateRequest later (HTTP API issue).
struct MasterCounters {
  uint64_t agents_registered = 0;
  uint64_t agents_reregistered = 0;
  uint64_t agents_unreachable = 0;
  uint64_t agents_removed = 0;
  uint64_t agents_refused_removed = 0;  // reregistrations of removed ids, shut down
  uint64_t frameworks_subscribed = 0;
  uint64_t frameworks_removed = 0;
  uint64_t offers_sent = 0;
  uint64_t offers_rescinded = 0;
  uint64_t offers_declined = 0;
  uint64_t tasks_launched = 0;
  uint64_t tasks_invalid = 0;
  uint64_t status_updates = 0;
  uint64_t invalid_calls = 0;       // calls refused: unknown framework, wrong sender, ...
  uint64_t refused_principals = 0;  // messages from a certificate of the wrong role
  uint64_t agents_duplicate_registrations = 0;   // retries answered with the same id
  uint64_t agents_stale_registrations = 0;       // older episodes or retired boots, ignored
  uint64_t frameworks_duplicate_subscribes = 0;  // retried first subscribes, same id
  uint64_t status_updates_refused = 0;           // from an agent the task is not on
  uint64_t status_updates_absorbed = 0;          // acknowledged for the framework, not forwarded
  uint64_t kills_deferred = 0;                   // remembered until the task's agent is back
  uint64_t reconciliations_deferred = 0;         // answered once the task's agent is back
  uint64_t tasks_lost_launches = 0;              // STAGING tasks their agent's audit did not know
  uint64_t registry_commits = 0;
  uint64_t registry_changes = 0;
  uint64_t messages_before_recovery = 0;     // dropped: too many held before the registry was read
  uint64_t registrations_while_writing = 0;  // dropped while that agent's record was written
  uint64_t reservations_dropped = 0;         // agents back too small for their dynamic reservations
};

// A read-only copy of the master's books (Master::view()).
struct MasterView {
  struct Agent {
    std::string id;
    Address address;
    bool registered = false;  // not disconnected nor unreachable
    bool in_allocator = false;
    Resources total;
    Resources offered;  // in outstanding offers
    Resources used;     // by tasks whose resources are not yet freed
  };
  struct Task {
    std::string framework;
    std::string id;
    std::string agent;
    wire::TaskState state = wire::TaskState::STAGING;
    bool freed = false;
  };
  std::vector<Agent> agents;
  std::vector<Task> tasks;
  std::vector<std::string> frameworks_connected;
};

class Master : public Actor {
 public:
  Master(caf::actor_config& cfg, ActorInit init, MasterConfig config);

  // The chaos simulation's window on the books (services/sim): call it only
  // from this actor's thread, or in a Simulation between steps, when no
  // handler runs. A copy, so no message is added to the run being checked.
  MasterView view() const;
  // Whether this master sent the framework a terminal state for the task
  // (it holds the task ended, or completed it). Same rules as view().
  bool told_ended(const std::string& framework_id, const std::string& task_id) const;
  // Whether the master has read its registry and serves messages.
  bool serving() const { return serving_; }
  const MasterCounters& counters() const { return counters_; }

 protected:
  void on_start() override;

 private:
  using TaskId = std::string;
  using OfferId = std::string;
  using TaskKey = std::pair<FrameworkId, TaskId>;
  using State = wire::TaskState;
  using Reason = wire::TaskStatus::Reason;

  struct Task {
    TaskId id;
    FrameworkId framework;
    AgentId agent;
    std::string role;
    Resources resources;
    State state = State::STAGING;  // the newest state known
    Reason reason = Reason::NONE;
    TimePoint staged_at{};  // when its launch was sent (this master run)
    std::string message;
    bool resources_freed = false;  // returned to the allocator
    // The last update forwarded to the framework: when its acknowledgement
    // arrives and it was terminal, the task is done.
    std::string forwarded_uuid;
    State forwarded_state = State::STAGING;
    // Killed while its agent was away: sent again on every reregistration
    // until the task ends.
    bool kill_pending = false;
    int64_t kill_grace_ns = 0;  // 0: the agent's default
    // The master itself told the framework this task ended (TASK_LOST while
    // its agent was unreachable): whatever the agent reports of it later is
    // acknowledged here and not forwarded, so the framework hears one
    // terminal state.
    bool ended_by_master = false;
    // For operators (the event stream): what its latest status said.
    std::string name;
    std::string executor_id;
    State status_state = State::STAGING;  // of the last status (state is the newest)
    int64_t status_time_ns = 0;           // wall clock
    int8_t healthy = -1;                  // -1: no health checks reported
    int32_t exit_code = -1;
    int32_t term_signal = 0;
  };

  struct FrameworkEntry {
    FrameworkId id;
    std::optional<Address> address;  // set while subscribed (or failing over)
    bool connected = false;
    std::string name;
    std::string user;
    std::string principal;
    std::vector<std::string> roles;
    Duration failover_timeout = Duration::zero();
    std::set<wire::FrameworkCapability> capabilities;
    Actor::TimerId failover_timer = 0;
    std::set<OfferId> offers;
    std::map<TaskId, Task> tasks;
    std::string subscription_id;  // of the instance subscribed last
    // As its subscribe and SUPPRESS/REVIVE calls left them; told in every
    // heartbeat so the framework can resend a lost call.
    std::set<std::string> suppressed_roles;
    int64_t registered_at_ns = 0;  // wall clock, for operators
    bool partition_aware() const {
      return capabilities.count(wire::FrameworkCapability::PARTITION_AWARE) > 0;
    }
  };

  // admitting: its record is being written (nothing answered yet);
  // removing: its removal is being written (its tasks not yet reported).
  enum class AgentState { admitting, registered, disconnected, unreachable, removing };

  struct AgentEntry {
    AgentId id;
    Address address;
    std::string hostname;
    // What the agent advertises (its --resources, static reservations
    // included), what operators reserved of it (RESERVE_RESOURCES; the
    // registry's record holds the same), and what is pooled: advertised
    // with reserved's quantities moved from "*" to their roles.
    Resources advertised;
    Resources reserved;
    Resources total;
    std::vector<Attribute> attributes;
    AgentState state = AgentState::registered;
    bool in_allocator = false;
    uint64_t epoch = 0;  // of the latest AllocatorAddAgent
    std::set<TaskKey> tasks;
    std::set<OfferId> offers;
    uint32_t pings_missed = 0;
    bool ping_outstanding = false;
    Actor::TimerId removal_timer = 0;
    // Tasks that run here though their framework was told they ended: the
    // kill is resent with every ping until the agent reports them over.
    std::set<TaskKey> kills_enforced;
    std::string boot_id;            // of the agent process registered last
    uint64_t registration_seq = 0;  // its last reregistration episode processed
    int64_t registered_at_ns = 0;   // wall clock, for operators
    std::string http_address;       // of its HTTP API, as it registered
    // An operator's DEACTIVATE_AGENT or DRAIN_AGENT: out of the allocator
    // (no offers) until REACTIVATE_AGENT; its tasks run on (deactivated) or
    // are killed (draining, then drained once none is left).
    bool deactivated = false;
    wire::DrainState drain = wire::DrainState::NONE;
    int64_t drain_grace_ns = 0;
    // Reservation changes being written to the registry: the agent stays
    // out of the allocator until the last is durable, so nothing is
    // offered on a reservation a failover could forget.
    uint32_t reservation_writes = 0;
  };

  struct Offer {
    OfferId id;
    FrameworkId framework;
    AgentId agent;
    std::string role;
    Resources resources;
    Actor::TimerId timer = 0;
  };

  struct CompletedTask {
    TaskKey key;
    AgentId agent;
    State state;
  };

  // -- registry (registrar.cpp) ---------------------------------------------
  void read_registry();
  // Runs a store operation off this actor's thread; its continuation runs
  // here. False when it could not be queued.
  bool on_store(std::function<std::function<void()>()> work);
  void recover_from_registry(RegistryState state);
  // Queues changes for the registry; then runs once they are durable (in
  // the order persist was called). Empty changes still wait their turn.
  void persist(std::vector<RegistryChange> changes, std::function<void()> then);
  void commit_next();
  void committed(const std::vector<std::function<void()>>& thens);
  void registry_failed(const caf::error& err);
  void start_serving();
  // Registry changes that record agent a in state s (and, removed, drop
  // what is kept of it).
  std::vector<RegistryChange> agent_changes(const AgentEntry& a, RegistryAgent::State s,
                                            const std::string& reason = {});
  std::vector<RegistryChange> agent_changes(const AgentId& id, const std::string& hostname,
                                            const std::string& address, RegistryAgent::State s,
                                            const std::string& reason = {});
  // persist() for changes to one agent's record: its registrations are
  // dropped (it retries) until they are durable and then has run.
  void persist_agent(const AgentId& id, std::vector<RegistryChange> changes,
                     std::function<void()> then);
  // Whether the registry holds agent id as unreachable (told lost) or
  // admitted but not back since this master started.
  bool away_in_registry(const AgentId& id) const;
  // Sends the framework a terminal update for a task this master does not
  // know on agent aid; a TASK_LOST for an agent that may come back is
  // recorded first (registry ended/), so that agent's copy is killed.
  void answer_unknown(const FrameworkEntry& fw, const TaskId& tid, const AgentId& aid, State state,
                      Reason reason, const std::string& message);
  RegistryFramework framework_record_of(const FrameworkEntry& fw) const;

  // -- agents (master.cpp) --------------------------------------------------
  void on_register_agent(const Received<wire::RegisterAgent>& m);
  void on_reregister_agent(const Address& sender, wire::ReregisterAgent::Reader body);
  // The part of a reregistration that acts, once the registry has it.
  void admit_reregistered(const Address& sender, wire::ReregisterAgent::Reader body);
  // A retry of a registration already processed: answered, nothing changes.
  void answer_again(AgentEntry& agent, bool reregistered);
  void send_registered(AgentEntry& agent, bool reregistered);
  // Reconciles the agent's reported tasks with the books (the agent is the
  // truth), then admits it.
  void reconcile_agent_tasks(AgentEntry& agent, wire::ReregisterAgent::Reader body);
  bool retired(const std::string& boot) const { return retired_boots_.count(boot) > 0; }
  void retire_boot(const std::string& boot);
  // The framework was told tid ended, but agent a runs it: kill it there,
  // resent with every ping until a reports it over.
  // alive false: the agent reports it over; its updates are absorbed.
  void enforce_end(FrameworkEntry& fw, AgentEntry& a, const TaskId& tid, bool alive = true);
  // The registry says the framework was told this task on this agent was
  // lost while the agent was away.
  bool told_lost_away(const AgentId& agent, const TaskKey& key) const {
    auto it = ended_.find(agent);
    return it != ended_.end() && it->second.count(key) > 0;
  }
  void resend_enforced_kills(AgentEntry& a);
  void send_kill(const AgentEntry& a, const FrameworkId& fid, const TaskId& tid, int64_t grace_ns);
  // Sends the kills remembered for tasks on this agent.
  void send_pending_kills(AgentEntry& agent);
  void on_status_update(const Received<wire::StatusUpdate>& m);
  void on_exited_executor(const Received<wire::ExitedExecutor>& m);
  void on_executor_message(const Received<wire::ExecutorToFramework>& m);
  // Acknowledges a status update to its agent on the framework's behalf.
  void acknowledge_for_framework(const AgentEntry& agent, const FrameworkId& fid, const TaskId& tid,
                                 capnp::Data::Reader uuid);
  bool recently_completed(const TaskKey& key) const;
  AgentEntry* agent_at(const Address& sender, const char* what);
  void adopt_agent_task(AgentEntry& agent, wire::AgentTask::Reader t,
                        capnp::List<wire::FrameworkInfo>::Reader frameworks);
  void add_agent_to_allocator(AgentEntry& agent);
  // A framework known before it subscribes (from the registry, or from an
  // agent's report): kept with its tasks, suppressed until it subscribes.
  FrameworkEntry& add_unsubscribed_framework(FrameworkEntry entry);
  void remove_agent_from_allocator(AgentEntry& agent);
  void ping_agents();
  void on_pong(const AgentId& id, wire::Pong::Reader pong);
  // This agent's tasks STAGING for longer than agent_task_audit_age.
  std::vector<TaskKey> long_staging(const AgentEntry& a) const;
  // The agent's audit says it does not have this STAGING task.
  void end_unknown_task(AgentEntry& a, const TaskKey& key);
  void on_ping_failed(const AgentId& id);
  void agent_disconnected(AgentEntry& agent);
  void mark_unreachable(AgentEntry& agent);
  void remove_agent(AgentEntry& agent, Reason reason, const std::string& why);
  // The removal itself, once recorded.
  void removed_agent(const AgentId& id, Reason reason, const std::string& why);
  // Reports the agent's tasks lost or unreachable, once recorded.
  void report_unreachable(const AgentId& id);

  // -- frameworks (scheduler_calls.cpp) -------------------------------------
  void on_call(const Received<wire::SchedulerCall>& m);
  void subscribe(const Address& from, const PeerIdentity* who,
                 wire::SchedulerCall::Subscribe::Reader s);
  // The part of a subscribe that acts, once the registry has the framework.
  void admit_framework(const Address& from, wire::SchedulerCall::Subscribe::Reader s,
                       FrameworkId fid);
  // The removal itself, once recorded.
  void removed_framework(const FrameworkId& id, const std::string& why);
  void accept(FrameworkEntry& fw, wire::SchedulerCall::Accept::Reader a);
  void decline(FrameworkEntry& fw, capnp::List<capnp::Text>::Reader offer_ids, double refuse_s);
  void kill(FrameworkEntry& fw, wire::SchedulerCall::Kill::Reader k);
  // Kills a task the master knows (now, or when its agent is back).
  void kill_task(Task& task, int64_t grace_ns);
  void acknowledge(FrameworkEntry& fw, wire::SchedulerCall::Acknowledge::Reader a);
  void reconcile(FrameworkEntry& fw, wire::SchedulerCall::Reconcile::Reader r);
  // The answer for a task this master does not know; nullopt: none yet
  // (recovering, and its agent may still come back).
  std::optional<State> unknown_task_state(const FrameworkEntry& fw, const AgentId& aid) const;
  void defer_reconciliation(const FrameworkEntry& fw, const TaskId& tid, const AgentId& aid);
  // Answers deferred reconciliations (and kills) for tasks that agent
  // reported or should have.
  void answer_deferred(const AgentEntry& agent);
  void end_recovery();
  void relay_message(FrameworkEntry& fw, wire::SchedulerCall::Message::Reader m);
  void shutdown_executor(FrameworkEntry& fw, wire::SchedulerCall::Shutdown::Reader s);
  void framework_disconnected(FrameworkEntry& fw);
  void remove_framework(const FrameworkId& id, const std::string& why);
  void heartbeat();
  void refuse_call(const Address& from, const std::string& why);

  // -- offers and tasks (offers.cpp) ----------------------------------------
  void on_grants(const Received<wire::AllocatorOffers>& m);
  void rescind(const OfferId& id, bool tell_framework);
  void remove_offer(const OfferId& id);
  void launch_task(FrameworkEntry& fw, AgentEntry& agent, const std::string& role,
                   wire::TaskInfo::Reader info, Resources& pool);
  std::string validate_task(const FrameworkEntry& fw, const AgentEntry& agent,
                            wire::TaskInfo::Reader info, const Resources& pool,
                            const std::set<TaskId>& batch, Resources& asked);
  // Books a validated task (asked already taken from the pool).
  void book_task(FrameworkEntry& fw, AgentEntry& agent, const std::string& role, const TaskId& tid,
                 const Resources& asked);
  // LAUNCH_GROUP: the whole group is validated first (each task as
  // validate_task, the sum against pool); any fault makes every task
  // TASK_ERROR / TASK_GROUP_INVALID, otherwise all are booked and one
  // RunTaskGroup goes to the agent.
  void launch_group(FrameworkEntry& fw, AgentEntry& agent, const std::string& role,
                    wire::Operation::LaunchGroup::Reader group, Resources& pool);
  // Empty when the group may launch; asked gets each task's resources.
  std::string validate_group(const FrameworkEntry& fw, const AgentEntry& agent,
                             wire::Operation::LaunchGroup::Reader group, const Resources& pool,
                             std::vector<Resources>& asked);
  void refuse_group(const FrameworkEntry& fw, const AgentEntry& agent,
                    wire::Operation::LaunchGroup::Reader group, const std::string& why);
  void framework_to_wire(const FrameworkEntry& fw, wire::FrameworkInfo::Builder out) const;
  void free_task_resources(Task& task);
  void set_task_state(Task& task, State state, Reason reason, const std::string& message);
  void complete_task(FrameworkEntry& fw, const TaskId& id);
  // An update the master makes itself (no uuid: nothing to acknowledge).
  // healthy: the task's last reported health (TaskEntry::healthy; -1: none),
  // carried by reconciliation answers as Mesos's are.
  void send_master_update(const FrameworkEntry& fw, const TaskId& task, const AgentId& agent,
                          State state, Reason reason, const std::string& message,
                          int8_t healthy = -1);
  void send_event(const FrameworkEntry& fw, const Outgoing& event);

  // -- operators (operator_calls.cpp) ----------------------------------------
  void on_operator_call(const Received<wire::OperatorCall>& m);
  // Each returns the refusal, or empty when done (answer runs once the
  // change is recorded where it must be).
  std::string update_quota(wire::OperatorCall::UpdateQuota::Reader q,
                           std::vector<RegistryRole>& changed);
  std::string update_weights(capnp::List<wire::RoleWeight>::Reader weights,
                             std::vector<RegistryRole>& changed);
  std::string operator_teardown(const FrameworkId& id);
  std::string operator_kill(wire::OperatorCall::KillTask::Reader k);
  std::string deactivate_agent(const AgentId& id);
  std::string reactivate_agent(const AgentId& id);
  std::string drain_agent(wire::OperatorCall::DrainAgent::Reader d);
  // RESERVE_RESOURCES (reserve true) and UNRESERVE_RESOURCES: the agent
  // leaves the allocator (its offers are rescinded, stale grants dropped by
  // epoch) and comes back with its new total once the registry has it.
  std::string update_reservation(wire::OperatorCall::Reservation::Reader r, bool reserve);
  // What the agent has that no live task holds.
  Resources free_of_tasks(const AgentEntry& a) const;
  // Sets what the agent advertises and its pooled total, with the dynamic
  // reservations its registry record holds. Reservations that no longer fit
  // (the agent came back smaller) are dropped, each whole (one name and
  // role), logged and recorded; those that fit are kept.
  void set_advertised(AgentEntry& a, Resources advertised);
  // A draining agent with no task left is drained.
  void check_drained(AgentEntry& a);
  // Records a's deactivation and drain in the registry (answers to the
  // operator wait for it: persist keeps order).
  void persist_maintenance(const AgentEntry& a);
  // After a master failover: an agent the registry holds deactivated or
  // draining comes back so, and a drain goes on.
  void restore_maintenance(AgentEntry& a);
  void persist_roles(std::vector<RegistryRole> changed, std::function<void()> then);
  // Tells the allocator a role's weight and quota.
  void apply_role(const RegistryRole& r);

  // -- the event stream (master_events.cpp) ---------------------------------
  // The state view subscribes; every change to an agent, framework, task,
  // offer or role is marked, and the marks are sent as one batch after the
  // handler (nothing is built while no one subscribes).
  void on_subscribe_events(const Received<wire::SubscribeMasterEvents>& m);
  void on_metrics_request(const Received<wire::MasterMetricsRequest>& m);
  void mark_task(const FrameworkId& fid, const TaskId& tid);
  void mark_task_completed(const Task& task);
  void mark_agent(const AgentId& id);
  void mark_framework(const FrameworkId& id);
  void mark_offer(const OfferId& id);
  void mark_role(const std::string& role);
  void schedule_publish();
  void publish_events();
  void send_snapshot(const Address& to);
  void task_to_wire(const Task& t, wire::TaskView::Builder out) const;
  void agent_to_wire(const AgentEntry& a, wire::AgentView::Builder out) const;
  void offer_to_wire(const Offer& o, wire::OfferView::Builder out) const;
  void framework_view_to_wire(const FrameworkEntry& fw, wire::FrameworkView::Builder out) const;
  // Records what a status update says of its task, for operators.
  void note_status(Task& task, wire::TaskStatus::Reader status);

  // -- helpers --------------------------------------------------------------
  void to_allocator(const Outgoing& msg);
  void recover(const FrameworkId& fw, const AgentId& agent, const std::string& role,
               const Resources& r, double refuse_s = 0);
  std::string next_id(char kind);
  FrameworkEntry* framework(const FrameworkId& id);
  AgentEntry* agent(const AgentId& id);
  bool removed(const FrameworkId& id) const { return removed_frameworks_.count(id) > 0; }
  State lost_state(const FrameworkEntry& fw) const {
    return fw.partition_aware() ? State::UNREACHABLE : State::LOST;
  }

  MasterConfig config_;
  std::shared_ptr<RegistryStore> store_;
  bool serving_ = false;
  std::vector<Envelope> held_;  // before serving
  uint64_t registry_version_ = 0;
  uint64_t epoch_ = 0;
  struct PendingWrite {
    std::vector<RegistryChange> changes;
    std::function<void()> then;
  };
  std::deque<PendingWrite> pending_writes_;
  bool committing_ = false;
  // The registry as committed or queued: records of agents (every state)
  // and frameworks, and the tasks told lost while their agent was away.
  std::unordered_map<AgentId, RegistryAgent> agent_records_;
  std::unordered_map<AgentId, std::set<TaskKey>> ended_;
  std::unordered_map<FrameworkId, RegistryFramework> framework_records_;
  // Agents the registry admitted that have not reregistered since this
  // master started; marked unreachable when the window closes.
  std::set<AgentId> recovered_agents_;
  // Agents whose record is being written: their registrations are dropped.
  std::unordered_map<AgentId, uint32_t> agents_writing_;
  // Subscriptions (or framework ids) being written, their framework id.
  std::unordered_map<std::string, FrameworkId> subscribing_;
  std::set<FrameworkId> frameworks_removing_;
  uint64_t removal_order_ = 1;
  std::map<std::string, RegistryRole> roles_;  // weights and quotas operators set
  std::mt19937_64 rng_;
  std::string run_id_;  // prefix of every id this master run makes
  uint64_t next_id_ = 1;
  Address allocator_;
  std::unordered_map<AgentId, AgentEntry> agents_;
  std::unordered_map<Address, AgentId> agent_at_;
  std::unordered_map<FrameworkId, FrameworkEntry> frameworks_;
  std::unordered_map<std::string, FrameworkId> framework_by_subscription_;
  std::unordered_map<Address, FrameworkId> framework_at_;
  std::unordered_map<OfferId, Offer> offers_;
  std::deque<CompletedTask> completed_;
  std::set<FrameworkId> removed_frameworks_;
  std::unordered_map<AgentId, std::string> removed_agents_;  // id -> why
  std::deque<AgentId> removed_agents_order_;
  std::deque<FrameworkId> removed_order_;
  std::set<std::string> retired_boots_;
  std::deque<std::string> retired_boots_order_;
  // While recovering: reconciliations and kills of tasks this master does
  // not know, by task, with the agent the framework named (may be empty).
  bool recovering_ = true;
  std::map<TaskKey, AgentId> deferred_reconciliations_;
  std::map<TaskKey, std::pair<AgentId, int64_t>> deferred_kills_;  // agent, grace ns
  uint64_t ping_seq_ = 0;
  TimePoint next_audit_{};
  uint64_t next_epoch_ = 1;
  MasterCounters counters_;
  // The event stream's subscribers and what changed since the last batch.
  std::set<Address> event_subscribers_;
  static constexpr size_t event_subscribers_max = 16;
  static constexpr size_t events_per_batch_max = 10'000;
  struct Dirty {
    std::set<TaskKey> tasks;
    std::vector<Task> completed;
    std::set<AgentId> agents;
    std::set<FrameworkId> frameworks;
    std::set<OfferId> offers;
    std::set<std::string> roles;
    bool scheduled = false;
  } dirty_;
  uint64_t event_sequence_ = 1;  // of the next event
  int64_t started_at_ns_ = 0;    // wall clock
};

}  // namespace tessera
