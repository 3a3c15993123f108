// The chaos simulation (services/sim/chaos.hpp) in CI: a fixed sample of
// seeds, the regression seeds, digest replay, and proof that the checker
// can fail.

#include "services/sim/chaos.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace tessera;
using namespace tessera::sim;
using namespace std::chrono_literals;

namespace {

// A smaller cluster and a shorter run than `tessera sim`'s default, so the
// sample (TESSERA_SIM_CI_SEEDS, tests/CMakeLists.txt) fits CI's budget; the fault kinds are
// ci_faults() (every kind; master crashes also have a sample of their own).
ChaosConfig ci_config(uint64_t seed) {
  ChaosConfig c;
  c.seed = seed;
  c.agents = 4;
  c.frameworks = 3;
  c.duration = 3min;
  c.faults = ci_faults();
  return c;
}

void require_clean(const ChaosResult& r, const ChaosConfig& c) {
  INFO(report(r, c));
  CHECK(r.violations.empty());
}

struct Regression {
  uint64_t seed = 0;
  ChaosConfig config;
  bool expected_to_fail = false;
  std::string note;
};

// tests/sim/regression_seeds.txt: "SEED [key=value ...] # what it found";
// lines starting with "xfail" are seeds that still fail because of an open
// defect (named in the comment): they run, and their violation is printed,
// but they do not fail the suite until the fix lands.
std::vector<Regression> regressions() {
  std::ifstream in(TESSERA_SOURCE_DIR "/tests/sim/regression_seeds.txt");
  std::vector<Regression> out;
  for (std::string line; std::getline(in, line);) {
    auto hash = line.find('#');
    std::string note = hash == std::string::npos ? "" : line.substr(hash + 1);
    std::istringstream words(line.substr(0, hash));
    std::string w;
    Regression r;
    if (!(words >> w))
      continue;
    if (w == "xfail") {
      r.expected_to_fail = true;
      if (!(words >> w))
        continue;
    }
    r.seed = std::stoull(w);
    r.config = ci_config(r.seed);
    while (words >> w) {
      auto eq = w.find('=');
      auto key = w.substr(0, eq), value = w.substr(eq + 1);
      if (key == "agents")
        r.config.agents = std::stoul(value);
      else if (key == "frameworks")
        r.config.frameworks = std::stoul(value);
      else if (key == "minutes")
        r.config.duration = std::chrono::duration_cast<Duration>(
            std::chrono::duration<double, std::ratio<60>>(std::stod(value)));
      else if (key == "faults")
        r.config.faults = *parse_faults(value);
    }
    r.note = note;
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("the same seed replays to the same digest", "[sim]") {
  auto c = ci_config(7);
  c.duration = 90s;
  c.faults = all_faults;
  auto a = run_chaos(c);
  auto b = run_chaos(c);
  CHECK(a.deliveries > 1000);
  CHECK(a.digest == b.digest);
  CHECK(a.deliveries == b.deliveries);
  CHECK(a.violations.size() == b.violations.size());
  c.seed = 8;
  auto other = run_chaos(c);
  CHECK(other.digest != a.digest);
}

TEST_CASE("the invariant checker reports a task started twice", "[sim]") {
  auto c = ci_config(3);
  c.duration = 60s;
  c.faults = 0;
  c.inject = "run-twice";
  auto r = run_chaos(c);
  auto text = report(r, c);
  INFO(text);
  REQUIRE_FALSE(r.violations.empty());
  CHECK(r.violations.front().invariant == "task-runs-twice");
  CHECK(text.find("replay: tessera sim --seed 3") != std::string::npos);
  CHECK(text.find("last events:") != std::string::npos);
}

TEST_CASE("a livelock is reported and ends the run instead of hanging it", "[sim]") {
  auto c = ci_config(5);
  c.duration = 60s;
  c.faults = 0;
  c.inject = "livelock";
  auto r = run_chaos(c);
  INFO(report(r, c));
  REQUIRE(r.violations.size() == 1);
  CHECK(r.violations.front().invariant == "livelock");
}

TEST_CASE("without faults every seed of the sample is clean", "[sim]") {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    auto c = ci_config(seed);
    c.faults = 0;
    require_clean(run_chaos(c), c);
  }
}

static void require_sample_clean(uint32_t faults) {
  for (uint64_t seed = 100; seed < 100 + TESSERA_SIM_CI_SEEDS; ++seed) {
    auto c = ci_config(seed);
    c.faults = faults;
    require_clean(run_chaos(c), c);
  }
}

TEST_CASE("a fixed sample of seeds under faults", "[sim]") {
  require_sample_clean(ci_faults());
}

TEST_CASE("a fixed sample of seeds with master crashes", "[sim]") {
  require_sample_clean(ci_failover_faults());
}

TEST_CASE("the regression seeds", "[sim][regression]") {
  auto list = regressions();
  REQUIRE_FALSE(list.empty());
  for (const auto& r : list) {
    auto result = run_chaos(r.config);
    if (r.expected_to_fail) {
      // Still failing for an open defect: said, not hidden.
      if (result.violations.empty())
        WARN("seed " << r.seed << " marked xfail now passes: drop its xfail (" << r.note << ")");
      else
        WARN("seed " << r.seed << " is expected to fail until its fix lands (" << r.note
                     << "): " << result.violations.size() << " violation(s)");
      continue;
    }
    INFO("regression seed " << r.seed << ": " << r.note);
    require_clean(result, r.config);
  }
}
