#pragma once
// DnsFeed: keeps a RecordTable in step with the master's event stream
// (capnp/operator.capnp MasterEventBatch), as the state view does
// (services/master/state_view.hpp): it subscribes (again every
// resubscribe_interval until a snapshot arrives), applies the snapshot and
// then every batch in order, one table lock per batch. The master's loss
// resubscribes (a jump in the sequence does not: see on_batch). A snapshot is built in a
// table of its own and replaces the served one at once when complete: the
// server keeps answering what it had until then (DNS clients prefer a few
// seconds' stale answer to none, or to half a cluster).
//
// The master serves its events to actors of its own node: the feed runs
// beside it (`tessera master --dns`, `tessera cluster`). A DNS server on
// another machine follows the operator API's SUBSCRIBE (`tessera dns`).
//
// Only what names a record is kept: agents' addresses, frameworks' names,
// tasks' names, agents, ports and whether they are listed (RUNNING and not
// reported unhealthy).

#include "runtime/actor.hpp"
#include "services/dns/record_table.hpp"

#include <capnp/operator.capnp.h>

#include <atomic>
#include <memory>

namespace tessera::dns {

struct FeedConfig {
  Address master;
  Duration resubscribe_interval = std::chrono::seconds(1);
};

// What the feed reports, readable from any thread.
struct FeedStatus {
  std::atomic<bool> ready{false};    // a snapshot is applied
  std::atomic<uint64_t> batches{0};  // applied
  std::atomic<uint64_t> gaps{0};     // jumps in the sequence (on_batch says why)
};

class DnsFeed : public Actor {
 public:
  DnsFeed(caf::actor_config& cfg, ActorInit init, FeedConfig config,
          std::shared_ptr<RecordTable> table, std::shared_ptr<FeedStatus> status);

 protected:
  void on_start() override;

 private:
  void subscribe();
  void lost(const std::string& why);
  void on_batch(const Received<wire::MasterEventBatch>& m);

  FeedConfig config_;
  std::shared_ptr<RecordTable> table_;
  std::shared_ptr<FeedStatus> status_;
  std::unique_ptr<RecordTable> staging_;  // the snapshot arriving
  bool ready_ = false;
  bool loading_ = false;
  uint64_t next_sequence_ = 0;
  Actor::TimerId resubscribe_timer_ = 0;
};

// Applies one event to the table (exposed for tests).
void apply_event(wire::MasterEvent::Reader e, RecordTable::Batch& b);

}  // namespace tessera::dns
