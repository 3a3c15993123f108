#pragma once
// What the DNS tests share: asking with Debian's dig (bind9-dnsutils) as a
// child process, and a small upstream resolver on 127.0.0.1 built with ldns
// (no DNS server of ours in it) for the forwarding tests.

#include "support/test_support.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tessera::testing {

inline constexpr const char* dig_path = "/usr/bin/dig";

// dig's whole output for `dig @host -p port ARGS...`.
inline std::string dig(const std::string& server, std::vector<std::string> args) {
  INFO("dig comes with Debian's bind9-dnsutils (tools/bootstrap.sh installs it)");
  REQUIRE(std::filesystem::exists(dig_path));
  auto colon = server.rfind(':');
  std::vector<std::string> argv = {dig_path,  "@" + server.substr(0, colon),
                                   "-p",      server.substr(colon + 1),
                                   "+time=2", "+tries=1"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = ChildProcess::start(argv);
  REQUIRE(p->wait_exit(std::chrono::seconds(20)));
  return p->out();
}

// dig +short: one answer per element.
inline std::set<std::string> dig_short(const std::string& server, const std::string& name,
                                       const std::string& type = "A",
                                       std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {name, type, "+short"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::istringstream in(dig(server, args));
  std::set<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != ';')
      out.insert(line);
  return out;
}

// The status dig reports: "NOERROR", "NXDOMAIN", "REFUSED", ...
inline std::string dig_status(const std::string& server, const std::string& name,
                              const std::string& type = "A") {
  auto out = dig(server, {name, type});
  auto at = out.find("status: ");
  if (at == std::string::npos)
    return "no answer: " + out;
  return out.substr(at + 8, out.find(',', at) - at - 8);
}

// A resolver on 127.0.0.1 (a free UDP port) that answers every A query
// with 192.0.2.53 and counts what it was asked.
class TinyUpstream {
 public:
  TinyUpstream() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyUpstream() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int queries() const { return queries_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      uint8_t buf[4096];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      auto got = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      ldns_pkt* q = nullptr;
      if (got <= 0 || ldns_wire2pkt(&q, buf, static_cast<size_t>(got)) != LDNS_STATUS_OK)
        continue;
      ++queries_;
      auto* reply = ldns_pkt_new();
      ldns_pkt_set_id(reply, ldns_pkt_id(q));
      ldns_pkt_set_qr(reply, true);
      ldns_pkt_set_ra(reply, true);
      ldns_pkt_set_rd(reply, ldns_pkt_rd(q));
      auto* question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
      ldns_pkt_push_rr(reply, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
      if (ldns_rr_get_type(question) == LDNS_RR_TYPE_A) {
        auto* rr = ldns_rr_new();
        ldns_rr_set_owner(rr, ldns_rdf_clone(ldns_rr_owner(question)));
        ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
        ldns_rr_set_ttl(rr, 60);
        uint8_t ip[4] = {192, 0, 2, 53};
        ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, ip));
        ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER, rr);
      }
      uint8_t* wire = nullptr;
      size_t size = 0;
      if (ldns_pkt2wire(&wire, reply, &size) == LDNS_STATUS_OK)
        ::sendto(fd_, wire, size, 0, reinterpret_cast<sockaddr*>(&from), len);
      std::free(wire);
      ldns_pkt_free(reply);
      ldns_pkt_free(q);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

}  // namespace tessera::testing
