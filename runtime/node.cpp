#include "runtime/node.hpp"

#include "runtime/actor.hpp"
#include "runtime/atoms.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/connector.hpp"
#include "runtime/log.hpp"
#include "runtime/process_launcher.hpp"
#include "runtime/simulation.hpp"

#include <caf/io/middleman.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <thread>

namespace tessera {

namespace {

// Relays sends made from outside any actor (Node::send) to other nodes, so
// they resolve, batch and fail exactly like an actor's own sends.
class Relay : public Actor {
 public:
  using Actor::Actor;
};

// The one actor a node publishes on its port: it turns names into handles.
caf::behavior router_behavior(caf::event_based_actor*, Node* node) {
  return {
      [node](lookup_atom, const std::string& name) -> caf::result<caf::strong_actor_ptr> {
        auto target = node->lookup_local(name);
        if (!target)
          return make_error(Errc::unknown_actor, name + "@" + node->id());
        return caf::actor_cast<caf::strong_actor_ptr>(target);
      },
  };
}

constexpr const char* relay_name = "tessera.relay";

using sweep_atom = caf::atom_constant<caf::atom("tssweep")>;

// Asks the listener every period to close connections idle for too long.
caf::behavior sweeper_behavior(caf::event_based_actor* self, GuardedListener listener,
                               std::chrono::milliseconds period) {
  self->delayed_send(self, period, sweep_atom::value);
  return {
      [self, listener, period](sweep_atom) {
        listener.sweep(self->system());
        self->delayed_send(self, period, sweep_atom::value);
      },
  };
}

TransportLimits limits_of(const NodeConfig& c) {
  return TransportLimits{c.frame_bytes_max(), c.connections_max, c.connection_idle_timeout_ms,
                         c.write_buffer_frames_max * c.frame_bytes_max(), c.resolve_timeout_ms};
}

}  // namespace

bool is_wildcard_host(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

std::string default_advertise_host(const std::string& host, std::string* warning) {
  if (!is_wildcard_host(host))
    return host;
  char name[HOST_NAME_MAX + 1] = {};
  std::string chosen;
  addrinfo hints{};
  hints.ai_family = host == "::" ? AF_UNSPEC : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::gethostname(name, sizeof(name) - 1) == 0 &&
      ::getaddrinfo(name, nullptr, &hints, &found) == 0) {
    // IPv4 first: a dual-stack wildcard listener takes both.
    for (int family : {AF_INET, AF_INET6}) {
      for (auto* a = found; a && chosen.empty(); a = a->ai_next) {
        if (a->ai_family != family)
          continue;
        char text[INET6_ADDRSTRLEN] = {};
        const void* in =
            family == AF_INET
                ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                : &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr;
        if (::inet_ntop(family, in, text, sizeof(text)))
          chosen = text;
      }
    }
    ::freeaddrinfo(found);
  }
  if (chosen.empty()) {
    if (warning)
      *warning = "listening on " + (host.empty() ? std::string("0.0.0.0") : host) +
                 " and this machine's name '" + name +
                 "' does not resolve: advertising 127.0.0.1, which other machines cannot "
                 "reach; pass --advertise HOST:PORT";
    return "127.0.0.1";
  }
  bool loopback = chosen.rfind("127.", 0) == 0 || chosen == "::1";
  if (loopback && warning)
    *warning = "listening on " + (host.empty() ? std::string("0.0.0.0") : host) +
               " and advertising " + chosen + " (this machine's name '" + name +
               "' resolves to it), which other machines cannot reach; pass --advertise HOST:PORT";
  return chosen;
}

void configure_actor_system(caf::actor_system_config& cfg, const NodeConfig& config) {
  cfg.add_message_type<Address>("tessera.address");
  cfg.add_message_type<Envelope>("tessera.envelope");
  cfg.add_message_type<EnvelopeBatch>("tessera.envelope_batch");
  cfg.add_error_category(error_category,
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = to_string(static_cast<Errc>(code));
                           if (ctx.match_elements<std::string>())
                             out += ": " + ctx.get_as<std::string>(0);
                           return out;
                         });
  if (config.scheduler_threads > 0)
    cfg.set("scheduler.max-threads", config.scheduler_threads);
  if (config.low_latency)
    cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  if (config.idle_worker_sleep_ms.count() > 0)
    cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{config.idle_worker_sleep_ms});
  if (config.heartbeat_interval_ms.count() > 0)
    cfg.set("middleman.heartbeat-interval", caf::timespan{config.heartbeat_interval_ms});
}

expected<std::unique_ptr<Node>> Node::start(NodeConfig config) {
  std::shared_ptr<const TlsContext> tls;
  if (config.tls.enabled()) {
    auto loaded = TlsContext::load(config.tls);
    if (!loaded)
      return loaded.error();
    tls = std::move(*loaded);
  }
  auto cfg = std::make_unique<caf::actor_system_config>();
  configure_actor_system(*cfg, config);
  cfg->load<caf::io::middleman>();
  auto system = std::make_unique<caf::actor_system>(*cfg);
  std::unique_ptr<Node> node(new Node(std::move(config), std::move(system), nullptr, nullptr));
  node->system_config_ = std::move(cfg);
  node->peers_ = std::make_shared<PeerTable>(std::move(tls));
  if (auto ok = node->listen(); !ok)
    return ok.error();
  return node;
}

Node::Node(NodeConfig config, std::unique_ptr<caf::actor_system> system, Simulation* sim,
           caf::actor_system* shared_system)
    : config_(std::move(config)),
      owned_system_(std::move(system)),
      system_(owned_system_ ? owned_system_.get() : shared_system),
      sim_(sim),
      clock_(config_.clock ? config_.clock : Clock::make_real()),
      peers_(std::make_shared<PeerTable>(nullptr)) {
  host_ = config_.advertise_host.empty() ? config_.host : config_.advertise_host;
  port_ = config_.advertise_port != 0 ? config_.advertise_port : config_.port;
  bound_port_ = config_.port;
}

// Settles the advertised address once the port is bound.
void Node::advertise() {
  if (config_.advertise_host.empty()) {
    std::string warning;
    host_ = default_advertise_host(config_.host, &warning);
    if (!warning.empty())
      log().warn("node: {}", warning);
  }
  port_ = config_.advertise_port != 0 ? config_.advertise_port : bound_port_;
}

expected<void> Node::listen() {
  router_ = system_->spawn(router_behavior, this);
  if (!sim_) {
    auto listener =
        listen_guarded(*system_, router_, config_.host, config_.port, limits_of(config_), peers_);
    if (!listener) {
      caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
      return listener.error();
    }
    listener_ = std::move(*listener);
    bound_port_ = listener_.port;
    // The sweep closes idle connections and, over TLS, handshakes that do
    // not end within the resolve timeout.
    auto period = std::chrono::milliseconds::max();
    if (auto idle = config_.connection_idle_timeout_ms; idle.count() > 0)
      period = idle / 4;
    if (secure() && config_.resolve_timeout_ms.count() > 0)
      period = std::min(period, config_.resolve_timeout_ms / 2);
    if (period != std::chrono::milliseconds::max())
      sweeper_ = system_->spawn(sweeper_behavior, listener_,
                                std::max(period, std::chrono::milliseconds(10)));
    connector_ = spawn_connector(*system_, config_.resolve_timeout_ms, listener_.guard, peers_);
  }
  advertise();
  if (auto relay = spawn<Relay>(relay_name); !relay)
    return relay.error();
  log().debug("node {} started", id());
  return caf::unit;
}

Node::~Node() {
  stop();
}

std::string Node::id() const {
  return address_of("").node_id();
}

void Node::stop() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (stopped_)
      return;
    stopped_ = true;
  }
  // The port closes with the actor system below. An explicit unpublish()
  // here raced CAF's own shutdown and leaked the listener now and then
  // (LeakSanitizer: default_multiplexer::new_doorman).
  kill_all();
  if (sim_)
    return;  // the simulation owns the actor system and runs the exits
  system_->await_all_actors_done();
  // A detached actor's thread ends once the last handle to it goes: the actor
  // system's destructor below waits for that thread.
  connector_ = caf::actor{};
  // Kills and reaps leftover processes while actors can still hear; the
  // object itself lives on (refusing work) until ~Node, because an actor's
  // exit hooks may still run and call it after await_all_actors_done().
  if (pool_)
    pool_->shutdown();
  if (launcher_)
    launcher_->shutdown();
  owned_system_.reset();
  system_config_.reset();
  log().debug("node stopped");
}

// Ends every actor of the node, in name order so a simulation stays repeatable.
void Node::kill_all() {
  std::vector<std::pair<std::string, caf::actor>> victims;
  {
    std::lock_guard<std::mutex> guard(mu_);
    for (auto& [name, handle] : actors_)
      if (handle)
        victims.emplace_back(name, handle);
  }
  std::sort(victims.begin(), victims.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, handle] : victims)
    caf::anon_send_exit(handle, caf::exit_reason::kill);
  if (router_)
    caf::anon_send_exit(router_, caf::exit_reason::kill);
  if (sweeper_)
    caf::anon_send_exit(sweeper_, caf::exit_reason::kill);
  if (connector_)
    caf::anon_send_exit(connector_, caf::exit_reason::kill);
}

caf::error Node::reserve(const std::string& name) {
  if (!valid_actor_name(name))
    return make_error(Errc::invalid_argument, "bad actor name '" + name + "'");
  std::lock_guard<std::mutex> guard(mu_);
  if (stopped_)
    return make_error(Errc::stopped, "node " + id() + " is stopped");
  if (!actors_.emplace(name, caf::actor{}).second)
    return make_error(Errc::name_taken, name + "@" + id());
  return caf::none;
}

void Node::bind(const std::string& name, caf::actor handle) {
  std::lock_guard<std::mutex> guard(mu_);
  if (stopped_) {
    // Reserved before stop() began but constructed after it took its list of
    // victims: end it here, or stop() would wait for it forever.
    caf::anon_send_exit(handle, caf::exit_reason::kill);
    actors_.erase(name);
    return;
  }
  actors_[name] = std::move(handle);
}

void Node::unbind(const std::string& name, const caf::actor_addr& who) {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = actors_.find(name);
  if (it != actors_.end() && it->second && it->second.address() == who)
    actors_.erase(it);
}

caf::actor Node::lookup_local(const std::string& name) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = actors_.find(name);
  return it != actors_.end() ? it->second : caf::actor{};
}

void Node::send(const Address& to, const Outgoing& msg) {
  send_envelope(Envelope{msg.type_id, Address{}, to, 0, 0, 0, msg.payload});
}

void Node::send_envelope(Envelope env) {
  // The runtime fills a sender in this process: an envelope may name no
  // sender or one of this node's actors, never another node's.
  if (!env.sender.empty() && !is_local(env.sender)) {
    stats_.reject(Reject::forged_sender, env, env.receiver,
                  "sent from this node as another node's");
    return;
  }
  env.principal = nullptr;
  bool local = is_local(env.receiver);
  auto target = lookup_local(local ? env.receiver.name : relay_name);
  if (!target) {
    stats_.reject(Reject::unknown_receiver, env, env.receiver);
    return;
  }
  env.counted = true;
  inflight_.fetch_add(1, std::memory_order_relaxed);
  if (local) {
    stats_.for_type(env.type_id).sent.fetch_add(1, std::memory_order_relaxed);
    caf::anon_send(target, std::move(env));
  } else {
    caf::anon_send(target, relay_atom::value, std::move(env));
  }
}

const TransportCounters& Node::transport_counters() const {
  static const TransportCounters none;
  return listener_.guard ? listener_.counters() : none;
}

ProcessLauncher& Node::launcher() {
  std::call_once(launcher_once_, [this] { launcher_ = std::make_unique<ProcessLauncher>(); });
  return *launcher_;
}

BlockingPool& Node::blocking_pool() {
  std::call_once(pool_once_, [this] { pool_ = std::make_unique<BlockingPool>(); });
  return *pool_;
}

bool Node::settle(std::chrono::milliseconds timeout) {
  if (sim_) {
    sim_->run();
    return true;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (inflight_.load(std::memory_order_acquire) != 0) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace tessera
