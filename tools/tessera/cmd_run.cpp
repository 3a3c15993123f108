// `tessera run`: not built yet.

#include "tools/tessera/command.hpp"

namespace tessera::cli {

Command add_run_command(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "(not built yet)");
  return {sub, [] { return fail("run: not built yet"); }};
}

}  // namespace tessera::cli
