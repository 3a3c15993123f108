#include "tools/tessera/security_flags.hpp"

#include "runtime/log.hpp"

namespace tessera::cli {

void add_security_flags(CLI::App* sub, SecurityFlags& flags) {
  sub->add_option("--credentials", flags.credentials,
                  "JSON file of principals with salted secrets and bearer tokens (`tessera "
                  "credentials`, `tessera token`): the HTTP APIs then answer 401 without them");
  sub->add_option("--acls", flags.acls,
                  "JSON file of access control lists (after Mesos's): what each principal may "
                  "do; anything not allowed is denied (403)");
}

expected<std::shared_ptr<const security::HttpGuard>> load_guard(const SecurityFlags& flags,
                                                                const std::string& who) {
  security::HttpSecurity s;
  if (!flags.credentials.empty()) {
    auto credentials = security::Credentials::load(flags.credentials);
    if (!credentials)
      return make_error(Errc::invalid_argument, "--credentials: " + what(credentials.error()));
    log().info("{}: HTTP callers authenticate ({} principals in {})", who, (*credentials)->size(),
               flags.credentials);
    s.credentials = std::move(*credentials);
  }
  if (!flags.acls.empty()) {
    auto acls = security::load_acls(flags.acls);
    if (!acls)
      return make_error(Errc::invalid_argument, "--acls: " + what(acls.error()));
    log().info("{}: access control lists from {} (anything they do not allow is denied)", who,
               flags.acls);
    s.authorizer = std::make_shared<const security::Authorizer>(std::move(*acls));
  } else if (s.credentials) {
    log().info("{}: no --acls: every authenticated principal may do everything", who);
  }
  return std::make_shared<const security::HttpGuard>(std::move(s));
}

}  // namespace tessera::cli
