#pragma once
// `tessera cluster` as a child process of an end-to-end test: on 127.0.0.1,
// free ports, agents of cpus:2;mem:1024, 0.2 s allocation cycles; its
// master's actor address and HTTP address read from what it prints.

#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tessera::testing {

struct ClusterProcess {
  std::unique_ptr<ChildProcess> process;
  std::string master;  // HOST:PORT of the master actor, for `tessera run`
  std::string http;    // HOST:PORT of its HTTP edge
};

// The text after marker on line, up to end.
inline std::string text_after(const std::string& line, const std::string& marker, char end) {
  auto at = line.find(marker) + marker.size();
  return line.substr(at, line.find(end, at) - at);
}

// extra: more `tessera cluster` flags (e.g. --no-apps).
inline ClusterProcess start_cluster_process(const std::filesystem::path& work_dir, int agents,
                                            std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {TESSERA_BIN,
                                   "cluster",
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--http",
                                   "127.0.0.1:0",
                                   "--agents",
                                   std::to_string(agents),
                                   "--agent-resources",
                                   "cpus:2;mem:1024",
                                   "--allocation-interval",
                                   "0.2",
                                   "--work-dir",
                                   work_dir.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ClusterProcess c;
  c.process = ChildProcess::start(argv);
  auto line = c.process->wait_line("master at ");
  auto http = c.process->wait_line("http://");
  INFO(c.process->out() << c.process->err());
  REQUIRE(line);
  REQUIRE(http);
  c.master = text_after(*line, "master at ", ' ');
  c.http = text_after(*http, "http://", '/');
  return c;
}

// wait_until at a pace an HTTP API can take: every 50 ms.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        if (pred())
          return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return false;
      },
      timeout);
}

// A `tessera` command run to its end (at most 120 s): its exit code (-1:
// it did not end, or ended by a signal) and what it printed.
struct Outcome {
  int code = -1;
  std::string out, err;
};

inline Outcome cli(std::vector<std::string> args) {
  args.insert(args.begin(), TESSERA_BIN);
  auto p = ChildProcess::start(args);
  bool ended = p->wait_exit(std::chrono::seconds(120));
  return {ended && p->exit_status() ? p->exit_status()->exit_code : -1, p->out(), p->err()};
}

}  // namespace tessera::testing
