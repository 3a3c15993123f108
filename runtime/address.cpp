#include "runtime/address.hpp"

#include <charconv>

namespace tessera {

bool valid_actor_name(std::string_view name) {
  if (name.empty() || name.size() > 128)
    return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '/';
    if (!ok)
      return false;
  }
  return true;
}

namespace {

// 1..65535; 0 is not an address anyone can be reached at.
bool parse_port(std::string_view text, uint16_t& port) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
    return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

expected<Address> Address::parse(std::string_view text) {
  auto fail = [&](const char* why) {
    return make_error(Errc::bad_address, std::string(why) + " in '" + std::string(text) +
                                             "' (expected name@host:port)");
  };
  auto at = text.find('@');
  if (at == std::string_view::npos)
    return fail("missing '@'");
  auto name = text.substr(0, at);
  if (!valid_actor_name(name))
    return fail("bad actor name");
  auto node = text.substr(at + 1);
  auto colon = node.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return fail("missing host or port");
  auto host = node.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']')
      return fail("bad IPv6 host");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return fail("IPv6 host without brackets");
  }
  uint16_t port = 0;
  if (!parse_port(node.substr(colon + 1), port))
    return fail("bad port");
  return Address{std::string(name), std::string(host), port};
}

std::string Address::node_id() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Address::to_string() const {
  return name + "@" + node_id();
}

}  // namespace tessera
