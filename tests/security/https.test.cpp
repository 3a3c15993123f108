// HTTPS on the HTTP edges (issue #14): an http::Server with the runtime's
// TLS context and http::request as its client, over real sockets on
// 127.0.0.1; client certificates as principals behind the guard; and
// `tessera master` with TLS flags called by `tessera agents` with and
// without --tls-ca.

#include "e2e/cluster_process.hpp"
#include "runtime/tls.hpp"
#include "services/http/client.hpp"
#include "services/http/server.hpp"
#include "services/security/http_guard.hpp"
#include "security/pki.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const TlsContext> server_tls(const TlsConfig& config) {
  auto context = TlsContext::load(config);
  REQUIRE(context);
  return *context;
}

// A client trusting ca, presenting the certificate of identity if given.
std::shared_ptr<const TlsContext> client_tls(const std::string& ca,
                                             const TlsConfig& identity = {}) {
  auto context = TlsContext::load_client({identity.cert_file, identity.key_file, ca});
  INFO((context ? "" : what(context.error())));
  REQUIRE(context);
  return *context;
}

// Answers 200 with the principal of the client certificate ("-": none).
http::Response whoami(const http::Request& request) {
  return http::json_response(200, request.peer_identity ? request.peer_identity->to_string() : "-");
}

std::unique_ptr<http::Server> https_server(std::shared_ptr<const TlsContext> tls,
                                           http::Handler handler) {
  http::ServerConfig config;
  config.tls = std::move(tls);
  config.request_timeout_ms = 5'000ms;
  auto server = http::Server::start(config, std::move(handler));
  REQUIRE(server);
  return std::move(*server);
}

std::unique_ptr<http::Server> whoami_server(std::shared_ptr<const TlsContext> tls) {
  return https_server(std::move(tls), [](http::Request r, http::Responder responder) {
    responder.respond(whoami(r));
  });
}

expected<http::ClientResponse> get(const std::string& at,
                                   const std::shared_ptr<const TlsContext>& tls,
                                   const http::Headers& headers = {}) {
  return http::request(at, "GET", "/", "", "", 5s, headers, tls);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("https: a client that trusts the CA is answered, and a client certificate names it",
          "[security][https]") {
  Pki pki;
  auto server = whoami_server(server_tls(pki.issue("m1", security::CertRole::master)));
  auto op1 = pki.issue("op1", security::CertRole::operator_role);
  CHECK(server->https());
  CHECK(server->url().rfind("https://127.0.0.1:", 0) == 0);

  auto anonymous = get(server->address(), client_tls(pki.ca()));
  INFO((anonymous ? "" : what(anonymous.error())));
  REQUIRE(anonymous);
  CHECK(anonymous->status == 200);
  CHECK(anonymous->body == "-");

  auto op = get(server->address(), client_tls(pki.ca(), op1));
  REQUIRE(op);
  CHECK(op->status == 200);
  CHECK(op->body == "operator:op1");

  // A streaming request goes through the same TLS.
  std::string streamed;
  auto status = http::stream(
      server->address(), "GET", "/", "",
      [&](std::string_view chunk) {
        streamed.append(chunk);
        return true;
      },
      5s, {}, client_tls(pki.ca(), op1));
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK(streamed == "operator:op1");
  CHECK(server->counters().tls_handshake_failed.load() == 0);
}

TEST_CASE("https: a streaming subscriber that goes away is noticed over TLS", "[security][https]") {
  Pki pki;
  std::atomic<bool> closed{false};
  std::shared_ptr<http::Stream> stream;
  std::mutex mu;
  auto server = https_server(server_tls(pki.issue("m1", security::CertRole::master)),
                             [&](http::Request, http::Responder responder) {
                               auto s = responder.open_stream(200, "text/plain");
                               s->on_close([&] { closed = true; });
                               s->write("first\n");
                               std::lock_guard lock(mu);
                               stream = s;
                             });
  std::string got;
  auto status = http::stream(
      server->address(), "GET", "/events", "",
      [&](std::string_view chunk) {
        got.append(chunk);
        return false;  // one piece, then hang up
      },
      5s, {}, client_tls(pki.ca()));
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK(got == "first\n");
  // The server learns of it from the socket, with nothing more written.
  CHECK(wait_until([&] { return closed.load(); }, 5s));
  CHECK(server->counters().streams_open.load() == 0);
}

TEST_CASE("https: plain HTTP to the TLS port is an error, not a hang", "[security][https]") {
  Pki pki;
  auto server = whoami_server(server_tls(pki.issue("m1", security::CertRole::master)));
  auto started = std::chrono::steady_clock::now();
  // OpenSSL recognises a GET: it is answered in plain text, saying why.
  auto plain = http::request(server->address(), "GET", "/", "", "", 10s);
  REQUIRE(plain);
  CHECK(plain->status == 400);
  CHECK(has(plain->body, "this port speaks HTTPS only"));
  // Another method is just refused: the connection ends.
  auto other = http::request(server->address(), "DELETE", "/", "", "", 10s);
  CHECK_FALSE(other);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(wait_until([&] { return server->counters().tls_handshake_failed.load() == 2; }, 5s));
  // And the server keeps serving TLS.
  auto after = get(server->address(), client_tls(pki.ca()));
  REQUIRE(after);
  CHECK(after->status == 200);
}

TEST_CASE("https: a client that does not trust the server's CA fails the handshake",
          "[security][https]") {
  Pki pki, other;
  auto server = whoami_server(server_tls(pki.issue("m1", security::CertRole::master)));
  auto r = get(server->address(), client_tls(other.ca()));
  REQUIRE_FALSE(r);
  INFO(what(r.error()));
  CHECK(has(what(r.error()), "TLS handshake with " + server->address() + " failed"));
  CHECK(has(what(r.error()), "certificate"));
  CHECK(is(r.error(), Errc::connect_failed));
}

TEST_CASE("https: the server's certificate must name the host called", "[security][https]") {
  Pki pki;
  auto server = whoami_server(
      server_tls(pki.issue("elsewhere", security::CertRole::master, {"db.example.org"})));
  auto r = get(server->address(), client_tls(pki.ca()));
  REQUIRE_FALSE(r);
  INFO(what(r.error()));
  CHECK(has(what(r.error()), "does not name the host called, 127.0.0.1"));
}

TEST_CASE("https: a client certificate of another CA is refused", "[security][https]") {
  Pki pki, other;
  auto server = whoami_server(server_tls(pki.issue("m1", security::CertRole::master)));
  auto op2 = other.issue("op2", security::CertRole::operator_role);
  // The client trusts both CAs (so it accepts the server and its own
  // certificate loads); the server trusts only its own.
  auto both = (pki.dir.path() / "both.crt").string();
  std::ofstream(both) << read_file(pki.ca()) << read_file(other.ca());
  auto r = get(server->address(), client_tls(both, op2));
  REQUIRE_FALSE(r);
  INFO(what(r.error()));
  CHECK(has(what(r.error()), "TLS"));
  CHECK(wait_until([&] { return server->counters().tls_handshake_failed.load() == 1; }, 5s));
}

TEST_CASE("https: a client certificate is a principal for the guard", "[security][https]") {
  Pki pki;
  auto op1 = pki.issue("op1", security::CertRole::operator_role);
  auto op3 = pki.issue("op3", security::CertRole::operator_role);
  auto token = security::make_token();
  auto credentials = security::Credentials::parse(nlohmann::json::parse(
      R"({"principals": [{"principal": "bot", "tokens": [{"id": ")" + token.id + R"(", "hash": ")" +
      token.hash + R"(", "created": "2025-01-01T00:00:00Z"}]}]})"));
  REQUIRE(credentials);
  auto acls = security::parse_acls(
      nlohmann::json::parse(R"({"view_cluster": [{"principals": {"values": ["op1", "bot"]}}]})"));
  REQUIRE(acls);
  auto guard = std::make_shared<const security::HttpGuard>(security::HttpSecurity{
      *credentials, std::make_shared<const security::Authorizer>(std::move(*acls))});
  auto server = https_server(
      server_tls(pki.issue("m1", security::CertRole::master)),
      security::guarded_handler(
          guard,
          [](const http::Request&) {
            return security::RouteAccess{false, {{security::Action::view_cluster, std::nullopt}}};
          },
          [](http::Request r, http::Responder responder) { responder.respond(whoami(r)); }));

  auto allowed = get(server->address(), client_tls(pki.ca(), op1));
  REQUIRE(allowed);
  CHECK(allowed->status == 200);
  auto denied = get(server->address(), client_tls(pki.ca(), op3));
  REQUIRE(denied);
  CHECK(denied->status == 403);
  auto nobody = get(server->address(), client_tls(pki.ca()));
  REQUIRE(nobody);
  CHECK(nobody->status == 401);
  // A bearer token still works, and names its principal over the certificate's.
  auto bearer = http::Headers{{"Authorization", "Bearer " + token.token}};
  auto by_token = get(server->address(), client_tls(pki.ca()), bearer);
  REQUIRE(by_token);
  CHECK(by_token->status == 200);
  auto token_over_cert = get(server->address(), client_tls(pki.ca(), op3), bearer);
  REQUIRE(token_over_cert);
  CHECK(token_over_cert->status == 200);
  CHECK(guard->unauthenticated() == 1);
  CHECK(guard->forbidden() == 1);
}

TEST_CASE("https: `tessera master` with TLS serves HTTPS to `tessera agents` with --tls-*",
          "[security][https][e2e]") {
  Pki pki;
  auto m1 = pki.issue("m1", security::CertRole::master);
  auto op1 = pki.issue("op1", security::CertRole::operator_role);
  auto master = ChildProcess::start(
      {"env", "-u", "TESSERA_INSECURE", TESSERA_BIN, "master", "--listen", "127.0.0.1:0", "--http",
       "127.0.0.1:0", "--work-dir", (pki.dir.path() / "master").string(), "--tls-cert",
       m1.cert_file, "--tls-key", m1.key_file, "--tls-ca", m1.ca_file});
  auto line = master->wait_line("web UI on ");
  INFO("master: " << master->out() << master->err());
  REQUIRE(line);
  auto at = line->find("https://");
  REQUIRE(at != std::string::npos);
  auto http = line->substr(at + 8);
  http = http.substr(0, http.find('/'));

  // The master answers once it has recovered its (empty) state.
  Outcome ok;
  eventually(
      [&] {
        ok = cli({"agents", "--master", http, "--tls-cert", op1.cert_file, "--tls-key",
                  op1.key_file, "--tls-ca", pki.ca()});
        return ok.code == 0 || !has(ok.err, "no state yet");
      },
      30s);
  INFO("agents: " << ok.out << ok.err);
  CHECK(ok.code == 0);
  CHECK(has(ok.out, "ID"));

  auto only_ca = cli({"agents", "--master", "https://" + http, "--tls-ca", pki.ca()});
  INFO("agents --tls-ca: " << only_ca.out << only_ca.err);
  CHECK(only_ca.code == 0);

  auto plain = cli({"agents", "--master", http});
  INFO("agents without --tls-ca: " << plain.out << plain.err);
  CHECK(plain.code == 1);
  CHECK(has(plain.err, "this port speaks HTTPS only"));
  CHECK(has(plain.err, "--tls-ca"));

  auto half = cli({"agents", "--master", http, "--tls-cert", op1.cert_file, "--tls-ca", pki.ca()});
  CHECK(half.code == 1);
  CHECK(has(half.err, "needs both --tls-cert and --tls-key"));
}
