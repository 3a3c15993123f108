#pragma once
// SimulatedTasks: the seam that lets a CommandExecutor run a task as a
// simulated process instead of a real one (services/sim). The executor asks
// it how the task behaves (how long it runs, its exit code, how long it
// takes to die after SIGTERM) and plays that out on its own timers, so the
// whole life of the task is on the runtime clock: virtual in a Simulation.
//
// The implementation is also the simulation's ground truth of what runs:
// started() and ended() bracket each simulated process, and ended() is
// called however it ends (exit, kill, or the executor actor dying with it).
// Threading: called on the executor's thread; in a Simulation that is the one
// simulation thread, so an implementation needs no lock there.

#include "runtime/address.hpp"
#include "runtime/clock.hpp"

#include <optional>
#include <string>

namespace tessera {

struct SimulatedRun {
  Duration runs_for{0};  // until it exits by itself
  int exit_code = 0;
  // After a SIGTERM it exits this much later (SIGTERM's status); nullopt:
  // it ignores SIGTERM and dies only at SIGKILL.
  std::optional<Duration> term_after;
};

class SimulatedTasks {
 public:
  virtual ~SimulatedTasks() = default;
  // A process for the task starts under the executor actor at executor.
  virtual SimulatedRun started(const std::string& framework_id, const std::string& task_id,
                               const Address& executor) = 0;
  // It is gone: exited (signal 0), killed by signal, or ended with its executor.
  virtual void ended(const std::string& framework_id, const std::string& task_id,
                     int term_signal) = 0;
};

}  // namespace tessera
