// Cron schedules of the jobs framework (services/jobs/cron.hpp): the five
// fields, and the next run in a real time zone across daylight-saving days.

#include "services/jobs/cron.hpp"

#include <catch2/catch.hpp>
#include <date/date.h>
#include <date/tz.h>

#include <cstdio>

using namespace tessera;
using namespace tessera::jobs;

namespace {

// "2026-03-08T07:00:00Z" -> SysTime.
SysTime utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  REQUIRE(std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &sec) == 6);
  auto day = date::sys_days{date::year{y} / date::month{static_cast<unsigned>(mo)} /
                            date::day{static_cast<unsigned>(d)}};
  return SysTime{day} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{sec};
}

std::string text(SysTime t) {
  return date::format("%Y-%m-%dT%H:%M:%SZ", t);
}

std::string next(const std::string& cron, const std::string& zone, const std::string& after) {
  auto s = parse_cron(cron);
  REQUIRE(s);
  auto z = find_time_zone(zone);
  REQUIRE(z);
  auto t = next_run(*s, *z, utc(after));
  REQUIRE(t);
  return text(*t);
}

std::string error_of(const std::string& cron) {
  auto s = parse_cron(cron);
  REQUIRE_FALSE(s);
  return what(s.error());
}

}  // namespace

TEST_CASE("the five fields take ranges, steps, lists and names", "[jobs][cron]") {
  auto s = parse_cron("*/15 0-6/2,22 1,15 jan-MAR Mon-fri");
  REQUIRE(s);
  CHECK(s->minutes.count() == 4);
  CHECK(s->minutes[45]);
  CHECK(s->hours.count() == 5);  // 0, 2, 4, 6, 22
  CHECK(s->hours[22]);
  CHECK_FALSE(s->hours[1]);
  CHECK(s->days_of_month.count() == 2);
  CHECK(s->months.count() == 3);
  CHECK(s->days_of_week.count() == 5);
  CHECK_FALSE(s->days_of_week[0]);
  CHECK(s->day_of_month_restricted);
  CHECK(s->day_of_week_restricted);
  auto sunday = parse_cron("0 0 * * 7");  // 7 is Sunday, as 0
  REQUIRE(sunday);
  CHECK(sunday->days_of_week[0]);
  CHECK_FALSE(sunday->day_of_month_restricted);
  auto from = parse_cron("5/20 * * * *");  // from 5, every 20
  REQUIRE(from);
  CHECK(from->minutes.count() == 3);
  CHECK(from->minutes[45]);
  auto daily = parse_cron("@daily");
  REQUIRE(daily);
  CHECK(daily->minutes.count() == 1);
  CHECK(daily->hours[0]);
}

TEST_CASE("a bad schedule names its field and item", "[jobs][cron]") {
  CHECK(error_of("60 * * * *").find("minute '60': 60 is out of 0-59") != std::string::npos);
  CHECK(error_of("* * * *").find("expected 5 fields") != std::string::npos);
  CHECK(error_of("* 5-2 * * *").find("hour '5-2': the range runs backwards") != std::string::npos);
  CHECK(error_of("*/0 * * * *").find("the step must be 1-59") != std::string::npos);
  CHECK(error_of("* * 0 * *").find("day of month '0'") != std::string::npos);
  CHECK(error_of("* * * FOO *").find("month 'FOO': 'FOO' is not a number or a name") !=
        std::string::npos);
  CHECK(error_of("* * * * 1,").find("day of week '': a value is missing") != std::string::npos);
  CHECK(error_of("@often").find("expected 5 fields") != std::string::npos);
  CHECK_FALSE(find_time_zone("Mars/Olympus_Mons"));
}

TEST_CASE("the next run is strictly after, in the schedule's zone", "[jobs][cron]") {
  CHECK(next("0 12 * * *", "UTC", "2026-12-07T13:00:00Z") == "2026-12-08T12:00:00Z");
  CHECK(next("0 12 * * *", "UTC", "2026-12-07T12:00:00Z") == "2026-12-08T12:00:00Z");
  CHECK(next("0 12 * * *", "UTC", "2026-12-07T11:59:59Z") == "2026-12-07T12:00:00Z");
  // Noon in Berlin (UTC+1 in winter).
  CHECK(next("0 12 * * *", "Europe/Berlin", "2026-12-07T13:00:00Z") == "2026-12-08T11:00:00Z");
  // Both day fields restricted: either matches (the 13th, or a Friday).
  CHECK(next("0 0 13 * FRI", "UTC", "2026-12-07T00:00:00Z") == "2026-12-11T00:00:00Z");
  CHECK(next("0 0 13 * FRI", "UTC", "2026-12-11T00:00:00Z") == "2026-12-13T00:00:00Z");
  // One restricted: both must (any day of the month that is a Monday).
  CHECK(next("0 0 * * MON", "UTC", "2026-12-07T00:00:00Z") == "2026-12-14T00:00:00Z");
  // February 29th: the next leap year.
  CHECK(next("0 0 29 2 *", "UTC", "2026-12-07T00:00:00Z") == "2028-02-29T00:00:00Z");
  auto never = parse_cron("0 0 30 2 *");
  REQUIRE(never);
  CHECK_FALSE(next_run(*never, *find_time_zone("UTC"), utc("2026-12-07T00:00:00Z")));
}

TEST_CASE("a local time a spring-forward skips does not run that day", "[jobs][cron]") {
  // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
  CHECK(next("30 2 * * *", "America/New_York", "2026-03-07T08:00:00Z") == "2026-03-09T06:30:00Z");
  // 03:30 does exist that day, now in EDT (UTC-4).
  CHECK(next("30 3 * * *", "America/New_York", "2026-03-08T05:00:00Z") == "2026-03-08T07:30:00Z");
  // Hourly runs go from 01:00 EST straight to 03:00 EDT.
  CHECK(next("0 * * * *", "America/New_York", "2026-03-08T06:00:00Z") == "2026-03-08T07:00:00Z");
}

TEST_CASE("a local time a fall-back repeats runs once, at its first occurrence", "[jobs][cron]") {
  // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
  auto first = next("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z");
  CHECK(first == "2026-11-01T05:30:00Z");  // 01:30 EDT
  // After it, the second 01:30 (06:30Z, EST) is not a run: the next is tomorrow's.
  CHECK(next("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z") == "2026-11-02T06:30:00Z");
  // Every 30 minutes through the fold: 01:00 and 01:30 once each, then 02:00 EST.
  CHECK(next("0,30 * * * *", "America/New_York", "2026-11-01T05:30:00Z") == "2026-11-01T07:00:00Z");
}

TEST_CASE("daylight saving in Europe/Berlin: a skipped 02:30 waits a day, a repeated one runs once",
          "[jobs][cron]") {
  // 2026-03-29 02:00 CET becomes 03:00 CEST: 02:30 does not exist that day.
  CHECK(next("30 2 * * *", "Europe/Berlin", "2026-03-28T02:00:00Z") == "2026-03-30T00:30:00Z");
  // 2026-10-25 03:00 CEST becomes 02:00 CET: 02:30 happens at 00:30Z and at
  // 01:30Z; only the first runs, the next is the day after (CET).
  CHECK(next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z") == "2026-10-25T00:30:00Z");
  CHECK(next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z") == "2026-10-26T01:30:00Z");
  // Every minute across the fall-back hour: each minute once, none twice.
  CHECK(next("* * * * *", "Europe/Berlin", "2026-10-25T00:59:00Z") == "2026-10-25T02:00:00Z");
  // Far from any transition (the offset used without a lookup).
  CHECK(next("15 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z") == "2026-07-01T07:15:00Z");
}
