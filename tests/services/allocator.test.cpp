// The allocator's mechanism with the DRF policy: scenarios on small clusters.

#include "services/allocator/allocator.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace tessera;
using namespace std::chrono_literals;

namespace {

Resources res(const char* text) {
  auto r = Resources::parse(text);
  REQUIRE(r);
  return *r;
}

std::unique_ptr<Allocator> make_allocator() {
  auto a = Allocator::make();
  REQUIRE(a);
  return std::move(*a);
}

void add_agents(Allocator& a, int n, const char* resources) {
  for (int i = 0; i < n; ++i)
    REQUIRE_FALSE(a.add_agent("agent" + std::to_string(i), res(resources)));
}

std::map<std::string, int> offers_per_framework(const std::vector<OfferGrant>& offers) {
  std::map<std::string, int> count;
  for (auto& o : offers)
    ++count[o.framework];
  return count;
}

const TimePoint t0{};

}  // namespace

TEST_CASE("two frameworks in two roles share a cluster evenly", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 4, "cpus:4;mem:4096");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  REQUIRE_FALSE(a->add_framework("fb", {"b"}));
  auto offers = a->allocate(t0);
  CHECK(offers_per_framework(offers) == std::map<std::string, int>{{"fa", 2}, {"fb", 2}});
  for (auto& o : offers)
    CHECK(o.resources == res("cpus:4;mem:4096"));
  CHECK(a->allocate(t0).empty());  // everything is out
}

TEST_CASE("role weights skew the split in their proportion", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 8, "cpus:1;mem:1024");
  REQUIRE_FALSE(a->set_weight("a", 3));
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  REQUIRE_FALSE(a->add_framework("fb", {"b"}));
  CHECK(offers_per_framework(a->allocate(t0)) == std::map<std::string, int>{{"fa", 6}, {"fb", 2}});
}

TEST_CASE("a quota limit caps what a role is offered", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 4, "cpus:2;mem:1024");
  REQUIRE_FALSE(a->set_quota("a", {{"cpus", 3}, {"mem", 2048}}));
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0);
  CHECK(a->allocated("fa") == res("cpus:3;mem:2048"));
  CHECK(offers.size() == 2);  // 2 cpus, then 1: the limit leaves nothing worth offering
  REQUIRE_FALSE(a->set_quota("a", {{"cpus", 8}, {"mem", 4096}}));
  a->allocate(t0);
  CHECK(a->allocated("fa").total("cpus") == Approx(8));
}

TEST_CASE("scraps too small to run anything are not offered", "[allocator]") {
  auto a = make_allocator();
  REQUIRE_FALSE(a->add_agent("scraps", res("cpus:0.005;mem:16;ports:[31000-31010]")));
  REQUIRE_FALSE(a->add_agent("useful", res("cpus:0.01;ports:[31000-31010]")));
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].agent == "useful");
}

TEST_CASE("reserved resources go only to their role", "[allocator]") {
  auto a = make_allocator();
  REQUIRE_FALSE(a->add_agent("reserved", res("cpus(b):2;mem(b):512")));
  REQUIRE_FALSE(a->add_agent("shared", res("cpus:2;mem:512")));
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].agent == "shared");
  REQUIRE_FALSE(a->add_framework("fb", {"b"}));
  offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].framework == "fb");
  CHECK(offers[0].resources == res("cpus(b):2;mem(b):512"));
}

TEST_CASE("a declined offer is filtered for its refuse time, then offered again",
          "[allocator][filter]") {
  auto a = make_allocator();
  add_agents(*a, 1, "cpus:4;mem:4096");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  REQUIRE_FALSE(a->decline("fa", "agent0", "a", offers[0].resources, 10s, t0));
  CHECK(a->allocate(t0 + 1s).empty());
  CHECK(a->allocate(t0 + 9s).empty());
  CHECK(a->allocate(t0 + 10s).size() == 1);
}

TEST_CASE("a filter does not hide resources beyond what was declined", "[allocator][filter]") {
  auto a = make_allocator();
  add_agents(*a, 1, "cpus:4;mem:4096");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  REQUIRE_FALSE(a->add_framework("fb", {"b"}));
  auto first = a->allocate(t0);
  REQUIRE(first.size() == 1);
  auto holder = first[0].framework;
  auto other = holder == "fa" ? std::string("fb") : std::string("fa");
  auto other_role = other == "fa" ? "a" : "b";
  // The holder gives back half; the other framework declines that half.
  auto half = res("cpus:2;mem:2048");
  REQUIRE_FALSE(a->recover(holder, "agent0", first[0].role, half));
  auto second = a->allocate(t0);
  REQUIRE(second.size() == 1);
  REQUIRE(second[0].framework == other);
  REQUIRE_FALSE(a->decline(other, "agent0", other_role, half, 1h, t0));
  // When the whole agent is free again, it is more than was declined.
  REQUIRE_FALSE(a->recover(holder, "agent0", first[0].role, half));
  auto third = a->allocate(t0);
  REQUIRE(third.size() == 1);
  CHECK(third[0].resources == res("cpus:4;mem:4096"));
}

TEST_CASE("suppress stops offers, revive resumes them and clears filters", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 2, "cpus:1;mem:128");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0);
  REQUIRE(offers.size() == 2);
  REQUIRE_FALSE(a->decline("fa", offers[0].agent, "a", offers[0].resources, 1h, t0));
  REQUIRE_FALSE(a->suppress("fa"));
  REQUIRE_FALSE(a->recover("fa", offers[1].agent, "a", offers[1].resources));
  CHECK(a->allocate(t0).empty());
  REQUIRE_FALSE(a->revive("fa"));
  CHECK(a->allocate(t0).size() == 2);  // the filtered agent too
}

TEST_CASE("suppress and revive act on the roles named", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 1, "cpus:1;mem:128");
  REQUIRE_FALSE(a->add_framework("fa", {"a", "b"}));
  REQUIRE_FALSE(a->suppress("fa", {"a"}));
  auto offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].role == "b");  // role a is suppressed, b is not
  REQUIRE_FALSE(a->recover("fa", offers[0].agent, "b", offers[0].resources));
  REQUIRE_FALSE(a->suppress("fa", {"b"}));  // now every role
  CHECK(a->allocate(t0).empty());
  REQUIRE_FALSE(a->revive("fa", {"a"}));
  offers = a->allocate(t0);
  REQUIRE(offers.size() == 1);
  CHECK(offers[0].role == "a");
  CHECK(a->suppress("fa", {"c"}));  // not its role: an error
  REQUIRE_FALSE(a->recover("fa", offers[0].agent, "a", offers[0].resources));
  REQUIRE_FALSE(a->revive("fa"));
  CHECK(a->allocate(t0).size() == 1);
  REQUIRE_FALSE(a->remove_framework("fa"));
}

TEST_CASE("when every framework has filtered an agent, none is offered it", "[allocator][filter]") {
  auto a = make_allocator();
  add_agents(*a, 3, "cpus:1;mem:128");
  for (auto f : {"f1", "f2", "f3"})
    REQUIRE_FALSE(a->add_framework(f, {"r"}));
  // Each cycle offers every agent to the next framework that has not
  // declined it; after three rounds everyone has declined everything.
  for (int round = 0; round < 3; ++round) {
    auto offers = a->allocate(t0);
    CHECK(offers.size() == 3);
    for (auto& o : offers)
      REQUIRE_FALSE(a->decline(o.framework, o.agent, o.role, o.resources, 1h + round * 1s, t0));
  }
  CHECK(a->allocate(t0 + 1s).empty());
  // f1's filters expire first (declined in round 0 or later: refuse 1h..1h+2s).
  CHECK_FALSE(a->allocate(t0 + 1h + 5s).empty());
}

TEST_CASE("removing a framework returns what it held", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 2, "cpus:2;mem:256");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  REQUIRE(a->allocate(t0).size() == 2);
  REQUIRE_FALSE(a->remove_framework("fa"));
  CHECK(a->available("agent0") == res("cpus:2;mem:256"));
  REQUIRE_FALSE(a->add_framework("fb", {"b"}));
  CHECK(a->allocate(t0).size() == 2);
  REQUIRE_FALSE(a->remove_agent("agent1"));
  CHECK(a->allocated("fb") == res("cpus:2;mem:256"));
  CHECK(a->agent_count() == 1);
}

TEST_CASE("bad requests are errors that change nothing", "[allocator]") {
  auto a = make_allocator();
  add_agents(*a, 1, "cpus:2;mem:256");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  CHECK(a->add_agent("agent0", res("cpus:1")));
  CHECK(a->add_framework("fa", {"a"}));
  CHECK(a->add_framework("fx", {}));
  CHECK(a->add_framework("fy", {"Bad Role"}));
  CHECK(a->claim("fa", "agent0", "a", res("cpus:9")));  // more than the agent has
  CHECK(a->remove_framework("nobody"));
  CHECK(a->remove_agent("nowhere"));
  CHECK(a->set_weight("a", 0));
  CHECK(a->set_quota("a", {{"cpus", -1}}));
  CHECK(a->suppress("nobody"));
  CHECK(a->recover("fa", "agent0", "a", res("cpus:1")));  // holds nothing yet
  REQUIRE(a->allocate(t0).size() == 1);
  CHECK(a->recover("fa", "agent0", "a", res("cpus:3")));  // more than it holds
  CHECK(a->allocated("fa") == res("cpus:2;mem:256"));
  CHECK(Allocator::make(AllocatorConfig{"fair-ish", 0}).error());
}

TEST_CASE("a refuse time beyond the end of time filters for ever", "[allocator][filter]") {
  auto a = make_allocator();
  add_agents(*a, 1, "cpus:1;mem:128");
  REQUIRE_FALSE(a->add_framework("fa", {"a"}));
  auto offers = a->allocate(t0 + 1s);
  REQUIRE(offers.size() == 1);
  REQUIRE_FALSE(a->decline("fa", "agent0", "a", offers[0].resources, Duration::max(), t0 + 1s));
  CHECK(a->allocate(t0 + 2s).empty());
  CHECK(a->allocate(t0 + 24h * 365 * 100).empty());
}
