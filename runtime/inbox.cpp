#include "runtime/inbox.hpp"

#include "runtime/atoms.hpp"
#include "runtime/simulation.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

namespace tessera {

Inbox::Inbox(caf::weak_actor_ptr actor, Simulation* sim, uint64_t id, size_t capacity_max)
    : actor_(std::move(actor)), sim_(sim), id_(id), capacity_max_(capacity_max) {
}

bool Inbox::post(std::function<void()> fn) {
  caf::strong_actor_ptr strong;
  {
    std::lock_guard lock(mu_);
    if (closed_)
      return false;
    if (items_.size() >= capacity_max_) {
      ++refused_;
      return false;
    }
    strong = actor_.lock();
    if (!strong)
      return false;
    items_.push_back(std::move(fn));
    if (nudged_)
      return true;  // the actor has a nudge coming and drains everything
    nudged_ = true;
  }
  auto self = caf::actor_cast<caf::actor>(strong);
  auto id = id_;
  if (sim_)
    sim_->post([self, id] { caf::anon_send(self, inbox_atom::value, id); });
  else
    caf::anon_send(self, inbox_atom::value, id);
  return true;
}

std::deque<std::function<void()>> Inbox::take() {
  std::lock_guard lock(mu_);
  nudged_ = false;
  return std::exchange(items_, {});
}

void Inbox::close() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    dropped.swap(items_);
  }
  // Destroyed outside the lock: an item's captures may post again.
}

size_t Inbox::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

uint64_t Inbox::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace tessera
