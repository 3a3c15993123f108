@0x843847563df5e76b;
# Operator -> master calls, after Mesos v1's operator API (master.proto).
# The HTTP edge (issue #10) translates POST /api/v1 calls into these; tests
# and tools may send them directly. Each OperatorCall is a request; the
# master replies with one OperatorResponse.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";

struct RoleWeight {
  role @0 :Text;
  weight @1 :Float64;
  # > 0; 1 is every role's default.
}

struct OperatorCall {
  union {
    updateQuota @0 :UpdateQuota;
    updateWeights @1 :List(RoleWeight);
    teardown @2 :Text;
    # A framework id: its tasks are killed and it is removed for good.
    killTask @3 :KillTask;
    deactivateAgent @4 :Text;
    # An agent id: no more offers of its resources; its tasks keep running.
    reactivateAgent @5 :Text;
    # An agent id: offered again, and any drain ends.
    drainAgent @6 :DrainAgent;
    reserveResources @7 :Reservation;
    # Dynamic reservation: unreserved resources of the agent become the
    # named roles' (each resource's role says whose). Refused unless they
    # are free (not used by tasks; offers holding them are rescinded).
    unreserveResources @8 :Reservation;
    # The reverse: dynamically reserved resources, not used by tasks,
    # become unreserved. Reservations an agent was started with (its
    # --resources) are static and cannot be unreserved.
  }

  struct UpdateQuota {
    role @0 :Text;
    limit @1 :List(Common.Resource);
    # Scalars only; empty removes the role's quota.
  }

  struct KillTask {
    frameworkId @0 :Text;
    taskId @1 :Text;
    gracePeriodNs @2 :Int64;
    # 0: the task's kill policy, else the agent's default.
  }

  struct Reservation {
    agentId @0 :Text;
    resources @1 :List(Common.Resource);
    # Each with the role it is (to be) reserved for; never "*".
  }

  struct DrainAgent {
    agentId @0 :Text;
    maxGracePeriodNs @1 :Int64;
    # An upper bound on each task's kill grace period; 0: theirs.
  }
}

struct OperatorResponse {
  error @0 :Text;
  # Empty: done (recorded in the registry, and in force).
}

# -- The master's event stream ------------------------------------------------
# The state view (services/master/state_view.hpp) keeps its own copy of the
# cluster from these, so operators' reads never reach the master. A
# subscriber sends SubscribeMasterEvents (again, until it has a snapshot);
# the master answers with MasterEventBatches: first a snapshot (reset set on
# the first batch, snapshotDone on the last; every object as an "added"
# event), then every change, in order, each batch numbered on from the last.

struct SubscribeMasterEvents {}

struct MasterEventBatch {
  reset @0 :Bool;
  # Forget everything held: a snapshot starts.
  snapshotDone @1 :Bool;
  firstSequence @2 :UInt64;
  # The number of events[0]; each next event is one more. A gap means the
  # subscriber missed events and must subscribe again.
  events @3 :List(MasterEvent);
  masterStartNs @4 :Int64;
  # When this master run started (wall clock), for GET_HEALTH and the UI.
}

struct MasterEvent {
  union {
    agentAdded @0 :AgentView;
    # Added or changed: the whole agent as it is now.
    agentRemoved @1 :Text;
    frameworkAdded @2 :FrameworkView;
    # Added or changed.
    frameworkRemoved @3 :Text;
    taskAdded @4 :TaskView;
    # Added or changed: the whole task as it is now.
    taskCompleted @5 :TaskView;
    # Gone from the master's books in this terminal state (its framework
    # acknowledged it, or its agent or framework was removed).
    offerAdded @6 :OfferView;
    offerRemoved @7 :Text;
    roleUpdated @8 :RoleView;
  }
}

enum AgentViewState {
  registered @0;
  disconnected @1;
  unreachable @2;
  admitting @3;
  removing @4;
}

enum DrainState {
  none @0;
  draining @1;
  # Deactivated, its tasks being killed.
  drained @2;
  # Deactivated, and no task of it runs any more.
}

struct AgentView {
  id @0 :Text;
  address @1 :Text;
  hostname @2 :Text;
  total @3 :List(Common.Resource);
  attributes @4 :List(Common.Attribute);
  state @5 :AgentViewState;
  deactivated @6 :Bool;
  drain @7 :DrainState;
  registeredAtNs @8 :Int64;
  # Wall clock, when this master admitted it (or it reregistered).
  httpAddress @9 :Text;
  # HOST:PORT of the agent's HTTP API; empty: none.
  reservedDynamic @10 :List(Common.Resource);
  # The part of total an operator reserved (RESERVE_RESOURCES); the rest of
  # total's reservations are static (the agent's --resources).
}

struct FrameworkView {
  info @0 :Common.FrameworkInfo;
  address @1 :Text;
  connected @2 :Bool;
  suppressedRoles @3 :List(Text);
  registeredAtNs @4 :Int64;
}

struct TaskView {
  frameworkId @0 :Text;
  agentId @1 :Text;
  name @2 :Text;
  role @3 :Text;
  resources @4 :List(Common.Resource);
  status @5 :Common.TaskStatus;
  # The last status it had: taskId, state, reason, message, timestamp,
  # health, exit. Its state may be older than state below (an agent
  # reports each state in turn, each carrying the newest).
  state @6 :Common.TaskState;
  # The newest state known.
}

struct OfferView {
  id @0 :Text;
  frameworkId @1 :Text;
  agentId @2 :Text;
  role @3 :Text;
  resources @4 :List(Common.Resource);
}

struct RoleView {
  role @0 :Text;
  weight @1 :Float64;
  quota @2 :List(Common.Resource);
}

# The master's and its allocator's counters, for GET_METRICS and /metrics.
struct MasterMetricsRequest {}

struct Counter {
  name @0 :Text;
  value @1 :Float64;
}

struct MasterMetrics {
  counters @0 :List(Counter);
  # Named as the Prometheus metric they become, without its prefix.
  cycleBucketsMs @1 :List(Float64);
  # The allocation cycle latency histogram: upper bounds (ms), then
  cycleCounts @2 :List(UInt64);
  # cumulative counts per bound (the last is +Inf), as Prometheus.
  cycleSumMs @3 :Float64;
}
