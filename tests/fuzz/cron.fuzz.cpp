// Cron expressions of the jobs framework (a job's schedule, from its
// owner's JSON): parsing, and the next run after a time in a zone. A
// schedule that parses never fails to answer by throwing or looping; its
// next run is strictly later than the time asked about.
//
// Input: a zone selector byte, eight bytes of start time, then the text.

#include "services/jobs/cron.hpp"
#include "tests/fuzz/fuzz_input.hpp"

#include <array>
#include <cstdlib>

namespace {

// Zones with daylight-saving gaps and overlaps, and ones without.
constexpr std::array<const char*, 5> zones = {"UTC", "Europe/Berlin", "America/New_York",
                                              "Australia/Lord_Howe", "Asia/Kathmandu"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::fuzz::Input in(data, size);
  auto zone_name = zones[in.u8() % zones.size()];
  uint64_t start = 0;
  for (int i = 0; i < 4; ++i)
    start = (start << 16) | in.u16();
  auto schedule = tessera::jobs::parse_cron(in.rest());
  if (!schedule)
    return 0;
  auto zone = tessera::jobs::find_time_zone(zone_name);
  if (!zone)
    std::abort();  // the system's database lacks a zone every Debian has
  // Within 1970..2100: what jobs are scheduled in.
  auto after = tessera::jobs::SysTime(std::chrono::seconds(start % 4'102'444'800ULL));
  auto next = tessera::jobs::next_run(*schedule, *zone, after);
  if (next && *next <= after)
    std::abort();
  return 0;
}
