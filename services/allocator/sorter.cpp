#include "services/allocator/sorter.hpp"

#include <caf/none.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <unordered_map>
#include <vector>

namespace tessera {

namespace {

// Quantities are doubles; after many allocate/unallocate rounds a fully
// returned resource can leave float residue such as 1e-13. Anything at or
// below this is treated as nothing held.
constexpr double kEpsilon = 1e-9;

caf::error bad(const std::string& client, const std::string& what) {
  return make_error(Errc::invalid_argument, "sorter: client '" + client + "': " + what);
}

bool valid_weight(double weight) {
  return std::isfinite(weight) && weight > 0;
}

// Rejects NaN, infinite and negative quantities up front: a NaN share would
// break the strict weak ordering the DRF index relies on.
caf::error check_quantities(const std::string& client, const ScalarTotals& r) {
  for (const auto& [name, q] : r)
    if (!std::isfinite(q) || q < 0)
      return bad(client, "quantity of '" + name + "' must be finite and non-negative");
  return caf::none;
}

// The largest allocated/total over the resources in total. total holds only
// finite positive entries (see set_total), so the division is always defined.
double dominant_share_of(const ScalarTotals& allocation, const ScalarTotals& total) {
  double share = 0;
  for (const auto& [name, q] : allocation) {
    auto it = total.find(name);
    if (it != total.end())
      share = std::max(share, q / it->second);
  }
  return share;
}

struct Client {
  double weight = 1.0;
  ScalarTotals allocation;
  double share = 0;  // unweighted dominant share, cached
  // The DRF ordering key. Computed from cached fields only, so the value used
  // to insert into an index is bit-identical to the one used to erase.
  double key() const { return share / weight; }
};

// The books both sorters keep: weights, allocations, totals and shares.
// Subclasses keep an ordering and learn about changes through index/unindex:
// every change to a client is bracketed as unindex(old) ... index(new).
class BookkeepingSorter : public Sorter {
 public:
  caf::error add(const std::string& client, double weight) override {
    assert(!visiting_);
    if (!valid_weight(weight))
      return bad(client, "weight must be positive and finite");
    auto [it, inserted] = clients_.try_emplace(client);
    if (!inserted)
      return bad(client, "already added");
    it->second.weight = weight;
    index(it->first, it->second);
    return caf::none;
  }

  caf::error remove(const std::string& client) override {
    assert(!visiting_);
    auto it = clients_.find(client);
    if (it == clients_.end())
      return bad(client, "unknown client");
    unindex(it->first, it->second);
    clients_.erase(it);
    return caf::none;
  }

  caf::error set_weight(const std::string& client, double weight) override {
    if (!valid_weight(weight))
      return bad(client, "weight must be positive and finite");
    return update(client, [weight](Client& c) { c.weight = weight; });
  }

  void set_total(const ScalarTotals& total) override {
    assert(!visiting_);
    // Zero, negative or non-finite totals cannot be shared out: drop them, so
    // those resources count as absent from the total.
    total_.clear();
    for (const auto& [name, q] : total)
      if (std::isfinite(q) && q > 0)
        total_.emplace(name, q);
    for (auto& [name, c] : clients_)
      c.share = dominant_share_of(c.allocation, total_);
    reindex_all();
  }

  caf::error allocated(const std::string& client, const ScalarTotals& r) override {
    if (auto err = check_quantities(client, r))
      return err;
    return update(client, [&r](Client& c) {
      for (const auto& [name, q] : r)
        if (q > 0)
          c.allocation[name] += q;
    });
  }

  caf::error unallocated(const std::string& client, const ScalarTotals& r) override {
    if (auto err = check_quantities(client, r))
      return err;
    return update(client, [&r](Client& c) {
      for (const auto& [name, q] : r) {
        auto it = c.allocation.find(name);
        if (it == c.allocation.end())
          continue;
        it->second -= q;
        if (it->second <= kEpsilon)  // clamp at zero, and drop float residue
          c.allocation.erase(it);
      }
    });
  }

  // Unknown clients hold nothing: share 0, empty allocation.
  double dominant_share(const std::string& client) const override {
    auto it = clients_.find(client);
    return it == clients_.end() ? 0.0 : it->second.share;
  }

  ScalarTotals allocation(const std::string& client) const override {
    auto it = clients_.find(client);
    return it == clients_.end() ? ScalarTotals{} : it->second.allocation;
  }

  size_t size() const override { return clients_.size(); }

  bool contains(const std::string& client) const override { return clients_.count(client) > 0; }

 protected:
  // Marks a visit in progress so debug builds catch a callback that modifies
  // the sorter (that would invalidate the iterators visit is walking).
  class VisitScope {
   public:
    explicit VisitScope(bool& flag) : flag_(flag) { flag_ = true; }
    ~VisitScope() { flag_ = false; }
    VisitScope(const VisitScope&) = delete;
    VisitScope& operator=(const VisitScope&) = delete;

   private:
    bool& flag_;
  };

  virtual void index(const std::string& name, const Client& c) = 0;
  virtual void unindex(const std::string& name, const Client& c) = 0;
  virtual void reindex_all() = 0;

  // A hash map: the allocation path looks clients up by name twice per offer.
  // Element addresses are stable across rehashing, which DrfSorter's index
  // relies on; RandomSorter sorts names itself to stay reproducible.
  std::unordered_map<std::string, Client> clients_;
  ScalarTotals total_;
  bool visiting_ = false;

 private:
  template <class Change>
  caf::error update(const std::string& client, Change&& change) {
    assert(!visiting_);
    auto it = clients_.find(client);
    if (it == clients_.end())
      return bad(client, "unknown client");
    unindex(it->first, it->second);
    change(it->second);
    it->second.share = dominant_share_of(it->second.allocation, total_);
    index(it->first, it->second);
    return caf::none;
  }
};

// Weighted DRF. The index holds (key, name) for every client; std::set orders
// by key, then name, which is exactly the visit order including tie-breaks.
class DrfSorter final : public BookkeepingSorter {
 public:
  void visit(const std::function<bool(const std::string& client)>& fn) override {
    VisitScope scope(visiting_);
    for (const auto& [key, name] : index_)
      if (!fn(*name))
        return;
  }

 private:
  // Entries point at the names held as keys of clients_ (their addresses are
  // stable), so updates on the allocation path copy no strings. Ties between
  // equal keys break by name.
  using Entry = std::pair<double, const std::string*>;
  struct ByKeyThenName {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.first != b.first ? a.first < b.first : *a.second < *b.second;
    }
  };

  void index(const std::string& name, const Client& c) override { index_.emplace(c.key(), &name); }

  void unindex(const std::string& name, const Client& c) override {
    index_.erase(Entry{c.key(), &name});
  }

  // Totals changed, so every key did: rebuild, O(n log n). Totals change only
  // when agents join or leave, not on the allocation path.
  void reindex_all() override {
    index_.clear();
    for (const auto& [name, c] : clients_)
      index_.emplace(c.key(), &name);
  }

  std::set<Entry, ByKeyThenName> index_;
};

// A weighted random order per visit, by Efraimidis–Spirakis sampling without
// replacement: each client draws u in (0, 1] and the order is by u^(1/w),
// largest first. We sort by log(u)/w, the same order without underflow for
// small weights. P(client first) = w / sum(w).
class RandomSorter final : public BookkeepingSorter {
 public:
  explicit RandomSorter(uint64_t seed) : rng_(seed) {}

  void visit(const std::function<bool(const std::string& client)>& fn) override {
    VisitScope scope(visiting_);
    std::vector<const std::pair<const std::string, Client>*> by_name;
    by_name.reserve(clients_.size());
    for (const auto& entry : clients_)
      by_name.push_back(&entry);
    // Draw in name order: same seed, same draws, whatever the hash layout.
    std::sort(by_name.begin(), by_name.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    std::vector<std::pair<double, const std::string*>> order;
    order.reserve(by_name.size());
    for (const auto* entry : by_name)
      order.emplace_back(std::log(uniform()) / entry->second.weight, &entry->first);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : *a.second < *b.second;
    });
    for (const auto& [key, name] : order)
      if (!fn(*name))
        return;
  }

 private:
  // The order is drawn fresh on every visit; nothing to maintain.
  void index(const std::string&, const Client&) override {}
  void unindex(const std::string&, const Client&) override {}
  void reindex_all() override {}

  // Uniform in (0, 1] from the top 53 bits. Built by hand rather than with
  // std::uniform_real_distribution, whose output differs between standard
  // libraries; this way a seed gives the same orders everywhere.
  double uniform() { return static_cast<double>((rng_() >> 11) + 1) * 0x1p-53; }

  std::mt19937_64 rng_;
};

}  // namespace

expected<std::unique_ptr<Sorter>> make_sorter(std::string_view kind, uint64_t seed) {
  if (kind == "drf")
    return std::unique_ptr<Sorter>{std::make_unique<DrfSorter>()};
  if (kind == "random")
    return std::unique_ptr<Sorter>{std::make_unique<RandomSorter>(seed)};
  return make_error(Errc::invalid_argument,
                    "sorter: unknown kind '" + std::string(kind) + "' (want drf or random)");
}

}  // namespace tessera
