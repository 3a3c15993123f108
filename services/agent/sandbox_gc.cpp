#include "services/agent/sandbox_gc.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

namespace tessera::sandbox_gc {

namespace {

struct Candidate {
  fs::path run;
  fs::file_time_type ended;
};

// The subdirectories of dir (symlinks excluded); none when dir is absent.
std::vector<fs::path> subdirectories(const fs::path& dir, Result& out) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->symlink_status(type_ec).type() == fs::file_type::directory)
      found.push_back(it->path());
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    out.failures.push_back("listing " + dir.string() + ": " + ec.message());
  return found;
}

// Removes dir if it is empty; true when it is gone (or was never there).
bool remove_if_empty(const fs::path& dir, Result& out) {
  std::error_code ec;
  fs::remove(dir, ec);
  if (!ec)
    return true;
  if (ec != std::errc::directory_not_empty && ec != std::errc::file_exists)
    out.failures.push_back("removing " + dir.string() + ": " + ec.message());
  return false;
}

std::vector<Candidate> expired_runs(const fs::path& work_dir, const std::set<fs::path>& live,
                                    std::chrono::milliseconds max_age, fs::file_time_type now,
                                    Result& out) {
  auto age_max = std::max(max_age, fresh_age_min);
  std::vector<Candidate> expired;
  for (const auto& framework : subdirectories(work_dir / "frameworks", out))
    for (const auto& executor : subdirectories(framework / "executors", out))
      for (const auto& run : subdirectories(executor / "runs", out)) {
        if (live.count(run))
          continue;
        std::error_code ec;
        auto ended = fs::last_write_time(run, ec);
        if (ec)
          out.failures.push_back("reading the time of " + run.string() + ": " + ec.message());
        else if (now - ended > age_max)
          expired.push_back({run, ended});
      }
  return expired;
}

}  // namespace

std::chrono::milliseconds Policy::max_age_ms(double disk_used_fraction) const {
  double used = disk_used_fraction >= 0 ? std::min(disk_used_fraction, 1.0) : 0.0;  // NaN: 0
  double factor = std::max(0.0, 1.0 - disk_headroom - used);
  return std::chrono::milliseconds(std::llround(static_cast<double>(delay_ms.count()) * factor));
}

expected<double> disk_used_fraction(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0)
    return make_os_error(errno, "statvfs(" + dir.string() + ")");
  if (st.f_blocks == 0)
    return 0.0;
  auto free = std::min(st.f_bfree, st.f_blocks);
  return static_cast<double>(st.f_blocks - free) / static_cast<double>(st.f_blocks);
}

Result scan(const fs::path& work_dir, const std::set<fs::path>& live,
            std::chrono::milliseconds max_age, fs::file_time_type now, size_t removals_max) {
  Result out;
  auto expired = expired_runs(work_dir, live, max_age, now, out);
  out.expired = expired.size();
  auto first =
      expired.begin() + static_cast<std::ptrdiff_t>(std::min(removals_max, expired.size()));
  std::partial_sort(expired.begin(), first, expired.end(),
                    [](const Candidate& a, const Candidate& b) { return a.ended < b.ended; });
  expired.erase(first, expired.end());

  std::set<fs::path> executors;  // whose runs lost one
  for (const auto& c : expired) {
    std::error_code ec;
    fs::remove_all(c.run, ec);
    if (ec) {
      out.failures.push_back("removing " + c.run.string() + ": " + ec.message());
      continue;
    }
    out.removed.push_back(c.run);
    executors.insert(c.run.parent_path().parent_path());
  }
  std::set<fs::path> frameworks;  // whose executors lost one
  for (const auto& executor : executors)
    if (remove_if_empty(executor / "runs", out) && remove_if_empty(executor, out))
      frameworks.insert(executor.parent_path().parent_path());
  for (const auto& framework : frameworks)
    if (remove_if_empty(framework / "executors", out))
      remove_if_empty(framework, out);
  return out;
}

}  // namespace tessera::sandbox_gc
