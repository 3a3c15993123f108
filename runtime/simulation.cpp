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

Simulation::Simulation(uint64_t seed)
    : seed_(seed), rng_(seed), clock_(Clock::make_manual()), fault_rng_(seed ^ 0x5eedfa17ULL) {
  // Virtual time starts at the same instant in every run (a manual clock
  // starts at the steady clock's now, which would leak into timestamps and
  // so into the digest), far past any real uptime.
  clock_->advance_to(TimePoint(std::chrono::hours(24 * 365 * 20)));
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
  stopped_.clear();
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
  install_filters(node);
  return node;
}

void Simulation::install_filters(Node& node) {
  node.filters().add([this](const Envelope& env) {
    observe(env);
    return fault(env);
  });
  if (auto ok = node.listen(); !ok)
    throw std::runtime_error("simulation: " + describe(ok.error()));
}

void Simulation::crash(Node& node) {
  crashed_.push_back(&node);
  node.stop();
}

bool Simulation::crashed(const Node& node) const {
  return std::find(crashed_.begin(), crashed_.end(), &node) != crashed_.end();
}

Node& Simulation::restart(Node& old) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](auto& n) { return n.get() == &old; });
  if (it == nodes_.end() || !crashed(old))
    throw std::logic_error("simulation: restart of a node that is not crashed");
  run();  // the crash's exits are delivered before the address is reused
  crashed_.erase(std::find(crashed_.begin(), crashed_.end(), &old));
  NodeConfig config = old.config();
  stopped_.push_back(std::move(*it));
  *it = std::unique_ptr<Node>(new Node(std::move(config), nullptr, this, system_.get()));
  install_filters(**it);
  return **it;
}

namespace {

std::pair<uint16_t, uint16_t> link_key(uint16_t a, uint16_t b) {
  return a < b ? std::pair{a, b} : std::pair{b, a};
}

}  // namespace

void Simulation::set_link(const Node& a, const Node& b, LinkFault fault) {
  links_[link_key(a.port(), b.port())] = fault;
}

void Simulation::clear_link(const Node& a, const Node& b) {
  links_.erase(link_key(a.port(), b.port()));
}

void Simulation::clear_links() {
  links_.clear();
}

void Simulation::stall(const Node& node, Duration d) {
  auto until = clock_->now() + d;
  auto& at = stalled_until_[node.port()];
  at = std::max(at, until);
}

bool Simulation::stalled(const Node& node) const {
  auto it = stalled_until_.find(node.port());
  return it != stalled_until_.end() && it->second > clock_->now();
}

// What the fault rules do to one delivery. Draws come from fault_rng_ only
// when a rule applies, so a run without faults keeps its interleaving.
FilterAction Simulation::fault(const Envelope& env) {
  if (links_.empty() && stalled_until_.empty())
    return FilterAction::Pass();
  auto now = clock_->now();
  TimePoint release{};
  for (auto port : {env.sender.port, env.receiver.port}) {
    auto it = stalled_until_.find(port);
    if (it == stalled_until_.end())
      continue;
    if (it->second <= now)
      stalled_until_.erase(it);
    else
      release = std::max(release, it->second);
  }
  if (release > now)
    return FilterAction::Delay(release - now);
  if (env.sender.port == env.receiver.port || env.sender.empty())
    return FilterAction::Pass();
  auto it = links_.find(link_key(env.sender.port, env.receiver.port));
  if (it == links_.end())
    return FilterAction::Pass();
  const auto& f = it->second;
  if (f.partitioned)
    return FilterAction::Drop();
  std::uniform_real_distribution<double> p(0.0, 1.0);
  if (f.drop > 0 && p(fault_rng_) < f.drop)
    return FilterAction::Drop();
  if (f.duplicate > 0 && p(fault_rng_) < f.duplicate)
    return FilterAction::Duplicate();
  if (f.delay_max > Duration::zero()) {
    auto d = std::uniform_int_distribution<int64_t>(0, f.delay_max.count())(fault_rng_);
    return FilterAction::Delay(Duration(d));
  }
  return FilterAction::Pass();
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
  run(advance_steps_max_);
  for (auto next = clock_->next_deadline(); next && *next <= target;
       next = clock_->next_deadline()) {
    clock_->advance_to(*next);
    run(advance_steps_max_);
  }
  clock_->advance_to(target);
  run(advance_steps_max_);
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
