#pragma once
// --listen and --advertise, as every long-running role (master, agent,
// cluster) takes them. --listen is where the node binds (0.0.0.0 or [::]:
// every interface); --advertise is the address others reach it at, and so
// the host:port in every identity the node hands out (name@host:port, agent
// registrations, framework addresses).
//
//   --advertise HOST:PORT  a name is resolved once, to its first IPv4 address
//                          (peers compare addresses exactly); PORT 0: the
//                          port bound (useful with --listen HOST:0).
//   no --advertise         the listen address (a name resolved, as above);
//                          for a wildcard listen host,
//                          this machine's name resolved (see
//                          default_advertise_host in runtime/node.hpp), with a
//                          warning when that is a loopback address.

#include "runtime/node.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace tessera::cli {

struct Endpoints {
  std::string bind_host;
  uint16_t bind_port = 0;
  std::string advertise_host;
  uint16_t advertise_port = 0;  // 0: the port bound
  std::string warning;          // for the user, when the default is unreachable from afar
};

// Checks both flags. The error names the flag and says what is wrong, in one
// line (Errc::invalid_argument).
expected<Endpoints> parse_endpoints(const std::string& listen, const std::string& advertise);

// Copies the bind and advertised addresses into a node's configuration.
void apply(const Endpoints& endpoints, NodeConfig& config);

void add_advertise_flag(CLI::App* sub, std::string& advertise);

// localhost, ::1 or 127.x.y.z: a client of a master there listens on loopback.
bool loopback_host(const std::string& host);

}  // namespace tessera::cli
