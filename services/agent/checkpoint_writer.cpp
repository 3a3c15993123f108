#include "services/agent/checkpoint_writer.hpp"

#include "runtime/log.hpp"
#include "services/agent/checkpoint.hpp"

namespace tessera {

void CheckpointLatency::record(std::chrono::nanoseconds took) {
  double ms = double(took.count()) / 1e6;
  size_t i = 0;
  while (i < bounds_ms.size() && ms > bounds_ms[i])
    ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(uint64_t(took.count() / 1000), std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
}

CheckpointWriter::CheckpointWriter(std::function<void(const caf::error&)> on_error,
                                   size_t queue_max, Disk& disk, bool inline_writes)
    : on_error_(std::move(on_error)),
      queue_max_(queue_max == 0 ? 1 : queue_max),
      disk_(disk),
      inline_(inline_writes) {
  if (!inline_)
    thread_ = std::thread([this] { loop(); });
}

CheckpointWriter::~CheckpointWriter() {
  if (inline_)
    return;  // nothing waits: every operation ran as it was asked for
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool CheckpointWriter::write(std::filesystem::path file, std::string bytes, Done done) {
  Op op;
  op.file = std::move(file);
  op.bytes = std::move(bytes);
  if (done)
    op.done.push_back(std::move(done));
  return push(std::move(op));
}

bool CheckpointWriter::run(std::function<caf::error()> fn, Done done) {
  Op op;
  op.op = std::move(fn);
  if (done)
    op.done.push_back(std::move(done));
  return push(std::move(op));
}

bool CheckpointWriter::accepts(const std::filesystem::path& file) const {
  std::lock_guard<std::mutex> guard(mu_);
  return queue_.size() < queue_max_ || pending_file_.count(file.string()) > 0;
}

uint64_t CheckpointWriter::refused() const {
  std::lock_guard<std::mutex> guard(mu_);
  return refused_;
}

caf::error CheckpointWriter::refusal() const {
  return make_error(Errc::overloaded,
                    "checkpoint queue full (" + std::to_string(queue_max_) + " operations)");
}

bool CheckpointWriter::push(Op op) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!op.file.empty()) {
    auto it = pending_file_.find(op.file.string());
    if (it != pending_file_.end())
      for (auto& queued : queue_)
        if (queued.seq == it->second) {
          queued.bytes = std::move(op.bytes);
          for (auto& d : op.done)
            queued.done.push_back(std::move(d));
          return true;
        }
  }
  if (queue_.size() >= queue_max_) {
    ++refused_;
    return false;
  }
  if (op.file.empty())
    pending_file_.clear();  // later writes must not move in front of this operation
  op.seq = next_seq_++;
  if (!op.file.empty())
    pending_file_[op.file.string()] = op.seq;
  queue_.push_back(std::move(op));
  if (!inline_) {
    wake_.notify_one();
    return true;
  }
  // Inline: runs now, on this thread. An operation asked for by a callback
  // of one that runs waits its turn in the queue, in order.
  if (draining_)
    return true;
  draining_ = true;
  while (!queue_.empty())
    run_batch(lock);
  draining_ = false;
  return true;
}

void CheckpointWriter::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  auto target = next_seq_ - 1;
  idle_.wait(lock, [&] { return done_seq_ >= target; });
}

void CheckpointWriter::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty())
      return;  // stopping, and everything written
    run_batch(lock);
  }
}

void CheckpointWriter::run_batch(std::unique_lock<std::mutex>& lock) {
  {
    // The writes at the head of the queue go as one group commit; any other
    // operation goes alone, in its place.
    std::vector<Op> batch;
    do {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    } while (!batch.front().file.empty() && !queue_.empty() && !queue_.front().file.empty() &&
             batch.size() < batch_max);
    for (const auto& op : batch)
      if (!op.file.empty()) {
        auto it = pending_file_.find(op.file.string());
        if (it != pending_file_.end() && it->second == op.seq)
          pending_file_.erase(it);
      }
    lock.unlock();
    std::vector<caf::error> errors;
    auto started = std::chrono::steady_clock::now();
    if (batch.front().file.empty()) {
      errors.push_back(batch.front().op());
    } else if (batch.size() < group_commit_min) {
      // A few records: their own fsyncs cost less than syncing the whole
      // file system (which also flushes every sandbox being written).
      for (const auto& op : batch) {
        auto ok = checkpoint::write_atomically(op.file, op.bytes, disk_);
        errors.push_back(ok ? caf::error{} : ok.error());
      }
    } else {
      std::vector<std::pair<std::filesystem::path, std::string_view>> records;
      for (const auto& op : batch)
        records.emplace_back(op.file, op.bytes);
      errors = checkpoint::write_all_atomically(records, disk_);
    }
    if (!batch.front().file.empty())
      latency_.record(std::chrono::steady_clock::now() - started);
    auto seq = batch.back().seq;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (errors[i]) {
        log().error("checkpoint: {}", describe(errors[i]));
        if (on_error_)
          on_error_(errors[i]);
      }
      for (auto& d : batch[i].done)
        d(errors[i]);
    }
    // Gone before the ops count as done: a callback may hold the last
    // reference to the writer's owner, which must not die on this thread.
    batch.clear();
    lock.lock();
    done_seq_ = seq;
    idle_.notify_all();
  }
}

}  // namespace tessera
