#include "tools/tessera/endpoints.hpp"

#include "tools/tessera/command.hpp"

#include <arpa/inet.h>
#include <netdb.h>

namespace tessera::cli {

namespace {

caf::error bad(const std::string& flag, const std::string& what) {
  return make_error(Errc::invalid_argument, flag + ": " + what);
}

// A host name becomes its first IPv4 address; an address stays as it is.
expected<std::string> resolve(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return host;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0 || !found)
    return make_error(Errc::bad_address, "cannot resolve '" + host + "'");
  char ip[INET_ADDRSTRLEN] = {};
  auto* in = reinterpret_cast<sockaddr_in*>(found->ai_addr);
  bool ok = ::inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) != nullptr;
  ::freeaddrinfo(found);
  if (!ok)
    return make_error(Errc::bad_address, "cannot resolve '" + host + "'");
  return std::string(ip);
}

}  // namespace

expected<Endpoints> parse_endpoints(const std::string& listen, const std::string& advertise) {
  Endpoints out;
  auto bind = parse_host_port(listen);
  if (!bind)
    return bad("--listen", "expected HOST:PORT, got '" + listen + "'");
  out.bind_host = bind->host;
  out.bind_port = bind->port;
  if (advertise.empty()) {
    if (is_wildcard_host(out.bind_host)) {
      out.advertise_host = default_advertise_host(out.bind_host, &out.warning);
      return out;
    }
    auto host = resolve(out.bind_host);
    if (!host)
      return bad("--listen", what(host.error()));
    out.advertise_host = *host;
    return out;
  }
  auto at = parse_host_port(advertise);
  if (!at || advertise.front() == ':')
    return bad("--advertise", "expected HOST:PORT, got '" + advertise + "'");
  if (is_wildcard_host(at->host))
    return bad("--advertise", "'" + at->host +
                                  "' is no address others can reach; give this machine's "
                                  "address or name");
  auto host = resolve(at->host);
  if (!host)
    return bad("--advertise", what(host.error()));
  out.advertise_host = *host;
  out.advertise_port = at->port;
  return out;
}

void apply(const Endpoints& endpoints, NodeConfig& config) {
  config.host = endpoints.bind_host;
  config.port = endpoints.bind_port;
  config.advertise_host = endpoints.advertise_host;
  config.advertise_port = endpoints.advertise_port;
}

void add_advertise_flag(CLI::App* sub, std::string& advertise) {
  sub->add_option("--advertise", advertise,
                  "HOST:PORT others reach this node at, used in its addresses (default: the "
                  "--listen address; for 0.0.0.0, this machine's name resolved; port 0: the "
                  "port bound)");
}

bool loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace tessera::cli
