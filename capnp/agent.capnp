@0x9856cf01b7a86278;
# Master <-> agent protocol, after Mesos's internal messages.proto. Each struct
# is one message; its comment says who sends it. Agents register (or
# reregister after a restart or master failover), the master runs and kills
# tasks on them, agents report status updates until the master acknowledges
# them, and the master pings agents to detect partitions.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";
using TaskInfo = Common.TaskInfo;
using TaskState = Common.TaskState;
using TaskStatus = Common.TaskStatus;
using ExecutorInfo = Common.ExecutorInfo;
using FrameworkInfo = Common.FrameworkInfo;
using AgentInfo = Common.AgentInfo;

struct RegisterAgent {
  # Agent -> master: first registration (agentInfo.agentId empty).
  agentInfo @0 :AgentInfo;
  version @1 :Text;
  bootId @2 :Text;
  # Random, made once per agent process start. Every retry of this
  # registration carries the same one, so the master answers them all with
  # the same agent id; a RegisterAgent from a known address with another
  # boot id is an agent that restarted without its state.
  registrationSeq @3 :UInt64;
  # The agent's registration episode (see ReregisterAgent); echoed in the
  # answer and stamped on every launch the master sends it.
}

struct AgentTask {
  # A task an agent runs, with its states, for reregistration.
  task @0 :TaskInfo;
  state @1 :TaskState;
  # The state of its oldest unacknowledged update (what the framework will
  # hear next); the latest state when every update is acknowledged.
  statusUuid @2 :Data;
  # uuid of its latest update not yet acknowledged; empty if none.
  frameworkId @3 :Text;
  # Task ids are unique only per framework, and a command task carries no
  # executor to say whose it is.
  latestState @4 :TaskState;
  # The newest state the agent knows, acknowledged or not: a terminal one
  # lets the master recover the task's resources at once.
}

struct ReregisterAgent {
  # Agent -> master: registration of a known agent (after a master failover
  # or an agent restart that recovered its tasks), with what it runs.
  agentInfo @0 :AgentInfo;
  version @1 :Text;
  tasks @2 :List(AgentTask);
  executors @3 :List(ExecutorInfo);
  frameworks @4 :List(FrameworkInfo);
  bootId @5 :Text;
  # As RegisterAgent.bootId.
  registrationSeq @6 :UInt64;
  # Counts this boot's reregistration episodes (1, 2, ...): every retry of
  # one episode carries the same number, and the agent starts a new one
  # each time it loses the master. The master reconciles the agent's tasks
  # once per (bootId, registrationSeq): a retry of an episode it already
  # processed is answered again but changes nothing (its task list is older
  # than the RunTasks sent since), and an older episode is ignored.
}

struct AgentRegistered {
  # Master -> agent: answers RegisterAgent with the assigned id.
  agentId @0 :Text;
  pingIntervalNs @1 :Int64;
  # The master pings this often; the agent may treat silence as disconnection.
  bootId @2 :Text;
  registrationSeq @3 :UInt64;
  # The registration answered: an answer to another boot or to an older
  # episode is late and ignored.
}

struct AgentReregistered {
  # Master -> agent: answers ReregisterAgent.
  agentId @0 :Text;
  pingIntervalNs @1 :Int64;
  # How often the (possibly new) master will ping; as in AgentRegistered.
  bootId @2 :Text;
  registrationSeq @3 :UInt64;
  # As in AgentRegistered.
}

struct RunTask {
  # Master -> agent: launch a task a framework accepted an offer for.
  frameworkInfo @0 :FrameworkInfo;
  task @1 :TaskInfo;
  executor @2 :ExecutorInfo;
  # Optional: the executor to run it under, when the task names one
  # (as task.executor); absent for command tasks.
  bootId @3 :Text;
  registrationSeq @4 :UInt64;
  # The agent registration (boot and episode) the master had last processed
  # when it sent this launch. The agent runs it only while it is still in
  # that registration: a launch that crosses a reregistration is refused,
  # and the master, which reconciles with the reregistration's task list,
  # reports it lost. Launches never run behind the master's back.
}

struct RunTaskGroup {
  # Master -> agent: launch tasks together under one executor.
  frameworkInfo @0 :FrameworkInfo;
  executor @1 :ExecutorInfo;
  tasks @2 :List(TaskInfo);
  bootId @3 :Text;
  registrationSeq @4 :UInt64;
  # As in RunTask.
}

struct TaskKey {
  frameworkId @0 :Text;
  taskId @1 :Text;
}

struct KillTask {
  # Master -> agent: kill a task (SIGTERM, then SIGKILL after the grace period).
  frameworkId @0 :Text;
  taskId @1 :Text;
  gracePeriodNs @2 :Int64;
}

struct StatusUpdate {
  # Agent -> master: a task's status. The agent retries (with backoff) until
  # a StatusUpdateAck with the same uuid comes back, and sends a task's
  # updates in order, one unacknowledged at a time.
  frameworkId @0 :Text;
  status @1 :TaskStatus;
  latestState @2 :TaskState;
  # The task's newest state, which may be past this update's while earlier
  # updates wait for acknowledgement (Mesos's latest_state): when it is
  # terminal the master recovers the task's resources without waiting for a
  # slow or disconnected framework to acknowledge everything before it.
}

struct StatusUpdateAck {
  # Master -> agent: the framework acknowledged the update with this uuid.
  agentId @0 :Text;
  frameworkId @1 :Text;
  taskId @2 :Text;
  uuid @3 :Data;
}

struct Ping {
  # Master -> agent: liveness check; the agent answers Pong with the same seq.
  seq @0 :UInt64;
  audit @1 :List(TaskKey);
  # Tasks the master placed on this agent that are still STAGING a while
  # after their launch was sent: the launch may have been lost on the way.
}

struct Pong {
  # Agent -> master: answers Ping.
  seq @0 :UInt64;
  unknown @1 :List(TaskKey);
  # The audited tasks this agent does not have. It will refuse their launch
  # should it still arrive, so the master may report them ended.
  frameworks @2 :List(Text);
  # The frameworks that have tasks or executors here: the master shuts
  # down any it removed (its ShutdownFramework was lost on the way).
}

struct ShutdownAgent {
  # Master -> agent: the master removed the agent; it must kill its tasks and stop.
  reason @0 :Text;
}

struct ShutdownFramework {
  # Master -> agent: the framework is gone; kill its tasks and executors.
  frameworkId @0 :Text;
}

struct ShutdownExecutor {
  # Master -> agent: relays a framework's shutdown call for one executor.
  frameworkId @0 :Text;
  executorId @1 :Text;
}

struct ExitedExecutor {
  # Agent -> master: an executor exited (status is its wait status); the
  # master tells the framework with a failure event.
  frameworkId @0 :Text;
  executorId @1 :Text;
  status @2 :Int32;
}

struct FrameworkToExecutor {
  # Master -> agent: a framework's message call, for the agent to hand to the executor.
  frameworkId @0 :Text;
  executorId @1 :Text;
  data @2 :Data;
}

struct ExecutorToFramework {
  # Agent -> master: an executor's message call, for the master to hand to the framework.
  agentId @0 :Text;
  frameworkId @1 :Text;
  executorId @2 :Text;
  data @3 :Data;
}

struct ReadSandboxFile {
  # Anyone -> agent, as a request: read part of a file in a task's sandbox
  # (what Mesos's /files/read endpoint serves). The agent answers SandboxFile.
  frameworkId @0 :Text;
  taskId @1 :Text;
  path @2 :Text;
  # Relative to the sandbox, such as "stdout"; no "..", no leading "/".
  offset @3 :UInt64;
  lengthMax @4 :UInt64;
  # The agent caps it at 1 MiB.
}

struct SandboxFile {
  # Agent -> reader: answers ReadSandboxFile.
  union {
    data @0 :Data;
    # The bytes at [offset, offset + length); shorter than asked at the end.
    error @1 :Text;
    # Unknown task, bad path, or the file cannot be read.
  }
  size @2 :UInt64;
  # The file's whole size, so a reader knows whether more is left.
}

struct GetContainerUsage {
  # Anyone -> agent, as a request: the resource usage of its containers
  # (Mesos's /monitor/statistics). The agent answers ContainerUsage.
  frameworkId @0 :Text;
  executorId @1 :Text;
  # Both empty: every container; otherwise that executor's container only.
}

struct ContainerStats {
  # One container (the cgroup, or for posix isolation the process session,
  # of one executor run) as measured at timestampNs.
  frameworkId @0 :Text;
  executorId @1 :Text;
  containerId @2 :Text;
  # The executor run's id.
  isolation @3 :Text;
  # "cgroups-v1", "cgroups-v2" or "posix".
  timestampNs @4 :Int64;
  cpuTimeNs @5 :UInt64;
  # User plus system CPU time of every process, living or ended, in it.
  cpusLimitMilli @6 :UInt64;
  # The CPU share it may use (0: not limited).
  memRssBytes @7 :UInt64;
  memPeakBytes @8 :UInt64;
  memLimitBytes @9 :UInt64;
  # 0: not limited.
  processes @10 :UInt32;
  pidsLimit @11 :UInt32;
  oomKills @12 :UInt32;
  # Processes the kernel (or, for posix isolation, the agent) killed for memory.
}

struct ContainerUsage {
  # Agent -> reader: answers GetContainerUsage.
  containers @0 :List(ContainerStats);
  error @1 :Text;
  # Set (and containers empty) when the named container is unknown.
}
