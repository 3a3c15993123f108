#pragma once
// Per-message-type counters of one node: sent, received and rejected by reason.
// They feed metrics later; tests read them to check that bad input was counted.
//
// Thread-safety: all members may be called from any thread. Counter blocks are
// created once per type and never move, so actors cache pointers to them and
// count with relaxed atomic increments on the hot path.

#include "runtime/address.hpp"

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

namespace tessera {

struct Envelope;

// Why a message was not handed to a handler.
enum class Reject : uint8_t {
  unhandled_type,    // no handler for the type
  malformed,         // the payload does not decode
  truncated,         // not a whole number of 8-byte words
  oversized,         // beyond NodeConfig::message_bytes_max
  traversal_limit,   // beyond Cap'n Proto's traversal limit
  unknown_receiver,  // no actor of that name on this node
  undeliverable,     // the target node could not be reached
  handler_error,     // the handler threw
  forged_sender,     // a sender address its connection did not prove (peers.hpp)
  count_
};
const char* to_string(Reject r);
inline constexpr size_t reject_reason_count = static_cast<size_t>(Reject::count_);

struct TypeCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> received{0};
  std::array<std::atomic<uint64_t>, reject_reason_count> rejected{};
};

struct TypeStats {
  std::string name;
  uint64_t sent = 0;
  uint64_t received = 0;
  std::array<uint64_t, reject_reason_count> rejected{};
};

class Stats {
 public:
  TypeCounters& for_type(uint64_t type_id);
  void name_type(uint64_t type_id, std::string name);
  std::string type_name(uint64_t type_id) const;

  // Counts a rejection and logs it the first time this (reason, type, sender)
  // is seen; later ones are only counted. The set of logged keys is bounded.
  void reject(Reject reason, const Envelope& env, const Address& receiver,
              const std::string& detail = {});

  uint64_t rejected(Reject reason) const;
  std::map<uint64_t, TypeStats> snapshot() const;

 private:
  static constexpr size_t logged_keys_max = 4096;
  // Distinct type ids counted apart; beyond that (a peer inventing ids),
  // everything else is counted under type id 0.
  static constexpr size_t type_ids_max = 4096;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<TypeCounters>> counters_;
  std::unordered_map<uint64_t, std::string> names_;
  std::set<std::tuple<Reject, uint64_t, std::string>> logged_;
  std::array<std::atomic<uint64_t>, reject_reason_count> rejected_total_{};
};

}  // namespace tessera
