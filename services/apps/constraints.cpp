// Placement constraints (constraints.hpp).

#include "services/apps/constraints.hpp"

#include <regex.h>

#include <algorithm>
#include <map>

namespace tessera::apps {

namespace {

using Op = Constraint::Op;

std::optional<uint32_t> count_of(const std::string& s) {
  if (s.empty() || s.size() > 9 ||
      !std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  auto n = static_cast<uint32_t>(std::stoul(s));
  return n > 0 ? std::optional(n) : std::nullopt;
}

// Java's \d \D \w \W \s \S as POSIX bracket expressions (glibc's ERE
// would read \d as a plain 'd').
std::string posix_pattern(const std::string& java) {
  std::string out;
  for (size_t i = 0; i < java.size(); ++i) {
    if (java[i] == '\\' && i + 1 < java.size()) {
      const char* cls = nullptr;
      switch (java[i + 1]) {
        case 'd':
          cls = "[0-9]";
          break;
        case 'D':
          cls = "[^0-9]";
          break;
        case 'w':
          cls = "[A-Za-z0-9_]";
          break;
        case 'W':
          cls = "[^A-Za-z0-9_]";
          break;
        case 's':
          cls = "[[:space:]]";
          break;
        case 'S':
          cls = "[^[:space:]]";
          break;
        default:
          break;
      }
      if (cls) {
        out += cls;
        ++i;
        continue;
      }
      out += java[i];
      out += java[++i];
      continue;
    }
    out += java[i];
  }
  return out;
}

}  // namespace

std::optional<std::string> field_value(const std::string& field, const std::string& hostname,
                                       const std::vector<Attribute>& attributes) {
  if (field == "hostname")
    return hostname;
  for (const auto& a : attributes)
    if (a.name == field)  // written as the agent's --attributes text form writes it
      return to_string(std::vector<Attribute>{a}).substr(a.name.size() + 1);
  return std::nullopt;
}

expected<ConstraintCheck> ConstraintCheck::compile(const Constraint& c) {
  ConstraintCheck check(c);
  auto bad = [&](const std::string& why) -> expected<ConstraintCheck> {
    return make_error(Errc::invalid_argument, "constraint " + check.describe() + ": " + why);
  };
  switch (c.op) {
    case Op::group_by:
      if (!c.value.empty()) {
        auto n = count_of(c.value);
        if (!n)
          return bad("the count of groups must be a whole number above 0");
        check.count_ = *n;
      }
      break;
    case Op::max_per: {
      auto n = count_of(c.value);
      if (!n)
        return bad("the count must be a whole number above 0");
      check.count_ = *n;
      break;
    }
    case Op::like:
    case Op::unlike: {
      if (c.value.find('\0') != std::string::npos)
        return bad("a regular expression cannot hold a NUL byte");
      auto re = std::make_unique<regex_t>();
      // The value as written (Marathon's are Java patterns: \d, \w and \s
      // become POSIX classes); a match must cover the whole value.
      if (::regcomp(re.get(), posix_pattern(c.value).c_str(), REG_EXTENDED) != 0)
        return bad("'" + c.value + "' is not a valid regular expression");
      check.regex_ = std::shared_ptr<regex_t>(re.release(), [](regex_t* r) {
        ::regfree(r);
        delete r;
      });
      break;
    }
    case Op::unique:
    case Op::cluster:
    case Op::is:
    case Op::spread:
      break;
  }
  return check;
}

std::string ConstraintCheck::describe() const {
  auto out = c_.field + ":" + to_string(c_.op);
  if (!c_.value.empty())
    out += ":" + c_.value;
  return out;
}

std::optional<std::string> ConstraintCheck::refuses(
    const std::optional<std::string>& candidate,
    const std::vector<std::optional<std::string>>& placed) const {
  auto why = [&](const std::string& reason) {
    return std::optional<std::string>("constraint " + describe() + ": " + reason);
  };
  if (c_.op == Op::spread)
    return std::nullopt;  // soft: ranks agents, never refuses one
  if (!candidate) {
    if (c_.op == Op::unlike)
      return std::nullopt;
    return why("the agent has no " + c_.field);
  }
  const auto& v = *candidate;
  auto count = [&](const std::string& value) {
    return static_cast<uint32_t>(
        std::count_if(placed.begin(), placed.end(), [&](auto& p) { return p && *p == value; }));
  };
  switch (c_.op) {
    case Op::unique:
      if (count(v) > 0)
        return why("an instance already runs where " + c_.field + " is " + v);
      return std::nullopt;
    case Op::cluster:
    case Op::is:
      if (v != c_.value)
        return why(c_.field + " is " + v + ", not " + c_.value);
      return std::nullopt;
    case Op::max_per:
      if (count(v) >= count_)
        return why(std::to_string(count(v)) + " instance(s) already where " + c_.field + " is " +
                   v);
      return std::nullopt;
    case Op::group_by: {
      std::map<std::string, uint32_t> per_value;
      for (auto& p : placed)
        if (p)
          ++per_value[*p];
      uint32_t fewest = 0;
      if (count_ == 0 || per_value.size() >= count_) {
        fewest = UINT32_MAX;
        for (auto& [value, n] : per_value)
          fewest = std::min(fewest, n);
        if (per_value.empty())
          fewest = 0;
      }
      auto mine = per_value.count(v) ? per_value[v] : 0;
      if (mine > fewest)
        return why(c_.field + " " + v + " has " + std::to_string(mine) +
                   " instance(s); another value has " + std::to_string(fewest));
      return std::nullopt;
    }
    case Op::like:
    case Op::unlike: {
      // POSIX finds the leftmost-longest match: it covers the whole value
      // exactly when a match of the whole value exists.
      regmatch_t m;
      bool match = v.find('\0') == std::string::npos &&
                   ::regexec(static_cast<regex_t*>(regex_.get()), v.c_str(), 1, &m, 0) == 0 &&
                   m.rm_so == 0 && static_cast<size_t>(m.rm_eo) == v.size();
      if (c_.op == Op::like && !match)
        return why(c_.field + " " + v + " does not match " + c_.value);
      if (c_.op == Op::unlike && match)
        return why(c_.field + " " + v + " matches " + c_.value);
      return std::nullopt;
    }
    case Op::spread:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tessera::apps
