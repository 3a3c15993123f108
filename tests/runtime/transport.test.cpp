// The transport's guards against hostile or careless peers: a frame claiming
// more than the node's maximum, too many connections, connections that never
// say anything. Raw sockets on 127.0.0.1 play the hostile peer.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <fstream>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

// A TCP connection to 127.0.0.1:port, closed by the destructor.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool send(const void* data, size_t n) {
    return ::send(fd_, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
  }
  // True once the node has closed the connection (EOF or reset), reading and
  // discarding whatever it sent first (its handshake).
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0)
        continue;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

// A BASP header (CAF 0.17, network byte order): a direct message to actor 1
// whose payload, it says, is payload_len bytes long.
std::array<unsigned char, 32> basp_header(uint32_t payload_len) {
  std::array<unsigned char, 32> h{};
  h[0] = 0x02;  // direct_message
  for (int i = 0; i < 4; ++i)
    h[4 + i] = static_cast<unsigned char>(payload_len >> (24 - 8 * i));
  h[31] = 1;  // dest_actor
  return h;
}

// Resident set of a process, bytes.
size_t rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stoull(line.substr(6)) * 1024;
  return 0;
}

PingResult ping_pong(Node& node, const Address& ponger, const std::string& name) {
  auto outcome = std::make_shared<PingOutcome>();
  REQUIRE(node.spawn<Pinger>(name, ponger, 3, 3, outcome));
  REQUIRE(outcome->wait_done(30s));
  return outcome->get();
}

// Three round trips and a burst of three, all answered (the ponger's count
// depends on who pinged it before).
bool served(const PingResult& r) {
  return r.done && r.replies == 3 && r.burst_pongs == 3 && r.in_order && r.errors.empty();
}

}  // namespace

TEST_CASE("a frame claiming 4 GiB is refused before anything is allocated", "[transport][reject]") {
  // The node under attack runs in its own process, under an address-space
  // limit: without the guard it would try to allocate 4 GiB (and, limited,
  // die) instead of this test process growing by gigabytes.
  auto peer = PeerProcess::start({"serve", "--address-space-mb", "2048"});
  Address ponger{"ponger", "127.0.0.1", peer->port()};
  auto node = start_node();
  // An existing peer, connected before the attack.
  REQUIRE(served(ping_pong(*node, ponger, "before")));
  auto rss_before = rss_bytes(peer->pid());
  REQUIRE(rss_before > 0);

  RawSocket attacker(peer->port());
  auto header = basp_header(0xFFFFFFFFu);
  REQUIRE(attacker.send(header.data(), header.size()));
  CHECK(attacker.closed_by_peer(10s));

  // Still serving the existing peer, and a new one.
  CHECK(served(ping_pong(*node, ponger, "after")));
  auto other = start_node();
  CHECK(served(ping_pong(*other, ponger, "newcomer")));
  auto rss_after = rss_bytes(peer->pid());
  INFO("peer RSS before " << rss_before << " after " << rss_after);
  CHECK(rss_after > 0);  // alive
  CHECK(rss_after < rss_before + (size_t{8} << 20));
  // Counted (and logged) by the node: the peer prints its counters on SIGTERM.
  peer->kill(SIGTERM);
  REQUIRE(peer->wait_exit(10s));
  CHECK(peer->output().find("refused_frames 1") != std::string::npos);
}

TEST_CASE("the frame limit follows message_bytes_max", "[transport][reject]") {
  NodeConfig config;
  config.message_bytes_max = 1 << 20;
  config.frame_overhead_bytes = 4096;
  auto node = start_node(config);
  REQUIRE(node->spawn<Ponger>("ponger"));
  {
    // Just within the limit: read (and then found malformed), not refused.
    RawSocket ok(node->port());
    auto fits = basp_header(static_cast<uint32_t>(config.frame_bytes_max()));
    REQUIRE(ok.send(fits.data(), fits.size()));
    RawSocket too_big(node->port());
    auto over = basp_header(static_cast<uint32_t>(config.frame_bytes_max() + 1));
    REQUIRE(too_big.send(over.data(), over.size()));
    CHECK(too_big.closed_by_peer(10s));
    CHECK(node->transport_counters().refused_frames == 1);
  }
  auto client = start_node();
  CHECK(served(ping_pong(*client, node->address_of("ponger"), "pinger")));
}

TEST_CASE("inbound connections are bounded, existing peers keep being served",
          "[transport][connections]") {
  NodeConfig config;
  config.connections_max = 4;
  config.connection_idle_timeout_ms = 0ms;  // this test is about the bound alone
  auto node = start_node(config);
  REQUIRE(node->spawn<Ponger>("ponger"));
  auto client = start_node();
  REQUIRE(served(ping_pong(*client, node->address_of("ponger"), "before")));

  std::vector<std::unique_ptr<RawSocket>> flood;
  for (int i = 0; i < 20; ++i)
    flood.push_back(std::make_unique<RawSocket>(node->port()));
  // Three of them fit beside the client's connection; the others are closed.
  REQUIRE(wait_until([&] { return node->transport_counters().refused_connections == 17; }));
  int closed = 0;
  for (auto& s : flood)
    closed += s->closed_by_peer(50ms) ? 1 : 0;
  CHECK(closed == 17);
  CHECK(node->transport_counters().open == 4);
  CHECK(served(ping_pong(*client, node->address_of("ponger"), "during")));
  // Slots free up when connections close.
  flood.clear();
  REQUIRE(wait_until([&] { return node->transport_counters().open == 1; }));
  auto newcomer = start_node();
  CHECK(served(ping_pong(*newcomer, node->address_of("ponger"), "newcomer")));
}

TEST_CASE("a connection that says nothing is closed after the idle timeout, live peers stay",
          "[transport][idle]") {
  NodeConfig config;
  config.connection_idle_timeout_ms = 400ms;
  config.heartbeat_interval_ms = 100ms;
  auto node = start_node(config);
  REQUIRE(node->spawn<Ponger>("ponger"));
  auto client = start_node(config);  // heartbeats keep its connection alive
  std::atomic<int> lost{0};
  REQUIRE(client->spawn<Probe>("watcher", [&, ponger = node->address_of("ponger")](Probe& self) {
    self.on_lost([&](const Address&, const caf::error&) { ++lost; });
    self.watch(ponger);
    self.send(ponger, make_ping(1));
  }));
  REQUIRE(served(ping_pong(*client, node->address_of("ponger"), "before")));

  RawSocket silent(node->port());
  auto t0 = std::chrono::steady_clock::now();
  CHECK(silent.closed_by_peer(10s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 400ms);
  CHECK(node->transport_counters().idle_closed >= 1);
  // The quiet client stayed connected all along, and is still served.
  std::this_thread::sleep_for(600ms);
  CHECK(lost == 0);
  CHECK(served(ping_pong(*client, node->address_of("ponger"), "after")));
}

TEST_CASE("a peer that stops reading is cut off once its write buffer is full",
          "[transport][backpressure]") {
  // The peer is stopped (SIGSTOP) while this node sends it 50 MiB: the
  // kernel's socket buffers take a few MiB, then the node must not queue the
  // rest in memory without bound.
  auto peer = PeerProcess::start({"serve"});
  Address echo{"echo", "127.0.0.1", peer->port()};
  NodeConfig config;
  config.message_bytes_max = size_t{1} << 20;
  config.frame_overhead_bytes = size_t{1} << 20;
  config.write_buffer_frames_max = 4;  // 8 MiB
  auto node = Node::start(config);
  REQUIRE(node);
  REQUIRE(served(ping_pong(**node, Address{"ponger", "127.0.0.1", peer->port()}, "before")));
  // The flooder reaches echo once (so its address is resolved), then
  // floods it when told, after the peer has stopped.
  auto ready = std::make_shared<std::atomic<bool>>(false);
  std::string chunk(512 * 1024, 'x');
  REQUIRE((*node)->spawn<Probe>("flooder", [echo, chunk, ready](Probe& self) {
    self.on<wire::testing::Tick>([&self, echo, chunk](const Received<wire::testing::Tick>&) {
      for (int i = 0; i < 100; ++i)
        self.send(echo, build<wire::testing::Blob>([&](wire::testing::Blob::Builder b) {
                    b.setTag("flood");
                    b.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(chunk.data()),
                                                   chunk.size()));
                  }));
    });
    self.request<wire::testing::Ping>(
        echo, build<wire::testing::Ping>([](wire::testing::Ping::Builder b) { b.setSeq(1); }), 10s,
        [ready](const Received<wire::testing::Ping>&) { *ready = true; }, [](const caf::error&) {});
  }));
  REQUIRE(wait_until([&] { return ready->load(); }, 15s));
  peer->kill(SIGSTOP);
  auto flooder = (*node)->address_of("flooder");
  REQUIRE((*node)->spawn<Probe>("trigger", [flooder](Probe& self) {
    self.send(flooder, build<wire::testing::Tick>([](wire::testing::Tick::Builder) {}));
  }));
  CHECK(wait_until([&] { return (*node)->transport_counters().write_overflow_closed >= 1; }, 30s));
  peer->kill(SIGCONT);
  // The node goes on: it reconnects to the peer once the peer reads again
  // (the peer first drains what the kernel held, then sees the close).
  bool again = false;
  for (int i = 0; i < 20 && !again; ++i)
    again = served(ping_pong(**node, Address{"ponger", "127.0.0.1", peer->port()},
                             "after" + std::to_string(i)));
  CHECK(again);
}
