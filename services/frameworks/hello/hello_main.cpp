// tessera-hello: the guide's example framework as a program of its own.
//
//   tessera-hello --master 127.0.0.1:5050 [--tasks 3] [--log-level info]
//
// Prints each task's stdout and exits 0 when every task finished.

#include "runtime/log.hpp"
#include "services/frameworks/hello/hello_framework.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <future>

using namespace tessera;

int main(int argc, char** argv) {
  CLI::App app{"tessera-hello: runs `echo hello $i` tasks on a Tessera cluster"};
  std::string master = "127.0.0.1:5050";
  HelloOptions options;
  app.add_option("--master", master, "The master, HOST:PORT or master@HOST:PORT");
  app.add_option("--tasks", options.tasks, "How many tasks")->check(CLI::Range(1, 10000));
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  CLI11_PARSE(app, argc, argv);
  set_log_level(log_level);

  auto address =
      Address::parse(master.find('@') == std::string::npos ? "master@" + master : master);
  if (!address) {
    std::fprintf(stderr, "tessera-hello: bad --master: %s\n", describe(address.error()).c_str());
    return 2;
  }
  // The framework's own node; the master reaches it through the connection
  // the framework opens, so any free port will do.
  auto node = Node::start();
  if (!node) {
    std::fprintf(stderr, "tessera-hello: %s\n", describe(node.error()).c_str());
    return 2;
  }
  SchedulerConfig config;
  config.master = *address;
  config.framework.name = "hello";

  std::promise<HelloResult> result;
  auto done = [&](const HelloResult& r) { result.set_value(r); };
  if (auto spawned = (*node)->spawn<HelloFramework>("hello", config, options, done); !spawned) {
    std::fprintf(stderr, "tessera-hello: %s\n", describe(spawned.error()).c_str());
    return 2;
  }
  auto r = result.get_future().get();
  for (const auto& [task, out] : r.outputs)
    std::printf("%s: %s", task.c_str(), out.c_str());
  if (!r.error.empty())
    std::fprintf(stderr, "tessera-hello: %s\n", r.error.c_str());
  std::printf("%u finished, %u failed\n", r.finished, r.failed);
  return r.failed == 0 && r.error.empty() ? 0 : 1;
}
