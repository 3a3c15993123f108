#pragma once
// Who is behind each remote node, and which node addresses each may speak
// for: the binding of a sender to the connection it arrived on (issue #14).
//
// Over mutual TLS every connection proves an identity (its certificate,
// tls.hpp). The transport watches each connection's BASP handshake and binds
// the CAF node the peer names there to that identity (bind_node); a CAF node
// already bound to another identity on a live connection is refused, and so
// is any routed, monitor or down message that names another node as its
// source. A message from a remote node therefore arrives from a CAF node whose
// identity is known, and admit() decides whether its envelope's sender
// address (name@host:port) is one that identity may speak for:
//   - never an address of this node;
//   - only a host its certificate names;
//   - a host:port another identity speaks for is refused. The binding of a
//     host:port to an identity comes first from the node's own dialling (the
//     certificate of whoever listens there: verified) and otherwise from the
//     first identity that speaks for it; a verified binding replaces an
//     unverified one. One identity holds at most
//     address_bindings_per_principal_max unverified bindings, so no peer can
//     fill the table and push out another's.
// A CAF node id is only a claim (CAF cannot prove one), so the first identity
// to name a node keeps it while it has a connection, and for
// node_rebind_grace after its last one closes: a certified peer that names
// another's node id is refused and counted (nodes_refused), never let in, at
// the cost that it can keep the rightful peer out while it holds the id
// (denial of service by a principal the logs name, not impersonation).
// Roles are the actors' business (Actor::principal()): an agent obeys only
// a master's certificate, a master admits only agents' certificates as
// agents.
//
// Without TLS (a plaintext node) nothing is bound and everything is admitted:
// plaintext is for tests and a laptop (--insecure).
//
// Thread-safety: every member may be called from any thread (the
// multiplexer's and the actors'); one mutex, held briefly. Actors cache
// answers keyed by generation(), which changes whenever a binding goes.

#include "runtime/address.hpp"
#include "runtime/error.hpp"
#include "runtime/tls.hpp"

#include <caf/node_id.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tessera {

using PrincipalPtr = std::shared_ptr<const PeerIdentity>;

struct PeerCounters {
  std::atomic<uint64_t> tls_established{0};
  std::atomic<uint64_t> tls_refused{0};     // handshakes failed, identities refused
  std::atomic<uint64_t> nodes_refused{0};   // a CAF node claimed by a second identity
  std::atomic<uint64_t> forged_sources{0};  // BASP messages naming another source node
  std::atomic<uint64_t> forged_senders{0};  // envelopes naming an address not theirs
};

class PeerTable {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // At most this many host:port bindings are kept; when full, a new
  // unverified one is refused and a verified one takes an unverified one's
  // place.
  static constexpr size_t address_bindings_max = 65536;
  static constexpr size_t address_bindings_per_principal_max = 1024;
  // At most this many CAF nodes are remembered (bound or in their grace).
  static constexpr size_t node_bindings_max = 65536;
  static constexpr std::chrono::seconds node_rebind_grace{60};

  // context: the node's TLS, or null for a plaintext node. now: the clock
  // of the rebinding grace (tests give their own).
  explicit PeerTable(std::shared_ptr<const TlsContext> context,
                     Clock now = std::chrono::steady_clock::now);

  bool secure() const { return context_ != nullptr; }
  const std::shared_ptr<const TlsContext>& context() const { return context_; }
  // This node's own identity; null for a plaintext node.
  const PrincipalPtr& own() const { return own_; }
  PeerCounters& counters() { return counters_; }
  const PeerCounters& counters() const { return counters_; }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // -- from the transport (the multiplexer thread) ----------------------------

  // Connection conn proved identity and named CAF node `node` in its BASP
  // handshake. False (and *why) when another identity holds that node.
  bool bind_node(uint64_t conn, const caf::node_id& node, PrincipalPtr identity, std::string* why);
  void connection_closed(uint64_t conn);
  // This node dialled host:port (a node id) and the listener there proved
  // identity.
  void bind_address_verified(const std::string& node_id, const PrincipalPtr& identity);

  // -- from actors -----------------------------------------------------------

  // The identity behind CAF node `from`, if a live connection proved one.
  PrincipalPtr identity_of(const caf::node_id& from) const;
  // Whether an envelope from remote CAF node `from` may name sender (empty:
  // anonymous); the sender's identity if so, the reason if not. local_node_id
  // is this node's host:port.
  expected<PrincipalPtr> admit(const caf::node_id& from, const Address& sender,
                               const std::string& local_node_id);

 private:
  struct NodeBinding {
    PrincipalPtr identity;
    size_t connections = 0;
    std::chrono::steady_clock::time_point released{};  // when connections reached 0
  };
  struct AddressBinding {
    PrincipalPtr identity;
    bool verified = false;
  };
  void bump() { generation_.fetch_add(1, std::memory_order_acq_rel); }
  void forget_released_nodes();
  // Adds an unverified binding; false (and *why) when its identity has too
  // many or the table is full.
  bool bind_unverified(const std::string& node_id, const PrincipalPtr& identity, std::string* why);
  void drop_address(std::unordered_map<std::string, AddressBinding>::iterator it);

  std::shared_ptr<const TlsContext> context_;
  Clock now_;
  PrincipalPtr own_;
  PeerCounters counters_;
  std::atomic<uint64_t> generation_{1};
  mutable std::mutex mu_;
  std::map<caf::node_id, NodeBinding> nodes_;
  std::unordered_map<uint64_t, caf::node_id> connections_;
  std::unordered_map<std::string, AddressBinding> addresses_;
  std::unordered_map<std::string, size_t> unverified_of_;  // by principal (to_string())
};

bool same_principal(const PeerIdentity& a, const PeerIdentity& b);

}  // namespace tessera
