// `tessera credentials` and `tessera token`: entries of a credentials file
// (services/security/credentials.hpp) made without writing hashes by hand.
//
//   tessera credentials add --file FILE --principal P [--secret S | --secret-stdin]
//       adds P (or sets its secret); without a secret a random one is made
//       and printed once
//   tessera credentials remove --file FILE --principal P
//   tessera credentials list --file FILE        principals and their token ids
//   tessera token create --file FILE --principal P
//       prints a fresh bearer token once (only its salted hash is kept)
//   tessera token revoke --file FILE --id ID
//
// The file is written atomically, mode 0600. A running master, agent or
// framework reads it at start: restart it to apply a change.
// Exit codes: 0 done; 2 a bad command line or a file that cannot be read,
// parsed or written (one line on stderr).

#include "services/security/credentials.hpp"
#include "tools/tessera/command.hpp"
#include "tools/tessera/ops_client.hpp"

#include <cstdio>
#include <iostream>
#include <memory>

namespace tessera::cli {

namespace {

struct CredentialsOptions {
  std::string file;
  std::string principal;
  std::string secret;
  bool secret_stdin = false;
  std::string id;
  int iterations = security::pbkdf2_iterations_default;
};

int run_add(const CredentialsOptions& o) {
  std::string secret = o.secret;
  bool made = false;
  if (o.secret_stdin) {
    if (!std::getline(std::cin, secret) || secret.empty())
      return fail("credentials add: --secret-stdin: no secret on stdin");
  } else if (secret.empty()) {
    secret = security::random_secret();
    made = true;
  }
  if (auto r =
          security::put_principal(o.file, o.principal, security::hash_secret(secret, o.iterations));
      !r)
    return fail("credentials add: " + what(r.error()));
  if (made)
    std::printf("principal %s in %s; its secret (shown once): %s\n", o.principal.c_str(),
                o.file.c_str(), secret.c_str());
  else
    std::printf("principal %s in %s\n", o.principal.c_str(), o.file.c_str());
  return 0;
}

int run_remove(const CredentialsOptions& o) {
  if (auto r = security::remove_principal(o.file, o.principal); !r)
    return fail("credentials remove: " + what(r.error()));
  std::printf("principal %s removed from %s\n", o.principal.c_str(), o.file.c_str());
  return 0;
}

int run_list(const CredentialsOptions& o) {
  auto list = security::list_principals(o.file);
  if (!list)
    return fail("credentials list: " + what(list.error()));
  std::vector<std::vector<std::string>> rows;
  for (auto& p : *list) {
    std::string tokens;
    for (auto& t : p["tokens"])
      tokens += (tokens.empty() ? "" : ", ") + t["id"].get<std::string>();
    rows.push_back({p["principal"].get<std::string>(), p["secret"].get<bool>() ? "yes" : "no",
                    tokens.empty() ? "-" : tokens});
  }
  print_table({"PRINCIPAL", "SECRET", "TOKENS"}, rows);
  return 0;
}

int run_token_create(const CredentialsOptions& o) {
  auto token = security::add_token(o.file, o.principal);
  if (!token)
    return fail("token create: " + what(token.error()));
  std::fprintf(stderr, "token %s for %s in %s (shown once; send it as Authorization: Bearer)\n",
               token->id.c_str(), o.principal.c_str(), o.file.c_str());
  std::printf("%s\n", token->token.c_str());
  return 0;
}

int run_token_revoke(const CredentialsOptions& o) {
  if (auto r = security::revoke_token(o.file, o.id); !r)
    return fail("token revoke: " + what(r.error()));
  std::printf("token %s revoked in %s\n", o.id.c_str(), o.file.c_str());
  return 0;
}

CLI::App* with_file(CLI::App* cmd, CredentialsOptions& o) {
  cmd->add_option("--file", o.file, "The credentials file (JSON; made when missing)")->required();
  return cmd;
}

}  // namespace

std::vector<Command> add_credentials_commands(CLI::App& app) {
  auto* creds = app.add_subcommand(
      "credentials", "Principals of a credentials file (--credentials): add, remove, list");
  creds->require_subcommand(1);
  auto add = std::make_shared<CredentialsOptions>();
  auto* add_cmd = with_file(
      creds->add_subcommand("add", "Add a principal, or set its secret (for HTTP Basic)"), *add);
  add_cmd->add_option("--principal", add->principal, "Its name")->required();
  auto* secret = add_cmd->add_option("--secret", add->secret,
                                     "Its secret (default: a random one, printed once)");
  add_cmd->add_flag("--secret-stdin", add->secret_stdin, "Read the secret from stdin's first line")
      ->excludes(secret);
  add_cmd->add_option("--iterations", add->iterations, "PBKDF2 iterations")
      ->check(CLI::Range(1000, 10'000'000))
      ->capture_default_str();
  auto remove = std::make_shared<CredentialsOptions>();
  auto* remove_cmd =
      with_file(creds->add_subcommand("remove", "Remove a principal and its tokens"), *remove);
  remove_cmd->add_option("--principal", remove->principal, "Its name")->required();
  auto list = std::make_shared<CredentialsOptions>();
  auto* list_cmd = with_file(
      creds->add_subcommand("list", "Principals, whether each has a secret, its token ids"), *list);

  auto* token = app.add_subcommand("token", "Bearer tokens of a credentials file: create, revoke");
  token->require_subcommand(1);
  auto create = std::make_shared<CredentialsOptions>();
  auto* create_cmd = with_file(
      token->add_subcommand("create", "Make a token for a principal and print it once"), *create);
  create_cmd->add_option("--principal", create->principal, "Whose (added when missing)")
      ->required();
  auto revoke = std::make_shared<CredentialsOptions>();
  auto* revoke_cmd =
      with_file(token->add_subcommand("revoke", "Remove a token by its id"), *revoke);
  revoke_cmd->add_option("--id", revoke->id, "The token's id (12 hex digits, before the '.')")
      ->required();
  return {{add_cmd, [add] { return run_add(*add); }},
          {remove_cmd, [remove] { return run_remove(*remove); }},
          {list_cmd, [list] { return run_list(*list); }},
          {create_cmd, [create] { return run_token_create(*create); }},
          {revoke_cmd, [revoke] { return run_token_revoke(*revoke); }}};
}

}  // namespace tessera::cli
