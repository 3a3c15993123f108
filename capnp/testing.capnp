@0xc4e1d2a7b3f50a11;
# Messages the runtime's tests and benchmarks exchange. They exist to exercise
# the envelope, routing and rejection paths with realistic shapes: a scalar
# ping/pong, and a message with text, data and a list.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("tessera::wire::testing");

struct Ping {
  seq @0 :UInt64;
  # The sender's running count, so the receiver can check order.
}

struct Pong {
  seq @0 :UInt64;
  count @1 :UInt64;
  # How many pings the ponger has seen so far, including this one.
}

struct Blob {
  tag @0 :Text;
  bytes @1 :Data;
  values @2 :List(UInt32);
}

struct Tick {
  # A content-free message for one-way throughput benchmarks.
  n @0 :UInt64;
}
