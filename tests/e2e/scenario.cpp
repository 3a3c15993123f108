#include "e2e/scenario.hpp"

#include "runtime/log.hpp"

namespace tessera::testing {

using namespace std::chrono_literals;

void Scenario::fact(const std::string& f) {
  std::lock_guard<std::mutex> lock(mu_);
  facts_.insert(f);
}

std::vector<std::string> Scenario::facts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {facts_.begin(), facts_.end()};
}

Scenario::Phase Scenario::phase() const {
  std::lock_guard<std::mutex> lock(mu_);
  return phase_;
}

bool Scenario::set_phase(Phase p) {
  std::lock_guard<std::mutex> lock(mu_);
  if (p <= phase_)
    return false;
  phase_ = p;
  return true;
}

void Scenario::count(const std::string& key, int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  counts_[key] += delta;
}

int Scenario::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<std::string> expected_facts() {
  std::vector<std::string> f = {
      "fair analytics=2 web=2",
      "a1 TASK_KILLED",
      "w1 TASK_KILLED",
      "hello TASK_FINISHED",
      "hello stdout=hello",
      "toobig TASK_ERROR REASON_TASK_INVALID",
      "fail TASK_FAILED exit=3",
      "fail stderr=oops",
      "reconcile a1 TASK_KILLED",
      "reconcile a2 TASK_RUNNING",
      "reconcile ghost TASK_UNKNOWN",
      "implicit w2 TASK_RUNNING",
      "torn down analytics",
      "torn down web",
  };
  std::sort(f.begin(), f.end());
  return f;
}

SchedulerConfig scenario_config(const Address& master, const std::string& role, uint64_t seed) {
  SchedulerConfig c;
  c.master = master;
  c.framework.name = "scenario-" + role;
  c.framework.roles = {role};
  if (role == "analytics")
    c.framework.capabilities = {FrameworkCapability::PARTITION_AWARE};
  c.seed = seed;
  return c;
}

namespace {

const Resources& task_resources() {
  static const Resources r = *Resources::parse("cpus:1;mem:64");
  return r;
}

bool fits(const Offer& o) {
  return o.resources.allocatable_to(o.role).total("cpus") >= 1 &&
         o.resources.allocatable_to(o.role).total("mem") >= 64;
}

TaskSpec task(std::string id, std::string shell, Resources r = task_resources()) {
  TaskSpec t;
  t.id = std::move(id);
  t.shell = std::move(shell);
  t.resources = std::move(r);
  return t;
}

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  return s;
}

}  // namespace

ScenarioFramework::ScenarioFramework(caf::actor_config& cfg, ActorInit init, SchedulerConfig config,
                                     std::shared_ptr<Scenario> scenario)
    : Scheduler(cfg, std::move(init), std::move(config)), scenario_(std::move(scenario)) {
  role_ = this->config().framework.roles.front();
  prefix_ = analytics() ? "a" : "w";
}

void ScenarioFramework::subscribed(const std::string&) {
  if (subscribed_once_)
    return;
  subscribed_once_ = true;
  scenario_->count("subscribed");
  after(20ms, [this] { poll(); });
}

void ScenarioFramework::offers(const std::vector<Offer>& offers) {
  auto phase = scenario_->phase();
  for (const auto& o : offers) {
    if (phase == Scenario::Phase::fill && launched_fill_ < 4 && fits(o)) {
      auto id = prefix_ + std::to_string(++launched_fill_);
      agent_of_task_[id] = o.agent_address;
      accept({o.id}, {task(id, "exec sleep 1000")}, 0s);
    } else if (phase == Scenario::Phase::work && !work_launched_ && fits(o)) {
      launch_work(o);
    } else {
      decline({o.id}, phase >= Scenario::Phase::work ? 60s : 1s);
    }
  }
}

void ScenarioFramework::launch_work(const Offer& o) {
  work_launched_ = true;
  if (analytics()) {
    agent_of_task_["hello"] = o.agent_address;
    accept({o.id},
           {task("hello", "echo hello"), task("toobig", "true", *Resources::parse("cpus:100"))},
           60s);
  } else {
    agent_of_task_["fail"] = o.agent_address;
    accept({o.id}, {task("fail", "echo oops >&2; exit 3")}, 60s);
  }
}

void ScenarioFramework::update(const TaskStatus& s) {
  const auto& id = s.task_id;
  if (s.reason == TaskReason::RECONCILIATION) {
    if (analytics()) {
      scenario_->fact("reconcile " + id + " " + to_string(s.state));
      if (++reconcile_answers_ == 3)
        scenario_->count("reconciled");
    } else if (id == "end-marker") {
      scenario_->count("reconciled");
    } else {
      scenario_->fact("implicit " + id + " " + to_string(s.state));
    }
    return;
  }
  bool fill_task = id.size() > 1 && id.rfind(prefix_, 0) == 0 &&
                   std::all_of(id.begin() + 1, id.end(), ::isdigit);
  // Updates are delivered at least once: a retried one may come twice.
  if (!seen_.insert(id + " " + to_string(s.state)).second)
    return;
  if (fill_task && s.state == TaskState::RUNNING) {
    ++running_fill_;
    scenario_->count("running." + role_);
    scenario_->count("running");
  } else if (fill_task && s.terminal()) {
    scenario_->fact(id + " " + to_string(s.state));
    if (id == prefix_ + "1")
      scenario_->count("killed");
  } else if (s.terminal()) {
    record_end(s);
  }
}

void ScenarioFramework::record_end(const TaskStatus& s) {
  const auto& id = s.task_id;
  if (id == "toobig") {
    scenario_->fact("toobig " + std::string(to_string(s.state)) + " " + to_string(s.reason));
    ++work_ended_;
  } else if (id == "hello") {
    scenario_->fact("hello " + std::string(to_string(s.state)));
    read_output("hello", "stdout", "hello stdout=");
  } else if (id == "fail") {
    scenario_->fact("fail " + std::string(to_string(s.state)) +
                    " exit=" + std::to_string(s.exit_code));
    read_output("fail", "stderr", "fail stderr=");
  } else {
    scenario_->fact("unexpected " + id + " " + describe(s));
  }
}

void ScenarioFramework::read_output(const std::string& task, const std::string& path,
                                    const std::string& fact_head) {
  ++reads_pending_;
  read_whole_sandbox_file(
      agent_of_task_[task], task, path, 4096, [this, fact_head](expected<SandboxData> data) {
        --reads_pending_;
        ++work_ended_;
        if (data)
          scenario_->fact(fact_head + chomp(data->bytes));
        else
          scenario_->fact(fact_head + "error " + tessera::describe(data.error()));
      });
}

void ScenarioFramework::error(const std::string& message) {
  scenario_->fact("error " + role_ + ": " + message);
}

void ScenarioFramework::poll() {
  using Phase = Scenario::Phase;
  auto phase = scenario_->phase();
  if (phase == Phase::fill && scenario_->get("running") == 4) {
    phase = Phase::kill;
    if (scenario_->set_phase(Phase::kill))
      scenario_->fact("fair analytics=" + std::to_string(scenario_->get("running.analytics")) +
                      " web=" + std::to_string(scenario_->get("running.web")));
  }
  if (phase == Phase::kill && !killed_first_) {
    killed_first_ = true;
    kill(prefix_ + "1");
  }
  if (phase == Phase::kill && scenario_->get("killed") == 2) {
    scenario_->set_phase(Phase::work);
    phase = Phase::work;
  }
  if (phase == Phase::work && seen_phase_ < Phase::work)
    revive();  // kill-phase declines filtered the freed cpus
  int work_expected = analytics() ? 2 : 1;
  if (phase == Phase::work && work_ended_ == work_expected && reads_pending_ == 0 &&
      seen_phase_ <= Phase::work) {
    scenario_->count("work");
    work_ended_ = -100;  // counted once
  }
  if (phase == Phase::work && scenario_->get("work") == 2) {
    scenario_->set_phase(Phase::reconcile);
    phase = Phase::reconcile;
  }
  if (phase == Phase::reconcile && !reconciled_) {
    reconciled_ = true;
    if (analytics()) {
      reconcile({{"a1", ""}, {"a2", ""}, {"ghost", ""}});
    } else {
      reconcile();
      reconcile({{"end-marker", ""}});
    }
  }
  if (phase == Phase::reconcile && scenario_->get("reconciled") == 2) {
    scenario_->set_phase(Phase::teardown);
    phase = Phase::teardown;
  }
  if (phase == Phase::teardown && seen_phase_ < Phase::teardown) {
    teardown();
    scenario_->fact("torn down " + role_);
    scenario_->count("torn");
  }
  if (phase == Phase::teardown && scenario_->get("torn") == 2)
    scenario_->set_phase(Phase::done);
  seen_phase_ = phase;
  if (scenario_->phase() != Phase::done)
    after(20ms, [this] { poll(); });
}

}  // namespace tessera::testing
