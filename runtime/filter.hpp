#pragma once
// Message interception for tests: observe, drop, delay or duplicate messages by
// type, sender or receiver. Filters run where a message is delivered, in the
// receiving actor, so they see messages from this process and from other OS
// processes alike (libprocess filters only saw local sends).
//
// Thread-safety: all members may be called from any thread. A filter function
// runs on the receiving actor's thread with the set's lock held: it must be
// quick and must not call back into the FilterSet.

#include "runtime/message.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace tessera {

struct FilterAction {
  enum Kind : uint8_t { pass, drop, delay, duplicate } kind = pass;
  std::chrono::nanoseconds delay_by{0};  // with delay: on the runtime clock
  uint32_t copies = 2;                   // with duplicate: deliveries in total

  static FilterAction Pass() { return {}; }
  static FilterAction Drop() { return {drop}; }
  static FilterAction Delay(std::chrono::nanoseconds d) { return {delay, d}; }
  static FilterAction Duplicate(uint32_t n = 2) { return {duplicate, {}, n}; }
};

// Which messages a rule applies to; an unset field matches anything.
struct MessageMatch {
  std::optional<uint64_t> type_id;
  std::optional<Address> sender;
  std::optional<Address> receiver;
  bool matches(const Envelope& env) const;
};

template <class T>
MessageMatch match_type() {
  return MessageMatch{capnp::typeId<T>(), std::nullopt, std::nullopt};
}

class FilterSet {
 public:
  using Id = uint64_t;
  using Fn = std::function<FilterAction(const Envelope&)>;

  // A general filter: sees every message delivered on the node.
  Id add(Fn fn);
  // A rule: applies action to messages that match, at most hits_max times
  // (0: forever). hits(id) tells how often it fired.
  Id add(MessageMatch match, FilterAction action, uint64_t hits_max = 0);
  void remove(Id id);
  void clear();
  uint64_t hits(Id id) const;

  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  // Runs every filter in order of installation; the first non-pass action wins
  // but later filters still observe the message.
  FilterAction evaluate(const Envelope& env);

 private:
  struct Entry {
    Id id;
    Fn fn;
    uint64_t hits = 0;
  };
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  Id next_id_ = 1;
  std::atomic<size_t> count_{0};
};

}  // namespace tessera
