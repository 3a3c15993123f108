#include "support/ping_pong.hpp"

#include <condition_variable>

namespace tessera::testing {

using namespace std::chrono_literals;

PingResult expected_result(uint64_t rounds, uint64_t burst) {
  PingResult r;
  r.replies = rounds;
  r.last_count = rounds;
  r.burst_pongs = burst;
  r.done = true;
  return r;
}

std::ostream& operator<<(std::ostream& os, const PingResult& r) {
  os << "{replies=" << r.replies << " last_count=" << r.last_count
     << " burst_pongs=" << r.burst_pongs << " in_order=" << r.in_order << " done=" << r.done
     << " errors=[";
  for (auto& e : r.errors)
    os << e << ";";
  return os << "]}";
}

Outgoing make_ping(uint64_t seq) {
  return build<testwire::Ping>([&](testwire::Ping::Builder b) { b.setSeq(seq); });
}

Ponger::Ponger(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
  on<testwire::Ping>([this](const Received<testwire::Ping>& m) {
    ++count_;
    auto pong = build<testwire::Pong>([&](testwire::Pong::Builder b) {
      b.setSeq(m.body().getSeq());
      b.setCount(count_);
    });
    if (m.envelope().request_id != 0)
      reply(m, pong);
    else
      send(m.sender(), pong);
  });
}

Echo::Echo(caf::actor_config& cfg, ActorInit init) : Actor(cfg, std::move(init)) {
  auto echo_back = [this](const auto& m) {
    // Re-send the very payload: the echo proves the bytes arrived intact.
    Outgoing same{m.envelope().type_id, m.envelope().payload};
    reply(m, same);
  };
  on<testwire::Ping>(echo_back);
  on<testwire::Pong>(echo_back);
  on<testwire::Blob>(echo_back);
  on<testwire::Tick>(echo_back);
}

void PingOutcome::update(const std::function<void(PingResult&)>& fn) {
  {
    std::lock_guard<std::mutex> guard(mu_);
    fn(result_);
  }
  cv_.notify_all();
}

PingResult PingOutcome::get() const {
  std::lock_guard<std::mutex> guard(mu_);
  return result_;
}

bool PingOutcome::wait_done(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return result_.done; });
}

Pinger::Pinger(caf::actor_config& cfg, ActorInit init, Address ponger, uint64_t rounds,
               uint64_t burst, std::shared_ptr<PingOutcome> outcome)
    : Actor(cfg, std::move(init)),
      ponger_(std::move(ponger)),
      rounds_(rounds),
      burst_(burst),
      outcome_(std::move(outcome)) {
  on<testwire::Pong>([this](const Received<testwire::Pong>& m) {
    auto seq = m.body().getSeq();
    outcome_->update([&](PingResult& r) {
      if (seq != next_burst_seq_)
        r.in_order = false;
      ++r.burst_pongs;
    });
    if (++next_burst_seq_ == burst_)
      finish();
  });
}

void Pinger::on_start() {
  next_round();
}

void Pinger::next_round() {
  if (sent_ == rounds_) {
    start_burst();
    return;
  }
  auto seq = sent_++;
  request<testwire::Pong>(
      ponger_, make_ping(seq), 10s,
      [this, seq](const Received<testwire::Pong>& m) {
        outcome_->update([&](PingResult& r) {
          ++r.replies;
          r.last_count = m.body().getCount();
          if (m.body().getSeq() != seq)
            r.in_order = false;
        });
        next_round();
      },
      [this](const caf::error& err) {
        outcome_->update([&](PingResult& r) { r.errors.push_back(describe(err)); });
        finish();
      });
}

void Pinger::start_burst() {
  if (burst_ == 0) {
    finish();
    return;
  }
  for (uint64_t i = 0; i < burst_; ++i)
    send(ponger_, make_ping(i));
}

void Pinger::finish() {
  outcome_->update([](PingResult& r) { r.done = true; });
}

}  // namespace tessera::testing
