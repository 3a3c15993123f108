#include "runtime/simulation.hpp"

#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <thread>

namespace tessera {

namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  auto p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t fnv1a(uint64_t h, const std::string& s) {
  return fnv1a(h, s.data(), s.size());
}

caf::scheduler::test_coordinator& coordinator(caf::actor_system& sys) {
  return dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
}

}  // namespace

Simulation::Simulation(uint64_t seed) : seed_(seed), rng_(seed), clock_(Clock::make_manual()) {
  config_ = std::make_unique<caf::actor_system_config>();
  configure_actor_system(*config_, NodeConfig{});
  config_->set("scheduler.policy", caf::atom("testing"));
  system_ = std::make_unique<caf::actor_system>(*config_);
}

Simulation::~Simulation() {
  for (auto& node : nodes_)
    node->stop();
  run();
  nodes_.clear();
  {
    // Exit reports of processes the nodes' launchers reaped on the way out
    // hold actor handles: drop them while the actor system still exists.
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.clear();
  }
  system_.reset();
}

Node& Simulation::add_node(std::string host, uint16_t port, NodeConfig config) {
  config.host = std::move(host);
  config.port = port != 0 ? port : next_port_++;
  config.clock = clock_;
  nodes_.push_back(
      std::unique_ptr<Node>(new Node(std::move(config), nullptr, this, system_.get())));
  auto& node = *nodes_.back();
  node.filters().add([this](const Envelope& env) {
    observe(env);
    return FilterAction::Pass();
  });
  if (auto ok = node.listen(); !ok)
    throw std::runtime_error("simulation: " + describe(ok.error()));
  return node;
}

void Simulation::crash(Node& node) {
  crashed_.push_back(&node);
  node.stop();
}

caf::actor Simulation::lookup(const Address& a) const {
  for (auto& node : nodes_) {
    if (!node->is_local(a))
      continue;
    if (std::find(crashed_.begin(), crashed_.end(), node.get()) != crashed_.end())
      return {};
    return node->lookup_local(a.name);
  }
  return {};
}

size_t Simulation::run(size_t steps_max) {
  auto& sched = coordinator(*system_);
  size_t steps = 0;
  while ((!sched.jobs.empty() || drain_posted()) && steps < steps_max) {
    if (sched.jobs.empty())
      continue;  // the posted work was for actors that are gone
    auto pick = static_cast<size_t>(rng_() % sched.jobs.size());
    if (pick != 0)
      std::rotate(sched.jobs.begin(), sched.jobs.begin() + static_cast<long>(pick),
                  sched.jobs.begin() + static_cast<long>(pick) + 1);
    sched.run_once();
    ++steps;
  }
  return steps;
}

void Simulation::advance(Duration d) {
  auto target = clock_->now() + d;
  run();
  for (auto next = clock_->next_deadline(); next && *next <= target;
       next = clock_->next_deadline()) {
    clock_->advance_to(*next);
    run();
  }
  clock_->advance_to(target);
  run();
}

void Simulation::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(posted_mu_);
  posted_.push_back(std::move(fn));
}

bool Simulation::drain_posted() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    work.swap(posted_);
  }
  for (auto& fn : work)
    fn();
  return !work.empty();
}

bool Simulation::run_until(const std::function<bool()>& pred,
                           std::chrono::milliseconds wall_timeout) {
  auto deadline = std::chrono::steady_clock::now() + wall_timeout;
  for (;;) {
    run();
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Simulation::observe(const Envelope& env) {
  auto h = fnv1a(digest_, env.receiver.to_string());
  h = fnv1a(h, env.sender.to_string());
  uint64_t ids[] = {env.type_id, env.request_id, env.reply_to, env.error_code};
  h = fnv1a(h, ids, sizeof(ids));
  h = fnv1a(h, env.payload.data(), env.payload.materialised() ? env.payload.size_bytes() : 0);
  digest_ = h;
  ++deliveries_;
}

}  // namespace tessera
