#pragma once
// An actor's address: `name@host:port`, like libprocess's `id@ip:port`. The
// host:port part names the node (one actor system), the name an actor on it.
// An actor in the same process is addressed exactly like one on another node.

#include "runtime/error.hpp"

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tessera {

struct Address {
  std::string name;
  std::string host;
  uint16_t port = 0;

  // Parses "name@host:port"; IPv6 hosts in brackets ("pinger@[::1]:5050").
  static expected<Address> parse(std::string_view text);

  std::string to_string() const;
  std::string node_id() const;  // "host:port"
  bool empty() const { return name.empty(); }
  bool same_node(const Address& other) const { return port == other.port && host == other.host; }

  friend bool operator==(const Address&, const Address&) = default;
  friend auto operator<=>(const Address&, const Address&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Address& x) {
  return f(caf::meta::type_name("tessera.address"), x.name, x.host, x.port);
}

// Node-local name rules: 1..128 characters of [A-Za-z0-9_.-/].
bool valid_actor_name(std::string_view name);

}  // namespace tessera

template <>
struct std::hash<tessera::Address> {
  size_t operator()(const tessera::Address& a) const noexcept {
    size_t h = std::hash<std::string>{}(a.name);
    h ^= std::hash<std::string>{}(a.host) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h ^ (static_cast<size_t>(a.port) << 1);
  }
};
