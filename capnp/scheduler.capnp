@0xd9584f3839ac3ed5;
# Framework <-> master protocol, after Mesos v1's scheduler.proto.
# A framework (scheduler) sends SchedulerCall to the master; the master sends
# SchedulerEvent to the framework. Subscribe must come first; every other call
# carries the frameworkId the subscribed event assigned.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";
using TaskInfo = Common.TaskInfo;
using TaskStatus = Common.TaskStatus;
using ExecutorInfo = Common.ExecutorInfo;
using FrameworkInfo = Common.FrameworkInfo;
using Filters = Common.Filters;
using Offer = Common.Offer;
using MasterInfo = Common.MasterInfo;
using KillPolicy = Common.KillPolicy;

struct Operation {
  # One thing to do with accepted offers.
  union {
    launch @0 :List(TaskInfo);
    # Tasks, each on its own (command or executor).
    launchGroup @1 :LaunchGroup;
    # Tasks launched together under one executor: all run or none does.
  }

  struct LaunchGroup {
    executor @0 :ExecutorInfo;
    tasks @1 :List(TaskInfo);
  }
}

struct SchedulerCall {
  # Framework -> master.
  frameworkId @0 :Text;
  # Empty only on the first subscribe.
  union {
    subscribe @1 :Subscribe;
    teardown @2 :Void;
    # End the framework: kill its tasks, forget it.
    accept @3 :Accept;
    decline @4 :Decline;
    revive @5 :Revive;
    suppress @6 :Suppress;
    kill @7 :Kill;
    shutdown @8 :Shutdown;
    acknowledge @9 :Acknowledge;
    reconcile @10 :Reconcile;
    message @11 :Message;
  }

  struct Subscribe {
    # Registers (empty frameworkInfo.frameworkId) or fails over the framework.
    frameworkInfo @0 :FrameworkInfo;
    suppressedRoles @1 :List(Text);
    # Roles to start suppressed (no offers until revived).
    subscriptionId @2 :Text;
    # Random, made once per scheduler instance and sent with every subscribe
    # it makes. A retried first subscribe (empty frameworkId) whose
    # subscriptionId the master already gave a framework id to is answered
    # with that id instead of a second framework.
  }

  struct Accept {
    # Uses offers (all from one agent); what is not used returns to the
    # allocator, filtered for this framework as filters says.
    offerIds @0 :List(Text);
    operations @1 :List(Operation);
    filters @2 :Filters;
  }

  struct Decline {
    # Returns offers unused; same as accept with no operations.
    offerIds @0 :List(Text);
    filters @1 :Filters;
  }

  struct Revive {
    # Clears filters and unsuppresses the roles (empty: all its roles).
    roles @0 :List(Text);
  }

  struct Suppress {
    # Stops offers for the roles (empty: all its roles) until revive.
    roles @0 :List(Text);
  }

  struct Kill {
    # Kills a task; its end arrives as an update.
    taskId @0 :Text;
    agentId @1 :Text;
    killPolicy @2 :KillPolicy;
    # Optional: overrides the task's own kill policy.
  }

  struct Shutdown {
    # Shuts an executor down, killing its tasks.
    executorId @0 :Text;
    agentId @1 :Text;
  }

  struct Acknowledge {
    # Acknowledges an update that carried a uuid, so the agent stops retrying it.
    agentId @0 :Text;
    taskId @1 :Text;
    uuid @2 :Data;
  }

  struct Reconcile {
    # Asks for the latest state of tasks (empty: all the master knows, the
    # "implicit" reconciliation); answers arrive as updates with reason
    # reconciliation.
    tasks @0 :List(ReconcileTask);
  }

  struct ReconcileTask {
    taskId @0 :Text;
    agentId @1 :Text;
    # Optional; helps the master answer for tasks on unknown agents.
  }

  struct Message {
    # Opaque bytes the master relays to one of the framework's executors.
    agentId @0 :Text;
    executorId @1 :Text;
    data @2 :Data;
  }
}

struct SchedulerEvent {
  # Master -> framework.
  union {
    subscribed @0 :Subscribed;
    offers @1 :List(Offer);
    rescind @2 :Text;
    # The offerId of an offer that is no longer valid.
    update @3 :TaskStatus;
    # Acknowledge it (when its uuid is non-empty).
    message @4 :Message;
    failure @5 :Failure;
    error @6 :Text;
    # The master dropped the framework (e.g. failover by another instance);
    # it must not retry.
    heartbeat @7 :Heartbeat;
  }

  struct Heartbeat {
    # Sent every heartbeatIntervalNs while subscribed, with what the master
    # holds of the framework's own calls that have no answer: a SUPPRESS or
    # REVIVE lost on the way shows as a difference, and the scheduler
    # library sends it again (so a lost revive costs one interval of
    # offers, not all of them).
    suppressedRoles @0 :List(Text);
  }

  struct Subscribed {
    # Answers subscribe.
    frameworkId @0 :Text;
    heartbeatIntervalNs @1 :Int64;
    # The master sends heartbeat this often; missing some means disconnection.
    masterInfo @2 :MasterInfo;
  }

  struct Message {
    # Opaque bytes an executor sent its framework.
    agentId @0 :Text;
    executorId @1 :Text;
    data @2 :Data;
  }

  struct Failure {
    # An agent was lost (executorId empty) or an executor exited (status is
    # its wait status).
    agentId @0 :Text;
    executorId @1 :Text;
    status @2 :Int32;
  }
}
