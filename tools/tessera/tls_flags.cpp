#include "tools/tessera/tls_flags.hpp"

#include <filesystem>

namespace tessera::cli {

void add_tls_flags(CLI::App* sub, TlsFlags& flags) {
  auto* group = sub->add_option_group("Transport security");
  group->add_option("--tls-cert", flags.cert, "This node's certificate (PEM), for mutual TLS")
      ->envname("TESSERA_TLS_CERT");
  group->add_option("--tls-key", flags.key, "Its private key (PEM)")->envname("TESSERA_TLS_KEY");
  group->add_option("--tls-ca", flags.ca, "The CA every peer's certificate must chain to (PEM)")
      ->envname("TESSERA_TLS_CA");
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

}  // namespace tessera::cli
