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

}  // namespace tessera::testing
