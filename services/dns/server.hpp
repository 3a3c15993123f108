#pragma once
// The DNS server: UDP and TCP on one address (default 127.0.0.1:8053, no
// privilege needed), one I/O thread of its own (poll(2) over plain
// non-blocking sockets; UDP read and written in batches with recvmmsg and
// sendmmsg). Each message goes through a Responder (responder.hpp); names
// outside the zone go to the upstream resolvers, tried in order, over UDP.
//
// Limits: tcp_connections_max connections (more are accepted and closed at
// once, counted); each connection's unsent answers are at most
// tcp_out_bytes_max (a client that does not read is disconnected) and it is
// closed after tcp_idle_timeout_ms without a message; upstream_pending_max
// forwarded queries wait at once (more are answered SERVFAIL), each for
// upstream_timeout_ms per upstream.
//
// Lifetime: start() binds both sockets before it returns (errors as
// values: the address is taken, not an address); stop() (also the
// destructor) ends the thread and closes every socket.

#include "runtime/error.hpp"
#include "services/dns/record_table.hpp"
#include "services/dns/responder.hpp"

#include <memory>
#include <string>
#include <vector>

namespace tessera::dns {

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8053;  // 0: a free port (the same for UDP and TCP)
  std::string domain = "tessera.";
  uint32_t ttl_s = 5;
  std::vector<std::string> upstreams;  // "IP" or "IP:PORT" (53), "[v6]:PORT"
  size_t tcp_connections_max = 256;
  size_t tcp_out_bytes_max = 256 * 1024;
  int tcp_idle_timeout_ms = 10'000;
  size_t upstream_pending_max = 4096;
  int upstream_timeout_ms = 2'000;
  size_t cache_entries_max = 1'000'000;
};

// "127.0.0.1:8053", "[::1]:53", "10.0.0.2" (port default_port).
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
expected<Endpoint> parse_endpoint(const std::string& text, uint16_t default_port);

class Server {
 public:
  static expected<std::unique_ptr<Server>> start(ServerConfig config,
                                                 std::shared_ptr<const RecordTable> table);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // "HOST:PORT" bound (UDP and TCP).
  std::string address() const;
  const Counters& counters() const { return *counters_; }
  void stop();

 private:
  struct Loop;
  Server() = default;
  std::unique_ptr<Counters> counters_ = std::make_unique<Counters>();
  std::unique_ptr<Loop> loop_;
};

}  // namespace tessera::dns
