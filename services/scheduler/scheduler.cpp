#include "services/scheduler/scheduler.hpp"

#include "runtime/log.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>

namespace tessera {

namespace {

using Call = wire::SchedulerCall;
using Event = wire::SchedulerEvent;

// The user this process runs as: what the master runs tasks as by default.
std::string current_user() {
  passwd entry{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::geteuid(), &entry, buf, sizeof(buf), &found) == 0 && found)
    return found->pw_name;
  return std::to_string(::geteuid());
}

template <class List>
void set_texts(List list, const std::vector<std::string>& texts) {
  for (unsigned i = 0; i < texts.size(); ++i)
    list.set(i, texts[i]);
}

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

caf::error validate(const SchedulerConfig& c) {
  auto bad = [](const std::string& why) { return make_error(Errc::invalid_argument, why); };
  if (c.master.empty() && !c.detector)
    return bad("no master address");
  if (c.framework.roles.empty())
    return bad("a framework needs at least one role");
  for (const auto& role : c.framework.roles)
    if (!valid_role(role))
      return bad("bad role '" + role + "'");
  if (c.framework.failover_timeout < Duration::zero())
    return bad("negative failover timeout");
  if (c.subscribe_timeout <= Duration::zero() || c.sandbox_read_timeout <= Duration::zero())
    return bad("timeouts must be positive");
  if (c.resubscribe_backoff_min <= Duration::zero() ||
      c.resubscribe_backoff_max < c.resubscribe_backoff_min)
    return bad("resubscribe backoff must satisfy 0 < min <= max");
  if (c.heartbeats_missed_max == 0)
    return bad("heartbeats_missed_max must be at least 1");
  return {};
}

Scheduler::Scheduler(caf::actor_config& cfg, ActorInit init, SchedulerConfig config)
    : Actor(cfg, std::move(init)),
      config_(std::move(config)),
      master_(config_.master),
      framework_id_(config_.framework.framework_id),
      suppressed_(config_.suppressed_roles.begin(), config_.suppressed_roles.end()),
      backoff_({config_.resubscribe_backoff_min, config_.resubscribe_backoff_max, 2.0, 0.5}),
      rng_(config_.seed != 0 ? config_.seed : std::random_device{}()) {
  if (config_.framework.user.empty())
    config_.framework.user = current_user();
  on<Event>([this](const Received<Event>& m) { on_event(m); });
  on<wire::NotLeader>([this](const Received<wire::NotLeader>& m) { on_not_leader(m); });
  on_lost([this](const Address& peer, const caf::error& why) { on_peer_lost(peer, why); });
}

// -- default callbacks ---------------------------------------------------------

void Scheduler::subscribed(const std::string&) {
}
void Scheduler::subscribe_failed(const caf::error& why) {
  log().warn("{}: subscribe to {} failed: {}; retrying", me().to_string(), master_.to_string(),
             describe(why));
}
void Scheduler::disconnected(const caf::error&) {
}
void Scheduler::offers(const std::vector<Offer>& offers) {
  std::vector<std::string> ids;
  for (const auto& o : offers)
    ids.push_back(o.id);
  decline(ids);
}
void Scheduler::rescinded(const std::string&) {
}
void Scheduler::update(const TaskStatus&) {
}
void Scheduler::message(const std::string&, const std::string&, const std::string&) {
}
void Scheduler::failure(const std::string&, const std::string&, int) {
}
void Scheduler::error(const std::string& message) {
  log().error("{}: {}", me().to_string(), message);
}
void Scheduler::lost(const Address&, const caf::error&) {
}

// -- subscription ----------------------------------------------------------------

void Scheduler::on_start() {
  // Another id per instance even with a fixed seed: the actor's address
  // and the runtime clock (virtual in a simulation, so a replay makes the
  // same one) tell two instances apart.
  std::random_device rd;
  uint64_t base = config_.seed != 0 ? config_.seed : (uint64_t{rd()} << 32 | rd());
  std::mt19937_64 id_rng(base ^ static_cast<uint64_t>(now().time_since_epoch().count()) ^
                         std::hash<std::string>{}(me().to_string()));
  subscription_id_ = hex(new_uuid_bytes(id_rng).substr(0, 8));
  started();
  if (auto err = validate(config_)) {
    state_ = State::closed;
    error("invalid scheduler config: " + describe(err));
    return;
  }
  if (state_ != State::disconnected)  // started() may have torn it down
    return;
  if (config_.detector)
    follow_leader();  // subscribes once a leader is known
  else
    subscribe_now();
}

void Scheduler::follow_leader() {
  auto leader =
      leader_to_follow(*config_.detector, master_, me(), continuation([this] { follow_leader(); }));
  if (!leader || state_ == State::closed)
    return;
  auto why = make_error(Errc::peer_lost, "another master leads: " + leader->to_string());
  if (state_ == State::subscribed)
    master_lost(why);
  else if (state_ == State::subscribing)
    attempt_failed(why);
  master_ = *leader;
  if (state_ == State::closed)
    return;  // a callback above tore it down
  cancel(retry_timer_);
  retry_timer_ = 0;
  backoff_.reset();
  subscribe_now();
}

void Scheduler::subscribe_now() {
  state_ = State::subscribing;
  watch(master_);
  send(master_, build<Call>([&](Call::Builder b) {
         b.setFrameworkId(framework_id_);
         auto s = b.initSubscribe();
         auto info = config_.framework;
         info.framework_id = framework_id_;
         to_wire(info, s.initFrameworkInfo());
         std::vector<std::string> roles(suppressed_.begin(), suppressed_.end());
         set_texts(s.initSuppressedRoles(static_cast<unsigned>(roles.size())), roles);
         s.setSubscriptionId(subscription_id_);
       }));
  subscribe_timer_ = after(config_.subscribe_timeout, [this] {
    subscribe_timer_ = 0;
    attempt_failed(make_error(Errc::timeout, "no answer to subscribe from " + master_.to_string()));
  });
}

void Scheduler::on_peer_lost(const Address& peer, const caf::error& why) {
  if (!is_master(peer)) {
    lost(peer, why);
    return;
  }
  if (state_ == State::subscribing)
    attempt_failed(why);
  else if (state_ == State::subscribed)
    master_lost(why);
}

void Scheduler::on_not_leader(const Received<wire::NotLeader>& m) {
  auto leader = Address::parse(str(m.body().getLeader()));
  // With a detector, ZooKeeper says who leads; a standby that knows no
  // leader yet is asked again by the retries.
  if (config_.detector || !is_master(m.sender()) || state_ != State::subscribing || !leader ||
      *leader == master_ || *leader == m.sender())
    return;
  log().info("{}: {} is a standby; the leading master is {}", me().to_string(), master_.to_string(),
             leader->to_string());
  cancel(subscribe_timer_);
  subscribe_timer_ = 0;
  unwatch(master_);
  master_ = *leader;
  // After the backoff, as any retry: two standbys that name each other
  // (each with a stale view) must not make a loop of it.
  state_ = State::disconnected;
  retry_later();
}

void Scheduler::attempt_failed(const caf::error& why) {
  if (state_ != State::subscribing)
    return;
  cancel(subscribe_timer_);
  unwatch(master_);
  if (!config_.detector)
    master_ = config_.master;  // ask the configured master again who leads
  state_ = State::disconnected;
  retry_later();
  subscribe_failed(why);
}

void Scheduler::master_lost(const caf::error& why) {
  cancel(heartbeat_timer_);
  unwatch(master_);
  auto lost = master_;
  if (!config_.detector)
    master_ = config_.master;  // ask the configured master again who leads
  state_ = State::disconnected;
  refusal_logged_ = false;
  offers_.clear();  // the master rescinds them; accepting them would fail anyway
  log().info("{}: disconnected from {}: {}", me().to_string(), lost.to_string(), describe(why));
  retry_later();
  disconnected(why);
}

void Scheduler::retry_later() {
  retry_timer_ = after(backoff_.next(rng_), [this] {
    retry_timer_ = 0;
    if (state_ == State::disconnected)
      subscribe_now();
  });
}

void Scheduler::close() {
  cancel(subscribe_timer_);
  cancel(retry_timer_);
  cancel(heartbeat_timer_);
  unwatch(master_);
  offers_.clear();
  state_ = State::closed;
}

// The master may be known under another host name than the one configured
// ("localhost" vs "127.0.0.1"): the same actor name on the same port is it.
bool Scheduler::is_master(const Address& a) const {
  // The leader's own address, named by a detector or a standby: the masters
  // of one cluster may share a port.
  if (config_.detector || master_ != config_.master)
    return a == master_;
  return a.name == master_.name && a.port == master_.port;
}

void Scheduler::check_heartbeats() {
  heartbeat_timer_ = 0;
  if (state_ != State::subscribed)
    return;
  auto silence_max = heartbeat_interval_ * config_.heartbeats_missed_max;
  if (now() - last_event_ >= silence_max) {
    master_lost(make_error(Errc::timeout, std::to_string(config_.heartbeats_missed_max) +
                                              " heartbeats missed from " + master_.to_string()));
    return;
  }
  heartbeat_timer_ = after(heartbeat_interval_, [this] { check_heartbeats(); });
}

// -- events ----------------------------------------------------------------------

void Scheduler::on_event(const Received<Event>& m) {
  if (!is_master(m.sender())) {
    if (!stranger_logged_)
      log().warn("{}: ignoring scheduler events from {}, which is not the master {}",
                 me().to_string(), m.sender().to_string(), master_.to_string());
    stranger_logged_ = true;
    return;
  }
  auto e = m.body();
  if (state_ == State::closed)
    return;
  if (e.which() == Event::SUBSCRIBED) {
    on_subscribed(e.getSubscribed());
    return;
  }
  if (state_ != State::subscribed)
    return;  // from before a disconnection; the master resends what matters
  last_event_ = now();
  switch (e.which()) {
    case Event::OFFERS:
      on_offers(e.getOffers());
      break;
    case Event::RESCIND: {
      auto id = str(e.getRescind());
      offers_.erase(id);
      rescinded(id);
      break;
    }
    case Event::UPDATE:
      on_update(e.getUpdate());
      break;
    case Event::MESSAGE: {
      auto msg = e.getMessage();
      message(str(msg.getAgentId()), str(msg.getExecutorId()), str(msg.getData()));
      break;
    }
    case Event::FAILURE: {
      auto f = e.getFailure();
      failure(str(f.getAgentId()), str(f.getExecutorId()), f.getStatus());
      break;
    }
    case Event::ERROR:
      close();
      error(str(e.getError()));
      break;
    case Event::HEARTBEAT:
      on_heartbeat(e.getHeartbeat());
      break;
    default:
      log().debug("{}: unknown scheduler event {}", me().to_string(), static_cast<int>(e.which()));
  }
}

// The master says which roles it holds suppressed; a SUPPRESS or REVIVE of
// ours it never got shows as a difference, and is sent again (both are
// idempotent, so one that merely crossed this heartbeat does no harm).
void Scheduler::on_heartbeat(Event::Heartbeat::Reader h) {
  if (state_ != State::subscribed)
    return;
  std::set<std::string> theirs;
  for (auto r : h.getSuppressedRoles())
    theirs.insert(str(r));
  std::vector<std::string> suppress_again, revive_again;
  for (const auto& r : suppressed_)
    if (!theirs.count(r))
      suppress_again.push_back(r);
  for (const auto& r : theirs)
    if (!suppressed_.count(r))
      revive_again.push_back(r);
  if (suppress_again.empty() && revive_again.empty())
    return;
  ++calls_resent_;
  log().info(
      "{}: the master missed a suppress or revive ({} to suppress, {} to revive); sending "
      "it again",
      me().to_string(), suppress_again.size(), revive_again.size());
  if (!suppress_again.empty())
    static_cast<void>(suppress(suppress_again));
  if (!revive_again.empty())
    static_cast<void>(revive(revive_again));
}

void Scheduler::on_subscribed(Event::Subscribed::Reader s) {
  auto id = str(s.getFrameworkId());
  if (id.empty()) {
    log().warn("{}: subscribed event without a framework id", me().to_string());
    return;
  }
  bool again = state_ == State::subscribed && id == framework_id_;
  cancel(subscribe_timer_);
  cancel(retry_timer_);
  cancel(heartbeat_timer_);
  subscribe_timer_ = retry_timer_ = heartbeat_timer_ = 0;
  watch(master_);  // a no-op when still watched
  state_ = State::subscribed;
  framework_id_ = id;
  backoff_.reset();
  last_event_ = now();
  heartbeat_interval_ = Duration(std::max<int64_t>(0, s.getHeartbeatIntervalNs()));
  if (heartbeat_interval_ > Duration::zero())
    heartbeat_timer_ = after(heartbeat_interval_, [this] { check_heartbeats(); });
  if (!again)  // a duplicate answer to a retried subscribe is not news
    subscribed(framework_id_);
}

void Scheduler::on_offers(capnp::List<wire::Offer>::Reader list) {
  std::vector<Offer> good;
  std::vector<std::string> bad;
  for (auto o : list) {
    auto offer = from_wire(o);
    if (!offer) {
      log().warn("{}: declining an unreadable offer: {}", me().to_string(),
                 describe(offer.error()));
      if (auto id = str(o.getOfferId()); !id.empty())
        bad.push_back(id);
      continue;
    }
    offers_[offer->id] = offer->agent_id;
    good.push_back(std::move(*offer));
  }
  if (!bad.empty())
    send(master_, build<Call>([&](Call::Builder b) {
           b.setFrameworkId(framework_id_);
           set_texts(b.initDecline().initOfferIds(static_cast<unsigned>(bad.size())), bad);
         }));
  if (!good.empty())
    offers(good);
}

void Scheduler::on_update(wire::TaskStatus::Reader s) {
  auto status = from_wire(s);
  if (!status.uuid.empty() && acknowledged_.count(status.uuid)) {
    // Acknowledged before, and the acknowledgement was lost (an agent that
    // restarted from its checkpoints resends it): acknowledge again, but
    // the framework has already acted on it.
    ++duplicate_updates_;
    log().debug("{}: duplicate update {} of task {} ({}) from agent {}; acknowledged again",
                me().to_string(), hex(status.uuid), status.task_id, to_string(status.state),
                status.agent_id);
    acknowledge(status);
    return;
  }
  if (ended_.count(status.task_id) &&
      (!is_terminal(status.state) || status.reason != TaskReason::RECONCILIATION)) {
    // This launch was already reported ended (a TASK_LOST, say, from a
    // master that lost its memory of it in a failover): the framework hears
    // one terminal state per launch. Acknowledged, not delivered; a task
    // alive after all is killed, as it was given up.
    // Only a state that says the task runs is answered with a kill: an
    // UNKNOWN or UNREACHABLE (the answer to such a kill, among others)
    // says nothing runs, and killing again would loop.
    bool alive = status.state == TaskState::STAGING || status.state == TaskState::STARTING ||
                 status.state == TaskState::RUNNING || status.state == TaskState::KILLING;
    ++updates_after_end_;
    log().info("{}: task {} was reported ended, yet {} came from agent {}; {}", me().to_string(),
               status.task_id, to_string(status.state), status.agent_id,
               alive ? "killing it" : "dropped");
    if (alive)
      static_cast<void>(kill(status.task_id, status.agent_id));
    if (!status.uuid.empty() && state_ == State::subscribed)
      acknowledge(status);
    return;
  }
  // A terminal answer to reconciliation does not end the launch: a master
  // that has just restarted answers LOST for a task whose agent has not
  // reregistered yet, and the task may well be running.
  if (is_terminal(status.state) && status.reason != TaskReason::RECONCILIATION)
    remember_ended(status.task_id);
  update(status);
  // update() may have torn the framework down; then nobody is left to ack.
  if (config_.auto_acknowledge && !status.uuid.empty() && state_ == State::subscribed)
    acknowledge(status);
}

// -- calls -------------------------------------------------------------------------

caf::error Scheduler::ready(const char* what) {
  if (state_ == State::subscribed)
    return {};
  if (state_ == State::closed)
    return make_error(Errc::stopped, std::string(what) + ": the framework has ended");
  auto err =
      make_error(Errc::peer_lost, std::string(what) + ": not subscribed to " + master_.to_string());
  if (!refusal_logged_)
    log().warn("{}: {} (calls are refused until resubscribed)", me().to_string(), describe(err));
  refusal_logged_ = true;
  return err;
}

template <class Fill>
caf::error Scheduler::call(const char* what, Fill&& fill) {
  if (auto err = ready(what))
    return err;
  send(master_, build<Call>([&](Call::Builder b) {
         b.setFrameworkId(framework_id_);
         fill(b);
       }));
  return {};
}

expected<std::string> Scheduler::check_accept(const char* what,
                                              const std::vector<std::string>& offer_ids,
                                              const std::vector<TaskSpec>& tasks, Duration refuse) {
  if (auto err = ready(what))
    return err;
  auto bad = [what](const std::string& why) {
    return make_error(Errc::invalid_argument, std::string(what) + ": " + why);
  };
  if (offer_ids.empty())
    return bad("no offers");
  if (refuse < Duration::zero())
    return bad("negative refuse time");
  std::string agent;
  for (const auto& id : offer_ids) {
    auto it = offers_.find(id);
    if (it == offers_.end())
      return bad("offer " + id + " is not outstanding (used, declined or rescinded)");
    if (!agent.empty() && it->second != agent)
      return bad("offers of different agents");
    agent = it->second;
  }
  for (const auto& task : tasks) {
    if (auto err = validate(task))
      return err;
    if (!task.agent_id.empty() && task.agent_id != agent)
      return bad("task " + task.id + " names agent " + task.agent_id + ", the offers are of " +
                 agent);
  }
  return agent;
}

void Scheduler::remember_ended(const std::string& task_id) {
  if (!ended_.insert(task_id).second)
    return;
  ended_order_.push_back(task_id);
  while (ended_order_.size() > ended_tasks_count_max) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

void Scheduler::relaunching(const std::vector<TaskSpec>& tasks) {
  for (const auto& t : tasks)
    ended_.erase(t.id);  // a new launch of the id; its stale order entry is harmless
}

caf::error Scheduler::accept(const std::vector<std::string>& offer_ids,
                             const std::vector<TaskSpec>& tasks, Duration refuse) {
  auto agent = check_accept("accept", offer_ids, tasks, refuse);
  if (!agent)
    return agent.error();
  relaunching(tasks);
  for (const auto& id : offer_ids)
    offers_.erase(id);
  return call("accept", [&](Call::Builder b) {
    auto a = b.initAccept();
    set_texts(a.initOfferIds(static_cast<unsigned>(offer_ids.size())), offer_ids);
    a.initFilters().setRefuseSeconds(seconds(refuse));
    if (tasks.empty())
      return;
    auto launch = a.initOperations(1)[0].initLaunch(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      auto task = tasks[i];
      task.agent_id = *agent;
      to_wire(task, launch[i]);
    }
  });
}

caf::error Scheduler::launch_group(const std::vector<std::string>& offer_ids,
                                   const std::vector<TaskSpec>& tasks,
                                   const std::string& executor_id, Duration refuse) {
  auto agent = check_accept("launch_group", offer_ids, tasks, refuse);
  if (!agent)
    return agent.error();
  if (tasks.empty())
    return make_error(Errc::invalid_argument, "launch_group: no tasks");
  relaunching(tasks);
  for (const auto& id : offer_ids)
    offers_.erase(id);
  return call("launch_group", [&](Call::Builder b) {
    auto a = b.initAccept();
    set_texts(a.initOfferIds(static_cast<unsigned>(offer_ids.size())), offer_ids);
    a.initFilters().setRefuseSeconds(seconds(refuse));
    auto group = a.initOperations(1)[0].initLaunchGroup();
    auto executor = group.initExecutor();
    executor.setExecutorId(executor_id);
    executor.setFrameworkId(framework_id_);
    executor.setType(wire::ExecutorInfo::Type::DEFAULT);
    auto list = group.initTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      auto task = tasks[i];
      task.agent_id = *agent;
      to_wire(task, list[i]);
    }
  });
}

caf::error Scheduler::decline(const std::vector<std::string>& offer_ids, Duration refuse) {
  if (auto err = ready("decline"))
    return err;
  if (offer_ids.empty())
    return make_error(Errc::invalid_argument, "decline: no offers");
  if (refuse < Duration::zero())
    return make_error(Errc::invalid_argument, "decline: negative refuse time");
  for (const auto& id : offer_ids)
    offers_.erase(id);
  return call("decline", [&](Call::Builder b) {
    auto d = b.initDecline();
    set_texts(d.initOfferIds(static_cast<unsigned>(offer_ids.size())), offer_ids);
    d.initFilters().setRefuseSeconds(seconds(refuse));
  });
}

caf::error Scheduler::revive(const std::vector<std::string>& roles) {
  auto err = call("revive", [&](Call::Builder b) {
    set_texts(b.initRevive().initRoles(static_cast<unsigned>(roles.size())), roles);
  });
  if (!err) {
    if (roles.empty())
      suppressed_.clear();
    for (const auto& r : roles)
      suppressed_.erase(r);
  }
  return err;
}

caf::error Scheduler::suppress(const std::vector<std::string>& roles) {
  auto err = call("suppress", [&](Call::Builder b) {
    set_texts(b.initSuppress().initRoles(static_cast<unsigned>(roles.size())), roles);
  });
  if (!err) {
    const auto& which = roles.empty() ? config_.framework.roles : roles;
    suppressed_.insert(which.begin(), which.end());
  }
  return err;
}

caf::error Scheduler::kill(const std::string& task_id, const std::string& agent_id,
                           std::optional<Duration> grace) {
  if (task_id.empty())
    return make_error(Errc::invalid_argument, "kill: no task id");
  return call("kill", [&](Call::Builder b) {
    auto k = b.initKill();
    k.setTaskId(task_id);
    k.setAgentId(agent_id);
    if (grace)
      k.initKillPolicy().setGracePeriodNs(grace->count());
  });
}

caf::error Scheduler::acknowledge(const TaskStatus& status) {
  if (status.uuid.empty())
    return make_error(Errc::invalid_argument, "acknowledge: the update has no uuid");
  auto err = call("acknowledge", [&](Call::Builder b) {
    auto a = b.initAcknowledge();
    a.setAgentId(status.agent_id);
    a.setTaskId(status.task_id);
    a.setUuid(data(status.uuid));
  });
  if (!err)
    remember_acknowledged(status.uuid);
  return err;
}

void Scheduler::remember_acknowledged(const std::string& uuid) {
  if (!acknowledged_.insert(uuid).second)
    return;  // a duplicate acknowledged again: already remembered
  acknowledged_order_.push_back(uuid);
  if (acknowledged_order_.size() > acknowledged_uuids_count_max) {
    acknowledged_.erase(acknowledged_order_.front());
    acknowledged_order_.pop_front();
  }
}

caf::error Scheduler::reconcile(const std::vector<TaskRef>& tasks) {
  return call("reconcile", [&](Call::Builder b) {
    auto list = b.initReconcile().initTasks(static_cast<unsigned>(tasks.size()));
    for (unsigned i = 0; i < tasks.size(); ++i) {
      list[i].setTaskId(tasks[i].task_id);
      list[i].setAgentId(tasks[i].agent_id);
    }
  });
}

caf::error Scheduler::teardown() {
  auto err = call("teardown", [](Call::Builder b) { b.setTeardown(); });
  if (!err)
    close();
  return err;
}

caf::error Scheduler::shutdown_executor(const std::string& executor_id,
                                        const std::string& agent_id) {
  return call("shutdown", [&](Call::Builder b) {
    auto s = b.initShutdown();
    s.setExecutorId(executor_id);
    s.setAgentId(agent_id);
  });
}

caf::error Scheduler::send_message(const std::string& agent_id, const std::string& executor_id,
                                   const std::string& bytes) {
  return call("message", [&](Call::Builder b) {
    auto m = b.initMessage();
    m.setAgentId(agent_id);
    m.setExecutorId(executor_id);
    m.setData(data(bytes));
  });
}

// -- sandboxes ---------------------------------------------------------------------

void Scheduler::read_sandbox_file(const Address& agent, const std::string& task_id,
                                  const std::string& path, uint64_t offset, uint64_t length_max,
                                  SandboxFn fn) {
  if (framework_id_.empty() || agent.empty() || task_id.empty()) {
    defer([fn] {
      fn(make_error(Errc::invalid_argument,
                    "read_sandbox_file needs a framework id, an agent address and a task id"));
    });
    return;
  }
  auto request_msg = build<wire::ReadSandboxFile>([&](wire::ReadSandboxFile::Builder b) {
    b.setFrameworkId(framework_id_);
    b.setTaskId(task_id);
    b.setPath(path);
    b.setOffset(offset);
    b.setLengthMax(std::min(length_max, sandbox_chunk_bytes_max));
  });
  request<wire::SandboxFile>(
      agent, request_msg, config_.sandbox_read_timeout,
      [fn, agent, path](const Received<wire::SandboxFile>& m) {
        auto r = m.body();
        if (r.isError()) {
          fn(make_error(Errc::invalid_argument,
                        agent.to_string() + ": " + path + ": " + str(r.getError())));
          return;
        }
        fn(SandboxData{str(r.getData()), r.getSize()});
      },
      [fn](const caf::error& err) { fn(err); });
}

void Scheduler::read_whole_sandbox_file(const Address& agent, const std::string& task_id,
                                        const std::string& path, uint64_t bytes_max, SandboxFn fn) {
  read_chunks(agent, task_id, path, bytes_max, SandboxData{}, std::move(fn));
}

void Scheduler::read_chunks(const Address& agent, const std::string& task_id,
                            const std::string& path, uint64_t bytes_max, SandboxData so_far,
                            SandboxFn fn) {
  uint64_t offset = so_far.bytes.size();
  read_sandbox_file(
      agent, task_id, path, offset, std::min(bytes_max - offset, sandbox_chunk_bytes_max),
      [this, agent, task_id, path, bytes_max, so_far = std::move(so_far),
       fn = std::move(fn)](expected<SandboxData> chunk) mutable {
        if (!chunk) {
          fn(chunk.error());
          return;
        }
        so_far.bytes += chunk->bytes;
        so_far.file_size = chunk->file_size;
        if (so_far.bytes.size() > bytes_max)  // an agent that sent more than asked
          so_far.bytes.resize(bytes_max);
        bool done = chunk->bytes.empty() || so_far.bytes.size() >= chunk->file_size ||
                    so_far.bytes.size() >= bytes_max;
        if (done)
          fn(std::move(so_far));
        else
          read_chunks(agent, task_id, path, bytes_max, std::move(so_far), std::move(fn));
      });
}

}  // namespace tessera
