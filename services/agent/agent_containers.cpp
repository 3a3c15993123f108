// Executor runs as containers: their limits, the watch for limitations, usage
// reports and destruction. The isolator is the mechanism; what a limitation
// means for the tasks is decided here.

#include "services/agent/agent.hpp"

#include "runtime/log.hpp"

#include <functional>
#include <set>

namespace tessera {

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;
// How soon a destroy refused by a full container lane is tried again.
constexpr auto destroy_retry_ms = std::chrono::milliseconds(100);

std::string mib_text(uint64_t bytes) {
  return std::to_string(bytes / mib) + " MiB";
}

}  // namespace

std::string isolation_scope(const std::filesystem::path& work_dir) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(work_dir, ec);
  auto h = std::hash<std::string>{}(ec ? work_dir.string() : canonical.string());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string("agent-") + buf;
}

expected<Placement> Agent::prepare_container(Executor& e, const Resources& resources) {
  ContainerLimits limits;
  limits.cpus_milli = static_cast<uint64_t>(resources.total("cpus") * 1000.0 + 0.5);
  auto mem_mib = resources.total("mem");
  if (mem_mib > 0)
    limits.mem_bytes = static_cast<uint64_t>(mem_mib * static_cast<double>(mib)) +
                       config_.executor_mem_headroom_bytes;
  limits.pids_max = config_.container_pids_max;
  auto placement = isolator_->prepare(e.run_id, limits);
  if (!placement) {
    metrics_.container_errors.fetch_add(1, std::memory_order_relaxed);
    return placement;
  }
  e.container.active = true;
  e.container.limits = limits;
  {
    std::lock_guard<std::mutex> guard(containers_->mu);
    containers_->ids.insert(e.run_id);
  }
  arm_container_monitor();
  return placement;
}

// Whether the container hit a limit, from usage the monitor read on the
// blocking pool (known), or else from the kernel's count of OOM kills alone
// (Isolator::oom_state: two cgroup control files, no /proc scan; posix has
// none, and its limit is the monitor's to find).
bool Agent::check_limitation(Executor& e, const ContainerStats* known) {
  auto& c = e.container;
  if (!c.active || c.limitation != Reason::NONE)
    return c.limitation != Reason::NONE;
  expected<ContainerStats> usage = known ? *known : isolator_->oom_state(e.run_id);
  if (!usage)
    return false;
  bool posix_over = c.limits.mem_bytes > 0 && usage->oom_kills == 0 &&
                    std::string(isolator_->name()) == "posix" &&
                    usage->mem_rss_bytes > c.limits.mem_bytes;
  if (usage->oom_kills == 0 && !posix_over)
    return false;
  c.oom_kills = usage->oom_kills;
  c.limitation = Reason::CONTAINER_LIMITATION_MEMORY;
  c.limitation_message =
      "Memory limit exceeded: limit " + mib_text(c.limits.mem_bytes) + " (tasks plus " +
      mib_text(config_.executor_mem_headroom_bytes) + " executor headroom), peak " +
      mib_text(std::max(usage->mem_peak_bytes, usage->mem_rss_bytes)) +
      (posix_over ? ", killed by the agent" : ", killed by the kernel's OOM killer");
  metrics_.container_limitations.fetch_add(1, std::memory_order_relaxed);
  log().info("{}: executor {} of framework {}: {}", me().to_string(), e.executor_id, e.framework_id,
             c.limitation_message);
  return true;
}

// Kills whatever is left in the container and removes it, off the actor's
// thread; the executor's own end is reported by its exit, not by this.
void Agent::destroy_container(Executor& e) {
  if (!e.container.active)
    return;
  e.container.active = false;
  destroy_container_id(e.run_id);
}

// The container stays in containers_ until destroyed, so the exit hook
// (destroy_containers) still ends it if the agent stops first.
void Agent::destroy_container_id(const std::string& id) {
  {
    std::lock_guard<std::mutex> guard(containers_->mu);
    containers_->ids.insert(id);
  }
  auto isolator = isolator_;
  auto name = me().to_string();
  auto metrics = config_.metrics;
  auto book = containers_;
  bool queued = blocking(Work::container, [=]() -> std::function<void()> {
    auto err = isolator->destroy(id);
    if (err) {
      metrics->container_errors.fetch_add(1, std::memory_order_relaxed);
      log().warn("{}: destroying container {}: {}", name, id, describe(err));
      return {};
    }
    metrics->containers_destroyed.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> guard(book->mu);
    book->ids.erase(id);
    return {};
  });
  if (queued)
    return;
  // The lane is full (or stopping): later, from here, never on this thread.
  metrics_.container_destroys_deferred.fetch_add(1, std::memory_order_relaxed);
  destroy_backlog_.push_back(id);
  if (destroy_retry_timer_ == 0)
    destroy_retry_timer_ = after(destroy_retry_ms, [this] {
      destroy_retry_timer_ = 0;
      retry_destroys();
    });
}

void Agent::retry_destroys() {
  auto backlog = std::move(destroy_backlog_);
  destroy_backlog_.clear();
  for (const auto& id : backlog)
    destroy_container_id(id);  // a refused one goes back, with a new timer
}

void Agent::arm_container_monitor() {
  if (monitor_timer_ != 0 || config_.container_monitor_interval_ms.count() <= 0)
    return;
  monitor_timer_ = after(config_.container_monitor_interval_ms, [this] {
    monitor_timer_ = 0;
    monitor_containers();
  });
}

// Reads usage on the blocking pool (posix scans all of /proc), then acts on
// it here; the next check is armed once this one is done.
void Agent::monitor_containers() {
  std::vector<std::string> ids;
  for (auto& [key, e] : executors_)
    if (e.container.active && e.container.limitation == Reason::NONE)
      ids.push_back(e.run_id);
  if (ids.empty())
    return;
  auto isolator = isolator_;
  bool queued = blocking(Work::usage, [this, isolator, ids]() -> std::function<void()> {
    auto usage = isolator->usage_of(ids);
    return [this, usage = std::move(usage)] { on_container_usage(usage); };
  });
  if (!queued)
    arm_container_monitor();  // the pool is full: try again next interval
}

void Agent::on_container_usage(const std::map<std::string, ContainerStats>& usage) {
  for (auto& [key, e] : executors_) {
    auto u = usage.find(e.run_id);
    if (!e.container.active || u == usage.end())
      continue;
    bool known = e.container.limitation != Reason::NONE;
    if (!known && check_limitation(e, &u->second)) {
      // The kernel killed one process; the container goes as a whole (as in
      // Mesos), and its tasks end with the limitation as their reason.
      destroy_container(e);
    }
  }
  arm_container_monitor();
}

// Usage is read on the blocking pool's usage lane (posix scans all of
// /proc) and the reply sent when it is back; a full lane is an error reply.
void Agent::on_get_usage(const Received<wire::GetContainerUsage>& m) {
  if (std::string why; !sender_in_role({"master", "operator"}, &why)) {
    refuse(metrics_.refused_not_master,
           "container usage asked by " + m.sender().to_string() + ": " + why);
    reply(m, build<wire::ContainerUsage>(
                 [&](wire::ContainerUsage::Builder b) { b.setError("forbidden: " + why); }));
    return;
  }
  auto fid = str(m.body().getFrameworkId());
  auto eid = str(m.body().getExecutorId());
  struct Row {
    std::string framework_id, executor_id, run_id;
    ContainerLimits limits;
  };
  std::vector<Row> rows;
  std::vector<std::string> ids;
  for (const auto& [key, e] : executors_) {
    if (!e.container.active || (!eid.empty() && (key.first != fid || key.second != eid)))
      continue;
    rows.push_back({e.framework_id, e.executor_id, e.run_id, e.container.limits});
    ids.push_back(e.run_id);
  }
  auto isolator = isolator_;
  auto answer = [this, request = m.envelope(), rows, fid, eid, isolator](
                    const std::map<std::string, ContainerStats>& usage, const std::string& error) {
    reply_later(request, build<wire::ContainerUsage>([&](wire::ContainerUsage::Builder b) {
                  size_t n = 0;
                  for (const auto& r : rows)
                    n += usage.count(r.run_id);
                  if (!error.empty())
                    b.setError(error);
                  else if (!eid.empty() && n == 0)
                    b.setError("no running container for executor '" + eid + "' of framework '" +
                               fid + "'");
                  auto list = b.initContainers(static_cast<unsigned>(n));
                  unsigned i = 0;
                  for (const auto& r : rows) {
                    auto it = usage.find(r.run_id);
                    if (it == usage.end())
                      continue;
                    const auto& u = it->second;
                    auto c = list[i++];
                    c.setFrameworkId(r.framework_id);
                    c.setExecutorId(r.executor_id);
                    c.setContainerId(r.run_id);
                    c.setIsolation(isolator->name());
                    c.setTimestampNs(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
                    c.setCpuTimeNs(u.cpu_time_ns);
                    c.setCpusLimitMilli(r.limits.cpus_milli);
                    c.setMemRssBytes(u.mem_rss_bytes);
                    c.setMemPeakBytes(u.mem_peak_bytes);
                    c.setMemLimitBytes(r.limits.mem_bytes);
                    c.setProcesses(u.processes);
                    c.setPidsLimit(r.limits.pids_max);
                    c.setOomKills(u.oom_kills);
                  }
                }));
  };
  if (ids.empty()) {
    answer({}, {});
    return;
  }
  bool queued = blocking(Work::usage, [isolator, ids, answer]() -> std::function<void()> {
    auto usage = isolator->usage_of(ids);
    return [answer, usage = std::move(usage)] { answer(usage, {}); };
  });
  if (!queued) {
    metrics_.usage_requests_refused.fetch_add(1, std::memory_order_relaxed);
    answer({}, "the agent is busy reading usage; try again");
  }
}

// The agent's clean end (its exit hook): nothing it started stays, and no
// empty cgroup either. Runs as the actor ends, so it touches only what it is
// given.
void Agent::destroy_containers(const std::shared_ptr<Isolator>& isolator, ContainerBook& book) {
  std::set<std::string> ids;
  {
    std::lock_guard<std::mutex> guard(book.mu);
    ids.swap(book.ids);
  }
  for (const auto& id : ids)
    if (auto err = isolator->destroy(id))
      log().warn("agent: destroying container {}: {}", id, describe(err));
  isolator->release();
}

}  // namespace tessera
