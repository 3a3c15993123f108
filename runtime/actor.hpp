#pragma once
// tessera::Actor: the base of every master, agent, framework and executor.
//
//   class Ponger : public tessera::Actor {
//    public:
//     Ponger(caf::actor_config& cfg, tessera::ActorInit init) : Actor(cfg, std::move(init)) {
//       on<wire::testing::Ping>([this](const Received<wire::testing::Ping>& m) { reply(m, ...); });
//     }
//   };
//   node.spawn<Ponger>("ponger");
//
// An actor declares one handler per Cap'n Proto message type (the libprocess
// install<M> idea, without macros). It sends to addresses, never to handles:
// send() and request() are the same call for an actor in this process and one
// on another node. Everything an actor needs from the outside world (time,
// peers, processes) comes through this class, so it never knows its deployment.
//
// Delivery contract: a payload is checked (size, word alignment, full Cap'n
// Proto validation under traversal and nesting limits) before any handler sees
// it. A message that fails, or has no handler, is counted per reason, logged
// once per (reason, type, sender), and dropped; the actor keeps serving.
//
// Threading: like every CAF actor, handlers run one at a time; no locks needed.

#include "runtime/blocking_pool.hpp"
#include "runtime/inbox.hpp"
#include "runtime/message.hpp"
#include "runtime/node.hpp"
#include "runtime/process_launcher.hpp"

#include <caf/event_based_actor.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

namespace tessera {

class Actor : public caf::event_based_actor {
 public:
  using LostFn = std::function<void(const Address&, const caf::error&)>;
  using ErrorFn = std::function<void(const caf::error&)>;
  using TimerId = uint64_t;

  Actor(caf::actor_config& cfg, ActorInit init);
  ~Actor() override;

  const Address& me() const { return address_; }
  Node& node() const { return *node_; }
  TimePoint now() const { return node_->clock().now(); }

 protected:
  // Called once the actor runs, before any message is handled.
  virtual void on_start() {}
  // Called once as the actor exits, before its handlers and timers are
  // dropped: release what holds a strong handle to this actor (a
  // continuation kept in shared state), or the cycle keeps it alive.
  virtual void on_stopping() {}

  // Registers the handler for messages of type T (replacing an earlier one).
  // A handler must not replace its own registration while it runs.
  template <class T, class F>
  void on(F handler);

  // Called when a watched address exits or becomes unreachable.
  void on_lost(LostFn fn) { on_lost_ = std::move(fn); }

  void send(const Address& to, const Outgoing& msg);

  // Sends msg and calls on_reply with the reply of type R, or on_error with
  // Errc::timeout (after timeout on the runtime clock), Errc::peer_lost, or the
  // error the receiver reported. Exactly one of the two is called.
  template <class R, class F>
  void request(const Address& to, const Outgoing& msg, Duration timeout, F on_reply,
               ErrorFn on_error);

  template <class T>
  void reply(const Received<T>& request, const Outgoing& msg) {
    reply_envelope(request.envelope(), msg);
  }
  // A reply sent after the handler returned (once blocking work is done):
  // keep a copy of request.envelope() and answer it with this.
  void reply_later(const Envelope& request, const Outgoing& msg) { reply_envelope(request, msg); }

  TimerId after(Duration delay, std::function<void()> fn);
  void cancel(TimerId id);

  // Runs fn after the current handler, as a message to self: callbacks never
  // run inside the call (send, watch) that caused them, and a long job can
  // yield to the mailbox between slices.
  void defer(std::function<void()> fn);

  void watch(const Address& peer);
  void unwatch(const Address& peer);

  // Starts a process through the node's launcher; on_exit runs on this actor.
  expected<int> start_process(const ProcessSpec& spec,
                              std::function<void(const ProcessExit&)> on_exit);

  // Watches a process this actor did not start (ProcessLauncher::adopt,
  // refused when start_time is given and the pid is no longer that
  // process); on_exit runs on this actor's thread as for start_process.
  expected<void> adopt_process(int pid, std::function<void(const ProcessExit&)> on_exit,
                               uint64_t start_time = 0);

  // Runs work on the node's BlockingPool and then the continuation it returns
  // on this actor's thread, like a handler (in a simulation: once it is
  // idle). work must not touch the actor's state; it captures copies. False,
  // and nothing runs, when the pool refuses (full or stopping). A throwing
  // work is logged and its continuation skipped.
  bool blocking(std::function<std::function<void()>()> work);
  // The same on the lane of one class of work (BlockingPool), so that slow
  // work of one class never delays another's.
  bool blocking(Work work_class, std::function<std::function<void()>()> work);

  // Sends signal to a process this actor's node started (group: its process
  // group) without waiting for the launcher's thread; on_result, if given,
  // runs on this actor's thread with the outcome (as ProcessLauncher::kill).
  void kill_process(int pid, int signal, bool group, ErrorFn on_result = {});

  // Registers fn to run on this actor's thread, like a handler, once the
  // returned trigger is called (from any thread, at most once; never calling
  // it leaves fn waiting until the actor ends). For callbacks of threads the
  // actor does not own (a writer thread's completion). The trigger holds the
  // actor weakly: it keeps nothing alive, and does nothing once the actor
  // is gone.
  std::function<void()> continuation(std::function<void()> fn);

  // An inbox other threads post work to, run here like a handler (see
  // runtime/inbox.hpp); at most capacity_max items wait. Closed when the
  // actor exits.
  std::shared_ptr<Inbox> make_inbox(size_t capacity_max);

  void stop() { quit(); }

  // Who the sender of the message being handled proved to be
  // (Envelope::principal): its certificate's identity, or this node's own for
  // a sender in this process. Null on a plaintext node, and outside a handler.
  const PeerIdentity* sender_principal() const { return current_principal_; }
  // Whether the sender of the message being handled may act in one of roles
  // ("master", "agent", "framework", "operator"): always on a plaintext node;
  // on a secure node when it is this node itself or its certificate names
  // one of roles. *why says why not.
  bool sender_in_role(std::initializer_list<std::string_view> roles,
                      std::string* why = nullptr) const;

  // Hands a message this actor held back (request.envelope() of a message
  // it could not serve yet) to its handler again, as if it arrived now.
  void redeliver(const Envelope& env);

 private:
  // Senders learned from incoming messages, at most; a peer inventing sender
  // addresses must not grow this actor's tables without bound.
  static constexpr size_t learned_peers_max = 65536;
  // Returns false when the payload did not decode (already counted).
  using Handler = std::function<bool(const Envelope&)>;
  struct Pending {
    Address target;
    TimerId timer = 0;
    std::function<void(const Envelope&)> on_reply;
    ErrorFn on_error;
  };
  struct Resolving {
    std::vector<Envelope> queued;
    TimerId timer = 0;
  };
  struct Outbox {
    caf::actor target;
    bool local;  // on this node: counted for settle()
    std::vector<Envelope> items;
    size_t bytes = 0;  // an estimate of the batch's size on the wire
  };

  caf::behavior make_behavior() override;
  void on_exit() override;
  void register_handler(uint64_t type_id, std::string type_name, Handler h);
  std::optional<Errc> check_payload(const Envelope& env);
  template <class T>
  bool decode_and_call(const Envelope& env, const std::function<void(const Received<T>&)>& fn);
  // The words env's message may name (NodeConfig::traversal_per_payload_word).
  uint64_t read_limit_words(const Envelope& env) const;
  void report_decode_failure(const Envelope& env, const char* what);

  // Receiving.
  void on_batch(EnvelopeBatch& batch);
  void deliver(Envelope& env);
  bool admit(Envelope& env);
  void accept(const Envelope& env);
  void accept_reply(const Envelope& env);
  void guarded(const Envelope& env, const std::function<void()>& fn);
  void run_guarded(const char* what, const std::function<void()>& fn);
  bool internal();
  void on_process_exit(const ProcessExit& exit);
  void on_blocking_done(uint64_t id);
  void drain_inbox(uint64_t id);
  ProcessLauncher::ExitCallback exit_forwarder();
  void learn_sender(const Envelope& env);

  // Sending.
  void route(Envelope env);
  void add_to_outbox(const caf::actor& target, bool local, Envelope env);
  void flush();
  void flush_one(Outbox& box);
  void resolve(const Address& peer);
  void on_resolved(const Address& peer, const caf::strong_actor_ptr& target);
  void on_unreachable(const Address& peer, const caf::error& why);
  void reply_envelope(const Envelope& request, const Outgoing& msg);
  void reply_error(const Envelope& request, Errc code);
  void add_request(const Address& to, const Outgoing& msg, Duration timeout, Pending pending);
  void fail_requests_to(const Address& peer, const caf::error& why);
  void fail_request_soon(uint64_t request_id, caf::error why);
  void fail_request(uint64_t id, const Address& from, const caf::error& why);

  // Peers.
  void on_down(const caf::down_msg& msg);
  void remember_peer(const Address& peer, const caf::actor& handle);
  void notify_lost(const Address& peer, const caf::error& why);
  void on_timer(const TimerFired& t);
  void run_deferred();
  TypeCounters& counters(uint64_t type_id);

  Node* node_;
  Address address_;
  std::unordered_map<uint64_t, Handler> handlers_;
  LostFn on_lost_;
  std::unordered_map<uint64_t, TypeCounters*> counters_;
  // Peers: resolved handles (local or proxies), each monitored.
  std::unordered_map<Address, caf::actor> peers_;
  std::map<caf::actor_addr, std::vector<Address>> peer_of_;  // handle -> its aliases
  std::unordered_map<Address, Resolving> resolving_;
  std::set<Address> watched_;
  // Outbound envelopes, flushed after each handler, in order.
  std::vector<Outbox> outboxes_;
  struct Timer {
    Clock::Key key;
    std::function<void()> fn;
  };
  std::unordered_map<uint64_t, Timer> timers_;
  TimerId next_timer_ = 1;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_request_ = 1;
  std::unordered_map<int, std::function<void(const ProcessExit&)>> processes_;
  std::vector<std::function<void()>> deferred_;
  std::unordered_map<uint64_t, std::shared_ptr<std::function<void()>>> blocking_;
  std::unordered_map<uint64_t, std::shared_ptr<Inbox>> inboxes_;
  uint64_t next_blocking_ = 1;
  const PeerIdentity* current_principal_ = nullptr;  // during a handler
  // The last sender admit() let in, and who it proved to be.
  struct Admitted {
    uint64_t generation = 0;
    caf::node_id node;
    Address sender;
    PrincipalPtr principal;
  };
  Admitted admitted_;
};

// ---------------------------------------------------------------------------

template <class T, class F>
void Actor::on(F handler) {
  std::function<void(const Received<T>&)> fn(std::move(handler));
  register_handler(
      capnp::typeId<T>(), capnp::Schema::from<T>().getShortDisplayName().cStr(),
      [this, fn = std::move(fn)](const Envelope& env) { return decode_and_call<T>(env, fn); });
}

template <class T>
bool Actor::decode_and_call(const Envelope& env,
                            const std::function<void(const Received<T>&)>& fn) {
  // One reader both validates and serves the handler. Validation walks the
  // whole message first, so a handler never meets a bad pointer halfway
  // through its work; the reader's traversal budget is twice the limit, so
  // after validation (which may use up to the limit) the handler still has
  // a full limit's worth to read with.
  auto limit_words = read_limit_words(env);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * limit_words;
  options.nestingLimit = static_cast<int>(node_->config().nesting_limit);
  std::optional<capnp::FlatArrayMessageReader> reader;
  typename T::Reader body;
  try {
    reader.emplace(env.payload.words(), options);
    body = reader->getRoot<T>();
    if (body.totalSize().wordCount > limit_words) {
      report_decode_failure(env, "Exceeded message traversal limit (validation)");
      return false;
    }
  } catch (const kj::Exception& e) {
    report_decode_failure(env, e.getDescription().cStr());
    return false;
  }
  fn(Received<T>(env, body));
  return true;
}

template <class R, class F>
void Actor::request(const Address& to, const Outgoing& msg, Duration timeout, F on_reply,
                    ErrorFn on_error) {
  std::function<void(const Received<R>&)> fn(std::move(on_reply));
  Pending p;
  p.target = to;
  p.on_error = on_error;
  p.on_reply = [this, fn = std::move(fn), on_error](const Envelope& env) {
    if (env.type_id != capnp::typeId<R>()) {
      on_error(make_error(Errc::malformed, "reply of unexpected type"));
      return;
    }
    if (!decode_and_call<R>(env, fn))
      on_error(make_error(Errc::malformed, "reply does not decode"));
  };
  add_request(to, msg, timeout, std::move(p));
}

}  // namespace tessera
