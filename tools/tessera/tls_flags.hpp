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

#include <memory>
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

// The HTTP edges' TLS for a node's settings: the same files, loaded for the
// edge's server (HTTPS); null for a plaintext node.
expected<std::shared_ptr<const TlsContext>> edge_tls(const TlsConfig& config);
// "https" for an edge with TLS, else "http": for the URLs a command prints.
inline const char* scheme_of(const std::shared_ptr<const TlsContext>& edge) {
  return edge ? "https" : "http";
}

// --tls-cert, --tls-key and --tls-ca (and their environment variables) as a
// client of an HTTP API takes them: every command that calls a master, an
// agent or the apps or jobs API (ops_client.hpp's add_token_flag adds them).
// --tls-ca alone verifies the server (its certificate must chain to the CA
// and name the host called); with --tls-cert and --tls-key the command also
// presents its certificate, whose name the API takes as the principal. None
// given: plain http://. One command runs per process: the flags are kept
// process-wide, like --token.
void add_client_tls_flags(CLI::App* sub);

// The client's TLS the flags describe, loaded on first use; null without
// flags. An error names the flag and the file.
expected<std::shared_ptr<const TlsContext>> client_tls();

}  // namespace tessera::cli
