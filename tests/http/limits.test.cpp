// Every limit of the server fires, is answered as HTTP says, and is counted;
// the server goes on serving others.

#include "http/http_test_support.hpp"

#include "services/http/client.hpp"

#include <vector>

using namespace tessera;
using namespace tessera::http;
using namespace tessera::http::testing;

namespace {

void ok(Request, Responder r) {
  r.respond(json_response(200, R"({"ok":true})"));
}

// The server still answers a well-formed request on a new connection.
void check_still_serving(const Server& server) {
  auto got = request(server.address(), "GET", "/");
  REQUIRE(got);
  CHECK(got->status == 200);
}

}  // namespace

TEST_CASE("http: a body over request_body_bytes_max gets 413 and the connection closes", "[http]") {
  ServerConfig config;
  config.request_body_bytes_max = 1024;
  auto server = start_server(config, ok);

  auto small = request(server->address(), "POST", "/", std::string(1024, 'a'));
  REQUIRE(small);
  CHECK(small->status == 200);

  auto large = request(server->address(), "POST", "/", std::string(64 * 1024, 'a'));
  REQUIRE(large);
  CHECK(large->status == 413);
  CHECK(server->counters().too_large == 1);

  // Announced but never sent: refused on the header alone.
  RawSocket client(server->port());
  REQUIRE(client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n"));
  REQUIRE(client.read_until(has_response));
  CHECK(status_of(client.received()) == 413);
  CHECK(client.received().find("Connection: close") != std::string::npos);
  CHECK(client.wait_closed());
  CHECK(server->counters().too_large == 2);
  CHECK(server->counters().requests == 1);
  check_still_serving(*server);
}

TEST_CASE("http: a header over header_bytes_max gets 431", "[http]") {
  ServerConfig config;
  config.header_bytes_max = 1024;
  auto server = start_server(config, ok);
  RawSocket client(server->port());
  REQUIRE(client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(8 * 1024, 'x') +
                      "\r\n\r\n"));
  REQUIRE(client.read_until(has_response));
  CHECK(status_of(client.received()) == 431);
  CHECK(client.wait_closed());
  CHECK(server->counters().too_large == 1);
  CHECK(server->counters().requests == 0);
  check_still_serving(*server);
}

TEST_CASE("http: a request that does not parse gets 400, is counted, and closes", "[http]") {
  auto server = start_server({}, ok);
  for (std::string garbage : std::vector<std::string>{
           "this is not http\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
           std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n"}) {
    RawSocket client(server->port());
    REQUIRE(client.send(garbage));
    REQUIRE(client.read_until(has_response));
    CHECK(status_of(client.received()) == 400);
    CHECK(client.wait_closed());
  }
  CHECK(server->counters().bad_requests == 3);
  CHECK(server->counters().requests == 0);
  check_still_serving(*server);
}

TEST_CASE("http: connections beyond connections_max are accepted and closed at once", "[http]") {
  ServerConfig config;
  config.connections_max = 3;
  auto server = start_server(config, ok);
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawSocket>(server->port()));
    REQUIRE(held.back()->connected());
  }
  REQUIRE(wait_counter(server->counters().connections_open, 3));

  RawSocket extra(server->port());
  CHECK(extra.wait_closed());
  CHECK(server->counters().connections_refused == 1);
  CHECK(server->counters().connections_accepted == 3);

  // The three admitted ones are served.
  REQUIRE(held[0]->send(get("/")));
  REQUIRE(held[0]->read_until(has_response));
  CHECK(status_of(held[0]->received()) == 200);

  // Room again once one leaves.
  held.pop_back();
  REQUIRE(wait_counter(server->counters().connections_open, 2));
  check_still_serving(*server);
}

TEST_CASE("http: an idle keep-alive connection is closed after idle_timeout_ms", "[http]") {
  ServerConfig config;
  config.idle_timeout_ms = 200ms;
  auto server = start_server(config, ok);

  RawSocket silent(server->port());
  CHECK(silent.wait_closed());
  // The timer closes the socket a moment before the count is taken.
  CHECK(wait_counter(server->counters().idle_closed, 1));

  RawSocket after_request(server->port());
  REQUIRE(after_request.send(get("/")));
  REQUIRE(after_request.read_until(has_response));
  CHECK(after_request.wait_closed());
  CHECK(wait_counter(server->counters().idle_closed, 2));
  CHECK(server->counters().timed_out == 0);
  CHECK(wait_counter(server->counters().connections_open, 0));
}

TEST_CASE("http: a request that does not arrive whole within request_timeout_ms is dropped",
          "[http]") {
  ServerConfig config;
  config.request_timeout_ms = 200ms;
  auto server = start_server(config, ok);
  RawSocket slow(server->port());
  REQUIRE(slow.send("GET / HTTP/1.1\r\nHost: t\r\n"));  // and never the blank line
  CHECK(slow.wait_closed());
  CHECK(wait_counter(server->counters().timed_out, 1));
  CHECK(server->counters().idle_closed == 0);
  check_still_serving(*server);
}

TEST_CASE("http: Expect: 100-continue gets its go-ahead", "[http]") {
  auto server =
      start_server({}, [](Request req, Responder r) { r.respond(json_response(200, req.body)); });
  RawSocket client(server->port());
  REQUIRE(client.send(
      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  REQUIRE(client.read_until(
      [](const std::string& s) { return s.find("100 Continue\r\n\r\n") != std::string::npos; }));
  client.clear();
  REQUIRE(client.send("hello"));
  REQUIRE(client.read_until(has_response));
  CHECK(status_of(client.received()) == 200);
  CHECK(client.received().ends_with("hello"));
}
