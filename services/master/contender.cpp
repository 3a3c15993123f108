#include "services/master/contender.hpp"

#include "runtime/log.hpp"

namespace tessera {

namespace {

// A previous Master still ending holds its name for a moment.
constexpr auto name_retry = std::chrono::milliseconds(10);

}  // namespace

StandbyMaster::StandbyMaster(caf::actor_config& cfg, ActorInit init,
                             std::shared_ptr<MasterDetector> election)
    : Actor(cfg, std::move(init)), election_(std::move(election)) {
  on<wire::RegisterAgent>([this](const auto& m) { redirect(m.sender()); });
  on<wire::ReregisterAgent>([this](const auto& m) { redirect(m.sender()); });
  on<wire::SchedulerCall>([this](const auto& m) { redirect(m.sender()); });
  on<wire::OperatorCall>([this](const Received<wire::OperatorCall>& m) {
    ++redirected_;
    auto who = leader();
    reply(m, build<wire::OperatorResponse>([&](wire::OperatorResponse::Builder b) {
            b.setError("not the leading master; " + (who.empty()
                                                         ? std::string("no leader is known yet")
                                                         : "the leader is " + who));
          }));
  });
}

std::string StandbyMaster::leader() const {
  // Never itself: a view from before this process's session ended may
  // still name its own old candidacy.
  auto view = election_->view();
  return view.leader && !view.leading && *view.leader != me().to_string() ? *view.leader
                                                                          : std::string();
}

void StandbyMaster::redirect(const Address& to) {
  if (to.empty())
    return;
  auto who = leader();
  if (++redirected_ <= 10 || redirected_ % 1000 == 0)
    log().info("{}: standing by; told {} the leader is {} ({} so far)", me().to_string(),
               to.to_string(), who.empty() ? "not known yet" : who, redirected_);
  send(to, build<wire::NotLeader>([&](wire::NotLeader::Builder b) { b.setLeader(who); }));
}

MasterContender::MasterContender(caf::actor_config& cfg, ActorInit init,
                                 MasterContenderConfig config)
    : Actor(cfg, std::move(init)), config_(std::move(config)) {
}

// The Master of incarnation n ended. While it leads, that is a failure (a
// registry commit failed: it cannot go on recording): another master
// should lead. An earlier incarnation's end, reported late, is no news.
void MasterContender::on_master_ended(uint64_t n) {
  if (!leading_ || n != incarnation_)
    return;
  log().error("master contender: the leading master stopped by itself; withdrawing to stand by");
  leading_ = false;
  config_.leading->store(false);
  stop_master();
  stand_by();
  config_.election->withdraw();
}

void MasterContender::on_start() {
  log().info("master contender {}: contending at {}", me().to_string(),
             config_.election->describe());
  stand_by();
  keep_warm();
  observe();
}

void MasterContender::keep_warm() {
  warm_timer_ = after(config_.warm_interval, [this] {
    warm_timer_ = 0;
    keep_warm();
  });
  auto store = config_.master.registry;
  if (leading_ || warming_ || !store || store->broken())
    return;
  warming_ = true;
  bool queued = blocking(Work::store, [this, store]() -> std::function<void()> {
    auto read = store->load();  // only the store: the actor's state waits for the continuation
    auto error = read ? std::string() : describe(read.error());
    return [this, error] {
      warming_ = false;
      if (!error.empty())
        log().warn("master contender: reading the registry ahead failed: {}", error);
    };
  });
  if (!queued)
    warming_ = false;
}

void MasterContender::on_stopping() {
  if (leading_)
    stop_master();
}

void MasterContender::observe() {
  auto view = config_.election->view();
  config_.election->on_change(view.generation, continuation([this] { observe(); }));
  decide(view);
}

void MasterContender::decide(const LeaderView& view) {
  if (view.leader != leader_seen_) {
    leader_seen_ = view.leader;
    if (!view.leading)
      log().info("master contender: {} leads; standing by", view.leader.value_or("no one"));
  }
  if (leading_ && view.leading && !view.connected) {
    if (grace_timer_ == 0) {
      int timeout_ms = view.session_timeout_ms > 0 ? view.session_timeout_ms : 10'000;
      auto grace = std::chrono::milliseconds(timeout_ms / 6);
      log().warn(
          "master contender: disconnected from ZooKeeper; stepping down in {} ms unless "
          "it answers again",
          grace.count());
      grace_timer_ = after(grace, [this, grace] {
        grace_timer_ = 0;
        step_down("no answer from ZooKeeper for " + std::to_string(grace.count()) +
                  " ms: the session may expire before another answer");
      });
    }
    return;
  }
  cancel(grace_timer_);
  grace_timer_ = 0;
  if (leading_ && view.session != lead_session_)
    step_down("the ZooKeeper session it led in ended");  // and lead again below if this one leads
  if (view.leading && view.connected && !leading_) {
    take_lead();
  } else if (!view.leading && leading_) {
    step_down("another master leads (" + view.leader.value_or("none yet") + ")");
  } else if (!view.leading && retry_timer_ != 0) {
    cancel(retry_timer_);  // a takeover waiting for the name: no longer ours to take
    retry_timer_ = 0;
    stand_by();
  }
}

void MasterContender::take_lead() {
  cancel(retry_timer_);
  retry_timer_ = 0;
  auto view = config_.election->view();
  if (!view.leading || !view.connected) {
    stand_by();  // no longer ours to take: the standby answers again
    return;
  }
  cancel(standby_timer_);
  standby_timer_ = 0;
  if (auto standby = node().lookup_local("master"); standby && !leading_)
    caf::anon_send_exit(standby, caf::exit_reason::user_shutdown);  // the StandbyMaster
  if (node().lookup_local("master") || node().lookup_local("master.allocator")) {
    retry_timer_ = after(name_retry, [this] {
      retry_timer_ = 0;
      take_lead();
    });
    return;
  }
  if (!config_.master.registry || config_.master.registry->broken()) {
    reopen_store();  // takes the lead again once it is open
    return;
  }
  // Its writes need this lead's election node: once the session that holds
  // it ends, the registry refuses them, even before a successor writes.
  config_.master.registry->set_fence(view.leader_node);
  auto spawned = node().spawn<Master>("master", config_.master);
  auto handle = spawned ? node().lookup_local("master") : caf::actor{};
  if (!handle) {
    log().error("master contender: cannot start the master: {}; withdrawing",
                spawned ? "it ended at once" : describe(spawned.error()));
    stand_by();
    config_.election->withdraw();
    return;
  }
  leading_ = true;
  config_.leading->store(true);
  lead_session_ = view.session;
  master_ = *spawned;
  auto ended = continuation([this, n = ++incarnation_] { on_master_ended(n); });
  handle->attach_functor([ended] { ended(); });
  log().info(
      "master contender: leading (ZooKeeper session {:x}); master {} recovers from the "
      "registry",
      view.session, master_.to_string());
}

// The registry store's session expired: another is opened on the store
// lane (connecting may take seconds), never on this actor's thread.
void MasterContender::reopen_store() {
  if (reopening_)
    return;
  reopening_ = true;
  auto spec = config_.registry_spec;
  auto work_dir = config_.work_dir;
  auto timeout_ms = config_.zk_session_timeout_ms;
  bool queued = blocking(Work::store, [this, spec, work_dir, timeout_ms] {
    auto store = make_store(spec, work_dir, timeout_ms);  // no actor state: that waits below
    return std::function<void()>([this, store] {
      reopening_ = false;
      if (!store) {
        log().error("master contender: cannot open the registry {}: {}; withdrawing",
                    config_.registry_spec, describe(store.error()));
        stand_by();
        config_.election->withdraw();
        return;
      }
      config_.master.registry = *store;
      take_lead();
    });
  });
  if (!queued) {
    reopening_ = false;
    retry_timer_ = after(name_retry, [this] {
      retry_timer_ = 0;
      take_lead();
    });
  }
}

void MasterContender::step_down(const std::string& why) {
  if (!leading_)
    return;
  log().warn("master contender: stepping down: {}", why);
  leading_ = false;
  config_.leading->store(false);
  stop_master();
  stand_by();
}

void MasterContender::stand_by() {
  cancel(standby_timer_);
  standby_timer_ = 0;
  if (leading_ || reopening_)
    return;
  auto holder = node().lookup_local("master");
  if (holder && holder == standby_)
    return;  // it answers already
  if (holder || node().lookup_local("master.allocator")) {
    standby_timer_ = after(name_retry, [this] {
      standby_timer_ = 0;
      stand_by();
    });
    return;
  }
  if (auto spawned = node().spawn<StandbyMaster>("master", config_.election); !spawned)
    log().error("master contender: cannot start the standby's answering actor: {}",
                describe(spawned.error()));
  else
    standby_ = node().lookup_local("master");
}

void MasterContender::stop_master() {
  for (const char* name : {"master", "master.allocator"})
    if (auto actor = node().lookup_local(name))
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

}  // namespace tessera
