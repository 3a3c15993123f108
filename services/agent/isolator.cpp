#include "services/agent/isolator.hpp"

#include "services/common/text.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace tessera {
namespace fs = std::filesystem;
using text::parse_u64;
using text::split;
using text::trim;

namespace {

constexpr long cgroup2_super_magic = 0x63677270;
constexpr uint64_t cfs_period_us = 100000;
constexpr auto destroy_poll = std::chrono::milliseconds(2);
constexpr size_t control_file_bytes_max = 1 << 20;

// -- small file helpers (cgroupfs and procfs files are tiny and never block) --

expected<std::string> read_text(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_os_error(errno, "open " + path.string());
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return make_os_error(e, "read " + path.string());
    }
    if (n == 0 || out.size() > control_file_bytes_max)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

caf::error write_text(const fs::path& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return make_os_error(errno, "open " + path.string());
  auto n = ::write(fd, value.data(), value.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    return make_os_error(n < 0 ? e : EIO, "write '" + value + "' to " + path.string());
  return {};
}

uint64_t read_u64(const fs::path& path) {
  uint64_t v = 0;
  if (auto text = read_text(path))
    parse_u64(*text, v);
  return v;
}

// "key value" lines (memory.stat, memory.oom_control, cpu.stat, memory.events).
uint64_t read_keyed(const fs::path& path, std::string_view key) {
  auto text = read_text(path);
  if (!text)
    return 0;
  for (auto line : split(*text, '\n')) {
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != key)
      continue;
    uint64_t v = 0;
    parse_u64(line.substr(sp + 1), v);
    return v;
  }
  return 0;
}

std::vector<int> read_pids(const fs::path& procs_file) {
  std::vector<int> pids;
  auto text = read_text(procs_file);
  if (!text)
    return pids;
  for (auto line : split(*text, '\n')) {
    uint64_t v = 0;
    if (parse_u64(line, v) && v > 0)
      pids.push_back(static_cast<int>(v));
  }
  return pids;
}

std::vector<std::string> subdirectories(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec))
      out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool valid_component(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

// The environment entry that marks a container's processes. The scope is
// part of it: container ids are only unique per agent.
std::string container_marker(const std::string& scope, const std::string& id) {
  return "TESSERA_CONTAINER=" + scope + "/" + id;
}

// Kills every pid in the listed files until they are all empty, or the
// deadline passes. The caller froze the container when it could, so the
// first pass is the only one that usually matters.
bool kill_until_empty(const std::vector<fs::path>& procs_files,
                      std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool empty = true;
    for (const auto& f : procs_files)
      for (int pid : read_pids(f)) {
        empty = false;
        ::kill(pid, SIGKILL);
      }
    if (empty)
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(destroy_poll);
  }
}

caf::error remove_dir(const fs::path& dir, std::chrono::steady_clock::time_point deadline) {
  // rmdir of a cgroup is refused (EBUSY) until its last process is gone from
  // the kernel's books, a moment after it was reaped.
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT)
      return {};
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline)
      return make_os_error(errno, "rmdir " + dir.string());
    std::this_thread::sleep_for(destroy_poll);
  }
}

// -- cgroups v1 ------------------------------------------------------------------

// Where each v1 controller is mounted, from /proc/self/mountinfo.
std::map<std::string, fs::path> v1_mounts() {
  std::map<std::string, fs::path> out;
  auto text = read_text("/proc/self/mountinfo");
  if (!text)
    return out;
  for (auto line : split(*text, '\n')) {
    // id parent major:minor root mount-point options ... - fstype source super-options
    auto dash = line.find(" - ");
    if (dash == std::string_view::npos)
      continue;
    auto fields = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() < 5 || tail.size() < 3 || tail[0] != "cgroup")
      continue;
    for (auto opt : split(tail[2], ','))
      for (const char* c : {"cpu", "cpuacct", "memory", "pids", "freezer"})
        if (opt == c)
          out.emplace(c, fs::path(std::string(fields[4])));
  }
  return out;
}

class CgroupsV1 : public Isolator {
 public:
  CgroupsV1(IsolationConfig config, std::map<std::string, fs::path> mounts)
      : config_(std::move(config)), mounts_(std::move(mounts)) {}
  ~CgroupsV1() override { release(); }

  const char* name() const override { return "cgroups-v1"; }

  expected<Placement> prepare(const std::string& id, const ContainerLimits& limits) override {
    if (!valid_component(id))
      return make_error(Errc::invalid_argument, "container id '" + id + "'");
    Placement p;
    for (const auto& dir : dirs(id)) {
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) {
        destroy(id);
        return make_os_error(ec.value(), "mkdir " + dir.string());
      }
      p.cgroups.push_back(dir.string());
    }
    if (auto err = apply(id, limits)) {
      destroy(id);
      return err;
    }
    p.env.push_back(container_marker(config_.scope, id));
    return p;
  }

  expected<ContainerStats> usage(const std::string& id) const override {
    auto mem = dir("memory", id);
    std::error_code ec;
    if (!fs::exists(mem, ec))
      return make_error(Errc::invalid_argument, "no container " + id);
    ContainerStats s;
    s.cpu_time_ns = read_u64(dir("cpuacct", id) / "cpuacct.usage");
    s.mem_rss_bytes = read_keyed(mem / "memory.stat", "total_rss");
    s.mem_peak_bytes = read_u64(mem / "memory.max_usage_in_bytes");
    s.oom_kills = static_cast<uint32_t>(read_keyed(mem / "memory.oom_control", "oom_kill"));
    s.processes = static_cast<uint32_t>(read_pids(mem / "cgroup.procs").size());
    return s;
  }

  expected<ContainerStats> oom_state(const std::string& id) const override {
    auto mem = dir("memory", id);
    ContainerStats s;
    s.oom_kills = static_cast<uint32_t>(read_keyed(mem / "memory.oom_control", "oom_kill"));
    s.mem_peak_bytes = read_u64(mem / "memory.max_usage_in_bytes");
    return s;
  }

  caf::error destroy(const std::string& id) override {
    if (!valid_component(id))
      return make_error(Errc::invalid_argument, "container id '" + id + "'");
    auto deadline = std::chrono::steady_clock::now() + config_.destroy_timeout_ms;
    auto all = dirs(id);
    std::vector<fs::path> procs;
    std::error_code ec;
    for (const auto& d : all)
      if (fs::exists(d, ec))
        procs.push_back(d / "cgroup.procs");
    if (procs.empty())
      return {};
    // Frozen, nothing in it can fork while we kill; SIGKILL is delivered on thaw.
    auto freezer = dir("freezer", id);
    bool freezing = mounts_.count("freezer") && fs::exists(freezer, ec) &&
                    !write_text(freezer / "freezer.state", "FROZEN");
    // At most half the time for freezing (a task in uninterruptible sleep
    // can hold it in FREEZING); killing goes on either way.
    if (freezing)
      wait_frozen(freezer, std::chrono::steady_clock::now() + config_.destroy_timeout_ms / 2);
    for (const auto& f : procs)
      for (int pid : read_pids(f))
        ::kill(pid, SIGKILL);
    // Thawed whenever freezing began, so the kills are delivered.
    if (freezing)
      write_text(freezer / "freezer.state", "THAWED");
    if (!kill_until_empty(procs, deadline))
      return make_error(Errc::timeout, "container " + id + ": processes still alive after " +
                                           std::to_string(config_.destroy_timeout_ms.count()) +
                                           " ms");
    for (const auto& d : all)
      if (auto err = remove_dir(d, deadline))
        return err;
    return {};
  }

  std::vector<std::string> containers() const override {
    return subdirectories(scope_dir("memory"));
  }

  void release() override {
    std::set<fs::path> seen;
    for (const auto& [controller, mount] : mounts_)
      if (seen.insert(mount).second) {
        ::rmdir(scope_dir(controller).c_str());
        ::rmdir((mount / config_.cgroups_root).c_str());  // if no other agent uses it
      }
  }

 private:
  fs::path scope_dir(const std::string& controller) const {
    return mounts_.at(controller) / config_.cgroups_root / config_.scope;
  }
  fs::path dir(const std::string& controller, const std::string& id) const {
    return scope_dir(controller) / id;
  }
  // One directory per distinct mount (cpu and cpuacct are often co-mounted).
  std::vector<fs::path> dirs(const std::string& id) const {
    std::vector<fs::path> out;
    std::set<fs::path> seen;
    for (const auto& [controller, mount] : mounts_)
      if (seen.insert(mount).second)
        out.push_back(dir(controller, id));
    return out;
  }

  caf::error apply(const std::string& id, const ContainerLimits& l) const {
    auto cpu = dir("cpu", id);
    auto shares =
        l.cpus_milli == 0 ? uint64_t{1024} : std::max<uint64_t>(2, l.cpus_milli * 1024 / 1000);
    if (auto err = write_text(cpu / "cpu.shares", std::to_string(shares)))
      return err;
    if (auto err = write_text(cpu / "cpu.cfs_period_us", std::to_string(cfs_period_us)))
      return err;
    std::string quota = "-1";
    if (l.cpus_milli > 0)
      quota = std::to_string(std::max<uint64_t>(1000, l.cpus_milli * cfs_period_us / 1000));
    if (auto err = write_text(cpu / "cpu.cfs_quota_us", quota))
      return err;
    auto mem = dir("memory", id);
    std::string limit = l.mem_bytes == 0 ? "-1" : std::to_string(l.mem_bytes);
    if (auto err = write_text(mem / "memory.limit_in_bytes", limit))
      return err;
    // With swap accounting, swap counts against the same limit, so a task
    // cannot swap its way past it. Without, the file is absent: fine.
    std::error_code ec;
    if (fs::exists(mem / "memory.memsw.limit_in_bytes", ec))
      write_text(mem / "memory.memsw.limit_in_bytes", limit);
    auto pids = dir("pids", id);
    return write_text(pids / "pids.max", l.pids_max == 0 ? "max" : std::to_string(l.pids_max));
  }

  static bool wait_frozen(const fs::path& freezer, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      auto state = read_text(freezer / "freezer.state");
      if (!state || trim(*state) == "FROZEN")
        return static_cast<bool>(state);
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(destroy_poll);
    }
  }

  IsolationConfig config_;
  std::map<std::string, fs::path> mounts_;
};

// -- cgroups v2 ------------------------------------------------------------------

class CgroupsV2 : public Isolator {
 public:
  explicit CgroupsV2(IsolationConfig config) : config_(std::move(config)) {}
  ~CgroupsV2() override { release(); }

  const char* name() const override { return "cgroups-v2"; }

  expected<Placement> prepare(const std::string& id, const ContainerLimits& limits) override {
    if (!valid_component(id))
      return make_error(Errc::invalid_argument, "container id '" + id + "'");
    // Controllers must be enabled in every ancestor's subtree_control.
    auto level = config_.cgroups_mount;
    for (const auto& part : {config_.cgroups_root, config_.scope}) {
      write_text(level / "cgroup.subtree_control", "+cpu +memory +pids");
      level /= part;
      std::error_code ec;
      fs::create_directories(level, ec);
      if (ec)
        return make_os_error(ec.value(), "mkdir " + level.string());
    }
    if (auto err = write_text(level / "cgroup.subtree_control", "+cpu +memory +pids"))
      return err;
    auto d = dir(id);
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec)
      return make_os_error(ec.value(), "mkdir " + d.string());
    if (auto err = apply(d, limits)) {
      destroy(id);
      return err;
    }
    return Placement{{d.string()}, {container_marker(config_.scope, id)}};
  }

  expected<ContainerStats> usage(const std::string& id) const override {
    auto d = dir(id);
    std::error_code ec;
    if (!fs::exists(d, ec))
      return make_error(Errc::invalid_argument, "no container " + id);
    ContainerStats s;
    s.cpu_time_ns = read_keyed(d / "cpu.stat", "usage_usec") * 1000;
    s.mem_rss_bytes = read_keyed(d / "memory.stat", "anon");
    s.mem_peak_bytes = read_u64(d / "memory.peak");
    s.oom_kills = static_cast<uint32_t>(read_keyed(d / "memory.events", "oom_kill"));
    s.processes = static_cast<uint32_t>(read_pids(d / "cgroup.procs").size());
    return s;
  }

  expected<ContainerStats> oom_state(const std::string& id) const override {
    auto d = dir(id);
    ContainerStats s;
    s.oom_kills = static_cast<uint32_t>(read_keyed(d / "memory.events", "oom_kill"));
    s.mem_peak_bytes = read_u64(d / "memory.peak");
    return s;
  }

  caf::error destroy(const std::string& id) override {
    if (!valid_component(id))
      return make_error(Errc::invalid_argument, "container id '" + id + "'");
    auto d = dir(id);
    std::error_code ec;
    if (!fs::exists(d, ec))
      return {};
    auto deadline = std::chrono::steady_clock::now() + config_.destroy_timeout_ms;
    // cgroup.kill (Linux 5.14) kills everything at once, forks included.
    if (fs::exists(d / "cgroup.kill", ec))
      write_text(d / "cgroup.kill", "1");
    if (!kill_until_empty({d / "cgroup.procs"}, deadline))
      return make_error(Errc::timeout, "container " + id + ": processes still alive");
    return remove_dir(d, deadline);
  }

  std::vector<std::string> containers() const override {
    return subdirectories(config_.cgroups_mount / config_.cgroups_root / config_.scope);
  }

  void release() override {
    ::rmdir((config_.cgroups_mount / config_.cgroups_root / config_.scope).c_str());
    ::rmdir((config_.cgroups_mount / config_.cgroups_root).c_str());
  }

 private:
  fs::path dir(const std::string& id) const {
    return config_.cgroups_mount / config_.cgroups_root / config_.scope / id;
  }

  static caf::error apply(const fs::path& d, const ContainerLimits& l) {
    std::string quota = "max";
    if (l.cpus_milli > 0)
      quota = std::to_string(std::max<uint64_t>(1000, l.cpus_milli * cfs_period_us / 1000));
    if (auto err = write_text(d / "cpu.max", quota + " " + std::to_string(cfs_period_us)))
      return err;
    auto weight =
        l.cpus_milli == 0 ? uint64_t{100} : std::clamp<uint64_t>(l.cpus_milli / 10, 1, 10000);
    if (auto err = write_text(d / "cpu.weight", std::to_string(weight)))
      return err;
    if (auto err =
            write_text(d / "memory.max", l.mem_bytes == 0 ? "max" : std::to_string(l.mem_bytes)))
      return err;
    std::error_code ec;
    if (fs::exists(d / "memory.swap.max", ec))
      write_text(d / "memory.swap.max", "0");
    return write_text(d / "pids.max", l.pids_max == 0 ? "max" : std::to_string(l.pids_max));
  }

  IsolationConfig config_;
};

// -- posix -----------------------------------------------------------------------

class Posix : public Isolator {
 public:
  explicit Posix(IsolationConfig config) : config_(std::move(config)) {}

  const char* name() const override { return "posix"; }

  expected<Placement> prepare(const std::string& id, const ContainerLimits&) override {
    if (!valid_component(id))
      return make_error(Errc::invalid_argument, "container id '" + id + "'");
    return Placement{{}, {container_marker(config_.scope, id)}};
  }

  expected<ContainerStats> usage(const std::string& id) const override {
    auto all = usage_of({id});
    return all.empty() ? ContainerStats{} : all.begin()->second;
  }

  expected<ContainerStats> oom_state(const std::string&) const override { return ContainerStats{}; }

  std::map<std::string, ContainerStats> usage_of(
      const std::vector<std::string>& ids) const override {
    std::map<std::string, ContainerStats> out;
    for (const auto& id : ids)
      out[id];  // a container with no process left is still there, empty
    static const long page = ::sysconf(_SC_PAGESIZE);
    static const long ticks = ::sysconf(_SC_CLK_TCK);
    scan([&](int pid, const std::string& id) {
      auto it = out.find(id);
      if (it == out.end())
        return;
      auto stat = read_text("/proc/" + std::to_string(pid) + "/stat");
      if (!stat)
        return;  // gone meanwhile
      // After "pid (comm) ": state is field 3; utime 14, stime 15, rss 24.
      auto close = stat->rfind(')');
      if (close == std::string::npos)
        return;
      auto fields = split(std::string_view(*stat).substr(close + 2), ' ');
      if (fields.size() < 22)
        return;
      uint64_t utime = 0, stime = 0, rss = 0;
      parse_u64(fields[11], utime);
      parse_u64(fields[12], stime);
      parse_u64(fields[21], rss);
      auto& s = it->second;
      s.cpu_time_ns += (utime + stime) * (1000000000ull / static_cast<uint64_t>(ticks));
      s.mem_rss_bytes += rss * static_cast<uint64_t>(page);
      s.mem_peak_bytes +=
          read_keyed_kib("/proc/" + std::to_string(pid) + "/status", "VmHWM:") * 1024;
      ++s.processes;
    });
    return out;
  }

  caf::error destroy(const std::string& id) override {
    auto deadline = std::chrono::steady_clock::now() + config_.destroy_timeout_ms;
    for (;;) {
      auto pids = members(id);
      if (pids.empty())
        return {};
      for (int pid : pids)
        ::kill(pid, SIGKILL);
      if (std::chrono::steady_clock::now() >= deadline)
        return make_error(Errc::timeout, "container " + id + ": processes still alive");
      std::this_thread::sleep_for(destroy_poll);
    }
  }

  std::vector<std::string> containers() const override {
    return {};  // nothing on disk to find; the agent's own books are the list
  }

 private:
  // Every process whose environment carries a marker of this scope, with
  // the container id from it.
  template <class F>
  void scan(F&& fn) const {
    const std::string prefix = container_marker(config_.scope, "");
    DIR* proc = ::opendir("/proc");
    if (!proc)
      return;
    while (auto* e = ::readdir(proc)) {
      uint64_t pid = 0;
      if (!parse_u64(e->d_name, pid) || pid == 0)
        continue;
      auto env = read_text("/proc/" + std::string(e->d_name) + "/environ");
      if (!env)
        continue;
      size_t start = 0;
      while (start < env->size()) {
        auto end = env->find('\0', start);
        if (end == std::string::npos)
          end = env->size();
        if (env->compare(start, prefix.size(), prefix) == 0) {
          fn(static_cast<int>(pid),
             env->substr(start + prefix.size(), end - start - prefix.size()));
          break;
        }
        start = end + 1;
      }
    }
    ::closedir(proc);
  }

  std::vector<int> members(const std::string& id) const {
    std::vector<int> out;
    scan([&](int pid, const std::string& found) {
      if (found == id)
        out.push_back(pid);
    });
    return out;
  }

  static uint64_t read_keyed_kib(const std::string& path, std::string_view key) {
    auto text = read_text(path);
    if (!text)
      return 0;
    for (auto line : split(*text, '\n'))
      if (line.substr(0, key.size()) == key) {
        auto rest = trim(line.substr(key.size()));
        uint64_t v = 0;
        parse_u64(rest.substr(0, rest.find(' ')), v);
        return v;
      }
    return 0;
  }

  IsolationConfig config_;
};

// Whether this agent may make cgroups here: makes and removes its scope dir.
caf::error probe_writable(const fs::path& scope_dir) {
  std::error_code ec;
  fs::create_directories(scope_dir, ec);
  if (ec)
    return make_os_error(ec.value(), "mkdir " + scope_dir.string());
  return {};
}

expected<std::unique_ptr<Isolator>> make_cgroups(const IsolationConfig& c) {
  struct statfs sfs {};
  if (::statfs(c.cgroups_mount.c_str(), &sfs) == 0 &&
      static_cast<long>(sfs.f_type) == cgroup2_super_magic) {
    auto controllers = read_text(c.cgroups_mount / "cgroup.controllers");
    if (!controllers)
      return controllers.error();
    for (const char* need : {"cpu", "memory", "pids"}) {
      auto list = split(trim(*controllers), ' ');
      if (std::find(list.begin(), list.end(), std::string_view(need)) == list.end())
        return make_error(Errc::invalid_argument, std::string("cgroup v2 controller '") + need +
                                                      "' is not enabled at " +
                                                      c.cgroups_mount.string());
    }
    if (auto err = probe_writable(c.cgroups_mount / c.cgroups_root / c.scope))
      return err;
    return std::unique_ptr<Isolator>(new CgroupsV2(c));
  }
  auto mounts = v1_mounts();
  for (const char* need : {"cpu", "cpuacct", "memory", "pids"})
    if (!mounts.count(need))
      return make_error(Errc::invalid_argument,
                        std::string("no cgroup v1 '") + need + "' hierarchy is mounted");
  for (const auto& [controller, mount] : mounts)
    if (auto err = probe_writable(mount / c.cgroups_root / c.scope))
      return err;
  return std::unique_ptr<Isolator>(new CgroupsV1(c, std::move(mounts)));
}

}  // namespace

std::map<std::string, ContainerStats> Isolator::usage_of(
    const std::vector<std::string>& ids) const {
  std::map<std::string, ContainerStats> out;
  for (const auto& id : ids)
    if (auto u = usage(id))
      out.emplace(id, *u);
  return out;
}

caf::error parse_isolation(const std::string& text, IsolationConfig& config, bool& pid_namespace) {
  auto parts = split(text, ',');
  if (parts.empty() || parts.size() > 2)
    return make_error(Errc::invalid_argument, "isolation '" + text + "'");
  auto kind = std::string(trim(parts[0]));
  if (kind != "cgroups" && kind != "posix" && kind != "auto")
    return make_error(Errc::invalid_argument,
                      "isolation '" + kind + "': expected cgroups, posix or auto");
  pid_namespace = false;
  if (parts.size() == 2) {
    if (trim(parts[1]) != "pid-ns")
      return make_error(Errc::invalid_argument,
                        "isolation option '" + std::string(trim(parts[1])) + "': expected pid-ns");
    pid_namespace = true;
  }
  config.kind = kind;
  return {};
}

expected<std::unique_ptr<Isolator>> make_isolator(const IsolationConfig& config,
                                                  std::string* warning) {
  if (!valid_component(config.scope) || !valid_component(config.cgroups_root))
    return make_error(Errc::invalid_argument,
                      "isolation scope and cgroups root must each be one "
                      "path component");
  if (config.kind == "posix")
    return std::unique_ptr<Isolator>(new Posix(config));
  if (config.kind != "cgroups" && config.kind != "auto")
    return make_error(Errc::invalid_argument,
                      "isolation '" + config.kind + "': expected cgroups, posix or auto");
  auto cgroups = make_cgroups(config);
  if (cgroups || config.kind == "cgroups")
    return cgroups;
  if (warning)
    *warning = "cgroups unavailable (" + describe(cgroups.error()) +
               "); using posix isolation: limits are enforced by polling only";
  return std::unique_ptr<Isolator>(new Posix(config));
}

}  // namespace tessera
