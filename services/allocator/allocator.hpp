#pragma once
// The allocator's mechanism: the books of what every agent has and every
// framework holds, offer filters, reservations, quota limits and weights. The
// policy — who is most owed — is a Sorter (DRF by default): one over roles and,
// inside each role, one over its frameworks, as Mesos's hierarchical allocator.
//
// A cycle (allocate) walks the agents in a seeded shuffled order. For each
// agent it visits roles in sorter order and, inside each role, frameworks in
// sorter order, and offers the first framework that is neither suppressed nor
// filtered everything that role may use on the agent: unreserved resources
// plus the role's reservations, capped by the role's quota limit, provided
// that holds at least 0.01 cpus or 32 MiB of memory (Mesos's minimum). What
// is offered leaves the agent's available pool until recover() or decline()
// returns it.
//
// Filters follow Mesos: decline(…, refuse) keeps the framework from being
// offered that agent again while refuse lasts, as long as what the agent has
// available is within what was declined; revive() clears the framework's
// filters. An agent that every unsuppressed framework has filtered costs O(1)
// in a cycle (the books keep a count), so a cluster where everyone declines
// does not pay agents × frameworks filter checks per cycle.
//
// A plain class: no actor system, no threads, no clock of its own (callers
// pass `now`). Not thread-safe. Unknown ids and inconsistent requests are
// errors (Errc::invalid_argument / unknown_actor) that change nothing.

#include "runtime/clock.hpp"
#include "services/allocator/sorter.hpp"
#include "services/common/resources.hpp"

#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tessera {

using AgentId = std::string;
using FrameworkId = std::string;

struct AllocatorConfig {
  std::string sorter = "drf";  // "drf" or "random", for roles and frameworks
  uint64_t seed = 0;           // the agent shuffle and the random sorter
};

struct OfferGrant {
  FrameworkId framework;
  AgentId agent;
  std::string role;
  Resources resources;
};

class Allocator {
 public:
  static expected<std::unique_ptr<Allocator>> make(AllocatorConfig config = {});

  caf::error add_agent(const AgentId& agent, const Resources& total);
  // Forgets the agent; what frameworks held there leaves their shares.
  caf::error remove_agent(const AgentId& agent);

  caf::error add_framework(const FrameworkId& framework, const std::set<std::string>& roles);
  // Forgets the framework and frees everything it held.
  caf::error remove_framework(const FrameworkId& framework);

  caf::error set_weight(const std::string& role, double weight);
  // An upper bound on what the role holds at once, per scalar resource.
  caf::error set_quota(const std::string& role, const ScalarTotals& limit);

  // Marks resources of the agent as held by the framework under role, as if
  // offered and accepted: the tasks an agent reports when it reregisters.
  caf::error claim(const FrameworkId& framework, const AgentId& agent, const std::string& role,
                   const Resources& resources);
  // Resources the framework held on the agent (under role) return to the
  // pool: an offer rescinded or partly used, a task that ended.
  caf::error recover(const FrameworkId& framework, const AgentId& agent, const std::string& role,
                     const Resources& resources);
  // recover() plus a filter: this agent is not offered to the framework
  // again until now + refuse while what it has available fits in resources.
  caf::error decline(const FrameworkId& framework, const AgentId& agent, const std::string& role,
                     const Resources& resources, Duration refuse, TimePoint now);
  // A suppressed framework gets no offers for the suppressed roles (empty:
  // all its roles) until revive() of those roles. revive() also clears the
  // framework's filters. Roles that are not the framework's are an error.
  caf::error suppress(const FrameworkId& framework, const std::set<std::string>& roles = {});
  caf::error revive(const FrameworkId& framework, const std::set<std::string>& roles = {});

  // One allocation cycle over every agent.
  std::vector<OfferGrant> allocate(TimePoint now);

  Resources available(const AgentId& agent) const;
  Resources allocated(const FrameworkId& framework) const;
  double dominant_share(const FrameworkId& framework, const std::string& role) const;
  size_t agent_count() const { return agents_.size(); }
  // Every agent's total and available resources, for checks of the books.
  struct AgentBooks {
    AgentId id;
    Resources total;
    Resources available;
  };
  std::vector<AgentBooks> agent_books() const;
  size_t framework_count() const { return frameworks_.size(); }

  // Checks the books against each other and returns the first invariant that
  // does not hold (Errc::invalid_argument, naming it), or none. O(agents ×
  // frameworks): for tests and debugging, not the allocation path. The
  // invariants (allocator_check.cpp):
  //  1. per agent, available + what every framework holds there == total, and
  //     every book holds only known agents, frameworks and roles;
  //  2. per role, the role's book, the role sorter's allocation and the sum of
  //     its frameworks' holdings agree; per framework and role, the framework
  //     sorter's allocation equals its holdings; sorters hold exactly the
  //     roles and frameworks there are, with shares that match the books;
  //  3. the cached counts (unsuppressed frameworks, partly suppressed ones,
  //     unsuppressed filters per agent, the cluster total, the walk order)
  //     equal what they count, and filters are known on both sides;
  //  4. suppressed roles are roles of the framework.
  // What a cycle may offer (quota, suppression, filters) is a property of
  // allocate()'s output, which the property test checks against a model.
  caf::error check() const;

 private:
  friend struct AllocatorTestAccess;  // tests: corrupts the books to prove check() fails

  struct Filter {
    Resources refused;
    TimePoint expires;
  };
  struct Agent {
    Resources total;
    Resources available;
    std::unordered_map<FrameworkId, Filter> filters;
    size_t unsuppressed_filters = 0;  // filters held by unsuppressed frameworks
    TimePoint earliest_expiry = TimePoint::max();
    bool filters_cover = false;  // every filter's refused contains available
    bool cover_dirty = true;     // available grew since filters_cover was computed
  };
  struct Framework {
    std::set<std::string> roles;
    bool suppressed = false;                 // every role
    std::set<std::string> suppressed_roles;  // some roles, while not suppressed
    // What the framework holds, per agent and role. Nearly always one role per
    // agent: a small vector costs far less to create than a hash map.
    using ByRole = std::vector<std::pair<std::string, Resources>>;
    std::unordered_map<AgentId, ByRole> held;
    std::unordered_set<AgentId> filtered;  // agents holding a filter of this framework
  };
  // A role with at least one framework: its frameworks' sorter and what the
  // role holds. Weights and quotas live apart, so they outlast the role.
  struct Role {
    std::unique_ptr<Sorter> frameworks;
    ScalarTotals allocated;
  };

  Allocator(AllocatorConfig config, std::unique_ptr<Sorter> roles);
  caf::error join_role(const std::string& role, const FrameworkId& framework);
  void leave_role(const std::string& role, const FrameworkId& framework);
  void refresh_totals();
  bool blocked(const AgentId& id, Agent& agent, TimePoint now);
  void expire_filters(const AgentId& id, Agent& agent, TimePoint now);
  void drop_filter(const AgentId& id, Agent& agent, const FrameworkId& framework);
  bool filtered(const AgentId& id, Agent& agent, const FrameworkId& framework,
                const Resources& offer, TimePoint now);
  void allocate_agent(const AgentId& id, Agent& agent, TimePoint now, std::vector<OfferGrant>& out);
  FrameworkId pick_framework(const AgentId& id, Agent& agent, const std::string& role,
                             const Resources& offer, TimePoint now);
  Resources offerable(const Agent& agent, const std::string& role) const;
  void grant(const FrameworkId& fid, const AgentId& id, Agent& agent, const std::string& role,
             const Resources& r);
  void release(Framework& fw, const FrameworkId& fid, const AgentId& id, const std::string& role,
               const Resources& r);

  AllocatorConfig config_;
  std::mt19937_64 rng_;
  std::unique_ptr<Sorter> roles_;
  std::unordered_map<std::string, Role> role_books_;
  std::unordered_map<std::string, double> weights_;
  std::unordered_map<std::string, ScalarTotals> quotas_;
  std::unordered_map<AgentId, Agent> agents_;
  // The cycle's walk order. Map nodes never move, so entries point into
  // agents_ and a cycle does no lookups by id.
  std::vector<std::pair<const AgentId, Agent>*> agent_order_;
  std::unordered_map<FrameworkId, Framework> frameworks_;
  size_t unsuppressed_ = 0;
  size_t partly_suppressed_ = 0;  // frameworks with suppressed_roles
  ScalarTotals cluster_total_;
  bool totals_dirty_ = false;
};

}  // namespace tessera
