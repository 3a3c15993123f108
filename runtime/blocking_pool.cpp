#include "runtime/blocking_pool.hpp"

#include "runtime/log.hpp"

#include <exception>

namespace tessera {

const char* to_string(Work work) {
  switch (work) {
    case Work::general:
      return "general";
    case Work::fetch:
      return "fetch";
    case Work::container:
      return "container";
    case Work::usage:
      return "usage";
    case Work::probe:
      return "probe";
    case Work::store:
      return "store";
  }
  return "unknown";
}

LaneLimits BlockingPool::default_limits(Work work) {
  switch (work) {
    case Work::fetch:
      return {4, 1024};  // downloads may each hold a thread for minutes
    case Work::container:
      return {4, 4096};  // one destroy per ended executor run
    case Work::usage:
      return {2, 256};  // one periodic scan, and operators' usage requests
    case Work::probe:
      return {4, 1024};  // each bounded by its check's timeout
    case Work::store:
      return {1, 64};  // the registrar has one commit in flight
    case Work::general:
      break;
  }
  return {4, 4096};
}

BlockingPool::BlockingPool() {
  for (size_t i = 0; i < work_classes; ++i)
    lanes_[i].limits = default_limits(static_cast<Work>(i));
}

BlockingPool::BlockingPool(size_t threads_max, size_t queue_max) {
  for (auto& lane : lanes_)
    lane.limits = {threads_max == 0 ? 1 : threads_max, queue_max};
}

BlockingPool::~BlockingPool() {
  shutdown();
}

bool BlockingPool::submit(Work work, std::function<void()> job) {
  std::lock_guard<std::mutex> guard(mu_);
  auto& lane = lanes_[static_cast<size_t>(work)];
  if (stopping_ || lane.queue.size() >= lane.limits.queue_max)
    return false;
  lane.queue.push_back(std::move(job));
  if (lane.idle == 0 && lane.threads.size() < lane.limits.threads_max)
    lane.threads.emplace_back([this, &lane] { run(lane); });
  else
    lane.cv.notify_one();
  return true;
}

void BlockingPool::set_limits(Work work, LaneLimits limits) {
  std::lock_guard<std::mutex> guard(mu_);
  if (limits.threads_max == 0)
    limits.threads_max = 1;
  lanes_[static_cast<size_t>(work)].limits = limits;
}

size_t BlockingPool::queued(Work work) const {
  std::lock_guard<std::mutex> guard(mu_);
  return lanes_[static_cast<size_t>(work)].queue.size();
}

size_t BlockingPool::running(Work work) const {
  std::lock_guard<std::mutex> guard(mu_);
  return lanes_[static_cast<size_t>(work)].running;
}

void BlockingPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
    for (auto& lane : lanes_) {
      lane.queue.clear();
      for (auto& t : lane.threads)
        threads.push_back(std::move(t));
      lane.threads.clear();
      lane.cv.notify_all();
    }
  }
  for (auto& t : threads)
    if (t.joinable())
      t.join();
}

void BlockingPool::run(Lane& lane) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++lane.idle;
    lane.cv.wait(lock, [&] { return stopping_ || !lane.queue.empty(); });
    --lane.idle;
    if (stopping_)
      return;
    auto job = std::move(lane.queue.front());
    lane.queue.pop_front();
    ++lane.running;
    lock.unlock();
    try {
      job();
    } catch (const std::exception& e) {
      log().error("blocking pool: a job threw: {}", e.what());
    } catch (...) {
      log().error("blocking pool: a job threw");
    }
    job = nullptr;  // its captures go before the job counts as done
    lock.lock();
    --lane.running;
  }
}

}  // namespace tessera
