// Leader election and detection against real ZooKeeper servers
// (tools/zk.sh): who leads, who hears of it, and what happens when the
// leader withdraws, goes away or loses ZooKeeper.

#include "services/election/zk_election.hpp"
#include "services/registry/zk_store.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace tessera;
using namespace tessera::testing;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<ZkElection> open_or_fail(const std::string& spec, const std::string& candidate) {
  auto e = ZkElection::open(spec, {2000, candidate, ""});
  REQUIRE(e);
  return *e;
}

bool sees(const ZkElection& e, const std::string& leader) {
  auto v = e.view();
  return v.connected && v.leader == leader;
}

}  // namespace

TEST_CASE(
    "zk election: the first candidate leads, every member and observer agrees, and a "
    "withdrawal hands the lead on",
    "[election][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto a = open_or_fail(zk.spec, "master@10.0.0.1:5050");
  REQUIRE(wait_until([&] { return a->view().leading; }, 15s));
  auto b = open_or_fail(zk.spec, "master@10.0.0.2:5050");
  auto observer = open_or_fail(zk.spec, "");
  REQUIRE(wait_until([&] { return sees(*b, "master@10.0.0.1:5050"); }, 15s));
  REQUIRE(wait_until([&] { return sees(*observer, "master@10.0.0.1:5050"); }, 15s));
  CHECK_FALSE(b->view().leading);
  CHECK_FALSE(observer->view().leading);

  // a withdraws: its node goes at once, b leads, a stands by under a new node.
  a->withdraw();
  REQUIRE(wait_until([&] { return b->view().leading; }, 15s));
  REQUIRE(wait_until([&] { return sees(*observer, "master@10.0.0.2:5050"); }, 15s));
  REQUIRE(wait_until([&] { return sees(*a, "master@10.0.0.2:5050"); }, 15s));
  CHECK_FALSE(a->view().leading);

  // b's process goes (its session closes): a leads again.
  b.reset();
  REQUIRE(wait_until([&] { return a->view().leading; }, 15s));
  REQUIRE(wait_until([&] { return sees(*observer, "master@10.0.0.1:5050"); }, 15s));
}

TEST_CASE("zk election: on_change runs once per change, and at once for a change already seen",
          "[election][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto observer = open_or_fail(zk.spec, "");
  REQUIRE(wait_until([&] { return observer->view().connected; }, 15s));
  auto seen = observer->view().generation;
  auto calls = std::make_shared<std::atomic<int>>(0);
  observer->on_change(seen, [calls] { ++*calls; });
  CHECK(calls->load() == 0);  // nothing changed yet
  auto a = open_or_fail(zk.spec, "master@10.0.0.1:5050");
  REQUIRE(wait_until([&] { return sees(*observer, "master@10.0.0.1:5050"); }, 15s));
  REQUIRE(wait_until([&] { return calls->load() == 1; }, 5s));
  std::this_thread::sleep_for(200ms);
  CHECK(calls->load() == 1);                         // one-shot
  observer->on_change(seen, [calls] { ++*calls; });  // already moved past: at once
  CHECK(calls->load() == 2);
}

TEST_CASE("zk election: a leader whose ensemble goes silent is told it is disconnected",
          "[election][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto a = open_or_fail(zk.spec, "master@10.0.0.1:5050");
  REQUIRE(wait_until([&] { return a->view().leading && a->view().connected; }, 15s));
  CHECK(a->view().session != 0);
  CHECK(a->view().session_timeout_ms > 0);
  zk.kill(1);
  // Still the leader as far as it knows, but not connected: its contender
  // must step down before the session can expire (contender.hpp).
  REQUIRE(wait_until([&] { return !a->view().connected; }, 15s));
}

TEST_CASE("zk election: a bad spec is refused, naming the flag", "[election]") {
  auto bad = ZkElection::open("zk://127.0.0.1:2181", {});
  REQUIRE_FALSE(bad);
  CHECK(describe(bad.error()).find("--master") != std::string::npos);
  auto not_zk = ZkElection::open("http://x/y", {1000, "master@h:1", ""});
  REQUIRE_FALSE(not_zk);
  CHECK(describe(not_zk.error()).find("--zk") != std::string::npos);
}

TEST_CASE("zk election: a registry fenced by the leader's node refuses writes once that lead ended",
          "[election][registry][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto a = open_or_fail(zk.spec, "master@10.0.0.1:5050");
  REQUIRE(wait_until([&] { return a->view().leading; }, 15s));
  auto node = a->view().leader_node;
  CHECK(node.rfind("/tessera/election/member_", 0) == 0);
  auto store = ZkStore::open(zk.spec);
  REQUIRE(store);
  (*store)->set_fence(node);
  REQUIRE((*store)->load());
  REQUIRE((*store)->commit(0, {{"agent/S1", std::string("x")}}));
  // The lead ends (the session closes: its node goes at once).
  a.reset();
  auto refused = (*store)->commit(1, {{"agent/S2", std::string("y")}});
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), Errc::conflict));
  auto snap = (*store)->load();
  REQUIRE(snap);
  CHECK(snap->records.count("agent/S2") == 0);  // nothing of it written
  CHECK(snap->version == 1);
}
