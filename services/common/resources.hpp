#pragma once
// Resources: what agents advertise, the allocator hands out and tasks ask for.
//
// A Resources value is a bag of named resources, each of one kind:
//  - scalar: a quantity, such as cpus:1.5, mem:4096 (MiB), disk:20000 (MiB), gpus:1;
//  - ranges: sets of integers written as ranges, such as ports:[31000-32000,33000-33010];
//  - set:    named items, such as zones:{a,b}.
// Each resource is unreserved (role "*") or reserved for one role, written
// cpus(analytics):2. Quantities are kept in fixed point with 3 decimal digits
// (as Mesos does), so adding and subtracting never drifts: 0.1 + 0.2 == 0.3.
//
// Text form (agent --resources, the CLI), ';'-separated:
//   "cpus:4;mem:8192;disk:20000;ports:[31000-32000];cpus(analytics):2;zones:{a,b}"
// to_string() prints a canonical form (by name, then role) that parse() reads
// back to an equal value when no name has two kinds (a sum of agents' can).
//
// Value type: copyable, no shared state, not thread-safe to mutate concurrently.

#include "runtime/error.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera {

inline constexpr std::string_view any_role = "*";

// A quantity in thousandths: 1.5 cpus is 1500.
using Milli = int64_t;

struct Range {
  uint64_t begin = 0;  // inclusive
  uint64_t end = 0;    // inclusive
  friend bool operator==(const Range&, const Range&) = default;
};

// Quantities by resource name, all roles folded together: what DRF compares.
using ScalarTotals = std::map<std::string, double>;

class Resources {
 public:
  // Parses the text form. Errors (Errc::invalid_argument) name the bad item:
  // unknown syntax, a negative or non-numeric quantity, an empty or inverted
  // range, the same name given twice with different kinds, a bad role name.
  // Items of the same name and role are added together.
  static expected<Resources> parse(std::string_view text);

  static Resources scalar(std::string name, double quantity, std::string role = "*");
  static Resources ranges(std::string name, std::vector<Range> ranges, std::string role = "*");
  static Resources set(std::string name, std::set<std::string> items, std::string role = "*");

  // The same three, checking their input instead of asserting it: for values
  // that come from the wire. A zero quantity or empty list gives empty.
  static expected<Resources> checked_scalar(std::string name, Milli quantity, std::string role);
  static expected<Resources> checked_ranges(std::string name, std::vector<Range> ranges,
                                            std::string role);
  static expected<Resources> checked_set(std::string name, std::set<std::string> items,
                                         std::string role);

  // Calls scalar(name, role, milli), ranges(name, role, ranges) and
  // set(name, role, items) for every entry, in canonical order.
  template <class S, class R, class T>
  void visit(S&& scalar, R&& ranges, T&& set) const {
    for (const auto& e : scalars_)
      scalar(e.key.name, e.key.role, e.value);
    for (const auto& e : ranges_)
      ranges(e.key.name, e.key.role, e.ranges);
    for (const auto& e : sets_)
      set(e.key.name, e.key.role, e.items);
  }
  size_t entry_count() const { return scalars_.size() + ranges_.size() + sets_.size(); }

  bool empty() const;

  // The scalar quantity of name for role ("*": unreserved only).
  double get(std::string_view name, std::string_view role = any_role) const;
  // The scalar quantity of name summed over all roles.
  double total(std::string_view name) const;
  // All ranges of name for role, merged and sorted.
  std::vector<Range> get_ranges(std::string_view name, std::string_view role = any_role) const;
  std::set<std::string> get_set(std::string_view name, std::string_view role = any_role) const;

  // True when every resource in other is present here in at least that
  // amount, with the same role.
  bool contains(const Resources& other) const;

  Resources& operator+=(const Resources& other);
  // Precondition: contains(other). Resources that reach zero disappear.
  Resources& operator-=(const Resources& other);
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
  friend Resources operator-(Resources a, const Resources& b) { return a -= b; }
  friend bool operator==(const Resources&, const Resources&) = default;

  // Only the resources reserved for role (role "*": only unreserved ones).
  Resources reserved(std::string_view role) const;
  // Only what a framework in role may be offered: unreserved plus role's.
  Resources allocatable_to(std::string_view role) const;
  // The same resources, every one unreserved: what a reservation of these
  // takes from the unreserved pool (cpus(a):1;cpus(b):2 gives cpus:3).
  Resources flatten() const;
  // Every scalar quantity summed per name over roles.
  ScalarTotals scalar_totals() const;
  // Names of the roles that hold reservations here.
  std::set<std::string> roles() const;

  std::string to_string() const;

 private:
  struct Key {
    std::string name;
    std::string role;
    friend auto operator<=>(const Key&, const Key&) = default;
  };
  // One entry per (name, role), one vector per kind. An agent holds only a
  // handful, so flat vectors sorted by key beat maps: one allocation per copy,
  // and +=, -= and contains are linear merges. Each vector holds a key at most once and only
  // canonical values, so the defaulted == compares exactly.
  struct ScalarEntry {
    Key key;
    Milli value = 0;  // > 0
    friend bool operator==(const ScalarEntry&, const ScalarEntry&) = default;
  };
  struct RangesEntry {
    Key key;
    std::vector<Range> ranges;  // sorted, merged, non-empty
    friend bool operator==(const RangesEntry&, const RangesEntry&) = default;
  };
  struct SetEntry {
    Key key;
    std::set<std::string> items;  // non-empty
    friend bool operator==(const SetEntry&, const SetEntry&) = default;
  };
  std::vector<ScalarEntry> scalars_;
  std::vector<RangesEntry> ranges_;
  std::vector<SetEntry> sets_;
};

// Role names: 1..64 characters of [a-z0-9_.-/], not starting with '.' or '-'; "*" is the unreserved
// role.
bool valid_role(std::string_view role);

}  // namespace tessera
