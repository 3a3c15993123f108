#include "runtime/filter.hpp"

#include <algorithm>
#include <memory>

namespace tessera {

bool MessageMatch::matches(const Envelope& env) const {
  if (type_id && *type_id != env.type_id)
    return false;
  if (sender && *sender != env.sender)
    return false;
  // Receivers match by name and node; an empty host matches any node.
  if (receiver) {
    if (receiver->name != env.receiver.name)
      return false;
    if (!receiver->host.empty() && !receiver->same_node(env.receiver))
      return false;
  }
  return true;
}

FilterSet::Id FilterSet::add(Fn fn) {
  std::lock_guard<std::mutex> guard(mu_);
  auto id = next_id_++;
  entries_.push_back(Entry{id, std::move(fn)});
  count_.store(entries_.size(), std::memory_order_release);
  return id;
}

FilterSet::Id FilterSet::add(MessageMatch match, FilterAction action, uint64_t hits_max) {
  // The rule counts its own firings; hits_max bounds them.
  auto fired = std::make_shared<uint64_t>(0);
  return add([match = std::move(match), action, hits_max, fired](const Envelope& env) {
    if (!match.matches(env) || (hits_max != 0 && *fired >= hits_max))
      return FilterAction::Pass();
    ++*fired;
    return action;
  });
}

void FilterSet::remove(Id id) {
  std::lock_guard<std::mutex> guard(mu_);
  std::erase_if(entries_, [id](const Entry& e) { return e.id == id; });
  count_.store(entries_.size(), std::memory_order_release);
}

void FilterSet::clear() {
  std::lock_guard<std::mutex> guard(mu_);
  entries_.clear();
  count_.store(0, std::memory_order_release);
}

uint64_t FilterSet::hits(Id id) const {
  std::lock_guard<std::mutex> guard(mu_);
  for (auto& e : entries_)
    if (e.id == id)
      return e.hits;
  return 0;
}

FilterAction FilterSet::evaluate(const Envelope& env) {
  std::lock_guard<std::mutex> guard(mu_);
  FilterAction result;
  for (auto& e : entries_) {
    auto action = e.fn(env);
    if (action.kind == FilterAction::pass)
      continue;
    ++e.hits;
    if (result.kind == FilterAction::pass)
      result = action;
  }
  return result;
}

}  // namespace tessera
