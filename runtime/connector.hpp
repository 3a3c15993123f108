#pragma once
// The dialling side of a node's transport: connects to another node's
// listener and performs CAF's BASP handshake, within a deadline.
//
// Why not CAF's middleman actor (`connect_atom` to middleman().actor_handle())?
// In CAF 0.17 it keeps one pending attempt per host:port
// (middleman_actor_impl.cpp, `pending_`) and attaches every later connect to
// that address to it, with no timeout anywhere: its TCP connect blocks until
// the kernel gives up, and an attempt whose server accepted the connection
// but never answered the handshake (too busy, or the handshake lost) stays
// pending for as long as the connection lives. Every retry of the resolve
// then waits on the same dead attempt, for ever.
//
// The connector does the same job with bounds: the TCP connect and the
// handshake together must complete within handshake_timeout, or the attempt is
// abandoned (its connection closed) and every request waiting on it fails;
// the next request opens a new connection. Requests for an address with an
// attempt under way wait for it (one connection per address), and a
// completed handshake is cached until the remote node's proxy goes down.
//
// Protocol: (caf::connect_atom, host, port) -> (node_id, strong_actor_ptr
// router, std::set<std::string>), as the middleman actor answers; an error
// (Errc::connect_failed or Errc::timeout) otherwise.
//
// Threading: a detached actor (the TCP connect blocks it, for at most
// handshake_timeout); abandoned connections are closed on the multiplexer
// thread.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>

namespace tessera {

class TransportGuard;
class PeerTable;

// guard: the node's listener's (frame limit, idle timeout, TLS), for the
// connections it dials too; null: none. peers: where it records who
// listens at each address it dialled (a secure node's sender binding).
caf::actor spawn_connector(caf::actor_system& system, std::chrono::milliseconds handshake_timeout,
                           std::shared_ptr<TransportGuard> guard, std::shared_ptr<PeerTable> peers);

}  // namespace tessera
