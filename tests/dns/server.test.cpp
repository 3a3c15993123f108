// The DNS server on 127.0.0.1 with a table filled by hand, asked by dig
// (a real client): answers, negative answers, forwarding, truncation and
// TCP, malformed input, limits.

#include "dns/dns_test_support.hpp"
#include "services/dns/server.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace tessera;
using namespace tessera::dns;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<RecordTable> sample_table() {
  auto table = std::make_shared<RecordTable>();
  table->apply([](RecordTable::Batch& b) {
    b.set_leader(Ip::parse("127.0.0.9"), 5050);
    b.upsert_agent("S1", "agent@10.0.0.1:5051", "h1");
    b.upsert_agent("S2", "agent@10.0.0.2:5051", "h2");
    b.upsert_framework("fw", "web-team");
    TaskFacts t;
    t.framework_id = "fw";
    t.listed = true;
    t.task_id = "t1";
    t.name = "api";
    t.agent_id = "S1";
    t.ports = {31000, 31001};
    b.upsert_task(t);
    t.task_id = "t2";
    t.agent_id = "S2";
    t.ports = {31005, 31006};
    b.upsert_task(t);
  });
  return table;
}

std::unique_ptr<Server> start(std::shared_ptr<RecordTable> table, ServerConfig c = {}) {
  c.port = 0;
  auto s = Server::start(c, std::move(table));
  INFO((s ? "" : describe(s.error())));
  REQUIRE(s);
  return std::move(*s);
}

sockaddr_in to(const std::string& address) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  auto colon = address.rfind(':');
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  return a;
}

void send_udp(const std::string& address, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto a = to(address);
  ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::close(fd);
}

}  // namespace

TEST_CASE("dns server: A and SRV records of a task with two ports, over UDP and TCP") {
  auto server = start(sample_table());
  auto at = server->address();
  CHECK(dig_short(at, "api.web-team.tessera.") == std::set<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(dig_short(at, "_api._tcp.web-team.tessera.", "SRV") ==
        std::set<std::string>{"0 1 31000 s1.agents.tessera.", "0 1 31001 s1.agents.tessera.",
                              "0 1 31005 s2.agents.tessera.", "0 1 31006 s2.agents.tessera."});
  CHECK(dig_short(at, "api.web-team.tessera.", "A", {"+tcp"}).size() == 2);
  CHECK(dig_short(at, "s2.agents.tessera.") == std::set<std::string>{"10.0.0.2"});
  CHECK(dig_short(at, "leader.tessera.") == std::set<std::string>{"127.0.0.9"});
  CHECK(dig_short(at, "master.tessera.") == std::set<std::string>{"127.0.0.9"});
  // Answers carry the TTL and the question as it was asked.
  auto out = dig(at, {"Api.Web-Team.tessera.", "A", "+noall", "+answer"});
  CHECK(out.find("Api.Web-Team.tessera.\t5\tIN\tA\t10.0.0.1") != std::string::npos);
  CHECK(server->counters().tcp_queries >= 1);
}

TEST_CASE("dns server: unknown names are NXDOMAIN, other types no data, outside names REFUSED") {
  auto server = start(sample_table());
  auto at = server->address();
  CHECK(dig_status(at, "nothing.web-team.tessera.") == "NXDOMAIN");
  CHECK(dig(at, {"nothing.web-team.tessera."}).find("IN\tSOA\tns.tessera.") != std::string::npos);
  CHECK(dig_status(at, "api.web-team.tessera.", "AAAA") == "NOERROR");
  CHECK(dig_short(at, "api.web-team.tessera.", "AAAA").empty());
  CHECK(dig_status(at, "api.web-team.tessera.", "TXT") == "NOERROR");
  CHECK(dig_status(at, "api.web-team.tessera.", "TYPE65400") == "NOERROR");
  CHECK(dig_status(at, "tessera.", "SOA") == "NOERROR");
  CHECK(dig_short(at, "tessera.", "SOA").size() == 1);
  CHECK(dig_status(at, "example.com.") == "REFUSED");
  // Zone transfers are refused (dig asks over TCP and says it failed).
  auto refused = server->counters().refused.load();
  CHECK(dig(at, {"tessera.", "AXFR"}).find("Transfer failed") != std::string::npos);
  CHECK(server->counters().refused == refused + 1);
  CHECK(server->counters().nxdomain == 2);
  CHECK(server->counters().refused >= 1);
}

TEST_CASE("dns server: names outside the domain go to the upstream, which the test runs") {
  TinyUpstream upstream;
  ServerConfig c;
  c.upstreams = {upstream.address()};
  auto server = start(sample_table(), c);
  auto at = server->address();
  CHECK(dig_short(at, "www.example.org.") == std::set<std::string>{"192.0.2.53"});
  CHECK(dig_short(at, "www.example.org.", "A", {"+tcp"}) == std::set<std::string>{"192.0.2.53"});
  CHECK(upstream.queries() == 2);
  CHECK(server->counters().forwarded == 2);
  CHECK(server->counters().upstream_answers == 2);
  // Names of the domain never go there.
  CHECK(dig_status(at, "nothing.tessera.") == "NXDOMAIN");
  CHECK(upstream.queries() == 2);
}

TEST_CASE("dns server: an upstream that never answers gives SERVFAIL after its timeout") {
  // A bound UDP socket nobody reads: datagrams to it vanish.
  int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto a = to("127.0.0.1:0");
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
  ServerConfig c;
  c.upstreams = {"127.0.0.1:" + std::to_string(ntohs(a.sin_port))};
  c.upstream_timeout_ms = 300;
  auto server = start(sample_table(), c);
  CHECK(dig_status(server->address(), "www.example.org.") == "SERVFAIL");
  CHECK(server->counters().upstream_failures == 1);
  ::close(silent);
}

TEST_CASE("dns server: an answer too big for UDP sets TC, and comes whole over TCP") {
  auto table = std::make_shared<RecordTable>();
  table->apply([](RecordTable::Batch& b) {
    b.upsert_framework("fw", "big");
    for (int i = 0; i < 100; ++i) {
      auto agent = "S" + std::to_string(i);
      b.upsert_agent(agent, "10.1.0." + std::to_string(i + 1), "");
      TaskFacts t;
      t.framework_id = "fw";
      t.task_id = "t" + std::to_string(i);
      t.name = "many";
      t.agent_id = agent;
      t.listed = true;
      b.upsert_task(t);
    }
  });
  auto server = start(table);
  auto at = server->address();
  // Without EDNS a UDP answer is at most 512 bytes: 100 A records are not.
  auto udp = dig(at, {"many.big.tessera.", "+noedns", "+ignore"});
  CHECK(udp.find("flags: qr aa tc") != std::string::npos);
  CHECK(server->counters().truncated == 1);
  CHECK(dig_short(at, "many.big.tessera.", "A", {"+tcp"}).size() == 100);
  // dig itself retries over TCP on TC.
  CHECK(dig_short(at, "many.big.tessera.", "A", {"+noedns"}).size() == 100);
}

TEST_CASE("dns server: malformed packets are dropped and counted, and it keeps serving") {
  auto server = start(sample_table());
  auto at = server->address();
  send_udp(at, "hello");                  // shorter than a header
  send_udp(at, std::string(40, '\xff'));  // not a DNS message
  std::string response("\x12\x34\x81\x80\x00\x00\x00\x00\x00\x00\x00\x00", 12);
  send_udp(at, response);  // a response, not a query
  CHECK(wait_until([&] { return server->counters().malformed_dropped == 3; }, 5s));
  // Over TCP too: a garbage message in a connection, then a good query.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = to(at);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  std::string framed("\x00\x05hello", 7);
  ::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
  CHECK(wait_until([&] { return server->counters().malformed_dropped == 4; }, 5s));
  ::close(fd);
  CHECK(dig_short(at, "api.web-team.tessera.").size() == 2);
}

TEST_CASE("dns server: connections past tcp_connections_max are closed at once and counted") {
  ServerConfig c;
  c.tcp_connections_max = 2;
  auto server = start(sample_table(), c);
  auto a = to(server->address());
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    fds.push_back(fd);
  }
  CHECK(wait_until([&] { return server->counters().tcp_refused == 1; }, 5s));
  char byte;
  pollfd p{fds[2], POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  CHECK(::recv(fds[2], &byte, 1, 0) == 0);  // closed by the server
  for (int fd : fds)
    ::close(fd);
}

TEST_CASE("dns server: a repeated question is answered from the cache until its name changes") {
  auto table = sample_table();
  auto server = start(table);
  auto at = server->address();
  CHECK(dig_short(at, "api.web-team.tessera.").size() == 2);
  CHECK(dig_short(at, "api.web-team.tessera.").size() == 2);
  CHECK(server->counters().cache_hits == 1);
  table->apply([](RecordTable::Batch& b) { b.remove_task("fw", "t2"); });
  CHECK(dig_short(at, "api.web-team.tessera.") == std::set<std::string>{"10.0.0.1"});
  CHECK(server->counters().cache_hits == 1);
}

TEST_CASE("dns server: a taken address is an error, not a crash") {
  auto first = start(sample_table());
  ServerConfig c;
  auto colon = first->address().rfind(':');
  c.port = static_cast<uint16_t>(std::stoi(first->address().substr(colon + 1)));
  auto second = Server::start(c, sample_table());
  CHECK_FALSE(second);
}

TEST_CASE("dns server: a thousand random and mangled datagrams leave it serving") {
  auto server = start(sample_table());
  auto at = server->address();
  // A real query (as dig would send it) to mangle: built with ldns.
  ldns_pkt* query = nullptr;
  REQUIRE(ldns_pkt_query_new_frm_str(&query, "api.web-team.tessera.", LDNS_RR_TYPE_SRV,
                                     LDNS_RR_CLASS_IN, LDNS_RD) == LDNS_STATUS_OK);
  uint8_t* wire = nullptr;
  size_t size = 0;
  REQUIRE(ldns_pkt2wire(&wire, query, &size) == LDNS_STATUS_OK);
  std::string good(reinterpret_cast<const char*>(wire), size);
  std::free(wire);
  ldns_pkt_free(query);
  std::mt19937 rng(7);  // a fixed seed: a failure replays
  for (int i = 0; i < 1000; ++i) {
    std::string bytes;
    if (i % 2) {
      bytes = good;
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      bytes.resize(1 + rng() % bytes.size());
    } else {
      bytes.resize(rng() % 600);
      for (auto& c : bytes)
        c = static_cast<char>(rng());
    }
    send_udp(at, bytes);
    // In steps of 100, so that no datagram is lost to a full socket buffer.
    if (i % 100 == 99)
      REQUIRE(wait_until([&] { return server->counters().queries >= uint64_t(i + 1); }, 10s));
  }
  CHECK(server->counters().malformed_dropped > 0);
  CHECK(dig_short(at, "_api._tcp.web-team.tessera.", "SRV").size() == 4);
}
