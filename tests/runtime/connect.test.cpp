// Reaching another node when its listener accepts TCP connections but does not
// answer CAF's BASP handshake (a server too busy to serve them, a handshake
// lost on the way): a resolve times out, and a retry must open a new
// connection that succeeds once a node serves at that address. A raw
// listening socket on 127.0.0.1 plays the silent server.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <vector>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

// A listening socket on 127.0.0.1 that never writes a byte: the kernel
// completes the TCP handshakes, accept_all() takes the connections and keeps
// them open, silent. The destructor closes everything.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() {
    close_listener();
    for (int fd : accepted_)
      ::close(fd);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  uint16_t port() const { return port_; }

  // Takes every connection waiting in the backlog; returns how many.
  size_t accept_all() {
    size_t n = 0;
    for (;;) {
      int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return n;
      accepted_.push_back(fd);
      ++n;
    }
  }

  // Writes bytes on every accepted connection.
  void say(const void* data, size_t n) {
    for (int fd : accepted_)
      static_cast<void>(::send(fd, data, n, MSG_NOSIGNAL));
  }

  // Stops listening; the accepted connections stay open (and silent), so a
  // node may listen on the port now.
  void close_listener() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> accepted_;
};

// Pings target until a reply comes, one request at a time, again after each
// failure; counts both.
struct Retrier {
  std::atomic<int> failures{0};
  std::atomic<bool> answered{false};

  Probe::Setup setup(Address target) {
    return [this, target](Probe& self) { attempt(self, target); };
  }

 private:
  void attempt(Probe& self, const Address& target) {
    self.request<testwire::Pong>(
        target, make_ping(1), 2s, [this](const Received<testwire::Pong>&) { answered = true; },
        [this, &self, target](const caf::error&) {
          ++failures;
          self.after(50ms, [this, &self, target] { attempt(self, target); });
        });
  }
};

}  // namespace

TEST_CASE("a resolve stuck in a handshake that never comes is retried on a new connection",
          "[transport][connect]") {
  SilentListener silent;
  Retrier retrier;  // outlives the node whose actor uses it
  NodeConfig client_config;
  client_config.resolve_timeout_ms = 200ms;
  auto client = start_node(client_config);
  Address ponger{"ponger", "127.0.0.1", silent.port()};
  REQUIRE(client->spawn<Probe>("retrier", retrier.setup(ponger)));

  // The client's first connection was accepted and is left unanswered; its
  // resolves time out, again and again.
  REQUIRE(wait_until([&] { return silent.accept_all() > 0; }, 10s));
  REQUIRE(wait_until([&] { return retrier.failures >= 3; }, 10s));
  CHECK_FALSE(retrier.answered);

  // Now a node serves at that port. The silent connections stay open: a
  // client that kept waiting on one of them would never get through.
  silent.accept_all();
  silent.close_listener();
  NodeConfig server_config;
  server_config.port = silent.port();
  auto server = start_node(server_config);
  REQUIRE(server->spawn<Ponger>("ponger"));
  CHECK(wait_until([&] { return retrier.answered.load(); }, 30s));
  INFO("failed attempts: " << retrier.failures);
}

TEST_CASE("a dialled peer announcing a 4 GiB frame is cut off before anything is allocated",
          "[transport][connect][reject]") {
  // The guard of a node's listener also covers the connections it dials: a
  // server may be hostile or broken as much as a client.
  SilentListener hostile;
  Retrier retrier;
  NodeConfig client_config;
  client_config.resolve_timeout_ms = 2000ms;
  auto client = start_node(client_config);
  REQUIRE(client->spawn<Probe>("retrier", retrier.setup({"ponger", "127.0.0.1", hostile.port()})));
  REQUIRE(wait_until([&] { return hostile.accept_all() > 0; }, 10s));
  // A BASP header (CAF 0.17, network byte order): a direct message to actor
  // 1 whose payload, it says, is 4 GiB.
  std::array<unsigned char, 32> header{};
  header[0] = 0x02;  // direct_message
  for (int i = 0; i < 4; ++i)
    header[4 + i] = 0xFF;
  header[31] = 1;  // dest_actor
  hostile.say(header.data(), header.size());
  REQUIRE(wait_until([&] { return client->transport_counters().refused_frames.load() >= 1; }, 10s));
  CHECK_FALSE(retrier.answered);
  // The client goes on serving: a ping of a real node gets through.
  auto server = start_node();
  REQUIRE(server->spawn<Ponger>("ponger"));
  Retrier fine;
  REQUIRE(client->spawn<Probe>("fine", fine.setup(server->address_of("ponger"))));
  CHECK(wait_until([&] { return fine.answered.load(); }, 30s));
}
