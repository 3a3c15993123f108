#include "runtime/process_launcher.hpp"

#include <uv.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
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
  fd.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
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

uv_stdio_container_t stdio_for(int fd) {
  uv_stdio_container_t container{};
  // UV_IGNORE on fds 0-2 makes libuv open /dev/null in the child, which is
  // what an empty path (and stdin, always) asks for.
  container.flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE;
  container.data.fd = fd;
  return container;
}

// Everything uv_spawn reads, prepared on the caller's thread so the loop
// thread only forks. Holds pointers into itself: build in place, never move.
struct SpawnPlan {
  std::string what;  // "spawn <argv0>", the prefix of every error message
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> arg_ptrs;
  std::vector<char*> env_ptrs;
  UniqueFd out;
  UniqueFd err;
  uv_stdio_container_t stdio[3]{};
  uv_process_options_t options{};
  bool new_session = true;
};

caf::error open_outputs(const ProcessSpec& spec, SpawnPlan& plan) {
  if (auto err = open_output(spec.stdout_path, plan.what, "stdout", plan.out))
    return err;
  // Same file for both: share one fd (like 2>&1) so the two streams append
  // after each other instead of overwriting each other from offset 0.
  bool shared = !spec.stderr_path.empty() && spec.stderr_path == spec.stdout_path;
  if (!shared)
    if (auto err = open_output(spec.stderr_path, plan.what, "stderr", plan.err))
      return err;
  plan.stdio[0] = stdio_for(-1);
  plan.stdio[1] = stdio_for(plan.out.get());
  plan.stdio[2] = stdio_for(shared ? plan.out.get() : plan.err.get());
  return {};
}

caf::error make_plan(const ProcessSpec& spec, uv_exit_cb on_exit, SpawnPlan& plan) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return make_error(Errc::invalid_argument, "spawn: argv is empty");
  plan.what = "spawn " + spec.argv[0];
  auto env = build_env(spec);
  if (!env)
    return env.error();
  if (auto err = open_outputs(spec, plan))
    return err;
  plan.args = spec.argv;
  plan.env = std::move(*env);
  plan.arg_ptrs = c_strings(plan.args);
  plan.env_ptrs = c_strings(plan.env);
  plan.new_session = spec.new_session;
  auto& opt = plan.options;
  opt.exit_cb = on_exit;
  opt.file = plan.args[0].c_str();
  opt.args = plan.arg_ptrs.data();
  opt.env = plan.env_ptrs.data();
  opt.cwd = spec.working_dir.empty() ? nullptr : spec.working_dir.c_str();
  opt.stdio = plan.stdio;
  opt.stdio_count = 3;
  // DETACHED = setsid() in the child: it leads a new session and process
  // group, so kill(-pid) reaches everything it starts.
  opt.flags = spec.new_session ? UV_PROCESS_DETACHED : 0;
  return {};
}

}  // namespace

struct ProcessLauncher::Impl {
  struct Child {
    uv_process_t handle{};
    ExitCallback on_exit;
    bool new_session = true;
    Impl* owner = nullptr;
  };

  explicit Impl(size_t process_count_max);
  ~Impl();

  template <class F>
  auto call(F fn) -> decltype(fn());
  bool post(std::function<void()> task, bool internal);

  expected<int> spawn_on_loop(SpawnPlan& plan, ExitCallback on_exit);
  caf::error kill_on_loop(int pid, int signal, bool group);
  caf::error admit(const std::string& what) const;
  void begin_shutdown();
  void close_wakeup_if_done();
  void drain();
  void notify(Child& child, const ProcessExit& exit);

  static void on_wakeup(uv_async_t* handle);
  static void on_exit(uv_process_t* handle, int64_t exit_status, int term_signal);
  static void on_child_closed(uv_handle_t* handle);

  const size_t max_;
  uv_loop_t loop_{};
  uv_async_t wakeup_{};
  mutable std::mutex mu_;
  std::deque<std::function<void()>> queue_;   // guarded by mu_
  std::unordered_map<int, Child*> children_;  // written on the loop thread, under mu_
  bool stopping_ = false;                     // guarded by mu_
  bool wakeup_closed_ = false;                // guarded by mu_
  bool dispatching_exit_ = false;             // loop thread only
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
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
  }
  post([this] { begin_shutdown(); }, true);
  thread_.join();
  if (int rc = uv_loop_close(&loop_); rc != 0)
    std::fprintf(stderr, "tessera: process launcher: uv_loop_close: %s\n", uv_message(rc).c_str());
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
}

caf::error ProcessLauncher::Impl::admit(const std::string& what) const {
  std::lock_guard<std::mutex> guard(mu_);
  if (stopping_)
    return make_error(Errc::stopped, what + ": process launcher is shutting down");
  if (children_.size() >= max_)
    return make_error(Errc::spawn_failed,
                      what + ": process_count_max (" + std::to_string(max_) + ") reached");
  return {};
}

expected<int> ProcessLauncher::Impl::spawn_on_loop(SpawnPlan& plan, ExitCallback on_exit) {
  if (auto err = admit(plan.what))
    return err;
  auto* child = new Child{{}, std::move(on_exit), plan.new_session, this};
  child->handle.data = child;
  if (int rc = uv_spawn(&loop_, &child->handle, &plan.options); rc != 0) {
    // uv_spawn registers the handle with the loop even when it fails, so it
    // must be closed or uv_loop_close would report the loop busy.
    uv_close(reinterpret_cast<uv_handle_t*>(&child->handle), on_child_closed);
    std::string where = plan.options.cwd ? std::string(" (cwd ") + plan.options.cwd + ")" : "";
    return make_error(Errc::spawn_failed, plan.what + where + ": " + uv_message(rc));
  }
  std::lock_guard<std::mutex> guard(mu_);
  children_.emplace(child->handle.pid, child);
  return child->handle.pid;
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
  if (dispatching_exit_) {
    // libuv reaps a whole batch of children before it runs their exit
    // callbacks; pid may already be reaped (and reusable) while still in
    // children_. Re-check once the batch is done.
    post(
        [this, pid, signal, group] {
          if (children_.count(pid) != 0)
            kill_on_loop(pid, signal, group);
        },
        true);
    return {};
  }
  int target = group ? -pid : pid;
  if (::kill(target, signal) != 0)
    return make_os_error(errno,
                         "kill(" + std::to_string(target) + ", " + std::to_string(signal) + ")");
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
  if (!stopping_ || !children_.empty() || wakeup_closed_)
    return;
  wakeup_closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
}

void ProcessLauncher::Impl::on_exit(uv_process_t* handle, int64_t exit_status, int term_signal) {
  auto* child = static_cast<Child*>(handle->data);
  Impl& self = *child->owner;
  ProcessExit exit{handle->pid, term_signal != 0 ? -1 : static_cast<int>(exit_status), term_signal};
  {
    // Erased before the callback so that running() and kill() already treat
    // the process as gone when the callback looks.
    std::lock_guard<std::mutex> guard(self.mu_);
    self.children_.erase(exit.pid);
  }
  self.notify(*child, exit);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), on_child_closed);
  self.close_wakeup_if_done();
}

void ProcessLauncher::Impl::notify(Child& child, const ProcessExit& exit) {
  if (!child.on_exit)
    return;
  dispatching_exit_ = true;
  try {
    child.on_exit(exit);
  } catch (const std::exception& e) {
    // An exception must not unwind through libuv's C frames.
    std::fprintf(stderr, "tessera: process launcher: on_exit threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "tessera: process launcher: on_exit threw\n");
  }
  dispatching_exit_ = false;
}

void ProcessLauncher::Impl::on_child_closed(uv_handle_t* handle) {
  delete static_cast<Child*>(handle->data);
}

ProcessLauncher::ProcessLauncher(size_t process_count_max)
    : impl_(std::make_unique<Impl>(process_count_max)) {
}

ProcessLauncher::~ProcessLauncher() = default;

expected<int> ProcessLauncher::spawn(const ProcessSpec& spec, ExitCallback on_exit) {
  SpawnPlan plan;
  if (auto err = make_plan(spec, &Impl::on_exit, plan))
    return err;
  // The plan's files are closed when it goes out of scope, after the fork has
  // dup'ed them into the child.
  return impl_->call([&] { return impl_->spawn_on_loop(plan, std::move(on_exit)); });
}

caf::error ProcessLauncher::kill(int pid, int signal, bool group) {
  if (signal < 0 || signal > SIGRTMAX)
    return make_error(Errc::invalid_argument, "kill: no such signal " + std::to_string(signal));
  return impl_->call([&] { return impl_->kill_on_loop(pid, signal, group); });
}

size_t ProcessLauncher::running() const {
  std::lock_guard<std::mutex> guard(impl_->mu_);
  return impl_->children_.size();
}

}  // namespace tessera
