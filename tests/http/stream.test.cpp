// Streaming responses: chunks from other threads in order, subscribers that
// stop reading or go away, thousands held at once, and stop() with all of it.

#include "http/http_test_support.hpp"

#include "services/http/client.hpp"
#include "services/http/recordio.hpp"

#include <future>
#include <mutex>
#include <thread>
#include <vector>

using namespace tessera;
using namespace tessera::http;
using namespace tessera::http::testing;

namespace {

// Holds every stream opened on /events (a stream whose last handle goes away
// closes), counts their on_close calls, answers anything else with 200.
struct Subscribers {
  std::mutex mu;
  std::vector<std::shared_ptr<Stream>> streams;
  std::vector<Responder> pending;  // requests on /pending, never answered
  std::atomic<int> closed{0};

  Handler handler() {
    return [this](Request req, Responder r) {
      if (req.path == "/pending") {
        std::lock_guard lock(mu);
        pending.push_back(r);
        return;
      }
      if (req.path != "/events")
        return r.respond(json_response(200, "{}"));
      auto stream = r.open_stream(200, "application/recordio", {{"Cache-Control", "no-cache"}});
      stream->on_close([this] { ++closed; });
      std::lock_guard lock(mu);
      streams.push_back(std::move(stream));
    };
  }

  std::shared_ptr<Stream> at(size_t i) {
    std::lock_guard lock(mu);
    return streams.at(i);
  }
  size_t count() {
    std::lock_guard lock(mu);
    return streams.size();
  }
};

}  // namespace

TEST_CASE("http: a stream delivers chunks written from another thread, in order", "[http]") {
  std::promise<std::shared_ptr<Stream>> opened;
  auto server = start_server({}, [&](Request, Responder r) {
    opened.set_value(r.open_stream(200, "application/recordio"));
  });
  constexpr int records = 500;
  std::thread writer([&] {
    auto stream = opened.get_future().get();
    for (int i = 0; i < records; ++i)
      REQUIRE(stream->write(recordio_frame("event " + std::to_string(i))));
    stream->close();
    CHECK_FALSE(stream->write("after close"));
  });

  RecordIoReader reader;
  std::vector<std::string> got;
  auto status = stream(server->address(), "GET", "/events", "", [&](std::string_view piece) {
    reader.feed(piece);
    while (auto record = reader.next())
      got.push_back(*record);
    return true;
  });
  writer.join();
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK_FALSE(reader.error());
  REQUIRE(got.size() == records);
  for (int i = 0; i < records; ++i)
    CHECK(got[static_cast<size_t>(i)] == "event " + std::to_string(i));
  REQUIRE(wait_counter(server->counters().streams_open, 0));
}

TEST_CASE("http: after a stream is closed the connection serves its next request", "[http]") {
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  RawSocket client(server->port());
  REQUIRE(client.send(get("/events")));
  REQUIRE(wait_until([&] { return subs.count() == 1; }));
  subs.at(0)->write("hello");
  subs.at(0)->close();
  REQUIRE(client.read_until(
      [](const std::string& s) { return s.find("\r\n0\r\n\r\n") != std::string::npos; }));
  CHECK(client.received().find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(client.received().find("5\r\nhello\r\n") != std::string::npos);
  REQUIRE(wait_until([&] { return subs.closed == 1; }));
  client.clear();
  REQUIRE(client.send(get("/other")));
  REQUIRE(client.read_until(has_response));
  CHECK(status_of(client.received()) == 200);
  CHECK(server->counters().connections_accepted == 1);
}

TEST_CASE("http: dropping the last handle of a stream ends it", "[http]") {
  auto server = start_server({}, [](Request, Responder r) {
    auto s = r.open_stream(200, "text/plain");
    s->write("only this");
  });  // s goes away here
  std::string body;
  auto status = stream(server->address(), "GET", "/", "", [&](std::string_view piece) {
    body += piece;
    return true;
  });
  REQUIRE(status);
  CHECK(*status == 200);
  CHECK(body == "only this");
}

TEST_CASE("http: the client's stream deadline and on_chunk end a stream that goes on", "[http]") {
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  std::atomic<bool> stop_writing{false};
  std::thread writer([&] {
    while (!stop_writing) {
      if (subs.count() > 0)
        subs.at(subs.count() - 1)->write("tick\n");
      std::this_thread::sleep_for(5ms);
    }
  });
  size_t pieces = 0;
  auto until_deadline = stream(
      server->address(), "GET", "/events", "",
      [&](std::string_view) {
        ++pieces;
        return true;
      },
      300ms);
  REQUIRE(until_deadline);
  CHECK(*until_deadline == 200);
  CHECK(pieces > 0);

  auto until_enough = stream(server->address(), "GET", "/events", "", [](std::string_view piece) {
    return piece.find("tick") == std::string_view::npos;  // stop at the first tick
  });
  REQUIRE(until_enough);
  CHECK(*until_enough == 200);
  stop_writing = true;
  writer.join();
  CHECK(wait_counter(server->counters().streams_open, 0));
}

TEST_CASE("http: a subscriber that stops reading is evicted while others are served", "[http]") {
  ServerConfig config;
  config.stream_buffer_bytes_max = 64 * 1024;
  Subscribers subs;
  auto server = start_server(config, subs.handler());
  RawSocket slow(server->port(), 4096);
  REQUIRE(slow.send(get("/events")));
  REQUIRE(wait_until([&] { return subs.count() == 1; }));
  auto stream = subs.at(0);

  // Writes until the stream refuses: the kernel's buffers fill first, then
  // the server's, up to stream_buffer_bytes_max. Bounded in bytes and time.
  const std::string chunk(16 * 1024, 'x');
  size_t written = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  bool refused = false;
  while (!refused && written < (size_t{1} << 30) && std::chrono::steady_clock::now() < deadline) {
    refused = !stream->write(chunk);
    if (!refused)
      written += chunk.size();
    if (written == (size_t{1} << 20)) {
      // The slow subscriber's window is long full by now: others go on.
      auto other = request(server->address(), "GET", "/");
      REQUIRE(other);
      CHECK(other->status == 200);
    }
  }
  REQUIRE(refused);
  CHECK(stream->closed());
  // The I/O thread runs at nice +10: under a loaded machine (the sanitizer
  // suite on two cores) it may take a while to get to the eviction.
  REQUIRE(wait_counter(server->counters().streams_evicted, 1, 60s));
  REQUIRE(wait_counter(server->counters().streams_open, 0, 60s));
  REQUIRE(wait_until([&] { return subs.closed == 1; }, 60s));
  CHECK(slow.wait_closed(60s));

  auto other = request(server->address(), "GET", "/");
  REQUIRE(other);
  CHECK(other->status == 200);
}

TEST_CASE("http: a subscriber going away fires on_close and frees its stream", "[http]") {
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  {
    RawSocket client(server->port());
    REQUIRE(client.send(get("/events")));
    REQUIRE(wait_counter(server->counters().streams_open, 1));
    REQUIRE(client.read_until([](const std::string& s) { return has_response(s); }));
  }
  REQUIRE(wait_until([&] { return subs.closed == 1; }));
  CHECK(wait_counter(server->counters().streams_open, 0));
  CHECK(wait_counter(server->counters().connections_open, 0));
  CHECK(subs.at(0)->closed());
  CHECK_FALSE(subs.at(0)->write("anyone?"));
  bool called = false;
  subs.at(0)->on_close([&] { called = true; });  // already closed: runs at once
  CHECK(called);
}

TEST_CASE("http: a thousand idle subscribers are held at once, and let go", "[http]") {
  raise_fd_limit();
  constexpr size_t subscribers = 1000;
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  std::vector<std::unique_ptr<RawSocket>> clients;
  for (size_t i = 0; i < subscribers; ++i) {
    clients.push_back(std::make_unique<RawSocket>(server->port()));
    REQUIRE(clients.back()->connected());
    REQUIRE(clients.back()->send(get("/events")));
  }
  REQUIRE(wait_counter(server->counters().streams_open, subscribers, 60s));
  CHECK(server->counters().connections_open == subscribers);

  // An event reaches a subscriber, and the server still answers others.
  subs.at(subscribers / 2)->write("ping");
  auto other = request(server->address(), "GET", "/");
  REQUIRE(other);
  CHECK(other->status == 200);

  clients.clear();
  REQUIRE(wait_counter(server->counters().streams_open, 0, 60s));
  CHECK(wait_counter(server->counters().connections_open, 0));
  CHECK(wait_until([&] { return subs.closed == static_cast<int>(subscribers); }));
}

TEST_CASE("http: stop() with open streams and pending responders returns promptly", "[http]") {
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  std::vector<std::unique_ptr<RawSocket>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<RawSocket>(server->port()));
    REQUIRE(clients.back()->send(get(i % 2 == 0 ? "/events" : "/pending")));
  }
  REQUIRE(wait_counter(server->counters().streams_open, 10));
  REQUIRE(wait_counter(server->counters().requests, 20));

  // With the default 60 s idle timeout, a stop that waited on connections
  // would take a minute; the bound is generous, not a speed test.
  auto began = std::chrono::steady_clock::now();
  server->stop();
  CHECK(std::chrono::steady_clock::now() - began < 20s);

  CHECK(subs.closed == 10);
  CHECK(server->counters().connections_open == 0);
  CHECK(server->counters().streams_open == 0);
  std::lock_guard lock(subs.mu);
  for (auto& s : subs.streams)
    CHECK_FALSE(s->write("after stop"));
  for (auto& r : subs.pending)
    r.respond(json_response(200, "{}"));  // a no-op, safely
  for (auto& c : clients)
    CHECK(c->wait_closed());
}

TEST_CASE("http: an HTTP/1.0 subscriber gets the stream unchunked, ended by the close", "[http]") {
  Subscribers subs;
  auto server = start_server({}, subs.handler());
  RawSocket client(server->port());
  REQUIRE(client.send("GET /events HTTP/1.0\r\n\r\n"));
  REQUIRE(wait_until([&] { return subs.count() == 1; }));
  subs.at(0)->write("abc");
  subs.at(0)->write("def");
  subs.at(0)->close();
  CHECK(client.wait_closed());
  auto& got = client.received();
  CHECK(got.find("Transfer-Encoding") == std::string::npos);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(got.ends_with("\r\n\r\nabcdef"));
  CHECK(wait_until([&] { return subs.closed == 1; }));
}
