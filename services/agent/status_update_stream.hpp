#pragma once
// StatusUpdateStream: the status updates of one task that the agent owns until
// the master acknowledges them (Mesos's status update manager, one stream).
//
// Invariants:
//  1. Updates leave in the order they were added; only the oldest
//     unacknowledged one (front()) may be in flight.
//  2. A uuid is taken at most once: a duplicate (an executor's retry) changes
//     nothing. The last seen_max uuids are remembered, a bounded window far
//     longer than any executor's retry horizon.
//  3. After a terminal update nothing more is taken: a task ends once.
//  4. At most pending_max updates wait; beyond that add() refuses, so a
//     runaway executor cannot exhaust the agent's memory.
//
// A plain value class, no actor, no time: the agent drives the retries.

#include "services/executor/owned.hpp"

#include <capnp/checkpoint.capnp.h>
#include <capnp/common.capnp.h>

#include <cstddef>
#include <deque>
#include <set>
#include <string>
#include <string_view>

namespace tessera {

class StatusUpdateStream {
 public:
  static constexpr size_t pending_max = 1024;
  static constexpr size_t seen_max = 4096;

  enum class Added {
    fresh,           // stored; latest_state() is now its state
    duplicate,       // this uuid was seen before
    after_terminal,  // the task already ended
    full,            // pending_max updates are waiting
    invalid,         // no uuid
  };
  Added add(wire::TaskStatus::Reader status);

  // The oldest unacknowledged update, or nullptr when all are acknowledged.
  const Owned<wire::TaskStatus>* front() const;
  // Acknowledges front() if uuid is its uuid; false otherwise (late or duplicate).
  bool ack(std::string_view uuid);

  // The newest state added, acknowledged or not (STAGING before any).
  wire::TaskState latest_state() const { return latest_; }
  // The state the master hears next: front()'s, or latest_state() when none waits.
  wire::TaskState next_state() const;
  bool terminated() const { return terminated_; }
  bool terminal_acknowledged() const { return terminated_ && pending_.empty(); }
  size_t pending() const { return pending_.size(); }

  // Checkpointing (services/agent/checkpoint.hpp): save() writes what must
  // survive an agent restart (the waiting updates in order, the uuids seen,
  // the latest state, terminated) into record's stream fields; restore()
  // rebuilds an equal stream, keeping at most pending_max updates and the
  // newest seen_max uuids of a record that holds more.
  void save(wire::TaskRecord::Builder record) const;
  static StatusUpdateStream restore(wire::TaskRecord::Reader record);

 private:
  std::deque<Owned<wire::TaskStatus>> pending_;
  std::set<std::string> seen_;          // uuids, at most seen_max
  std::deque<std::string> seen_order_;  // the same, oldest first
  wire::TaskState latest_ = wire::TaskState::STAGING;
  bool terminated_ = false;
};

}  // namespace tessera
