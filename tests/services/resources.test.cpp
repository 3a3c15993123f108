#include "services/common/resources.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <algorithm>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

using tessera::Range;
using tessera::Resources;

namespace {

// Test inputs are meant to be valid; a parse failure should show why.
Resources parsed(std::string_view text) {
  auto r = Resources::parse(text);
  INFO(text);
  if (!r)
    FAIL(tessera::describe(r.error()));
  return *r;
}

std::vector<Range> rs(std::initializer_list<Range> ranges) {
  return ranges;
}

// The port numbers ranges cover, to check range arithmetic against plain sets.
std::set<uint64_t> expand(const std::vector<Range>& ranges) {
  std::set<uint64_t> out;
  for (const auto& r : ranges)
    for (uint64_t v = r.begin; v <= r.end; ++v)
      out.insert(v);
  return out;
}

std::vector<Range> random_ranges(std::mt19937& rng) {
  std::uniform_int_distribution<uint64_t> value(0, 30);
  std::vector<Range> out(rng() % 4);
  for (auto& r : out) {
    r.begin = value(rng);
    r.end = r.begin + value(rng) % 5;
  }
  return out;
}

}  // namespace

TEST_CASE("the agent's example resources parse", "[resources]") {
  auto r = parsed("cpus:4;mem:8192;disk:20000;ports:[31000-32000]");
  CHECK(r.get("cpus") == 4.0);
  CHECK(r.get("mem") == 8192.0);
  CHECK(r.get("disk") == 20000.0);
  CHECK(r.get_ranges("ports") == rs({{31000, 32000}}));
  CHECK(r.get("gpus") == 0.0);
  CHECK(r.get_ranges("nope").empty());
  CHECK_FALSE(r.empty());
  CHECK(r.roles().empty());
}

TEST_CASE("reserved resources carry their role", "[resources]") {
  auto r = parsed("cpus(analytics):2;cpus:1.5");
  CHECK(r.get("cpus", "analytics") == 2.0);
  CHECK(r.get("cpus") == 1.5);
  CHECK(r.total("cpus") == 3.5);
  CHECK(r.roles() == std::set<std::string>{"analytics"});
  // An explicit "*" is the unreserved role, not a role of its own.
  CHECK(parsed("cpus(*):2") == parsed("cpus:2"));
  CHECK(parsed("cpus(eng/ml.team_1):1").get("cpus", "eng/ml.team_1") == 1.0);
}

TEST_CASE("flatten drops every reservation and adds up what it held", "[resources]") {
  auto r = parsed("cpus:1;cpus(a):2;cpus(b):0.5;ports(a):[10-19];ports:[20-29];zones(b):{x}");
  CHECK(r.flatten().to_string() == "cpus:3.5;ports:[10-29];zones:{x}");
  CHECK(r.flatten().roles().empty());
  CHECK(Resources{}.flatten().empty());
}

TEST_CASE("sets parse, and items of one name and role add up", "[resources]") {
  auto r = parsed("zones:{b,a};zones:{c,a};zones(x):{z}");
  CHECK(r.get_set("zones") == std::set<std::string>{"a", "b", "c"});
  CHECK(r.get_set("zones", "x") == std::set<std::string>{"z"});
  CHECK(r.get_set("other").empty());

  auto sums = parsed("cpus:1;ports:[1-2];cpus:2.5;ports:[5-6,3-3]");
  CHECK(sums.get("cpus") == 3.5);
  CHECK(sums.get_ranges("ports") == rs({{1, 3}, {5, 6}}));
}

TEST_CASE("whitespace around items and empty items are ignored", "[resources]") {
  CHECK(parsed("  cpus:4 ;; mem:10 ;\t") == parsed("cpus:4;mem:10"));
  CHECK(parsed("ports:[1-2, 4-5]") == parsed("ports:[1-2,4-5]"));
  CHECK(parsed("").empty());
  CHECK(parsed(" ; ;").empty());
  CHECK(Resources{}.to_string().empty());
}

TEST_CASE("to_string is canonical and parses back to an equal value", "[resources]") {
  auto r = parsed("ports:[32000-32010,31000-31999];mem:8192;cpus(analytics):2;cpus:4;zones:{b,a}");
  CHECK(r.to_string() == "cpus:4;cpus(analytics):2;mem:8192;ports:[31000-32010];zones:{a,b}");
  CHECK(parsed("cpus:0.5;gpus:1.250;mem:0.001").to_string() == "cpus:0.5;gpus:1.25;mem:0.001");

  for (auto text : {"cpus:4;mem:8192;disk:20000;ports:[31000-32000]", "cpus(analytics):2;cpus:1",
                    "zones:{a,b};ports(r/x):[1-1,3-3,5-9]", "cpus:0.333;mem:12.5", ""}) {
    INFO(text);
    auto once = parsed(text);
    CHECK(parsed(once.to_string()) == once);
    CHECK(parsed(once.to_string()).to_string() == once.to_string());
  }
}

// Two agents may give one name two kinds, as Mesos's could: their sum keeps
// both apart, and its text, which no operator could have meant, is refused.
TEST_CASE("a sum that gives a name two kinds keeps both, and its text is refused", "[resources]") {
  auto sum = parsed("cpus:4;mem:8192") + parsed("mem:[300-400]");
  CHECK(sum.get("mem") == 8192);
  CHECK(sum.get_ranges("mem") == std::vector<Range>{{300, 400}});
  CHECK(sum.contains(parsed("mem:8192")));
  CHECK(sum.contains(parsed("mem:[300-400]")));
  CHECK(sum - parsed("mem:[300-400]") == parsed("cpus:4;mem:8192"));
  CHECK(sum.to_string() == "cpus:4;mem:8192;mem:[300-400]");
  auto again = Resources::parse(sum.to_string());
  REQUIRE_FALSE(again);
  CHECK_THAT(tessera::describe(again.error()),
             Catch::Contains("'mem' was already given as a scalar"));
}

TEST_CASE("bad resources are invalid_argument errors that name the item", "[resources]") {
  struct Case {
    const char* text;
    const char* item;
    const char* why;
  };
  auto c = GENERATE(values<Case>({
      {"cpus:-1;mem:10", "cpus:-1", "quantity must be >= 0"},
      {"cpus:abc", "cpus:abc", "decimal number"},
      {"cpus:1e3", "cpus:1e3", "decimal number"},
      {"cpus:1.", "cpus:1.", "decimal number"},
      {"cpus:99999999999999", "cpus:99999999999999", "below 10^12"},
      {"mem:10;cpus", "cpus", "name[(role)]:value"},
      {"cpus:", "cpus:", "missing value"},
      {"CPUS:1", "CPUS:1", "invalid name 'CPUS'"},
      {":1", ":1", "invalid name ''"},
      {"ports:[]", "ports:[]", "empty range list"},
      {"ports:[5-1]", "ports:[5-1]", "'5-1' is inverted"},
      {"ports:[5]", "ports:[5]", "must be begin-end"},
      {"ports:[1-x]", "ports:[1-x]", "must be begin-end"},
      {"ports:[1-2", "ports:[1-2", "expected ']'"},
      {"ports:[1-99999999999999999999]", "ports:[1-99999999999999999999]", "begin-end"},
      {"zones:{}", "zones:{}", "empty set"},
      {"zones:{a,B}", "zones:{a,B}", "invalid set item 'B'"},
      {"ports:[1-2];ports:3", "ports:3", "already given as ranges"},
      {"zones:{a};zones(r):[1-2]", "zones(r):[1-2]", "already given as a set"},
      {"cpus(.x):1", "cpus(.x):1", "invalid role '.x'"},
      {"cpus():1", "cpus():1", "invalid role ''"},
      {"cpus(a:1", "cpus(a:1", "name(role)"},
  }));
  INFO(c.text);
  auto r = Resources::parse(c.text);
  REQUIRE_FALSE(r);
  CHECK(tessera::is(r.error(), tessera::Errc::invalid_argument));
  auto message = tessera::describe(r.error());
  CHECK_THAT(message,
             Catch::Contains(std::string("bad resource '") + c.item + "' in '" + c.text + "': "));
  CHECK_THAT(message, Catch::Contains(c.why));
}

TEST_CASE("the error message names the item exactly as the brief shows", "[resources]") {
  auto r = Resources::parse("cpus:-1;mem:10");
  REQUIRE_FALSE(r);
  CHECK(tessera::describe(r.error()) ==
        "invalid_argument: bad resource 'cpus:-1' in 'cpus:-1;mem:10': quantity must be >= 0");
}

TEST_CASE("quantities are fixed point with three decimals", "[resources]") {
  CHECK((parsed("cpus:0.1") + parsed("cpus:0.2")).get("cpus") == 0.3);
  CHECK(parsed("cpus:0.1;cpus:0.2") == parsed("cpus:0.3"));
  CHECK((Resources::scalar("cpus", 0.1) + Resources::scalar("cpus", 0.2)) ==
        Resources::scalar("cpus", 0.3));
  CHECK(parsed("cpus:1.2345").get("cpus") == 1.235);
  CHECK(parsed("cpus:1.23449").get("cpus") == 1.234);
  CHECK(parsed("cpus:0.9995").get("cpus") == 1.0);
  // A quantity that rounds to zero is not there at all.
  CHECK(parsed("cpus:0.0004").empty());
  CHECK(parsed("cpus:0").empty());
  CHECK(Resources::scalar("cpus", 0.0).empty());
  CHECK(parsed("cpus:0.0005").get("cpus") == 0.001);
}

TEST_CASE("contains compares scalars, ranges and sets per role", "[resources]") {
  auto agent = parsed("cpus:4;cpus(a):2;mem:100;ports:[10-20,30-40];zones:{x,y}");
  CHECK(agent.contains(Resources{}));
  CHECK(agent.contains(agent));
  CHECK(agent.contains(parsed("cpus:4;mem:99.999")));
  CHECK_FALSE(agent.contains(parsed("cpus:4.001")));
  CHECK(agent.contains(parsed("cpus(a):2")));
  CHECK_FALSE(agent.contains(parsed("cpus(b):1")));
  CHECK_FALSE(agent.contains(parsed("gpus:1")));
  CHECK(agent.contains(parsed("ports:[12-15,30-30,40-40]")));
  CHECK_FALSE(agent.contains(parsed("ports:[19-31]")));
  CHECK_FALSE(agent.contains(parsed("ports:[21-21]")));
  CHECK_FALSE(agent.contains(parsed("ports(a):[10-10]")));
  CHECK(agent.contains(parsed("zones:{y}")));
  CHECK_FALSE(agent.contains(parsed("zones:{y,z}")));
}

TEST_CASE("adding merges ranges and unions sets", "[resources]") {
  auto r = parsed("ports:[1-2];zones:{a}");
  r += parsed("ports:[3-4];zones:{b}");
  CHECK(r.get_ranges("ports") == rs({{1, 4}}));
  CHECK(r.get_set("zones") == std::set<std::string>{"a", "b"});
  r += parsed("ports:[10-12,6-7]");
  CHECK(r.get_ranges("ports") == rs({{1, 4}, {6, 7}, {10, 12}}));
  r += parsed("ports:[5-5,8-9]");
  CHECK(r.get_ranges("ports") == rs({{1, 12}}));
  CHECK(r == parsed("ports:[1-12];zones:{a,b}"));
  CHECK(Resources::ranges("p", {{5, 6}, {1, 3}, {2, 4}}).get_ranges("p") == rs({{1, 6}}));
}

TEST_CASE("subtracting splits ranges and erases what reaches zero", "[resources]") {
  auto r = parsed("ports:[1-10];cpus:2;zones:{a,b}");
  r -= parsed("ports:[3-4]");
  CHECK(r.get_ranges("ports") == rs({{1, 2}, {5, 10}}));
  r -= parsed("ports:[1-1,6-6,10-10]");
  CHECK(r.get_ranges("ports") == rs({{2, 2}, {5, 5}, {7, 9}}));
  r -= parsed("cpus:0.5;zones:{a}");
  CHECK(r.get("cpus") == 1.5);
  CHECK(r.get_set("zones") == std::set<std::string>{"b"});
  r -= parsed("cpus:1.5;zones:{b};ports:[2-2,5-5,7-9]");
  CHECK(r.empty());
  CHECK(r == Resources{});
}

TEST_CASE("ranges reaching the ends of uint64 merge and split", "[resources]") {
  constexpr uint64_t max = std::numeric_limits<uint64_t>::max();
  auto all = Resources::ranges("p", {{0, max - 1}, {max, max}});
  CHECK(all.get_ranges("p") == rs({{0, max}}));
  CHECK(parsed(all.to_string()) == all);
  auto holes = all - Resources::ranges("p", {{0, 0}, {max, max}});
  CHECK(holes.get_ranges("p") == rs({{1, max - 1}}));
  CHECK(holes + Resources::ranges("p", {{0, 0}, {max, max}}) == all);
}

TEST_CASE("role views select reservations", "[resources]") {
  auto r = parsed("cpus:4;cpus(a):2;cpus(b):1;mem(a):10;ports:[1-5];zones(b):{z}");
  CHECK(r.reserved("a") == parsed("cpus(a):2;mem(a):10"));
  CHECK(r.reserved("*") == parsed("cpus:4;ports:[1-5]"));
  CHECK(r.reserved("nobody").empty());
  CHECK(r.allocatable_to("a") == parsed("cpus:4;cpus(a):2;mem(a):10;ports:[1-5]"));
  CHECK(r.allocatable_to("b") == parsed("cpus:4;cpus(b):1;ports:[1-5];zones(b):{z}"));
  CHECK(r.allocatable_to("*") == r.reserved("*"));
  CHECK(r.roles() == std::set<std::string>{"a", "b"});
  CHECK(r.scalar_totals() == tessera::ScalarTotals{{"cpus", 7.0}, {"mem", 10.0}});
  CHECK(parsed("cpus:0.1;cpus(a):0.2").scalar_totals() == tessera::ScalarTotals{{"cpus", 0.3}});
}

TEST_CASE("(a + b) - b == a", "[resources]") {
  auto [a, b] = GENERATE(table<const char*, const char*>({
      {"", ""},
      {"cpus:1", ""},
      {"", "cpus:1"},
      {"cpus:0.1", "cpus:0.2"},
      {"cpus:4;mem:8192", "cpus(a):2;mem:1.5"},
      {"ports:[1-2]", "ports:[3-4]"},
      {"ports:[1-10]", "ports:[20-30,11-11]"},
      {"ports:[5-6]", "ports:[1-4,7-9]"},
      {"zones:{a}", "zones:{b,c}"},
      {"zones(r):{a}", "zones:{a}"},
      {"cpus:1;ports(x):[1-1];zones:{a}", "gpus:1;ports(x):[2-2];zones(x):{a}"},
  }));
  INFO(a << " + " << b);
  auto ra = parsed(a);
  auto rb = parsed(b);
  CHECK((ra + rb) - rb == ra);
  CHECK((ra + rb).contains(ra));
  CHECK((ra + rb).contains(rb));
}

TEST_CASE("role names follow the rules", "[resources]") {
  for (auto good : {"*", "a", "analytics", "eng/ml", "a.b", "a-b", "_x", "9",
                    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234"}) {
    INFO(good);
    CHECK(tessera::valid_role(good));
  }
  for (auto bad : {"", ".", "..", ".a", "-a", "/a", "A", "a b", "a:b", "**", "a*", "(a)",
                   "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij12345"}) {
    INFO(bad);
    CHECK_FALSE(tessera::valid_role(bad));
  }
}

TEST_CASE("range arithmetic agrees with plain sets of numbers", "[resources]") {
  std::mt19937 rng(42);  // fixed seed: a failure reproduces
  for (int round = 0; round < 2000; ++round) {
    auto a = Resources::ranges("p", random_ranges(rng));
    auto b = Resources::ranges("p", random_ranges(rng));
    auto sa = expand(a.get_ranges("p"));
    auto sb = expand(b.get_ranges("p"));
    auto sum = a + b;
    std::set<uint64_t> both = sa;
    both.insert(sb.begin(), sb.end());
    REQUIRE(expand(sum.get_ranges("p")) == both);
    REQUIRE(parsed(sum.to_string()) == sum);
    REQUIRE(a.contains(b) == std::includes(sa.begin(), sa.end(), sb.begin(), sb.end()));
    REQUIRE(sum - b + b == sum);
    std::set<uint64_t> left;
    std::set_difference(both.begin(), both.end(), sb.begin(), sb.end(),
                        std::inserter(left, left.end()));
    REQUIRE(expand((sum - b).get_ranges("p")) == left);
  }
}
