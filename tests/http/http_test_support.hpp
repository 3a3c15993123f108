#pragma once
// What the HTTP server's tests share: a server started or the test fails,
// raw client sockets (for garbage, slow readers, idle subscribers by the
// thousand), and a bounded wait on the server's counters.

#include "services/http/server.hpp"

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tessera::http::testing {

using namespace std::chrono_literals;
using tessera::testing::wait_until;

inline std::unique_ptr<Server> start_server(ServerConfig config, Handler handler) {
  auto server = Server::start(std::move(config), std::move(handler));
  REQUIRE(server);
  return std::move(*server);
}

inline bool wait_counter(const std::atomic<uint64_t>& counter, uint64_t value,
                         std::chrono::milliseconds timeout = 20s) {
  return wait_until([&] { return counter.load() == value; }, timeout);
}

// The 1000-subscriber test needs ~2000 descriptors in this process.
inline void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// A blocking TCP client socket to 127.0.0.1 that reads with deadlines.
class RawSocket {
 public:
  // rcvbuf_bytes > 0 shrinks the receive buffer (before connecting, so the
  // window is small too): a subscriber that cannot keep up.
  explicit RawSocket(uint16_t port, int rcvbuf_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      return;
    if (rcvbuf_bytes > 0)
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      close();
  }
  ~RawSocket() { close(); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until done(received()) holds, the peer closes, or timeout passes.
  // Returns whether done held.
  bool read_until(const std::function<bool(const std::string&)>& done,
                  std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(received_)) {
      if (peer_closed_ || !read_some(deadline))
        return done(received_);
    }
    return true;
  }

  // True once the peer closes (EOF or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 20s) {
    read_until([](const std::string&) { return false; }, timeout);
    return peer_closed_;
  }

  const std::string& received() const { return received_; }
  void clear() { received_.clear(); }

  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  // One poll and read; false on timeout.
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      return true;
    if (ready <= 0)
      return false;
    char buf[16 * 1024];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0)
      peer_closed_ = true;
    else
      received_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string received_;
  bool peer_closed_ = false;
};

// A complete Content-Length framed response at the start of bytes?
inline bool has_response(const std::string& bytes) {
  auto end = bytes.find("\r\n\r\n");
  if (end == std::string::npos)
    return false;
  auto head = bytes.substr(0, end);
  auto at = head.find("Content-Length: ");
  size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
  return bytes.size() >= end + 4 + length;
}

inline int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12)
    return 0;
  return std::stoi(response.substr(9, 3));
}

inline std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n";
}

}  // namespace tessera::http::testing
