#pragma once
// What `tessera master` and `tessera cluster` put beside their master: the
// state view actor and the HTTP edge in front of it (services/master/
// master_http.hpp). --http HOST:PORT says where the edge listens; by default
// on the --listen host at the --listen port plus 1000 (5050 -> 6050; a
// --listen port of 0 gives an HTTP port of 0, any free one).

#include "services/master/master_http.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/endpoints.hpp"

#include <memory>
#include <optional>
#include <string>

namespace tessera::cli {

inline constexpr uint16_t http_port_offset = 1000;

void add_http_flag(CLI::App* sub, std::string& http);

// The HTTP server's configuration from --http (empty: the default above).
expected<http::ServerConfig> http_config(const std::string& http, const Endpoints& listen);

struct OperatorWindow {
  std::shared_ptr<StateViewHandle> view;
  std::unique_ptr<MasterHttp> edge;
  // What the view reads the edge's counters through; cleared at stop().
  std::shared_ptr<std::atomic<MasterHttp*>> edge_slot =
      std::make_shared<std::atomic<MasterHttp*>>(nullptr);
  // Stops the HTTP edge; the view goes with its node. Destroy the window
  // only after that node has stopped.
  void stop() {
    edge_slot->store(nullptr);
    if (edge)
      edge->stop();
  }
};

// Spawns the state view ("<master_name>.state") on node, following the
// master named master_name there, and starts the HTTP edge.
expected<OperatorWindow> start_operator_window(
    Node& node, const std::string& master_name, http::ServerConfig http, StateViewConfig view,
    std::vector<MasterHttp::Mount> mounts = {},
    std::shared_ptr<const security::HttpGuard> guard = nullptr);

}  // namespace tessera::cli
