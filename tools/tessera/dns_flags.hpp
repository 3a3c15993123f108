#pragma once
// The DNS server's flags, shared by `tessera dns` (--address, --domain,
// --ttl, --dns-upstream, --apps-framework) and by `tessera master --dns`
// and `tessera cluster` (the same, prefixed: --dns-address, --dns-domain,
// --dns-ttl, --dns-upstream). Defined in cmd_dns.cpp.

#include "services/dns/dns_service.hpp"
#include "tools/tessera/command.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace tessera::cli {

struct DnsFlags {
  std::string address = "127.0.0.1:8053";
  bool address_given = false;
  std::string domain = "tessera";
  uint32_t ttl_s = 5;
  std::vector<std::string> upstreams;
  std::string apps_framework = "tessera-apps";
};

// prefixed: the master's and cluster's spelling (--dns-address, ...).
void add_dns_flags(CLI::App* sub, DnsFlags& flags, bool prefixed);

// The service's configuration (its master is for the caller to set).
expected<dns::DnsServiceConfig> dns_service_config(const DnsFlags& flags);

// "dns: 127.0.0.1:8053 (UDP and TCP), names under tessera." for banners.
std::string dns_banner(const dns::DnsService& service);

// `tessera dns --master HOST:PORT|zk://...` (cmd_dns.cpp).
Command add_dns_command(CLI::App& app);

}  // namespace tessera::cli
