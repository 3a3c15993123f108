#include "services/sim/sim_framework.hpp"

#include "services/common/wire.hpp"

#include <algorithm>

namespace tessera::sim {

using namespace std::chrono_literals;

namespace {

Duration ms(int64_t n) {
  return std::chrono::milliseconds(n);
}

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

}  // namespace

Behaviour Behaviour::draw(std::mt19937_64& rng, Duration run_for) {
  Behaviour b;
  b.tasks_wanted = static_cast<int>(uniform(rng, 1, 8));
  b.task_cpus = uniform(rng, 0, 1) ? 1.0 : 0.5;
  b.task_mem = static_cast<double>(64 * uniform(rng, 1, 4));
  b.kill_per_tick = uniform(rng, 0, 2) == 0 ? 0.02 : 0.0;
  b.decline_refuse = ms(uniform(rng, 500, 20'000));
  b.suppress_when_satisfied = uniform(rng, 0, 1) == 1;
  b.partition_aware = uniform(rng, 0, 1) == 1;
  b.reconcile_every = ms(uniform(rng, 10'000, 60'000));
  if (uniform(rng, 0, 4) == 0) {
    auto ms_total = std::chrono::duration_cast<std::chrono::milliseconds>(run_for).count();
    b.teardown_at = ms(uniform(rng, ms_total / 4, std::max<int64_t>(ms_total / 4, ms_total - 1)));
  }
  return b;
}

SimFramework::SimFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                           SimFrameworkConfig sim)
    : Scheduler(cfg, std::move(init), std::move(config)),
      sim_(std::move(sim)),
      rng_(this->config().seed ^ 0xf00dULL) {
}

void SimFramework::started() {
  after(tick, [this] { on_tick(); });
}

void SimFramework::subscribed(const std::string& framework_id) {
  auto& b = book();
  b.framework_id = framework_id;
  sim_.world->event(sim_.name + "#" + std::to_string(sim_.instance) + " subscribed as " +
                    framework_id);
  // Offers from before are void, suppression is kept by the library;
  // what it launched before is reconciled.
  reconcile_unsettled();
}

int SimFramework::active() const {
  const auto& b = sim_.world->framework(sim_.name);
  return static_cast<int>(std::count_if(b.tasks.begin(), b.tasks.end(), [](const auto& kv) {
    return !is_terminal(kv.second.last) && kv.second.last != TaskState::UNKNOWN;
  }));
}

bool SimFramework::fits(const Offer& o, int n) const {
  auto r = o.resources.allocatable_to(o.role);
  return r.total("cpus") >= n * sim_.behaviour.task_cpus &&
         r.total("mem") >= n * sim_.behaviour.task_mem;
}

void SimFramework::offers(const std::vector<Offer>& offers) {
  auto& b = book();
  b.last_offer_at = sim_.world->now();
  const auto& be = sim_.behaviour;
  for (const auto& o : offers) {
    int missing = be.tasks_wanted - active();
    int n = 0;
    while (n < missing && fits(o, n + 1))
      ++n;
    if (*sim_.quiet || b.torn_down || n == 0) {
      static_cast<void>(decline({o.id}, *sim_.quiet ? 1s : be.decline_refuse));
      continue;
    }
    std::vector<TaskSpec> tasks;
    for (int i = 0; i < n; ++i) {
      TaskSpec t;
      t.id = sim_.name + "-t" + std::to_string(b.next_task++);
      t.shell = "simulated";
      t.resources = *Resources::parse("cpus:" + std::to_string(be.task_cpus) +
                                      ";mem:" + std::to_string(be.task_mem));
      tasks.push_back(std::move(t));
    }
    if (auto err = accept({o.id}, tasks, be.decline_refuse); err)
      continue;
    for (const auto& t : tasks) {
      auto& bt = b.tasks[t.id];
      bt.agent_id = o.agent_id;
      bt.last_at = sim_.world->now();
      sim_.world->event(sim_.name + " launches " + t.id + " on " + o.agent_id);
    }
  }
}

void SimFramework::update(const TaskStatus& status) {
  sim_.world->delivered(sim_.name, sim_.instance, status);
}

void SimFramework::error(const std::string& message) {
  sim_.world->event(sim_.name + " removed by the master: " + message);
  book().torn_down = true;
  book().wants_offers = false;
  stop();
}

void SimFramework::reconcile_unsettled() {
  std::vector<TaskRef> refs;
  for (const auto& [id, t] : book().tasks)
    if (!is_terminal(t.last) && t.last != TaskState::UNKNOWN)
      refs.push_back(TaskRef{id, t.agent_id});
  last_reconcile_ = now();
  if (!refs.empty())
    static_cast<void>(reconcile(refs));
}

void SimFramework::on_tick() {
  after(tick, [this] { on_tick(); });
  auto& b = book();
  const auto& be = sim_.behaviour;
  if (b.torn_down || !connected())
    return;
  if (be.teardown_at && sim_.world->now() >= *be.teardown_at && !*sim_.quiet) {
    if (!teardown()) {
      sim_.world->torn_down(sim_.name);
      b.wants_offers = false;
    }
    return;
  }
  bool satisfied = active() >= be.tasks_wanted;
  if (!*sim_.quiet)
    b.wants_offers = !satisfied;  // as the faults healed: liveness is checked on it
  if (be.suppress_when_satisfied && satisfied != suppressed_) {
    auto err = satisfied ? suppress() : revive();
    if (!err) {
      suppressed_ = satisfied;
      sim_.world->event(sim_.name + (satisfied ? " suppresses" : " revives"));
    }
  }
  if (be.kill_per_tick > 0 && !*sim_.quiet &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < be.kill_per_tick) {
    std::vector<std::string> live;
    for (const auto& [id, t] : b.tasks)
      if (t.last == TaskState::RUNNING)
        live.push_back(id);
    if (!live.empty()) {
      auto& id = live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng_)];
      sim_.world->kill_asked(sim_.name, id);
      static_cast<void>(kill(id, b.tasks[id].agent_id));
    }
  }
  if (now() - last_reconcile_ >= be.reconcile_every)
    reconcile_unsettled();
}

}  // namespace tessera::sim
