#pragma once
// OperatorFeed: fills a RecordTable from the operator API's SUBSCRIBE
// stream (its JSON records, as `tessera events` prints them), for a DNS
// server that is not on the master's node (`tessera dns`). SUBSCRIBED
// carries the whole state and is built aside, then replaces the table at
// once; TASK_ADDED, TASK_UPDATED, AGENT_*, FRAMEWORK_* change it.
//
// TASK_UPDATED carries no name or resources, so the feed keeps what names
// each live task (its TaskFacts) until the task ends.
//
// Thread-safety: one thread (the stream's reader) calls on_record.

#include "services/dns/record_table.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace tessera::dns {

class OperatorFeed {
 public:
  // leader: the master's address for leader.DOMAIN, when known.
  OperatorFeed(std::shared_ptr<RecordTable> table, std::optional<Ip> leader, uint16_t leader_port);

  // One record of the stream; false when it is not an event this feed
  // understands (counted by the caller, the stream goes on).
  bool on_record(const nlohmann::json& event);
  bool ready() const { return ready_; }

 private:
  void snapshot(const nlohmann::json& state);
  void task(RecordTable::Batch& b, const nlohmann::json& t);

  std::shared_ptr<RecordTable> table_;
  std::optional<Ip> leader_;
  uint16_t leader_port_;
  bool ready_ = false;
  std::map<std::pair<std::string, std::string>, TaskFacts> tasks_;
};

}  // namespace tessera::dns
