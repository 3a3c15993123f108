#pragma once
// A small pool of threads for work that blocks (file system walks, HTTP
// requests, archive extraction), so that no actor's thread ever does.
// Actors use it through Actor::blocking(); the pool itself knows nothing of
// actors.
//
// Limits: at most threads_max threads (started lazily, one per queued job
// while below the cap) and queue_max jobs waiting; submit() refuses beyond.
// Thread-safety: every member may be called from any thread.
// Ownership: the destructor (or shutdown()) lets running jobs finish, drops
// queued ones, and joins the threads. Jobs must not block forever.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class BlockingPool {
 public:
  explicit BlockingPool(size_t threads_max = 4, size_t queue_max = 4096);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues job; false (and job dropped) when the queue is full or the pool
  // has stopped. A job that throws is logged and the thread goes on.
  bool submit(std::function<void()> job);

  // Drops queued jobs, waits for running ones, joins the threads. Idempotent.
  void shutdown();

 private:
  void run();

  const size_t threads_max_;
  const size_t queue_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  std::vector<std::thread> threads_;         // guarded by mu_
  size_t idle_ = 0;                          // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
};

}  // namespace tessera
