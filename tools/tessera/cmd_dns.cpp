// `tessera dns`: the DNS server (services/dns, docs/dns.md) as a process of
// its own, following a master through the operator API's SUBSCRIBE stream
// (the master serves its Cap'n Proto events only to actors of its own
// node; `tessera master --dns` and `tessera cluster` use those). Also the
// DNS flags `tessera master` and `tessera cluster` share (dns_flags.hpp).

#include "runtime/log.hpp"
#include "services/dns/names.hpp"
#include "services/dns/operator_feed.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/dns_flags.hpp"
#include "tools/tessera/ops_client.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

namespace tessera::cli {

void add_dns_flags(CLI::App* sub, DnsFlags& f, bool prefixed) {
  auto name = [prefixed](const char* flag) {
    return std::string(prefixed ? "--dns-" : "--") + flag;
  };
  sub->add_option(name("address"), f.address,
                  "HOST:PORT the DNS server answers on, UDP and TCP (port 0: a free one)")
      ->capture_default_str()
      ->each([&f](const std::string&) { f.address_given = true; });
  sub->add_option(name("domain"), f.domain, "The domain its names are under")
      ->capture_default_str();
  sub->add_option(name("ttl"), f.ttl_s, "Seconds resolvers may keep its answers")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  sub->add_option("--dns-upstream", f.upstreams,
                  "IP[:PORT] of a resolver for names outside the domain (repeatable; none: "
                  "such names are REFUSED)");
  if (!prefixed)
    sub->add_option("--apps-framework", f.apps_framework,
                    "The apps framework's name: its tasks named /APP/PATH get PATH.apps.DOMAIN")
        ->capture_default_str();
}

expected<dns::DnsServiceConfig> dns_service_config(const DnsFlags& f) {
  dns::DnsServiceConfig c;
  auto where = dns::parse_endpoint(f.address, 8053);
  if (!where)
    return make_error(Errc::invalid_argument, "--dns-address: " + what(where.error()));
  c.server.host = where->host;
  c.server.port = where->port;
  auto domain = dns::normalize_domain(f.domain);
  if (!domain)
    return make_error(Errc::invalid_argument,
                      "bad DNS domain '" + f.domain + "': expected labels of [a-z0-9-]");
  c.server.domain = *domain;
  c.server.ttl_s = f.ttl_s;
  for (const auto& u : f.upstreams)
    if (auto e = dns::parse_endpoint(u, 53); !e)
      return make_error(Errc::invalid_argument, "--dns-upstream: " + what(e.error()));
  c.server.upstreams = f.upstreams;
  c.apps_framework = f.apps_framework;
  return c;
}

std::string dns_banner(const dns::DnsService& service) {
  return service.address() + " (UDP and TCP), names under " + service.domain();
}

namespace {

struct DnsOptions {
  std::string master;
  DnsFlags flags;
};

// Follows the master's SUBSCRIBE stream into the table, subscribing again
// (to the leader of the moment, with zk://) whenever it ends.
void follow(const std::string& master, std::shared_ptr<dns::RecordTable> table,
            dns::FeedStatus& feed_status, const std::atomic<bool>& stopping) {
  bool said_ready = false;
  while (!stopping) {
    OperatorClient client(master, std::chrono::seconds(10));
    auto at = client.address();
    std::optional<dns::Ip> leader;
    uint16_t leader_port = 0;
    if (at) {
      auto hp = parse_host_port(*at);
      if (hp) {
        leader = dns::Ip::parse(hp->host);
        leader_port = hp->port;
      }
    }
    dns::OperatorFeed feed(table, leader, leader_port);
    uint64_t ignored = 0;
    auto status = client.stream({{"type", "SUBSCRIBE"}}, [&](const nlohmann::json& e) {
      if (!feed.on_record(e) && ++ignored <= 3)
        log().warn("dns: ignoring an event of type '{}'", e.value("type", "?"));
      ++feed_status.batches;
      if (feed.ready() && !said_ready) {
        said_ready = true;
        feed_status.ready = true;
        auto s = table->stats();
        std::printf("tessera dns: following %s (%zu agents, %zu tasks, %zu names)\n",
                    at ? at->c_str() : master.c_str(), s.agents, s.tasks, s.names);
        std::fflush(stdout);
      }
      return !stopping.load();
    });
    if (stopping)
      return;
    log().warn("dns: the master's event stream ended ({}); subscribing again in 1 s",
               status ? "status " + std::to_string(*status) : what(status.error()));
    said_ready = false;
    feed_status.ready = false;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int run_dns(const DnsOptions& o) {
  block_stop_signals();
  auto config = dns_service_config(o.flags);
  if (!config)
    return fail("dns: " + what(config.error()));
  auto service = dns::DnsService::start(nullptr, std::move(*config));
  if (!service)
    return fail(what(service.error()));
  std::printf("tessera dns: answering on %s; following %s\n", dns_banner(**service).c_str(),
              o.master.c_str());
  std::fflush(stdout);
  std::shared_ptr<dns::RecordTable> table(&(*service)->table(), [](dns::RecordTable*) {});
  std::atomic<bool> stopping{false};
  std::thread follower([&] { follow(o.master, table, (*service)->feed(), stopping); });
  int sig = wait_for_stop_signal();
  stopping = true;
  (*service)->stop();
  std::printf("tessera dns: stopped on signal %d;", sig);
  for (auto& [name, value] : (*service)->metrics())
    std::printf(" %s=%.0f", name.c_str(), value);
  std::printf("\n");
  std::fflush(stdout);
  // The follower may be blocked in a read of an idle stream (until the next
  // heartbeat): nothing of it needs to run to the end, so the process ends
  // here rather than wait for it.
  follower.detach();
  std::_Exit(0);
}

}  // namespace

Command add_dns_command(CLI::App& app) {
  auto o = std::make_shared<DnsOptions>();
  o->master = default_master_http();
  auto* sub = app.add_subcommand(
      "dns", "Run a DNS server for the cluster's tasks, agents and masters (after Mesos-DNS)");
  sub->add_option("--master", o->master,
                  "The master's HTTP API: HOST:PORT, or zk://HOST:PORT[,...]/PATH to follow the "
                  "leader (default $TESSERA_MASTER, else 127.0.0.1:6050)")
      ->capture_default_str();
  add_token_flag(sub);  // and the client's --tls-*: the master's API may be HTTPS
  add_dns_flags(sub, o->flags, false);
  return {sub, [o] { return run_dns(*o); }};
}

}  // namespace tessera::cli
