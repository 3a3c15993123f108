#include "tools/tessera/operator_window.hpp"

namespace tessera::cli {

void add_http_flag(CLI::App* sub, std::string& http) {
  sub->add_option("--http", http,
                  "HOST:PORT of the HTTP API, metrics and web UI (default: the --listen host, "
                  "at the --listen port + 1000; port 0: any free one)");
}

expected<http::ServerConfig> http_config(const std::string& http, const Endpoints& listen) {
  http::ServerConfig config;
  if (http.empty()) {
    config.host = listen.bind_host;
    config.port = listen.bind_port == 0 || listen.bind_port > 65535 - http_port_offset
                      ? 0
                      : static_cast<uint16_t>(listen.bind_port + http_port_offset);
    return config;
  }
  auto hp = parse_host_port(http);
  if (!hp)
    return make_error(Errc::invalid_argument, "--http: '" + http + "' is not HOST:PORT");
  config.host = hp->host;
  config.port = hp->port;
  return config;
}

expected<OperatorWindow> start_operator_window(Node& node, const std::string& master_name,
                                               http::ServerConfig http, StateViewConfig view,
                                               std::vector<MasterHttp::Mount> mounts,
                                               std::shared_ptr<const security::HttpGuard> guard) {
  OperatorWindow w;
  w.view = std::make_shared<StateViewHandle>();
  view.master = node.address_of(master_name);
  view.allocator = node.address_of(master_name + ".allocator");
  if (view.version.empty())
    view.version = TESSERA_VERSION;
  view.http_scheme = http.tls ? "https" : "http";
  // The edge's counters, and whatever the caller adds (the DNS server's).
  view.extra_metrics = [slot = w.edge_slot, more = std::move(view.extra_metrics)] {
    auto* edge = slot->load();
    auto out = edge ? edge->metrics() : std::vector<std::pair<std::string, double>>{};
    if (more)
      for (auto& m : more())
        out.push_back(std::move(m));
    return out;
  };
  auto spawned = node.spawn<StateView>(master_name + ".state", std::move(view), w.view);
  if (!spawned)
    return spawned.error();
  auto edge = MasterHttp::start(std::move(http), w.view, std::move(mounts), std::move(guard));
  if (!edge)
    return edge.error();
  w.edge = std::move(*edge);
  w.edge_slot->store(w.edge.get());
  return w;
}

}  // namespace tessera::cli
