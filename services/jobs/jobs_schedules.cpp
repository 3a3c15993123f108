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
    if (!s.enabled || job.deleting)
      continue;
    if (!st.last)
      st.last = t;  // from now on: what came before was not this schedule's
    st.next = next_after(s, std::max(*st.last, t));
    if (st.next)
      agenda_.emplace(*st.next, std::make_pair(job_id, s.id));
    else
      log().warn("jobs: schedule {} of {} ({}) never comes due", s.id, job_id, s.cron.text);
  }
}

void JobsFramework::catch_up(const std::string& job_id, Job& job) {
  auto t = wall();
  bool changed = false;
  for (const auto& s : job.spec.schedules) {
    auto& st = job.schedules[s.id];
    if (!s.enabled || !st.last || job.deleting)
      continue;
    // Every time from the last handled up to now: the latest within the
    // starting deadline runs; every other one is missed.
    std::optional<SysTime> run_at;
    uint64_t missed = 0;
    std::optional<SysTime> last_missed;
    size_t scanned = 0;
    auto deadline = std::chrono::seconds(static_cast<int64_t>(s.starting_deadline_s));
    for (auto at = next_after(s, *st.last); at && *at <= t; at = next_after(s, *at)) {
      if (++scanned > config_.missed_scan_max) {
        log().warn("jobs: schedule {} of {} missed more than {} times; the rest are not counted",
                   s.id, job_id, config_.missed_scan_max);
        break;
      }
      if (t - *at <= deadline) {
        if (run_at) {
          ++missed;
          last_missed = run_at;
        }
        run_at = at;
      } else {
        ++missed;
        last_missed = at;
      }
    }
    if (!run_at && missed == 0)
      continue;
    changed = true;
    if (missed > 0) {
      st.missed += missed;
      st.last_missed = last_missed;
      counters_.runs_missed += missed;
      log().warn(
          "jobs: schedule {} of {} missed {} run(s) while the framework was away (the "
          "last at {})",
          s.id, job_id, missed, iso_time(to_ms(*last_missed)));
    }
    st.last = run_at ? *run_at : *last_missed;
    if (run_at) {
      if (s.concurrency == ConcurrencyPolicy::forbid && !job.active.empty()) {
        ++counters_.runs_skipped;
        log().info("jobs: schedule {} of {} came due at {} while a run is going (FORBID); skipped",
                   s.id, job_id, iso_time(to_ms(*run_at)));
      } else {
        auto& run = start_run(job, "schedule:" + s.id, to_ms(*run_at));
        persist({run_record(run)});
      }
    }
  }
  plan(job_id, job);
  if (changed)
    persist({job_record(job_id)});
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
  auto t = wall_precise();
  std::vector<std::string> touched;
  while (!agenda_.empty() && agenda_.begin()->first <= t) {
    auto [at, which] = *agenda_.begin();
    agenda_.erase(agenda_.begin());
    auto job = jobs_.find(which.first);
    if (job == jobs_.end())
      continue;
    auto* schedule = schedule_of(job->second.spec, which.second);
    if (!schedule || !schedule->enabled)
      continue;
    fire(which.first, job->second, *schedule, at);
    touched.push_back(which.first);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  // The runs started, then their jobs' schedules, in one commit: a run's
  // record is durable before its task is launched (offers persist after).
  std::vector<RegistryChange> records;
  for (const auto& id : started_)
    if (auto it = runs_.find(id); it != runs_.end())
      records.push_back(run_record(it->second));
  started_.clear();
  for (const auto& id : touched)
    records.push_back(job_record(id));
  if (!records.empty())
    persist(std::move(records));
  arm_schedule_timer();
}

void JobsFramework::fire(const std::string& job_id, Job& job, const JobSchedule& s, SysTime at) {
  auto& st = job.schedules[s.id];
  st.last = at;
  st.next = next_after(s, at);
  if (st.next)
    agenda_.emplace(*st.next, std::make_pair(job_id, s.id));
  auto late = wall() - at;
  if (late > std::chrono::seconds(static_cast<int64_t>(s.starting_deadline_s))) {
    ++st.missed;
    st.last_missed = at;
    ++counters_.runs_missed;
    log().warn("jobs: schedule {} of {} came due at {} and is past its starting deadline; missed",
               s.id, job_id, iso_time(to_ms(at)));
    return;
  }
  if (s.concurrency == ConcurrencyPolicy::forbid && !job.active.empty()) {
    ++counters_.runs_skipped;
    log().info("jobs: schedule {} of {} came due while a run is going (FORBID); skipped", s.id,
               job_id);
    return;
  }
  if (job.active.size() >= config_.active_runs_per_job_max) {
    ++counters_.runs_skipped;
    log().warn("jobs: {} has {} runs going (the most); schedule {} skipped", job_id,
               job.active.size(), s.id);
    return;
  }
  auto& run = start_run(job, "schedule:" + s.id, to_ms(at));
  schedule_lag_.add(std::chrono::duration<double, std::milli>(
                        wall_precise() - std::chrono::system_clock::time_point(at))
                        .count());
  started_.push_back(run.id);  // its record goes with the batch's
}

}  // namespace tessera::jobs
