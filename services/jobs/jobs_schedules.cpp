// The jobs framework's schedules: each enabled schedule's next time on one
// agenda (earliest first), one timer for the earliest, and what a time does
// when it comes (a run, or a skip under FORBID, or a miss past the starting
// deadline). On start, catch_up() looks at the times that came while the
// framework was away.

#include "services/jobs/jobs_framework.hpp"

#include "runtime/log.hpp"

#include <algorithm>

namespace tessera::jobs {

namespace {

const JobSchedule* schedule_of(const JobSpec& spec, const std::string& id) {
  for (const auto& s : spec.schedules)
    if (s.id == id)
      return &s;
  return nullptr;
}

std::optional<SysTime> next_after(const JobSchedule& s, SysTime after) {
  const date::time_zone* zone = s.zone;
  if (!zone) {
    auto found = find_time_zone(s.timezone);
    if (!found)
      return std::nullopt;
    zone = *found;
  }
  auto next = next_run(s.cron, zone, after);
  if (!next)
    return std::nullopt;
  return *next;
}

// The times of s after `last` up to `now`: the latest within the starting
// deadline runs, every other one is missed. Scanning stops after scan_max
// times; the newest ones are then found from the deadline's start, so the
// run that is due is never the one left out (the count of missed ones is
// then a lower bound).
struct Due {
  std::optional<SysTime> run_at;
  uint64_t missed = 0;
  std::optional<SysTime> last_missed;
  bool capped = false;
};

Due due_times(const JobSchedule& s, SysTime last, SysTime now, size_t scan_max) {
  Due d;
  auto deadline = std::chrono::seconds(static_cast<int64_t>(s.starting_deadline_s));
  auto take = [&](SysTime at) {
    if (now - at <= deadline) {
      if (d.run_at) {
        ++d.missed;
        d.last_missed = d.run_at;
      }
      d.run_at = at;
    } else {
      ++d.missed;
      d.last_missed = at;
    }
  };
  size_t scanned = 0;
  for (auto at = next_after(s, last); at && *at <= now; at = next_after(s, *at)) {
    if (++scanned > scan_max) {
      d.capped = true;
      break;
    }
    take(*at);
  }
  if (d.capped) {
    d.run_at.reset();
    auto from = std::max(last, now - deadline - std::chrono::seconds(1));
    scanned = 0;
    for (auto at = next_after(s, from); at && *at <= now && ++scanned <= scan_max;
         at = next_after(s, *at))
      take(*at);
  }
  return d;
}

}  // namespace

void JobsFramework::plan(const std::string& job_id, Job& job) {
  for (auto a = agenda_.begin(); a != agenda_.end();)
    a = a->second.first == job_id ? agenda_.erase(a) : std::next(a);
  // Progress of schedules that are gone is forgotten.
  for (auto it = job.schedules.begin(); it != job.schedules.end();)
    it = schedule_of(job.spec, it->first) ? std::next(it) : job.schedules.erase(it);
  auto t = wall();
  for (const auto& s : job.spec.schedules) {
    auto& st = job.schedules[s.id];
    st.next.reset();
    if (!s.enabled || job.deleting) {
      st.disabled = true;
      continue;
    }
    // New, or enabled again: what came before is not this schedule's.
    if (!st.last || st.disabled)
      st.last = t;
    st.disabled = false;
    // From the last time handled: a time already due (a change made just
    // as it came) still fires, at once.
    st.next = next_after(s, *st.last);
    if (st.next)
      agenda_.emplace(*st.next, std::make_pair(job_id, s.id));
    else
      log().warn("jobs: schedule {} of {} ({}) never comes due", s.id, job_id, s.cron.text);
  }
}

void JobsFramework::catch_up(const std::string& job_id, Job& job) {
  auto t = wall();
  for (const auto& s : job.spec.schedules) {
    auto& st = job.schedules[s.id];
    if (!s.enabled || !st.last || job.deleting)
      continue;
    if (handle_due(job_id, job, s, *st.last, t, "while the framework was away"))
      touched_.push_back(job_id);
  }
  plan(job_id, job);
}

bool JobsFramework::handle_due(const std::string& job_id, Job& job, const JobSchedule& s,
                               SysTime after, SysTime t, const char* when) {
  auto& st = job.schedules[s.id];
  auto d = due_times(s, after, t, config_.missed_scan_max);
  if (!d.run_at && d.missed == 0)
    return false;
  if (d.capped)
    log().warn("jobs: schedule {} of {} came due more than {} times {}; not all are counted", s.id,
               job_id, config_.missed_scan_max, when);
  if (d.missed > 0) {
    st.missed += d.missed;
    st.last_missed = d.last_missed;
    counters_.runs_missed += d.missed;
    log().warn("jobs: schedule {} of {} missed {} run(s) {} (the last at {})", s.id, job_id,
               d.missed, when, iso_time(to_ms(*d.last_missed)));
  }
  st.last = d.run_at ? *d.run_at : *d.last_missed;
  if (!d.run_at)
    return true;
  if (s.concurrency == ConcurrencyPolicy::forbid && !job.active.empty()) {
    ++counters_.runs_skipped;
    log().info("jobs: schedule {} of {} came due at {} while a run is going (FORBID); skipped",
               s.id, job_id, iso_time(to_ms(*d.run_at)));
    return true;
  }
  if (job.active.size() >= config_.active_runs_per_job_max) {
    ++counters_.runs_skipped;
    log().warn("jobs: {} has {} runs going (the most); schedule {} skipped", job_id,
               job.active.size(), s.id);
    return true;
  }
  auto& run = start_run(job, "schedule:" + s.id, to_ms(*d.run_at));
  schedule_lag_.add(std::chrono::duration<double, std::milli>(
                        wall_precise() - std::chrono::system_clock::time_point(*d.run_at))
                        .count());
  started_.push_back(run.id);  // its record goes with the batch's
  return true;
}

void JobsFramework::record_started() {
  // The runs started, then their jobs' schedules, in one commit: a run's
  // record is durable before its task is launched (offers persist after),
  // and a time handled is recorded with the run it started, so a restart
  // never starts it twice.
  std::sort(touched_.begin(), touched_.end());
  touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
  std::vector<RegistryChange> records;
  for (const auto& id : started_)
    if (auto it = runs_.find(id); it != runs_.end())
      records.push_back(run_record(it->second));
  started_.clear();
  for (const auto& id : touched_)
    if (jobs_.count(id))
      records.push_back(job_record(id));
  touched_.clear();
  if (!records.empty())
    persist(std::move(records));
}

void JobsFramework::arm_schedule_timer() {
  if (agenda_.empty()) {
    armed_for_.reset();
    ++schedule_generation_;  // a timer armed before is void
    return;
  }
  auto earliest = agenda_.begin()->first;
  if (armed_for_ && *armed_for_ <= earliest)
    return;  // the armed timer comes first
  armed_for_ = earliest;
  auto generation = ++schedule_generation_;
  // From the precise wall time: from the second's start, a timer would fire
  // up to a second late.
  auto delay =
      std::clamp<Duration>(earliest - wall_precise(), Duration::zero(), config_.schedule_recheck);
  after(delay, [this, generation] { on_schedule_timer(generation); });
}

void JobsFramework::on_schedule_timer(uint64_t generation) {
  if (generation != schedule_generation_)
    return;
  armed_for_.reset();
  auto precise = wall_precise();
  auto t = std::chrono::floor<std::chrono::seconds>(precise);
  while (!agenda_.empty() && agenda_.begin()->first <= precise) {
    auto [at, which] = *agenda_.begin();
    agenda_.erase(agenda_.begin());
    auto job = jobs_.find(which.first);
    if (job == jobs_.end())
      continue;
    auto* schedule = schedule_of(job->second.spec, which.second);
    if (!schedule || !schedule->enabled)
      continue;
    // This time and any later one already due (the actor was busy, the
    // clock jumped): the latest within the deadline runs, once.
    handle_due(which.first, job->second, *schedule, at - std::chrono::seconds(1), std::max(t, at),
               "late");
    touched_.push_back(which.first);
    auto& st = job->second.schedules[schedule->id];
    st.next = next_after(*schedule, *st.last);
    if (st.next)
      agenda_.emplace(*st.next, which);
  }
  record_started();
  arm_schedule_timer();
}

}  // namespace tessera::jobs
