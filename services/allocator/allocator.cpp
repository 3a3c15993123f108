#include "services/allocator/allocator.hpp"

#include <algorithm>
#include <cmath>

namespace tessera {

namespace {

caf::error unknown(const char* what, const std::string& id) {
  return make_error(Errc::invalid_argument, std::string("unknown ") + what + " '" + id + "'");
}

template <class ByRole>
auto find_role(ByRole& roles, const std::string& role) {
  return std::find_if(roles.begin(), roles.end(), [&](auto& e) { return e.first == role; });
}

void add_to(ScalarTotals& into, const ScalarTotals& r) {
  for (auto& [name, q] : r)
    into[name] += q;
}

// Subtracts, clamping at zero and erasing what is used up (float residue
// included), so books never drift negative.
void take_from(ScalarTotals& from, const ScalarTotals& r) {
  for (auto& [name, q] : r) {
    auto it = from.find(name);
    if (it == from.end())
      continue;
    it->second -= q;
    if (it->second <= 1e-9)
      from.erase(it);
  }
}

// Mesos's minimum allocatable resources: an offer without at least 0.01 cpus
// or 32 MiB of memory cannot run a task, so scraps stay in the pool.
bool worth_offering(const Resources& r) {
  return r.total("cpus") >= 0.01 || r.total("mem") >= 32;
}

}  // namespace

expected<std::unique_ptr<Allocator>> Allocator::make(AllocatorConfig config) {
  auto roles = make_sorter(config.sorter, config.seed);
  if (!roles)
    return roles.error();
  return std::unique_ptr<Allocator>(new Allocator(std::move(config), std::move(*roles)));
}

Allocator::Allocator(AllocatorConfig config, std::unique_ptr<Sorter> roles)
    : config_(std::move(config)), rng_(config_.seed), roles_(std::move(roles)) {
}

// -- agents --------------------------------------------------------------------

caf::error Allocator::add_agent(const AgentId& id, const Resources& total) {
  if (id.empty() || agents_.count(id))
    return make_error(Errc::invalid_argument, "agent '" + id + "' is empty or known");
  auto [entry, _] = agents_.try_emplace(id);
  entry->second.total = total;
  entry->second.available = total;
  agent_order_.push_back(&*entry);
  add_to(cluster_total_, total.scalar_totals());
  totals_dirty_ = true;  // shares are recomputed once, at the next cycle
  return caf::none;
}

caf::error Allocator::remove_agent(const AgentId& id) {
  auto it = agents_.find(id);
  if (it == agents_.end())
    return unknown("agent", id);
  for (auto& [fid, fw] : frameworks_) {
    auto held = fw.held.find(id);
    if (held != fw.held.end()) {
      auto roles = held->second;  // release() edits fw.held
      for (auto& [role, r] : roles)
        release(fw, fid, id, role, r);
    }
    fw.filtered.erase(id);
  }
  take_from(cluster_total_, it->second.total.scalar_totals());
  std::erase(agent_order_, &*it);
  agents_.erase(it);
  totals_dirty_ = true;
  return caf::none;
}

// -- frameworks and roles --------------------------------------------------------

caf::error Allocator::add_framework(const FrameworkId& fid, const std::set<std::string>& roles) {
  if (fid.empty() || frameworks_.count(fid))
    return make_error(Errc::invalid_argument, "framework '" + fid + "' is empty or known");
  if (roles.empty())
    return make_error(Errc::invalid_argument, "framework '" + fid + "' has no role");
  for (auto& role : roles)
    if (!valid_role(role))
      return make_error(Errc::invalid_argument, "framework '" + fid + "': bad role '" + role + "'");
  frameworks_[fid].roles = roles;
  ++unsuppressed_;
  for (auto& role : roles)
    if (auto err = join_role(role, fid))
      return err;
  return caf::none;
}

caf::error Allocator::join_role(const std::string& role, const FrameworkId& fid) {
  auto [it, first] = role_books_.try_emplace(role);
  if (first) {
    // Each role's random sorter gets its own stream, derived from the seed.
    auto sorter = make_sorter(config_.sorter, config_.seed ^ std::hash<std::string>{}(role));
    if (!sorter)
      return sorter.error();
    it->second.frameworks = std::move(*sorter);
    it->second.frameworks->set_total(cluster_total_);
    auto weight = weights_.find(role);
    static_cast<void>(roles_->add(role, weight != weights_.end() ? weight->second : 1.0));
  }
  return it->second.frameworks->add(fid);
}

void Allocator::leave_role(const std::string& role, const FrameworkId& fid) {
  auto it = role_books_.find(role);
  if (it == role_books_.end())
    return;
  static_cast<void>(it->second.frameworks->remove(fid));
  if (it->second.frameworks->size() == 0) {
    static_cast<void>(roles_->remove(role));
    role_books_.erase(it);
  }
}

caf::error Allocator::remove_framework(const FrameworkId& fid) {
  auto it = frameworks_.find(fid);
  if (it == frameworks_.end())
    return unknown("framework", fid);
  auto& fw = it->second;
  auto held = fw.held;  // release() edits fw.held
  for (auto& [agent, roles] : held)
    for (auto& [role, r] : roles)
      release(fw, fid, agent, role, r);
  for (auto& agent : std::vector<AgentId>(fw.filtered.begin(),
                                          fw.filtered.end()))  // drop_filter edits fw.filtered
    drop_filter(agent, agents_.at(agent), fid);
  if (!fw.suppressed_roles.empty())
    --partly_suppressed_;
  if (!fw.suppressed)
    --unsuppressed_;
  for (auto& role : fw.roles)
    leave_role(role, fid);
  frameworks_.erase(it);
  return caf::none;
}

caf::error Allocator::set_weight(const std::string& role, double weight) {
  if (!valid_role(role) || !(weight > 0) || !std::isfinite(weight))
    return make_error(Errc::invalid_argument, "bad weight for role '" + role + "'");
  weights_[role] = weight;
  if (roles_->contains(role))
    return roles_->set_weight(role, weight);
  return caf::none;
}

caf::error Allocator::set_quota(const std::string& role, const ScalarTotals& limit) {
  if (!valid_role(role))
    return make_error(Errc::invalid_argument, "bad role '" + role + "'");
  for (auto& [name, q] : limit)
    if (!(q >= 0) || !std::isfinite(q))
      return make_error(Errc::invalid_argument, "bad quota " + name + " for role '" + role + "'");
  quotas_[role] = limit;
  return caf::none;
}

// -- books -----------------------------------------------------------------------

void Allocator::grant(const FrameworkId& fid, const AgentId& id, Agent& agent,
                      const std::string& role, const Resources& r) {
  agent.available -= r;  // offerable() took r from available: contains holds
  auto& roles = frameworks_.at(fid).held[id];
  if (auto it = find_role(roles, role); it != roles.end())
    it->second += r;
  else
    roles.emplace_back(role, r);
  auto totals = r.scalar_totals();
  auto& book = role_books_.at(role);
  add_to(book.allocated, totals);
  static_cast<void>(roles_->allocated(role, totals));
  static_cast<void>(book.frameworks->allocated(fid, totals));
}

void Allocator::release(Framework& fw, const FrameworkId& fid, const AgentId& id,
                        const std::string& role, const Resources& r) {
  auto& roles = fw.held[id];
  if (auto it = find_role(roles, role); it != roles.end()) {
    it->second -= r;
    if (it->second.empty())
      roles.erase(it);
  }
  if (roles.empty())
    fw.held.erase(id);
  if (auto agent = agents_.find(id); agent != agents_.end()) {
    agent->second.available += r;
    agent->second.cover_dirty = true;
  }
  auto totals = r.scalar_totals();
  if (auto book = role_books_.find(role); book != role_books_.end()) {
    take_from(book->second.allocated, totals);
    static_cast<void>(roles_->unallocated(role, totals));
    static_cast<void>(book->second.frameworks->unallocated(fid, totals));
  }
}

caf::error Allocator::claim(const FrameworkId& fid, const AgentId& id, const std::string& role,
                            const Resources& r) {
  auto fw = frameworks_.find(fid);
  if (fw == frameworks_.end())
    return unknown("framework", fid);
  if (!fw->second.roles.count(role))
    return make_error(Errc::invalid_argument, "framework '" + fid + "' is not in role " + role);
  auto agent = agents_.find(id);
  if (agent == agents_.end())
    return unknown("agent", id);
  if (!agent->second.available.allocatable_to(role).contains(r))
    return make_error(Errc::invalid_argument, "agent '" + id + "' does not have " + r.to_string() +
                                                  " available for " + role);
  // Nothing claimed holds nothing: an empty entry would outlive every recover.
  if (r.empty())
    return caf::none;
  grant(fid, id, agent->second, role, r);
  return caf::none;
}

caf::error Allocator::recover(const FrameworkId& fid, const AgentId& id, const std::string& role,
                              const Resources& r) {
  auto fw = frameworks_.find(fid);
  if (fw == frameworks_.end())
    return unknown("framework", fid);
  auto held = fw->second.held.find(id);
  auto entry =
      held != fw->second.held.end() ? find_role(held->second, role) : Framework::ByRole::iterator{};
  if (held == fw->second.held.end() || entry == held->second.end() || !entry->second.contains(r))
    return make_error(Errc::invalid_argument, "framework '" + fid + "' does not hold " +
                                                  r.to_string() + " as " + role + " on '" + id +
                                                  "'");
  release(fw->second, fid, id, role, r);
  return caf::none;
}

caf::error Allocator::decline(const FrameworkId& fid, const AgentId& id, const std::string& role,
                              const Resources& r, Duration refuse, TimePoint now) {
  if (auto err = recover(fid, id, role, r))
    return err;
  if (refuse <= Duration::zero())
    return caf::none;
  auto& agent = agents_.at(id);
  auto& fw = frameworks_.at(fid);
  // A refuse time beyond the end of time (a framework may send any number)
  // saturates instead of wrapping into the past.
  auto expires = refuse >= TimePoint::max() - now ? TimePoint::max() : now + refuse;
  auto [it, fresh] = agent.filters.insert_or_assign(fid, Filter{r, expires});
  if (fresh && !fw.suppressed)
    ++agent.unsuppressed_filters;
  fw.filtered.insert(id);
  agent.earliest_expiry = std::min(agent.earliest_expiry, it->second.expires);
  agent.cover_dirty = true;
  return caf::none;
}

namespace {

// Roles of a call, checked against the framework's; empty means all of them.
caf::error check_roles(const std::string& fid, const std::set<std::string>& mine,
                       const std::set<std::string>& asked) {
  for (auto& r : asked)
    if (!mine.count(r))
      return make_error(Errc::invalid_argument,
                        "framework '" + fid + "' is not in role '" + r + "'");
  return caf::none;
}

}  // namespace

caf::error Allocator::suppress(const FrameworkId& fid, const std::set<std::string>& roles) {
  auto it = frameworks_.find(fid);
  if (it == frameworks_.end())
    return unknown("framework", fid);
  auto& fw = it->second;
  if (auto err = check_roles(fid, fw.roles, roles))
    return err;
  if (fw.suppressed)
    return caf::none;
  std::set<std::string> now = fw.suppressed_roles;
  now.insert(roles.begin(), roles.end());
  if (!roles.empty() && now != fw.roles) {
    if (fw.suppressed_roles.empty())
      ++partly_suppressed_;
    fw.suppressed_roles = std::move(now);
    return caf::none;
  }
  // Every role: suppressed as a whole, which the cycle skips cheaply.
  if (!fw.suppressed_roles.empty()) {
    fw.suppressed_roles.clear();
    --partly_suppressed_;
  }
  fw.suppressed = true;
  --unsuppressed_;
  for (auto& agent : fw.filtered)
    --agents_.at(agent).unsuppressed_filters;
  return caf::none;
}

caf::error Allocator::revive(const FrameworkId& fid, const std::set<std::string>& roles) {
  auto it = frameworks_.find(fid);
  if (it == frameworks_.end())
    return unknown("framework", fid);
  auto& fw = it->second;
  if (auto err = check_roles(fid, fw.roles, roles))
    return err;
  for (auto& agent : std::vector<AgentId>(fw.filtered.begin(),
                                          fw.filtered.end()))  // drop_filter edits fw.filtered
    drop_filter(agent, agents_.at(agent), fid);
  // What stays suppressed: nothing when every role is revived.
  std::set<std::string> still = fw.suppressed ? fw.roles : fw.suppressed_roles;
  if (roles.empty())
    still.clear();
  for (auto& r : roles)
    still.erase(r);
  if (fw.suppressed) {
    fw.suppressed = false;
    ++unsuppressed_;
  }
  if (fw.suppressed_roles.empty() != still.empty())
    still.empty() ? --partly_suppressed_ : ++partly_suppressed_;
  fw.suppressed_roles = std::move(still);
  return caf::none;
}

// -- filters ---------------------------------------------------------------------

// Removes the framework's filter on the agent from both sides of the books.
void Allocator::drop_filter(const AgentId& id, Agent& agent, const FrameworkId& fid) {
  if (agent.filters.erase(fid) == 0)
    return;
  auto& fw = frameworks_.at(fid);
  fw.filtered.erase(id);
  if (!fw.suppressed)
    --agent.unsuppressed_filters;
  agent.cover_dirty = true;
}

void Allocator::expire_filters(const AgentId& id, Agent& agent, TimePoint now) {
  std::vector<FrameworkId> expired;
  agent.earliest_expiry = TimePoint::max();
  for (auto& [fid, filter] : agent.filters) {
    if (filter.expires <= now)
      expired.push_back(fid);
    else
      agent.earliest_expiry = std::min(agent.earliest_expiry, filter.expires);
  }
  for (auto& fid : expired)
    drop_filter(id, agent, fid);
}

// True when no framework can be offered anything on this agent: cheap unless
// every unsuppressed framework holds a filter here.
bool Allocator::blocked(const AgentId& id, Agent& agent, TimePoint now) {
  if (agent.available.empty() || unsuppressed_ == 0)
    return true;
  if (agent.unsuppressed_filters < unsuppressed_)
    return false;
  if (now >= agent.earliest_expiry) {
    expire_filters(id, agent, now);
    if (agent.unsuppressed_filters < unsuppressed_)
      return false;
  }
  if (agent.cover_dirty) {
    agent.filters_cover = std::all_of(agent.filters.begin(), agent.filters.end(), [&](auto& f) {
      return f.second.refused.contains(agent.available);
    });
    agent.cover_dirty = false;
  }
  return agent.filters_cover;
}

bool Allocator::filtered(const AgentId& id, Agent& agent, const FrameworkId& fid,
                         const Resources& offer, TimePoint now) {
  auto it = agent.filters.find(fid);
  if (it == agent.filters.end())
    return false;
  if (now >= it->second.expires) {
    drop_filter(id, agent, fid);
    return false;
  }
  return it->second.refused.contains(offer);
}

// -- the cycle -------------------------------------------------------------------

void Allocator::refresh_totals() {
  roles_->set_total(cluster_total_);
  for (auto& [role, book] : role_books_)
    book.frameworks->set_total(cluster_total_);
  totals_dirty_ = false;
}

std::vector<OfferGrant> Allocator::allocate(TimePoint now) {
  if (totals_dirty_)
    refresh_totals();
  // A fresh order per cycle, so no agent is always first (as Mesos shuffles).
  std::shuffle(agent_order_.begin(), agent_order_.end(), rng_);
  std::vector<OfferGrant> out;
  for (auto* entry : agent_order_)
    if (!blocked(entry->first, entry->second, now))
      allocate_agent(entry->first, entry->second, now, out);
  return out;
}

// Offers the agent to the most-owed eligible framework of the most-owed role,
// then what is left (reservations of other roles) to the next role, and so on.
// Sorters are never edited while visited: each pick ends the visit first.
void Allocator::allocate_agent(const AgentId& id, Agent& agent, TimePoint now,
                               std::vector<OfferGrant>& out) {
  std::vector<std::string> tried;  // roles considered for this agent: a handful
  while (!agent.available.empty()) {
    std::string role;
    FrameworkId fid;
    Resources offer;
    roles_->visit([&](const std::string& r) {
      if (std::find(tried.begin(), tried.end(), r) != tried.end())
        return true;
      tried.push_back(r);
      auto candidate = offerable(agent, r);
      if (!worth_offering(candidate))
        return true;
      fid = pick_framework(id, agent, r, candidate, now);
      if (fid.empty())
        return true;
      role = r;
      offer = std::move(candidate);
      return false;
    });
    if (fid.empty())
      return;
    grant(fid, id, agent, role, offer);
    out.push_back(OfferGrant{fid, id, role, std::move(offer)});
  }
}

FrameworkId Allocator::pick_framework(const AgentId& id, Agent& agent, const std::string& role,
                                      const Resources& offer, TimePoint now) {
  FrameworkId chosen;
  bool any_suppressed = unsuppressed_ < frameworks_.size();
  role_books_.at(role).frameworks->visit([&](const std::string& fid) {
    if (any_suppressed && frameworks_.at(fid).suppressed)
      return true;
    if (partly_suppressed_ > 0 && frameworks_.at(fid).suppressed_roles.count(role))
      return true;
    if (!agent.filters.empty() && filtered(id, agent, fid, offer, now))
      return true;
    chosen = fid;
    return false;
  });
  return chosen;
}

// What role may be offered on the agent: unreserved resources plus its own
// reservations, capped so the role stays within its quota limit.
Resources Allocator::offerable(const Agent& agent, const std::string& role) const {
  auto r = agent.available.allocatable_to(role);
  auto quota = quotas_.find(role);
  if (quota == quotas_.end())
    return r;
  const auto& held = role_books_.at(role).allocated;
  for (auto& [name, limit] : quota->second) {
    auto it = held.find(name);
    double room = std::max(0.0, limit - (it != held.end() ? it->second : 0.0));
    double excess = r.total(name) - room;
    for (const std::string& from : {std::string(any_role), role}) {
      if (excess <= 1e-9)
        break;
      double cut = std::min(excess, r.get(name, from));
      if (cut > 0)
        r -= Resources::scalar(name, cut, from);
      excess -= cut;
    }
  }
  return r;
}

// -- queries ---------------------------------------------------------------------

std::vector<Allocator::AgentBooks> Allocator::agent_books() const {
  std::vector<AgentBooks> out;
  out.reserve(agents_.size());
  for (const auto& [id, agent] : agents_)
    out.push_back(AgentBooks{id, agent.total, agent.available});
  return out;
}

Resources Allocator::available(const AgentId& id) const {
  auto it = agents_.find(id);
  return it != agents_.end() ? it->second.available : Resources{};
}

Resources Allocator::allocated(const FrameworkId& fid) const {
  Resources sum;
  auto it = frameworks_.find(fid);
  if (it == frameworks_.end())
    return sum;
  for (auto& [agent, roles] : it->second.held)
    for (auto& [role, r] : roles)
      sum += r;
  return sum;
}

double Allocator::dominant_share(const FrameworkId& fid, const std::string& role) const {
  auto it = role_books_.find(role);
  return it != role_books_.end() ? it->second.frameworks->dominant_share(fid) : 0.0;
}

}  // namespace tessera
