#pragma once
// Wall-clock times as the apps API shows them: milliseconds since the epoch,
// written as Marathon writes versions and timestamps ("2026-12-07T14:00:00.000Z").

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace tessera::apps {

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string iso_time(int64_t ms) {
  auto secs = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&secs, &utc);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace tessera::apps
