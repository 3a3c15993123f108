@0xbf6cf7083e133802;
# Types shared by every Tessera protocol (scheduler.capnp, executor.capnp,
# agent.capnp), after Apache Mesos v1's mesos.proto. Nobody sends these on their
# own: they are the parts that calls, events and master<->agent messages carry.
#
# Conventions:
#  - ids (framework, agent, task, offer, executor) are Text fields named
#    frameworkId, agentId, ...; an empty id means "not set";
#  - durations and times are Int64 nanoseconds (fields end in Ns);
#  - a struct-typed field is optional when the text says so: test it with the
#    generated has...() accessor.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

struct Range {
  # An inclusive range of integers, such as ports 31000-32000.
  begin @0 :UInt64;
  end @1 :UInt64;
}

struct Resource {
  # One named resource for one role; a list of them is what C++'s
  # tessera::Resources holds (services/common/resources.hpp).
  name @0 :Text;
  role @1 :Text = "*";
  # The role it is reserved for; "*" (the default) means unreserved.
  union {
    scalarMilli @2 :Int64;
    # A quantity in thousandths: cpus 1.5 is 1500, mem 4096 MiB is 4096000.
    ranges @3 :List(Range);
    set @4 :List(Text);
  }
}

struct Attribute {
  # A fact about an agent (rack, zone, ...) that frameworks may place by.
  # Unlike resources, attributes are never consumed.
  name @0 :Text;
  union {
    text @1 :Text;
    scalar @2 :Float64;
    ranges @3 :List(Range);
  }
}

struct Label {
  # A free-form key/value pair that frameworks attach to tasks; Tessera only
  # stores and reports it.
  key @0 :Text;
  value @1 :Text;
}

enum TaskState {
  # A task's life cycle, as Mesos's TaskState. Terminal: finished, failed,
  # killed, error, lost, dropped, gone. Partition-aware frameworks never see
  # lost (they get unreachable, dropped or gone instead); unreachable and
  # unknown are also reconciliation answers.
  staging @0;      # The master accepted the launch; the agent has not yet started it.
  starting @1;     # The agent is starting the executor or fetching.
  running @2;
  killing @3;      # Kill requested; only sent to frameworks with taskKilledState.
  finished @4;     # Ended successfully.
  failed @5;       # Ended with an error (non-zero exit, signal).
  killed @6;       # Ended because it was killed.
  error @7;        # Could not be launched: invalid task or offers.
  lost @8;         # Old-style failure report for non partition-aware frameworks.
  dropped @9;      # Never reached the agent, or the agent dropped it.
  unreachable @10; # Its agent is partitioned from the master; it may come back.
  gone @11;        # Its agent was removed for good; the task is not running.
  unknown @12;     # Nobody knows it (reconciliation of an unknown task).
}

struct TaskStatus {
  # A state change or health report of one task. Executors send it to their
  # agent, the agent forwards it to the master (agent.capnp StatusUpdate) and
  # the master to the framework (scheduler.capnp SchedulerEvent.update); the
  # master also makes some itself (reconciliation, lost agents).

  enum Reason {
    # Why the task reached its state; none when there is nothing to add.
    none @0;
    commandExited @1;              # The command exited; exit code or signal in message.
    commandExecutorFailed @2;
    containerLaunchFailed @3;
    containerLimitationMemory @4;  # Killed for going over its memory limit.
    containerLimitationDisk @5;
    containerPreempted @6;
    executorRegistrationTimeout @7;
    executorTerminated @8;
    executorUnregistered @9;
    fetchFailed @10;               # A CommandInfo uri could not be fetched.
    frameworkRemoved @11;
    invalidFrameworkId @12;
    invalidOffers @13;
    masterDisconnected @14;
    reconciliation @15;            # Sent in answer to a reconcile call.
    agentDisconnected @16;
    agentRemoved @17;
    agentRestarted @18;
    agentUnknown @19;
    agentUnreachable @20;
    taskGroupInvalid @21;
    taskInvalid @22;
    taskKilledDuringLaunch @23;
    taskUnknown @24;
    taskUnhealthy @25;             # Killed after failing its health checks.
    killedByScheduler @26;         # Killed on the framework's kill call.
  }

  enum Source {
    # Who made the update.
    master @0;
    agent @1;
    executor @2;
  }

  taskId @0 :Text;
  state @1 :TaskState;
  reason @2 :Reason;
  message @3 :Text;
  # Human-readable detail. For commandExited it reads "Command exited with
  # status N" or "Command terminated with signal NAME", as Mesos; exitCode
  # and termSignal say the same for programs.
  timestampNs @4 :Int64;
  # When the source made it, nanoseconds since the Unix epoch on its clock.
  uuid @5 :Data;
  # Set on updates that need an acknowledgement (from agents and executors);
  # the framework acknowledges with the same bytes. Empty for master-made ones.
  source @6 :Source;
  hasHealthy @7 :Bool;
  # True when the task has health checks and healthy holds their last result.
  healthy @8 :Bool;
  agentId @9 :Text;
  executorId @10 :Text;
  exitCode @11 :Int32 = -1;
  # The command's exit code once it exited by itself; -1 otherwise.
  termSignal @12 :Int32;
  # The signal that ended the command; 0 if none did.
}

struct EnvVar {
  # One environment variable for a command.
  name @0 :Text;
  value @1 :Text;
}

struct Uri {
  # A file the agent fetches into the sandbox before running a command.
  value @0 :Text;
  extract @1 :Bool = true;  # Unpack archives (.tar.gz, .zip, ...).
  executable @2 :Bool;      # chmod +x after fetching.
  cache @3 :Bool;           # May be served from the agent's fetcher cache.
}

struct CommandInfo {
  # What to run for a task or executor.
  union {
    shell @0 :Text;
    # Run with /bin/sh -c.
    argv @1 :List(Text);
    # Run directly: argv[0] is the program (looked up in PATH), then its arguments.
  }
  environment @2 :List(EnvVar);
  user @3 :Text;
  # Run as this user; empty: the framework's user.
  uris @4 :List(Uri);
}

struct KillPolicy {
  # How to kill a task: SIGTERM, then SIGKILL after the grace period.
  gracePeriodNs @0 :Int64;
}

struct HealthCheck {
  # How an executor checks that a task is healthy, after Mesos's
  # HealthCheck. Unset fields take Mesos's defaults. A check that fails
  # within the grace period (counted from the task's start) is not counted;
  # once consecutiveFailures checks in a row have failed after it, the task
  # is killed and reported failed with reason taskUnhealthy.
  enum Type {
    command @0;  # Run command in the task's sandbox; exit 0 is healthy.
    http @1;     # GET http://127.0.0.1:port/path; status 200-399 is healthy.
    tcp @2;      # Connect to 127.0.0.1:port; a connection is healthy.
  }
  type @0 :Type;
  command @1 :CommandInfo;
  # For command checks.
  port @2 :UInt16;
  # For http and tcp checks.
  path @3 :Text = "/";
  # For http checks.
  delayNs @4 :Int64 = 15000000000;
  # From the task's start to the first check.
  intervalNs @5 :Int64 = 10000000000;
  timeoutNs @6 :Int64 = 20000000000;
  # A check that takes longer has failed.
  consecutiveFailures @7 :UInt32 = 3;
  gracePeriodNs @8 :Int64 = 10000000000;
  ipv6 @9 :Bool;
  # For http and tcp checks: ::1 instead of 127.0.0.1 (Mesos's protocol IPv6).
}

struct ExecutorInfo {
  # The executor that runs a framework's tasks: its own (custom: command is
  # what the agent starts) or the agent's default executor for task groups.
  executorId @0 :Text;
  frameworkId @1 :Text;
  command @2 :CommandInfo;
  resources @3 :List(Resource);
  type @4 :Type;
  enum Type {
    custom @0;
    default @1;  # The agent's built-in executor; command is not used.
  }
}

struct TaskInfo {
  # A task a framework launches on offered resources. In a LAUNCH, exactly
  # one of command (run under the agent's built-in command executor) or
  # executor is set. In a LAUNCH_GROUP every task has a command and the
  # executor is the group's, so executor is unset.
  taskId @0 :Text;
  name @1 :Text;
  agentId @2 :Text;
  resources @3 :List(Resource);
  command @4 :CommandInfo;      # Optional (hasCommand()).
  executor @5 :ExecutorInfo;    # Optional (hasExecutor()).
  killPolicy @6 :KillPolicy;    # Optional; absent: the agent's default grace period.
  labels @7 :List(Label);
  healthCheck @8 :HealthCheck;  # Optional (hasHealthCheck()).
}

enum FrameworkCapability {
  # Behaviours a framework opts into when it subscribes.
  partitionAware @0;     # Receives unreachable/gone/dropped instead of lost.
  multiRole @1;          # Uses roles (and offers' allocationRole) rather than one role.
  taskKilledState @2;    # Receives killing updates.
  revocableResources @3;
  gpuResources @4;       # May be offered agents with gpus.
}

struct FrameworkInfo {
  # Who a framework is; sent in its subscribe call and kept by the master.
  frameworkId @0 :Text;
  # Empty on the first subscribe; the master assigns one. Set to fail over.
  name @1 :Text;
  user @2 :Text;
  roles @3 :List(Text);
  principal @4 :Text;
  failoverTimeoutNs @5 :Int64;
  # How long the master keeps the framework's tasks after it disconnects.
  capabilities @6 :List(FrameworkCapability);
}

struct AgentInfo {
  # An agent as it registers with the master.
  agentId @0 :Text;
  # Empty on first registration; the master assigns one.
  hostname @1 :Text;
  port @2 :UInt16;
  resources @3 :List(Resource);
  # Its total resources, reservations included.
  attributes @4 :List(Attribute);
  httpAddress @5 :Text;
  # HOST:PORT of the agent's HTTP API (files, containers); empty: none.
}

struct MasterInfo {
  # The master a framework is subscribed to.
  address @0 :Text;
  # Its actor address, name@host:port.
}

struct Offer {
  # Resources of one agent that the master offers one framework for one role.
  offerId @0 :Text;
  frameworkId @1 :Text;
  agentId @2 :Text;
  hostname @3 :Text;
  resources @4 :List(Resource);
  attributes @5 :List(Attribute);
  allocationRole @6 :Text;
  # Of the framework's roles, the one these resources are allocated to.
  agentAddress @7 :Text;
  # The agent's actor address (name@host:port): frameworks read task
  # sandboxes from it (agent.capnp ReadSandboxFile).
}

struct Filters {
  # Sent with accept and decline: how long to not re-offer the left-over or
  # declined resources of that agent to this framework.
  refuseSeconds @0 :Float64 = 5.0;
}

struct NotLeader {
  # A standby master's answer to a registration or a call meant for the
  # leading master (several masters, `tessera master --zk`).
  leader @0 :Text;
  # The leading master's address, name@host:port; empty: none known yet.
}
