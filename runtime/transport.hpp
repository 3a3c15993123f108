#pragma once
// The guarded listening side of a node's network transport.
//
// CAF's BASP broker reads a 32-byte header, then configures an exact read of
// the payload length the header claims (up to 4 GiB) and its stream resizes
// its buffer to that length before a byte of the payload arrives: one packet
// could make a node allocate gigabytes. CAF 0.17 has no option to bound it.
//
// A node therefore does not publish through the middleman actor. It opens the
// listening socket itself and hands the BASP broker its own doorman, whose
// connections are CAF's ordinary TCP scribes with three guards added, all on
// the multiplexer thread, with no extra copy or hop:
//   - a read longer than frame_bytes_max is refused before CAF sizes its buffer
//     for it; the connection is closed (the broker sees it fail) and counted;
//   - at most connections_max inbound connections are open; more are closed at
//     accept and counted;
//   - an inbound connection that has received nothing for idle_timeout is
//     closed and counted. Live peers are never idle: nodes send CAF's BASP
//     heartbeats (NodeConfig::heartbeat_interval_ms) on every connection.
// Outbound connections (dialled by the node's connector, connector.hpp)
// share the frame limit and the idle clock.
//
// On a node with TLS (NodeConfig::tls) every connection, inbound or
// outbound, speaks mutual TLS 1.3 (tls.hpp): nothing is written before the
// handshake ends, a handshake not done within handshake_timeout is closed,
// and the BASP messages read are watched so that the node a peer names is
// bound to the identity its certificate proved (peers.hpp).
//
// Every connection, inbound or outbound, has a handle unique for the life of
// the process, not CAF's fd number: the BASP broker cleans up a closed
// connection late, by handle, and must never hit a newer connection that got
// the same fd (transport.cpp, UniqueScribe).
//
// Thread-safety: the counters may be read from any thread; everything else
// runs on the multiplexer thread.

#include "runtime/error.hpp"
#include "runtime/peers.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace tessera {

struct TransportLimits {
  size_t frame_bytes_max = 0;                 // largest read a peer may ask for
  size_t connections_max = 0;                 // inbound connections open at once
  std::chrono::milliseconds idle_timeout{0};  // 0: never closed for silence
  // Bytes queued towards one peer behind the write in progress; a peer that
  // stops reading has its connection closed beyond this. 0: unbounded.
  size_t write_buffer_bytes_max = 0;
  // A TLS connection whose handshake has not ended this long after it
  // opened is closed (checked by the idle sweep). 0: never.
  std::chrono::milliseconds handshake_timeout{0};
};

struct TransportCounters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> open{0};                 // inbound connections open now
  std::atomic<uint64_t> dialled_open{0};         // outbound ones (under the same guard)
  std::atomic<uint64_t> refused_connections{0};  // beyond connections_max
  std::atomic<uint64_t> refused_frames{0};       // beyond frame_bytes_max
  std::atomic<uint64_t> idle_closed{0};
  std::atomic<uint64_t> write_overflow_closed{0};  // peers that stopped reading
};

class TransportGuard;

// Listens on host:port (0: any free port) and publishes router there through
// the BASP broker of system's middleman, under limits. Returns the port.
// The guard lives as long as the returned handle (and its connections).
struct GuardedListener {
  uint16_t port = 0;
  std::shared_ptr<TransportGuard> guard;
  const TransportCounters& counters() const;
  // Closes inbound connections idle for longer than the idle timeout; a node
  // calls it periodically. Thread-safe (it runs on the multiplexer thread).
  void sweep(caf::actor_system& system) const;
};

// A connection over fd, a connected non-blocking TCP socket, for the BASP
// broker (it takes ownership of fd), under a unique handle and, with a
// guard (a listener's), its frame limit and idle timeout; it is not counted
// against connections_max.
// On a secure node (guard->peers) the connection speaks TLS and the peer's
// certificate must name host.
expected<caf::io::scribe_ptr> new_connection_scribe(caf::actor_system& system, int fd,
                                                    const std::shared_ptr<TransportGuard>& guard,
                                                    const std::string& host);

// Who the peer of a connection made by new_connection_scribe proved to be
// (after its handshake); null on a plaintext connection.
PrincipalPtr connection_identity(const caf::io::scribe_ptr& scribe);

// Closes a connection made by new_connection_scribe as a failure would, on
// the multiplexer thread; nothing if it has closed already.
void abandon_connection(caf::actor_system& system, caf::io::scribe_ptr scribe);

// Drops a reference to such a connection on the multiplexer thread. Every
// connection must end there: its guard's sweep walks the live connections
// there, and a connection destroyed on another thread meanwhile would be
// used after it is freed.
void release_connection(caf::actor_system& system, caf::io::scribe_ptr scribe);

expected<GuardedListener> listen_guarded(caf::actor_system& system, const caf::actor& router,
                                         const std::string& host, uint16_t port,
                                         const TransportLimits& limits,
                                         std::shared_ptr<PeerTable> peers);

}  // namespace tessera
