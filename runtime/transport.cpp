#include "runtime/transport.hpp"

#include "runtime/log.hpp"

#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/doorman_impl.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/operation.hpp>
#include <caf/io/network/scribe_impl.hpp>

#include <sys/socket.h>

#include <mutex>
#include <set>
#include <unordered_set>
#include <vector>

namespace tessera {

namespace net = caf::io::network;
using steady = std::chrono::steady_clock;

class GuardedScribe;

// What a listener's doorman and its connections share. The set of live
// connections is touched only on the multiplexer thread (CAF creates, closes
// and releases scribes there, and sweeps run there); the mutex is cheap
// insurance.
class TransportGuard {
 public:
  explicit TransportGuard(TransportLimits l) : limits(l) {}

  void add(GuardedScribe* s) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(s);
  }
  void remove(GuardedScribe* s) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(s);
  }
  void sweep(net::default_multiplexer& mx);

  // Logs the first few events of a kind, then every 1000th: a flood must not
  // become a flood of log lines.
  static bool worth_logging(uint64_t count) { return count <= 10 || count % 1000 == 0; }

  const TransportLimits limits;
  TransportCounters counters;

 private:
  std::mutex mu_;
  std::unordered_set<GuardedScribe*> live_;
};

namespace {

std::string peer_of(net::native_socket fd) {
  auto host = net::remote_addr_of_fd(fd);
  auto port = net::remote_port_of_fd(fd);
  if (!host || !port)
    return "an unknown peer";
  return *host + ":" + std::to_string(*port);
}

}  // namespace

// CAF's TCP scribe under a handle of its own, unique for the life of the
// process. CAF names a connection by its socket's fd number, and the BASP
// broker forgets a connection closed by its peer (connection_cleanup) only
// after a round through its message queue (basp_broker.cpp,
// connection_closed_msg -> delete_atom): by then the kernel may have handed
// the same fd number to a new connection, whose handshake and route that
// late cleanup then erases. The new peer's messages lose their sender and its
// requests are never answered, on a connection that stays open.
class UniqueScribe : public net::scribe_impl {
 public:
  UniqueScribe(net::default_multiplexer& mx, net::native_socket fd) : scribe_impl(mx, fd) {
    // Beyond any fd number, so never equal to a handle of CAF's own scribes.
    static std::atomic<int64_t> next_id{int64_t{1} << 32};
    hdl_ = caf::io::connection_handle::from_int(next_id.fetch_add(1, std::memory_order_relaxed));
    msg().handle = hdl_;  // what every new_data_msg names
  }

  // Closes the connection as a failure would: the broker hears that it
  // closed and forgets the peer (CAF kills its proxies). The shutdown makes
  // a pending write fail rather than wait for a peer that may never read,
  // so the connection (and its slot) goes now. On the multiplexer thread.
  void close_now(caf::execution_unit* ctx) {
    if (detached())
      return;
    ::shutdown(stream_.fd(), SHUT_RDWR);
    io_failure(ctx, net::operation::read);
  }

  std::string peer() const { return peer_of(stream_.fd()); }
};

// CAF's TCP scribe, plus the frame limit and the idle clock. Inbound
// connections (accepted) count against connections_max; outbound ones (this
// node dialled) are bounded by their peers, but a peer may be hostile or
// broken as well, so the frame limit and the idle clock guard them too.
class GuardedScribe : public UniqueScribe {
 public:
  GuardedScribe(net::default_multiplexer& mx, net::native_socket fd,
                std::shared_ptr<TransportGuard> guard, bool inbound)
      : UniqueScribe(mx, fd),
        guard_(std::move(guard)),
        inbound_(inbound),
        last_read_(steady::now()) {
    (inbound_ ? guard_->counters.open : guard_->counters.dialled_open)
        .fetch_add(1, std::memory_order_relaxed);
    guard_->add(this);
  }

  ~GuardedScribe() override {
    guard_->remove(this);
    (inbound_ ? guard_->counters.open : guard_->counters.dialled_open)
        .fetch_sub(1, std::memory_order_relaxed);
  }

  // The broker asks for the next read: a header, or the payload its header
  // announced. A payload beyond the limit is never read: CAF keeps the
  // header-sized read it had, and consume() closes the connection.
  void configure_read(caf::io::receive_policy::config config) override {
    if (config.second > guard_->limits.frame_bytes_max) {
      refused_bytes_ = config.second;
      return;
    }
    scribe_impl::configure_read(config);
  }

  bool consume(caf::execution_unit* ctx, const void* buf, size_t num_bytes) override {
    last_read_ = steady::now();
    bool more = scribe_impl::consume(ctx, buf, num_bytes);
    if (refused_bytes_ == 0)
      return more;
    auto n = guard_->counters.refused_frames.fetch_add(1, std::memory_order_relaxed) + 1;
    if (TransportGuard::worth_logging(n))
      log().warn(
          "transport: {} announced a frame of {} bytes (at most {}): connection closed "
          "({} refused so far)",
          peer_of(stream_.fd()), refused_bytes_, guard_->limits.frame_bytes_max, n);
    close_now(ctx);
    return false;
  }

  bool idle_since(steady::time_point cutoff) const { return last_read_ < cutoff; }

  // After a flush, what is still in the offline buffer waits behind a write
  // the peer has not taken yet: a peer that stops reading would make it grow
  // without bound. On the multiplexer thread (the broker's).
  void flush() override {
    scribe_impl::flush();
    auto queued = stream_.wr_buf().size();
    auto limit = guard_->limits.write_buffer_bytes_max;
    if (limit == 0 || queued <= limit || detached())
      return;
    auto n = guard_->counters.write_overflow_closed.fetch_add(1, std::memory_order_relaxed) + 1;
    if (TransportGuard::worth_logging(n))
      log().warn(
          "transport: {} stopped reading: {} bytes wait for it (at most {}); connection closed "
          "({} so far)",
          peer(), queued, limit, n);
    stream_.wr_buf().clear();
    close_now(&stream_.backend());
  }

 private:
  std::shared_ptr<TransportGuard> guard_;
  bool inbound_;
  steady::time_point last_read_;
  size_t refused_bytes_ = 0;
};

void TransportGuard::sweep(net::default_multiplexer& mx) {
  if (limits.idle_timeout.count() <= 0)
    return;
  auto cutoff = steady::now() - limits.idle_timeout;
  std::vector<caf::intrusive_ptr<GuardedScribe>> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* s : live_)
      if (!s->detached() && s->idle_since(cutoff))
        idle.emplace_back(s);
  }
  for (auto& s : idle) {
    auto n = counters.idle_closed.fetch_add(1, std::memory_order_relaxed) + 1;
    if (worth_logging(n))
      log().info("transport: closing the connection from {}: nothing received for {} ms", s->peer(),
                 limits.idle_timeout.count());
    s->close_now(&mx);
  }
}

// CAF's TCP doorman, plus the connection bound: a connection beyond it is
// closed at accept, before the broker ever hears of it.
class GuardedDoorman : public net::doorman_impl {
 public:
  GuardedDoorman(net::default_multiplexer& mx, net::native_socket fd,
                 std::shared_ptr<TransportGuard> guard)
      : doorman_impl(mx, fd), guard_(std::move(guard)) {}

  bool new_connection() override {
    if (detached())
      return false;
    auto& mx = acceptor_.backend();
    auto fd = acceptor_.accepted_socket();
    auto& c = guard_->counters;
    if (c.open.load(std::memory_order_relaxed) >= guard_->limits.connections_max) {
      auto n = c.refused_connections.fetch_add(1, std::memory_order_relaxed) + 1;
      if (TransportGuard::worth_logging(n))
        log().warn("transport: refused a connection from {}: {} open, at most {} ({} refused)",
                   peer_of(fd), c.open.load(), guard_->limits.connections_max, n);
      net::close_socket(fd);
      return true;
    }
    c.accepted.fetch_add(1, std::memory_order_relaxed);
    static_cast<void>(net::keepalive(fd, true));
    auto scribe = caf::make_counted<GuardedScribe>(mx, fd, guard_, true);
    auto hdl = scribe->hdl();
    parent()->add_scribe(std::move(scribe));
    return doorman::new_connection(&mx, hdl);
  }

 private:
  std::shared_ptr<TransportGuard> guard_;
};

caf::io::scribe_ptr new_connection_scribe(caf::actor_system& system, int fd,
                                          const std::shared_ptr<TransportGuard>& guard) {
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  static_cast<void>(net::keepalive(fd, true));
  if (guard)
    return caf::make_counted<GuardedScribe>(mx, fd, guard, false);
  return caf::make_counted<UniqueScribe>(mx, fd);
}

void abandon_connection(caf::actor_system& system, caf::io::scribe_ptr scribe) {
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  mx.post(
      [&mx, scribe = std::move(scribe)] { static_cast<UniqueScribe&>(*scribe).close_now(&mx); });
}

const TransportCounters& GuardedListener::counters() const {
  return guard->counters;
}

void GuardedListener::sweep(caf::actor_system& system) const {
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  mx.post([guard = guard, &mx] { guard->sweep(mx); });
}

expected<GuardedListener> listen_guarded(caf::actor_system& system, const caf::actor& router,
                                         const std::string& host, uint16_t port,
                                         const TransportLimits& limits) {
  auto& mm = system.middleman();
  auto* mx = dynamic_cast<net::default_multiplexer*>(&mm.backend());
  if (!mx)
    return make_error(Errc::invalid_argument, "the middleman does not run CAF's TCP multiplexer");
  auto fd = net::new_tcp_acceptor_impl(port, host.c_str(), true);
  if (!fd)
    return make_error(Errc::connect_failed, "cannot listen on " + host + ":" +
                                                std::to_string(port) + ": " + describe(fd.error()));
  GuardedListener out;
  out.guard = std::make_shared<TransportGuard>(limits);
  caf::io::doorman_ptr doorman = caf::make_counted<GuardedDoorman>(*mx, *fd, out.guard);
  out.port = doorman->port();
  // What the middleman actor does for publish(): the broker adopts the
  // doorman and answers handshakes on its port with router.
  auto basp = mm.named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  caf::anon_send(basp, caf::publish_atom::value, std::move(doorman), out.port,
                 caf::actor_cast<caf::strong_actor_ptr>(router), std::set<std::string>{});
  return out;
}

}  // namespace tessera
