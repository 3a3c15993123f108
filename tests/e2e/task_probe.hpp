#pragma once
// What the end-to-end tests ask of a task's real process: its pid (the task
// writes it to "pid" in its sandbox) and whether that process still lives.

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

namespace tessera::testing {

// The pid a task wrote to "pid" in its sandbox (found under root), or 0.
inline int task_pid(const std::filesystem::path& root, const std::string& task) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec)
      break;
    auto p = it->path();
    if (p.filename() == "pid" && p.string().find("/executors/" + task + "/") != std::string::npos) {
      std::ifstream in(p);
      int pid = 0;
      in >> pid;
      return pid;
    }
  }
  return 0;
}

inline bool alive(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH);
}

}  // namespace tessera::testing
