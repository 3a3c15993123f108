#include "services/http/server.hpp"

#include "services/http/connection.hpp"
#include "services/http/tls.hpp"

#include "runtime/log.hpp"

#include <boost/asio/steady_timer.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace tessera::http {

namespace {

// Asio opens sockets without SOCK_CLOEXEC: without this, every process the
// owner starts (an agent's executors and tasks) would inherit the listener
// and the open connections, could accept() the API's clients, and would
// hold the port past the owner's restart.
void close_on_exec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0)
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

}  // namespace

namespace net = detail::net;
using detail::tcp;

namespace {

// After a failed accept (out of descriptors, mostly) the listener pauses
// rather than spin on an error that persists.
constexpr std::chrono::milliseconds accept_retry_ms{100};

std::string host_port(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

// Member order matters: the io_context is destroyed after the acceptor and
// timer that use it, and before core, which its leftover handlers hold.
struct Server::Impl {
  std::shared_ptr<detail::Core> core = std::make_shared<detail::Core>();
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  std::thread thread;
  std::mutex stop_mu;
  uint16_t port = 0;

  ~Impl() {
    if (core->gate)
      core->gate->close();
  }

  caf::error listen();
  void accept();
  void on_accept(boost::system::error_code ec, tcp::socket socket);
  void admit(tcp::socket socket);
  void run();
  void shutdown();
};

caf::error Server::Impl::listen() {
  const auto& config = core->config;
  auto fail = [&](const std::string& reason) {
    return make_error(Errc::os_error, "http: cannot listen on " +
                                          host_port(config.host, config.port) + ": " + reason);
  };
  boost::system::error_code ec;
  tcp::resolver resolver(ioc);
  auto found = resolver.resolve(config.host, std::to_string(config.port),
                                tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty())
    return fail(ec ? ec.message() : "no address");
  auto endpoint = found.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    close_on_exec(acceptor.native_handle());
  if (!ec)
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return fail(ec.message());
  port = acceptor.local_endpoint(ec).port();
  return {};
}

void Server::Impl::accept() {
  acceptor.async_accept(ioc, [this](boost::system::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open())
    return;
  if (!ec) {
    close_on_exec(socket.native_handle());
    admit(std::move(socket));
    return accept();
  }
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    log().warn("http: accept on port {} failed: {}; retrying every {} ms (logged once)", port,
               ec.message(), accept_retry_ms.count());
  accept_retry.expires_after(accept_retry_ms);
  accept_retry.async_wait([this](boost::system::error_code wait_ec) {
    if (!wait_ec)
      accept();
  });
}

void Server::Impl::admit(tcp::socket socket) {
  auto& c = core->counters;
  if (c.connections_open.load(std::memory_order_relaxed) >= core->config.connections_max) {
    if (detail::bump(c.connections_refused) == 1)
      log().warn("http: refused a connection on port {}: {} open, at most {} (logged once)", port,
                 c.connections_open.load(), core->config.connections_max);
    boost::system::error_code ec;
    socket.close(ec);
    return;
  }
  detail::bump(c.connections_accepted);
  std::make_shared<detail::Connection>(core, std::move(socket))->start();
}

void Server::Impl::run() {
  if (int nice = core->config.io_thread_nice; nice > 0) {
    auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    int now = ::getpriority(PRIO_PROCESS, tid);
    if (errno != 0 || ::setpriority(PRIO_PROCESS, tid, std::min(now + nice, 19)) != 0)
      log().warn("http: cannot lower the priority of the I/O thread of port {}: {}", port,
                 std::strerror(errno));
  }
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // A handler let an exception through; the other connections go on.
      log().error("http: an exception reached the I/O loop of port {}: {}", port, e.what());
    }
  }
}

void Server::Impl::shutdown() {
  boost::system::error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  auto live = core->live;  // close() erases from the table
  for (auto& [_, weak] : live)
    if (auto connection = weak.lock())
      connection->close();
  // Queued behind the completions the closes just produced (and anything
  // posted before the gate closed), so those still run: streams starting
  // meet a closed connection and fire their on_close.
  net::post(ioc, [this] { ioc.stop(); });
}

Server::Server() : impl_(std::make_unique<Impl>()) {
}

Server::~Server() {
  stop();
}

expected<std::unique_ptr<Server>> Server::start(ServerConfig config, Handler handler) {
  if (!handler)
    return make_error(Errc::invalid_argument, "http: a server needs a handler");
  auto server = std::unique_ptr<Server>(new Server());
  auto& impl = *server->impl_;
  impl.core->config = std::move(config);
  impl.core->handler = std::move(handler);
  impl.core->gate = std::make_shared<detail::Gate>(impl.ioc);
  if (impl.core->config.tls)
    impl.core->tls = detail::asio_context(*impl.core->config.tls);
  if (auto err = impl.listen())
    return err;
  impl.accept();
  impl.thread = std::thread([&impl] { impl.run(); });
  return server;
}

void Server::stop() {
  std::lock_guard lock(impl_->stop_mu);
  if (!impl_->thread.joinable())
    return;
  if (impl_->thread.get_id() == std::this_thread::get_id()) {
    log().error("http: Server::stop() called on its own I/O thread; ignored");
    return;
  }
  impl_->core->gate->close();  // from here on, handles' posts are dropped
  net::post(impl_->ioc, [impl = impl_.get()] { impl->shutdown(); });
  impl_->thread.join();
}

uint16_t Server::port() const {
  return impl_->port;
}

std::string Server::address() const {
  return host_port(impl_->core->config.host, impl_->port);
}

bool Server::https() const {
  return impl_->core->tls != nullptr;
}

std::string Server::url() const {
  return (https() ? "https://" : "http://") + address();
}

const ServerCounters& Server::counters() const {
  return impl_->core->counters;
}

std::vector<std::pair<std::string, double>> counter_metrics(const ServerCounters& c,
                                                            uint64_t bad_requests_more) {
  return {
      {"tessera_http_connections_open", double(c.connections_open.load())},
      {"tessera_http_connections_accepted_total", double(c.connections_accepted.load())},
      {"tessera_http_connections_refused_total", double(c.connections_refused.load())},
      {"tessera_http_requests_total", double(c.requests.load())},
      {"tessera_http_bad_requests_total", double(c.bad_requests.load() + bad_requests_more)},
      {"tessera_http_too_large_total", double(c.too_large.load())},
      {"tessera_http_timed_out_total", double(c.timed_out.load())},
      {"tessera_http_idle_closed_total", double(c.idle_closed.load())},
      {"tessera_http_streams_open", double(c.streams_open.load())},
      {"tessera_http_streams_evicted_total", double(c.streams_evicted.load())},
      {"tessera_http_tls_handshake_failed_total", double(c.tls_handshake_failed.load())},
  };
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response error_response(int status, const std::string& message) {
  nlohmann::json body = {{"error", message}};
  // Replace, not throw, on invalid UTF-8: messages may quote what a peer sent.
  return json_response(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace tessera::http
