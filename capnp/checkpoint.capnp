@0xc0b04b456f75ec69;
# What an agent writes to its work_dir's meta/ folder so that a restarted
# agent can recover its executors and tasks (Mesos's slave checkpoints). Not a
# wire protocol: nobody sends these. Each struct is the root of one file,
# written by services/agent/checkpoint.hpp, one small file per agent,
# framework, executor run and task, so one task change rewrites one file.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";
using AgentInfo = Common.AgentInfo;
using FrameworkInfo = Common.FrameworkInfo;
using ExecutorInfo = Common.ExecutorInfo;
using TaskInfo = Common.TaskInfo;
using TaskState = Common.TaskState;
using TaskStatus = Common.TaskStatus;

struct AgentRecord {
  # meta/agent.info: who this agent is.
  agentInfo @0 :AgentInfo;
  # As the master accepted it; agentInfo.agentId is the id it assigned.
  masterAddress @1 :Text;
  # The master it registered with (name@host:port).
  version @2 :Text;
  # The agent's version when it wrote this.
}

struct FrameworkRecord {
  # meta/frameworks/F/framework.info
  info @0 :FrameworkInfo;
}

struct ExecutorRunRecord {
  # meta/frameworks/F/executors/E/runs/R/run.info: one start of one executor.
  frameworkId @0 :Text;
  executorId @1 :Text;
  runId @2 :Text;
  pid @3 :Int32;
  # Its process (0: in-process or not started yet).
  containerId @4 :Text;
  isolation @5 :Text;
  # "cgroups-v1", "cgroups-v2" or "posix".
  cgroupPaths @6 :List(Text);
  # The cgroups it was placed in, to find (and kill) its processes again.
  executorAddress @7 :Text;
  # Its actor address once it subscribed (name@host:port); empty before.
  sandbox @8 :Text;
  # Absolute path of the run's sandbox directory.
  executorInfo @9 :ExecutorInfo;
  # Optional (hasExecutorInfo()): absent for a command task's executor.
  tasks @10 :List(TaskInfo);
  # Every task it was given, in order.
  pidStartTime @11 :UInt64;
  # When pid started (/proc/<pid>/stat field 22, clock ticks after boot):
  # recovery adopts pid only if the process there still started then.
  # 0 with pid 0: written before the process was started.
}

struct TaskRecord {
  # meta/frameworks/F/tasks/T/task.info: one task and its status update
  # stream (services/agent/status_update_stream.hpp).
  frameworkId @0 :Text;
  executorId @1 :Text;
  # Empty until it has one.
  runId @2 :Text;
  task @3 :TaskInfo;
  pending @4 :List(TaskStatus);
  # Every update received and not yet acknowledged by the master, oldest
  # first: the first is the one to (re)send.
  seenUuids @5 :List(Data);
  # Uuids already taken (acknowledged or pending), oldest first, at most the
  # stream's seen_max: an executor's retry of one of them is a duplicate.
  latestState @6 :TaskState;
  # The newest state received, acknowledged or not.
  terminated @7 :Bool;
  # A terminal update was received: nothing more is taken.
}
