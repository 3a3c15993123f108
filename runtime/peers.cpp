#include "runtime/peers.hpp"

namespace tessera {

bool same_principal(const PeerIdentity& a, const PeerIdentity& b) {
  return a.name == b.name && a.role == b.role;
}

PeerTable::PeerTable(std::shared_ptr<const TlsContext> context, Clock now)
    : context_(std::move(context)), now_(std::move(now)) {
  if (context_)
    own_ = std::make_shared<const PeerIdentity>(context_->own());
}

bool PeerTable::bind_node(uint64_t conn, const caf::node_id& node, PrincipalPtr identity,
                          std::string* why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto c = connections_.find(conn); c != connections_.end()) {
    if (c->second == node)
      return true;  // a repeated handshake on the same connection
    counters_.nodes_refused.fetch_add(1, std::memory_order_relaxed);
    if (why)
      *why = identity->to_string() + " named a second node on one connection";
    return false;
  }
  auto n = nodes_.find(node);
  if (n == nodes_.end()) {
    if (nodes_.size() >= node_bindings_max)
      forget_released_nodes();
    n = nodes_.emplace(node, NodeBinding{}).first;
  }
  auto& binding = n->second;
  if (binding.identity && !same_principal(*binding.identity, *identity)) {
    bool held = binding.connections > 0 || now_() - binding.released < node_rebind_grace;
    if (held) {
      counters_.nodes_refused.fetch_add(1, std::memory_order_relaxed);
      if (why)
        *why = identity->to_string() + " named the node of " + binding.identity->to_string() +
               (binding.connections > 0 ? "" : " (closed less than a minute ago)");
      return false;
    }
    binding.identity = nullptr;  // its grace is over: the node id is free again
  }
  if (!binding.identity)
    binding.identity = std::move(identity);
  ++binding.connections;
  connections_.emplace(conn, node);
  return true;
}

void PeerTable::connection_closed(uint64_t conn) {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = connections_.find(conn);
  if (c == connections_.end())
    return;
  auto n = nodes_.find(c->second);
  connections_.erase(c);
  if (n != nodes_.end() && --n->second.connections == 0) {
    n->second.released = now_();  // kept for its grace: admit() no longer lets it in
    bump();
  }
}

// Forgets nodes whose grace has passed, or, when there are still too many,
// every node without a connection.
void PeerTable::forget_released_nodes() {
  auto now = now_();
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    bool expired = it->second.connections == 0 && now - it->second.released >= node_rebind_grace;
    it = expired ? nodes_.erase(it) : std::next(it);
  }
  if (nodes_.size() < node_bindings_max)
    return;
  for (auto it = nodes_.begin(); it != nodes_.end();)
    it = it->second.connections == 0 ? nodes_.erase(it) : std::next(it);
}

void PeerTable::drop_address(std::unordered_map<std::string, AddressBinding>::iterator it) {
  if (!it->second.verified) {
    auto owner = unverified_of_.find(it->second.identity->to_string());
    if (owner != unverified_of_.end() && --owner->second == 0)
      unverified_of_.erase(owner);
  }
  addresses_.erase(it);
}

bool PeerTable::bind_unverified(const std::string& node_id, const PrincipalPtr& identity,
                                std::string* why) {
  if (addresses_.size() >= address_bindings_max) {
    *why = "the table of " + std::to_string(address_bindings_max) + " sender addresses is full";
    return false;
  }
  auto& count = unverified_of_[identity->to_string()];
  if (count >= address_bindings_per_principal_max) {
    *why = identity->to_string() + " already speaks for " + std::to_string(count) + " addresses";
    return false;
  }
  ++count;
  addresses_.emplace(node_id, AddressBinding{identity, false});
  return true;
}

void PeerTable::bind_address_verified(const std::string& node_id, const PrincipalPtr& identity) {
  if (!identity)
    return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = addresses_.find(node_id);
  if (it != addresses_.end()) {
    if (!same_principal(*it->second.identity, *identity))
      bump();  // a false claim loses its answers cached by actors
    drop_address(it);
  } else if (addresses_.size() >= address_bindings_max) {
    // Dialled addresses always fit: one that was not dialled makes room.
    auto victim = addresses_.begin();
    for (auto a = addresses_.begin(); a != addresses_.end(); ++a)
      if (!a->second.verified) {
        victim = a;
        break;
      }
    drop_address(victim);
    bump();
  }
  addresses_.emplace(node_id, AddressBinding{identity, true});
}

PrincipalPtr PeerTable::identity_of(const caf::node_id& from) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(from);
  return it == nodes_.end() || it->second.connections == 0 ? nullptr : it->second.identity;
}

expected<PrincipalPtr> PeerTable::admit(const caf::node_id& from, const Address& sender,
                                        const std::string& local_node_id) {
  if (!secure())
    return PrincipalPtr{};
  auto refuse = [this](std::string why) -> expected<PrincipalPtr> {
    counters_.forged_senders.fetch_add(1, std::memory_order_relaxed);
    return make_error(Errc::unauthenticated, std::move(why));
  };
  std::lock_guard<std::mutex> lock(mu_);
  auto n = nodes_.find(from);
  if (n == nodes_.end() || n->second.connections == 0)
    return refuse("no authenticated connection carried it");
  const auto& identity = n->second.identity;
  if (sender.empty())
    return identity;
  auto node_id = sender.node_id();
  if (node_id == local_node_id)
    return refuse(identity->to_string() + " named this node's own " + sender.to_string());
  if (!identity->serves_host(sender.host))
    return refuse("the certificate of " + identity->to_string() + " does not name the host of " +
                  sender.to_string());
  auto it = addresses_.find(node_id);
  if (it == addresses_.end()) {
    std::string why;
    if (!bind_unverified(node_id, identity, &why))
      return refuse("cannot let " + identity->to_string() + " speak for " + sender.to_string() +
                    ": " + why);
    return identity;
  }
  if (!same_principal(*it->second.identity, *identity))
    return refuse(identity->to_string() + " named " + sender.to_string() + ", which is " +
                  it->second.identity->to_string() + "'s");
  return identity;
}

}  // namespace tessera
