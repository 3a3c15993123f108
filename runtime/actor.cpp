#include "runtime/actor.hpp"

#include "runtime/atoms.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/log.hpp"
#include "runtime/simulation.hpp"

#include <caf/atom.hpp>

#include <algorithm>
#include <cstring>

namespace tessera {

using base = caf::event_based_actor;

namespace {

// Runs fn; what it threw, if anything, as text.
std::optional<std::string> catch_all(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  } catch (const kj::Exception& e) {
    return e.getDescription().cStr();
  } catch (...) {
    return "unknown exception";
  }
  return std::nullopt;
}

}  // namespace

Actor::Actor(caf::actor_config& cfg, ActorInit init)
    : base(cfg), node_(init.node), address_(node_->address_of(init.name)) {
  node_->bind(init.name, caf::actor_cast<caf::actor>(caf::strong_actor_ptr{ctrl()}));
  attach_functor(
      [node = node_, name = init.name, who = base::address()] { node->unbind(name, who); });
}

Actor::~Actor() = default;

caf::behavior Actor::make_behavior() {
  set_down_handler([this](caf::down_msg& msg) {
    on_down(msg);
    flush();
  });
  set_default_handler(caf::drop);
  run_guarded("on_start", [this] { on_start(); });
  flush();
  node_->inflight().fetch_sub(1, std::memory_order_relaxed);  // counted by Node::spawn
  auto done = [this](bool counted) {
    flush();
    if (counted)
      node_->inflight().fetch_sub(1, std::memory_order_relaxed);
  };
  return {
      // Mutable: CAF hands over the message it holds alone (one from the
      // network always), and delivery records the sender's principal in it.
      [this, done](Envelope& env) {
        deliver(env);
        done(env.counted);
      },
      [this, done](EnvelopeBatch& batch) {
        on_batch(batch);
        done(batch.counted);
      },
      // The rest are the runtime's own messages. They only ever come from
      // this process (the clock, the launcher, the node, the actor itself);
      // one from another node is a forgery and is dropped.
      [this, done](const TimerFired& t) {
        bool ours = internal();  // a forgery was never counted in flight
        if (ours)
          on_timer(t);
        done(ours);
      },
      [this, done](relay_atom, Envelope& env) {
        bool counted = env.counted;
        env.counted = false;
        if (internal())
          route(std::move(env));
        done(counted);
      },
      [this, done](deferred_atom) {
        bool ours = internal();
        if (ours)
          run_deferred();
        done(ours);
      },
      [this, done](exited_atom, int pid, int exit_code, int term_signal) {
        if (internal())
          on_process_exit(ProcessExit{pid, exit_code, term_signal});
        done(false);
      },
      [this, done](blocking_atom, uint64_t id) {
        if (internal())
          on_blocking_done(id);
        done(false);
      },
      [this, done](inbox_atom, uint64_t id) {
        if (internal())
          drain_inbox(id);
        done(false);
      },
  };
}

bool Actor::internal() {
  auto src = current_sender();
  if (!src || src->node() == system().node())
    return true;
  node_->stats().reject(Reject::malformed, Envelope{}, address_,
                        "runtime-internal message from another node");
  return false;
}

void Actor::on_process_exit(const ProcessExit& exit) {
  auto it = processes_.find(exit.pid);
  if (it == processes_.end())
    return;
  auto fn = std::move(it->second);
  processes_.erase(it);
  run_guarded("process exit callback", [&] { fn(exit); });
}

void Actor::drain_inbox(uint64_t id) {
  auto it = inboxes_.find(id);
  if (it == inboxes_.end())
    return;
  auto inbox = it->second;  // an item may end the actor, and its inboxes
  for (auto& fn : inbox->take())
    run_guarded("inbox item", fn);
}

std::shared_ptr<Inbox> Actor::make_inbox(size_t capacity_max) {
  auto id = next_blocking_++;
  auto inbox =
      std::make_shared<Inbox>(caf::weak_actor_ptr{ctrl()}, node_->simulation(), id, capacity_max);
  inboxes_.emplace(id, inbox);
  return inbox;
}

void Actor::on_blocking_done(uint64_t id) {
  auto it = blocking_.find(id);
  if (it == blocking_.end())
    return;
  auto slot = std::move(it->second);
  blocking_.erase(it);
  if (*slot)
    run_guarded("blocking work continuation", *slot);
}

// Callbacks that are not message handlers (on_start, timers, deferred work,
// request and loss callbacks) get the same protection: a throw is logged and
// the actor goes on.
void Actor::run_guarded(const char* what, const std::function<void()>& fn) {
  if (auto error = catch_all(fn))
    log().error("{}: {} threw: {}", address_.to_string(), what, *error);
}

// Handles to other actors (peers, outboxes) and closures (handlers, pending
// requests, timers) may refer back to this actor; dropping them when it exits
// breaks those cycles so the actor's memory is freed.
void Actor::on_exit() {
  on_stopping();
  for (auto& [id, inbox] : inboxes_)
    inbox->close();
  inboxes_.clear();
  for (auto& [id, timer] : timers_)
    node_->clock().cancel(timer.key);
  handlers_.clear();
  on_lost_ = nullptr;
  peers_.clear();
  peer_of_.clear();
  resolving_.clear();
  outboxes_.clear();
  timers_.clear();
  pending_.clear();
  processes_.clear();
  deferred_.clear();
}

void Actor::register_handler(uint64_t type_id, std::string type_name, Handler h) {
  node_->stats().name_type(type_id, std::move(type_name));
  handlers_[type_id] = std::move(h);
}

TypeCounters& Actor::counters(uint64_t type_id) {
  auto it = counters_.find(type_id);
  if (it == counters_.end())
    it = counters_.emplace(type_id, &node_->stats().for_type(type_id)).first;
  return *it->second;
}

// -- receiving ---------------------------------------------------------------

void Actor::on_batch(EnvelopeBatch& batch) {
  for (auto& env : batch.items)
    deliver(env);
}

// A secure node's sender binding (peers.hpp): an envelope from another node
// must name a sender its connection's identity may speak for. Answers are
// cached for the last sender, until a binding changes.
bool Actor::admit(Envelope& env) {
  auto& peers = node_->peers();
  if (!peers.secure())
    return true;
  auto src = current_sender();
  if (!src || src->node() == system().node()) {
    env.principal = peers.own();  // the runtime itself filled the sender
    return true;
  }
  auto generation = peers.generation();
  if (admitted_.generation == generation && admitted_.node == src->node() &&
      admitted_.sender == env.sender) {
    env.principal = admitted_.principal;
    return true;
  }
  auto admitted = peers.admit(src->node(), env.sender, node_->id());
  if (!admitted) {
    node_->stats().reject(Reject::forged_sender, env, address_, describe(admitted.error()));
    return false;
  }
  admitted_ = Admitted{generation, src->node(), env.sender, *admitted};
  env.principal = std::move(*admitted);
  return true;
}

bool Actor::sender_in_role(std::initializer_list<std::string_view> roles, std::string* why) const {
  if (!node_->secure())
    return true;
  const auto* who = current_principal_;
  const auto& own = node_->peers().own();
  if (who && own && same_principal(*who, *own))
    return true;
  for (auto role : roles)
    if (who && who->role == role)
      return true;
  if (why) {
    *why = (who ? who->to_string() : std::string("an unauthenticated sender")) + " is not a";
    const char* sep = " ";
    for (auto role : roles) {
      *why += sep + std::string(role);
      sep = " or ";
    }
    if (roles.size() == 0)
      *why += " part of this node";
  }
  return false;
}

void Actor::deliver(Envelope& env) {
  if (!admit(env))
    return;
  if (env.filtered || node_->filters().empty()) {
    accept(env);
    return;
  }
  auto action = node_->filters().evaluate(env);
  switch (action.kind) {
    case FilterAction::pass:
      accept(env);
      break;
    case FilterAction::drop:
      break;
    case FilterAction::delay: {
      Envelope later = env;
      later.filtered = true;
      later.counted = false;
      after(action.delay_by, [this, later] { accept(later); });
      break;
    }
    case FilterAction::duplicate:
      for (uint32_t i = 0; i < action.copies; ++i)
        accept(env);
      break;
  }
}

std::optional<Errc> Actor::check_payload(const Envelope& env) {
  if (env.reply_to != 0 && env.error_code != 0)
    return std::nullopt;  // an error reply carries no payload
  auto size = env.payload.size_bytes();
  Reject reason;
  if (size > node_->config().message_bytes_max || !env.payload.materialised())
    reason = Reject::oversized;
  else if (size == 0 || size % sizeof(capnp::word) != 0)
    reason = Reject::truncated;
  else
    return std::nullopt;
  node_->stats().reject(reason, env, address_);
  auto code = reason == Reject::oversized ? Errc::oversized : Errc::truncated;
  if (env.request_id != 0)
    reply_error(env, code);
  return code;
}

uint64_t Actor::read_limit_words(const Envelope& env) const {
  const auto& c = node_->config();
  uint64_t words = env.payload.size_bytes() / sizeof(capnp::word);
  uint64_t per_word = std::max<uint64_t>(1, c.traversal_per_payload_word);
  uint64_t scaled =
      words > c.traversal_limit_words / per_word ? c.traversal_limit_words : words * per_word;
  return std::min(c.traversal_limit_words, std::max(c.traversal_floor_words, scaled));
}

void Actor::report_decode_failure(const Envelope& env, const char* what) {
  // Cap'n Proto reports both its traversal and nesting limits as "limit"
  // failures; anything else is a malformed message.
  bool limit = std::strstr(what, "traversal limit") || std::strstr(what, "deeply-nested");
  auto reason = limit ? Reject::traversal_limit : Reject::malformed;
  node_->stats().reject(reason, env, address_, what);
  if (env.request_id != 0 && env.reply_to == 0)
    reply_error(env, limit ? Errc::traversal_limit : Errc::malformed);
}

void Actor::accept(const Envelope& env) {
  if (!env.sender.empty() && (!valid_actor_name(env.sender.name) || env.sender.host.empty() ||
                              env.sender.host.size() > 255)) {
    node_->stats().reject(Reject::malformed, env, address_, "bad sender address");
    return;
  }
  learn_sender(env);
  if (auto bad = check_payload(env)) {
    // A reply that cannot be read still ends its request, with the reason.
    if (env.reply_to != 0)
      fail_request(env.reply_to, env.sender,
                   make_error(*bad, "reply from " + env.sender.to_string()));
    return;
  }
  // Handlers ask sender_principal() who sent what they handle.
  struct Current {
    const PeerIdentity*& slot;
    const PeerIdentity* before;
    ~Current() { slot = before; }  // a handler may redeliver: restore, not clear
  } current{current_principal_, current_principal_};
  current_principal_ = env.principal.get();
  if (env.reply_to != 0) {
    accept_reply(env);
    return;
  }
  auto it = handlers_.find(env.type_id);
  if (it == handlers_.end()) {
    node_->stats().reject(Reject::unhandled_type, env, address_);
    if (env.request_id != 0)
      reply_error(env, Errc::unhandled_type);
    return;
  }
  guarded(env, [&] {
    if (it->second(env))
      counters(env.type_id).received.fetch_add(1, std::memory_order_relaxed);
  });
}

// A handler that throws (a Cap'n Proto read past a limit, a bug) costs the
// message, not the actor: it is counted and logged like any rejection.
void Actor::redeliver(const Envelope& env) {
  auto it = handlers_.find(env.type_id);
  if (it == handlers_.end())
    return;
  auto* before = std::exchange(current_principal_, env.principal.get());
  guarded(env, [&] { it->second(env); });
  current_principal_ = before;
}

void Actor::guarded(const Envelope& env, const std::function<void()>& fn) {
  if (auto what = catch_all(fn))
    node_->stats().reject(Reject::handler_error, env, address_, *what);
}

void Actor::accept_reply(const Envelope& env) {
  auto it = pending_.find(env.reply_to);
  if (it == pending_.end() || it->second.target != env.sender) {
    log().debug("{}: dropping reply {} from {} (late or unexpected)", address_.to_string(),
                env.reply_to, env.sender.to_string());
    return;
  }
  auto pending = std::move(it->second);
  pending_.erase(it);
  cancel(pending.timer);
  if (env.error_code != 0) {
    auto err =
        make_error(static_cast<Errc>(env.error_code), "reported by " + env.sender.to_string());
    run_guarded("request error callback", [&] { pending.on_error(err); });
    return;
  }
  counters(env.type_id).received.fetch_add(1, std::memory_order_relaxed);
  guarded(env, [&] { pending.on_reply(env); });
}

// Remembers the handle a remote sender's message came from, so replies travel
// back over the same connection without a lookup.
void Actor::learn_sender(const Envelope& env) {
  // Over TLS a sender is learned only once admit() bound it to its
  // connection; a reply to it then travels that connection.
  if (env.sender.empty() || node_->is_local(env.sender) || peers_.count(env.sender))
    return;
  if (peers_.size() >= learned_peers_max)
    return;  // replies to further new senders are resolved by address instead
  if (auto src = current_sender())
    on_resolved(env.sender, src);
}

// -- sending -----------------------------------------------------------------

void Actor::send(const Address& to, const Outgoing& msg) {
  route(Envelope{msg.type_id, address_, to, 0, 0, 0, msg.payload});
}

void Actor::route(Envelope env) {
  counters(env.type_id).sent.fetch_add(1, std::memory_order_relaxed);
  if (node_->is_local(env.receiver)) {
    auto target = node_->lookup_local(env.receiver.name);
    if (!target) {
      node_->stats().reject(Reject::unknown_receiver, env, env.receiver);
      if (env.request_id != 0)
        fail_request_soon(env.request_id,
                          make_error(Errc::unknown_actor, env.receiver.to_string()));
      return;
    }
    add_to_outbox(target, true, std::move(env));
    return;
  }
  // A peer closes a connection that carries a frame beyond its limit, which
  // would cut off every actor using it: refuse an oversized message here.
  if (env.payload.size_bytes() > node_->config().message_bytes_max) {
    node_->stats().reject(Reject::oversized, env, env.receiver, "not sent");
    if (env.request_id != 0)
      fail_request_soon(env.request_id,
                        make_error(Errc::oversized, "request to " + env.receiver.to_string()));
    return;
  }
  if (auto it = peers_.find(env.receiver); it != peers_.end()) {
    add_to_outbox(it->second, false, std::move(env));
    return;
  }
  auto [it, first] = resolving_.try_emplace(env.receiver);
  if (it->second.queued.size() >= node_->config().pending_per_peer_max) {
    node_->stats().reject(Reject::undeliverable, env, env.receiver, "too many queued");
    return;
  }
  Address peer = env.receiver;
  it->second.queued.push_back(std::move(env));
  if (first)
    resolve(peer);
}

// Runs a request's error callback after the current handler, as if the
// failure had come back from elsewhere.
void Actor::fail_request_soon(uint64_t request_id, caf::error why) {
  defer([this, request_id, why = std::move(why)] {
    auto it = pending_.find(request_id);
    if (it == pending_.end())
      return;
    auto p = std::move(it->second);
    pending_.erase(it);
    cancel(p.timer);
    run_guarded("request error callback", [&] { p.on_error(why); });
  });
}

void Actor::add_to_outbox(const caf::actor& target, bool local, Envelope env) {
  auto box = std::find_if(outboxes_.begin(), outboxes_.end(),
                          [&](const Outbox& b) { return b.target == target; });
  if (box == outboxes_.end()) {
    outboxes_.push_back(Outbox{target, local, {}, 0});
    box = outboxes_.end() - 1;
  }
  // A batch stays within one message's size (plus the envelopes' own
  // overhead, NodeConfig::frame_overhead_bytes), so its frame is never
  // refused by the receiving node.
  constexpr size_t envelope_overhead_bytes = 64;
  size_t bytes = env.payload.size_bytes() + env.sender.name.size() + env.sender.host.size() +
                 env.receiver.name.size() + env.receiver.host.size() + envelope_overhead_bytes;
  if (!box->items.empty() && box->bytes + bytes > node_->config().message_bytes_max)
    flush_one(*box);
  box->items.push_back(std::move(env));
  box->bytes += bytes;
  if (box->items.size() >= node_->config().batch_envelopes_max)
    flush_one(*box);
}

// Sends what this activation queued: one envelope alone, more as one batch per
// receiving actor, so a burst costs one mailbox enqueue (in-process) or one
// network write (across processes) instead of one per message.
void Actor::flush() {
  for (auto& box : outboxes_)
    flush_one(box);
  outboxes_.clear();
}

void Actor::flush_one(Outbox& box) {
  if (box.items.empty())
    return;
  if (box.local)
    node_->inflight().fetch_add(1, std::memory_order_relaxed);
  if (box.items.size() == 1) {
    box.items.front().counted = box.local;
    base::send(box.target, std::move(box.items.front()));
  } else {
    base::send(box.target, EnvelopeBatch{std::move(box.items), box.local});
  }
  box.items.clear();
  box.bytes = 0;
}

void Actor::resolve(const Address& peer) {
  resolving_[peer].timer = after(node_->config().resolve_timeout_ms, [this, peer] {
    on_unreachable(peer, make_error(Errc::timeout, "resolving " + peer.to_string()));
  });
  if (auto* sim = node_->simulation()) {
    auto target = sim->lookup(peer);
    defer([this, peer, target] {
      if (target)
        on_resolved(peer, caf::actor_cast<caf::strong_actor_ptr>(target));
      else
        on_unreachable(peer, make_error(Errc::unknown_actor, peer.to_string()));
    });
    return;
  }
  // Through the node's connector, not CAF's middleman actor: a connection
  // attempt stuck in its handshake is abandoned after resolve_timeout_ms, so
  // that the retry of a resolve that timed out opens a new connection instead
  // of waiting on the old attempt for ever (connector.hpp).
  base::request(node_->connector(), caf::infinite, caf::connect_atom::value, peer.host, peer.port)
      .then(
          [this, peer](const caf::node_id&, caf::strong_actor_ptr& router,
                       const std::set<std::string>&) {
            if (!router) {
              on_unreachable(peer, make_error(Errc::connect_failed, peer.node_id()));
              flush();
              return;
            }
            base::request(caf::actor_cast<caf::actor>(router), caf::infinite, lookup_atom::value,
                          peer.name)
                .then(
                    [this, peer](caf::strong_actor_ptr& target) {
                      on_resolved(peer, target);
                      flush();
                    },
                    [this, peer](caf::error& err) {
                      on_unreachable(peer, std::move(err));
                      flush();
                    });
          },
          [this, peer](caf::error& err) {
            on_unreachable(peer,
                           make_error(Errc::connect_failed, peer.node_id() + ": " + describe(err)));
            flush();
          });
}

void Actor::on_resolved(const Address& peer, const caf::strong_actor_ptr& target) {
  if (!target) {
    on_unreachable(peer, make_error(Errc::unknown_actor, peer.to_string()));
    return;
  }
  auto handle = caf::actor_cast<caf::actor>(target);
  remember_peer(peer, handle);
  auto it = resolving_.find(peer);
  if (it == resolving_.end())
    return;
  cancel(it->second.timer);
  auto queued = std::move(it->second.queued);
  resolving_.erase(it);
  for (auto& env : queued)
    add_to_outbox(handle, false, std::move(env));
}

void Actor::on_unreachable(const Address& peer, const caf::error& why) {
  auto it = resolving_.find(peer);
  if (it == resolving_.end())
    return;  // resolved meanwhile, or already failed
  cancel(it->second.timer);
  for (auto& env : it->second.queued)
    node_->stats().reject(Reject::undeliverable, env, peer, describe(why));
  resolving_.erase(it);
  fail_requests_to(peer, why);
  notify_lost(peer, why);
}

void Actor::reply_envelope(const Envelope& request, const Outgoing& msg) {
  if (request.sender.empty() || request.request_id == 0)
    return;  // nobody waits for this reply
  route(Envelope{msg.type_id, address_, request.sender, 0, request.request_id, 0, msg.payload});
}

void Actor::reply_error(const Envelope& request, Errc code) {
  if (request.sender.empty())
    return;
  route(Envelope{request.type_id, address_, request.sender, 0, request.request_id,
                 static_cast<uint8_t>(code), Payload{}});
}

void Actor::add_request(const Address& to, const Outgoing& msg, Duration timeout, Pending pending) {
  auto id = next_request_++;
  pending.timer = after(timeout, [this, id] {
    auto it = pending_.find(id);
    if (it == pending_.end())
      return;
    auto p = std::move(it->second);
    pending_.erase(it);
    run_guarded("request error callback", [&] {
      p.on_error(make_error(Errc::timeout, "no reply from " + p.target.to_string()));
    });
  });
  pending_.emplace(id, std::move(pending));
  // A request watches its target so that losing it fails the request at once
  // instead of at the timeout. Remote peers are monitored once resolved.
  if (node_->is_local(to) && !peers_.count(to))
    if (auto target = node_->lookup_local(to.name))
      remember_peer(to, target);
  route(Envelope{msg.type_id, address_, to, id, 0, 0, msg.payload});
}

void Actor::fail_request(uint64_t id, const Address& from, const caf::error& why) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.target != from)
    return;
  auto p = std::move(it->second);
  pending_.erase(it);
  cancel(p.timer);
  run_guarded("request error callback", [&] { p.on_error(why); });
}

void Actor::fail_requests_to(const Address& peer, const caf::error& why) {
  std::vector<Pending> failed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.target == peer) {
      failed.push_back(std::move(it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& p : failed) {
    cancel(p.timer);
    run_guarded("request error callback", [&] { p.on_error(why); });
  }
}

// -- peers ---------------------------------------------------------------------

void Actor::watch(const Address& peer) {
  watched_.insert(peer);
  if (peers_.count(peer))
    return;
  if (node_->is_local(peer)) {
    auto target = node_->lookup_local(peer.name);
    if (!target) {
      defer([this, peer] { notify_lost(peer, make_error(Errc::unknown_actor, peer.to_string())); });
      return;
    }
    remember_peer(peer, target);
    return;
  }
  if (resolving_.try_emplace(peer).second)
    resolve(peer);
}

void Actor::unwatch(const Address& peer) {
  watched_.erase(peer);
}

// Caches the handle for peer and monitors it, once per handle: one actor may
// be known under several addresses ("localhost" and "127.0.0.1"), and losing
// it must clear every one of them.
void Actor::remember_peer(const Address& peer, const caf::actor& handle) {
  if (!peers_.emplace(peer, handle).second)
    return;
  auto& aliases = peer_of_[handle.address()];
  if (aliases.empty())
    monitor(handle);
  aliases.push_back(peer);
}

void Actor::on_down(const caf::down_msg& msg) {
  auto it = peer_of_.find(msg.source);
  if (it == peer_of_.end())
    return;
  auto aliases = std::move(it->second);
  peer_of_.erase(it);
  for (auto& peer : aliases) {
    peers_.erase(peer);
    auto why =
        make_error(Errc::peer_lost, peer.to_string() + " (" + caf::to_string(msg.reason) + ")");
    fail_requests_to(peer, why);
    notify_lost(peer, why);
  }
}

// Watching is one-shot, as with libprocess link/exited: the watcher hears of
// a loss once and watches again if it reconnects.
void Actor::notify_lost(const Address& peer, const caf::error& why) {
  if (watched_.erase(peer) == 0)
    return;
  log().debug("{}: lost {}: {}", address_.to_string(), peer.to_string(), describe(why));
  if (on_lost_) {
    auto fn = on_lost_;  // the callback may replace itself
    run_guarded("on_lost", [&] { fn(peer, why); });
  }
}

// -- time and deferred work ----------------------------------------------------

Actor::TimerId Actor::after(Duration delay, std::function<void()> fn) {
  auto id = next_timer_++;
  auto key = node_->clock().schedule(delay, caf::strong_actor_ptr{ctrl()}, id, &node_->inflight());
  timers_.emplace(id, Timer{key, std::move(fn)});
  return id;
}

void Actor::cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end())
    return;
  node_->clock().cancel(it->second.key);
  timers_.erase(it);
}

void Actor::on_timer(const TimerFired& t) {
  auto it = timers_.find(t.id);
  if (it == timers_.end())
    return;  // cancelled
  auto fn = std::move(it->second.fn);
  timers_.erase(it);
  run_guarded("timer", fn);
}

void Actor::defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
  if (deferred_.size() == 1) {
    node_->inflight().fetch_add(1, std::memory_order_relaxed);
    base::send(caf::actor_cast<caf::actor>(caf::strong_actor_ptr{ctrl()}), deferred_atom::value);
  }
}

void Actor::run_deferred() {
  auto work = std::move(deferred_);
  deferred_.clear();
  for (auto& fn : work)
    run_guarded("deferred work", fn);
}

// -- processes -----------------------------------------------------------------

// The launcher's callback that brings a process's exit to this actor.
ProcessLauncher::ExitCallback Actor::exit_forwarder() {
  auto self = caf::actor_cast<caf::actor>(caf::strong_actor_ptr{ctrl()});
  auto* sim = node_->simulation();
  return [self, sim](const ProcessExit& e) {
    // The launcher's thread must not touch a simulation's scheduler: the
    // report waits there until the simulation is idle.
    if (sim)
      sim->post([self, e] {
        caf::anon_send(self, exited_atom::value, e.pid, e.exit_code, e.term_signal);
      });
    else
      caf::anon_send(self, exited_atom::value, e.pid, e.exit_code, e.term_signal);
  };
}

expected<int> Actor::start_process(const ProcessSpec& spec,
                                   std::function<void(const ProcessExit&)> on_exit) {
  auto pid = node_->launcher().spawn(spec, exit_forwarder());
  if (pid)
    processes_.emplace(*pid, std::move(on_exit));
  return pid;
}

expected<void> Actor::adopt_process(int pid, std::function<void(const ProcessExit&)> on_exit,
                                    uint64_t start_time) {
  // Registered first: the exit may be reported before adopt() returns.
  processes_.emplace(pid, std::move(on_exit));
  auto adopted = node_->launcher().adopt(pid, exit_forwarder(), start_time);
  if (!adopted)
    processes_.erase(pid);
  return adopted;
}

std::function<void()> Actor::continuation(std::function<void()> fn) {
  // Weak: a trigger kept by whoever calls back (a detector's waiters, a
  // writer's queue) must not keep the actor, and what it owns, alive.
  caf::weak_actor_ptr weak{ctrl()};
  auto* sim = node_->simulation();
  auto id = next_blocking_++;
  blocking_.emplace(id, std::make_shared<std::function<void()>>(std::move(fn)));
  return [weak, sim, id] {
    auto strong = weak.lock();
    if (!strong)
      return;  // the actor is gone, and fn with it
    auto self = caf::actor_cast<caf::actor>(strong);
    if (sim)
      sim->post([self, id] { caf::anon_send(self, blocking_atom::value, id); });
    else
      caf::anon_send(self, blocking_atom::value, id);
  };
}

bool Actor::blocking(std::function<std::function<void()>()> work) {
  return blocking(Work::general, std::move(work));
}

void Actor::kill_process(int pid, int signal, bool group, ErrorFn on_result) {
  if (!on_result) {
    node_->launcher().kill_async(pid, signal, group);
    return;
  }
  auto result = std::make_shared<caf::error>();
  auto done = continuation([result, fn = std::move(on_result)] { fn(*result); });
  node_->launcher().kill_async(pid, signal, group, [result, done](const caf::error& err) {
    *result = err;
    done();
  });
}

bool Actor::blocking(Work work_class, std::function<std::function<void()>()> work) {
  auto self = caf::actor_cast<caf::actor>(caf::strong_actor_ptr{ctrl()});
  auto* sim = node_->simulation();
  auto id = next_blocking_++;
  auto slot = std::make_shared<std::function<void()>>();
  auto name = address_.to_string();
  if (sim && sim->inline_blocking()) {
    // No pool thread: the work runs here and its continuation comes as a
    // message, in the simulation's seeded order (the chaos simulation).
    try {
      *slot = work();
    } catch (const std::exception& e) {
      log().error("{}: blocking work threw: {}", name, e.what());
    }
    blocking_.emplace(id, std::move(slot));
    caf::anon_send(self, blocking_atom::value, id);
    return true;
  }
  bool queued = node_->blocking_pool().submit(
      work_class, [self, sim, slot, id, name, work = std::move(work)] {
        try {
          *slot = work();
        } catch (const std::exception& e) {
          log().error("{}: blocking work threw: {}", name, e.what());
        } catch (...) {
          log().error("{}: blocking work threw", name);
        }
        if (sim)
          sim->post([self, id] { caf::anon_send(self, blocking_atom::value, id); });
        else
          caf::anon_send(self, blocking_atom::value, id);
      });
  if (queued)
    blocking_.emplace(id, std::move(slot));
  return queued;
}

}  // namespace tessera
