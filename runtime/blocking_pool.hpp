#pragma once
// Threads for work that blocks (file system walks, HTTP requests, archive
// extraction, killing a container's processes, /proc scans), so that no
// actor's thread ever does. Actors use it through Actor::blocking(); the pool
// itself knows nothing of actors.
//
// Work comes in classes, each with a lane of its own: its own threads and
// its own bounded queue, so that one class of slow work (downloads stalled
// on a server) never delays another (killing a container, reading the
// memory use that reports an OOM):
//
//   general    what asks for no class: sandbox GC scans, ...
//   fetch      the fetcher's downloads, copies and extractions
//   container  destroying containers (kills and waits for their processes)
//   usage      reading containers' usage (/proc scans, cgroup files)
//   probe      network health checks
//   store      the master's registry commits (one at a time, in order)
//
// Limits: per lane, at most threads_max threads (started lazily, one per
// queued job while below the cap) and queue_max jobs waiting; submit()
// refuses beyond (the caller decides: retry later, or report it).
// Thread-safety: every member may be called from any thread.
// Ownership: the destructor (or shutdown()) lets running jobs finish, drops
// queued ones, and joins the threads. Jobs must not block forever.

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

enum class Work : uint8_t { general, fetch, container, usage, probe, store };
constexpr size_t work_classes = 6;
const char* to_string(Work work);

struct LaneLimits {
  size_t threads_max = 4;
  size_t queue_max = 4096;
};

class BlockingPool {
 public:
  // Every lane with the defaults of its class (default_limits).
  BlockingPool();
  // Every lane with these limits (the general lane's, historically).
  BlockingPool(size_t threads_max, size_t queue_max);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  static LaneLimits default_limits(Work work);

  // Queues job on work's lane; false (and job dropped) when that lane's
  // queue is full or the pool has stopped. A job that throws is logged and
  // the thread goes on.
  bool submit(Work work, std::function<void()> job);
  bool submit(std::function<void()> job) { return submit(Work::general, std::move(job)); }

  // Changes a lane's limits from now on (threads already running stay until
  // shutdown; a lower queue_max refuses new jobs until the queue is below it).
  void set_limits(Work work, LaneLimits limits);

  // Jobs of a lane waiting for a thread, and running.
  size_t queued(Work work) const;
  size_t running(Work work) const;

  // Drops queued jobs, waits for running ones, joins the threads. Idempotent.
  void shutdown();

 private:
  struct Lane {
    LaneLimits limits;
    std::deque<std::function<void()>> queue;
    std::vector<std::thread> threads;
    size_t idle = 0;
    size_t running = 0;
    std::condition_variable cv;
  };
  void run(Lane& lane);

  mutable std::mutex mu_;
  std::array<Lane, work_classes> lanes_;  // guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
};

}  // namespace tessera
