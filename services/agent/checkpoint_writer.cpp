#include "services/agent/checkpoint_writer.hpp"

#include "runtime/log.hpp"
#include "services/agent/checkpoint.hpp"

namespace tessera {

CheckpointWriter::CheckpointWriter(std::function<void(const caf::error&)> on_error,
                                   size_t queue_max)
    : on_error_(std::move(on_error)),
      queue_max_(queue_max == 0 ? 1 : queue_max),
      thread_([this] { loop(); }) {
}

CheckpointWriter::~CheckpointWriter() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CheckpointWriter::write(std::filesystem::path file, std::string bytes, Done done) {
  Op op;
  op.file = std::move(file);
  op.bytes = std::move(bytes);
  if (done)
    op.done.push_back(std::move(done));
  push(std::move(op));
}

void CheckpointWriter::run(std::function<caf::error()> fn, Done done) {
  Op op;
  op.op = std::move(fn);
  if (done)
    op.done.push_back(std::move(done));
  push(std::move(op));
}

void CheckpointWriter::push(Op op) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!op.file.empty()) {
    auto it = pending_file_.find(op.file.string());
    if (it != pending_file_.end())
      for (auto& queued : queue_)
        if (queued.seq == it->second) {
          queued.bytes = std::move(op.bytes);
          for (auto& d : op.done)
            queued.done.push_back(std::move(d));
          return;
        }
  } else {
    // Later writes must not move in front of this operation.
    pending_file_.clear();
  }
  room_.wait(lock, [this] { return queue_.size() < queue_max_; });
  op.seq = next_seq_++;
  if (!op.file.empty())
    pending_file_[op.file.string()] = op.seq;
  queue_.push_back(std::move(op));
  wake_.notify_one();
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
    Op op = std::move(queue_.front());
    auto seq = op.seq;
    queue_.pop_front();
    if (!op.file.empty()) {
      auto it = pending_file_.find(op.file.string());
      if (it != pending_file_.end() && it->second == op.seq)
        pending_file_.erase(it);
    }
    room_.notify_all();
    lock.unlock();
    caf::error err;
    if (op.file.empty()) {
      err = op.op();
    } else if (auto ok = checkpoint::write_atomically(op.file, op.bytes); !ok) {
      err = ok.error();
    }
    if (err) {
      log().error("checkpoint: {}", describe(err));
      if (on_error_)
        on_error_(err);
    }
    for (auto& d : op.done)
      d(err);
    // Gone before the op counts as done: a callback may hold the last
    // reference to the writer's owner, which must not die on this thread.
    op = Op{};
    lock.lock();
    done_seq_ = seq;
    idle_.notify_all();
  }
}

}  // namespace tessera
