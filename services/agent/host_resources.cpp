// What this machine offers when the operator does not say (Mesos's defaults).

#include "services/agent/agent.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>

namespace tessera {

namespace {

constexpr uint64_t mem_headroom_mib_max = 1024;
constexpr uint64_t disk_headroom_mib_max = 5 * 1024;
constexpr Range default_ports{31000, 32000};

// Keeps min(cap, half) back for the system.
uint64_t minus_headroom(uint64_t mib, uint64_t cap) {
  return mib - std::min(cap, mib / 2);
}

}  // namespace

expected<Resources> detect_resources(const std::filesystem::path& work_dir) {
  auto cpus = std::max(1u, std::thread::hardware_concurrency());
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_bytes = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_bytes <= 0)
    return make_os_error(errno, "sysconf(_SC_PHYS_PAGES)");
  auto mem_mib = (static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_bytes)) >> 20;
  struct statvfs fs {};
  if (::statvfs(work_dir.c_str(), &fs) != 0)
    return make_os_error(errno, "statvfs(" + work_dir.string() + ")");
  auto disk_mib = (static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize) >> 20;
  Resources out = Resources::scalar("cpus", cpus);
  if (auto mem = minus_headroom(mem_mib, mem_headroom_mib_max); mem > 0)
    out += Resources::scalar("mem", static_cast<double>(mem));
  if (auto disk = minus_headroom(disk_mib, disk_headroom_mib_max); disk > 0)
    out += Resources::scalar("disk", static_cast<double>(disk));
  out += Resources::ranges("ports", {default_ports});
  return out;
}

Resources merge_resources(const Resources& given, const Resources& detected) {
  std::set<std::string> named;
  auto note = [&](const std::string& name, const std::string&, const auto&) { named.insert(name); };
  given.visit(note, note, note);
  Resources out = given;
  detected.visit(
      [&](const std::string& name, const std::string& role, Milli m) {
        if (!named.count(name))
          out += Resources::scalar(name, static_cast<double>(m) / 1000.0, role);
      },
      [&](const std::string& name, const std::string& role, const std::vector<Range>& r) {
        if (!named.count(name))
          out += Resources::ranges(name, r, role);
      },
      [&](const std::string& name, const std::string& role, const std::set<std::string>& s) {
        if (!named.count(name))
          out += Resources::set(name, s, role);
      });
  return out;
}

}  // namespace tessera
