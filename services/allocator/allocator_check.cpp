// Allocator::check(): the books checked against each other (see the list in
// allocator.hpp). Each helper returns the first broken invariant it finds.

#include "services/allocator/allocator.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace tessera {

namespace {

// Scalars are fixed point in Resources but doubles in the sorters and role
// books, which clamp float residue at 1e-9; sums of a few thousand
// thousandths stay far inside this.
constexpr double tolerance = 1e-6;

caf::error broken(const std::string& what) {
  return make_error(Errc::invalid_argument, "allocator invariant broken: " + what);
}

std::string show(const ScalarTotals& t) {
  std::string out = "{";
  for (auto& [name, q] : t)
    out += (out.size() > 1 ? ", " : "") + name + ":" + std::to_string(q);
  return out + "}";
}

bool same(const ScalarTotals& a, const ScalarTotals& b) {
  auto covered = [](const ScalarTotals& x, const ScalarTotals& y) {
    for (auto& [name, q] : x) {
      auto it = y.find(name);
      if (std::abs(q - (it != y.end() ? it->second : 0.0)) > tolerance)
        return false;
    }
    return true;
  };
  return covered(a, b) && covered(b, a);
}

double share_of(const ScalarTotals& held, const ScalarTotals& total) {
  double share = 0;
  for (auto& [name, q] : held)
    if (auto it = total.find(name); it != total.end() && it->second > 0)
      share = std::max(share, q / it->second);
  return share;
}

}  // namespace

caf::error Allocator::check() const {
  // 1. Every agent's books balance: available plus holdings equals total.
  std::map<AgentId, Resources> held_on;
  std::map<std::string, ScalarTotals> held_by_role;
  std::map<std::pair<std::string, FrameworkId>, ScalarTotals> held_by_role_framework;
  size_t unsuppressed = 0;
  size_t partly = 0;
  for (auto& [fid, fw] : frameworks_) {
    if (fw.roles.empty())
      return broken("framework '" + fid + "' has no role");
    unsuppressed += fw.suppressed ? 0 : 1;
    partly += fw.suppressed_roles.empty() ? 0 : 1;
    if (fw.suppressed && !fw.suppressed_roles.empty())
      return broken("framework '" + fid + "' is suppressed and partly suppressed");
    for (auto& role : fw.suppressed_roles)
      if (!fw.roles.count(role))
        return broken("framework '" + fid + "' has suppressed role '" + role + "' it is not in");
    for (auto& [agent, roles] : fw.held) {
      if (!agents_.count(agent))
        return broken("framework '" + fid + "' holds resources on unknown agent '" + agent + "'");
      if (roles.empty())
        return broken("framework '" + fid + "' keeps an empty entry for agent '" + agent + "'");
      for (auto& [role, r] : roles) {
        if (!fw.roles.count(role))
          return broken("framework '" + fid + "' holds resources as '" + role + "', not its role");
        if (r.empty())
          return broken("framework '" + fid + "' keeps an empty holding as '" + role + "' on '" +
                        agent + "'");
        // A named copy: clang 14 cannot capture a structured binding.
        const auto& name = role;
        if (std::count_if(roles.begin(), roles.end(), [&](auto& e) { return e.first == name; }) > 1)
          return broken("framework '" + fid + "' has two entries for '" + role + "' on '" + agent +
                        "'");
        held_on[agent] += r;
        auto totals = r.scalar_totals();
        for (auto& [name, q] : totals) {
          held_by_role[role][name] += q;
          held_by_role_framework[{role, fid}][name] += q;
        }
      }
    }
  }
  ScalarTotals cluster;
  for (auto& [id, agent] : agents_) {
    if (!agent.total.contains(agent.available))
      return broken("agent '" + id + "' has more available (" + agent.available.to_string() +
                    ") than its total (" + agent.total.to_string() + ")");
    auto sum = agent.available + held_on[id];
    if (sum != agent.total)
      return broken("agent '" + id + "': available " + agent.available.to_string() + " + held " +
                    held_on[id].to_string() + " != total " + agent.total.to_string());
    for (auto& [name, q] : agent.total.scalar_totals())
      cluster[name] += q;
  }
  if (!same(cluster, cluster_total_))
    return broken("cluster total " + show(cluster_total_) + " != sum of agents " + show(cluster));

  // 2. Roles, their books and both levels of sorter agree with the holdings.
  std::map<std::string, size_t> members;
  for (auto& [fid, fw] : frameworks_)
    for (auto& role : fw.roles)
      ++members[role];
  if (members.size() != role_books_.size() || roles_->size() != role_books_.size())
    return broken("roles with frameworks " + std::to_string(members.size()) + ", role books " +
                  std::to_string(role_books_.size()) + ", role sorter " +
                  std::to_string(roles_->size()));
  for (auto& [role, book] : role_books_) {
    if (!members.count(role) || !roles_->contains(role))
      return broken("role '" + role + "' has a book but no framework or no sorter entry");
    if (book.frameworks->size() != members[role])
      return broken("role '" + role + "' sorter holds " + std::to_string(book.frameworks->size()) +
                    " frameworks, " + std::to_string(members[role]) + " are in it");
    auto& held = held_by_role[role];
    if (!same(book.allocated, held))
      return broken("role '" + role + "' book " + show(book.allocated) + " != holdings " +
                    show(held));
    if (!same(roles_->allocation(role), held))
      return broken("role sorter has '" + role + "' at " + show(roles_->allocation(role)) +
                    ", holdings " + show(held));
    if (!totals_dirty_ &&
        std::abs(roles_->dominant_share(role) - share_of(held, cluster)) > tolerance)
      return broken("role sorter share of '" + role + "' is " +
                    std::to_string(roles_->dominant_share(role)) + ", books say " +
                    std::to_string(share_of(held, cluster)));
  }
  for (auto& [fid, fw] : frameworks_) {
    for (auto& role : fw.roles) {
      auto& sorter = *role_books_.at(role).frameworks;
      if (!sorter.contains(fid))
        return broken("framework '" + fid + "' missing from role '" + role + "' sorter");
      auto& held = held_by_role_framework[{role, fid}];
      if (!same(sorter.allocation(fid), held))
        return broken("role '" + role + "' sorter has '" + fid + "' at " +
                      show(sorter.allocation(fid)) + ", holdings " + show(held));
      if (!totals_dirty_ &&
          std::abs(sorter.dominant_share(fid) - share_of(held, cluster)) > tolerance)
        return broken("role '" + role + "' sorter share of '" + fid + "' is " +
                      std::to_string(sorter.dominant_share(fid)) + ", books say " +
                      std::to_string(share_of(held, cluster)));
    }
  }

  // 3. Cached counts equal what they count; filters are known on both sides.
  if (unsuppressed != unsuppressed_)
    return broken("unsuppressed count " + std::to_string(unsuppressed_) + ", actually " +
                  std::to_string(unsuppressed));
  if (partly != partly_suppressed_)
    return broken("partly suppressed count " + std::to_string(partly_suppressed_) + ", actually " +
                  std::to_string(partly));
  if (agent_order_.size() != agents_.size())
    return broken("walk order has " + std::to_string(agent_order_.size()) + " agents, books " +
                  std::to_string(agents_.size()));
  for (auto* entry : agent_order_) {
    auto it = agents_.find(entry->first);
    if (it == agents_.end() || &*it != entry)
      return broken("walk order holds a stale entry");
  }
  for (auto& [id, agent] : agents_) {
    size_t counted = 0;
    for (auto& [fid, filter] : agent.filters) {
      auto fw = frameworks_.find(fid);
      if (fw == frameworks_.end())
        return broken("agent '" + id + "' keeps a filter of unknown framework '" + fid + "'");
      if (!fw->second.filtered.count(id))
        return broken("framework '" + fid + "' does not know its filter on '" + id + "'");
      counted += fw->second.suppressed ? 0 : 1;
      if (filter.expires < agent.earliest_expiry)
        return broken("agent '" + id + "' earliest expiry is later than a filter's");
      if (!agent.cover_dirty && agent.filters_cover && !filter.refused.contains(agent.available))
        return broken("agent '" + id + "' claims its filters cover " + agent.available.to_string() +
                      ", '" + fid + "' refused only " + filter.refused.to_string());
    }
    if (counted != agent.unsuppressed_filters)
      return broken("agent '" + id + "' counts " + std::to_string(agent.unsuppressed_filters) +
                    " unsuppressed filters, holds " + std::to_string(counted));
  }
  for (auto& [fid, fw] : frameworks_)
    for (auto& agent : fw.filtered)
      if (auto it = agents_.find(agent); it == agents_.end() || !it->second.filters.count(fid))
        return broken("framework '" + fid + "' lists a filter on '" + agent +
                      "' that the agent does not hold");
  return caf::none;
}

}  // namespace tessera
