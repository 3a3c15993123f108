#include "services/executor/health_probe.hpp"

#include <arpa/inet.h>
#include <errno.h>
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

// The status line is all a check reads; a server sending more before its
// first line break is not speaking HTTP.
constexpr size_t status_line_bytes_max = 4096;

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {}
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

// Waits until fd is ready for events or the deadline passes. An error text,
// or nullopt when ready.
std::optional<std::string> wait_ready(int fd, short events, SteadyClock::time_point deadline,
                                      std::chrono::milliseconds timeout) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      return timed_out(timeout);
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (n > 0)
      return std::nullopt;
    if (n < 0 && errno != EINTR)
      return "poll: " + error_text(errno);
  }
}

std::optional<std::string> connect_local(const Socket& s, uint16_t port,
                                         SteadyClock::time_point deadline,
                                         std::chrono::milliseconds timeout) {
  if (s.fd() < 0)
    return "socket: " + error_text(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return std::nullopt;
  if (errno != EINPROGRESS)
    return error_text(errno);
  if (auto err = wait_ready(s.fd(), POLLOUT, deadline, timeout))
    return err;
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
    return "getsockopt: " + error_text(errno);
  if (so_error != 0)
    return error_text(so_error);
  return std::nullopt;
}

std::optional<std::string> send_all(const Socket& s, const std::string& bytes,
                                    SteadyClock::time_point deadline,
                                    std::chrono::milliseconds timeout) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(s.fd(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return "send: " + error_text(errno);
    if (auto err = wait_ready(s.fd(), POLLOUT, deadline, timeout))
      return err;
  }
  return std::nullopt;
}

// Reads until the first line break; the line (without it) in line.
std::optional<std::string> read_status_line(const Socket& s, std::string& line,
                                            SteadyClock::time_point deadline,
                                            std::chrono::milliseconds timeout) {
  std::string buffer;
  char chunk[512];
  for (;;) {
    if (auto end = buffer.find('\n'); end != std::string::npos) {
      line = buffer.substr(0, end);
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      return std::nullopt;
    }
    if (buffer.size() > status_line_bytes_max)
      return "no status line in the first " + std::to_string(status_line_bytes_max) + " bytes";
    auto n = ::recv(s.fd(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0)
      return buffer.empty() ? "connection closed before a response" : "truncated status line";
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return "recv: " + error_text(errno);
    if (auto err = wait_ready(s.fd(), POLLIN, deadline, timeout))
      return err;
  }
}

// "HTTP/1.1 200 OK" -> 200; nullopt when it is not a status line.
std::optional<int> status_code(const std::string& line) {
  if (line.rfind("HTTP/", 0) != 0)
    return std::nullopt;
  auto space = line.find(' ');
  if (space == std::string::npos || line.size() < space + 4)
    return std::nullopt;
  int code = 0;
  for (size_t i = space + 1; i < space + 4; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i])))
      return std::nullopt;
    code = code * 10 + (line[i] - '0');
  }
  if (line.size() > space + 4 && line[space + 4] != ' ')
    return std::nullopt;
  return code;
}

bool valid_path(const std::string& path) {
  return !path.empty() && path.front() == '/' && std::none_of(path.begin(), path.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

}  // namespace

ProbeResult probe_tcp(uint16_t port, std::chrono::milliseconds timeout) {
  auto target = "TCP connection to 127.0.0.1:" + std::to_string(port);
  auto deadline = SteadyClock::now() + timeout;
  Socket s;
  if (auto err = connect_local(s, port, deadline, timeout))
    return {false, target + " failed: " + *err};
  return {true, target + " succeeded"};
}

ProbeResult probe_http(uint16_t port, const std::string& path, std::chrono::milliseconds timeout) {
  auto target = "HTTP GET 127.0.0.1:" + std::to_string(port) + path;
  if (!valid_path(path))
    return {false, target + ": invalid path"};
  auto deadline = SteadyClock::now() + timeout;
  Socket s;
  auto request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(port) +
                 "\r\nUser-Agent: tessera-health-check\r\nConnection: close\r\n\r\n";
  std::string line;
  if (auto err = connect_local(s, port, deadline, timeout))
    return {false, target + ": " + *err};
  if (auto err = send_all(s, request, deadline, timeout))
    return {false, target + ": " + *err};
  if (auto err = read_status_line(s, line, deadline, timeout))
    return {false, target + ": " + *err};
  auto code = status_code(line);
  if (!code)
    return {false, target + ": malformed status line"};
  return {*code >= 200 && *code <= 399, target + " returned " + std::to_string(*code)};
}

}  // namespace tessera
