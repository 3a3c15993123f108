#include "services/allocator/allocator_actor.hpp"

#include "runtime/log.hpp"
#include "services/common/wire.hpp"

namespace tessera {

namespace {

std::set<std::string> roles_of(capnp::List<capnp::Text>::Reader list) {
  std::set<std::string> out;
  for (auto r : list)
    out.insert(str(r));
  return out;
}

Duration seconds(double s) {
  // Refuse durations come from frameworks: clamp to [0, 1 year].
  constexpr double year_s = 365.0 * 24 * 3600;
  s = std::isfinite(s) ? std::clamp(s, 0.0, year_s) : 0.0;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

}  // namespace

AllocatorActor::AllocatorActor(caf::actor_config& cfg, ActorInit init, AllocatorActorConfig config)
    : Actor(cfg, std::move(init)), config_(std::move(config)) {
  auto made = Allocator::make(config_.allocator);
  if (!made) {
    log().error("allocator: {}", describe(made.error()));
    return;  // on_start stops the actor
  }
  books_ = std::move(*made);
  on<wire::MasterMetricsRequest>([this](const auto& m) { on_metrics(m); });

  on_master<wire::AllocatorAddAgent>([this](auto m) {
    auto total = from_wire(m.getTotal());
    if (!total)
      return check(total.error(), "add agent");
    auto id = str(m.getAgentId());
    if (auto err = books_->add_agent(id, *total))
      return check(err, "add agent");  // claiming on top would count twice
    epochs_[id] = m.getEpoch();
    for (auto use : m.getUsed()) {
      auto r = from_wire(use.getResources());
      if (!r)
        check(r.error(), "add agent used");
      else
        check(books_->claim(str(use.getFrameworkId()), id, str(use.getRole()), *r), "claim");
    }
    schedule_cycle();
  });
  on_master<wire::AllocatorRemoveAgent>([this](auto m) {
    auto id = str(m.getAgentId());
    epochs_.erase(id);
    check(books_->remove_agent(id), "remove agent");
  });
  on_master<wire::AllocatorAddFramework>([this](auto m) {
    auto id = str(m.getFrameworkId());
    check(books_->add_framework(id, roles_of(m.getRoles())), "add framework");
    if (m.getSuppressed())
      check(books_->suppress(id), "suppress");
    schedule_cycle();
  });
  on_master<wire::AllocatorRemoveFramework>([this](auto m) {
    check(books_->remove_framework(str(m.getFrameworkId())), "remove framework");
    schedule_cycle();
  });
  on_master<wire::AllocatorRecover>([this](auto m) {
    auto r = from_wire(m.getResources());
    if (!r)
      return check(r.error(), "recover");
    auto fid = str(m.getFrameworkId());
    auto agent = str(m.getAgentId());
    auto role = str(m.getRole());
    if (m.getRefuseSeconds() > 0)
      check(books_->decline(fid, agent, role, *r, seconds(m.getRefuseSeconds()), now()), "decline");
    else
      check(books_->recover(fid, agent, role, *r), "recover");
    schedule_cycle();
  });
  // Suppression is per role; decline filters are per framework and agent
  // (a revive of any role clears them all).
  on_master<wire::AllocatorSuppress>([this](auto m) {
    check(books_->suppress(str(m.getFrameworkId()), roles_of(m.getRoles())), "suppress");
  });
  on_master<wire::AllocatorRevive>([this](auto m) {
    check(books_->revive(str(m.getFrameworkId()), roles_of(m.getRoles())), "revive");
    schedule_cycle();
  });
  on_master<wire::AllocatorSetWeight>(
      [this](auto m) { check(books_->set_weight(str(m.getRole()), m.getWeight()), "set weight"); });
  on_master<wire::AllocatorSetQuota>([this](auto m) {
    auto r = from_wire(m.getLimit());
    if (!r)
      return check(r.error(), "set quota");
    check(books_->set_quota(str(m.getRole()), r->scalar_totals()), "set quota");
  });
}

void AllocatorActor::on_start() {
  if (!books_)
    return stop();
  tick();
}

template <class T, class F>
void AllocatorActor::on_master(F handler) {
  on<T>([this, handler = std::move(handler)](const Received<T>& m) {
    if (m.sender() != config_.master) {
      ++rejected_;
      log().warn("allocator: ignoring {} from {}, not the master",
                 capnp::Schema::from<T>().getShortDisplayName().cStr(), m.sender().to_string());
      return;
    }
    handler(m.body());
  });
}

void AllocatorActor::check(const caf::error& err, const char* what) {
  if (!err)
    return;
  ++rejected_;
  // The master and allocator see events in one order, so a refusal means a
  // bug or a race the master tolerates (a grant for a removed agent); say
  // so at debug level only after the first few.
  if (rejected_ <= 16)
    log().warn("allocator: {} refused: {}", what, describe(err));
  else
    log().debug("allocator: {} refused: {}", what, describe(err));
}

void AllocatorActor::schedule_cycle() {
  if (cycle_pending_)
    return;
  cycle_pending_ = true;
  defer([this] { run_cycle(); });
}

void AllocatorActor::tick() {
  run_cycle();
  after(config_.allocation_interval, [this] { tick(); });
}

void AllocatorActor::run_cycle() {
  cycle_pending_ = false;
  auto started = std::chrono::steady_clock::now();
  auto grants = books_->allocate(now());
  record_cycle(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count());
  ++cycles_;
  if (grants.empty())
    return;
  send(config_.master, build<wire::AllocatorOffers>([&](wire::AllocatorOffers::Builder b) {
         auto list = b.initGrants(static_cast<unsigned>(grants.size()));
         for (unsigned i = 0; i < grants.size(); ++i) {
           const auto& g = grants[i];
           auto out = list[i];
           out.setFrameworkId(g.framework);
           out.setAgentId(g.agent);
           out.setRole(g.role);
           auto epoch = epochs_.find(g.agent);
           out.setAgentEpoch(epoch != epochs_.end() ? epoch->second : 0);
           to_wire(g.resources, out.initResources(wire_size(g.resources)));
         }
       }));
}

void AllocatorActor::record_cycle(double ms) {
  size_t i = 0;
  while (i < std::size(cycle_bounds_ms) && ms > cycle_bounds_ms[i])
    ++i;
  ++cycle_counts_[i];
  cycle_sum_ms_ += ms;
  if (cycle_window_ms_.size() < cycle_window_max)
    cycle_window_ms_.push_back(ms);
  else
    cycle_window_ms_[cycle_window_next_++ % cycle_window_max] = ms;
}

void AllocatorActor::on_metrics(const Received<wire::MasterMetricsRequest>& m) {
  // Read-only, and only for actors of this node (the master's state view).
  if (!node().is_local(m.sender()))
    return;
  auto window = cycle_window_ms_;
  double p50 = 0;
  if (!window.empty()) {
    std::nth_element(window.begin(), window.begin() + window.size() / 2, window.end());
    p50 = window[window.size() / 2];
  }
  reply(m, build<wire::MasterMetrics>([&](wire::MasterMetrics::Builder b) {
          auto counters = b.initCounters(3);
          counters[0].setName("allocation_runs_total");
          counters[0].setValue(double(cycles_));
          counters[1].setName("allocation_run_ms_p50");
          counters[1].setValue(p50);
          counters[2].setName("allocator_rejected_total");
          counters[2].setValue(double(rejected_));
          auto bounds = b.initCycleBucketsMs(static_cast<unsigned>(std::size(cycle_bounds_ms)));
          for (unsigned i = 0; i < std::size(cycle_bounds_ms); ++i)
            bounds.set(i, cycle_bounds_ms[i]);
          auto counts = b.initCycleCounts(static_cast<unsigned>(cycle_counts_.size()));
          uint64_t cumulative = 0;
          for (unsigned i = 0; i < cycle_counts_.size(); ++i)
            counts.set(i, cumulative += cycle_counts_[i]);
          b.setCycleSumMs(cycle_sum_ms_);
        }));
}

}  // namespace tessera
