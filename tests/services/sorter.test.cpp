// Sorters: weighted DRF order (the NSDI 2011 example, weights, ties, totals)
// and the seeded weighted random order.

#include "services/allocator/sorter.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace tessera;

namespace {

std::unique_ptr<Sorter> make(std::string_view kind, uint64_t seed = 0) {
  auto sorter = make_sorter(kind, seed);
  REQUIRE(sorter);
  return std::move(*sorter);
}

void require_ok(const caf::error& err) {
  INFO(describe(err));
  REQUIRE(!err);
}

void require_invalid(const caf::error& err, const std::string& names) {
  INFO(describe(err));
  REQUIRE(is(err, Errc::invalid_argument));
  CHECK(describe(err).find(names) != std::string::npos);
}

std::vector<std::string> order(Sorter& s) {
  std::vector<std::string> out;
  s.visit([&](const std::string& c) {
    out.push_back(c);
    return true;
  });
  return out;
}

bool fits(const ScalarTotals& demand, const ScalarTotals& free) {
  for (const auto& [name, q] : demand) {
    auto it = free.find(name);
    if (it == free.end() || it->second < q)
      return false;
  }
  return true;
}

// Offers the free pool to clients in sorter order: the first whose next task
// fits gets it, until no one's does. Returns tasks launched per client.
std::map<std::string, int> run_tasks(Sorter& s, ScalarTotals free,
                                     const std::map<std::string, ScalarTotals>& demand) {
  std::map<std::string, int> tasks;
  for (;;) {
    std::string pick;
    s.visit([&](const std::string& c) {
      if (!fits(demand.at(c), free))
        return true;
      pick = c;
      return false;
    });
    if (pick.empty())
      return tasks;
    require_ok(s.allocated(pick, demand.at(pick)));
    for (const auto& [name, q] : demand.at(pick))
      free[name] -= q;
    ++tasks[pick];
  }
}

}  // namespace

TEST_CASE("drf reproduces the NSDI 2011 example", "[sorter]") {
  auto s = make("drf");
  ScalarTotals total{{"cpus", 9}, {"mem", 18}};
  s->set_total(total);
  require_ok(s->add("A"));
  require_ok(s->add("B"));
  std::map<std::string, ScalarTotals> demand{{"A", {{"cpus", 1}, {"mem", 4}}},
                                             {"B", {{"cpus", 3}, {"mem", 1}}}};
  auto tasks = run_tasks(*s, total, demand);
  CHECK(tasks["A"] == 3);
  CHECK(tasks["B"] == 2);
  CHECK(s->dominant_share("A") == Approx(2.0 / 3));
  CHECK(s->dominant_share("B") == Approx(2.0 / 3));
  CHECK(s->allocation("A") == ScalarTotals{{"cpus", 3}, {"mem", 12}});
  CHECK(s->allocation("B") == ScalarTotals{{"cpus", 6}, {"mem", 2}});
}

TEST_CASE("drf gives a client of weight 2 twice the share of weight 1", "[sorter]") {
  auto s = make("drf");
  ScalarTotals total{{"cpus", 12}, {"mem", 120}};
  s->set_total(total);
  require_ok(s->add("A", 2.0));
  require_ok(s->add("B", 1.0));
  ScalarTotals task{{"cpus", 1}, {"mem", 1}};
  // Keys are n/12/2 for A and n/12 for B; ties (which name order gives to A)
  // come out exact because halving a double is exact.
  auto tasks = run_tasks(*s, total, {{"A", task}, {"B", task}});
  CHECK(tasks["A"] == 8);
  CHECK(tasks["B"] == 4);
  CHECK(s->dominant_share("A") == Approx(2 * s->dominant_share("B")));
}

TEST_CASE("drf orders by key, breaks ties by name and follows updates", "[sorter]") {
  auto s = make("drf");
  s->set_total({{"cpus", 10}, {"mem", 100}});
  for (auto name : {"c", "a", "b"})
    require_ok(s->add(name));
  CHECK(order(*s) == std::vector<std::string>{"a", "b", "c"});

  require_ok(s->allocated("a", {{"cpus", 1}}));
  CHECK(order(*s) == std::vector<std::string>{"b", "c", "a"});
  require_ok(s->allocated("b", {{"mem", 20}}));
  CHECK(order(*s) == std::vector<std::string>{"c", "a", "b"});
  require_ok(s->unallocated("b", {{"mem", 20}}));
  CHECK(s->allocation("b").empty());
  CHECK(order(*s) == std::vector<std::string>{"b", "c", "a"});

  SECTION("unallocated clamps at zero") {
    require_ok(s->unallocated("a", {{"cpus", 5}, {"gpus", 1}}));
    CHECK(s->allocation("a").empty());
    CHECK(s->dominant_share("a") == 0.0);
    CHECK(order(*s) == std::vector<std::string>{"a", "b", "c"});
  }
  SECTION("float residue counts as zero") {
    for (int i = 0; i < 10; ++i)
      require_ok(s->allocated("c", {{"cpus", 0.1}}));
    require_ok(s->unallocated("c", {{"cpus", 1.0}}));
    CHECK(s->allocation("c").empty());
  }
  SECTION("set_weight reorders") {
    require_ok(s->allocated("b", {{"cpus", 2}}));  // b: 0.2, a: 0.1
    require_ok(s->set_weight("b", 4.0));           // b's key: 0.05
    CHECK(order(*s) == std::vector<std::string>{"c", "b", "a"});
  }
  SECTION("remove takes a client out") {
    require_ok(s->remove("c"));
    CHECK_FALSE(s->contains("c"));
    CHECK(s->size() == 2);
    CHECK(order(*s) == std::vector<std::string>{"b", "a"});
    require_ok(s->add("c"));  // and it can come back, holding nothing
    CHECK(s->allocation("c").empty());
  }
  SECTION("visit stops when the callback returns false") {
    std::vector<std::string> seen;
    s->visit([&](const std::string& c) {
      seen.push_back(c);
      return false;
    });
    CHECK(seen == std::vector<std::string>{"b"});
  }
}

TEST_CASE("sorters reject bad calls and change nothing", "[sorter]") {
  for (auto kind : {"drf", "random"}) {
    INFO(kind);
    auto s = make(kind);
    s->set_total({{"cpus", 10}});
    require_ok(s->add("a"));
    require_ok(s->allocated("a", {{"cpus", 1}}));

    require_invalid(s->add("a"), "'a'");
    require_invalid(s->remove("zz"), "'zz'");
    require_invalid(s->set_weight("zz", 1.0), "'zz'");
    require_invalid(s->allocated("zz", {{"cpus", 1}}), "'zz'");
    require_invalid(s->unallocated("zz", {{"cpus", 1}}), "'zz'");
    for (double w : {0.0, -1.0, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
      require_invalid(s->set_weight("a", w), "'a'");
      require_invalid(s->add("b", w), "'b'");
    }
    require_invalid(s->allocated("a", {{"cpus", -1}}), "'a'");
    require_invalid(s->allocated("a", {{"cpus", std::nan("")}}), "'a'");

    CHECK(s->size() == 1);
    CHECK_FALSE(s->contains("b"));
    CHECK(s->allocation("a") == ScalarTotals{{"cpus", 1}});
    CHECK(s->dominant_share("zz") == 0.0);
    CHECK(s->allocation("zz").empty());
  }
  auto bad = make_sorter("fair");
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), Errc::invalid_argument));
  CHECK(describe(bad.error()).find("fair") != std::string::npos);
}

TEST_CASE("set_total recomputes every share", "[sorter]") {
  auto s = make("drf");
  s->set_total({{"cpus", 10}, {"mem", 100}});
  require_ok(s->add("a"));
  require_ok(s->add("b"));
  require_ok(s->allocated("a", {{"cpus", 2}}));  // 0.2
  require_ok(s->allocated("b", {{"mem", 30}}));  // 0.3
  CHECK(order(*s) == std::vector<std::string>{"a", "b"});

  s->set_total({{"cpus", 20}, {"mem", 200}});
  CHECK(s->dominant_share("a") == Approx(0.1));
  CHECK(s->dominant_share("b") == Approx(0.15));
  CHECK(order(*s) == std::vector<std::string>{"a", "b"});

  s->set_total({{"cpus", 4}, {"mem", 200}});  // cpus got scarce: a now owes more
  CHECK(s->dominant_share("a") == Approx(0.5));
  CHECK(order(*s) == std::vector<std::string>{"b", "a"});

  // Resources absent from the total, or with a total of zero, are ignored.
  s->set_total({{"cpus", 0}, {"mem", 60}});
  CHECK(s->dominant_share("a") == 0.0);
  CHECK(s->dominant_share("b") == Approx(0.5));
  CHECK(order(*s) == std::vector<std::string>{"a", "b"});

  // Updates after the change use the new total.
  require_ok(s->allocated("a", {{"mem", 45}}));
  CHECK(s->dominant_share("a") == Approx(0.75));
  CHECK(order(*s) == std::vector<std::string>{"b", "a"});
}

namespace {

std::vector<std::vector<std::string>> random_orders(uint64_t seed, int visits) {
  auto s = make("random", seed);
  for (auto name : {"a", "b", "c", "d", "e"})
    require_ok(s->add(name));
  std::vector<std::vector<std::string>> out;
  for (int i = 0; i < visits; ++i)
    out.push_back(order(*s));
  return out;
}

}  // namespace

TEST_CASE("random sorter: a seed fixes the sequence of orders", "[sorter]") {
  auto first = random_orders(42, 5);
  CHECK(first == random_orders(42, 5));
  CHECK(first != random_orders(43, 5));
  for (const auto& o : first)  // every visit is a permutation
    CHECK(std::set<std::string>(o.begin(), o.end()).size() == 5);
}

TEST_CASE("random sorter: weights set the odds of coming first", "[sorter]") {
  auto s = make("random", 7);
  require_ok(s->add("a", 3.0));
  require_ok(s->add("b", 1.0));
  int a_first = 0;
  for (int i = 0; i < 10000; ++i) {
    s->visit([&](const std::string& c) {
      a_first += c == "a";
      return false;
    });
  }
  CHECK(a_first > 7000);
  CHECK(a_first < 8000);
}

TEST_CASE("random sorter tracks allocations and shares", "[sorter]") {
  auto s = make("random", 1);
  s->set_total({{"cpus", 8}, {"mem", 16}});
  require_ok(s->add("a"));
  require_ok(s->allocated("a", {{"cpus", 2}, {"mem", 8}}));
  CHECK(s->dominant_share("a") == Approx(0.5));
  require_ok(s->unallocated("a", {{"mem", 8}}));
  CHECK(s->dominant_share("a") == Approx(0.25));
  CHECK(s->allocation("a") == ScalarTotals{{"cpus", 2}});
}

TEST_CASE("drf at scale visits every client once in key order", "[sorter]") {
  auto s = make("drf");
  s->set_total({{"cpus", 1000}, {"mem", 4000}, {"gpus", 10}});
  std::map<std::string, double> weight;
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names.push_back("c" + std::to_string(1000 + i));
    weight[names.back()] = 1 + i % 4;
    require_ok(s->add(names.back(), weight[names.back()]));
  }
  std::mt19937_64 rng(2011);
  std::uniform_int_distribution<size_t> pick(0, names.size() - 1);
  std::uniform_int_distribution<int> amount(0, 4);
  for (int i = 0; i < 10000; ++i) {
    ScalarTotals r{{"cpus", amount(rng) * 0.5}, {"mem", amount(rng) * 64.0}};
    if (i % 50 == 0)
      r["gpus"] = 1;
    // One update in five gives resources back, so keys move both ways.
    if (i % 5 == 4)
      require_ok(s->unallocated(names[pick(rng)], r));
    else
      require_ok(s->allocated(names[pick(rng)], r));
  }
  auto visited = order(*s);
  REQUIRE(visited.size() == names.size());
  CHECK(std::set<std::string>(visited.begin(), visited.end()).size() == names.size());
  for (size_t i = 1; i < visited.size(); ++i) {
    const auto& prev = visited[i - 1];
    const auto& cur = visited[i];
    double prev_key = s->dominant_share(prev) / weight[prev];
    double cur_key = s->dominant_share(cur) / weight[cur];
    INFO(prev << " " << prev_key << " then " << cur << " " << cur_key);
    REQUIRE((prev_key < cur_key || (prev_key == cur_key && prev < cur)));
  }
}
