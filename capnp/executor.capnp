@0xce4c944339b996f6;
# Executor <-> agent protocol, after Mesos v1's executor.proto.
# An executor sends ExecutorCall to the agent that started it; the agent sends
# ExecutorEvent to the executor. Subscribe comes first (and again after an
# agent restart).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";
using TaskInfo = Common.TaskInfo;
using TaskStatus = Common.TaskStatus;
using ExecutorInfo = Common.ExecutorInfo;
using FrameworkInfo = Common.FrameworkInfo;
using AgentInfo = Common.AgentInfo;

struct ExecutorCall {
  # Executor -> agent.
  frameworkId @0 :Text;
  executorId @1 :Text;
  union {
    subscribe @2 :Subscribe;
    update @3 :TaskStatus;
    # A task's new state; the agent answers with acknowledged.
    message @4 :Data;
    # Opaque bytes for the framework (relayed by agent and master).
  }

  struct Subscribe {
    # What the executor holds that the agent may have missed (when resubscribing).
    unacknowledgedUpdates @0 :List(TaskStatus);
    unacknowledgedTasks @1 :List(TaskInfo);
  }
}

struct ExecutorEvent {
  # Agent -> executor.
  union {
    subscribed @0 :Subscribed;
    launch @1 :TaskInfo;
    launchGroup @2 :List(TaskInfo);
    # Tasks to start together.
    kill @3 :Kill;
    acknowledged @4 :Acknowledged;
    message @5 :Data;
    # Opaque bytes from the framework.
    shutdown @6 :Void;
    # Kill all tasks and exit.
    error @7 :Text;
    # Something went wrong that the executor cannot recover from.
  }

  struct Subscribed {
    # Answers subscribe: who the executor runs for and where.
    executorInfo @0 :ExecutorInfo;
    frameworkInfo @1 :FrameworkInfo;
    agentInfo @2 :AgentInfo;
  }

  struct Kill {
    # Kill one task: SIGTERM, then SIGKILL after the grace period.
    taskId @0 :Text;
    gracePeriodNs @1 :Int64;
  }

  struct Acknowledged {
    # The agent has stored the update with this uuid; the executor can drop it.
    taskId @0 :Text;
    uuid @1 :Data;
  }
}
