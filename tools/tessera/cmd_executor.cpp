// `tessera executor`: not built yet.

#include "tools/tessera/command.hpp"

namespace tessera::cli {

Command add_executor_command(CLI::App& app) {
  auto* sub = app.add_subcommand("executor", "(not built yet)");
  return {sub, [] { return fail("executor: not built yet"); }};
}

}  // namespace tessera::cli
