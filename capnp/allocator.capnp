@0xe3a1c1a0f3b2d4c5;
# Master <-> allocator protocol. The allocator is an actor of its own, on the
# master's node; the master tells it what changed and it answers with offers.
# All messages are one-way: the allocator applies them in the order they
# arrive, and the master ignores grants for agents or frameworks it has
# already removed (the allocator removed them too, right after).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire");

using Common = import "common.capnp";
using Resource = Common.Resource;

struct AllocatorAddAgent {
  agentId @0 :Text;
  total @1 :List(Resource);
  used @2 :List(AllocatorUse);
  # What tasks already hold there (an agent reregistering with tasks).
  epoch @3 :UInt64;
  # Grows each time the master adds this agent; grants carry it back, so a
  # grant made before the agent was removed and added again is recognised.
}

struct AllocatorUse {
  frameworkId @0 :Text;
  role @1 :Text;
  resources @2 :List(Resource);
}

struct AllocatorRemoveAgent {
  agentId @0 :Text;
}

struct AllocatorAddFramework {
  frameworkId @0 :Text;
  roles @1 :List(Text);
  suppressed @2 :Bool;
  # Start without offers until revive.
}

struct AllocatorRemoveFramework {
  frameworkId @0 :Text;
}

struct AllocatorRecover {
  # Resources the framework held return: an offer declined, rescinded or
  # partly used, a task that ended. refuseSeconds > 0 also filters the agent
  # for the framework that long (a decline).
  frameworkId @0 :Text;
  agentId @1 :Text;
  role @2 :Text;
  resources @3 :List(Resource);
  refuseSeconds @4 :Float64;
}

struct AllocatorSuppress {
  frameworkId @0 :Text;
  roles @1 :List(Text);
}

struct AllocatorRevive {
  frameworkId @0 :Text;
  roles @1 :List(Text);
}

struct AllocatorSetWeight {
  role @0 :Text;
  weight @1 :Float64;
}

struct AllocatorSetQuota {
  role @0 :Text;
  limit @1 :List(Resource);
  # Scalars only; the most the role may hold at once.
}

struct AllocatorGrant {
  frameworkId @0 :Text;
  agentId @1 :Text;
  role @2 :Text;
  resources @3 :List(Resource);
  agentEpoch @4 :UInt64;
  # The epoch of the AllocatorAddAgent these resources came from.
}

struct AllocatorOffers {
  # Allocator -> master: what one allocation cycle handed out.
  grants @0 :List(AllocatorGrant);
}
