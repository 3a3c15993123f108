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
// With a netns, they run inside that network namespace, listening on host
// (a NetnsLab host's address).
class ZkServers {
 public:
  explicit ZkServers(int servers, const std::string& host = "", const std::string& netns = "");
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

// Hosts in network namespaces for one test (tools/netns.sh): hosts 1..n
// (namespaces PREFIX-h1...) on one bridge, and this process's namespace on
// it too (address .254), so the test talks to every host. cut/heal take a
// host off the bridge and back; block/unblock partition two hosts only.
// The destructor removes every namespace and interface (and kills, by pid,
// what still runs inside).
class NetnsLab {
 public:
  explicit NetnsLab(int hosts);
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  bool up() const { return !prefix_.empty(); }
  std::string netns(int host) const { return prefix_ + "-h" + std::to_string(host); }
  std::string addr(int host) const { return subnet_ + "." + std::to_string(host); }
  std::string root_addr() const { return subnet_ + ".254"; }
  void cut(int host);
  void heal(int host);
  void block(int a, int b);
  void unblock(int a, int b);

  std::string why;  // what tools/netns.sh said when it could not build the lab

 private:
  std::string prefix_;
  std::string subnet_;
};

}  // namespace tessera::testing
