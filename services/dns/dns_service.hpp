#pragma once
// The DNS server as a service: its record table, its server (UDP and TCP,
// its own I/O thread) and, beside a master, the feed actor that keeps the
// table from the master's events. `tessera master --dns` and `tessera
// cluster` start it on the master's node; `tessera dns` starts it without a
// feed and fills the table from the operator API's SUBSCRIBE
// (operator_feed.hpp). See docs/dns.md.

#include "runtime/node.hpp"
#include "services/dns/dns_feed.hpp"
#include "services/dns/record_table.hpp"
#include "services/dns/server.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessera::dns {

struct DnsServiceConfig {
  Address master;  // set: follow its events with a feed actor on node
  ServerConfig server;
  std::string apps_framework = "tessera-apps";
  std::string actor_name = "dns";
};

class DnsService {
 public:
  // Binds the server and, when config.master is set, spawns the feed.
  // Errors: a bad domain or address, the address is taken, the actor name
  // is taken.
  static expected<std::unique_ptr<DnsService>> start(Node* node, DnsServiceConfig config);
  ~DnsService();

  std::string address() const { return server_->address(); }
  const std::string& domain() const { return domain_; }
  RecordTable& table() { return *table_; }
  // The feed actor's; `tessera dns` reports its operator API feed here.
  FeedStatus& feed() const { return *status_; }
  // The server's counters and the table's sizes, for metrics ("dns_" is
  // for the caller to add).
  std::vector<std::pair<std::string, double>> metrics() const;
  // Stops the server; the feed actor stops with its node.
  void stop();

 private:
  DnsService() = default;
  std::string domain_;
  std::shared_ptr<RecordTable> table_;
  std::shared_ptr<FeedStatus> status_ = std::make_shared<FeedStatus>();
  std::unique_ptr<Server> server_;
};

}  // namespace tessera::dns
