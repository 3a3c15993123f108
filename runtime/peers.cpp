#include "runtime/peers.hpp"

namespace tessera {

bool same_principal(const PeerIdentity& a, const PeerIdentity& b) {
  return a.name == b.name && a.role == b.role;
}

PeerTable::PeerTable(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
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
  auto& binding = nodes_[node];
  if (binding.identity && !same_principal(*binding.identity, *identity)) {
    counters_.nodes_refused.fetch_add(1, std::memory_order_relaxed);
    if (why)
      *why = identity->to_string() + " named the node of " + binding.identity->to_string();
    return false;
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
    nodes_.erase(n);
    bump();
  }
}

void PeerTable::make_room() {
  if (addresses_.size() < address_bindings_max)
    return;
  for (auto it = addresses_.begin(); it != addresses_.end();)
    it = it->second.verified ? std::next(it) : addresses_.erase(it);
  if (addresses_.size() >= address_bindings_max)
    addresses_.clear();  // every one verified: they will be again when dialled
  bump();
}

void PeerTable::bind_address_verified(const std::string& node_id, const PrincipalPtr& identity) {
  if (!identity)
    return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = addresses_.find(node_id);
  if (it == addresses_.end()) {
    make_room();
    addresses_.emplace(node_id, AddressBinding{identity, true});
    return;
  }
  if (!same_principal(*it->second.identity, *identity))
    bump();  // a false claim loses its answers cached by actors
  it->second = AddressBinding{identity, true};
}

PrincipalPtr PeerTable::identity_of(const caf::node_id& from) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(from);
  return it == nodes_.end() ? nullptr : it->second.identity;
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
  if (n == nodes_.end())
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
    make_room();
    addresses_.emplace(node_id, AddressBinding{identity, false});
    return identity;
  }
  if (!same_principal(*it->second.identity, *identity))
    return refuse(identity->to_string() + " named " + sender.to_string() + ", which is " +
                  it->second.identity->to_string() + "'s");
  return identity;
}

}  // namespace tessera
