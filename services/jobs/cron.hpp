#pragma once
// Cron schedules of the jobs framework (issue #13): five fields (minute,
// hour, day of month, month, day of week) with ranges, steps, lists and
// names, in an IANA time zone. A value type and one pure function; no I/O
// beyond reading the system's time-zone database (through Howard Hinnant's
// date library: std::chrono has no zones in GCC 12).
//
// Syntax, as Vixie cron's and Metronome's:
//   field  := item ("," item)*
//   item   := "*" ["/" step] | value ["-" value] ["/" step] | value "/" step
//   minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC,
//   day of week 0-7 or SUN-SAT (0 and 7 are Sunday); names in any case.
//   "@yearly" (or "@annually"), "@monthly", "@weekly", "@daily" (or
//   "@midnight") and "@hourly" stand for their five fields.
// When both day fields are restricted (neither starts with "*"), a day
// matches when either does (cron's rule); otherwise both must.
//
// Daylight saving: next_run() walks local wall-clock times. A local time
// that does not exist that day (skipped by a spring-forward) is skipped; a
// local time that happens twice (a fall-back) runs once, at its first
// occurrence.

#include "runtime/error.hpp"

#include <bitset>
#include <chrono>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace tessera::jobs {

struct CronSchedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0..6, Sunday 0
  bool day_of_month_restricted = false;
  bool day_of_week_restricted = false;
  std::string text;  // as given
};

// Errc::invalid_argument naming the field and the item at fault.
expected<CronSchedule> parse_cron(std::string_view text);

// The zone of an IANA name ("Europe/Berlin", "UTC"); Errc::invalid_argument
// for a name the system's database does not know.
expected<const date::time_zone*> find_time_zone(const std::string& name);

using SysTime = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

// The first run strictly after `after`, in zone. Errc::invalid_argument when
// the schedule never matches a real day within 28 years (Feb 30, or Feb 29
// on a weekday the calendar does not give it).
expected<SysTime> next_run(const CronSchedule& schedule, const date::time_zone* zone,
                           SysTime after);

}  // namespace tessera::jobs
