#include "services/frameworks/run_framework.hpp"

#include "runtime/log.hpp"

#include <time.h>

#include <cmath>
#include <random>

namespace tessera {

void RunControl::finish(int exit_code) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (exit_code_)
      return;  // the first outcome stands
    exit_code_ = exit_code;
  }
  cv_.notify_all();
}

std::optional<int> RunControl::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return exit_code_.has_value(); });
  return exit_code_;
}

namespace {

SchedulerConfig scheduler_config(const RunOptions& o) {
  SchedulerConfig c;
  c.master = o.master;
  c.detector = o.detector;
  c.framework.name = o.name;
  c.framework.roles = {o.role};
  // A one-shot framework: when it goes away its task has no one to report
  // to. Following a leader, it must outlive a failover: the next master
  // keeps it while it resubscribes.
  c.framework.failover_timeout = o.detector ? Duration(std::chrono::seconds(30)) : Duration::zero();
  c.seed = o.seed;
  return c;
}

std::string seconds_text(Duration d) {
  double s = std::chrono::duration<double>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

// "12:00:01.234", local time.
std::string clock_text(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm local {};
  localtime_r(&secs, &local);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

RunFramework::RunFramework(caf::actor_config& cfg, ActorInit init, RunOptions options,
                           std::shared_ptr<RunControl> control)
    : Scheduler(cfg, std::move(init), scheduler_config(options)),
      options_(std::move(options)),
      control_(std::move(control)) {
  std::mt19937_64 rng(options_.seed != 0 ? options_.seed : std::random_device{}());
  task_id_ = "run-" + hex(new_uuid_bytes(rng)).substr(0, 12);
}

Resources RunFramework::wanted() const {
  return Resources::scalar("cpus", options_.cpus) + Resources::scalar("mem", options_.mem);
}

int RunFramework::exit_code_of(const TaskStatus& s) {
  if (s.exit_code >= 0)
    return s.exit_code;
  if (s.term_signal > 0)
    return 128 + s.term_signal;
  return s.state == TaskState::FINISHED ? 0 : 1;
}

void RunFramework::started() {
  offer_timer_ = after(options_.offer_timeout, [this] {
    offer_timer_ = 0;
    if (launched_)
      return;
    if (!ever_subscribed_) {
      auto where = options_.detector ? "the leader at " + options_.detector->describe()
                                     : "master at " + config().master.to_string();
      std::fprintf(options_.err, "tessera: cannot reach %s within %s s%s\n", where.c_str(),
                   seconds_text(options_.offer_timeout).c_str(), last_failure_text().c_str());
      done(2);
      return;
    }
    std::fprintf(options_.err, "tessera: no offer with %s within %s s\n",
                 wanted().to_string().c_str(), seconds_text(options_.offer_timeout).c_str());
    done(1);
  });
  poll_interrupts();
}

std::string RunFramework::last_failure_text() const {
  return last_subscribe_failure_.empty() ? "" : " (" + last_subscribe_failure_ + ")";
}

void RunFramework::subscribed(const std::string&) {
  ever_subscribed_ = true;
  // After a reconnection: ask where our task is; the answer is an update.
  if (launched_ && !ended_)
    reconcile({{task_id_, agent_id_}});
}

// The library retries with backoff, as a Mesos driver does; the offer
// timer (--timeout) decides when to give up on a master never reached.
void RunFramework::subscribe_failed(const caf::error& why) {
  log().debug("run: subscribe failed: {}", describe(why));
  if (!ever_subscribed_)
    last_subscribe_failure_ = describe(why);
}

void RunFramework::disconnected(const caf::error& why) {
  std::fprintf(options_.err, "%s lost the master (%s); reconnecting\n",
               clock_text(std::chrono::system_clock::now()).c_str(), describe(why).c_str());
}

void RunFramework::error(const std::string& message) {
  std::fprintf(options_.err, "tessera: the master ended the framework: %s\n", message.c_str());
  done(1);
}

std::optional<Resources> RunFramework::fit(const Offer& offer) const {
  // Use what is reserved for our role first, then unreserved resources.
  Resources take;
  const std::pair<const char*, double> asked[] = {{"cpus", options_.cpus}, {"mem", options_.mem}};
  for (auto [name, quantity] : asked) {
    double reserved = offer.role == any_role ? 0 : offer.resources.get(name, offer.role);
    double from_role = std::min(reserved, quantity);
    if (from_role > 0)
      take += Resources::scalar(name, from_role, offer.role);
    if (quantity - from_role > 0)
      take += Resources::scalar(name, quantity - from_role);
  }
  if (!offer.resources.contains(take))
    return std::nullopt;
  return take;
}

void RunFramework::offers(const std::vector<Offer>& offers) {
  std::vector<std::string> rest;
  for (const auto& offer : offers) {
    if (!launched_ && !finished_)
      if (auto take = fit(offer)) {
        launch_on(offer, *take);
        continue;
      }
    rest.push_back(offer.id);
  }
  if (!rest.empty())
    decline(rest, refuse_long);
}

void RunFramework::launch_on(const Offer& offer, const Resources& take) {
  TaskSpec task;
  task.id = task_id_;
  task.name = options_.name;
  task.resources = take;
  task.argv = options_.argv;
  if (auto err = accept({offer.id}, {task}, refuse_long)) {
    std::fprintf(options_.err, "tessera: cannot launch: %s\n", describe(err).c_str());
    done(1);
    return;
  }
  launched_ = true;
  agent_id_ = offer.agent_id;
  agent_address_ = offer.agent_address;
  cancel(offer_timer_);
  suppress();  // one task: no more offers
}

void RunFramework::print_state(const TaskStatus& s) {
  auto when =
      s.timestamp.time_since_epoch().count() > 0 ? s.timestamp : std::chrono::system_clock::now();
  std::fprintf(options_.err, "%s %s\n", clock_text(when).c_str(), describe(s).c_str());
  std::fflush(options_.err);
}

void RunFramework::update(const TaskStatus& s) {
  if (s.task_id != task_id_ || ended_)
    return;
  print_state(s);
  if (s.terminal())
    task_ended(s);
}

void RunFramework::task_ended(const TaskStatus& s) {
  ended_ = true;
  int code = interrupts_seen_ > 0 ? 130 : exit_code_of(s);
  bool ran = s.state == TaskState::FINISHED || s.state == TaskState::FAILED ||
             s.state == TaskState::KILLED;
  if (!ran) {
    if (s.state != TaskState::FINISHED && s.state != TaskState::FAILED)
      std::fprintf(options_.err, "tessera: task %s\n", describe(s).c_str());
    done(code);
    return;
  }
  if (agent_address_.empty()) {
    std::fprintf(options_.err, "tessera: cannot read the task's output: no agent address\n");
    done(code == 0 ? 1 : code);
    return;
  }
  print_sandbox("stdout", options_.out, [this, code] {
    print_sandbox("stderr", options_.err, [this, code] {
      // A run whose output could not be shown did not succeed, whatever the
      // task did: the caller would act on output it never saw.
      done(output_unread_ && code == 0 ? 1 : code);
    });
  });
}

// A read that failed on the way (the agent slow to answer under load, a
// connection lost) is tried again, a bounded number of times; a file the
// agent says it cannot read is not.
void RunFramework::print_sandbox(const char* path, std::FILE* to, std::function<void()> next,
                                 int attempt) {
  read_whole_sandbox_file(
      agent_address_, task_id_, path, options_.output_bytes_max,
      [this, path, to, next, attempt](expected<SandboxData> file) {
        if (file) {
          std::fwrite(file->bytes.data(), 1, file->bytes.size(), to);
          std::fflush(to);
          next();
          return;
        }
        const auto& err = file.error();
        bool transient =
            is(err, Errc::timeout) || is(err, Errc::connect_failed) || is(err, Errc::peer_lost);
        if (transient && attempt < sandbox_read_attempts_max && !finished_) {
          log().debug("run: reading {} failed ({}); retrying", path, describe(err));
          after(sandbox_read_retry_delay,
                [this, path, to, next, attempt] { print_sandbox(path, to, next, attempt + 1); });
          return;
        }
        output_unread_ = true;
        std::fprintf(options_.err, "tessera: cannot read the task's %s: %s\n", path,
                     describe(err).c_str());
        next();
      });
}

void RunFramework::poll_interrupts() {
  if (control_->interrupts() > interrupts_seen_) {
    interrupts_seen_ = control_->interrupts();
    on_interrupt();
  }
  if (!finished_)
    after(interrupt_poll, [this] { poll_interrupts(); });
}

void RunFramework::on_interrupt() {
  bool running = launched_ && !ended_;
  if (!running || interrupts_seen_ > 1) {
    done(130);
    return;
  }
  if (auto err = kill(task_id_, agent_id_)) {
    std::fprintf(options_.err, "tessera: interrupted; cannot kill task %s: %s\n", task_id_.c_str(),
                 describe(err).c_str());
    done(130);
    return;
  }
  std::fprintf(options_.err, "tessera: interrupted; killing task %s\n", task_id_.c_str());
  after(options_.kill_wait, [this] { done(130); });
}

void RunFramework::done(int exit_code) {
  if (finished_)
    return;
  finished_ = true;
  if (connected())
    teardown();
  std::fflush(options_.out);
  std::fflush(options_.err);
  control_->finish(exit_code);
  stop();
}

}  // namespace tessera
