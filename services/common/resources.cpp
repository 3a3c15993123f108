#include "services/common/resources.hpp"

#include "services/common/text.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <compare>
#include <iterator>

namespace tessera {

namespace {

using text::parse_u64;
using text::split;
using text::trim;

// Caps a single quantity at 10^12 units so that sums of many parsed values
// stay far from int64 overflow.
constexpr Milli kMaxMilli = 1'000'000'000'000'000;
constexpr size_t kMaxNameLength = 64;

enum class Kind { scalar, ranges, set };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::scalar:
      return "a scalar";
    case Kind::ranges:
      return "ranges";
    case Kind::set:
      return "a set";
  }
  return "?";
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads plain decimal ("12", "0.5") exactly, rounding to the nearest
// thousandth from the digits rather than through a double, so "0.1" is 100.
bool parse_milli(std::string_view text, Milli& out) {
  auto dot = text.find('.');
  auto whole = text.substr(0, dot);
  auto frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(frac)))
    return false;
  Milli units = 0;
  for (char c : whole) {
    units = units * 10 + (c - '0');
    if (units > kMaxMilli / 1000)
      return false;
  }
  Milli thousandths = 0;
  for (size_t i = 0; i < 3; ++i)
    thousandths = thousandths * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  if (frac.size() > 3 && frac[3] >= '5')
    ++thousandths;
  out = units * 1000 + thousandths;
  return out <= kMaxMilli;
}

bool by_begin(const Range& a, const Range& b) {
  return a.begin < b.begin;
}

// Merges overlapping or adjacent ranges of a list sorted by begin, in place.
void coalesce(std::vector<Range>& ranges) {
  size_t kept = 0;  // ranges[0, kept) are merged
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range r = ranges[i];
    // r.begin - 1 only runs when r.begin > ranges[kept - 1].end >= 0: it cannot wrap.
    if (kept > 0 && (r.begin <= ranges[kept - 1].end || r.begin - 1 == ranges[kept - 1].end))
      ranges[kept - 1].end = std::max(ranges[kept - 1].end, r.end);
    else
      ranges[kept++] = r;
  }
  ranges.resize(kept);
}

// Sorts and merges overlapping or adjacent ranges: the one canonical form.
void normalize(std::vector<Range>& ranges) {
  std::sort(ranges.begin(), ranges.end(), by_begin);
  coalesce(ranges);
}

// Both canonical: a linear merge instead of re-sorting the concatenation.
std::vector<Range> unite(const std::vector<Range>& a, const std::vector<Range>& b) {
  std::vector<Range> out(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), out.begin(), by_begin);
  coalesce(out);
  return out;
}

// Both sides canonical: each wanted range must sit inside one held range.
bool covers(const std::vector<Range>& have, const std::vector<Range>& want) {
  return std::all_of(want.begin(), want.end(), [&](const Range& w) {
    auto it = std::upper_bound(have.begin(), have.end(), w.begin,
                               [](uint64_t v, const Range& r) { return v < r.begin; });
    return it != have.begin() && std::prev(it)->end >= w.end;
  });
}

// Cuts take out of have; both canonical, so the pieces left stay canonical.
std::vector<Range> subtract(const std::vector<Range>& have, const std::vector<Range>& take) {
  std::vector<Range> out;
  size_t first = 0;
  for (const auto& h : have) {
    while (first < take.size() && take[first].end < h.begin)
      ++first;
    uint64_t next = h.begin;
    bool consumed = false;
    for (size_t i = first; i < take.size() && take[i].begin <= h.end && !consumed; ++i) {
      if (take[i].begin > next)
        out.push_back({next, take[i].begin - 1});
      if (take[i].end >= h.end)
        consumed = true;
      else
        next = std::max(next, take[i].end + 1);
    }
    if (!consumed)
      out.push_back({next, h.end});
  }
  return out;
}

std::string format_milli(Milli m) {
  std::string out = std::to_string(m / 1000);
  if (Milli frac = m % 1000) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    out += "." + digits;
  }
  return out;
}

std::string format_ranges(const std::vector<Range>& ranges) {
  std::string out = "[";
  for (const auto& r : ranges) {
    if (out.size() > 1)
      out += ",";
    out += std::to_string(r.begin) + "-" + std::to_string(r.end);
  }
  return out + "]";
}

std::string format_set(const std::set<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1)
      out += ",";
    out += item;
  }
  return out + "}";
}

// One parsed "name(role):value" item, before it is folded into a Resources.
struct Item {
  std::string name;
  std::string role = std::string(any_role);
  Kind kind = Kind::scalar;
  Milli milli = 0;
  std::vector<Range> ranges;
  std::set<std::string> items;
};

// The parse_* helpers return an empty string on success, otherwise why the
// item is bad; parse() adds the item and the whole text around it.
std::string parse_head(std::string_view head, Item& item) {
  auto open = head.find('(');
  auto name = head.substr(0, open);
  if (open != std::string_view::npos) {
    if (head.back() != ')')
      return "expected name(role)";
    auto role = head.substr(open + 1, head.size() - open - 2);
    if (!valid_role(role))
      return "invalid role '" + std::string(role) + "'";
    item.role = std::string(role);
  }
  if (!valid_name(name))
    return "invalid name '" + std::string(name) + "'";
  item.name = std::string(name);
  return {};
}

std::string parse_scalar(std::string_view value, Item& item) {
  bool negative = !value.empty() && value.front() == '-';
  if (!parse_milli(value.substr(negative ? 1 : 0), item.milli))
    return "quantity must be a decimal number below 10^12";
  if (negative)
    return "quantity must be >= 0";
  item.kind = Kind::scalar;
  return {};
}

std::string parse_ranges(std::string_view inner, Item& item) {
  if (trim(inner).empty())
    return "empty range list";
  for (auto piece : split(inner, ',')) {
    auto dash = piece.find('-');
    Range r;
    if (dash == std::string_view::npos || !parse_u64(piece.substr(0, dash), r.begin) ||
        !parse_u64(piece.substr(dash + 1), r.end))
      return "range '" + std::string(trim(piece)) + "' must be begin-end";
    if (r.begin > r.end)
      return "range '" + std::string(trim(piece)) + "' is inverted";
    item.ranges.push_back(r);
  }
  normalize(item.ranges);
  item.kind = Kind::ranges;
  return {};
}

std::string parse_set(std::string_view inner, Item& item) {
  if (trim(inner).empty())
    return "empty set";
  for (auto piece : split(inner, ',')) {
    auto element = trim(piece);
    if (!valid_name(element))
      return "invalid set item '" + std::string(element) + "'";
    item.items.emplace(element);
  }
  item.kind = Kind::set;
  return {};
}

std::string parse_item(std::string_view text, Item& item) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return "expected name[(role)]:value";
  if (auto why = parse_head(text.substr(0, colon), item); !why.empty())
    return why;
  auto value = trim(text.substr(colon + 1));
  if (value.empty())
    return "missing value";
  if (value.front() != '[' && value.front() != '{')
    return parse_scalar(value, item);
  char close = value.front() == '[' ? ']' : '}';
  if (value.size() < 2 || value.back() != close)
    return std::string("expected '") + close + "' at the end";
  auto inner = value.substr(1, value.size() - 2);
  return value.front() == '[' ? parse_ranges(inner, item) : parse_set(inner, item);
}

// -- helpers over the sorted entry vectors -------------------------------------
// They are templates over the entry type, since Resources' three vectors differ
// only in the value each entry carries next to its key.

// A (name, role) as views, ordered as Key is, so lookups build no strings.
using KeyView = std::pair<std::string_view, std::string_view>;

constexpr auto entry_before = [](const auto& entry, const KeyView& want) {
  return KeyView(entry.key.name, entry.key.role) < want;
};

// The entry for (name, role), or nullptr.
template <class Entry>
const Entry* find_entry(const std::vector<Entry>& entries, std::string_view name,
                        std::string_view role) {
  auto it = std::lower_bound(entries.begin(), entries.end(), KeyView(name, role), entry_before);
  bool found = it != entries.end() && it->key.name == name && it->key.role == role;
  return found ? &*it : nullptr;
}

// The entry for key, inserted at its sorted place with an empty value if new.
template <class Entry, class K>
Entry& find_or_insert(std::vector<Entry>& entries, K key) {
  auto it = std::lower_bound(entries.begin(), entries.end(), key,
                             [](const Entry& e, const K& k) { return e.key < k; });
  if (it == entries.end() || it->key != key)
    it = entries.insert(it, Entry{std::move(key), {}});
  return *it;
}

// Advances it past the entries ordered before key; true when it then sits on
// key. One three-way compare per step, so no pair of keys is compared twice.
template <class It, class K>
bool seek(It& it, It end, const K& key) {
  for (; it != end; ++it)
    if (auto order = it->key <=> key; order >= 0)
      return order == 0;
  return false;
}

// Grows mine by the fresh entries of more (keys mine lacks, fresh of them)
// and merges them in from the back, so each entry of mine moves once and the
// vector reallocates at most once. Entries of more whose key mine holds were
// already added in and are skipped.
template <class Entry>
void insert_fresh(std::vector<Entry>& mine, const std::vector<Entry>& more, size_t fresh) {
  size_t i = mine.size(), j = more.size(), k = i + fresh;
  mine.resize(k);
  // k - i fresh entries are left to place; once none are, mine[0, i) is in place.
  while (k > i) {
    auto order = i > 0 ? mine[i - 1].key <=> more[j - 1].key : std::strong_ordering::less;
    if (order < 0) {
      mine[--k] = more[--j];
      continue;
    }
    if (order == 0)
      --j;
    mine[--k] = std::move(mine[--i]);
  }
}

// mine += more, both sorted by key. A single two-pointer pass adds into the
// keys both hold, the common case when an agent's resources come and go; only
// when more brings new keys does insert_fresh() run.
template <class Entry, class Add>
void add_entries(std::vector<Entry>& mine, const std::vector<Entry>& more, Add add) {
  size_t fresh = 0;
  auto a = mine.begin();
  for (const auto& b : more) {
    if (seek(a, mine.end(), b.key))
      add(*a, b);
    else
      ++fresh;
  }
  if (fresh > 0)
    insert_fresh(mine, more, fresh);
}

// mine -= less, both sorted by key, in one two-pointer pass that also compacts
// away the entries take() reports used up. Keys mine lacks are ignored.
template <class Entry, class Take>
void subtract_entries(std::vector<Entry>& mine, const std::vector<Entry>& less, Take take) {
  if (less.empty())
    return;
  auto b = less.begin();
  auto kept = mine.begin();
  for (auto a = mine.begin(); a != mine.end(); ++a) {
    if (seek(b, less.end(), a->key) && take(*a, *b))
      continue;
    if (kept != a)
      *kept = std::move(*a);
    ++kept;
  }
  mine.erase(kept, mine.end());
}

// True when every entry of want has an entry of its key in have that covers it.
template <class Entry, class Covers>
bool contains_entries(const std::vector<Entry>& have, const std::vector<Entry>& want,
                      Covers covers) {
  auto a = have.begin();
  return std::all_of(want.begin(), want.end(),
                     [&](const Entry& w) { return seek(a, have.end(), w.key) && covers(*a, w); });
}

template <class Entry, class Keep>
void copy_if_role(const std::vector<Entry>& in, std::vector<Entry>& out, Keep keep) {
  for (auto it = in.begin(); it != in.end(); ++it) {
    if (!keep(it->key.role))
      continue;
    // Reserved at the first match: room for all that may follow, and no
    // allocation at all when nothing matches (reserved() usually finds none).
    if (out.empty())
      out.reserve(size_t(in.end() - it));
    out.push_back(*it);
  }
}

template <class Entry>
void collect_roles(const std::vector<Entry>& entries, std::set<std::string>& out) {
  for (const auto& entry : entries)
    if (entry.key.role != any_role)
      out.insert(entry.key.role);
}

}  // namespace

expected<Resources> Resources::parse(std::string_view text) {
  Resources out;
  std::map<std::string, Kind> kinds;
  for (auto raw : split(text, ';')) {
    auto piece = trim(raw);
    if (piece.empty())
      continue;
    Item item;
    auto why = parse_item(piece, item);
    auto [known, fresh] = kinds.emplace(item.name, item.kind);
    if (why.empty() && !fresh && known->second != item.kind)
      why = "'" + item.name + "' was already given as " + kind_name(known->second);
    if (why.empty() && item.kind == Kind::scalar && item.milli > 0 &&
        (find_or_insert(out.scalars_, Key{item.name, item.role}).value += item.milli) > kMaxMilli)
      why = "quantity must be below 10^12 in total";
    if (!why.empty())
      return make_error(Errc::invalid_argument, "bad resource '" + std::string(piece) + "' in '" +
                                                    std::string(text) + "': " + why);
    if (item.kind == Kind::ranges)
      out += Resources::ranges(item.name, std::move(item.ranges), item.role);
    else if (item.kind == Kind::set)
      out += Resources::set(item.name, std::move(item.items), item.role);
  }
  return out;
}

Resources Resources::scalar(std::string name, double quantity, std::string role) {
  assert(valid_name(name) && valid_role(role));
  assert(std::isfinite(quantity) && quantity >= 0 && quantity * 1000 <= double(kMaxMilli));
  Resources out;
  if (Milli m = std::llround(quantity * 1000); m > 0)
    out.scalars_.push_back({Key{std::move(name), std::move(role)}, m});
  return out;
}

Resources Resources::ranges(std::string name, std::vector<Range> ranges, std::string role) {
  assert(valid_name(name) && valid_role(role));
  assert(
      std::all_of(ranges.begin(), ranges.end(), [](const Range& r) { return r.begin <= r.end; }));
  Resources out;
  normalize(ranges);
  if (!ranges.empty())
    out.ranges_.push_back({Key{std::move(name), std::move(role)}, std::move(ranges)});
  return out;
}

Resources Resources::set(std::string name, std::set<std::string> items, std::string role) {
  assert(valid_name(name) && valid_role(role));
  Resources out;
  if (!items.empty())
    out.sets_.push_back({Key{std::move(name), std::move(role)}, std::move(items)});
  return out;
}

namespace {

caf::error check_key(const std::string& name, const std::string& role) {
  if (!valid_name(name))
    return make_error(Errc::invalid_argument, "bad resource name '" + name + "'");
  if (!valid_role(role))
    return make_error(Errc::invalid_argument, "bad role '" + role + "' for " + name);
  return {};
}

}  // namespace

expected<Resources> Resources::checked_scalar(std::string name, Milli quantity, std::string role) {
  if (auto err = check_key(name, role))
    return err;
  if (quantity < 0 || quantity > kMaxMilli)
    return make_error(Errc::invalid_argument, "quantity of " + name + " out of range");
  Resources out;
  if (quantity > 0)
    out.scalars_.push_back({Key{std::move(name), std::move(role)}, quantity});
  return out;
}

expected<Resources> Resources::checked_ranges(std::string name, std::vector<Range> ranges,
                                              std::string role) {
  if (auto err = check_key(name, role))
    return err;
  for (const auto& r : ranges)
    if (r.begin > r.end)
      return make_error(Errc::invalid_argument, "inverted range in " + name);
  return Resources::ranges(std::move(name), std::move(ranges), std::move(role));
}

expected<Resources> Resources::checked_set(std::string name, std::set<std::string> items,
                                           std::string role) {
  if (auto err = check_key(name, role))
    return err;
  for (const auto& item : items)
    if (item.empty() || item.find_first_of(",;{}") != std::string::npos)
      return make_error(Errc::invalid_argument, "bad set item in " + name);
  return Resources::set(std::move(name), std::move(items), std::move(role));
}

bool Resources::empty() const {
  return scalars_.empty() && ranges_.empty() && sets_.empty();
}

double Resources::get(std::string_view name, std::string_view role) const {
  const auto* entry = find_entry(scalars_, name, role);
  return entry ? double(entry->value) / 1000.0 : 0.0;
}

double Resources::total(std::string_view name) const {
  Milli sum = 0;
  // The empty role sorts before every real one, so this lands on name's first entry.
  auto it = std::lower_bound(scalars_.begin(), scalars_.end(), KeyView(name, {}), entry_before);
  for (; it != scalars_.end() && it->key.name == name; ++it)
    sum += it->value;
  return double(sum) / 1000.0;
}

std::vector<Range> Resources::get_ranges(std::string_view name, std::string_view role) const {
  const auto* entry = find_entry(ranges_, name, role);
  return entry ? entry->ranges : std::vector<Range>{};
}

std::set<std::string> Resources::get_set(std::string_view name, std::string_view role) const {
  const auto* entry = find_entry(sets_, name, role);
  return entry ? entry->items : std::set<std::string>{};
}

bool Resources::contains(const Resources& other) const {
  auto enough = [](const ScalarEntry& have, const ScalarEntry& want) {
    return have.value >= want.value;
  };
  auto covered = [](const RangesEntry& have, const RangesEntry& want) {
    return covers(have.ranges, want.ranges);
  };
  auto superset = [](const SetEntry& have, const SetEntry& want) {
    const auto &h = have.items, &w = want.items;
    return std::includes(h.begin(), h.end(), w.begin(), w.end());
  };
  return contains_entries(scalars_, other.scalars_, enough) &&
         contains_entries(ranges_, other.ranges_, covered) &&
         contains_entries(sets_, other.sets_, superset);
}

Resources& Resources::operator+=(const Resources& other) {
  // The merges read other while writing *this; r += r must not see its own writes.
  if (this == &other)
    return *this += Resources(other);
  add_entries(scalars_, other.scalars_,
              [](ScalarEntry& mine, const ScalarEntry& more) { mine.value += more.value; });
  add_entries(ranges_, other.ranges_, [](RangesEntry& mine, const RangesEntry& more) {
    mine.ranges = unite(mine.ranges, more.ranges);
  });
  add_entries(sets_, other.sets_, [](SetEntry& mine, const SetEntry& more) {
    mine.items.insert(more.items.begin(), more.items.end());
  });
  return *this;
}

// Written to clamp at empty even when the precondition is broken in a
// release build, so the vectors never hold negative or empty entries. Each
// take returns true when the entry is used up and must go.
Resources& Resources::operator-=(const Resources& other) {
  assert(contains(other));
  if (this == &other)  // r -= r: all of it, and no reading what we just erased
    return *this = Resources{};
  subtract_entries(scalars_, other.scalars_, [](ScalarEntry& mine, const ScalarEntry& less) {
    return (mine.value -= less.value) <= 0;
  });
  subtract_entries(ranges_, other.ranges_, [](RangesEntry& mine, const RangesEntry& less) {
    mine.ranges = subtract(mine.ranges, less.ranges);
    return mine.ranges.empty();
  });
  subtract_entries(sets_, other.sets_, [](SetEntry& mine, const SetEntry& less) {
    for (const auto& item : less.items)
      mine.items.erase(item);
    return mine.items.empty();
  });
  return *this;
}

Resources Resources::reserved(std::string_view role) const {
  Resources out;
  auto keep = [role](std::string_view r) { return r == role; };
  copy_if_role(scalars_, out.scalars_, keep);
  copy_if_role(ranges_, out.ranges_, keep);
  copy_if_role(sets_, out.sets_, keep);
  return out;
}

Resources Resources::allocatable_to(std::string_view role) const {
  Resources out;
  auto keep = [role](std::string_view r) { return r == any_role || r == role; };
  copy_if_role(scalars_, out.scalars_, keep);
  copy_if_role(ranges_, out.ranges_, keep);
  copy_if_role(sets_, out.sets_, keep);
  return out;
}

Resources Resources::flatten() const {
  Resources out;
  visit([&](const std::string& name, const std::string&,
            Milli value) { out += scalar(name, double(value) / 1000.0); },
        [&](const std::string& name, const std::string&, const std::vector<Range>& r) {
          out += ranges(name, r);
        },
        [&](const std::string& name, const std::string&, const std::set<std::string>& items) {
          out += set(name, items);
        });
  return out;
}

ScalarTotals Resources::scalar_totals() const {
  ScalarTotals out;
  // Sorted by name first, so each name's roles sit in one run: sum the run in
  // Milli (totals as exact as get()) and append it, always at the map's end.
  for (auto it = scalars_.begin(); it != scalars_.end();) {
    const std::string& name = it->key.name;
    Milli sum = 0;
    for (; it != scalars_.end() && it->key.name == name; ++it)
      sum += it->value;
    out.emplace_hint(out.end(), name, double(sum) / 1000.0);
  }
  return out;
}

std::set<std::string> Resources::roles() const {
  std::set<std::string> out;
  collect_roles(scalars_, out);
  collect_roles(ranges_, out);
  collect_roles(sets_, out);
  return out;
}

std::string Resources::to_string() const {
  // "*" sorts before every valid role name, so unreserved entries come first.
  // The stable sort keeps scalars, ranges, sets in that order for equal keys.
  std::vector<std::pair<const Key*, std::string>> entries;
  entries.reserve(scalars_.size() + ranges_.size() + sets_.size());
  for (const auto& e : scalars_)
    entries.emplace_back(&e.key, format_milli(e.value));
  for (const auto& e : ranges_)
    entries.emplace_back(&e.key, format_ranges(e.ranges));
  for (const auto& e : sets_)
    entries.emplace_back(&e.key, format_set(e.items));
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return *a.first < *b.first; });
  std::string out;
  for (const auto& [key, value] : entries) {
    if (!out.empty())
      out += ";";
    out += key->name;
    if (key->role != any_role)
      out += "(" + key->role + ")";
    out += ":" + value;
  }
  return out;
}

bool valid_role(std::string_view role) {
  if (role == any_role)
    return true;
  if (role.empty() || role.size() > kMaxNameLength || role == "." || role == "..")
    return false;
  if (role.front() == '.' || role.front() == '-' || role.front() == '/')
    return false;
  return std::all_of(role.begin(), role.end(), [](char c) { return is_name_char(c) || c == '/'; });
}

}  // namespace tessera
