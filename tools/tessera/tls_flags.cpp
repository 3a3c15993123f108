#include "tools/tessera/tls_flags.hpp"

#include <filesystem>

namespace tessera::cli {

namespace {

CLI::Option_group* add_tls_files(CLI::App* sub, TlsFlags& flags, const char* group_name,
                                 const char* cert_help, const char* ca_help) {
  auto* group = sub->add_option_group(group_name);
  group->add_option("--tls-cert", flags.cert, cert_help)->envname("TESSERA_TLS_CERT");
  group->add_option("--tls-key", flags.key, "Its private key (PEM)")->envname("TESSERA_TLS_KEY");
  group->add_option("--tls-ca", flags.ca, ca_help)->envname("TESSERA_TLS_CA");
  return group;
}

// One command runs per process: the files its client flags named.
TlsFlags& client_flags() {
  static TlsFlags flags;
  return flags;
}

}  // namespace

void add_tls_flags(CLI::App* sub, TlsFlags& flags) {
  auto* group =
      add_tls_files(sub, flags, "Transport security",
                    "This node's certificate (PEM), for mutual TLS; its HTTP API serves HTTPS",
                    "The CA every peer's certificate must chain to (PEM)");
  group
      ->add_flag("--insecure", flags.insecure,
                 "Speak plaintext to other nodes, with no proof of who anyone is: for a test or a "
                 "laptop only")
      ->envname("TESSERA_INSECURE");
}

expected<TlsConfig> tls_config(const TlsFlags& flags) {
  TlsConfig out{flags.cert, flags.key, flags.ca};
  if (flags.insecure && out.enabled())
    return make_error(Errc::invalid_argument,
                      "--insecure and --tls-cert/--tls-key/--tls-ca contradict each other");
  if (flags.insecure)
    return TlsConfig{};
  if (!out.enabled())
    return make_error(Errc::invalid_argument,
                      "refusing to run without transport security: pass --tls-cert, --tls-key "
                      "and --tls-ca (see `tessera certs`), or --insecure for plaintext on a "
                      "trusted network");
  for (auto [flag, path] :
       {std::pair{"--tls-cert", &out.cert_file}, std::pair{"--tls-key", &out.key_file},
        std::pair{"--tls-ca", &out.ca_file}}) {
    if (path->empty())
      return make_error(Errc::invalid_argument, std::string(flag) +
                                                    " is missing: TLS needs all "
                                                    "of --tls-cert, --tls-key "
                                                    "and --tls-ca");
    std::error_code ec;
    // The executor a node starts may run elsewhere in the file system (its
    // sandbox): absolute paths travel.
    *path = std::filesystem::absolute(*path, ec).string();
  }
  return out;
}

expected<std::shared_ptr<const TlsContext>> edge_tls(const TlsConfig& config) {
  if (!config.enabled())
    return std::shared_ptr<const TlsContext>();
  return TlsContext::load(config);
}

void add_client_tls_flags(CLI::App* sub) {
  add_tls_files(sub, client_flags(), "HTTPS",
                "A client certificate (PEM) to present to an HTTPS API; needs --tls-key",
                "The CA the API's certificate must chain to (PEM): speak HTTPS");
}

expected<std::shared_ptr<const TlsContext>> client_tls() {
  // Loaded once, after the command line was parsed (its first call).
  static const auto loaded = []() -> expected<std::shared_ptr<const TlsContext>> {
    const auto& f = client_flags();
    TlsConfig config{f.cert, f.key, f.ca};
    if (!config.enabled())
      return std::shared_ptr<const TlsContext>();
    return TlsContext::load_client(config);
  }();
  return loaded;
}

}  // namespace tessera::cli
