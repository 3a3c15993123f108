// `tessera agent`: not built yet.

#include "tools/tessera/command.hpp"

namespace tessera::cli {

Command add_agent_command(CLI::App& app) {
  auto* sub = app.add_subcommand("agent", "(not built yet)");
  return {sub, [] { return fail("agent: not built yet"); }};
}

}  // namespace tessera::cli
