#include "runtime/stats.hpp"

#include "runtime/envelope.hpp"
#include "runtime/log.hpp"

#include <fmt/format.h>

namespace tessera {

const char* to_string(Reject r) {
  switch (r) {
    case Reject::unhandled_type:
      return "unhandled_type";
    case Reject::malformed:
      return "malformed";
    case Reject::truncated:
      return "truncated";
    case Reject::oversized:
      return "oversized";
    case Reject::traversal_limit:
      return "traversal_limit";
    case Reject::unknown_receiver:
      return "unknown_receiver";
    case Reject::undeliverable:
      return "undeliverable";
    case Reject::handler_error:
      return "handler_error";
    case Reject::forged_sender:
      return "forged_sender";
    case Reject::count_:
      break;
  }
  return "unknown";
}

TypeCounters& Stats::for_type(uint64_t type_id) {
  std::lock_guard<std::mutex> guard(mu_);
  if (!counters_.count(type_id) && counters_.size() >= type_ids_max)
    type_id = 0;
  auto& slot = counters_[type_id];
  if (!slot)
    slot = std::make_unique<TypeCounters>();
  return *slot;
}

void Stats::name_type(uint64_t type_id, std::string name) {
  std::lock_guard<std::mutex> guard(mu_);
  names_.emplace(type_id, std::move(name));
}

std::string Stats::type_name(uint64_t type_id) const {
  std::lock_guard<std::mutex> guard(mu_);
  auto it = names_.find(type_id);
  return it != names_.end() ? it->second : fmt::format("{:#018x}", type_id);
}

void Stats::reject(Reject reason, const Envelope& env, const Address& receiver,
                   const std::string& detail) {
  auto idx = static_cast<size_t>(reason);
  rejected_total_[idx].fetch_add(1, std::memory_order_relaxed);
  for_type(env.type_id).rejected[idx].fetch_add(1, std::memory_order_relaxed);
  auto sender = env.sender.empty() ? std::string("(anonymous)") : env.sender.to_string();
  if (sender.size() > 300)  // an address off the wire can be any length
    sender = sender.substr(0, 300) + "...";
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (logged_.size() >= logged_keys_max)
      return;
    if (!logged_.emplace(reason, env.type_id, sender).second)
      return;
    if (logged_.size() == logged_keys_max)
      log().warn("rejections: {} distinct kinds logged; further ones are only counted",
                 logged_keys_max);
  }
  // A peer that is gone (or not there yet) is normal life in a cluster, and
  // a requester hears of it through its error callback: info, not warn.
  // Bad input from a peer is worth an operator's attention.
  bool peer_gone = reason == Reject::undeliverable || reason == Reject::unknown_receiver;
  log().log(peer_gone ? spdlog::level::info : spdlog::level::warn,
            "rejected message: reason={} type={} sender={} receiver={} bytes={}{}{}",
            to_string(reason), type_name(env.type_id), sender, receiver.to_string(),
            env.payload.size_bytes(), detail.empty() ? "" : " detail=", detail);
}

uint64_t Stats::rejected(Reject reason) const {
  return rejected_total_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
}

std::map<uint64_t, TypeStats> Stats::snapshot() const {
  std::lock_guard<std::mutex> guard(mu_);
  std::map<uint64_t, TypeStats> out;
  for (auto& [id, c] : counters_) {
    auto& s = out[id];
    auto name = names_.find(id);
    s.name = name != names_.end() ? name->second : fmt::format("{:#018x}", id);
    s.sent = c->sent.load(std::memory_order_relaxed);
    s.received = c->received.load(std::memory_order_relaxed);
    for (size_t i = 0; i < reject_reason_count; ++i)
      s.rejected[i] = c->rejected[i].load(std::memory_order_relaxed);
  }
  return out;
}

}  // namespace tessera
