#pragma once
// --credentials FILE and --acls FILE (issue #14; docs/security.md), as
// `tessera master`, `agent`, `apps`, `jobs` and `cluster` take them: who may
// call their HTTP APIs, and what each principal may do. Neither given: the
// APIs are open, as before.

#include "services/security/http_guard.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace tessera::cli {

struct SecurityFlags {
  std::string credentials;
  std::string acls;
};

void add_security_flags(CLI::App* sub, SecurityFlags& flags);

// The guard the flags describe (a guard without credentials or ACLs allows
// everyone); errors name the file and each problem in it.
expected<std::shared_ptr<const security::HttpGuard>> load_guard(const SecurityFlags& flags,
                                                                const std::string& who);

}  // namespace tessera::cli
