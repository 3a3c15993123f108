#include "services/dns/dns_service.hpp"

#include "services/dns/names.hpp"

namespace tessera::dns {

expected<std::unique_ptr<DnsService>> DnsService::start(Node* node, DnsServiceConfig c) {
  std::unique_ptr<DnsService> service(new DnsService());
  auto domain = normalize_domain(c.server.domain);
  if (!domain)
    return make_error(Errc::invalid_argument,
                      "dns: bad domain '" + c.server.domain + "': expected labels of [a-z0-9-]");
  c.server.domain = *domain;
  service->domain_ = *domain;
  TableConfig tc;
  tc.apps_framework = c.apps_framework;
  service->table_ = std::make_shared<RecordTable>(tc);
  auto server = Server::start(c.server, service->table_);
  if (!server)
    return server.error();
  service->server_ = std::move(*server);
  if (!c.master.empty()) {
    if (!node)
      return make_error(Errc::invalid_argument, "dns: a feed needs a node");
    FeedConfig fc;
    fc.master = c.master;
    auto feed = node->spawn<DnsFeed>(c.actor_name, fc, service->table_, service->status_);
    if (!feed) {
      service->stop();
      return feed.error();
    }
  }
  return service;
}

DnsService::~DnsService() {
  stop();
}

std::vector<std::pair<std::string, double>> DnsService::metrics() const {
  std::vector<std::pair<std::string, double>> out;
  for (auto& [name, value] : counter_values(server_->counters()))
    out.emplace_back(name + "_total", double(value));
  auto s = table_->stats();
  out.emplace_back("records", double(s.records));
  out.emplace_back("names", double(s.names));
  out.emplace_back("tasks_listed", double(s.listed));
  out.emplace_back("feed_ready", status_->ready ? 1.0 : 0.0);
  out.emplace_back("feed_gaps_total", double(status_->gaps.load()));
  return out;
}

void DnsService::stop() {
  if (server_)
    server_->stop();
}

}  // namespace tessera::dns
