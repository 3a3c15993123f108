// Isolators against the real kernel: cgroups on this machine when it lets us
// make them (otherwise the test says why and skips), posix everywhere. Every
// container a test makes, it destroys; every scope, it releases.

#include "runtime/process_launcher.hpp"
#include "services/agent/isolator.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

std::string unique_scope() {
  static std::atomic<int> n{0};
  return "test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// An isolator of one kind under a scope of this test's own; released at the end.
struct TestIsolator {
  std::unique_ptr<Isolator> isolator;
  std::string why_not;

  explicit TestIsolator(const std::string& kind) {
    IsolationConfig c;
    c.kind = kind;
    c.scope = unique_scope();
    c.cgroups_root = "tessera-test";
    auto made = make_isolator(c, nullptr);
    if (made)
      isolator = std::move(*made);
    else
      why_not = describe(made.error());
  }
  ~TestIsolator() {
    if (!isolator)
      return;
    for (const auto& id : isolator->containers())
      isolator->destroy(id);
    isolator->release();
  }
};

ProcessSpec in(const Placement& p, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.cgroups = p.cgroups;
  spec.env = p.env;
  return spec;
}

std::string file_of(const Placement& p, const std::string& hierarchy, const std::string& name) {
  for (const auto& dir : p.cgroups)
    if (dir.find("/" + hierarchy + "/") != std::string::npos)
      return read_file(std::filesystem::path(dir) / name);
  return "";
}

// The skip message, printed; the caller returns.
bool no_cgroups(const TestIsolator& t) {
  if (t.isolator)
    return false;
  WARN("skipped: cgroups not usable here: " << t.why_not);
  return true;
}

}  // namespace

TEST_CASE("cgroups isolator writes the limits and destroys every process", "[isolator][cgroups]") {
  TestIsolator t("cgroups");
  if (no_cgroups(t))
    return;
  auto p = t.isolator->prepare("c1", {500, 64ull << 20, 32});
  REQUIRE(p);
  if (std::string(t.isolator->name()) == "cgroups-v1") {
    CHECK(file_of(*p, "cpu", "cpu.cfs_quota_us") == "50000\n");
    CHECK(file_of(*p, "cpu", "cpu.shares") == "512\n");
    CHECK(file_of(*p, "memory", "memory.limit_in_bytes") == std::to_string(64ull << 20) + "\n");
    CHECK(file_of(*p, "pids", "pids.max") == "32\n");
  }
  CHECK(t.isolator->containers() == std::vector<std::string>{"c1"});
  ProcessLauncher launcher;
  // A shell whose child leaves its process group: only the container finds it.
  auto spec = in(*p, {"/bin/sh", "-c", "setsid sleep 60 & sleep 60"});
  auto pid = launcher.spawn(spec, {});
  REQUIRE(pid);
  REQUIRE(wait_until([&] { return t.isolator->usage("c1")->processes == 3; }));
  REQUIRE_FALSE(t.isolator->destroy("c1"));
  CHECK(wait_until([&] { return launcher.running() == 0; }));
  CHECK(t.isolator->containers().empty());
  CHECK_FALSE(t.isolator->usage("c1"));
  CHECK_FALSE(t.isolator->destroy("c1"));  // twice is fine
}

TEST_CASE("a memory hog is killed by the kernel and counted", "[isolator][cgroups]") {
  TestIsolator t("cgroups");
  if (no_cgroups(t))
    return;
  auto p = t.isolator->prepare("hog", {1000, 32ull << 20, 64});
  REQUIRE(p);
  ProcessLauncher launcher;
  std::atomic<int> signal{-1};
  // tail keeps the whole (newline-free) line in memory: 256 MiB of it.
  auto pid = launcher.spawn(
      in(*p, {"/bin/sh", "-c", "head -c 268435456 /dev/zero | tail > /dev/null"}),
      [&](const ProcessExit& e) { signal = e.term_signal + 1000 * (e.exit_code + 1); });
  REQUIRE(pid);
  REQUIRE(wait_until([&] { return signal != -1; }, 60s));
  auto usage = t.isolator->usage("hog");
  REQUIRE(usage);
  CHECK(usage->oom_kills >= 1);
  CHECK(usage->mem_peak_bytes <= (32ull << 20));
  CHECK(usage->mem_peak_bytes >= (16ull << 20));
  REQUIRE_FALSE(t.isolator->destroy("hog"));
}

TEST_CASE("a fork bomb stops at the pids limit", "[isolator][cgroups]") {
  TestIsolator t("cgroups");
  if (no_cgroups(t))
    return;
  auto p = t.isolator->prepare("bomb", {1000, 256ull << 20, 16});
  REQUIRE(p);
  ProcessLauncher launcher;
  // A bounded bomb: it would make 200 processes; the limit allows 16.
  auto pid = launcher.spawn(
      in(*p, {"/bin/sh", "-c", "for i in $(seq 200); do sleep 60 & done 2>/dev/null; sleep 60"}),
      {});
  REQUIRE(pid);
  // Once the loop is done, the shell sleeps too: no more forks will come.
  std::this_thread::sleep_for(1s);
  auto usage = t.isolator->usage("bomb");
  REQUIRE(usage);
  CHECK(usage->processes >= 10);
  CHECK(usage->processes <= 16);
  REQUIRE_FALSE(t.isolator->destroy("bomb"));
  CHECK(wait_until([&] { return launcher.running() == 0; }));
}

TEST_CASE("a CPU hog at half a cpu gets about half a cpu", "[isolator][cgroups]") {
  TestIsolator t("cgroups");
  if (no_cgroups(t))
    return;
  auto p = t.isolator->prepare("spin", {500, 64ull << 20, 16});
  REQUIRE(p);
  ProcessLauncher launcher;
  REQUIRE(launcher.spawn(in(*p, {"/bin/sh", "-c", "while :; do :; done"}), {}));
  std::this_thread::sleep_for(300ms);  // past the first CFS periods
  auto before = t.isolator->usage("spin");
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  auto after = t.isolator->usage("spin");
  auto wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(before);
  REQUIRE(after);
  double cpu_s = static_cast<double>(after->cpu_time_ns - before->cpu_time_ns) / 1e9;
  INFO("cpu " << cpu_s << " s in " << wall_s << " s of wall time");
  // The quota caps it (a bound, not a speed): at most ~0.55 cpu-s per second.
  CHECK(cpu_s / wall_s <= 0.55);
  // And it did run: a loaded 2-core machine still gives it some.
  CHECK(cpu_s > 0.05);
  REQUIRE_FALSE(t.isolator->destroy("spin"));
}

TEST_CASE("posix isolator finds its processes by their marker and kills them", "[isolator]") {
  TestIsolator t("posix");
  REQUIRE(t.isolator);
  CHECK(std::string(t.isolator->name()) == "posix");
  auto p = t.isolator->prepare("px", {500, 64ull << 20, 16});
  REQUIRE(p);
  CHECK(p->cgroups.empty());
  ProcessLauncher launcher;
  auto pid = launcher.spawn(in(*p, {"/bin/sh", "-c", "setsid sleep 60 & sleep 60"}), {});
  REQUIRE(pid);
  REQUIRE(wait_until([&] { return t.isolator->usage("px")->processes == 3; }));
  auto usage = t.isolator->usage("px");
  CHECK(usage->mem_rss_bytes > 0);
  REQUIRE_FALSE(t.isolator->destroy("px"));
  CHECK(t.isolator->usage("px")->processes == 0);
  CHECK(wait_until([&] { return launcher.running() == 0; }));
}

TEST_CASE("an unknown isolation kind is refused", "[isolator]") {
  IsolationConfig c;
  c.kind = "docker";
  c.scope = "x";
  auto made = make_isolator(c, nullptr);
  REQUIRE_FALSE(made);
  CHECK(describe(made.error()).find("docker") != std::string::npos);
  c.kind = "posix";
  c.scope = "../escape";
  CHECK_FALSE(make_isolator(c, nullptr));
}
