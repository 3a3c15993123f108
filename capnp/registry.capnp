@0x84511d7736894706;
# The master's registry: what must outlive the master, one small record per
# thing (services/registry/registry.hpp names the keys). Records are written
# before the master acts on them and read back when a master starts; none
# crosses the network between actors.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";

struct RegistryMaster {
  # Key "master": which master run wrote last.
  epoch @0 :UInt64;
  # Bumped by every master that recovers from the registry.
}

struct RegistryAgent {
  # Key "agent/<agent id>": an agent the master admitted.
  agentId @0 :Text;
  hostname @1 :Text;
  address @2 :Text;
  # Where it last registered from (informational; it reregisters anyway).
  state @3 :State;
  enum State {
    admitted @0;
    # Registered; after a master restart it may reregister with its tasks.
    unreachable @1;
    # Its tasks were reported unreachable or lost; it may come back.
    removed @2;
    # Its tasks were reported gone; it must register as a new agent.
  }
  since @4 :Int64;
  # Nanoseconds on the runtime clock when it entered this state.
  reason @5 :Text;
  # Why it was removed.
  order @6 :UInt64;
  # Removal order: the oldest removed agents are forgotten first.
  deactivated @7 :Bool;
  # An operator took it out of the pool (DEACTIVATE_AGENT or DRAIN_AGENT).
  drain @8 :UInt8;
  # 0: not draining; 1: draining (its tasks are being killed); 2: drained.
  drainGraceNs @9 :Int64;
  # The drain's upper bound on each task's kill grace period.
  reservations @10 :List(Common.Resource);
  # Dynamic reservations operators made here (RESERVE_RESOURCES), each with
  # its role; applied to what the agent advertises whenever it registers.
}

struct RegistryEnded {
  # Key "ended/<agent id>/<framework id>/<task id>": the master told the
  # framework this task ended (TASK_LOST) while its agent was away. When the
  # agent comes back running it, the task is killed and its updates are
  # absorbed, so the framework hears one terminal state, whichever master
  # hears the agent.
  frameworkId @0 :Text;
  taskId @1 :Text;
  agentId @2 :Text;
}

struct RegistryFramework {
  # Key "framework/<framework id>".
  info @0 :Common.FrameworkInfo;
  removed @1 :Bool;
  # Torn down, or its failover timeout expired: it may never come back.
  reason @2 :Text;
  order @3 :UInt64;
  # Removal order, as RegistryAgent.order.
}

struct RegistryRole {
  # Key "role/<role>": what an operator set for a role.
  role @0 :Text;
  weight @1 :Float64;
  # 0: not set (every role's default, 1).
  quota @2 :List(Common.Resource);
  # Scalars; empty: no quota.
}
