// One process, real scheduler threads: delivery, request/response, rejection
// of bad input, peer watching and counters.

#include "runtime/actor.hpp"
#include "support/nodes.hpp"
#include "support/ping_pong.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

// Records what a handler saw, for the test thread to read.
struct Seen {
  std::mutex mu;
  std::vector<uint64_t> seqs;
  std::vector<const void*> buffers;
  std::vector<std::string> errors;
  std::atomic<int> count{0};

  void ping(const Received<testwire::Ping>& m) {
    std::lock_guard<std::mutex> guard(mu);
    seqs.push_back(m.body().getSeq());
    buffers.push_back(m.envelope().payload.data());
    ++count;
  }
  void error(const caf::error& err) {
    std::lock_guard<std::mutex> guard(mu);
    errors.push_back(describe(err));
    ++count;
  }
};

Probe::Setup record_pings(std::shared_ptr<Seen> seen) {
  return [seen](Probe& self) {
    self.on<testwire::Ping>([seen](const Received<testwire::Ping>& m) { seen->ping(m); });
  };
}

}  // namespace

TEST_CASE("ping/pong with state, in one process", "[delivery][scenario]") {
  auto node = start_node();
  auto outcome = std::make_shared<PingOutcome>();
  REQUIRE(node->spawn<Ponger>("ponger"));
  REQUIRE(node->spawn<Pinger>("pinger", node->address_of("ponger"), 50, 500, outcome));
  REQUIRE(outcome->wait_done(20s));
  CHECK(outcome->get() == expected_result(50, 500));
}

TEST_CASE("in-process delivery hands over the sender's payload buffer", "[delivery]") {
  auto node = start_node();
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", record_pings(seen)));
  // A forwarder re-sends the payload it received: still the same buffer.
  REQUIRE(node->spawn<Probe>("forwarder", [sink = node->address_of("sink")](Probe& self) {
    self.on<testwire::Ping>([&self, sink](const Received<testwire::Ping>& m) {
      self.send(sink, Outgoing{m.envelope().type_id, m.envelope().payload});
    });
  }));
  auto direct = make_ping(1);
  auto forwarded = make_ping(2);
  node->send(node->address_of("sink"), direct);
  node->send(node->address_of("forwarder"), forwarded);
  REQUIRE(wait_until([&] { return seen->count == 2; }));
  std::lock_guard<std::mutex> guard(seen->mu);
  for (size_t i = 0; i < 2; ++i) {
    auto expected = seen->seqs[i] == 1 ? direct.payload.data() : forwarded.payload.data();
    CHECK(seen->buffers[i] == expected);
  }
}

TEST_CASE("request delivers the reply, or an error, exactly once", "[delivery][request]") {
  auto node = start_node();
  REQUIRE(node->spawn<Ponger>("ponger"));
  REQUIRE(node->spawn<Probe>("silent", [](Probe& self) {
    self.on<testwire::Ping>([](const Received<testwire::Ping>&) {});  // never replies
  }));
  auto seen = std::make_shared<Seen>();
  std::atomic<uint64_t> count{0};
  auto ask = [&](std::string target, Duration timeout) {
    return [&count, seen, target, timeout, node = node.get()](Probe& self) {
      self.request<testwire::Pong>(
          node->address_of(target), make_ping(7), timeout,
          [&count, seen](const Received<testwire::Pong>& m) {
            count = m.body().getCount();
            ++seen->count;
          },
          [seen](const caf::error& err) { seen->error(err); });
    };
  };

  SECTION("a reply") {
    REQUIRE(node->spawn<Probe>("asker", ask("ponger", 5s)));
    REQUIRE(wait_until([&] { return seen->count == 1; }));
    CHECK(count == 1);
    CHECK(seen->errors.empty());
  }
  SECTION("a timeout when nobody answers") {
    REQUIRE(node->spawn<Probe>("asker", ask("silent", 50ms)));
    REQUIRE(wait_until([&] { return seen->count == 1; }));
    REQUIRE(seen->errors.size() == 1);
    CHECK(seen->errors[0].rfind("timeout", 0) == 0);
  }
  SECTION("unknown_actor for a name nobody has") {
    REQUIRE(node->spawn<Probe>("asker", ask("nobody", 5s)));
    REQUIRE(wait_until([&] { return seen->count == 1; }));
    REQUIRE(seen->errors.size() == 1);
    CHECK(seen->errors[0].rfind("unknown_actor", 0) == 0);
  }
  SECTION("the receiver's error for a type it does not handle") {
    REQUIRE(node->spawn<Probe>("asker", [&](Probe& self) {
      self.request<testwire::Pong>(
          node->address_of("ponger"), build_default<testwire::Blob>(), 5s,
          [seen](const Received<testwire::Pong>&) { ++seen->count; },
          [seen](const caf::error& err) { seen->error(err); });
    }));
    REQUIRE(wait_until([&] { return seen->count == 1; }));
    REQUIRE(seen->errors.size() == 1);
    CHECK(seen->errors[0].rfind("unhandled_type", 0) == 0);
  }
  SECTION("peer_lost when the target exits before answering") {
    REQUIRE(node->spawn<Probe>("quitter", [](Probe& self) {
      self.on<testwire::Ping>([&self](const Received<testwire::Ping>&) { self.stop(); });
    }));
    REQUIRE(node->spawn<Probe>("asker", ask("quitter", 30s)));
    REQUIRE(wait_until([&] { return seen->count == 1; }));
    REQUIRE(seen->errors.size() == 1);
    CHECK(seen->errors[0].rfind("peer_lost", 0) == 0);
  }
  // Once nothing is left in flight, a second answer would have arrived.
  REQUIRE(node->settle());
  CHECK(seen->count == 1);
}

TEST_CASE("bad payloads are counted, logged and dropped, the actor keeps serving",
          "[delivery][reject]") {
  NodeConfig config;
  config.message_bytes_max = 4096;
  config.traversal_limit_words = 256;
  auto node = start_node(config);
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", record_pings(seen)));
  auto sink = node->address_of("sink");
  auto send_raw = [&](uint64_t type, Payload p) {
    node->send_envelope(Envelope{type, Address{}, sink, 0, 0, 0, std::move(p)});
  };
  auto ping_id = capnp::typeId<testwire::Ping>();
  uint32_t short_seg[6] = {0, 1000, 0, 0, 0, 0};
  uint32_t far_ptr[4] = {0, 1, (100u << 2), 0x00010000};
  char odd[13] = {};
  for (int i = 0; i < 100; ++i) {
    send_raw(ping_id, Payload::copy_of(short_seg, sizeof(short_seg)));
    send_raw(ping_id, Payload::copy_of(far_ptr, sizeof(far_ptr)));
    send_raw(ping_id, Payload::copy_of(odd, sizeof(odd)));
    send_raw(ping_id, Payload{});
    send_raw(capnp::typeId<testwire::Blob>(), make_ping(0).payload);
  }
  // 8 KiB: over the node's 4 KiB limit.
  auto big = build<testwire::Blob>([](testwire::Blob::Builder b) { b.initBytes(8192); });
  send_raw(capnp::typeId<testwire::Blob>(), big.payload);
  node->send(sink, make_ping(42));

  REQUIRE(wait_until([&] { return seen->count == 1; }));
  REQUIRE(node->settle());
  auto& stats = node->stats();
  CHECK(stats.rejected(Reject::malformed) == 200);
  CHECK(stats.rejected(Reject::truncated) == 200);
  CHECK(stats.rejected(Reject::unhandled_type) == 100);
  CHECK(stats.rejected(Reject::oversized) == 1);
  CHECK(stats.rejected(Reject::traversal_limit) == 0);
  std::lock_guard<std::mutex> guard(seen->mu);
  CHECK(seen->seqs.back() == 42);
}

TEST_CASE("the traversal limit rejects messages that are too expensive to read",
          "[delivery][reject]") {
  NodeConfig config;
  config.traversal_limit_words = 64;
  auto node = start_node(config);
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", [seen](Probe& self) {
    self.on<testwire::Blob>([seen](const Received<testwire::Blob>&) { ++seen->count; });
    self.on<testwire::Ping>([seen](const Received<testwire::Ping>& m) { seen->ping(m); });
  }));
  auto sink = node->address_of("sink");
  node->send(sink, build<testwire::Blob>([](testwire::Blob::Builder b) { b.initValues(1000); }));
  node->send(sink, build<testwire::Blob>([](testwire::Blob::Builder b) { b.initValues(10); }));
  node->send(sink, make_ping(1));
  REQUIRE(wait_until([&] { return seen->count == 2; }));
  CHECK(node->stats().rejected(Reject::traversal_limit) == 1);
}

// Cap'n Proto lets two pointers share one target, so a message can name more
// words than it holds (nested, exponentially more: the envelope fuzzer's
// 214 bytes kept a handler busy for seconds). A message is read as at most
// traversal_per_payload_word times its size.
TEST_CASE("a message that names more words than it holds is refused", "[delivery][reject]") {
  NodeConfig config;
  config.traversal_per_payload_word = 1;
  config.traversal_floor_words = 16;
  auto node = start_node(config);
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", [seen](Probe& self) {
    self.on<testwire::Blob>([seen](const Received<testwire::Blob>&) { ++seen->count; });
  }));
  auto sink = node->address_of("sink");
  // One segment, so values' pointer (1200 x 32 bits) is found among the
  // words; bytes, the pointer before it, is made to name the same 4800 bytes.
  capnp::MallocMessageBuilder message(2048);
  message.initRoot<testwire::Blob>().initValues(1200);
  auto words = capnp::messageToFlatArray(message);
  auto plain = Payload::copy_of(words.begin(), words.size() * sizeof(capnp::word));
  auto* raw = reinterpret_cast<uint64_t*>(words.begin());
  size_t at = 1;
  while (at < words.size() && !((raw[at] >> 32) == (uint64_t{1200} << 3 | 4) && (raw[at] & 3) == 1))
    ++at;
  REQUIRE(at < words.size());
  auto target = at + 1 + static_cast<uint32_t>(raw[at]) / 4;
  raw[at - 1] = (uint64_t{4800} << 3 | 2) << 32 | ((target - at) << 2) | 1;
  {
    capnp::FlatArrayMessageReader reader(words);
    auto aliased = reader.getRoot<testwire::Blob>();
    REQUIRE(aliased.getBytes().size() == 4800);
    REQUIRE(aliased.getValues().size() == 1200);
    REQUIRE(aliased.totalSize().wordCount > words.size());
  }
  node->send_envelope(Envelope{capnp::typeId<testwire::Blob>(), Address{}, sink, 0, 0, 0,
                               Payload(std::move(words))});
  // The same words before the change, each named once: read.
  node->send_envelope(
      Envelope{capnp::typeId<testwire::Blob>(), Address{}, sink, 0, 0, 0, std::move(plain)});
  REQUIRE(wait_until([&] { return seen->count == 1; }));
  REQUIRE(node->settle());
  CHECK(seen->count == 1);
  CHECK(node->stats().rejected(Reject::traversal_limit) == 1);
}

TEST_CASE("a message for an unknown local actor is counted and dropped", "[delivery][reject]") {
  auto node = start_node();
  node->send(node->address_of("nobody"), make_ping(1));
  CHECK(node->stats().rejected(Reject::unknown_receiver) == 1);
}

TEST_CASE("spawn rejects taken and malformed names", "[delivery]") {
  auto node = start_node();
  REQUIRE(node->spawn<Ponger>("ponger"));
  auto again = node->spawn<Ponger>("ponger");
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), Errc::name_taken));
  auto bad = node->spawn<Ponger>("no spaces");
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), Errc::invalid_argument));
}

TEST_CASE("a watcher hears when a local actor exits, and a name can be reused",
          "[delivery][watch]") {
  auto node = start_node();
  std::atomic<int> lost{0};
  std::string why;
  REQUIRE(node->spawn<Probe>("mortal", [](Probe& self) {
    self.on<testwire::Ping>([&self](const Received<testwire::Ping>&) { self.stop(); });
  }));
  REQUIRE(node->spawn<Probe>("watcher", [&, node = node.get()](Probe& self) {
    self.on_lost([&](const Address& who, const caf::error& err) {
      why = who.to_string() + " " + describe(err);
      ++lost;
    });
    self.watch(node->address_of("mortal"));
    self.watch(node->address_of("never-existed"));
  }));
  REQUIRE(wait_until([&] { return lost == 1; }));  // never-existed
  node->send(node->address_of("mortal"), make_ping(1));
  REQUIRE(wait_until([&] { return lost == 2; }));
  CHECK(why.find("mortal") != std::string::npos);
  CHECK(why.find("peer_lost") != std::string::npos);
  REQUIRE(wait_until([&] { return !node->lookup_local("mortal"); }));
  CHECK(node->spawn<Ponger>("mortal"));
}

TEST_CASE("counters track sent and received messages per type", "[delivery][stats]") {
  auto node = start_node();
  auto outcome = std::make_shared<PingOutcome>();
  REQUIRE(node->spawn<Ponger>("ponger"));
  REQUIRE(node->spawn<Pinger>("pinger", node->address_of("ponger"), 10, 20, outcome));
  REQUIRE(outcome->wait_done(10s));
  REQUIRE(node->settle());
  auto snap = node->stats().snapshot();
  auto& ping = snap[capnp::typeId<testwire::Ping>()];
  auto& pong = snap[capnp::typeId<testwire::Pong>()];
  CHECK(ping.name == "Ping");
  CHECK(ping.sent == 30);
  CHECK(ping.received == 30);
  CHECK(pong.sent == 30);
  CHECK(pong.received == 30);
}

TEST_CASE("a port in use is a clear error, not a crash", "[delivery]") {
  auto first = start_node();
  NodeConfig config;
  config.port = first->port();
  auto second = Node::start(config);
  REQUIRE_FALSE(second);
  CHECK(describe(second.error()).find(std::to_string(first->port())) != std::string::npos);
}

TEST_CASE("a reply that cannot be read fails its request with the reason", "[delivery][request]") {
  auto node = start_node();
  REQUIRE(node->spawn<Probe>("liar", [](Probe& self) {
    self.on<testwire::Ping>([&self](const Received<testwire::Ping>& m) {
      char odd[13] = {};
      self.reply(m, Outgoing{capnp::typeId<testwire::Pong>(), Payload::copy_of(odd, sizeof(odd))});
    });
  }));
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("asker", [&, seen](Probe& self) {
    self.request<testwire::Pong>(
        node->address_of("liar"), make_ping(1), 30s, [seen](const Received<testwire::Pong>&) {},
        [seen](const caf::error& err) { seen->error(err); });
  }));
  REQUIRE(wait_until([&] { return seen->count == 1; }));
  std::lock_guard<std::mutex> guard(seen->mu);
  CHECK(seen->errors[0].rfind("truncated", 0) == 0);
}

TEST_CASE("a message with an impossible sender address is rejected", "[delivery][reject]") {
  auto node = start_node();
  auto seen = std::make_shared<Seen>();
  REQUIRE(node->spawn<Probe>("sink", record_pings(seen)));
  Envelope env{capnp::typeId<testwire::Ping>(),
               Address{"no spaces allowed", node->host(), node->port()},
               node->address_of("sink"),
               0,
               0,
               0,
               make_ping(1).payload};
  node->send_envelope(env);
  node->send(node->address_of("sink"), make_ping(2));
  REQUIRE(wait_until([&] { return seen->count == 1; }));
  CHECK(node->stats().rejected(Reject::malformed) == 1);
}
