// `tessera certs init|issue`: the small certificate authority of
// services/security/certs.hpp, for a test or a first cluster's mutual TLS.
//
//   tessera certs init --dir DIR [--name "Tessera CA"] [--days 3650] [--force]
//   tessera certs issue --dir DIR --name NAME --role master|agent|framework|operator
//       [--host H ...] [--days 825] [--force]
//
// Exit codes: 0 done; 2 a bad command line, or files that exist, or a
// directory that cannot be written (one line on stderr).

#include "services/security/certs.hpp"
#include "tools/tessera/command.hpp"

#include <cstdio>
#include <memory>

namespace tessera::cli {

namespace {

struct CertsOptions {
  std::string dir;
  std::string name;
  std::string role;
  std::vector<std::string> hosts;
  int days = 0;
  bool force = false;
};

int run_init(const CertsOptions& o) {
  security::CaOptions c;
  if (!o.name.empty())
    c.common_name = o.name;
  if (o.days > 0)
    c.days = o.days;
  c.force = o.force;
  if (auto r = security::init_ca(o.dir, c); !r)
    return fail("certs init: " + what(r.error()));
  std::printf("CA %s: %s/ca.crt and %s/ca.key (keep ca.key secret)\n", c.common_name.c_str(),
              o.dir.c_str(), o.dir.c_str());
  return 0;
}

int run_issue(const CertsOptions& o) {
  security::IssueOptions i;
  i.name = o.name;
  auto role = security::role_from(o.role);
  if (!role)
    return fail("certs issue: --role must be master, agent, framework or operator");
  i.role = *role;
  i.hosts = o.hosts;
  if (o.days > 0)
    i.days = o.days;
  i.force = o.force;
  if (auto r = security::issue(o.dir, i); !r)
    return fail("certs issue: " + what(r.error()));
  std::printf("%s %s: %s/%s.crt and %s/%s.key\n", o.role.c_str(), o.name.c_str(), o.dir.c_str(),
              o.name.c_str(), o.dir.c_str(), o.name.c_str());
  return 0;
}

}  // namespace

std::vector<Command> add_certs_commands(CLI::App& app) {
  auto* certs = app.add_subcommand("certs", "A small certificate authority for mutual TLS");
  certs->require_subcommand(1);
  auto init = std::make_shared<CertsOptions>();
  auto* init_cmd = certs->add_subcommand("init", "Make a CA: DIR/ca.crt and DIR/ca.key");
  init_cmd->add_option("--dir", init->dir, "Where the CA's files go")->required();
  init_cmd->add_option("--name", init->name, "The CA's common name (default: Tessera CA)");
  init_cmd->add_option("--days", init->days, "Days it is valid (default 3650)")
      ->check(CLI::Range(1, 36500));
  init_cmd->add_flag("--force", init->force, "Replace an existing CA");
  auto issue = std::make_shared<CertsOptions>();
  auto* issue_cmd = certs->add_subcommand(
      "issue", "Issue a certificate of a role, signed by DIR's CA: DIR/NAME.crt and DIR/NAME.key");
  issue_cmd->add_option("--dir", issue->dir, "The CA's directory")->required();
  issue_cmd->add_option("--name", issue->name, "The principal (and the files' name)")->required();
  issue_cmd->add_option("--role", issue->role, "master, agent, framework or operator")
      ->required()
      ->check(CLI::IsMember({"master", "agent", "framework", "operator"}));
  issue_cmd->add_option("--host", issue->hosts,
                        "A DNS name or IP it serves (repeatable; default localhost, 127.0.0.1 "
                        "and NAME)");
  issue_cmd->add_option("--days", issue->days, "Days it is valid (default 825)")
      ->check(CLI::Range(1, 36500));
  issue_cmd->add_flag("--force", issue->force, "Replace an existing certificate and key");
  return {{init_cmd, [init] { return run_init(*init); }},
          {issue_cmd, [issue] { return run_issue(*issue); }}};
}

}  // namespace tessera::cli
