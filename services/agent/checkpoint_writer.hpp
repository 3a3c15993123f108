#pragma once
// CheckpointWriter: one thread that writes and removes the agent's checkpoint
// files in the order they were asked for, so that the agent's actor never
// waits on fsync. A write to a file whose previous write still waits in the
// queue replaces that write (its bytes, keeping its place) instead of adding
// one: under load, one task's many updates cost one fsync. Writes at the
// head of the queue go as one group commit (write_all_atomically) when
// there are many of them, each with its own fsyncs when few.
//
// Contract: operations run in order; each done callback runs once, on the
// writer's thread, after its operation (or the one that replaced it) is
// durable or failed. flush() waits for everything queued so far.
// Limits: at most queue_max operations wait. Beyond that write() and run()
// refuse at once and return false (backpressure: nothing is queued, done is
// not called, the caller still holds what it wanted written and tries again
// later); a write to a file whose write is queued always fits (it replaces
// it). Nothing here ever blocks the caller but flush().
// Thread-safety: every member may be called from any thread, but the order
// promise holds per producer: the agent's actor is the only one that writes
// and removes (a removal racing another thread's write to the same file may
// be overtaken by it).
// Inline mode (the chaos simulation, as Simulation::set_inline_blocking for
// the blocking pool): no thread; each operation runs on the caller's thread
// as it is asked for, so that a seed replays exactly. Done callbacks are
// then called on that thread too: they must only post (the agent's are
// continuations, messages to itself, as in threaded mode).
// Ownership: the destructor finishes the queue, then joins the thread; it
// must not run on the writer's thread (callbacks are destroyed before flush()
// returns, so an owner that flushes before it ends is never freed there).

#include "runtime/error.hpp"
#include "services/agent/disk.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tessera {

// How long the writer's batches of writes take, one sample per batch (a
// group commit, or a few records each with its own fsync), for the agent's
// metrics. Buckets are not cumulative; the last one is +Inf. Read from any
// thread; the writer's thread alone records.
struct CheckpointLatency {
  static constexpr std::array<double, 11> bounds_ms = {1,   2,   5,   10,   25,  50,
                                                       100, 250, 500, 1000, 2500};
  std::array<std::atomic<uint64_t>, bounds_ms.size() + 1> buckets{};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_us{0};
  void record(std::chrono::nanoseconds took);
};

class CheckpointWriter {
 public:
  using Done = std::function<void(const caf::error&)>;

  // on_error runs on the writer's thread for every operation that fails
  // (after it is logged), e.g. to count it.
  // Files go to disk (posix_disk() unless told otherwise); inline_writes:
  // inline mode, above.
  explicit CheckpointWriter(std::function<void(const caf::error&)> on_error = {},
                            size_t queue_max = 65536, Disk& disk = posix_disk(),
                            bool inline_writes = false);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Writes bytes (a framed record) to file atomically (checkpoint.hpp).
  // False: refused, the queue is full (see Limits).
  bool write(std::filesystem::path file, std::string bytes, Done done = {});
  // Runs op in order with the writes (removals). False: refused, as write().
  bool run(std::function<caf::error()> op, Done done = {});
  // Whether a write to file would be taken now. With one producer (the
  // agent's actor) a true answer holds until its next write or run.
  bool accepts(const std::filesystem::path& file) const;
  // Operations refused so far because the queue was full.
  uint64_t refused() const;
  // The error to report for a refused operation (Errc::overloaded).
  caf::error refusal() const;
  // Returns once every operation queued before the call is done.
  void flush();
  const CheckpointLatency& latency() const { return latency_; }

 private:
  struct Op {
    std::filesystem::path file;  // empty: op
    std::string bytes;
    std::function<caf::error()> op;
    std::vector<Done> done;
    uint64_t seq = 0;
  };
  void loop();
  bool push(Op op);
  // Takes the next batch from the queue and runs it; lock is held on entry
  // and exit, released while the batch runs.
  void run_batch(std::unique_lock<std::mutex>& lock);

  const std::function<void(const caf::error&)> on_error_;
  static constexpr size_t batch_max = 256;        // writes per group commit
  static constexpr size_t group_commit_min = 16;  // fewer: an fsync each
  const size_t queue_max_;
  Disk& disk_;
  const bool inline_;
  bool draining_ = false;  // inline: an operation runs now (guarded by mu_)
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Op> queue_;                                    // guarded by mu_
  std::unordered_map<std::string, uint64_t> pending_file_;  // file -> seq of its queued write
  uint64_t next_seq_ = 1;                                   // guarded by mu_
  uint64_t done_seq_ = 0;                                   // every op <= it is done
  uint64_t refused_ = 0;                                    // guarded by mu_
  bool stopping_ = false;
  CheckpointLatency latency_;
  std::thread thread_;  // not started inline
};

}  // namespace tessera
