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
  }

  struct UpdateQuota {
    role @0 :Text;
    limit @1 :List(Common.Resource);
    # Scalars only; empty removes the role's quota.
  }
}

struct OperatorResponse {
  error @0 :Text;
  # Empty: done (recorded in the registry, and in force).
}
