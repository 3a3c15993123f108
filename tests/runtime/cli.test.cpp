// The tessera command: a bad command line is one clear line and exit code 2.

#include "runtime/process_launcher.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace tessera;
using namespace tessera::testing;

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Run run_tessera(const std::vector<std::string>& args) {
  TempDir dir;
  ProcessLauncher launcher;
  ProcessSpec spec;
  spec.argv.push_back(TESSERA_BIN);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdout_path = (dir.path() / "out").string();
  spec.stderr_path = (dir.path() / "err").string();
  std::atomic<bool> done{false};
  Run run;
  auto pid = launcher.spawn(spec, [&](const ProcessExit& e) {
    run.exit_code = e.exit_code;
    done = true;
  });
  REQUIRE(pid);
  REQUIRE(wait_until([&] { return done.load(); }));
  run.out = read_file(dir.path() / "out");
  run.err = read_file(dir.path() / "err");
  return run;
}

}  // namespace

TEST_CASE("bad command lines give one clear line and exit code 2", "[cli]") {
  for (auto args : std::vector<std::vector<std::string>>{
           {},
           {"no-such-command"},
           {"bench"},
           {"bench", "runtime", "--runs", "0"},
           {"bench", "runtime", "--messages", "many"},
           {"--log-level", "loud", "bench", "runtime"},
       }) {
    INFO(args.size());
    auto run = run_tessera(args);
    CHECK(run.exit_code == 2);
    CHECK(run.err.rfind("tessera: ", 0) == 0);
    CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  }
}

TEST_CASE("--help prints usage and exits 0", "[cli]") {
  auto run = run_tessera({"--help"});
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("bench") != std::string::npos);
}
