// `tessera cluster`: not built yet.

#include "tools/tessera/command.hpp"

namespace tessera::cli {

Command add_cluster_command(CLI::App& app) {
  auto* sub = app.add_subcommand("cluster", "(not built yet)");
  return {sub, [] { return fail("cluster: not built yet"); }};
}

}  // namespace tessera::cli
