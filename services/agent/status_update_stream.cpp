#include "services/agent/status_update_stream.hpp"

#include "services/common/wire.hpp"

namespace tessera {

StatusUpdateStream::Added StatusUpdateStream::add(wire::TaskStatus::Reader status) {
  auto uuid = str(status.getUuid());
  if (uuid.empty())
    return Added::invalid;
  if (seen_.count(uuid))
    return Added::duplicate;
  if (terminated_)
    return Added::after_terminal;
  if (pending_.size() >= pending_max)
    return Added::full;
  seen_.insert(uuid);
  seen_order_.push_back(std::move(uuid));
  if (seen_order_.size() > seen_max) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  pending_.emplace_back(status);
  latest_ = status.getState();
  terminated_ = is_terminal(latest_);
  return Added::fresh;
}

const Owned<wire::TaskStatus>* StatusUpdateStream::front() const {
  return pending_.empty() ? nullptr : &pending_.front();
}

bool StatusUpdateStream::ack(std::string_view uuid) {
  if (pending_.empty())
    return false;
  auto front_uuid = pending_.front().get().getUuid();
  if (std::string_view(reinterpret_cast<const char*>(front_uuid.begin()), front_uuid.size()) !=
      uuid)
    return false;
  pending_.pop_front();
  return true;
}

wire::TaskState StatusUpdateStream::next_state() const {
  return pending_.empty() ? latest_ : pending_.front().get().getState();
}

void StatusUpdateStream::save(wire::TaskRecord::Builder record) const {
  auto pending = record.initPending(static_cast<unsigned>(pending_.size()));
  for (unsigned i = 0; i < pending_.size(); ++i)
    pending.setWithCaveats(i, pending_[i].get());
  auto seen = record.initSeenUuids(static_cast<unsigned>(seen_order_.size()));
  for (unsigned i = 0; i < seen_order_.size(); ++i)
    seen.set(i, data(seen_order_[i]));
  record.setLatestState(latest_);
  record.setTerminated(terminated_);
}

StatusUpdateStream StatusUpdateStream::restore(wire::TaskRecord::Reader record) {
  StatusUpdateStream s;
  auto seen = record.getSeenUuids();
  unsigned first = seen.size() > seen_max ? seen.size() - static_cast<unsigned>(seen_max) : 0;
  for (unsigned i = first; i < seen.size(); ++i) {
    auto uuid = str(seen[i]);
    if (!uuid.empty() && s.seen_.insert(uuid).second)
      s.seen_order_.push_back(std::move(uuid));
  }
  for (auto status : record.getPending()) {
    if (s.pending_.size() >= pending_max)
      break;
    s.pending_.emplace_back(status);
  }
  s.latest_ = record.getLatestState();
  s.terminated_ = record.getTerminated();
  return s;
}

}  // namespace tessera
