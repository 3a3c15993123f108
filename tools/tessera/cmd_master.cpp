// `tessera master`: not built yet.

#include "tools/tessera/command.hpp"

namespace tessera::cli {

Command add_master_command(CLI::App& app) {
  auto* sub = app.add_subcommand("master", "(not built yet)");
  return {sub, [] { return fail("master: not built yet"); }};
}

}  // namespace tessera::cli
