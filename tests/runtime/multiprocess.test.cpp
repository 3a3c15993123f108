// Two OS processes on 127.0.0.1: this test process and a tessera_test_peer it
// starts and stops by pid.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <random>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

Address on_peer(const PeerProcess& peer, const char* name) {
  return Address{name, "127.0.0.1", peer.port()};
}

PingResult ping_pong(Node& node, const Address& ponger, const std::string& name,
                     uint64_t rounds = 50, uint64_t burst = 500) {
  auto outcome = std::make_shared<PingOutcome>();
  REQUIRE(node.spawn<Pinger>(name, ponger, rounds, burst, outcome));
  REQUIRE(outcome->wait_done(30s));
  return outcome->get();
}

}  // namespace

TEST_CASE("ping/pong with state, across two OS processes", "[multiprocess][scenario]") {
  auto peer = PeerProcess::start({"serve"});
  auto node = start_node();
  CHECK(ping_pong(*node, on_peer(*peer, "ponger"), "pinger") == expected_result(50, 500));
}

TEST_CASE("every message type survives a round trip to another process", "[multiprocess]") {
  auto peer = PeerProcess::start({"serve"});
  auto node = start_node();
  std::mutex mu;
  std::vector<std::string> results;
  auto echo = on_peer(*peer, "echo");
  auto record = [&](std::string r) {
    std::lock_guard<std::mutex> guard(mu);
    results.push_back(std::move(r));
  };
  auto fail = [&](const caf::error& e) { record("error " + describe(e)); };
  REQUIRE(node->spawn<Probe>("asker", [&](Probe& self) {
    self.request<testwire::Ping>(
        echo, make_ping(11), 10s,
        [&](const Received<testwire::Ping>& m) {
          record("ping " + std::to_string(m.body().getSeq()));
        },
        fail);
    auto pong = build<testwire::Pong>([](testwire::Pong::Builder b) {
      b.setSeq(5);
      b.setCount(6);
    });
    self.request<testwire::Pong>(
        echo, pong, 10s,
        [&](const Received<testwire::Pong>& m) {
          record("pong " + std::to_string(m.body().getSeq() * 10 + m.body().getCount()));
        },
        fail);
    auto blob = build<testwire::Blob>([](testwire::Blob::Builder b) {
      b.setTag("tag");
      auto bytes = b.initBytes(100000);
      for (size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<uint8_t>(i * 7);
      auto values = b.initValues(3);
      values.set(0, 1);
      values.set(1, 2);
      values.set(2, 3);
    });
    self.request<testwire::Blob>(
        echo, blob, 10s,
        [&](const Received<testwire::Blob>& m) {
          auto b = m.body();
          auto bytes = b.getBytes();
          bool bytes_ok = bytes.size() == 100000;
          for (size_t i = 0; bytes_ok && i < bytes.size(); ++i)
            bytes_ok = bytes[i] == static_cast<uint8_t>(i * 7);
          record(std::string("blob ") + b.getTag().cStr() + " " + (bytes_ok ? "ok" : "bad") + " " +
                 std::to_string(b.getValues()[2]));
        },
        fail);
    auto tick = build<testwire::Tick>([](testwire::Tick::Builder b) { b.setN(99); });
    self.request<testwire::Tick>(
        echo, tick, 10s,
        [&](const Received<testwire::Tick>& m) {
          record("tick " + std::to_string(m.body().getN()));
        },
        fail);
  }));
  REQUIRE(wait_until([&] {
    std::lock_guard<std::mutex> guard(mu);
    return results.size() == 4;
  }));
  std::sort(results.begin(), results.end());
  CHECK(results == std::vector<std::string>{"blob tag ok 3", "ping 11", "pong 56", "tick 99"});
}

TEST_CASE("a watcher hears when the peer process is killed with SIGKILL", "[multiprocess][watch]") {
  auto peer = PeerProcess::start({"serve"});
  auto node = start_node();
  std::atomic<int> lost{0};
  std::atomic<int> ready{0};
  std::string why;
  REQUIRE(node->spawn<Probe>("watcher", [&](Probe& self) {
    self.on_lost([&](const Address&, const caf::error& err) {
      why = describe(err);
      ++lost;
    });
    self.watch(on_peer(*peer, "ponger"));
    // A round trip makes sure the watch is in place before the kill.
    self.request<testwire::Pong>(
        on_peer(*peer, "ponger"), make_ping(1), 10s,
        [&](const Received<testwire::Pong>&) { ++ready; }, [](const caf::error&) {});
  }));
  REQUIRE(wait_until([&] { return ready == 1; }));
  peer->kill(SIGKILL);
  REQUIRE(peer->wait_exit());
  REQUIRE(wait_until([&] { return lost == 1; }));
  CHECK(why.rfind("peer_lost", 0) == 0);
}

TEST_CASE("a node that restarts on the same port is reachable again", "[multiprocess]") {
  auto peer = PeerProcess::start({"serve"});
  auto port = peer->port();
  auto node = start_node();
  Address ponger{"ponger", "127.0.0.1", port};
  CHECK(ping_pong(*node, ponger, "pinger1", 3, 3) == expected_result(3, 3));
  peer.reset();  // SIGKILL by pid, then reaped
  peer = PeerProcess::start({"serve", "--port", std::to_string(port)});
  REQUIRE(peer->port() == port);
  CHECK(ping_pong(*node, ponger, "pinger2", 3, 3) == expected_result(3, 3));
}

TEST_CASE("a flood of malformed messages from another process leaves the actor serving",
          "[multiprocess][reject]") {
  auto node = start_node();
  REQUIRE(node->spawn<Ponger>("ponger"));
  auto target = node->address_of("ponger").to_string();
  auto flooder = PeerProcess::start({"flood", "--target", target, "--count", "500"});
  REQUIRE(flooder->wait_exit(30s));
  INFO(flooder->output());
  CHECK(flooder->exit_status()->exit_code == 0);
  // The flooder's final request was answered after every bad message before
  // it, so the counts are complete now.
  auto& stats = node->stats();
  CHECK(stats.rejected(Reject::unhandled_type) == 500);
  CHECK(stats.rejected(Reject::malformed) == 1000);
  CHECK(stats.rejected(Reject::truncated) == 500);
  // And a local client is still served.
  CHECK(ping_pong(*node, node->address_of("ponger"), "pinger", 3, 3).replies == 3);
}

TEST_CASE("filters act on messages arriving from another process", "[multiprocess][filter]") {
  auto peer = PeerProcess::start({"serve"});
  auto node = start_node();
  auto ponger = on_peer(*peer, "ponger");
  std::atomic<int> from_peer{0};
  node->filters().add([&](const Envelope& env) {
    if (env.sender == ponger)
      ++from_peer;
    return FilterAction::Pass();
  });
  auto delayed = node->filters().add(MessageMatch{capnp::typeId<testwire::Pong>(), ponger, {}},
                                     FilterAction::Delay(50ms), 1);
  auto dropped = node->filters().add(MessageMatch{capnp::typeId<testwire::Pong>(), ponger, {}},
                                     FilterAction::Drop(), 0);
  node->filters().remove(dropped);  // removal takes effect for remote traffic too
  CHECK(ping_pong(*node, ponger, "pinger", 10, 10) == expected_result(10, 10));
  CHECK(node->filters().hits(delayed) == 1);
  CHECK(from_peer == 20);
}

TEST_CASE("garbage bytes on a node's port do not stop it serving", "[multiprocess][reject]") {
  auto peer = PeerProcess::start({"serve"});
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(peer->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::mt19937 rng(1);
  std::vector<char> junk(64 * 1024);
  for (auto& c : junk)
    c = static_cast<char>(rng());
  CHECK(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL) > 0);
  ::close(fd);
  auto node = start_node();
  CHECK(ping_pong(*node, on_peer(*peer, "ponger"), "pinger", 5, 5) == expected_result(5, 5));
}

TEST_CASE("runtime-internal messages forged by another process are counted and dropped",
          "[multiprocess][reject]") {
  auto node = start_node();
  REQUIRE(node->spawn<Ponger>("ponger"));
  auto forger = PeerProcess::start(
      {"forge", "--target", node->address_of("ponger").to_string(), "--count", "50"});
  REQUIRE(wait_until([&] { return node->stats().rejected(Reject::malformed) == 100; }));
  // Forged "deferred" messages must not have touched the in-flight count.
  CHECK(node->settle(std::chrono::seconds(2)));
  CHECK(ping_pong(*node, node->address_of("ponger"), "pinger", 3, 3) == expected_result(3, 3));
}
