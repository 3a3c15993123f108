// Plain requests and responses: routing by the handler, decoding, keep-alive,
// answers from other threads, and answers that never come.

#include "http/http_test_support.hpp"

#include "services/http/client.hpp"

#include <nlohmann/json.hpp>

#include <future>
#include <mutex>
#include <thread>

using namespace tessera;
using namespace tessera::http;
using namespace tessera::http::testing;

namespace {

// One large body every /shared answer shares: 3 MiB of numbered lines.
std::shared_ptr<const std::string> shared_text() {
  static const auto text = [] {
    auto out = std::make_shared<std::string>();
    for (int i = 0; out->size() < (size_t{3} << 20); ++i)
      *out += "line " + std::to_string(i) + "\n";
    return std::shared_ptr<const std::string>(out);
  }();
  return text;
}

// Echoes what the server made of the request, as JSON.
void echo(Request req, Responder r) {
  std::vector<std::string> tags;
  auto [from, to] = req.query.equal_range("tag");
  for (auto it = from; it != to; ++it)
    tags.push_back(it->second);
  nlohmann::json out = {{"method", req.method},
                        {"path", req.path},
                        {"target", req.target},
                        {"q", req.query_value("q", "none")},
                        {"missing", req.query_value("missing", "fallback")},
                        {"tags", tags},
                        {"body", req.body},
                        {"content_type", req.headers["content-type"]},
                        {"has_peer", !req.peer.empty()}};
  r.respond(json_response(200, out.dump()));
}

void routes(Request req, Responder r) {
  if (req.path == "/echo")
    return echo(std::move(req), std::move(r));
  if (req.path == "/drop")
    return;  // the Responder dies unanswered
  if (req.path == "/throw")
    throw std::runtime_error("handler bug");
  if (req.path == "/later") {
    std::thread([r] {
      std::this_thread::sleep_for(20ms);
      r.respond(json_response(202, R"({"late":true})"));
    }).detach();
    return;
  }
  if (req.path == "/twice") {
    r.respond(json_response(200, "first"));
    r.respond(json_response(500, "second"));
    return;
  }
  if (req.path == "/header")
    return r.respond(Response{.status = 200,
                              .content_type = "text/plain",
                              .body = "h",
                              .headers = {{"X-Tessera", "yes"}, {"Bad\r\nName", "x"}},
                              .shared_body = nullptr});
  if (req.path == "/shared") {
    Response shared;
    shared.content_type = "text/plain";
    shared.shared_body = shared_text();
    return r.respond(std::move(shared));
  }
  r.respond(error_response(404, "no route for " + req.path));
}

}  // namespace

TEST_CASE("http: a GET and a POST round trip, with path and query decoded", "[http]") {
  auto server = start_server({}, routes);

  auto got = request(server->address(), "GET", "/ec%68o?q=x%2By+z&tag=1&tag=two%26&flag");
  REQUIRE(got);
  CHECK(got->status == 200);
  CHECK(got->headers["content-type"] == "application/json");
  auto body = nlohmann::json::parse(got->body);
  CHECK(body["method"] == "GET");
  CHECK(body["path"] == "/echo");
  CHECK(body["target"] == "/ec%68o?q=x%2By+z&tag=1&tag=two%26&flag");
  CHECK(body["q"] == "x+y z");
  CHECK(body["missing"] == "fallback");
  CHECK(body["tags"] == nlohmann::json::array({"1", "two&"}));
  CHECK(body["has_peer"] == true);

  auto posted = request(server->address(), "POST", "/echo", R"({"k":1})");
  REQUIRE(posted);
  CHECK(posted->status == 200);
  auto echoed = nlohmann::json::parse(posted->body);
  CHECK(echoed["method"] == "POST");
  CHECK(echoed["body"] == R"({"k":1})");
  CHECK(echoed["content_type"] == "application/json");
  CHECK(server->counters().requests == 2);
}

TEST_CASE("http: the handler's own error statuses and headers reach the client", "[http]") {
  auto server = start_server({}, routes);
  auto missing = request(server->address(), "GET", "/nowhere");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(nlohmann::json::parse(missing->body)["error"] == "no route for /nowhere");

  auto with_header = request(server->address(), "GET", "/header");
  REQUIRE(with_header);
  CHECK(with_header->headers["x-tessera"] == "yes");
  CHECK(with_header->headers["content-type"] == "text/plain");
  CHECK(with_header->headers.count("bad\r\nname") == 0);
  CHECK(with_header->body == "h");
}

TEST_CASE("http: keep-alive: one connection carries several requests, pipelined ones too",
          "[http]") {
  auto server = start_server({}, routes);
  RawSocket client(server->port());
  REQUIRE(client.connected());

  REQUIRE(client.send(get("/echo?q=1")));
  REQUIRE(client.read_until(has_response));
  CHECK(status_of(client.received()) == 200);
  CHECK(client.received().find(R"("q":"1")") != std::string::npos);
  client.clear();

  REQUIRE(client.send(get("/echo?q=2")));
  REQUIRE(client.read_until(has_response));
  CHECK(client.received().find(R"("q":"2")") != std::string::npos);
  client.clear();

  // Two requests in one segment: answered in order, one at a time.
  REQUIRE(client.send(get("/echo?q=3") + get("/nowhere")));
  REQUIRE(client.read_until(
      [](const std::string& s) { return s.find("no route for /nowhere") != std::string::npos; }));
  auto third = client.received().find(R"("q":"3")");
  auto fourth = client.received().find("404 Not Found");
  CHECK(third != std::string::npos);
  CHECK(fourth != std::string::npos);
  CHECK(third < fourth);

  CHECK(server->counters().connections_accepted == 1);
  CHECK(server->counters().requests == 4);
}

TEST_CASE("http: a shared body goes out whole to many readers at once, then pipelined answers",
          "[http]") {
  auto server = start_server({}, routes);
  std::vector<std::future<expected<ClientResponse>>> readers;
  for (int i = 0; i < 8; ++i)
    readers.push_back(std::async(std::launch::async,
                                 [&] { return request(server->address(), "GET", "/shared"); }));
  for (auto& f : readers) {
    auto r = f.get();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers["content-length"] == std::to_string(shared_text()->size()));
    CHECK(r->body == *shared_text());
  }
  // After a shared body on one connection: the next answers come in order.
  RawSocket client(server->port());
  REQUIRE(client.send(get("/shared") + get("/echo?q=after") +
                      "HEAD /shared HTTP/1.1\r\nHost: t\r\n\r\n" + get("/echo?q=last")));
  REQUIRE(client.read_until(
      [](const std::string& s) { return s.find(R"("q":"last")") != std::string::npos; }));
  auto& got = client.received();
  auto body_at = got.find("line 0\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(got.compare(body_at, shared_text()->size(), *shared_text()) == 0);
  auto after = got.find(R"("q":"after")");
  CHECK(after > body_at + shared_text()->size());
  // The HEAD answer between them carried no body: "line 0" appears once.
  CHECK(got.find("line 0\n", body_at + 1) == std::string::npos);
  CHECK(got.find(R"("q":"last")") > after);
}

TEST_CASE("http: a Responder may answer later, from another thread, and only once", "[http]") {
  auto server = start_server({}, routes);
  auto later = request(server->address(), "GET", "/later");
  REQUIRE(later);
  CHECK(later->status == 202);
  CHECK(later->body == R"({"late":true})");

  auto twice = request(server->address(), "GET", "/twice");
  REQUIRE(twice);
  CHECK(twice->status == 200);
  CHECK(twice->body == "first");
}

TEST_CASE("http: an unanswered request gets 500 when its last Responder goes away", "[http]") {
  auto server = start_server({}, routes);
  auto dropped = request(server->address(), "GET", "/drop");
  REQUIRE(dropped);
  CHECK(dropped->status == 500);
  CHECK(nlohmann::json::parse(dropped->body)["error"] == "no response");

  auto threw = request(server->address(), "GET", "/throw");
  REQUIRE(threw);
  CHECK(threw->status == 500);

  // The server goes on serving.
  auto after = request(server->address(), "GET", "/echo");
  REQUIRE(after);
  CHECK(after->status == 200);
}

TEST_CASE("http: a HEAD request gets the head without the body", "[http]") {
  auto server = start_server({}, routes);
  RawSocket client(server->port());
  REQUIRE(client.send("HEAD /nowhere HTTP/1.1\r\nHost: t\r\n\r\n" + get("/echo")));
  REQUIRE(client.read_until(
      [](const std::string& s) { return s.find(R"("method":"GET")") != std::string::npos; }));
  auto& got = client.received();
  CHECK(got.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(got.find("no route") == std::string::npos);  // the HEAD answer had no body
}

TEST_CASE("http: Responders of a connection that died, or of a stopped server, are no-ops",
          "[http]") {
  std::promise<Responder> held;
  auto server = start_server({}, [&](Request, Responder r) { held.set_value(r); });
  {
    RawSocket client(server->port());
    REQUIRE(client.send(get("/held")));
    auto responder = held.get_future().get();
    client.close();
    REQUIRE(wait_counter(server->counters().connections_open, 0));
    responder.respond(json_response(200, "{}"));  // the connection is gone: nothing happens
    CHECK(responder.answered());
    auto stream = responder.open_stream(200, "text/plain");
    CHECK(stream->closed());
    server->stop();
    responder.respond(json_response(200, "{}"));
  }
  server->stop();  // idempotent
}

TEST_CASE("http: client errors are values", "[http]") {
  SECTION("a closed port is unreachable") {
    uint16_t port = 0;
    {
      auto probe = start_server({}, routes);
      port = probe->port();
    }
    auto got = request("127.0.0.1:" + std::to_string(port), "GET", "/");
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), Errc::connect_failed));
    CHECK_THAT(what(got.error()),
               Catch::StartsWith("cannot reach 127.0.0.1:" + std::to_string(port) + ": "));
  }
  SECTION("a server that does not answer in time") {
    std::vector<Responder> held;
    std::mutex mu;
    auto server = start_server({}, [&](Request, Responder r) {
      std::lock_guard lock(mu);
      held.push_back(r);
    });
    auto got = request(server->address(), "GET", "/", "", "application/json", 200ms);
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), Errc::timeout));
  }
  SECTION("a host:port that does not parse") {
    auto got = request("no-port-here", "GET", "/");
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), Errc::invalid_argument));
  }
}

TEST_CASE("http: a port already in use is an error value", "[http]") {
  auto first = start_server({}, routes);
  ServerConfig config;
  config.port = first->port();
  auto second = Server::start(config, routes);
  REQUIRE_FALSE(second);
  CHECK_THAT(describe(second.error()),
             Catch::Contains("http: cannot listen on 127.0.0.1:" + std::to_string(first->port())));
}
