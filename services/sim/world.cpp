#include "services/sim/world.hpp"

#include "services/allocator/allocator.hpp"
#include "services/common/wire.hpp"
#include "services/master/master.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdio>

namespace tessera::sim {

namespace {

double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

// Settled, as far as the framework is concerned: it will not wait for more.
bool settled(TaskState s) {
  return is_terminal(s) || s == TaskState::UNKNOWN;
}

}  // namespace

World::World(uint64_t seed, std::function<Duration()> now)
    : now_(std::move(now)), rng_(seed ^ 0x7a5c0ffeeULL) {
}

std::string World::stamp() const {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%9.3fs ", seconds(now_()));
  return buf;
}

void World::event(const std::string& what) {
  recent_.push_back(stamp() + what);
  while (recent_.size() > recent_max_)
    recent_.pop_front();
}

void World::violate(const std::string& invariant, const std::string& detail) {
  event("VIOLATION " + invariant + ": " + detail);
  if (violations_.empty())
    first_context_ = recent_;
  auto same = std::count_if(violations_.begin(), violations_.end(),
                            [&](const Violation& v) { return v.invariant == invariant; });
  if (static_cast<size_t>(same) >= violations_max) {
    ++violations_dropped_;
    return;
  }
  violations_.push_back(Violation{invariant, detail, now_()});
}

// -- simulated processes ----------------------------------------------------------

SimulatedRun World::started(const std::string& framework_id, const std::string& task_id,
                            const Address& executor) {
  auto key = std::make_pair(framework_id, task_id);
  if (auto it = processes_.find(key); it != processes_.end())
    violate("task-runs-twice", "task " + task_id + " of " + framework_id + " started again" +
                                   (it->second.running ? " while running" : " after it ended"));
  ++tasks_started_;
  if (launch_check)
    if (auto why = launch_check(framework_id, task_id, executor); !why.empty())
      violate("launch-not-durable", "task " + task_id + " of " + framework_id + " started: " + why);
  SimulatedRun run;
  // Most tasks run seconds to minutes; one in five fails.
  run.runs_for =
      std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(2'000, 240'000)(rng_));
  run.exit_code = std::uniform_int_distribution<int>(0, 9)(rng_) < 8 ? 0 : 1;
  if (std::uniform_int_distribution<int>(0, 9)(rng_) != 0)
    run.term_after =
        std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(10, 2'000)(rng_));
  processes_[key] = Process{executor, now_(), true, 0, {}};
  event("process " + task_id + " starts (" + std::to_string(seconds(run.runs_for)) + "s, exit " +
        std::to_string(run.exit_code) + ")");
  return run;
}

void World::ended(const std::string& framework_id, const std::string& task_id, int term_signal) {
  auto it = processes_.find({framework_id, task_id});
  if (it == processes_.end() || !it->second.running)
    return;
  it->second.running = false;
  it->second.term_signal = term_signal;
  it->second.ended = now_();
  event("process " + task_id + " ends" +
        (term_signal ? " by signal " + std::to_string(term_signal) : std::string()));
  if (term_signal == 0 || it->second.doomed)
    return;
  for (auto& [name, book] : frameworks_) {
    if (book.framework_id != framework_id)
      continue;
    auto t = book.tasks.find(task_id);
    // As Mesos, a task a framework that is not partition-aware was told is
    // LOST is killed when its agent comes back: not unasked.
    bool asked = book.torn_down ||
                 (t != book.tasks.end() && (t->second.kill_asked || is_terminal(t->second.last))) ||
                 (master_told_ended && master_told_ended(framework_id, task_id));
    if (!asked)
      violate("killed-unasked", "running task " + task_id + " of " + name +
                                    " was killed though its framework never asked");
  }
}

std::vector<Address> World::executors() const {
  std::set<Address> out;
  for (const auto& [key, p] : processes_)
    if (p.running)
      out.insert(p.executor);
  return {out.begin(), out.end()};
}

// -- frameworks ---------------------------------------------------------------------

void World::delivered(const std::string& fw_name, uint64_t instance, const TaskStatus& s) {
  auto& book = frameworks_[fw_name];
  event(fw_name + "#" + std::to_string(instance) + " <- " + s.task_id + " " + to_string(s.state) +
        " " + to_string(s.reason));
  if (!s.uuid.empty() && !delivered_uuids_[{fw_name, instance}].insert(s.uuid).second)
    violate("update-delivered-again", fw_name + " got the update " + to_string(s.state) + " of " +
                                          s.task_id + " (uuid " + hex(s.uuid) +
                                          ") twice in one scheduler instance");
  auto it = book.tasks.find(s.task_id);
  if (it == book.tasks.end())
    return;  // a reconciliation answer about a task it never launched
  auto& t = it->second;
  if (is_terminal(s.state) && s.reason != TaskReason::RECONCILIATION) {
    t.terminals.insert(s.state);
    if (t.terminals.size() > 1) {
      std::string states;
      for (auto st : t.terminals)
        states += std::string(states.empty() ? "" : ", ") + to_string(st);
      violate("two-terminal-states",
              "task " + s.task_id + " of " + fw_name + " was reported ended twice: " + states);
    }
  }
  t.last = s.state;
  t.last_at = now_();
  if (!s.agent_id.empty())
    t.agent_id = s.agent_id;
}

void World::kill_asked(const std::string& fw_name, const std::string& task_id) {
  auto& book = frameworks_[fw_name];
  if (auto it = book.tasks.find(task_id); it != book.tasks.end())
    it->second.kill_asked = true;
  event(fw_name + " kills " + task_id);
}

void World::torn_down(const std::string& fw_name) {
  frameworks_[fw_name].torn_down = true;
  event(fw_name + " tears down");
}

void World::crashing(const std::string& what) {
  event("crash " + what);
}

void World::doom_port(uint16_t port) {
  for (auto& [key, p] : processes_)
    if (p.running && p.executor.port == port)
      p.doomed = true;
}

void World::doom_executor(const Address& executor) {
  for (auto& [key, p] : processes_)
    if (p.running && p.executor == executor)
      p.doomed = true;
}

std::vector<std::pair<std::string, std::string>> World::running() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, p] : processes_)
    if (p.running)
      out.push_back(key);
  return out;
}

void World::master_failover() {
  event("master crashes (failover)");
}

// -- checks -----------------------------------------------------------------------

void World::check_books(const MasterView& master, const Allocator& allocator) {
  std::map<std::string, Allocator::AgentBooks> books;
  for (auto& b : allocator.agent_books())
    books.emplace(b.id, std::move(b));
  for (const auto& a : master.agents) {
    if (!a.total.contains(a.offered + a.used))
      violate("over-allocated", "agent " + a.id + ": offered " + a.offered.to_string() +
                                    " + used " + a.used.to_string() + " exceed total " +
                                    a.total.to_string());
    if (!a.in_allocator)
      continue;
    auto it = books.find(a.id);
    if (it == books.end()) {
      violate("books-differ", "agent " + a.id + " is in the master's allocator set only");
      continue;
    }
    auto& b = it->second;
    if (!b.total.contains(b.available))
      violate("over-allocated", "allocator: agent " + a.id + " has available " +
                                    b.available.to_string() + " beyond total " +
                                    b.total.to_string());
    auto master_side = (a.offered + a.used + b.available).to_string();
    if (b.total.to_string() != a.total.to_string() || master_side != b.total.to_string())
      violate("books-differ", "agent " + a.id + ": master total " + a.total.to_string() +
                                  ", offered " + a.offered.to_string() + ", used " +
                                  a.used.to_string() + "; allocator total " + b.total.to_string() +
                                  ", available " + b.available.to_string());
    books.erase(it);
  }
  for (const auto& [id, b] : books)
    violate("books-differ", "agent " + id + " is in the allocator but not the master's");
}

void World::check_final(const MasterView* master, Duration quiet_start) {
  for (auto& [name, book] : frameworks_) {
    for (auto& [task_id, t] : book.tasks) {
      auto p = processes_.find({book.framework_id, task_id});
      bool running = p != processes_.end() && p->second.running;
      if (running && settled(t.last))
        violate("reported-ended-but-running", "task " + task_id + " of " + name +
                                                  " runs, but its framework was told " +
                                                  to_string(t.last));
      if (!running && !settled(t.last) && !book.torn_down)
        violate("waits-for-ever", "task " + task_id + " of " + name + " is not running" +
                                      (p == processes_.end() ? " (never started)" : "") +
                                      ", but its framework's last word is " + to_string(t.last));
    }
    if (book.wants_offers && !book.torn_down && book.last_offer_at < quiet_start && master) {
      bool room = std::any_of(master->agents.begin(), master->agents.end(), [](const auto& a) {
        return a.registered && (a.total - a.used - a.offered).total("cpus") >= 1.0;
      });
      if (room)
        violate("no-offers", name +
                                 " wants resources, some agent has a free cpu, yet no offer "
                                 "came in the quiet period");
    }
  }
  if (!master)
    return;
  std::set<std::pair<std::string, std::string>> known;
  for (const auto& t : master->tasks) {
    if (!is_terminal(t.state))
      known.insert({t.framework, t.id});
    auto p = processes_.find({t.framework, t.id});
    bool running = p != processes_.end() && p->second.running;
    if (t.state == TaskState::RUNNING && !running)
      violate("master-agent-disagree",
              "the master holds task " + t.id + " RUNNING, but it does not run");
  }
  for (const auto& [key, p] : processes_)
    if (p.running && known.count(key) == 0)
      violate("master-agent-disagree",
              "task " + key.second + " of " + key.first + " runs, but the master does not know it");
}

}  // namespace tessera::sim
