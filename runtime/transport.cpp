#include "runtime/transport.hpp"

#include "runtime/log.hpp"
#include "runtime/peers.hpp"
#include "runtime/tls.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp/message_type.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/policy/tcp.hpp>

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
using rw_state = net::rw_state;
using steady = std::chrono::steady_clock;

class GuardedScribe;

// What a listener's doorman and its connections share. The set of live
// connections is touched only on the multiplexer thread (CAF creates, closes
// and releases scribes there, and sweeps run there); the mutex is cheap
// insurance.
class TransportGuard {
 public:
  TransportGuard(TransportLimits l, std::shared_ptr<PeerTable> p)
      : limits(l), peers(std::move(p)) {}

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
  const std::shared_ptr<PeerTable> peers;  // never null; plaintext when not secure()
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

// What a connection's stream reads and writes through: plain TCP (CAF's own
// policy) or, on a node with TLS, a TlsSession.
struct ConnectionPolicy {
  explicit ConnectionPolicy(std::unique_ptr<TlsSession> session) : tls(std::move(session)) {}

  rw_state read_some(size_t& result, net::native_socket fd, void* buf, size_t len) {
    return tls ? tls->read_some(result, buf, len)
               : caf::policy::tcp::read_some(result, fd, buf, len);
  }
  rw_state write_some(size_t& result, net::native_socket fd, const void* buf, size_t len) {
    return tls ? tls->write_some(result, buf, len)
               : caf::policy::tcp::write_some(result, fd, buf, len);
  }
  bool must_read_more(net::native_socket, size_t threshold) {
    return tls && tls->must_read_more(threshold);
  }

  std::unique_ptr<TlsSession> tls;
};

// A connection of the node: CAF's scribe (caf::io::network::scribe_impl,
// re-made around ConnectionPolicy) under a handle of its own, unique for the
// life of the process. CAF names a connection by its socket's fd number, and
// the BASP broker forgets a connection closed by its peer
// (connection_cleanup) only after a round through its message queue
// (basp_broker.cpp, connection_closed_msg -> delete_atom): by then the kernel
// may have handed the same fd number to a new connection, whose handshake and
// route that late cleanup then erases. The new peer's messages lose their
// sender and its requests are never answered, on a connection that stays open.
//
// Over TLS it also holds back every write until the handshake has ended
// (tls.hpp) and watches the BASP messages it reads (watch_basp): the node the
// peer names in its handshake is bound to the identity its certificate
// proved (PeerTable::bind_node), and a message that names another node as
// its source, or any message before the handshake, closes the connection.
class UniqueScribe : public caf::io::scribe {
 public:
  UniqueScribe(net::default_multiplexer& mx, net::native_socket fd, std::unique_ptr<TlsSession> tls,
               std::shared_ptr<PeerTable> peers)
      : UniqueScribe(mx, fd, tls.get(), std::move(tls), std::move(peers)) {}

  ~UniqueScribe() override {
    if (bound_)
      peers_->connection_closed(hdl().id());
  }

  void configure_read(caf::io::receive_policy::config config) override {
    stream_.configure_read(config);
    if (!launched_)
      launch();
  }
  void ack_writes(bool enable) override { stream_.ack_writes(enable); }
  std::vector<char>& wr_buf() override { return stream_.wr_buf(); }
  std::vector<char>& rd_buf() override { return stream_.rd_buf(); }
  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }
  void flush() override {
    if (tls_ && !tls_->established()) {
      flush_pending_ = true;  // the handshake's end flushes
      return;
    }
    stream_.flush(this);
  }
  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? *x : std::string{};
  }
  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : 0;
  }
  void add_to_loop() override { stream_.activate(this); }
  void remove_from_loop() override { stream_.passivate(); }

  bool consume(caf::execution_unit* ctx, const void* buf, size_t num_bytes) override {
    if (tls_ && !watch_basp(ctx, buf, num_bytes)) {
      close_now(ctx);
      return false;
    }
    return scribe::consume(ctx, buf, num_bytes);
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
  // Who the peer proved to be; null before the TLS handshake ends, and on a
  // plaintext connection.
  PrincipalPtr identity() const { return tls_ ? tls_->peer() : nullptr; }
  bool handshake_pending() const { return tls_ && !tls_->established(); }

 protected:
  net::stream_impl<ConnectionPolicy> stream_;

 private:
  // tls by reference: session (its raw pointer) is read before it moves.
  UniqueScribe(net::default_multiplexer& mx, net::native_socket fd, TlsSession* session,
               std::unique_ptr<TlsSession>&& tls, std::shared_ptr<PeerTable> peers)
      : scribe(next_handle()),
        stream_(mx, fd, std::move(tls)),
        tls_(session),
        peers_(std::move(peers)) {
    if (!tls_)
      return;
    tls_->on_established = [this] { tls_established(); };
    tls_->on_want_write = [this] { stream_.force_empty_write(this); };
    tls_->on_failed = [this] { tls_failed(); };
  }

  static caf::io::connection_handle next_handle() {
    // Beyond any fd number, so never equal to a handle of CAF's own scribes.
    static std::atomic<int64_t> next_id{int64_t{1} << 32};
    return caf::io::connection_handle::from_int(next_id.fetch_add(1, std::memory_order_relaxed));
  }

  void launch() {
    launched_ = true;
    stream_.start(this);
    if (tls_ && !tls_->start())
      close_now(&stream_.backend());
  }

  void tls_established() {
    auto n = peers_->counters().tls_established.fetch_add(1, std::memory_order_relaxed) + 1;
    if (TransportGuard::worth_logging(n))
      log().debug("transport: {} proved to be {}", peer(), tls_->peer()->to_string());
    if (flush_pending_) {
      flush_pending_ = false;
      flush();
    }
  }

  void tls_failed() {
    auto n = peers_->counters().tls_refused.fetch_add(1, std::memory_order_relaxed) + 1;
    if (TransportGuard::worth_logging(n))
      log().warn("transport: refused the connection with {}: {} ({} refused so far)", peer(),
                 tls_->failure(), n);
  }

  bool refuse(const std::string& why, std::atomic<uint64_t>& counter) {
    auto n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
    if (TransportGuard::worth_logging(n))
      log().warn("transport: closing the connection with {}: {} ({} so far)", peer(), why, n);
    return false;
  }

  // Reads what the BASP broker is about to read, header or payload (CAF
  // reads each exactly). False: close the connection.
  bool watch_basp(caf::execution_unit* ctx, const void* buf, size_t n) {
    namespace basp = caf::io::basp;
    auto& c = peers_->counters();
    caf::binary_deserializer source{ctx, static_cast<const char*>(buf), n};
    if (payload_left_ == 0) {
      basp::header hdr;
      if (n != basp::header_size || source(hdr))
        return refuse("an unreadable BASP header", c.forged_sources);
      bool handshake = hdr.operation == basp::message_type::server_handshake ||
                       hdr.operation == basp::message_type::client_handshake;
      if (!bound_ && !handshake && hdr.operation != basp::message_type::heartbeat)
        return refuse("a message before the handshake", c.forged_sources);
      // Tessera's actors always send as themselves; a message from no actor
      // would arrive as if this process had sent it.
      bool message = hdr.operation == basp::message_type::direct_message ||
                     hdr.operation == basp::message_type::routed_message;
      if (message && hdr.source_actor == caf::invalid_actor_id)
        return refuse(tls_->peer()->to_string() + " sent an anonymous message", c.forged_sources);
      // A receiver named, not numbered, is one of CAF's own services (a
      // BASP broker asks a new peer's for its connectivity): not checked
      // here yet (see admit_content).
      named_ = message && hdr.has(basp::header::named_receiver_flag);
      operation_ = hdr.operation;
      response_ = caf::make_message_id(hdr.operation_data).is_response();
      payload_left_ = hdr.payload_len;
      return true;
    }
    payload_left_ = 0;
    const auto& self = stream_.backend().system().node();
    switch (operation_) {
      case basp::message_type::server_handshake:
      case basp::message_type::client_handshake: {
        caf::node_id node;
        if (source(node) || node == caf::none)
          return refuse("an unreadable handshake", c.forged_sources);
        // A peer naming this very node would pass for this process itself.
        if (node == self)
          return refuse(tls_->peer()->to_string() + " named this node as its own", c.nodes_refused);
        std::string why;
        if (!peers_->bind_node(hdl().id(), node, tls_->peer(), &why))
          return refuse(why, c.nodes_refused);
        bound_ = true;
        node_ = node;
        return true;
      }
      case basp::message_type::routed_message:
      case basp::message_type::monitor_message:
      case basp::message_type::down_message: {
        // From the peer itself, to this node: never forwarded (a forward in
        // another node's name would make that node cut its own link).
        caf::node_id origin;
        caf::node_id destination;
        if (source(origin, destination) || origin != node_ || destination != self)
          return refuse(tls_->peer()->to_string() + " sent a message in another node's name",
                        c.forged_sources);
        if (operation_ != basp::message_type::routed_message)
          return true;
        return admit_content(source);
      }
      case basp::message_type::direct_message:
        return admit_content(source);
      default:
        return true;
    }
  }

  // What a message carries, past its header: Tessera's envelopes, a name
  // lookup, and the answers to requests. CAF's system messages (an exit, an
  // error, a down, a link) sent by a peer would act on this node's actors
  // as if this process had sent them; forwarding stacks would route through
  // it. Read without materialising a value: the stack's length and the
  // message's type names.
  bool admit_content(caf::binary_deserializer& source) {
    auto& c = peers_->counters();
    size_t stages = 0;
    uint16_t type_nr = 0;
    std::string types;
    if (source.begin_sequence(stages) || stages != 0 || source.end_sequence())
      return refuse(tls_->peer()->to_string() + " sent a forwarding stack", c.forged_sources);
    if (source.begin_object(type_nr, types) || type_nr != 0)
      return refuse(tls_->peer()->to_string() + " sent an unreadable message", c.forged_sources);
    // CAF's own services exchange messages of many shapes here, so this is
    // a list of what acts on an actor as if its own process had sent it: an
    // exit, a down, an error that is not an answer, a link.
    bool allowed = types != "@<>+@exit" && types != "@<>+@down" &&
                   types != "@<>+@atom+@strong_actor_ptr" && (response_ || types != "@<>+@error");
    if (!allowed)
      return refuse(tls_->peer()->to_string() + " sent a message of type " + types,
                    c.forged_sources);
    return true;
  }

  TlsSession* tls_ = nullptr;  // owned by stream_'s policy
  std::shared_ptr<PeerTable> peers_;
  bool launched_ = false;
  bool flush_pending_ = false;
  bool bound_ = false;
  caf::node_id node_;
  caf::io::basp::message_type operation_ = caf::io::basp::message_type::heartbeat;
  bool response_ = false;  // the message being read answers a request
  bool named_ = false;     // ... is for a named CAF service
  uint32_t payload_left_ = 0;
};

// CAF's TCP scribe, plus the frame limit and the idle clock. Inbound
// connections (accepted) count against connections_max; outbound ones (this
// node dialled) are bounded by their peers, but a peer may be hostile or
// broken as well, so the frame limit and the idle clock guard them too.
class GuardedScribe : public UniqueScribe {
 public:
  GuardedScribe(net::default_multiplexer& mx, net::native_socket fd,
                std::unique_ptr<TlsSession> tls, std::shared_ptr<TransportGuard> guard,
                bool inbound)
      : UniqueScribe(mx, fd, std::move(tls), guard->peers),
        guard_(std::move(guard)),
        inbound_(inbound),
        created_(steady::now()),
        last_read_(created_) {
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
    UniqueScribe::configure_read(config);
  }

  bool consume(caf::execution_unit* ctx, const void* buf, size_t num_bytes) override {
    last_read_ = steady::now();
    // The broker reads a header here and asks (configure_read) for the
    // payload it announces; beyond the limit, that ask was refused.
    bool more = UniqueScribe::consume(ctx, buf, num_bytes);
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
  // A TLS handshake begun before cutoff and not yet ended.
  bool handshake_since(steady::time_point cutoff) const {
    return handshake_pending() && created_ < cutoff;
  }

  // After a flush, what is still in the offline buffer waits behind a write
  // the peer has not taken yet: a peer that stops reading would make it grow
  // without bound. On the multiplexer thread (the broker's).
  void flush() override {
    UniqueScribe::flush();
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
  steady::time_point created_;
  steady::time_point last_read_;
  size_t refused_bytes_ = 0;
};

void TransportGuard::sweep(net::default_multiplexer& mx) {
  auto now = steady::now();
  bool idle_on = limits.idle_timeout.count() > 0;
  bool handshake_on = limits.handshake_timeout.count() > 0;
  auto idle_cutoff = now - limits.idle_timeout;
  auto handshake_cutoff = now - limits.handshake_timeout;
  std::vector<caf::intrusive_ptr<GuardedScribe>> idle;
  std::vector<caf::intrusive_ptr<GuardedScribe>> stuck;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* s : live_) {
      if (s->detached())
        continue;
      if (handshake_on && s->handshake_since(handshake_cutoff))
        stuck.emplace_back(s);
      else if (idle_on && s->idle_since(idle_cutoff))
        idle.emplace_back(s);
    }
  }
  for (auto& s : stuck) {
    auto n = peers->counters().tls_refused.fetch_add(1, std::memory_order_relaxed) + 1;
    if (worth_logging(n))
      log().info("transport: closing the connection with {}: no TLS handshake within {} ms",
                 s->peer(), limits.handshake_timeout.count());
    s->close_now(&mx);
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
    std::unique_ptr<TlsSession> tls;
    if (guard_->peers->secure()) {
      auto session = TlsSession::make(guard_->peers->context(), fd, true, {});
      if (!session) {
        log().warn("transport: refused a connection from {}: {}", peer_of(fd),
                   describe(session.error()));
        net::close_socket(fd);
        return true;
      }
      tls = std::move(*session);
    }
    c.accepted.fetch_add(1, std::memory_order_relaxed);
    static_cast<void>(net::keepalive(fd, true));
    auto scribe = caf::make_counted<GuardedScribe>(mx, fd, std::move(tls), guard_, true);
    auto hdl = scribe->hdl();
    parent()->add_scribe(std::move(scribe));
    return doorman::new_connection(&mx, hdl);
  }

 private:
  std::shared_ptr<TransportGuard> guard_;
};

expected<caf::io::scribe_ptr> new_connection_scribe(caf::actor_system& system, int fd,
                                                    const std::shared_ptr<TransportGuard>& guard,
                                                    const std::string& host) {
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  static_cast<void>(net::keepalive(fd, true));
  if (!guard)
    return caf::io::scribe_ptr{caf::make_counted<UniqueScribe>(mx, fd, nullptr, nullptr)};
  std::unique_ptr<TlsSession> tls;
  if (guard->peers->secure()) {
    auto session = TlsSession::make(guard->peers->context(), fd, false, host);
    if (!session) {
      net::close_socket(fd);
      return session.error();
    }
    tls = std::move(*session);
  }
  return caf::io::scribe_ptr{
      caf::make_counted<GuardedScribe>(mx, fd, std::move(tls), guard, false)};
}

PrincipalPtr connection_identity(const caf::io::scribe_ptr& scribe) {
  return scribe ? static_cast<const UniqueScribe&>(*scribe).identity() : nullptr;
}

void abandon_connection(caf::actor_system& system, caf::io::scribe_ptr scribe) {
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  mx.post(
      [&mx, scribe = std::move(scribe)] { static_cast<UniqueScribe&>(*scribe).close_now(&mx); });
}

void release_connection(caf::actor_system& system, caf::io::scribe_ptr scribe) {
  if (!scribe)
    return;
  auto& mx = static_cast<net::default_multiplexer&>(system.middleman().backend());
  mx.post([scribe = std::move(scribe)]() mutable { scribe.reset(); });
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
                                         const TransportLimits& limits,
                                         std::shared_ptr<PeerTable> peers) {
  auto& mm = system.middleman();
  auto* mx = dynamic_cast<net::default_multiplexer*>(&mm.backend());
  if (!mx)
    return make_error(Errc::invalid_argument, "the middleman does not run CAF's TCP multiplexer");
  auto fd = net::new_tcp_acceptor_impl(port, host.c_str(), true);
  if (!fd)
    return make_error(Errc::connect_failed, "cannot listen on " + host + ":" +
                                                std::to_string(port) + ": " + describe(fd.error()));
  GuardedListener out;
  out.guard = std::make_shared<TransportGuard>(limits, std::move(peers));
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
