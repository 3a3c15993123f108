#include "services/jobs/cron.hpp"

#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

namespace tessera::jobs {

namespace {

struct Field {
  const char* name;
  int min;
  int max;
  const std::map<std::string, int>* names;  // null: numbers only
};

const std::map<std::string, int> month_names = {{"JAN", 1}, {"FEB", 2},  {"MAR", 3},  {"APR", 4},
                                                {"MAY", 5}, {"JUN", 6},  {"JUL", 7},  {"AUG", 8},
                                                {"SEP", 9}, {"OCT", 10}, {"NOV", 11}, {"DEC", 12}};
const std::map<std::string, int> day_names = {{"SUN", 0}, {"MON", 1}, {"TUE", 2}, {"WED", 3},
                                              {"THU", 4}, {"FRI", 5}, {"SAT", 6}};

// Day of week takes 7 as Sunday too: its range is 0-7, folded afterwards.
const Field fields[5] = {{"minute", 0, 59, nullptr},
                         {"hour", 0, 23, nullptr},
                         {"day of month", 1, 31, nullptr},
                         {"month", 1, 12, &month_names},
                         {"day of week", 0, 7, &day_names}};

caf::error bad(const Field& f, const std::string& item, const std::string& why) {
  return make_error(Errc::invalid_argument,
                    std::string("cron ") + f.name + " '" + item + "': " + why);
}

expected<int> value_of(const Field& f, const std::string& item, std::string text) {
  if (text.empty())
    return bad(f, item, "a value is missing");
  if (f.names) {
    std::string upper = text;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (auto it = f.names->find(upper); it != f.names->end())
      return it->second;
  }
  if (text.size() > 4 ||
      !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
    return bad(f, item, "'" + text + "' is not a number" + (f.names ? " or a name" : ""));
  int v = std::stoi(text);
  if (v < f.min || v > f.max)
    return bad(
        f, item,
        std::to_string(v) + " is out of " + std::to_string(f.min) + "-" + std::to_string(f.max));
  return v;
}

// Sets the values of one item in bits (index = value).
caf::error parse_item(const Field& f, const std::string& item, std::vector<bool>& bits) {
  std::string range = item, step_text;
  if (auto slash = item.find('/'); slash != std::string::npos) {
    range = item.substr(0, slash);
    step_text = item.substr(slash + 1);
  }
  int step = 1;
  if (!step_text.empty() || item.find('/') != std::string::npos) {
    if (step_text.empty() || step_text.size() > 4 ||
        !std::all_of(step_text.begin(), step_text.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; }))
      return bad(f, item, "the step must be a number");
    step = std::stoi(step_text);
    if (step < 1 || step > f.max)
      return bad(f, item, "the step must be 1-" + std::to_string(f.max));
  }
  int lo = f.min, hi = f.max;
  if (range != "*") {
    auto dash = range.find('-');
    auto first = value_of(f, item, range.substr(0, dash));
    if (!first)
      return first.error();
    lo = *first;
    if (dash != std::string::npos) {
      auto last = value_of(f, item, range.substr(dash + 1));
      if (!last)
        return last.error();
      hi = *last;
      if (hi < lo)
        return bad(f, item, "the range runs backwards");
    } else if (step_text.empty()) {
      hi = lo;  // a single value
    }           // "5/15": from 5 to the end, every 15
  }
  for (int v = lo; v <= hi; v += step)
    bits[static_cast<size_t>(v)] = true;
  return {};
}

template <size_t N>
std::bitset<N> to_bits(const std::vector<bool>& v) {
  std::bitset<N> out;
  for (size_t i = 0; i < N && i < v.size(); ++i)
    out[i] = v[i];
  return out;
}

std::string expand_alias(std::string_view text) {
  static const std::map<std::string, std::string> aliases = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  auto it = aliases.find(std::string(text));
  return it == aliases.end() ? std::string(text) : it->second;
}

}  // namespace

expected<CronSchedule> parse_cron(std::string_view text) {
  std::string expanded = expand_alias(text);
  std::vector<std::string> parts;
  std::string cur;
  for (char c : expanded) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty())
        parts.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    parts.push_back(std::move(cur));
  if (parts.size() != 5)
    return make_error(Errc::invalid_argument, "cron '" + std::string(text) +
                                                  "': expected 5 fields (minute hour "
                                                  "day-of-month month day-of-week), found " +
                                                  std::to_string(parts.size()));
  CronSchedule s;
  s.text = std::string(text);
  std::vector<std::vector<bool>> bits;
  for (size_t k = 0; k < 5; ++k) {
    bits.emplace_back(static_cast<size_t>(fields[k].max + 1), false);
    size_t start = 0;
    while (true) {
      auto comma = parts[k].find(',', start);
      auto item =
          parts[k].substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (auto err = parse_item(fields[k], item, bits[k]))
        return err;
      if (comma == std::string::npos)
        break;
      start = comma + 1;
    }
  }
  if (bits[4][7])
    bits[4][0] = true;  // 7 is Sunday too
  s.minutes = to_bits<60>(bits[0]);
  s.hours = to_bits<24>(bits[1]);
  s.days_of_month = to_bits<32>(bits[2]);
  s.months = to_bits<13>(bits[3]);
  s.days_of_week = to_bits<7>(bits[4]);
  s.day_of_month_restricted = parts[2][0] != '*';
  s.day_of_week_restricted = parts[4][0] != '*';
  return s;
}

expected<const date::time_zone*> find_time_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return make_error(Errc::invalid_argument,
                      "unknown time zone '" + name + "' (an IANA name such as Europe/Berlin)");
  }
}

namespace {

bool day_matches(const CronSchedule& s, date::year_month_day ymd, date::weekday wd) {
  if (!s.months[static_cast<unsigned>(ymd.month())])
    return false;
  bool dom = s.days_of_month[static_cast<unsigned>(ymd.day())];
  bool dow = s.days_of_week[wd.c_encoding()];
  if (s.day_of_month_restricted && s.day_of_week_restricted)
    return dom || dow;
  return dom && dow;
}

}  // namespace

expected<SysTime> next_run(const CronSchedule& s, const date::time_zone* zone, SysTime after) {
  using namespace std::chrono;
  // Start a day early: a local day can begin before `after` in UTC terms.
  auto local_after = zone->to_local(after);
  auto day = date::floor<date::days>(local_after) - date::days{1};
  // The zone's offset around `after`: a candidate more than a day inside
  // that stretch maps with it, uniquely, with no lookup (most candidates;
  // lookups are what a schedule's next time costs).
  auto around = zone->get_info(after);
  auto sure_from = around.begin + date::days{1};
  auto sure_to = around.end - date::days{1};
  constexpr int days_max = 28 * 366;  // the calendar repeats every 28 years
  for (int n = 0; n < days_max; ++n, day += date::days{1}) {
    date::year_month_day ymd{day};
    if (!day_matches(s, ymd, date::weekday{day}))
      continue;
    for (int h = 0; h < 24; ++h) {
      if (!s.hours[static_cast<size_t>(h)])
        continue;
      for (int m = 0; m < 60; ++m) {
        if (!s.minutes[static_cast<size_t>(m)])
          continue;
        auto local = date::local_seconds{day} + hours{h} + minutes{m};
        auto guess = SysTime{local.time_since_epoch() - around.offset};
        if (guess >= sure_from && guess < sure_to) {
          if (guess > after)
            return guess;
          continue;
        }
        auto info = zone->get_info(local);
        if (info.result == date::local_info::nonexistent)
          continue;  // skipped by a spring-forward: not run that day
        // Unique, or the first of an ambiguous pair: runs once.
        auto sys = SysTime{local.time_since_epoch() - info.first.offset};
        if (sys > after)
          return sys;
      }
    }
  }
  return make_error(Errc::invalid_argument, "cron '" + s.text + "' matches no day within 28 years");
}

}  // namespace tessera::jobs
