#include "services/executor/health_probe.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace tessera {

namespace {

using SteadyClock = std::chrono::steady_clock;

// "connection refused" for ECONNREFUSED: strerror, lower-cased first letter.
std::string error_text(int errno_value) {
  std::string text = ::strerror(errno_value);
  if (!text.empty())
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string timed_out(std::chrono::milliseconds timeout) {
  return "timed out after " + std::to_string(timeout.count()) + " ms";
}

const char* loopback(ProbeFamily family) {
  return family == ProbeFamily::ipv6 ? "::1" : "127.0.0.1";
}

// "127.0.0.1:80" or "[::1]:80".
std::string endpoint(ProbeFamily family, uint16_t port) {
  std::string host = loopback(family);
  if (family == ProbeFamily::ipv6)
    host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

class Socket {
 public:
  explicit Socket(int domain)
      : fd_(::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {}
  ~Socket() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Connects s to the loopback port within the deadline; an error text, or
// nullopt once connected.
std::optional<std::string> connect_local(const Socket& s, ProbeFamily family, uint16_t port,
                                         SteadyClock::time_point deadline,
                                         std::chrono::milliseconds timeout) {
  if (s.fd() < 0)
    return "socket: " + error_text(errno);
  sockaddr_storage storage{};
  socklen_t size = 0;
  if (family == ProbeFamily::ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    size = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size = sizeof *a;
  }
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&storage), size) == 0)
    return std::nullopt;
  if (errno != EINPROGRESS)
    return error_text(errno);
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      return timed_out(timeout);
    pollfd p{s.fd(), POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (n > 0)
      break;
    if (n < 0 && errno != EINTR)
      return "poll: " + error_text(errno);
  }
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
    return "getsockopt: " + error_text(errno);
  if (so_error != 0)
    return error_text(so_error);
  return std::nullopt;
}

bool valid_path(const std::string& path) {
  return !path.empty() && path.front() == '/' && std::none_of(path.begin(), path.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// Why a request that got no status failed, in the words the TCP check uses.
std::string http_failure(httplib::Error error, ProbeFamily family, uint16_t port,
                         SteadyClock::duration elapsed, std::chrono::milliseconds timeout) {
  switch (error) {
    case httplib::Error::Connection: {
      // httplib does not say why; one more connect on loopback does.
      Socket s(family == ProbeFamily::ipv6 ? AF_INET6 : AF_INET);
      auto why = connect_local(s, family, port, SteadyClock::now() + timeout, timeout);
      return why ? *why : "connection failed";
    }
    case httplib::Error::ConnectionTimeout:
      return timed_out(timeout);
    case httplib::Error::Read:
      return elapsed >= timeout ? timed_out(timeout) : "connection closed before a response";
    default:
      return httplib::to_string(error);
  }
}

}  // namespace

ProbeResult probe_tcp(uint16_t port, std::chrono::milliseconds timeout, ProbeFamily family) {
  auto target = "TCP connection to " + endpoint(family, port);
  auto deadline = SteadyClock::now() + timeout;
  Socket s(family == ProbeFamily::ipv6 ? AF_INET6 : AF_INET);
  if (auto err = connect_local(s, family, port, deadline, timeout))
    return {false, target + " failed: " + *err};
  return {true, target + " succeeded"};
}

ProbeResult probe_http(uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                       ProbeFamily family) {
  auto target = "HTTP GET " + endpoint(family, port) + path;
  if (!valid_path(path))
    return {false, target + ": invalid path"};
  auto start = SteadyClock::now();
  httplib::Client client(loopback(family), port);
  client.set_address_family(family == ProbeFamily::ipv6 ? AF_INET6 : AF_INET);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  client.set_keep_alive(false);
  client.set_follow_location(false);  // a redirect is a healthy 3xx, as in Mesos
  int status = 0;
  httplib::Headers headers{{"User-Agent", "tessera-health-check"}};
  // The status is all a check needs: the body is never read.
  auto result = client.Get(
      path, headers,
      [&](const httplib::Response& r) {
        status = r.status;
        return false;
      },
      [](const char*, size_t) { return false; });
  if (status == 0 && result)
    status = result->status;
  if (status == 0)
    return {false,
            target + ": " +
                http_failure(result.error(), family, port, SteadyClock::now() - start, timeout)};
  if (SteadyClock::now() - start > timeout)
    return {false, target + ": " + timed_out(timeout) + " (it returned " + std::to_string(status) +
                       " too late)"};
  return {status >= 200 && status <= 399, target + " returned " + std::to_string(status)};
}

}  // namespace tessera
