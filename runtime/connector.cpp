#include "runtime/connector.hpp"

#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/transport.hpp"

#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tessera {

namespace {

using steady = std::chrono::steady_clock;
using abandon_atom = caf::atom_constant<caf::atom("tsabandon")>;
using Endpoint = std::pair<std::string, uint16_t>;
using Handshake = std::tuple<caf::node_id, caf::strong_actor_ptr, std::set<std::string>>;

std::string text(const Endpoint& e) {
  return e.first + ":" + std::to_string(e.second);
}

// Waits for a non-blocking connect on fd until deadline; errno-style result.
int await_connect(int fd, steady::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0)
      return ETIMEDOUT;
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    if (n == 0)
      continue;  // the deadline check above ends it
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      return errno;
    return err;
  }
}

// A TCP connection to host:port, established by deadline (CAF's own connect
// blocks until the kernel gives up, minutes for a host that drops SYNs).
// The socket is left non-blocking, as CAF's scribes want it.
expected<int> dial(const Endpoint& to, steady::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  auto service = std::to_string(to.second);
  if (int rc = ::getaddrinfo(to.first.c_str(), service.c_str(), &hints, &found); rc != 0)
    return make_error(Errc::connect_failed, text(to) + ": " + ::gai_strerror(rc));
  int last_error = EHOSTUNREACH;
  int fd = -1;
  for (auto* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    last_error = rc == 0 ? 0 : errno == EINPROGRESS ? await_connect(fd, deadline) : errno;
    if (last_error != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0)
    return make_os_error(last_error, "connect(" + text(to) + ")");
  return fd;
}

// One connection under way, and the requests waiting for its handshake.
struct Attempt {
  uint64_t id = 0;
  // Held so that the socket stays open (CAF closes it when the last
  // reference goes) while this actor may still close it.
  caf::io::scribe_ptr scribe;
  std::vector<caf::response_promise> waiting;
};

struct ConnectorState {
  std::map<Endpoint, Handshake> cached;
  std::map<Endpoint, Attempt> pending;
  uint64_t next_attempt = 1;
  std::shared_ptr<TransportGuard> guard;  // of the connections it dials
  std::shared_ptr<PeerTable> peers;       // learns who listens where
  static inline const char* name = "tessera.connector";
};

using Self = caf::stateful_actor<ConnectorState>;

// Ends the attempt for key if it is still attempt id, answering everyone who
// waits for it with result.
template <class... Ts>
void finish(Self* self, const Endpoint& key, uint64_t id, Ts&&... result) {
  auto it = self->state.pending.find(key);
  if (it == self->state.pending.end() || it->second.id != id)
    return;  // abandoned before
  auto attempt = std::move(it->second);
  self->state.pending.erase(it);
  release_connection(self->system(), std::move(attempt.scribe));
  for (auto& rp : attempt.waiting)
    rp.deliver(result...);
}

// Who listens at key proved to be, for attempt id; null on a plaintext node.
PrincipalPtr dialled_identity(Self* self, const Endpoint& key, uint64_t id) {
  auto it = self->state.pending.find(key);
  if (it == self->state.pending.end() || it->second.id != id)
    return nullptr;
  return connection_identity(it->second.scribe);
}

void start_attempt(Self* self, const Endpoint& key, caf::response_promise rp,
                   std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  auto fd = dial(key, deadline);
  if (!fd) {
    rp.deliver(fd.error());
    return;
  }
  auto& system = self->system();
  auto made = new_connection_scribe(system, *fd, self->state.guard, key.first);
  if (!made) {
    rp.deliver(make_error(Errc::connect_failed, text(key) + ": " + describe(made.error())));
    return;
  }
  auto scribe = std::move(*made);
  auto id = self->state.next_attempt++;
  self->state.pending.emplace(key, Attempt{id, scribe, {std::move(rp)}});
  auto basp = system.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  self->request(basp, caf::infinite, caf::connect_atom::value, std::move(scribe), key.second)
      .then(
          [self, key, id](caf::node_id& nid, caf::strong_actor_ptr& router,
                          std::set<std::string>& sigs) {
            // Whoever listens at the address dialled proved who it is: the
            // address is that identity's (PeerTable, sender binding).
            auto identity = dialled_identity(self, key, id);
            if (identity && self->state.peers)
              self->state.peers->bind_address_verified(Address{"", key.first, key.second}.node_id(),
                                                       identity);
            if (nid && router) {
              self->monitor(router);
              self->state.cached.emplace(key, Handshake{nid, router, sigs});
            }
            finish(self, key, id, nid, router, sigs);
          },
          [self, key, id](caf::error& err) {
            finish(self, key, id,
                   make_error(Errc::connect_failed, text(key) + ": " + describe(err)));
          });
  // The handshake has what the TCP connect left of the deadline.
  auto left =
      std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()),
               std::chrono::milliseconds(1));
  self->delayed_send(self, left, abandon_atom::value, key.first, key.second, id);
}

caf::behavior connector(Self* self, std::chrono::milliseconds timeout,
                        std::shared_ptr<TransportGuard> guard, std::shared_ptr<PeerTable> peers) {
  self->state.guard = std::move(guard);
  self->state.peers = std::move(peers);
  self->set_down_handler([self](caf::down_msg& down) {
    auto& cached = self->state.cached;
    for (auto it = cached.begin(); it != cached.end();)
      it = std::get<1>(it->second) == down.source ? cached.erase(it) : std::next(it);
  });
  return {
      [self, timeout](caf::connect_atom, std::string& host, uint16_t port)
          -> caf::result<caf::node_id, caf::strong_actor_ptr, std::set<std::string>> {
        Endpoint key{std::move(host), port};
        auto& st = self->state;
        if (auto it = st.cached.find(key); it != st.cached.end()) {
          auto& [nid, router, sigs] = it->second;
          return {nid, router, sigs};
        }
        auto rp = self->make_response_promise();
        if (auto it = st.pending.find(key); it != st.pending.end())
          it->second.waiting.push_back(std::move(rp));
        else
          start_attempt(self, key, std::move(rp), timeout);
        return caf::delegated<caf::node_id, caf::strong_actor_ptr, std::set<std::string>>{};
      },
      [self, timeout](abandon_atom, std::string& host, uint16_t port, uint64_t id) {
        Endpoint key{std::move(host), port};
        auto it = self->state.pending.find(key);
        if (it == self->state.pending.end() || it->second.id != id)
          return;  // done in time
        log().info("connector: no handshake from {} within {} ms; closing that connection",
                   text(key), timeout.count());
        // The BASP broker then answers its own handshake request with an
        // error nobody waits for any more.
        abandon_connection(self->system(), it->second.scribe);
        finish(self, key, id,
               make_error(Errc::timeout, "no handshake from " + text(key) + " within " +
                                             std::to_string(timeout.count()) + " ms"));
      },
  };
}

}  // namespace

caf::actor spawn_connector(caf::actor_system& system, std::chrono::milliseconds handshake_timeout,
                           std::shared_ptr<TransportGuard> guard,
                           std::shared_ptr<PeerTable> peers) {
  return system.spawn<caf::detached + caf::hidden>(connector, handshake_timeout, std::move(guard),
                                                   std::move(peers));
}

}  // namespace tessera
