#include "runtime/blocking_pool.hpp"

#include "runtime/log.hpp"

#include <exception>

namespace tessera {

BlockingPool::BlockingPool(size_t threads_max, size_t queue_max)
    : threads_max_(threads_max == 0 ? 1 : threads_max), queue_max_(queue_max) {
}

BlockingPool::~BlockingPool() {
  shutdown();
}

bool BlockingPool::submit(std::function<void()> job) {
  std::lock_guard<std::mutex> guard(mu_);
  if (stopping_ || queue_.size() >= queue_max_)
    return false;
  queue_.push_back(std::move(job));
  if (idle_ == 0 && threads_.size() < threads_max_)
    threads_.emplace_back([this] { run(); });
  else
    cv_.notify_one();
  return true;
}

void BlockingPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
    queue_.clear();
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads)
    if (t.joinable())
      t.join();
}

void BlockingPool::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (stopping_)
      return;
    auto job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      job();
    } catch (const std::exception& e) {
      log().error("blocking pool: a job threw: {}", e.what());
    } catch (...) {
      log().error("blocking pool: a job threw");
    }
    lock.lock();
  }
}

}  // namespace tessera
