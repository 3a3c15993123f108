#pragma once
// Sorters are the allocator's policy: they order clients (roles, or the
// frameworks inside one role) from the one most owed resources to the least.
// The allocator's mechanism (books, filters, reservations, quota) asks the
// sorter whom to offer to next and tells it what each client was given.
//
// DrfSorter orders by weighted dominant share (Ghodsi et al., NSDI 2011): a
// client's share of a resource is allocated/total; its dominant share is the
// largest of those; divided by its weight. Ties break by client name, so the
// order is deterministic. RandomSorter draws a weighted random order from a
// seeded generator (Mesos's random sorter), for comparison and for tests.
//
// Plain classes: no actor system, no threads, no locks. Not thread-safe.
// Cost (DrfSorter): every update and every visit step is O(log n) in the
// number of clients; no full re-sort happens on the allocation path.
// RandomSorter draws a fresh order per visit: O(n log n).

#include "services/common/resources.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tessera {

class Sorter {
 public:
  virtual ~Sorter() = default;

  // Adding a client that exists, or touching one that does not, is a caller
  // bug: these return Errc::invalid_argument and change nothing.
  virtual caf::error add(const std::string& client, double weight = 1.0) = 0;
  virtual caf::error remove(const std::string& client) = 0;
  virtual caf::error set_weight(const std::string& client, double weight) = 0;  // weight > 0

  // The pool shares are measured against (the cluster's totals).
  virtual void set_total(const ScalarTotals& total) = 0;

  // Adds to / takes from what the client holds. Taking more than it holds
  // clamps at zero.
  virtual caf::error allocated(const std::string& client, const ScalarTotals& r) = 0;
  virtual caf::error unallocated(const std::string& client, const ScalarTotals& r) = 0;

  // Calls visit for clients in order, most owed first, until it returns false.
  // visit must not modify the sorter.
  virtual void visit(const std::function<bool(const std::string& client)>& visit) = 0;

  virtual double dominant_share(const std::string& client) const = 0;  // unweighted
  virtual ScalarTotals allocation(const std::string& client) const = 0;
  virtual size_t size() const = 0;
  virtual bool contains(const std::string& client) const = 0;
};

// kind: "drf" or "random"; seed is used by "random" only. Unknown kind:
// Errc::invalid_argument.
expected<std::unique_ptr<Sorter>> make_sorter(std::string_view kind, uint64_t seed = 0);

}  // namespace tessera
