#pragma once
// --tls-cert, --tls-key, --tls-ca and --insecure, as every process that runs a
// node takes them (master, agent, run, the apps and jobs frameworks; the
// executor reads the same settings from its environment, set by its agent).
//
// A node speaks mutual TLS (runtime/tls.hpp) when given all three files, and
// plaintext only when told so with --insecure: a production set-up cannot
// fall back to plaintext by forgetting a flag. Each flag may also come from
// the environment (TESSERA_TLS_CERT, TESSERA_TLS_KEY, TESSERA_TLS_CA,
// TESSERA_INSECURE=1), as a service manager or a test harness sets them.

#include "runtime/tls.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace tessera::cli {

struct TlsFlags {
  std::string cert;
  std::string key;
  std::string ca;
  bool insecure = false;
};

void add_tls_flags(CLI::App* sub, TlsFlags& flags);

// The node's TLS settings (empty: plaintext, only with --insecure). An
// error, naming the flags, for TLS half given, both TLS and --insecure, or
// neither.
expected<TlsConfig> tls_config(const TlsFlags& flags);

}  // namespace tessera::cli
