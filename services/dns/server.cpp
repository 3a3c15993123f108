#include "services/dns/server.hpp"

#include "runtime/log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>

namespace tessera::dns {

namespace {

constexpr int udp_batch = 32;            // datagrams per recvmmsg/sendmmsg
constexpr int udp_batches_per_wake = 8;  // then TCP and upstreams get a turn
constexpr size_t datagram_bytes_max = 4096;
constexpr int poll_interval_ms = 50;   // how often timeouts are checked
constexpr int bind_attempts_max = 16;  // for port 0: UDP and TCP on one free port

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  int family() const { return ss.ss_family; }
};

expected<SockAddr> to_sockaddr(const std::string& host, uint16_t port) {
  SockAddr a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    return a;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
    return a;
  }
  return make_error(Errc::invalid_argument, "'" + host + "' is not an IP address");
}

uint16_t port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void close_fd(int& fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

std::string with_length(const std::string& wire) {
  std::string out;
  out.reserve(wire.size() + 2);
  out.push_back(static_cast<char>(wire.size() >> 8));
  out.push_back(static_cast<char>(wire.size() & 0xff));
  out += wire;
  return out;
}

}  // namespace

expected<Endpoint> parse_endpoint(const std::string& text, uint16_t default_port) {
  Endpoint e;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos)
      return make_error(Errc::invalid_argument, "'" + text + "': no closing ']'");
    e.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':')
        return make_error(Errc::invalid_argument, "'" + text + "': expected [IPv6]:PORT");
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    e.host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  } else {
    e.host = text;
  }
  if (e.host.empty())
    e.host = "127.0.0.1";
  if (!to_sockaddr(e.host, 0))
    return make_error(Errc::invalid_argument, "'" + text + "': the host must be an IP address");
  e.port = default_port;
  if (!port.empty() || (!text.empty() && text.back() == ':')) {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
      return make_error(Errc::invalid_argument, "'" + text + "': bad port");
    e.port = static_cast<uint16_t>(std::stoul(port));
  }
  return e;
}

struct Server::Loop {
  struct Conn {
    int fd = -1;
    std::string in;
    std::string out;
    size_t out_sent = 0;
    int64_t idle_deadline_ms = 0;
    bool closing = false;  // the peer is done sending: close once out is sent
  };
  struct Pending {
    uint16_t client_id = 0;
    Query query;
    SockAddr client;    // a UDP client
    uint64_t conn = 0;  // or a TCP connection
    size_t upstream = 0;
    int64_t deadline_ms = 0;
    std::string message;  // as sent upstream (our id)
  };

  Loop(ServerConfig c, std::shared_ptr<const RecordTable> table, Counters& counters)
      : config(std::move(c)),
        counters(counters),
        responder(std::move(table), config.domain, config.ttl_s, !config.upstreams.empty(),
                  config.cache_entries_max, counters),
        rng(std::random_device{}()) {}

  ~Loop() {
    close_fd(udp);
    close_fd(tcp);
    close_fd(wake);
    for (auto& fd : upstream_fds)
      close_fd(fd);
    for (auto& [id, c] : conns)
      close_fd(c.fd);
  }

  expected<void> bind_sockets(const SockAddr& where);
  expected<void> open_upstreams();
  void run();
  void read_udp();
  void accept_tcp();
  bool read_conn(uint64_t id, Conn& c);
  bool write_conn(Conn& c);
  void read_upstream(size_t i);
  void forward(const Query& q, const uint8_t* data, size_t size, const SockAddr* client,
               uint64_t conn);
  void send_upstream(Pending& p);
  void deliver(const Pending& p, std::string wire);
  void expire(int64_t now);
  void queue_tcp(Conn& c, const std::string& wire);

  ServerConfig config;
  Counters& counters;
  Responder responder;
  int udp = -1;
  int tcp = -1;
  int wake = -1;
  std::vector<int> upstream_fds;
  std::string bound;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::map<uint64_t, Conn> conns;
  uint64_t next_conn = 1;
  std::unordered_map<uint16_t, Pending> pending;
  std::mt19937 rng;
  int64_t last_expiry_ms = 0;
};

expected<void> Server::Loop::bind_sockets(const SockAddr& where) {
  for (int attempt = 0; attempt < bind_attempts_max; ++attempt) {
    close_fd(udp);
    close_fd(tcp);
    udp = ::socket(where.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    tcp = ::socket(where.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (udp < 0 || tcp < 0)
      return make_os_error(errno, "dns: socket");
    int one = 1;
    ::setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int buffer_bytes = 4 << 20;  // bursts of queries wait here, not on the floor
    ::setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    if (::bind(udp, where.get(), where.len) != 0)
      return make_os_error(errno,
                           "dns: bind udp " + config.host + ":" + std::to_string(config.port));
    SockAddr same = where;
    auto port = port_of(udp);
    if (same.family() == AF_INET6)
      reinterpret_cast<sockaddr_in6*>(&same.ss)->sin6_port = htons(port);
    else
      reinterpret_cast<sockaddr_in*>(&same.ss)->sin_port = htons(port);
    if (::bind(tcp, same.get(), same.len) != 0) {
      int err = errno;
      if (config.port == 0 && err == EADDRINUSE)
        continue;  // that free UDP port is a taken TCP one: another
      return make_os_error(err, "dns: bind tcp " + config.host + ":" + std::to_string(port));
    }
    if (::listen(tcp, 128) != 0)
      return make_os_error(errno, "dns: listen");
    auto host = same.family() == AF_INET6 ? "[" + config.host + "]" : config.host;
    bound = host + ":" + std::to_string(port);
    return {};
  }
  return make_error(Errc::os_error, "dns: no free port for both UDP and TCP");
}

expected<void> Server::Loop::open_upstreams() {
  for (const auto& text : config.upstreams) {
    auto e = parse_endpoint(text, 53);
    if (!e)
      return make_error(Errc::invalid_argument, "dns: upstream " + describe(e.error()));
    auto addr = to_sockaddr(e->host, e->port);
    int fd = ::socket(addr->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return make_os_error(errno, "dns: socket");
    upstream_fds.push_back(fd);
    // Connected: only answers from that address and port are read.
    if (::connect(fd, addr->get(), addr->len) != 0)
      return make_os_error(errno, "dns: upstream " + text);
  }
  return {};
}

void Server::Loop::run() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> conn_ids;
  while (!stopping.load(std::memory_order_relaxed)) {
    fds.clear();
    conn_ids.clear();
    fds.push_back({wake, POLLIN, 0});
    fds.push_back({udp, POLLIN, 0});
    fds.push_back({tcp, POLLIN, 0});
    for (int fd : upstream_fds)
      fds.push_back({fd, POLLIN, 0});
    size_t first_conn = fds.size();
    for (auto& [id, c] : conns) {
      short events = c.closing ? 0 : POLLIN;
      if (c.out_sent < c.out.size())
        events |= POLLOUT;
      fds.push_back({c.fd, events, 0});
      conn_ids.push_back(id);
    }
    int ready = ::poll(fds.data(), fds.size(), poll_interval_ms);
    if (ready < 0 && errno != EINTR) {
      log().error("dns: poll: {}", std::strerror(errno));
      return;
    }
    if (ready > 0) {
      if (fds[1].revents & POLLIN)
        read_udp();
      if (fds[2].revents & POLLIN)
        accept_tcp();
      for (size_t i = 0; i < upstream_fds.size(); ++i)
        if (fds[3 + i].revents & POLLIN)
          read_upstream(i);
      for (size_t i = first_conn; i < fds.size(); ++i) {
        auto it = conns.find(conn_ids[i - first_conn]);
        if (it == conns.end() || !fds[i].revents)
          continue;
        bool keep = true;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
          keep = read_conn(it->first, it->second);
        if (keep && (fds[i].revents & POLLOUT))
          keep = write_conn(it->second);
        if (!keep) {
          close_fd(it->second.fd);
          conns.erase(it);
        }
      }
    }
    auto now = now_ms();
    if (now - last_expiry_ms >= poll_interval_ms) {
      last_expiry_ms = now;
      expire(now);
    }
  }
}

void Server::Loop::read_udp() {
  static thread_local std::array<std::array<uint8_t, datagram_bytes_max>, udp_batch> buffers;
  mmsghdr in[udp_batch];
  iovec in_iov[udp_batch];
  SockAddr from[udp_batch];
  mmsghdr out[udp_batch];
  iovec out_iov[udp_batch];
  std::string replies[udp_batch];
  for (int round = 0; round < udp_batches_per_wake; ++round) {
    for (int i = 0; i < udp_batch; ++i) {
      in_iov[i] = {buffers[i].data(), buffers[i].size()};
      in[i] = {};
      in[i].msg_hdr.msg_name = &from[i].ss;
      in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in[i].msg_hdr.msg_iov = &in_iov[i];
      in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(udp, in, udp_batch, MSG_DONTWAIT, nullptr);
    if (n <= 0)
      return;
    int replying = 0;
    for (int i = 0; i < n; ++i) {
      from[i].len = in[i].msg_hdr.msg_namelen;
      if (in[i].msg_hdr.msg_flags & MSG_TRUNC) {
        ++counters.queries;
        ++counters.malformed_dropped;  // bigger than any query we take
        continue;
      }
      auto outcome = responder.respond(buffers[i].data(), in[i].msg_len, false);
      if (outcome.kind == Outcome::forward) {
        forward(outcome.query, buffers[i].data(), in[i].msg_len, &from[i], 0);
        continue;
      }
      if (outcome.kind != Outcome::reply || outcome.wire.empty())
        continue;
      replies[replying] = std::move(outcome.wire);
      out_iov[replying] = {replies[replying].data(), replies[replying].size()};
      out[replying] = {};
      out[replying].msg_hdr.msg_name = &from[i].ss;
      out[replying].msg_hdr.msg_namelen = from[i].len;
      out[replying].msg_hdr.msg_iov = &out_iov[replying];
      out[replying].msg_hdr.msg_iovlen = 1;
      ++replying;
    }
    for (int sent = 0; sent < replying;) {
      int k = ::sendmmsg(udp, out + sent, static_cast<unsigned>(replying - sent), 0);
      if (k <= 0)
        break;  // the socket's buffer is full: UDP answers may be lost
      sent += k;
    }
    if (n < udp_batch)
      return;
  }
}

void Server::Loop::accept_tcp() {
  for (;;) {
    int fd = ::accept4(tcp, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    if (conns.size() >= config.tcp_connections_max) {
      ++counters.tcp_refused;
      ::close(fd);
      continue;
    }
    Conn c;
    c.fd = fd;
    c.idle_deadline_ms = now_ms() + config.tcp_idle_timeout_ms;
    conns.emplace(next_conn++, std::move(c));
  }
}

void Server::Loop::queue_tcp(Conn& c, const std::string& wire) {
  if (c.out.size() - c.out_sent + wire.size() + 2 > config.tcp_out_bytes_max) {
    c.closing = true;  // a client that does not read its answers
    c.out.clear();
    c.out_sent = 0;
    return;
  }
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
  }
  c.out += with_length(wire);
}

bool Server::Loop::read_conn(uint64_t id, Conn& c) {
  uint8_t buffer[16 * 1024];
  for (;;) {
    auto got = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got == 0) {
      c.closing = true;
      break;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return false;
    }
    c.in.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(got));
    c.idle_deadline_ms = now_ms() + config.tcp_idle_timeout_ms;
    // Whole messages, each after its two-byte length (RFC 1035 4.2.2).
    size_t at = 0;
    while (c.in.size() - at >= 2) {
      size_t len = (static_cast<uint8_t>(c.in[at]) << 8) | static_cast<uint8_t>(c.in[at + 1]);
      if (c.in.size() - at < 2 + len)
        break;
      auto* msg = reinterpret_cast<const uint8_t*>(c.in.data() + at + 2);
      auto outcome = responder.respond(msg, len, true);
      if (outcome.kind == Outcome::reply && !outcome.wire.empty())
        queue_tcp(c, outcome.wire);
      else if (outcome.kind == Outcome::forward)
        forward(outcome.query, msg, len, nullptr, id);
      at += 2 + len;
    }
    c.in.erase(0, at);  // what is left is less than one message (< 64 KiB + 2)
  }
  if (c.out_sent < c.out.size())
    return write_conn(c);
  return !c.closing;
}

bool Server::Loop::write_conn(Conn& c) {
  while (c.out_sent < c.out.size()) {
    auto sent = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    c.out_sent += static_cast<size_t>(sent);
  }
  c.out.clear();
  c.out_sent = 0;
  return !c.closing;
}

void Server::Loop::forward(const Query& q, const uint8_t* data, size_t size, const SockAddr* client,
                           uint64_t conn) {
  Pending p;
  p.client_id = q.id;
  p.query = q;
  if (client)
    p.client = *client;
  p.conn = conn;
  if (pending.size() >= config.upstream_pending_max) {
    ++counters.upstream_failures;
    deliver(p, encode_rcode(q, rcode_servfail));
    return;
  }
  uint16_t id = 0;
  for (int attempt = 0;; ++attempt) {
    id = static_cast<uint16_t>(rng());
    if (!pending.count(id))
      break;
    if (attempt > 64) {
      ++counters.upstream_failures;
      deliver(p, encode_rcode(q, rcode_servfail));
      return;
    }
  }
  p.message.assign(reinterpret_cast<const char*>(data), size);
  p.message[0] = static_cast<char>(id >> 8);
  p.message[1] = static_cast<char>(id & 0xff);
  ++counters.forwarded;
  auto& stored = pending.emplace(id, std::move(p)).first->second;
  send_upstream(stored);
}

void Server::Loop::send_upstream(Pending& p) {
  p.deadline_ms = now_ms() + config.upstream_timeout_ms;
  // A failed send is a lost datagram: the timeout tries the next upstream.
  (void)::send(upstream_fds[p.upstream], p.message.data(), p.message.size(), MSG_DONTWAIT);
}

void Server::Loop::deliver(const Pending& p, std::string wire) {
  if (p.conn == 0) {
    (void)::sendto(udp, wire.data(), wire.size(), MSG_DONTWAIT, p.client.get(), p.client.len);
    return;
  }
  auto it = conns.find(p.conn);
  if (it != conns.end())
    queue_tcp(it->second, wire);
}

void Server::Loop::read_upstream(size_t i) {
  uint8_t buffer[tcp_message_bytes_max];
  for (;;) {
    auto got = ::recv(upstream_fds[i], buffer, sizeof buffer, MSG_DONTWAIT);
    if (got < 0)
      return;
    if (got < 12)
      continue;
    uint16_t id = static_cast<uint16_t>((buffer[0] << 8) | buffer[1]);
    auto it = pending.find(id);
    if (it == pending.end() || it->second.upstream != i)
      continue;  // late (already answered or timed out), or not ours
    auto reply = decode_upstream_reply(buffer, static_cast<size_t>(got), it->second.query);
    if (!reply || !reply->matches) {
      log().debug("dns: ignoring an upstream answer that does not match its question");
      continue;
    }
    buffer[0] = static_cast<uint8_t>(it->second.client_id >> 8);
    buffer[1] = static_cast<uint8_t>(it->second.client_id & 0xff);
    ++counters.upstream_answers;
    deliver(it->second,
            std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(got)));
    pending.erase(it);
  }
}

void Server::Loop::expire(int64_t now) {
  for (auto it = pending.begin(); it != pending.end();) {
    auto& p = it->second;
    if (p.deadline_ms > now) {
      ++it;
      continue;
    }
    if (p.upstream + 1 < upstream_fds.size()) {
      ++p.upstream;
      send_upstream(p);
      ++it;
      continue;
    }
    ++counters.upstream_failures;
    deliver(p, encode_rcode(p.query, rcode_servfail));
    it = pending.erase(it);
  }
  for (auto it = conns.begin(); it != conns.end();) {
    if (it->second.idle_deadline_ms <= now) {
      close_fd(it->second.fd);
      it = conns.erase(it);
    } else {
      ++it;
    }
  }
}

expected<std::unique_ptr<Server>> Server::start(ServerConfig config,
                                                std::shared_ptr<const RecordTable> table) {
  std::unique_ptr<Server> server(new Server());
  auto where = to_sockaddr(config.host, config.port);
  if (!where)
    return make_error(Errc::invalid_argument, "dns: --address: " + describe(where.error()));
  server->loop_ = std::make_unique<Loop>(std::move(config), std::move(table), *server->counters_);
  auto& loop = *server->loop_;
  if (auto ok = loop.bind_sockets(*where); !ok)
    return ok.error();
  if (auto ok = loop.open_upstreams(); !ok)
    return ok.error();
  loop.wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop.wake < 0)
    return make_os_error(errno, "dns: eventfd");
  loop.thread = std::thread([&loop] { loop.run(); });
  return server;
}

Server::~Server() {
  stop();
}

std::string Server::address() const {
  return loop_ ? loop_->bound : std::string();
}

void Server::stop() {
  if (!loop_ || !loop_->thread.joinable())
    return;
  loop_->stopping = true;
  uint64_t one = 1;
  (void)::write(loop_->wake, &one, sizeof one);
  loop_->thread.join();
}

}  // namespace tessera::dns
