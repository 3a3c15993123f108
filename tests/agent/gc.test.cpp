// Sandbox garbage collection: the policy (how long an ended run's sandbox may
// stay), the scan on a real directory tree, and a real agent removing the
// sandboxes of ended runs while it keeps those of running ones.

#include "agent/fake_master.hpp"

#include "services/agent/sandbox_gc.hpp"

#include <fstream>
#include <thread>

using namespace tessera;
using namespace tessera::agent_test;
namespace fs = std::filesystem;

namespace {

// <work>/frameworks/<fw>/executors/<ex>/runs/<run>/, holding one file, ended `age` ago.
fs::path make_run(const fs::path& work, const std::string& fw, const std::string& ex,
                  const std::string& run, fs::file_time_type::duration age) {
  auto dir = work / "frameworks" / fw / "executors" / ex / "runs" / run;
  fs::create_directories(dir);
  std::ofstream(dir / "stdout") << "output\n";
  fs::last_write_time(dir, fs::file_time_type::clock::now() - age);
  return dir;
}

}  // namespace

TEST_CASE("the GC policy shortens a sandbox's life by headroom and disk use", "[gc]") {
  sandbox_gc::Policy no_headroom{1000ms, 0.0};
  CHECK(no_headroom.max_age_ms(0.0) == 1000ms);
  CHECK(no_headroom.max_age_ms(0.25) == 750ms);
  CHECK(no_headroom.max_age_ms(1.0) == 0ms);

  sandbox_gc::Policy p{1000ms, 0.1};
  CHECK(p.max_age_ms(0.0) == 900ms);
  CHECK(p.max_age_ms(0.5) == 400ms);
  // Within the headroom of full, or beyond: nothing ended is kept (clamped at 0).
  CHECK(p.max_age_ms(0.9) == 0ms);
  CHECK(p.max_age_ms(0.95) == 0ms);
  // Nonsense fractions are clamped to [0, 1].
  CHECK(p.max_age_ms(1.5) == 0ms);
  CHECK(p.max_age_ms(-0.5) == 900ms);

  sandbox_gc::Policy defaults;  // Mesos's: a week, 10% headroom
  CHECK(defaults.max_age_ms(0.0) == std::chrono::milliseconds(std::chrono::hours(24 * 7)) * 9 / 10);
  AgentConfig config;
  CHECK(config.gc_delay_ms == defaults.delay_ms);
  CHECK(config.gc_disk_headroom == defaults.disk_headroom);
  CHECK(config.gc_interval_ms == 60s);
}

TEST_CASE("the disk's used fraction is between 0 and 1", "[gc]") {
  testing::TempDir dir;
  auto used = sandbox_gc::disk_used_fraction(dir.path());
  REQUIRE(used);
  CHECK(*used >= 0.0);
  CHECK(*used <= 1.0);
  CHECK_FALSE(sandbox_gc::disk_used_fraction(dir.path() / "missing"));
}

TEST_CASE("a GC scan removes expired runs only, then the directories they leave empty", "[gc]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto old_run = make_run(work, "f1", "e1", "r1", 1h);
  auto live_run = make_run(work, "f1", "e2", "r2", 1h);
  auto young_run = make_run(work, "f1", "e3", "r3", 1s);
  auto lonely_run = make_run(work, "f2", "e4", "r4", 2h);
  auto sibling = make_run(work, "f1", "e5", "old", 1h);
  auto sibling_young = make_run(work, "f1", "e5", "new", 0s);

  auto result = sandbox_gc::scan(work, {live_run}, 10min, fs::file_time_type::clock::now(), 100);
  CHECK(result.failures.empty());
  CHECK(result.expired == 3);
  // Oldest first.
  CHECK(result.removed == std::vector<fs::path>{lonely_run, old_run, sibling});
  CHECK_FALSE(fs::exists(old_run));
  CHECK_FALSE(fs::exists(work / "frameworks" / "f1" / "executors" / "e1"));
  CHECK_FALSE(fs::exists(work / "frameworks" / "f2"));  // its only executor went
  CHECK(fs::exists(live_run / "stdout"));
  CHECK(fs::exists(young_run / "stdout"));
  CHECK_FALSE(fs::exists(sibling));
  CHECK(fs::exists(sibling_young / "stdout"));  // and so its executor's directory stays
  CHECK(fs::exists(work / "frameworks"));
}

TEST_CASE("a GC scan removes at most its limit, the oldest runs first", "[gc]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto a = make_run(work, "f", "e", "a", 3h);
  auto b = make_run(work, "f", "e", "b", 2h);
  auto c = make_run(work, "f", "e", "c", 1h);
  auto now = fs::file_time_type::clock::now();
  auto first = sandbox_gc::scan(work, {}, 1min, now, 2);
  CHECK(first.expired == 3);
  CHECK(first.removed == std::vector<fs::path>{a, b});
  CHECK(fs::exists(c));
  auto second = sandbox_gc::scan(work, {}, 1min, now, 2);
  CHECK(second.removed == std::vector<fs::path>{c});
  CHECK_FALSE(fs::exists(work / "frameworks" / "f"));
}

TEST_CASE("a GC scan keeps runs just made, even with no age allowed", "[gc]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto scan_began = fs::file_time_type::clock::now();
  // Created after the scan began (so in no live set), or just before it.
  auto fresh = make_run(work, "f", "e", "r", 0s);
  CHECK(sandbox_gc::scan(work, {}, 0ms, scan_began, 100).removed.empty());
  CHECK(fs::exists(fresh));
  auto later = scan_began + sandbox_gc::fresh_age_min + 1s;
  CHECK(sandbox_gc::scan(work, {}, 0ms, later, 100).removed == std::vector<fs::path>{fresh});
}

TEST_CASE("a GC scan does not follow symlinks out of the work directory", "[gc]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto outside = dir.path() / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "precious") << "keep\n";
  auto runs = work / "frameworks" / "f" / "executors" / "e" / "runs";
  fs::create_directories(runs);
  fs::create_directory_symlink(outside, runs / "r");
  fs::create_directory_symlink(outside, work / "frameworks" / "g");
  auto later = fs::file_time_type::clock::now() + 24h;
  auto result = sandbox_gc::scan(work, {}, 0ms, later, 100);
  CHECK(result.removed.empty());
  CHECK(fs::exists(outside / "precious"));
}

TEST_CASE("an agent removes an ended task's sandbox after the GC delay, not a running one's",
          "[agent][gc]") {
  Cluster c([](AgentConfig& a) {
    a.gc_delay_ms = 300ms;
    a.gc_disk_headroom = 0.0;
    a.gc_interval_ms = 50ms;
  });
  c.master.send_to_agent(run_task("sleeper", "sleep 100"));
  c.master.wait_state("sleeper", State::RUNNING);
  c.master.send_to_agent(run_task("hello", "echo hello"));
  c.master.wait_state("hello", State::FINISHED);
  auto running = c.sandbox("sleeper");
  auto ended = c.sandbox("hello");
  auto executor = ended.parent_path().parent_path();

  // Counted once the whole scan is done (the directory goes before that).
  REQUIRE(wait_until([&] { return c.metrics->gc_sandboxes_removed.load() >= 1; }, 10s));
  CHECK_FALSE(fs::exists(ended));
  CHECK_FALSE(fs::exists(executor));  // left empty, so removed too
  CHECK(c.metrics->gc_sandboxes_removed.load() == 1);
  CHECK(c.metrics->gc_failures.load() == 0);

  // Delays and scans later the running task's sandbox is still there.
  auto scans = c.metrics->gc_scans.load();
  std::this_thread::sleep_for(400ms);
  REQUIRE(wait_until([&] { return c.metrics->gc_scans.load() > scans + 3; }, 10s));
  CHECK(fs::exists(running / "stdout"));
  CHECK(c.metrics->gc_sandboxes_removed.load() == 1);
}

TEST_CASE("an agent collects sandboxes left from before its restart by their age", "[agent][gc]") {
  testing::TempDir dir;
  auto work = dir.path() / "work";
  auto old_run = make_run(work, "fw-old", "ex", "run-1", 2h);
  auto recent_run = make_run(work, "fw-old", "ex", "run-2", 1min);
  auto metrics = std::make_shared<AgentMetrics>();
  MasterNode master;
  master.start();
  auto node = testing::start_node();
  auto config = test_agent_config(master.address(), work);
  config.metrics = metrics;
  config.gc_delay_ms = 1h;
  config.gc_disk_headroom = 0.0;  // a nearly full test disk still leaves minutes
  config.gc_interval_ms = 50ms;
  REQUIRE(node->spawn<Agent>("agent", config));

  REQUIRE(wait_until([&] { return metrics->gc_sandboxes_removed.load() >= 1; }, 10s));
  CHECK_FALSE(fs::exists(old_run));
  auto scans = metrics->gc_scans.load();
  REQUIRE(wait_until([&] { return metrics->gc_scans.load() > scans + 2; }, 10s));
  CHECK(fs::exists(recent_run / "stdout"));
  CHECK(metrics->gc_sandboxes_removed.load() == 1);
  node->stop();
  master.stop();
}
