#include "runtime/process_launcher.hpp"

#include <uv.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

extern char** environ;

namespace tessera {
namespace {

// Owns one file descriptor so that every error path closes it.
class UniqueFd {
 public:
  UniqueFd() = default;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(other.fd_);
      other.fd_ = -1;
    }
    return *this;
  }
  ~UniqueFd() { reset(-1); }

  void reset(int fd) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// libuv error codes are negated errno values on Unix, so one formatter serves
// both: "no such file or directory (ENOENT)".
std::string uv_message(int uv_error) {
  return std::string(uv_strerror(uv_error)) + " (" + uv_err_name(uv_error) + ")";
}

std::string_view env_key(std::string_view entry) {
  return entry.substr(0, entry.find('='));
}

// The parent's environment (when inherited) with spec.env applied on top; a
// key given in spec.env replaces the inherited entry instead of duplicating it,
// because getenv() in the child would otherwise see whichever came first.
expected<std::vector<std::string>> build_env(const ProcessSpec& spec) {
  std::vector<std::string> out;
  std::unordered_map<std::string, size_t> slot_of_key;
  auto put = [&](std::string entry) {
    auto [it, fresh] = slot_of_key.try_emplace(std::string(env_key(entry)), out.size());
    if (fresh)
      out.push_back(std::move(entry));
    else
      out[it->second] = std::move(entry);
  };
  if (spec.inherit_env)
    for (char** entry = environ; *entry != nullptr; ++entry)
      put(*entry);
  for (const auto& entry : spec.env) {
    auto eq = entry.find('=');
    if (eq == 0 || eq == std::string::npos)
      return make_error(Errc::invalid_argument, "spawn: env entry is not KEY=VALUE: " + entry);
    put(entry);
  }
  return out;
}

// O_CLOEXEC: other children forked concurrently must not inherit this fd;
// libuv dup2()s it onto fd 1/2 of our own child, which clears the flag there.
caf::error open_output(const std::string& path, const std::string& what, const char* stream,
                       UniqueFd& fd) {
  if (path.empty())
    return {};
  fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (fd.get() < 0)
    return make_error(Errc::spawn_failed,
                      what + ": open " + stream + " " + path + ": " + uv_message(-errno));
  return {};
}

// A NULL-terminated char* array over strings that outlive it.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Everything posix_spawn reads, prepared on the caller's thread.
struct SpawnPlan {
  std::string what;  // "spawn <argv0>", the prefix of every error message
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> arg_ptrs;
  std::vector<char*> env_ptrs;
  UniqueFd out;
  UniqueFd err;
  bool shared_output = false;  // stderr goes where stdout goes
  std::string cwd;
  bool new_session = true;
  // Container placement (spawn_in_container): cgroup.procs files, opened
  // here so that the child only writes; and whether it gets a PID namespace.
  std::vector<UniqueFd> cgroup_procs;
  std::vector<std::string> cgroup_paths;
  bool pid_namespace = false;
  std::string program;  // argv[0] resolved against PATH, for execve
  // ProcessSpec::user: the child switches to it, then opens its outputs.
  bool switch_user = false;
  std::string user_name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string stdout_path;  // opened by the child when switch_user
  std::string stderr_path;
};

caf::error open_outputs(const ProcessSpec& spec, SpawnPlan& plan) {
  plan.shared_output = !spec.stderr_path.empty() && spec.stderr_path == spec.stdout_path;
  if (plan.switch_user) {
    // Opened by the child, as the user (container_child_main).
    plan.stdout_path = spec.stdout_path;
    plan.stderr_path = spec.stderr_path;
    return {};
  }
  if (auto err = open_output(spec.stdout_path, plan.what, "stdout", plan.out))
    return err;
  // Same file for both: share one fd (like 2>&1) so the two streams append
  // after each other instead of overwriting each other from offset 0.
  if (!plan.shared_output)
    if (auto err = open_output(spec.stderr_path, plan.what, "stderr", plan.err))
      return err;
  return {};
}

caf::error make_plan(const ProcessSpec& spec, SpawnPlan& plan) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return make_error(Errc::invalid_argument, "spawn: argv is empty");
  plan.what = "spawn " + spec.argv[0];
  auto env = build_env(spec);
  if (!env)
    return env.error();
  if (spec.user) {
    plan.switch_user = true;
    plan.user_name = spec.user->name;
    plan.uid = static_cast<uid_t>(spec.user->uid);
    plan.gid = static_cast<gid_t>(spec.user->gid);
    plan.groups.assign(spec.user->groups.begin(), spec.user->groups.end());
  }
  if (auto err = open_outputs(spec, plan))
    return err;
  plan.args = spec.argv;
  plan.env = std::move(*env);
  plan.arg_ptrs = c_strings(plan.args);
  plan.env_ptrs = c_strings(plan.env);
  plan.cwd = spec.working_dir;
  plan.new_session = spec.new_session;
  plan.pid_namespace = spec.pid_namespace;
  for (const auto& dir : spec.cgroups) {
    auto path = dir + "/cgroup.procs";
    UniqueFd fd;
    fd.reset(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0)
      return make_error(Errc::spawn_failed,
                        plan.what + ": open " + path + ": " + uv_message(-errno));
    plan.cgroup_procs.push_back(std::move(fd));
    plan.cgroup_paths.push_back(path);
  }
  return {};
}

// What posix_spawn cannot do: join cgroups, make namespaces, switch users
// (glibc's POSIX_SPAWN_RESETIDS only drops to the real ids).
bool in_container(const SpawnPlan& plan) {
  return plan.pid_namespace || !plan.cgroup_procs.empty() || plan.switch_user;
}

// argv[0] as execvp would find it, resolved before the child exists so that
// the child only calls execve.
std::string resolve_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos)
    return name;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0)
      path = e.substr(5);
  size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find(':', start);
    if (end == std::string::npos)
      end = path.size();
    auto dir = path.substr(start, end - start);
    auto candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return name;  // execve fails with ENOENT, reported as such
}

// Frees posix_spawn's attribute and file-action objects on every path.
struct SpawnAttrs {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnAttrs() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttrs(const SpawnAttrs&) = delete;
  SpawnAttrs& operator=(const SpawnAttrs&) = delete;
};

// posix_spawn, not fork: glibc starts the child with clone(CLONE_VM |
// CLONE_VFORK), so the cost does not grow with this process's memory (a
// fork copies every page table, which made launching tasks from a busy
// agent cost milliseconds each). The child gets default signal handlers and
// an empty signal mask whatever the parent blocks; stdin is /dev/null.
expected<int> spawn_now(SpawnPlan& plan) {
  SpawnAttrs a;
  auto output = [&](int target, int fd) {
    return fd >= 0 ? posix_spawn_file_actions_adddup2(&a.actions, fd, target)
                   : posix_spawn_file_actions_addopen(&a.actions, target, "/dev/null", O_WRONLY, 0);
  };
  int rc = posix_spawn_file_actions_addopen(&a.actions, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0)
    rc = output(1, plan.out.get());
  if (rc == 0)
    rc = output(2, plan.shared_output ? plan.out.get() : plan.err.get());
  if (rc == 0 && !plan.cwd.empty())
    rc = posix_spawn_file_actions_addchdir_np(&a.actions, plan.cwd.c_str());
  sigset_t none, all;
  sigemptyset(&none);
  sigemptyset(&all);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaddset(&all, sig);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  // SETSID: the child leads a new session and process group, so kill(-pid)
  // reaches everything it starts.
  if (plan.new_session)
    flags |= POSIX_SPAWN_SETSID;
  if (rc == 0)
    rc = posix_spawnattr_setsigmask(&a.attr, &none);
  if (rc == 0)
    rc = posix_spawnattr_setsigdefault(&a.attr, &all);
  if (rc == 0)
    rc = posix_spawnattr_setflags(&a.attr, flags);
  pid_t pid = 0;
  if (rc == 0)
    rc = posix_spawnp(&pid, plan.args[0].c_str(), &a.actions, &a.attr, plan.arg_ptrs.data(),
                      plan.env_ptrs.data());
  if (rc != 0) {
    std::string where = plan.cwd.empty() ? "" : " (cwd " + plan.cwd + ")";
    return make_error(Errc::spawn_failed, plan.what + where + ": " + uv_message(-rc));
  }
  return static_cast<int>(pid);
}

// The child's side of spawn_in_container. It shares the parent's memory
// (CLONE_VM) while the parent waits (CLONE_VFORK), so it only makes system
// calls on data prepared beforehand, and reports a failure through the plan.
struct ContainerChild {
  SpawnPlan* plan;
  int failed_errno = 0;
  const char* failed_step = nullptr;
};

int container_child_main(void* arg) {
  auto* c = static_cast<ContainerChild*>(arg);
  auto& plan = *c->plan;
  auto fail = [c](const char* step) {
    c->failed_errno = errno;
    c->failed_step = step;
    _exit(127);
  };
  // Signals first: the parent's handlers must never run on this stack.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP)
      ::sigaction(sig, &dfl, nullptr);
  // Into the cgroups before anything else runs, so nothing escapes them.
  for (auto& fd : plan.cgroup_procs)
    if (::write(fd.get(), "0", 1) != 1)
      fail("join cgroup");
  if (plan.pid_namespace) {
    // Its own mounts, and a /proc that shows only its own namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      fail("make mounts private");
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      fail("mount /proc");
  }
  if (plan.new_session && ::setsid() < 0)
    fail("setsid");
  int null_in = ::open("/dev/null", O_RDONLY);
  if (null_in < 0 || ::dup2(null_in, 0) < 0)
    fail("open stdin");
  auto output = [&](int target, int fd) {
    int src = fd >= 0 ? fd : ::open("/dev/null", O_WRONLY);
    if (src < 0 || ::dup2(src, target) < 0)
      fail("redirect output");
  };
  if (plan.switch_user) {
    // Raw system calls: glibc's wrappers would signal every thread of the
    // parent, whose memory this child shares, to change their ids too
    // (POSIX's process-wide credentials, nptl's setxid broadcast). Groups
    // first: after setgid/setuid the child may no longer change them.
    if (::syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0)
      fail("setgroups");
    if (::syscall(SYS_setgid, plan.gid) != 0)
      fail("setgid");
    if (::syscall(SYS_setuid, plan.uid) != 0)
      fail("setuid");
    // The outputs, as the user: a file it may not write, or a symlink in
    // their place, fails the spawn instead of writing as the launcher.
    auto open_as_user = [&](const std::string& path, const char* step) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0)
        fail(step);
      return fd;
    };
    int out = plan.stdout_path.empty() ? -1 : open_as_user(plan.stdout_path, "open stdout");
    int err = plan.shared_output
                  ? out
                  : (plan.stderr_path.empty() ? -1 : open_as_user(plan.stderr_path, "open stderr"));
    output(1, out);
    output(2, err);
  } else {
    output(1, plan.out.get());
    output(2, plan.shared_output ? plan.out.get() : plan.err.get());
  }
  if (!plan.cwd.empty() && ::chdir(plan.cwd.c_str()) != 0)
    fail("chdir");
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.program.c_str(), plan.arg_ptrs.data(), plan.env_ptrs.data());
  fail("execve");
  return 127;
}

// clone() instead of posix_spawn, for placement posix_spawn cannot do: the
// child joins its cgroups and (optionally) starts a PID and mount namespace
// before it execs. CLONE_VM | CLONE_VFORK keeps the cost of posix_spawn:
// no page tables are copied.
expected<int> spawn_in_container(SpawnPlan& plan) {
  plan.program = resolve_program(plan.args[0], plan.env);
  constexpr size_t stack_bytes = 64 * 1024;
  std::vector<char> stack(stack_bytes);
  ContainerChild child{&plan};
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  if (plan.pid_namespace)
    flags |= CLONE_NEWPID | CLONE_NEWNS;
  // Blocked while the child runs on our memory: none of our handlers may run
  // there before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int pid = ::clone(container_child_main, stack.data() + stack.size(), flags, &child);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0)
    return make_error(Errc::spawn_failed, plan.what + ": clone: " + uv_message(-clone_errno));
  if (child.failed_step != nullptr) {
    ::waitpid(pid, nullptr, 0);
    std::string step = child.failed_step;
    if (step == "join cgroup" && !plan.cgroup_paths.empty())
      step += " (" + plan.cgroup_paths.front() + ")";
    if (plan.switch_user) {
      if (step == "open stdout")
        step += " " + plan.stdout_path;
      else if (step == "open stderr")
        step += " " + plan.stderr_path;
      else if (step == "chdir")
        step += " " + plan.cwd;
      step += " (as user " + plan.user_name + ", uid " + std::to_string(plan.uid) + ")";
    }
    return make_error(Errc::spawn_failed,
                      plan.what + ": " + step + ": " + uv_message(-child.failed_errno));
  }
  return pid;
}

}  // namespace

struct ProcessLauncher::Impl {
  // A running child, watched through a pidfd: it turns readable when the
  // child exits, so each child is reaped on its own (waitpid on its pid),
  // never by a waitpid(-1) that could take another launcher's child.
  struct Child {
    uv_poll_t poll{};
    int pid = 0;
    int pidfd = -1;
    ExitCallback on_exit;
    bool new_session = true;
    Impl* owner = nullptr;
    std::optional<ProcessExit> exit;  // set once reaped
    bool adopted = false;             // not our child: never waitpid()ed
  };

  explicit Impl(size_t process_count_max);
  ~Impl();

  template <class F>
  auto call(F fn) -> decltype(fn());
  bool post(std::function<void()> task, bool internal);

  void watch_on_loop(int pid, int pidfd, ExitCallback on_exit, bool new_session,
                     bool adopted = false);
  void reap(Child& child);
  caf::error kill_on_loop(int pid, int signal, bool group);
  caf::error release_on_loop(int pid);
  caf::error admit(const std::string& what) const;
  void shutdown();
  void begin_shutdown();
  void close_wakeup_if_done();
  void drain();
  void notify(Child& child, const ProcessExit& exit);

  static void on_wakeup(uv_async_t* handle);
  static void on_pidfd(uv_poll_t* handle, int status, int events);
  static void on_child_closed(uv_handle_t* handle);

  const size_t max_;
  uv_loop_t loop_{};
  uv_async_t wakeup_{};
  mutable std::mutex mu_;
  std::deque<std::function<void()>> queue_;   // guarded by mu_
  std::unordered_map<int, Child*> children_;  // written on the loop thread, under mu_
  std::atomic<size_t> live_{0};               // spawned and not yet reaped
  bool stopping_ = false;                     // guarded by mu_
  bool wakeup_closed_ = false;                // guarded by mu_
  std::thread thread_;
};

ProcessLauncher::Impl::Impl(size_t process_count_max) : max_(process_count_max) {
  if (int rc = uv_loop_init(&loop_); rc != 0)
    throw std::runtime_error("uv_loop_init: " + uv_message(rc));
  if (int rc = uv_async_init(&loop_, &wakeup_, on_wakeup); rc != 0) {
    uv_loop_close(&loop_);
    throw std::runtime_error("uv_async_init: " + uv_message(rc));
  }
  wakeup_.data = this;
  try {
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  } catch (...) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    throw;
  }
}

// The loop only returns from uv_run once every child has been reaped and every
// handle closed, so joining the thread is the wait for the children.
ProcessLauncher::Impl::~Impl() {
  shutdown();
  if (int rc = uv_loop_close(&loop_); rc != 0)
    std::fprintf(stderr, "tessera: process launcher: uv_loop_close: %s\n", uv_message(rc).c_str());
}

// Idempotent; call it from outside the loop thread (not from an on_exit).
void ProcessLauncher::Impl::shutdown() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (stopping_)
      return;
    stopping_ = true;
  }
  post([this] { begin_shutdown(); }, true);
  thread_.join();
}

// Runs fn on the loop thread and returns its result to the calling thread.
template <class F>
auto ProcessLauncher::Impl::call(F fn) -> decltype(fn()) {
  // Called from an on_exit callback: we are the loop, waiting would deadlock.
  if (std::this_thread::get_id() == thread_.get_id())
    return fn();
  auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
  auto result = task->get_future();
  if (!post([task] { (*task)(); }, false))
    return make_error(Errc::stopped, "process launcher is shutting down");
  return result.get();
}

// Queues task for the loop thread. Callers' work is refused once the
// destructor has begun; internal work (shutdown, deferred kills) only once the
// loop has stopped listening. Checked and queued under one lock so that no
// task can slip in behind the shutdown and wait forever.
bool ProcessLauncher::Impl::post(std::function<void()> task, bool internal) {
  std::lock_guard<std::mutex> guard(mu_);
  if (wakeup_closed_ || (stopping_ && !internal))
    return false;
  queue_.push_back(std::move(task));
  // Sent under mu_ so that it cannot race uv_close of the handle.
  uv_async_send(&wakeup_);
  return true;
}

void ProcessLauncher::Impl::on_wakeup(uv_async_t* handle) {
  static_cast<Impl*>(handle->data)->drain();
}

void ProcessLauncher::Impl::drain() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> guard(mu_);
    batch.swap(queue_);
  }
  for (auto& task : batch)
    task();
  close_wakeup_if_done();
}

caf::error ProcessLauncher::Impl::admit(const std::string& what) const {
  std::lock_guard<std::mutex> guard(mu_);
  if (stopping_)
    return make_error(Errc::stopped, what + ": process launcher is shutting down");
  if (live_.load() >= max_)
    return make_error(Errc::spawn_failed,
                      what + ": process_count_max (" + std::to_string(max_) + ") reached");
  return {};
}

void ProcessLauncher::Impl::watch_on_loop(int pid, int pidfd, ExitCallback on_exit,
                                          bool new_session, bool adopted) {
  auto* child =
      new Child{{}, pid, pidfd, std::move(on_exit), new_session, this, std::nullopt, adopted};
  child->poll.data = child;
  {
    std::lock_guard<std::mutex> guard(mu_);
    children_.emplace(pid, child);
    // Spawned while the launcher began to stop, after its kill sweep: it
    // must not outlive the launcher either.
    if (stopping_) {
      ::kill(pid, SIGKILL);
      if (new_session)
        ::kill(-pid, SIGKILL);
    }
  }
  if (int rc = uv_poll_init(&loop_, &child->poll, pidfd); rc != 0) {
    // Cannot watch it (no handle to close either): wait for it here rather
    // than lose its exit.
    std::fprintf(stderr, "tessera: process launcher: watching pid %d: %s\n", pid,
                 uv_message(rc).c_str());
    ::kill(pid, SIGKILL);
    if (!adopted)
      ::waitpid(pid, nullptr, 0);
    {
      std::lock_guard<std::mutex> guard(mu_);
      children_.erase(pid);
    }
    live_.fetch_sub(1);
    ::close(pidfd);
    notify(*child, ProcessExit{pid, -1, SIGKILL});
    delete child;
    close_wakeup_if_done();
    return;
  }
  if (int rc = uv_poll_start(&child->poll, UV_READABLE, on_pidfd); rc != 0) {
    std::fprintf(stderr, "tessera: process launcher: watching pid %d: %s\n", pid,
                 uv_message(rc).c_str());
    if (adopted)
      ::kill(pid, SIGKILL);  // cannot wait for it: end it rather than lose its exit
    reap(*child);            // not active: reap() waits for it
  }
}

void ProcessLauncher::Impl::on_pidfd(uv_poll_t* handle, int, int) {
  auto* child = static_cast<Child*>(handle->data);
  child->owner->reap(*child);
}

void ProcessLauncher::Impl::reap(Child& child) {
  int status = 0;
  // An adopted process is not our child: its pidfd turning readable is the
  // news that it ended (how, only its parent learns), and its pid is never
  // waited for, which could take a child of ours that reused it.
  pid_t r =
      child.adopted
          ? 0
          : ::waitpid(child.pid, &status,
                      uv_is_active(reinterpret_cast<uv_handle_t*>(&child.poll)) ? WNOHANG : 0);
  if (r == 0 && !child.adopted)
    return;  // not yet (a spurious wake-up)
  ProcessExit exit{child.pid, -1, 0};
  if (r == child.pid && WIFEXITED(status))
    exit.exit_code = WEXITSTATUS(status);
  else if (r == child.pid && WIFSIGNALED(status))
    exit.term_signal = WTERMSIG(status);
  {
    // Erased before the callback so that running() and kill() already treat
    // the process as gone when the callback looks.
    std::lock_guard<std::mutex> guard(mu_);
    children_.erase(child.pid);
  }
  live_.fetch_sub(1);
  // The exit is reported once the pidfd is closed (on_child_closed), so a
  // caller that hears of it finds no descriptor of the child left open.
  child.exit = exit;
  uv_close(reinterpret_cast<uv_handle_t*>(&child.poll), on_child_closed);
  close_wakeup_if_done();
}

caf::error ProcessLauncher::Impl::kill_on_loop(int pid, int signal, bool group) {
  // Only the loop thread writes children_, so it may read without mu_.
  auto it = children_.find(pid);
  if (it == children_.end())
    return make_error(Errc::invalid_argument,
                      "kill " + std::to_string(pid) + ": not a running process of this launcher");
  if (group && !it->second->new_session)
    return make_error(Errc::invalid_argument,
                      "kill " + std::to_string(pid) + ": group kill needs new_session");
  // An adopted process is not our child: nothing holds its pid once it
  // exits, so it is signalled through its pidfd, and its group only while
  // the pidfd shows it alive (a group id is not reused while the group
  // lives).
  if (it->second->adopted) {
    int pidfd = it->second->pidfd;
    if (::syscall(SYS_pidfd_send_signal, pidfd, group ? 0 : signal, nullptr, 0) != 0)
      return make_os_error(errno, "pidfd_send_signal(" + std::to_string(pid) + ", " +
                                      std::to_string(group ? 0 : signal) + ")");
    if (!group)
      return {};
  }
  // Each child is reaped right before its own exit callback and erased from
  // children_ first, so a pid found here is not yet reaped and cannot have
  // been reused.
  int target = group ? -pid : pid;
  if (::kill(target, signal) != 0)
    return make_os_error(errno,
                         "kill(" + std::to_string(target) + ", " + std::to_string(signal) + ")");
  return {};
}

caf::error ProcessLauncher::Impl::release_on_loop(int pid) {
  auto it = children_.find(pid);
  if (it == children_.end())
    return make_error(Errc::invalid_argument, "release " + std::to_string(pid) +
                                                  ": not a running process of this launcher");
  Child* child = it->second;
  {
    std::lock_guard<std::mutex> guard(mu_);
    children_.erase(it);
  }
  live_.fetch_sub(1);
  child->on_exit = nullptr;  // on_child_closed then only frees it
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&child->poll)))
    uv_poll_stop(&child->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&child->poll), on_child_closed);
  close_wakeup_if_done();
  return {};
}

void ProcessLauncher::Impl::begin_shutdown() {
  for (auto& [pid, child] : children_) {
    ::kill(pid, SIGKILL);  // the child itself, even if it left its group
    if (child->new_session)
      ::kill(-pid, SIGKILL);  // and whatever it started
  }
  close_wakeup_if_done();
}

// Once shutting down and the last child is reaped, closing the wakeup handle
// leaves the loop with nothing alive, so uv_run returns and the thread ends.
void ProcessLauncher::Impl::close_wakeup_if_done() {
  std::lock_guard<std::mutex> guard(mu_);
  // Not while work is queued: a caller may be waiting for it (call()), and a
  // closed wakeup would leave it waiting for ever.
  if (!stopping_ || !children_.empty() || wakeup_closed_ || !queue_.empty())
    return;
  wakeup_closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
}

void ProcessLauncher::Impl::notify(Child& child, const ProcessExit& exit) {
  if (!child.on_exit)
    return;
  try {
    child.on_exit(exit);
  } catch (const std::exception& e) {
    // An exception must not unwind through libuv's C frames.
    std::fprintf(stderr, "tessera: process launcher: on_exit threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "tessera: process launcher: on_exit threw\n");
  }
}

void ProcessLauncher::Impl::on_child_closed(uv_handle_t* handle) {
  auto* child = static_cast<Child*>(handle->data);
  ::close(child->pidfd);
  if (child->exit)
    child->owner->notify(*child, *child->exit);
  delete child;
}

ProcessLauncher::ProcessLauncher(size_t process_count_max)
    : impl_(std::make_unique<Impl>(process_count_max)) {
}

ProcessLauncher::~ProcessLauncher() = default;

void ProcessLauncher::shutdown() {
  impl_->shutdown();
}

expected<int> ProcessLauncher::spawn(const ProcessSpec& spec, ExitCallback on_exit) {
  SpawnPlan plan;
  if (auto err = make_plan(spec, plan))
    return err;
  if (auto err = impl_->admit(plan.what))
    return err;
  // Spawned on the caller's thread (posix_spawn is thread-safe), so actors
  // launching at once do not queue behind each other; the loop thread only
  // watches. The plan's files close when it goes out of scope, after the
  // child has its own copies.
  impl_->live_.fetch_add(1);
  auto pid = in_container(plan) ? spawn_in_container(plan) : spawn_now(plan);
  if (!pid) {
    impl_->live_.fetch_sub(1);
    return pid.error();
  }
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0));
  if (pidfd < 0) {
    auto err = make_os_error(errno, plan.what + ": pidfd_open");
    ::kill(*pid, SIGKILL);
    ::waitpid(*pid, nullptr, 0);
    impl_->live_.fetch_sub(1);
    return err;
  }
  // Queued before spawn() returns, so a kill() of this pid (queued after)
  // finds it registered.
  auto* impl = impl_.get();
  bool queued = impl->post(
      [impl, pid = *pid, pidfd, on_exit = std::move(on_exit),
       session = plan.new_session]() mutable {
        impl->watch_on_loop(pid, pidfd, std::move(on_exit), session);
      },
      true);
  if (!queued) {
    // The launcher stopped meanwhile: its children die with it.
    ::kill(*pid, SIGKILL);
    ::waitpid(*pid, nullptr, 0);
    ::close(pidfd);
    impl_->live_.fetch_sub(1);
    return make_error(Errc::stopped, plan.what + ": process launcher is shutting down");
  }
  return *pid;
}

expected<uint64_t> process_start_time(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (!f)
    return errno == ENOENT ? make_error(Errc::invalid_argument, path + ": no such process")
                           : make_os_error(errno, "open " + path);
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string_view stat(buf, n);
  // The command name (field 2) may hold spaces and parentheses: the fields
  // after it start past its last ')'. Field 3 is the first of them.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos)
    return make_error(Errc::malformed, path + ": no command name");
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3; field < 22; ++field) {
    auto space = rest.find(' ', 1);
    if (space == std::string_view::npos)
      return make_error(Errc::malformed, path + ": fewer than 22 fields");
    rest = rest.substr(space);
  }
  uint64_t ticks = 0;
  size_t i = 1;
  for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i)
    ticks = ticks * 10 + static_cast<uint64_t>(rest[i] - '0');
  if (i == 1)
    return make_error(Errc::malformed, path + ": field 22 is not a number");
  return ticks;
}

expected<void> ProcessLauncher::adopt(int pid, ExitCallback on_exit, uint64_t start_time) {
  std::string what = "adopt " + std::to_string(pid);
  if (pid <= 0)
    return make_error(Errc::invalid_argument, what + ": not a pid");
  if (auto err = impl_->admit(what))
    return err;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0)
    return errno == ESRCH ? make_error(Errc::invalid_argument, what + ": no such process")
                          : make_os_error(errno, what + ": pidfd_open");
  if (start_time != 0) {
    // The pidfd names whatever process had pid when it was opened; the start
    // time read after it, and the pidfd still alive after that, say that
    // process is the one that started at start_time.
    auto started = process_start_time(pid);
    bool same = started && *started == start_time &&
                ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0;
    if (!same) {
      ::close(pidfd);
      return make_error(Errc::invalid_argument,
                        what + ": " +
                            (started ? "started at " + std::to_string(*started) + ", not at " +
                                           std::to_string(start_time) + ": the pid was reused"
                                     : tessera::what(started.error())));
    }
  }
  impl_->live_.fetch_add(1);
  auto* impl = impl_.get();
  bool leads_group = ::getpgid(pid) == pid;
  bool queued = impl->post(
      [impl, pid, pidfd, on_exit = std::move(on_exit), leads_group]() mutable {
        impl->watch_on_loop(pid, pidfd, std::move(on_exit), leads_group, true);
      },
      true);
  if (!queued) {
    ::close(pidfd);
    impl_->live_.fetch_sub(1);
    return make_error(Errc::stopped, what + ": process launcher is shutting down");
  }
  return caf::unit;
}

caf::error ProcessLauncher::kill(int pid, int signal, bool group) {
  if (signal < 0 || signal > SIGRTMAX)
    return make_error(Errc::invalid_argument, "kill: no such signal " + std::to_string(signal));
  return impl_->call([&] { return impl_->kill_on_loop(pid, signal, group); });
}

caf::error ProcessLauncher::release(int pid) {
  return impl_->call([&] { return impl_->release_on_loop(pid); });
}

void ProcessLauncher::kill_async(int pid, int signal, bool group,
                                 std::function<void(const caf::error&)> done) {
  auto report = [&done](const caf::error& err) {
    if (done)
      done(err);
  };
  if (signal < 0 || signal > SIGRTMAX) {
    report(make_error(Errc::invalid_argument, "kill: no such signal " + std::to_string(signal)));
    return;
  }
  auto* impl = impl_.get();
  auto shared = std::make_shared<std::function<void(const caf::error&)>>(std::move(done));
  bool queued = impl->post(
      [impl, pid, signal, group, shared] {
        auto err = impl->kill_on_loop(pid, signal, group);
        if (*shared)
          (*shared)(err);
      },
      false);
  if (!queued && *shared)
    (*shared)(make_error(Errc::stopped, "kill: process launcher is shutting down"));
}

size_t ProcessLauncher::running() const {
  return impl_->live_.load();
}

}  // namespace tessera
