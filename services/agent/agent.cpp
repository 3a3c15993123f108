// The agent's link to the master: registration, pings, and the master's
// messages that are not about one task.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"
#include "runtime/simulation.hpp"
#include "services/agent/checkpoint.hpp"

#include <algorithm>

namespace tessera {

namespace {

uint64_t seed_or_random(uint64_t seed) {
  if (seed != 0)
    return seed;
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// Another value per process start, even with a fixed seed: the agent's
// address and the runtime clock (virtual in a simulation, so a replay makes
// the same one) tell two starts apart.
std::string boot_id_from(uint64_t seed, int64_t now_ns) {
  std::mt19937_64 rng(seed_or_random(seed) ^ static_cast<uint64_t>(now_ns));
  return hex(new_uuid_bytes(rng).substr(0, 8));
}

bool worth_logging(uint64_t count) {
  return (count & (count - 1)) == 0;
}

}  // namespace

Agent::Agent(caf::actor_config& cfg, ActorInit init, AgentConfig config)
    : Actor(cfg, std::move(init)),
      config_(std::move(config)),
      master_(config_.master),
      metrics_(*config_.metrics),
      rng_(seed_or_random(config_.seed)),
      registration_backoff_(
          {config_.registration_backoff_min_ms, config_.registration_backoff_max_ms, 2.0, 0.5}) {
  disk_ = config_.disk ? config_.disk.get() : &posix_disk();
  // In a simulation that runs blocking work inline, checkpoint writes run
  // inline too (on the simulation's thread), so that a seed replays.
  bool inline_writes = node().simulation() && node().simulation()->inline_blocking();
  if (config_.checkpoint)
    writer_ = std::make_unique<CheckpointWriter>(
        [metrics = config_.metrics, health = checkpoint_health_](const caf::error& err) {
          metrics->checkpoint_failures.fetch_add(1, std::memory_order_relaxed);
          std::function<void()> report;
          {
            std::lock_guard<std::mutex> guard(health->mu);
            health->last_error = err;
            ++health->failures;
            report = std::move(health->report);
            health->report = nullptr;
          }
          if (report)
            report();  // on_checkpoint_failure(), on the actor's thread
        },
        65536, *disk_, inline_writes);
  isolator_ = config_.isolator;
  if (!isolator_) {
    IsolationConfig posix;
    posix.kind = "posix";
    posix.scope = isolation_scope(config_.work_dir);
    isolator_ = std::move(*make_isolator(posix, nullptr));  // posix always works
  }
  attach_functor(
      [isolator = isolator_, book = containers_] { destroy_containers(isolator, *book); });
  // What the agent asked to be written is on disk once it has ended.
  if (writer_)
    attach_functor([writer = writer_.get()] { writer->flush(); });
  if (config_.on_stopped)
    attach_functor([fn = config_.on_stopped] { fn(); });
  if (config_.http)
    config_.http->attach(make_inbox(config_.http_inbox_capacity), this);
  install_master_handlers();
  install_executor_handlers();
  on_lost([this](const Address& peer, const caf::error& why) { on_peer_lost(peer, why); });
}

void Agent::on_start() {
  log().info("{}: agent starting; master {}, work dir {}, isolation {}", me().to_string(),
             master_.to_string(), config_.work_dir.string(), isolator_->name());
  auto cache =
      FetcherCache::open(config_.work_dir / "fetcher-cache", config_.fetcher_cache_bytes_max);
  if (cache)
    fetcher_cache_ = std::move(*cache);
  else
    log().warn("{}: fetcher cache off: {}", me().to_string(), describe(cache.error()));
  fetcher_ = std::make_shared<Fetcher>(config_.fetcher, fetcher_cache_.get());
  choose_switch_user();
  if (config_.stopper) {
    std::lock_guard<std::mutex> guard(config_.stopper->mu_);
    config_.stopper->keep_ = continuation([this] { stop_keeping_work(); });
    config_.stopper->drain_ = continuation([this] { shutdown_agent("drained by the operator"); });
  }
  arm_checkpoint_failure_report();
  started_at_ = now();
  boot_id_ = make_boot_id();
  if (!recover())
    return;
  if (config_.detector)
    follow_leader();  // registers once a leader is known
  else
    try_register();
  arm_gc();
}

bool AgentStopper::stop(bool drain) {
  std::function<void()> trigger;
  {
    std::lock_guard<std::mutex> guard(mu_);
    trigger = std::move(drain ? drain_ : keep_);
    (drain ? drain_ : keep_) = nullptr;
  }
  if (!trigger)
    return false;
  trigger();
  return true;
}

void Agent::on_stopping() {
  close_followers();
  // Its triggers go as it ends: the stopper (which outlives it) then tells
  // its caller there is no agent left to stop (stop() returns false).
  {
    std::lock_guard<std::mutex> guard(checkpoint_health_->mu);
    checkpoint_health_->report = nullptr;
  }
  if (config_.stopper) {
    std::lock_guard<std::mutex> guard(config_.stopper->mu_);
    config_.stopper->keep_ = nullptr;
    config_.stopper->drain_ = nullptr;
  }
}

void Agent::install_master_handlers() {
  on<wire::NotLeader>([this](const Received<wire::NotLeader>& m) {
    if (from_master(m.sender(), "NotLeader"))
      on_not_leader(str(m.body().getLeader()));
  });
  on<wire::AgentRegistered>([this](const Received<wire::AgentRegistered>& m) {
    auto b = m.body();
    if (from_master(m.sender(), "AgentRegistered"))
      on_registered(str(b.getAgentId()), b.getPingIntervalNs(), str(b.getBootId()),
                    b.getRegistrationSeq());
  });
  on<wire::AgentReregistered>([this](const Received<wire::AgentReregistered>& m) {
    auto b = m.body();
    if (from_master(m.sender(), "AgentReregistered"))
      on_registered(str(b.getAgentId()), b.getPingIntervalNs(), str(b.getBootId()),
                    b.getRegistrationSeq());
  });
  on<wire::Ping>([this](const Received<wire::Ping>& m) {
    if (from_master(m.sender(), "Ping"))
      on_ping(m);
  });
  on<wire::RunTask>([this](const Received<wire::RunTask>& m) {
    if (from_master(m.sender(), "RunTask"))
      run_task(m);
  });
  on<wire::GetContainerUsage>(
      [this](const Received<wire::GetContainerUsage>& m) { on_get_usage(m); });
  on<wire::RunTaskGroup>([this](const Received<wire::RunTaskGroup>& m) {
    if (from_master(m.sender(), "RunTaskGroup"))
      run_task_group(m);
  });
  on<wire::KillTask>([this](const Received<wire::KillTask>& m) {
    if (from_master(m.sender(), "KillTask"))
      kill_task(m);
  });
  on<wire::StatusUpdateAck>([this](const Received<wire::StatusUpdateAck>& m) {
    if (from_master(m.sender(), "StatusUpdateAck"))
      on_ack(m);
  });
  on<wire::ShutdownFramework>([this](const Received<wire::ShutdownFramework>& m) {
    if (!from_master(m.sender(), "ShutdownFramework"))
      return;
    auto fid = str(m.body().getFrameworkId());
    log().info("{}: shutting down framework {}", me().to_string(), fid);
    std::vector<Key> victims;
    for (auto it = executors_.lower_bound({fid, ""});
         it != executors_.end() && it->first.first == fid; ++it)
      victims.push_back(it->first);
    for (const auto& key : victims)
      shutdown_executor(key);
  });
  on<wire::ShutdownExecutor>([this](const Received<wire::ShutdownExecutor>& m) {
    if (!from_master(m.sender(), "ShutdownExecutor"))
      return;
    Key key{str(m.body().getFrameworkId()), str(m.body().getExecutorId())};
    if (!executors_.count(key)) {
      refuse(metrics_.refused_invalid, "ShutdownExecutor of unknown executor " + key.second);
      return;
    }
    shutdown_executor(key);
  });
  on<wire::ShutdownAgent>([this](const Received<wire::ShutdownAgent>& m) {
    // The master, or a local control actor (`tessera agent` on SIGTERM).
    bool local = m.sender().same_node(me());
    if (!local && !from_master(m.sender(), "ShutdownAgent"))
      return;
    // Refused on reregistering a recovered id: begin again as a new agent.
    if (!local && recovered_ && !registered_)
      start_over(str(m.body().getReason()));
    else
      shutdown_agent(str(m.body().getReason()));
  });
  on<wire::FrameworkToExecutor>([this](const Received<wire::FrameworkToExecutor>& m) {
    if (!from_master(m.sender(), "FrameworkToExecutor"))
      return;
    auto it = executors_.find({str(m.body().getFrameworkId()), str(m.body().getExecutorId())});
    if (it == executors_.end() || !it->second.subscribed) {
      refuse(metrics_.refused_invalid, "framework message for an executor not running here");
      return;
    }
    auto bytes = m.body().getData();
    send(it->second.address,
         executor_event([bytes](wire::ExecutorEvent::Builder b) { b.setMessage(bytes); }));
  });
  on<wire::ReadSandboxFile>(
      [this](const Received<wire::ReadSandboxFile>& m) { on_read_sandbox(m); });
}

void Agent::on_peer_lost(const Address& peer, const caf::error& why) {
  if (peer == master_) {
    on_master_lost(describe(why));
    return;
  }
  auto it = executor_by_address_.find(peer);
  if (it != executor_by_address_.end())
    on_executor_lost(it->second);
}

bool Agent::from_master(const Address& sender, const char* what) {
  // Over TLS, the master is whom the CA signed as a master: an address alone
  // proves nothing.
  if (std::string why; !sender_in_role({"master"}, &why)) {
    refuse(metrics_.refused_not_master,
           std::string(what) + " from " + sender.to_string() + ": " + why);
    return false;
  }
  if (sender == master_)
    return true;
  refuse(metrics_.refused_not_master, std::string(what) + " from " +
                                          (sender.empty() ? "nobody" : sender.to_string()) +
                                          ", not the master");
  return false;
}

void Agent::refuse(std::atomic<uint64_t>& counter, const std::string& what) {
  auto n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  if (worth_logging(n))
    log().warn("{}: refused {} ({} of its kind so far)", me().to_string(), what, n);
}

Backoff Agent::status_update_backoff() const {
  // No jitter: each task's retries are already spread by when it was updated.
  return Backoff(
      {config_.status_update_backoff_min_ms, config_.status_update_backoff_max_ms, 2.0, 0.0});
}

// -- registration ----------------------------------------------------------------

void Agent::try_register() {
  if (registered_ || shutting_down_ || master_.empty())
    return;
  cancel(registration_timer_);
  watch(master_);  // one-shot: armed again by every attempt
  send(master_, registration());
  metrics_.registration_attempts.fetch_add(1, std::memory_order_relaxed);
  auto delay = registration_backoff_.next(rng_);
  registration_timer_ = after(delay, [this] {
    registration_timer_ = 0;
    try_register();
  });
}

void Agent::fill_agent_info(wire::AgentInfo::Builder b) const {
  b.setAgentId(agent_id_);
  b.setHostname(config_.hostname.empty() ? node().host() : config_.hostname);
  b.setPort(node().port());
  to_wire(config_.resources, b.initResources(wire_size(config_.resources)));
  to_wire(config_.attributes, b.initAttributes(static_cast<unsigned>(config_.attributes.size())));
  if (!config_.http_address.empty())
    b.setHttpAddress(config_.http_address);
}

std::string Agent::make_boot_id() const {
  if (!config_.boot_id.empty())
    return config_.boot_id;
  return boot_id_from(config_.seed,
                      now().time_since_epoch().count() ^
                          static_cast<int64_t>(std::hash<std::string>{}(me().to_string())));
}

Outgoing Agent::registration() const {
  if (agent_id_.empty())
    return build<wire::RegisterAgent>([this](wire::RegisterAgent::Builder b) {
      fill_agent_info(b.initAgentInfo());
      b.setVersion(version);
      b.setBootId(boot_id_);
      b.setRegistrationSeq(registration_seq_);
    });
  return build<wire::ReregisterAgent>([this](wire::ReregisterAgent::Builder b) {
    fill_agent_info(b.initAgentInfo());
    b.setVersion(version);
    b.setBootId(boot_id_);
    b.setRegistrationSeq(registration_seq_);
    auto tasks = b.initTasks(static_cast<unsigned>(tasks_.size()));
    unsigned i = 0;
    for (const auto& [key, task] : tasks_) {
      auto t = tasks[i++];
      t.setTask(task.info.get());
      t.setState(task.stream.next_state());
      if (auto* front = task.stream.front())
        t.setStatusUuid(front->get().getUuid());
      t.setFrameworkId(task.framework_id);
      t.setLatestState(task.stream.latest_state());
    }
    auto executors = b.initExecutors(static_cast<unsigned>(executors_.size()));
    i = 0;
    for (const auto& [key, e] : executors_) {
      auto x = executors[i++];
      x.setExecutorId(e.executor_id);
      x.setFrameworkId(e.framework_id);
    }
    auto frameworks = b.initFrameworks(static_cast<unsigned>(frameworks_.size()));
    i = 0;
    for (const auto& [id, info] : frameworks_)
      frameworks.setWithCaveats(i++, info.get());
  });
}

void Agent::on_registered(const std::string& agent_id, int64_t ping_interval_ns,
                          const std::string& boot, uint64_t seq) {
  if (agent_id.empty() || (!agent_id_.empty() && agent_id != agent_id_)) {
    refuse(metrics_.refused_invalid,
           "registration with agent id '" + agent_id + "' (mine: '" + agent_id_ + "')");
    return;
  }
  if (boot != boot_id_ || seq != registration_seq_) {
    // An answer to an earlier episode (or an earlier boot at this address):
    // the master has not yet seen the task list this agent sent since.
    metrics_.registration_answers_stale.fetch_add(1, std::memory_order_relaxed);
    log().info("{}: ignoring a registration answer for boot {} #{} (this is {} #{})",
               me().to_string(), boot, seq, boot_id_, registration_seq_);
    return;
  }
  ping_interval_ = Duration(std::max<int64_t>(ping_interval_ns, 0));
  if (registered_) {
    arm_ping_timer();
    return;  // a late answer to an earlier attempt
  }
  bool first = agent_id_.empty();
  agent_id_ = agent_id;
  registered_ = true;
  recovered_ = false;
  checkpoint_agent();
  cancel(registration_timer_);
  registration_timer_ = 0;
  registration_backoff_.reset();
  metrics_.registrations.fetch_add(1, std::memory_order_relaxed);
  log().info("{}: {} with {} as agent {}", me().to_string(), first ? "registered" : "reregistered",
             master_.to_string(), agent_id_);
  arm_ping_timer();
  forward_all();
  if (config_.on_registered)
    config_.on_registered(agent_id_);
}

void Agent::on_ping(const Received<wire::Ping>& m) {
  auto body = m.body();
  std::vector<Key> unknown;
  for (auto k : body.getAudit()) {
    Key key{str(k.getFrameworkId()), str(k.getTaskId())};
    if (tasks_.count(key))
      continue;
    // Its launch never came: refuse it should it still come, so that the
    // master may report the task ended.
    never_launch(key);
    unknown.push_back(std::move(key));
  }
  if (!unknown.empty())
    log().warn("{}: {} task(s) the master launched here never arrived (first: {} of {})",
               me().to_string(), unknown.size(), unknown.front().second, unknown.front().first);
  std::set<std::string> frameworks;
  for (const auto& [key, e] : executors_)
    frameworks.insert(key.first);
  for (const auto& [key, t] : tasks_)
    if (!t.stream.terminated())
      frameworks.insert(key.first);
  auto seq = body.getSeq();
  reply(m, build<wire::Pong>([&](wire::Pong::Builder b) {
          b.setSeq(seq);
          auto fws = b.initFrameworks(static_cast<unsigned>(frameworks.size()));
          unsigned j = 0;
          for (const auto& f : frameworks)
            fws.set(j++, f);
          auto list = b.initUnknown(static_cast<unsigned>(unknown.size()));
          for (unsigned i = 0; i < unknown.size(); ++i) {
            list[i].setFrameworkId(unknown[i].first);
            list[i].setTaskId(unknown[i].second);
          }
        }));
  if (registered_)
    arm_ping_timer();
}

void Agent::never_launch(const Key& key) {
  if (!never_launch_.insert(key).second)
    return;
  never_launch_order_.push_back(key);
  while (never_launch_order_.size() > never_launch_max) {
    never_launch_.erase(never_launch_order_.front());
    never_launch_order_.pop_front();
  }
}

bool Agent::launch_allowed(const std::string& boot, uint64_t seq, const std::string& what) {
  if (shutting_down_) {
    refuse(metrics_.refused_invalid, what + " while shutting down");
    return false;
  }
  // As Mesos, a launch that crosses this agent's (re)registration is not
  // run: the master reconciles with the task list this agent sent in its
  // newer registration, finds the task missing and reports it lost, so the
  // agent must not run a task the master has given up on. The stamp says
  // which registration the master had seen when it sent the launch.
  if (agent_id_.empty() || boot != boot_id_ || seq != registration_seq_) {
    refuse(metrics_.refused_stale_launches, what + " sent for registration " + boot + " #" +
                                                std::to_string(seq) + " (this is " + boot_id_ +
                                                " #" + std::to_string(registration_seq_) +
                                                "): the master will find it missing");
    return false;
  }
  return true;
}

void Agent::on_master_lost(const std::string& why) {
  if (!registered_)
    return;  // still registering: the retry timer carries on
  registered_ = false;
  ++registration_seq_;  // a new episode: its task list is newer than the last one's
  metrics_.master_lost.fetch_add(1, std::memory_order_relaxed);
  log().warn("{}: lost master {} ({}); reregistering", me().to_string(), master_.to_string(), why);
  cancel(ping_timer_);
  ping_timer_ = 0;
  for (auto& [key, task] : tasks_) {
    cancel(task.retry_timer);
    task.retry_timer = 0;
  }
  if (!config_.detector && master_ != config_.master) {
    // Sent here by a standby's NotLeader: ask the configured master again
    // who leads now.
    unwatch(master_);
    master_ = config_.master;
  }
  registration_backoff_.reset();
  registration_timer_ = after(registration_backoff_.peek(rng_), [this] {
    registration_timer_ = 0;
    try_register();
  });
}

void Agent::on_not_leader(const std::string& leader_text) {
  metrics_.not_leader_answers.fetch_add(1, std::memory_order_relaxed);
  auto leader = Address::parse(leader_text);
  if (config_.detector || registered_ || !leader || *leader == master_ || leader->empty()) {
    // With a detector, ZooKeeper says who leads; a standby that knows no
    // leader yet is asked again by the registration retries.
    return;
  }
  log().info("{}: {} is a standby; the leading master is {}", me().to_string(), master_.to_string(),
             leader->to_string());
  unwatch(master_);
  master_ = *leader;
  // After the backoff, as any retry: two standbys that name each other
  // (each with a stale view) must not make a loop of it.
  cancel(registration_timer_);
  registration_timer_ = after(registration_backoff_.next(rng_), [this] {
    registration_timer_ = 0;
    try_register();
  });
}

void Agent::follow_leader() {
  auto leader =
      leader_to_follow(*config_.detector, master_, me(), continuation([this] { follow_leader(); }));
  if (!leader || shutting_down_)
    return;
  metrics_.leader_changes.fetch_add(1, std::memory_order_relaxed);
  if (!master_.empty())
    unwatch(master_);
  master_ = *leader;
  if (registered_) {
    on_master_lost("another master leads");
    return;
  }
  cancel(registration_timer_);
  registration_timer_ = 0;
  registration_backoff_.reset();
  try_register();
}

void Agent::arm_ping_timer() {
  cancel(ping_timer_);
  ping_timer_ = 0;
  if (ping_interval_ <= Duration::zero() || config_.ping_timeout_intervals == 0)
    return;
  auto timeout = ping_interval_ * config_.ping_timeout_intervals;
  ping_timer_ = after(timeout, [this, timeout] {
    ping_timer_ = 0;
    on_master_lost(
        "no ping for " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
        " ms");
  });
}

// -- frameworks and the agent's end --------------------------------------------

void Agent::remember_framework(wire::FrameworkInfo::Reader info) {
  auto id = str(info.getFrameworkId());
  bool fresh = !frameworks_.count(id);
  frameworks_.insert_or_assign(id, Owned<wire::FrameworkInfo>(info));
  if (fresh)
    checkpoint_framework(id);
}

void Agent::maybe_forget_framework(const std::string& framework_id) {
  auto t = tasks_.lower_bound({framework_id, ""});
  auto e = executors_.lower_bound({framework_id, ""});
  if ((t != tasks_.end() && t->first.first == framework_id) ||
      (e != executors_.end() && e->first.first == framework_id))
    return;
  if (frameworks_.erase(framework_id))
    forget_checkpointed_framework(framework_id);
}

void Agent::shutdown_agent(const std::string& reason) {
  if (shutting_down_)
    return;
  shutting_down_ = true;
  forgetting_ = true;
  log().info("{}: shutting down: {}", me().to_string(), reason.empty() ? "asked to" : reason);
  forward_all();  // what was held for its checkpoint goes now (forward())
  cancel(registration_timer_);
  registration_timer_ = 0;
  if (executors_.empty()) {
    finish_shutdown();
    return;
  }
  std::vector<Key> all;
  for (const auto& [key, e] : executors_)
    all.push_back(key);
  for (const auto& key : all)
    shutdown_executor(key);
}

// The end of a shutdown (a drain, or the master's ShutdownAgent): the work
// it stood for is over, so a later start with this work dir registers as a
// new agent.
void Agent::finish_shutdown() {
  bool unacknowledged = std::any_of(tasks_.begin(), tasks_.end(), [](const auto& t) {
    return t.second.stream.front() != nullptr;
  });
  if (unacknowledged && !shutdown_ack_waited_) {
    // Called again by on_ack, or by the deadline. An agent between its
    // (re)registration and the answer sends them once the answer comes.
    if (shutdown_ack_timer_ == 0)
      shutdown_ack_timer_ = after(config_.shutdown_ack_wait_ms, [this] {
        shutdown_ack_waited_ = true;
        log().warn("{}: shutting down without acknowledgements for some updates", me().to_string());
        finish_shutdown();
      });
    return;
  }
  cancel(shutdown_ack_timer_);
  forget_all_checkpoints();
  stop();
}

// The end of a stop that keeps the work: executor processes are let go
// (the launcher neither kills nor waits for them, their containers stay)
// and every record is written, so the next agent on this work dir adopts
// them. In-process executors cannot outlive the node; their runs end.
void Agent::stop_keeping_work() {
  if (shutting_down_)
    return;  // a drain is under way: it finishes
  if (!writer_) {
    // Without checkpoints no later agent could take them back.
    shutdown_agent("stopped; checkpointing is off, so the executors are shut down");
    return;
  }
  shutting_down_ = true;
  cancel(registration_timer_);
  registration_timer_ = 0;
  size_t kept = 0;
  for (auto& [key, e] : executors_) {
    if (e.pid == 0)
      continue;
    if (auto err = node().launcher().release(e.pid)) {
      log().warn("{}: letting executor {} go: {}", me().to_string(), key.second, describe(err));
      continue;
    }
    e.pid = 0;
    std::lock_guard<std::mutex> guard(containers_->mu);
    containers_->ids.erase(e.run_id);  // not destroyed as the agent ends
    ++kept;
  }
  flush_checkpoints();  // written before the agent ends (the writer's flush)
  log().info("{}: stopping; {} executor(s) keep running for the next start on {}", me().to_string(),
             kept, config_.work_dir.string());
  stop();
}

// Recovery cannot go on (strict): the agent ends and touches nothing, so the
// operator can look at the work dir as it was.
void Agent::fail_to_start(const std::string& why) {
  if (!config_.on_fatal)
    log().error("{}: {}", me().to_string(), why);  // else on_fatal reports it
  shutting_down_ = true;
  {
    std::lock_guard<std::mutex> guard(containers_->mu);
    containers_->ids.clear();
  }
  if (config_.on_fatal)
    config_.on_fatal(why);
  stop();
}

}  // namespace tessera
