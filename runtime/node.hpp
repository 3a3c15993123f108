#pragma once
// A Node is one CAF actor system plus the Tessera layer on top: a registry of
// named actors, a listening port that makes them reachable as name@host:port,
// the clock, filters, counters and the process launcher its actors share.
//
// Deployments: Node::start() makes a real node (own scheduler threads, CAF's
// io middleman, a TCP port). A Simulation makes logical nodes that share one
// single-threaded, seeded actor system (see simulation.hpp). Actors cannot tell
// the difference.
//
// Lifecycle: start() -> spawn()... -> stop() (or the destructor). stop() ends
// every actor of the node, closes its port and waits for the actors to finish.
// Thread-safety: all public members may be called from any thread, except
// stop() (and the destructor) from one of the node's own actors: it waits
// for every actor to finish, the caller included.

#include "runtime/address.hpp"
#include "runtime/clock.hpp"
#include "runtime/filter.hpp"
#include "runtime/message.hpp"
#include "runtime/stats.hpp"
#include "runtime/transport.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tessera {

class BlockingPool;
class ProcessLauncher;
class Simulation;
class Actor;

struct NodeConfig {
  std::string host = "127.0.0.1";  // the address to bind; 0.0.0.0 or ::: every interface
  uint16_t port = 0;               // 0: the OS picks a free port
  // The address others reach this node at: the host:port in every address
  // the node hands out (name@host:port), so in every identity the cluster
  // keeps. Empty / 0: the bind host and the port bound. A wildcard bind host
  // with no advertise_host advertises default_advertise_host(host).
  std::string advertise_host;
  uint16_t advertise_port = 0;
  size_t message_bytes_max = size_t{64} << 20;
  uint64_t traversal_limit_words = uint64_t{64} << 17;  // 64 MiB of words
  // Cap'n Proto pointers may share their targets, so a few hundred bytes can
  // name millions of words for a handler to walk. A message is read as at
  // most this many times its own size (at least traversal_floor_words, at
  // most traversal_limit_words); more is refused as a traversal_limit.
  uint64_t traversal_per_payload_word = 8;
  uint64_t traversal_floor_words = uint64_t{1} << 16;  // 512 KiB
  uint32_t nesting_limit = 64;
  std::chrono::milliseconds resolve_timeout_ms{5000};
  size_t pending_per_peer_max = 65536;  // envelopes queued while connecting
  size_t batch_envelopes_max = 512;     // envelopes per network write, at most
  size_t scheduler_threads = 0;         // 0: CAF's default, max(cores, 4)
  // Idle scheduler workers skip CAF's "moderate" phase (500 polls 50 us
  // apart) and go straight to waiting on their condition variable, which an
  // enqueue signals: much lower latency and idle CPU, slightly lower one-way
  // throughput (../shared/TOOLCHAIN.md).
  bool low_latency = true;
  std::shared_ptr<Clock> clock;  // null: a new real clock
  // Mutual TLS on every connection (tls.hpp, peers.hpp); empty: plaintext.
  // A simulation ignores it.
  TlsConfig tls;

  // -- the transport's guards (transport.hpp) --------------------------------
  // A peer may announce a frame of at most message_bytes_max plus this (the
  // envelopes' addresses and CAF's own framing); a larger one is refused
  // before it is read and its connection closed.
  size_t frame_overhead_bytes = size_t{1} << 20;
  // A peer that stops reading (stopped, or hostile) while this node sends to
  // it has its connection closed once this many frames' worth of bytes
  // (frame_bytes_max() each) wait behind the write in progress, as if it had
  // failed: its proxies are lost, and what was queued for it with them.
  size_t write_buffer_frames_max = 4;
  // Inbound connections open at once; more are closed at accept.
  size_t connections_max = 1024;
  // An inbound connection that received nothing for this long is closed.
  // Zero: never. Must be well above peers' heartbeat_interval_ms.
  std::chrono::milliseconds connection_idle_timeout_ms{60000};
  // CAF's BASP heartbeats on every connection, so that quiet but live peers
  // are never idle. Zero: none.
  std::chrono::milliseconds heartbeat_interval_ms{5000};
  // Idle CAF scheduler workers wait on a condition variable this long between
  // steal attempts (CAF's work-stealing.relaxed-sleep-duration; 0: CAF's 10 ms).
  std::chrono::milliseconds idle_worker_sleep_ms{0};

  size_t frame_bytes_max() const { return message_bytes_max + frame_overhead_bytes; }

  // For a process that mostly waits (`tessera run`, an executor): one
  // scheduler worker that sleeps on its condition variable until work is
  // enqueued, instead of CAF's four or more polling workers; idles well
  // under 1% of a core.
  static NodeConfig lean() {
    NodeConfig c;
    c.scheduler_threads = 1;
    c.low_latency = true;
    c.idle_worker_sleep_ms = std::chrono::milliseconds(1000);  // no one to steal from
    return c;
  }
};

class Node {
 public:
  static expected<std::unique_ptr<Node>> start(NodeConfig config = {});
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void stop();

  // The advertised host and port: what this node's addresses name.
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  // Where the node listens (config().host) and the port it bound.
  uint16_t bound_port() const { return bound_port_; }
  std::string id() const;  // "host:port", advertised
  Address address_of(std::string name) const { return Address{std::move(name), host_, port_}; }
  const NodeConfig& config() const { return config_; }

  // Spawns actor type A (derived from tessera::Actor) under name. A's
  // constructor takes (caf::actor_config&, ActorInit, args...).
  template <class A, class... Ts>
  expected<Address> spawn(const std::string& name, Ts&&... args);

  // Sends from outside any actor (tests, command-line tools).
  void send(const Address& to, const Outgoing& msg);
  // Hands an envelope to a local actor or, for another node, to the network.
  // Its sender must be empty or one of this node's addresses: anything else
  // is refused and counted (Reject::forged_sender), never sent.
  void send_envelope(Envelope env);

  Clock& clock() { return *clock_; }
  FilterSet& filters() { return filters_; }
  Stats& stats() { return stats_; }
  // The listening side's counters (refused frames and connections, idle
  // closes); all zero in a simulation.
  const TransportCounters& transport_counters() const;
  // Who is behind each remote node (peers.hpp); plaintext (secure() false)
  // without TLS and in a simulation.
  PeerTable& peers() { return *peers_; }
  const PeerTable& peers() const { return *peers_; }
  bool secure() const { return peers_->secure(); }
  ProcessLauncher& launcher();
  // Threads for blocking work (Actor::blocking); started on first use.
  BlockingPool& blocking_pool();
  caf::actor_system& system() { return *system_; }
  Simulation* simulation() const { return sim_; }

  // Runs until no message sent within this node is waiting or being handled
  // (libprocess Clock::settle). False if that did not happen within timeout.
  // Messages from other processes are not counted, and neither are messages
  // dropped from the mailbox of an actor that exits: settle() then waits for
  // them in vain and returns false. Deterministic tests use Simulation::run().
  bool settle(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // -- used by the runtime itself ------------------------------------------
  caf::actor lookup_local(const std::string& name) const;
  // Dials other nodes (connector.hpp); null in a simulation.
  const caf::actor& connector() const { return connector_; }
  bool is_local(const Address& a) const { return a.port == port_ && a.host == host_; }
  std::atomic<int64_t>& inflight() { return inflight_; }

 private:
  friend class Simulation;
  friend class Actor;
  Node(NodeConfig config, std::unique_ptr<caf::actor_system> system, Simulation* sim,
       caf::actor_system* shared_system);
  expected<void> listen();
  void advertise();
  caf::error reserve(const std::string& name);
  void bind(const std::string& name, caf::actor handle);
  void unbind(const std::string& name, const caf::actor_addr& who);
  void kill_all();

  NodeConfig config_;
  std::string host_;         // advertised
  uint16_t port_ = 0;        // advertised
  uint16_t bound_port_ = 0;  // listened on
  std::unique_ptr<caf::actor_system_config> system_config_;
  std::unique_ptr<caf::actor_system> owned_system_;
  caf::actor_system* system_ = nullptr;
  Simulation* sim_ = nullptr;
  std::shared_ptr<Clock> clock_;
  FilterSet filters_;
  Stats stats_;
  std::atomic<int64_t> inflight_{0};
  caf::actor router_;
  std::shared_ptr<PeerTable> peers_;
  GuardedListener listener_;
  caf::actor sweeper_;    // closes idle inbound connections periodically
  caf::actor connector_;  // opens connections to other nodes, bounded in time
  mutable std::mutex mu_;
  std::unordered_map<std::string, caf::actor> actors_;  // null handle: reserved
  std::once_flag launcher_once_;
  std::unique_ptr<ProcessLauncher> launcher_;
  std::once_flag pool_once_;
  std::unique_ptr<BlockingPool> pool_;
  bool stopped_ = false;
};

// What the runtime hands an actor's constructor.
struct ActorInit {
  Node* node;
  std::string name;
};

template <class A, class... Ts>
expected<Address> Node::spawn(const std::string& name, Ts&&... args) {
  if (auto err = reserve(name))
    return err;
  // The actor binds its name in its constructor (Actor::Actor), before it can
  // run, so a message sent right after spawn() finds it. Its start counts as
  // in flight until on_start() has run, so settle() waits for it.
  inflight_.fetch_add(1, std::memory_order_relaxed);
  system_->spawn<A>(ActorInit{this, name}, std::forward<Ts>(args)...);
  return address_of(name);
}

// True for the hosts that mean "every interface": 0.0.0.0, ::, empty.
bool is_wildcard_host(const std::string& host);

// What a node bound to host advertises when told nothing: host itself, or for
// a wildcard host the first address this machine's name (gethostname)
// resolves to (IPv4 first), else 127.0.0.1. *warning, if given, is set when
// the result is a loopback address other machines cannot reach.
std::string default_advertise_host(const std::string& host, std::string* warning = nullptr);

// Builds the CAF configuration every real node uses: message types, error
// category and scheduler settings. Exposed so the bench's plain-CAF baseline
// runs on an identically tuned system.
void configure_actor_system(caf::actor_system_config& cfg, const NodeConfig& config);

}  // namespace tessera
