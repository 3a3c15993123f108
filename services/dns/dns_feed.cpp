#include "services/dns/dns_feed.hpp"

#include "runtime/log.hpp"
#include "services/common/wire.hpp"

namespace tessera::dns {

namespace {

TaskFacts facts_of(wire::TaskView::Reader t) {
  auto st = t.getStatus();
  TaskFacts f;
  f.framework_id = str(t.getFrameworkId());
  f.task_id = str(st.getTaskId());
  f.name = str(t.getName());
  f.agent_id = str(t.getAgentId());
  for (auto r : t.getResources()) {
    if (r.getName() != "ports" || !r.isRanges())
      continue;
    for (auto range : r.getRanges())
      for (auto p = range.getBegin(); p <= range.getEnd() && p <= 65535 && f.ports.size() < 64; ++p)
        f.ports.push_back(static_cast<uint16_t>(p));
  }
  bool unhealthy = st.getHasHealthy() && !st.getHealthy();
  f.listed = t.getState() == wire::TaskState::RUNNING && !unhealthy;
  return f;
}

}  // namespace

void apply_event(wire::MasterEvent::Reader e, RecordTable::Batch& b) {
  switch (e.which()) {
    case wire::MasterEvent::AGENT_ADDED: {
      auto a = e.getAgentAdded();
      b.upsert_agent(str(a.getId()), str(a.getAddress()), str(a.getHostname()));
      return;
    }
    case wire::MasterEvent::AGENT_REMOVED:
      return b.remove_agent(str(e.getAgentRemoved()));
    case wire::MasterEvent::FRAMEWORK_ADDED: {
      auto info = e.getFrameworkAdded().getInfo();
      b.upsert_framework(str(info.getFrameworkId()), str(info.getName()));
      return;
    }
    case wire::MasterEvent::FRAMEWORK_REMOVED:
      return b.remove_framework(str(e.getFrameworkRemoved()));
    case wire::MasterEvent::TASK_ADDED:
      return b.upsert_task(facts_of(e.getTaskAdded()));
    case wire::MasterEvent::TASK_COMPLETED: {
      auto t = e.getTaskCompleted();
      return b.remove_task(str(t.getFrameworkId()), str(t.getStatus().getTaskId()));
    }
    default:
      return;  // offers and roles name nothing
  }
}

DnsFeed::DnsFeed(caf::actor_config& cfg, ActorInit init, FeedConfig config,
                 std::shared_ptr<RecordTable> table, std::shared_ptr<FeedStatus> status)
    : Actor(cfg, std::move(init)),
      config_(std::move(config)),
      table_(std::move(table)),
      status_(std::move(status)) {
  on<wire::MasterEventBatch>([this](const auto& m) { on_batch(m); });
  on_lost([this](const Address& who, const caf::error& why) {
    if (who == config_.master)
      lost("the master is gone: " + describe(why));
  });
}

void DnsFeed::on_start() {
  subscribe();
}

void DnsFeed::subscribe() {
  if (ready_)
    return;
  watch(config_.master);
  send(config_.master, build<wire::SubscribeMasterEvents>([](auto) {}));
  resubscribe_timer_ = after(config_.resubscribe_interval, [this] {
    resubscribe_timer_ = 0;
    if (!ready_ && !loading_)
      subscribe();
  });
}

void DnsFeed::lost(const std::string& why) {
  if (ready_ || loading_)
    log().info("dns feed: {}; subscribing again", why);
  ready_ = false;
  loading_ = false;
  staging_.reset();
  status_->ready = false;
  if (!resubscribe_timer_)
    resubscribe_timer_ = after(config_.resubscribe_interval, [this] {
      resubscribe_timer_ = 0;
      subscribe();
    });
}

void DnsFeed::on_batch(const Received<wire::MasterEventBatch>& m) {
  if (m.sender() != config_.master)
    return;
  auto batch = m.body();
  bool reset = batch.getReset();
  if (reset) {
    loading_ = true;
    ready_ = false;
    next_sequence_ = batch.getFirstSequence();
    staging_ = table_->successor();
  }
  if (!ready_ && !loading_)
    return;  // a change to a copy already given up: wait for the snapshot
  if (batch.getFirstSequence() != next_sequence_) {
    // The master is on this node (it refuses remote subscribers) and local
    // delivery neither loses nor reorders messages, so a jump means another
    // subscriber's snapshot took those numbers (master_events.cpp numbers
    // each snapshot from the stream's one counter), not that events were
    // missed. Counted; resubscribing would only move the jump to the other
    // subscriber, and back.
    ++status_->gaps;
    log().debug("dns feed: events {} to {} went to another subscriber's snapshot", next_sequence_,
                batch.getFirstSequence());
  }
  next_sequence_ = batch.getFirstSequence() + batch.getEvents().size();
  // The master's address is the leader's: leader.DOMAIN and master.DOMAIN.
  auto& into = loading_ ? *staging_ : *table_;
  into.apply([&](RecordTable::Batch& b) {
    if (reset)
      b.set_leader(Ip::parse(config_.master.host), config_.master.port);
    for (auto e : batch.getEvents())
      apply_event(e, b);
  });
  ++status_->batches;
  if (batch.getSnapshotDone()) {
    table_->replace_with(*staging_);
    staging_.reset();
    loading_ = false;
    ready_ = true;
    status_->ready = true;
    auto s = table_->stats();
    log().info("dns feed: following {} ({} agents, {} tasks, {} names)", config_.master.to_string(),
               s.agents, s.tasks, s.names);
  }
}

}  // namespace tessera::dns
