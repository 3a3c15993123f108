#include "services/common/resources.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <iterator>

namespace tessera {

namespace {

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

std::string_view trim(std::string_view s) {
  constexpr std::string_view space = " \t\r\n";
  auto first = s.find_first_not_of(space);
  if (first == std::string_view::npos)
    return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t pos = s.find(sep); pos != std::string_view::npos; pos = s.find(sep, start)) {
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
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

bool parse_u64(std::string_view text, uint64_t& out) {
  text = trim(text);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

// Sorts and merges overlapping or adjacent ranges: the one canonical form.
void normalize(std::vector<Range>& ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  std::vector<Range> merged;
  for (const auto& r : ranges) {
    // r.begin - 1 only runs when r.begin > back().end >= 0, so it cannot wrap.
    if (!merged.empty() && (r.begin <= merged.back().end || r.begin - 1 == merged.back().end))
      merged.back().end = std::max(merged.back().end, r.end);
    else
      merged.push_back(r);
  }
  ranges = std::move(merged);
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

template <class Map, class Pred>
void copy_if_role(const Map& in, Map& out, Pred keep) {
  for (const auto& [key, value] : in)
    if (keep(key.role))
      out.emplace(key, value);
}

template <class Map>
void collect_roles(const Map& map, std::set<std::string>& out) {
  for (const auto& entry : map)
    if (entry.first.role != any_role)
      out.insert(entry.first.role);
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
    Key key{item.name, item.role};
    if (why.empty() && item.kind == Kind::scalar && item.milli > 0 &&
        (out.scalars_[key] += item.milli) > kMaxMilli)
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
    out.scalars_[Key{std::move(name), std::move(role)}] = m;
  return out;
}

Resources Resources::ranges(std::string name, std::vector<Range> ranges, std::string role) {
  assert(valid_name(name) && valid_role(role));
  assert(
      std::all_of(ranges.begin(), ranges.end(), [](const Range& r) { return r.begin <= r.end; }));
  Resources out;
  normalize(ranges);
  if (!ranges.empty())
    out.ranges_[Key{std::move(name), std::move(role)}] = std::move(ranges);
  return out;
}

Resources Resources::set(std::string name, std::set<std::string> items, std::string role) {
  assert(valid_name(name) && valid_role(role));
  Resources out;
  if (!items.empty())
    out.sets_[Key{std::move(name), std::move(role)}] = std::move(items);
  return out;
}

bool Resources::empty() const {
  return scalars_.empty() && ranges_.empty() && sets_.empty();
}

double Resources::get(std::string_view name, std::string_view role) const {
  auto it = scalars_.find(Key{std::string(name), std::string(role)});
  return it == scalars_.end() ? 0.0 : double(it->second) / 1000.0;
}

double Resources::total(std::string_view name) const {
  Milli sum = 0;
  // The empty role sorts before every real one, so this lands on name's first entry.
  for (auto it = scalars_.lower_bound(Key{std::string(name), {}});
       it != scalars_.end() && it->first.name == name; ++it)
    sum += it->second;
  return double(sum) / 1000.0;
}

std::vector<Range> Resources::get_ranges(std::string_view name, std::string_view role) const {
  auto it = ranges_.find(Key{std::string(name), std::string(role)});
  return it == ranges_.end() ? std::vector<Range>{} : it->second;
}

std::set<std::string> Resources::get_set(std::string_view name, std::string_view role) const {
  auto it = sets_.find(Key{std::string(name), std::string(role)});
  return it == sets_.end() ? std::set<std::string>{} : it->second;
}

bool Resources::contains(const Resources& other) const {
  for (const auto& [key, milli] : other.scalars_) {
    auto it = scalars_.find(key);
    if (it == scalars_.end() || it->second < milli)
      return false;
  }
  for (const auto& [key, want] : other.ranges_) {
    auto it = ranges_.find(key);
    if (it == ranges_.end() || !covers(it->second, want))
      return false;
  }
  for (const auto& [key, want] : other.sets_) {
    auto it = sets_.find(key);
    if (it == sets_.end() ||
        !std::includes(it->second.begin(), it->second.end(), want.begin(), want.end()))
      return false;
  }
  return true;
}

Resources& Resources::operator+=(const Resources& other) {
  for (const auto& [key, milli] : other.scalars_)
    scalars_[key] += milli;
  for (const auto& [key, more] : other.ranges_) {
    auto& mine = ranges_[key];
    mine.insert(mine.end(), more.begin(), more.end());
    normalize(mine);
  }
  for (const auto& [key, more] : other.sets_)
    sets_[key].insert(more.begin(), more.end());
  return *this;
}

// Written to clamp at empty even when the precondition is broken in a
// release build, so the maps never hold negative or empty entries.
Resources& Resources::operator-=(const Resources& other) {
  assert(contains(other));
  for (const auto& [key, milli] : other.scalars_) {
    auto it = scalars_.find(key);
    if (it != scalars_.end() && (it->second -= milli) <= 0)
      scalars_.erase(it);
  }
  for (const auto& [key, less] : other.ranges_) {
    auto it = ranges_.find(key);
    if (it != ranges_.end() && (it->second = subtract(it->second, less)).empty())
      ranges_.erase(it);
  }
  for (const auto& [key, less] : other.sets_) {
    auto it = sets_.find(key);
    if (it == sets_.end())
      continue;
    for (const auto& item : less)
      it->second.erase(item);
    if (it->second.empty())
      sets_.erase(it);
  }
  return *this;
}

Resources Resources::reserved(std::string_view role) const {
  Resources out;
  auto keep = [role](const std::string& r) { return r == role; };
  copy_if_role(scalars_, out.scalars_, keep);
  copy_if_role(ranges_, out.ranges_, keep);
  copy_if_role(sets_, out.sets_, keep);
  return out;
}

Resources Resources::allocatable_to(std::string_view role) const {
  Resources out;
  auto keep = [role](const std::string& r) { return r == any_role || r == role; };
  copy_if_role(scalars_, out.scalars_, keep);
  copy_if_role(ranges_, out.ranges_, keep);
  copy_if_role(sets_, out.sets_, keep);
  return out;
}

ScalarTotals Resources::scalar_totals() const {
  // Summed in Milli first so the totals are as exact as get().
  std::map<std::string, Milli> sums;
  for (const auto& [key, milli] : scalars_)
    sums[key.name] += milli;
  ScalarTotals out;
  for (const auto& [name, milli] : sums)
    out.emplace(name, double(milli) / 1000.0);
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
  std::vector<std::pair<const Key*, std::string>> entries;
  for (const auto& [key, milli] : scalars_)
    entries.emplace_back(&key, format_milli(milli));
  for (const auto& [key, ranges] : ranges_)
    entries.emplace_back(&key, format_ranges(ranges));
  for (const auto& [key, items] : sets_)
    entries.emplace_back(&key, format_set(items));
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
