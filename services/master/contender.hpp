#pragma once
// MasterContender: one of several masters (`tessera master --zk ...`). It
// contends for the lead through a ZkElection and runs the Master actor
// (named "master", with its allocator) on this node only while this
// process leads; a standby runs none and is only connected to ZooKeeper.
//
// Fencing: a master must not act once another may lead. Another can lead
// only after this process's ZooKeeper session expired, which the servers
// decide session_timeout after they last heard from it; the client notices
// a silent connection two thirds of the way there. So a leader whose
// connection is down steps down after disconnect_grace (a sixth of the
// granted timeout: a ZooKeeper server that dies is replaced by another of
// the ensemble within it, and the lead is kept), well before its session
// can expire; one that hears another leads steps down at once. The
// registry's compare-and-set refuses the writes of a stale leader as well.
//
// A Master that stops by itself while leading (a registry commit failed)
// makes the contender withdraw (its node goes, another master leads) and
// contend again with a fresh session and, if its session expired, a fresh
// registry store: it rejoins as a standby without restarting the process.
//
// Hot standby: a standby keeps its ZooKeeper session (and the registry
// store's) and reads the registry every warm_interval, so that a takeover
// reads it in one round trip when nothing was written since (ZkStore).

#include "runtime/actor.hpp"
#include "services/election/zk_election.hpp"
#include "services/master/master.hpp"

#include <atomic>

namespace tessera {

struct MasterContenderConfig {
  MasterConfig master;        // for every Master it runs; master.registry is replaced when broken
  std::string registry_spec;  // to open the registry store again (make_store)
  std::string work_dir;
  int zk_session_timeout_ms = 10'000;
  Duration warm_interval = std::chrono::seconds(5);
  std::shared_ptr<ZkElection> election;  // a candidate with this node's "master" address
  // Whether this process's Master runs now; `tessera master` prints each change.
  std::shared_ptr<std::atomic<bool>> leading = std::make_shared<std::atomic<bool>>(false);
};

// Named "master" on a standby's node: whatever is meant for the leader
// (a registration, a framework's call) is answered with NotLeader naming
// the leader, and an operator's call with an error that names it, so a
// client given a standby's address finds the leader.
class StandbyMaster : public Actor {
 public:
  StandbyMaster(caf::actor_config& cfg, ActorInit init, std::shared_ptr<MasterDetector> election);

 private:
  void redirect(const Address& to);
  std::string leader() const;

  std::shared_ptr<MasterDetector> election_;
  uint64_t redirected_ = 0;
};

class MasterContender : public Actor {
 public:
  MasterContender(caf::actor_config& cfg, ActorInit init, MasterContenderConfig config);

  void on_start() override;
  void on_stopping() override;

 private:
  void observe();
  void decide(const LeaderView& view);
  void take_lead();
  void step_down(const std::string& why);
  void stop_master();
  void on_master_ended(uint64_t incarnation);
  void reopen_store();
  // Runs a StandbyMaster under the master's name while not leading.
  void stand_by();
  // While standing by, reads the registry every warm_interval so that a
  // takeover finds it read (ZkStore keeps what it read).
  void keep_warm();

  MasterContenderConfig config_;
  bool leading_ = false;
  Address master_;             // the Master this contender runs, while leading_
  uint64_t incarnation_ = 0;   // of the Masters it started: a late end of an old one is no news
  uint64_t lead_session_ = 0;  // the ZooKeeper session it leads in
  TimerId grace_timer_ = 0;
  TimerId retry_timer_ = 0;
  TimerId standby_timer_ = 0;
  caf::actor standby_;  // the StandbyMaster it started last
  TimerId warm_timer_ = 0;
  bool warming_ = false;    // a read is on the store lane
  bool reopening_ = false;  // a new registry store is being opened on the store lane
  std::optional<std::string> leader_seen_;  // for the log: the last leader named
};

}  // namespace tessera
