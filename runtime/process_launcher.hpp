#pragma once
// Starts and stops OS processes for actors. spawn() runs posix_spawn on the
// caller's thread (no fork: its cost does not grow with this process's
// memory); a libuv loop on a thread of its own watches each child through a
// pidfd and reaps it by pid, so several launchers in one process never take
// each other's children. Every libuv call happens on that thread.
//
// Thread-safety: every public member may be called from any thread.
// Ownership: the launcher owns its loop thread. Its destructor kills (SIGKILL)
// and reaps every child that is still running, so nothing it started outlives it.
// Callbacks: on_exit runs on the loop thread, exactly once per spawned process;
// it must not block (actors forward it as a message).

#include "runtime/error.hpp"
#include "runtime/os_user.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the program, searched in PATH
  std::vector<std::string> env;   // "KEY=VALUE" entries
  bool inherit_env = true;        // when true, env adds to/overrides the parent's
  std::string working_dir;        // empty: the launcher's own
  std::string stdout_path;        // empty: /dev/null; otherwise created/truncated
  std::string stderr_path;        // empty: /dev/null; a symlink at either path is refused
  bool new_session = true;        // setsid(), so kill_group reaches grandchildren
  // Container placement, done in the child before it execs, so that nothing
  // it runs ever escapes: it joins each of these cgroup directories (writes
  // itself into their cgroup.procs) ...
  std::vector<std::string> cgroups;
  // ... and, when set, becomes pid 1 of a new PID namespace with a private
  // mount namespace and its own /proc, so `ps` sees only its own processes
  // and its end kills every process in it.
  bool pid_namespace = false;
  // Set: the child runs as this user. After joining its cgroups and
  // namespaces (which need the launcher's privileges) it calls setgroups,
  // setgid and setuid, in that order, and only then opens its output files
  // (so they are the user's, and a symlink the user planted cannot make the
  // launcher write anywhere), enters working_dir and execs. Resolve it
  // beforehand (lookup_user): nothing is looked up in the child. A step
  // that fails fails the spawn (Errc::spawn_failed naming the step, the
  // user and the errno). Needs CAP_SETUID and CAP_SETGID (root).
  std::optional<UserIdentity> user;
};

struct ProcessExit {
  int pid = 0;
  int exit_code = -1;   // -1 when the process was ended by a signal
  int term_signal = 0;  // 0 when the process exited by itself
};

// When the process started, in clock ticks after boot (/proc/<pid>/stat
// field 22): with its pid, it names one process for as long as the machine
// runs, so a checkpointed pid can be told from a reuse of it.
expected<uint64_t> process_start_time(int pid);

class ProcessLauncher {
 public:
  using ExitCallback = std::function<void(const ProcessExit&)>;

  explicit ProcessLauncher(size_t process_count_max = 4096);
  ~ProcessLauncher();
  ProcessLauncher(const ProcessLauncher&) = delete;
  ProcessLauncher& operator=(const ProcessLauncher&) = delete;

  // Starts a process and returns its pid once it has been spawned. A missing
  // binary, a bad working directory or an unopenable output file is an error
  // value (Errc::spawn_failed with the cause), never a crash.
  expected<int> spawn(const ProcessSpec& spec, ExitCallback on_exit);

  // Watches a running process this launcher did not start (an agent's
  // executor from before the agent restarted), so that on_exit reports its
  // end and kill() reaches it (its process group too, when it leads one).
  // Not being its parent, the launcher cannot learn how it ended: the exit
  // says exit_code -1, term_signal 0. A pid that is gone: Errc::invalid_argument.
  // With start_time (process_start_time() as checkpointed), the pid is taken
  // only while it is still that process: a pid reused by another process
  // since is refused (Errc::invalid_argument), checked through its pidfd so
  // no reuse can slip in between. Signals to an adopted process go through
  // its pidfd (pidfd_send_signal), never to a pid that may be reused.
  expected<void> adopt(int pid, ExitCallback on_exit, uint64_t start_time = 0);

  // Stops watching a process without signalling it: it runs on after the
  // launcher ends, its on_exit never runs (an agent that stops and leaves
  // its executors running for its next start). Unknown pid: Errc::invalid_argument.
  caf::error release(int pid);

  // Sends signal to a process this launcher started; to the whole session /
  // process group when group is true. Unknown pid: Errc::invalid_argument.
  // Waits for the launcher's thread: not for an actor's thread (kill_async).
  caf::error kill(int pid, int signal, bool group = false);

  // kill() without waiting: the signal is sent on the launcher's thread, in
  // order with spawns, adoptions and other kills from this caller; done (if
  // given) runs there exactly once with the outcome, or at once on the
  // calling thread when the launcher is stopping (Errc::stopped) or the
  // signal does not exist. done must not block.
  void kill_async(int pid, int signal, bool group = false,
                  std::function<void(const caf::error&)> done = {});

  // Kills (SIGKILL) and reaps every child, then refuses further spawn() and
  // kill() with Errc::stopped. The destructor does the same; shutdown()
  // lets an owner end the children while keeping the object valid for
  // callers that may still hold it. Idempotent; not from an on_exit callback.
  void shutdown();

  // Processes started and not yet reaped.
  size_t running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera
