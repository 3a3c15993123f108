#pragma once
// Helpers the runtime tests share: bounded waiting, temporary directories, and
// peer processes that are started by the test and stopped by pid.

#include "runtime/process_launcher.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tessera::testing {

// Polls pred every millisecond until it holds or timeout passes.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& p);

// A tessera_test_peer process. The destructor kills it (SIGKILL, by pid) and
// waits for its exit, so a failing test leaves nothing behind.
class PeerProcess {
 public:
  // Starts the peer with args and waits until it prints "READY <port>".
  static std::unique_ptr<PeerProcess> start(const std::vector<std::string>& args);
  ~PeerProcess();

  uint16_t port() const { return port_; }
  int pid() const { return pid_; }
  void kill(int sig);
  bool wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::optional<ProcessExit> exit_status() const;
  std::string output() const;

 private:
  PeerProcess() = default;
  TempDir dir_;
  ProcessLauncher launcher_;
  int pid_ = 0;
  uint16_t port_ = 0;
  std::shared_ptr<std::atomic<bool>> exited_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<ProcessExit> status_ = std::make_shared<ProcessExit>();
};

// Sends SIGKILL to every process whose working directory lies under dir (by
// pid, from /proc): what a crashed agent left running in its sandboxes.
// Returns how many it signalled.
size_t kill_processes_under(const std::filesystem::path& dir);

// Any program as a child of the test: stdout and stderr go to files, and the
// destructor kills it (SIGKILL, by pid) and reaps it unless it has exited.
class ChildProcess {
 public:
  static std::unique_ptr<ChildProcess> start(std::vector<std::string> argv,
                                             std::vector<std::string> env = {});
  ~ChildProcess();
  int pid() const { return pid_; }
  void kill(int sig);
  // Waits for a whole line of stdout that contains text; returns it.
  std::optional<std::string> wait_line(
      const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::optional<ProcessExit> exit_status() const;
  std::string out() const;
  std::string err() const;

 private:
  ChildProcess() = default;
  TempDir dir_;
  ProcessLauncher launcher_;
  int pid_ = 0;
  std::shared_ptr<std::atomic<bool>> exited_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<ProcessExit> status_ = std::make_shared<ProcessExit>();
};

// ZooKeeper servers on 127.0.0.1 for one test (tools/zk.sh: one, or an
// ensemble of three), on free ports; the destructor stops them by pid.
class ZkServers {
 public:
  explicit ZkServers(int servers);
  ~ZkServers();
  ZkServers(const ZkServers&) = delete;
  ZkServers& operator=(const ZkServers&) = delete;
  // SIGKILL of server i (1-based).
  void kill(int server);

  std::string spec;  // zk://127.0.0.1:P,.../tessera; empty when they did not start
  std::string why;   // what tools/zk.sh said when they did not

 private:
  TempDir dir_;
};

}  // namespace tessera::testing
