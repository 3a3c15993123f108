#pragma once
// World: the chaos simulation's ground truth and invariant checker.
//
// It is what the simulated tasks really do (SimulatedTasks: every simulated
// process starts and ends here), what each framework was told (every update
// its scheduler received, every kill it asked for), and the faults the
// schedule injected. Invariants are checked as facts arrive (continuous),
// between steps of the simulation against the master's and the allocator's
// books (check_books), and once at the end after the faults heal
// (check_final). A violation is recorded with the virtual time; the run
// goes on so that one seed reports all it finds.
//
// Durable framework state lives here too (FrameworkBook): what a real
// framework would keep in its own store (ZooKeeper, a database) so that a
// new instance, after a failover, knows the tasks it launched.
//
// Threading: used only from the simulation's one thread.

#include "runtime/address.hpp"
#include "runtime/clock.hpp"
#include "services/executor/simulated_tasks.hpp"
#include "services/scheduler/types.hpp"

#include <cstdint>
#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace tessera {
struct MasterView;
class Allocator;
}  // namespace tessera

namespace tessera::sim {

struct Violation {
  std::string invariant;  // short name, e.g. "task-runs-twice"
  std::string detail;
  Duration at{0};  // virtual time since the start
};

// What one framework knows durably (survives its failover).
struct FrameworkBook {
  std::string name;
  std::string framework_id;  // empty until first subscribed
  uint64_t next_task = 1;
  struct Task {
    std::string agent_id;
    TaskState last = TaskState::STAGING;  // last state it was told (or launched)
    Duration last_at{0};
    bool kill_asked = false;
    std::set<TaskState> terminals;  // distinct terminal states delivered (not reconciliation)
  };
  std::map<std::string, Task> tasks;
  bool torn_down = false;
  Duration last_offer_at{-1};
  bool wants_offers = false;  // unmet demand, not suppressed (set by the framework)
};

class World : public SimulatedTasks {
 public:
  World(uint64_t seed, std::function<Duration()> now);
  Duration now() const { return now_(); }

  // -- simulated processes (SimulatedTasks) --------------------------------
  SimulatedRun started(const std::string& framework_id, const std::string& task_id,
                       const Address& executor) override;
  void ended(const std::string& framework_id, const std::string& task_id, int term_signal) override;
  // Asked as each process starts: why it must not (its task's checkpoint
  // record is not durable on its agent's disk), or empty.
  std::function<std::string(const std::string& framework_id, const std::string& task_id,
                            const Address& executor)>
      launch_check;
  // Whether the master had already told the framework this task ended (a
  // LOST it may not have received yet): its kill then enforces the
  // master's word, as Mesos kills such tasks when their agent returns.
  std::function<bool(const std::string& framework_id, const std::string& task_id)>
      master_told_ended;
  // The executor actors running simulated processes now (for executor crashes).
  std::vector<Address> executors() const;

  // -- what frameworks see and do ------------------------------------------
  FrameworkBook& framework(const std::string& name) { return frameworks_[name]; }
  std::map<std::string, FrameworkBook>& frameworks() { return frameworks_; }
  // instance: one scheduler actor's life (a failover starts a new one).
  void delivered(const std::string& fw_name, uint64_t instance, const TaskStatus& status);
  void kill_asked(const std::string& fw_name, const std::string& task_id);
  void torn_down(const std::string& fw_name);

  // -- faults --------------------------------------------------------------
  void crashing(const std::string& what);
  void master_failover();  // the master is crashing: nobody asked to kill
  // The processes running now under executors of this node (port), or of
  // this executor, die with a crash the schedule caused: their end by a
  // signal is expected.
  void doom_port(uint16_t port);
  void doom_executor(const Address& executor);
  // (framework id, task id) of every process running now.
  std::vector<std::pair<std::string, std::string>> running() const;

  // -- checks --------------------------------------------------------------
  void check_books(const MasterView& master, const Allocator& allocator);
  // After healing and the quiet period. master null: the master is down.
  void check_final(const MasterView* master, Duration quiet_start);

  void violate(const std::string& invariant, const std::string& detail);
  void event(const std::string& what);  // into the ring of recent events

  const std::vector<Violation>& violations() const { return violations_; }
  // The last events before the first violation (else the last events).
  const std::deque<std::string>& recent() const {
    return violations_.empty() ? recent_ : first_context_;
  }
  // Violations recorded per invariant, at most this many (the rest counted).
  static constexpr size_t violations_max = 32;
  void set_recent_max(size_t n) { recent_max_ = std::max<size_t>(1, n); }
  uint64_t tasks_started() const { return tasks_started_; }

 private:
  struct Process {
    Address executor;
    Duration started{0};
    bool running = true;
    bool doomed = false;  // a scheduled crash takes it
    int term_signal = 0;
    Duration ended{0};
  };
  std::string stamp() const;

  std::function<Duration()> now_;
  std::mt19937_64 rng_;
  std::map<std::pair<std::string, std::string>, Process> processes_;  // (fw id, task)
  std::map<std::string, std::string> name_of_id_;                     // fw id -> name
  std::map<std::string, FrameworkBook> frameworks_;
  std::map<std::pair<std::string, uint64_t>, std::set<std::string>> delivered_uuids_;
  std::vector<Violation> violations_;
  uint64_t violations_dropped_ = 0;
  std::deque<std::string> recent_;
  size_t recent_max_ = 80;
  std::deque<std::string> first_context_;
  uint64_t tasks_started_ = 0;
};

}  // namespace tessera::sim
