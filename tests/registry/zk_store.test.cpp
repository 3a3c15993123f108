// The ZooKeeper store against real ZooKeeper servers on 127.0.0.1, started
// and stopped by tools/zk.sh (the zookeeper package, which
// tools/bootstrap.sh installs).

#include "registry/contract.hpp"
#include "services/registry/registry.hpp"
#include "services/registry/zk_store.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace tessera;
using namespace tessera::testing;

namespace {

std::unique_ptr<ZkStore> open_store(const std::string& spec) {
  auto store = ZkStore::open(spec);
  INFO(describe(store ? caf::error{} : store.error()));
  REQUIRE(store);
  return std::move(*store);
}

}  // namespace

TEST_CASE("the ZooKeeper store keeps the registry contract", "[registry][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  {
    auto store = open_store(zk.spec);
    check_contract(*store);
    CHECK(store->describe() == zk.spec);
  }
  // Another client (a master after a failover) reads what was committed.
  auto again = open_store(zk.spec);
  auto snap = again->load();
  REQUIRE(snap);
  CHECK(snap->version == 2);
  CHECK(snap->records.size() == 2);
  // Keys with '/' and '%' come back as they were written.
  REQUIRE(again->commit(2, {put("ended/S1/F%1/t/2", "x")}));
  snap = again->load();
  REQUIRE(snap);
  CHECK(snap->records.count("ended/S1/F%1/t/2") == 1);
}

TEST_CASE("two masters on one ZooKeeper registry: only the one that saw the last commit writes",
          "[registry][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto first = open_store(zk.spec);
  auto second = open_store(zk.spec);
  REQUIRE(first->load());
  REQUIRE(second->load());
  REQUIRE(first->commit(0, {put("leader", "first")}));
  auto lost = second->commit(0, {put("leader", "second")});
  REQUIRE_FALSE(lost);
  CHECK(is(lost.error(), Errc::conflict));
  auto snap = second->load();
  REQUIRE(snap);
  CHECK(snap->records.at("leader") == "first");
}

TEST_CASE("a commit larger than one ZooKeeper request goes whole, in parts",
          "[registry][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto store = open_store(zk.spec);
  REQUIRE(store->load());
  // 3 MiB in 3000 records: beyond ZooKeeper's 1 MiB request limit.
  std::vector<RegistryChange> changes;
  for (int i = 0; i < 3000; ++i)
    changes.push_back(put("agent/S" + std::to_string(i), std::string(1024, 'a' + i % 26)));
  auto version = store->commit(0, changes);
  REQUIRE(version);
  CHECK(*version > 1);  // several multi-ops, each one compare-and-set
  auto snap = open_store(zk.spec)->load();
  REQUIRE(snap);
  CHECK(snap->version == *version);
  REQUIRE(snap->records.size() == 3000);
  CHECK(snap->records.at("agent/S2999") == std::string(1024, 'a' + 2999 % 26));
  // And deletes, as many.
  std::vector<RegistryChange> removals;
  for (int i = 0; i < 3000; ++i)
    removals.push_back(del("agent/S" + std::to_string(i)));
  auto after = store->commit(*version, removals);
  REQUIRE(after);
  snap = store->load();
  REQUIRE(snap);
  CHECK(snap->records.empty());
}

TEST_CASE("the ZooKeeper registry goes on when one server of three dies", "[registry][zookeeper]") {
  ZkServers zk(3);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto store = open_store(zk.spec);
  REQUIRE(store->load());
  REQUIRE(store->commit(0, {put("agent/S1", "one")}));
  zk.kill(1);
  // The client moves to another server within its session (a new leader
  // may need an election first): a commit cut off on the way is not
  // applied, and is tried again.
  expected<uint64_t> v = make_error(Errc::timeout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!v && std::chrono::steady_clock::now() < deadline) {
    v = store->commit(1, {put("agent/S2", "two")});
    INFO(describe(v ? caf::error{} : v.error()));
    REQUIRE((v || !is(v.error(), Errc::conflict)));
    if (!v)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  REQUIRE(v);
  auto snap = store->load();
  REQUIRE(snap);
  CHECK(snap->records.size() == 2);
}

TEST_CASE("a store that read ahead (a warm standby) answers what the leader wrote since",
          "[registry][zookeeper]") {
  ZkServers zk(1);
  INFO(zk.why);
  REQUIRE(!zk.spec.empty());
  auto leader = open_store(zk.spec);
  auto standby = open_store(zk.spec);
  REQUIRE(leader->load());
  REQUIRE(leader->commit(0, {put("a", "1"), put("b", "2")}));
  auto warm = standby->load();  // read ahead, kept
  REQUIRE(warm);
  CHECK(warm->records.size() == 2);
  REQUIRE(leader->commit(1, {del("a"), put("c", "3")}));
  auto after = standby->load();  // the version moved: read again
  REQUIRE(after);
  CHECK(after->version == 2);
  CHECK(after->records == std::map<std::string, std::string>{{"b", "2"}, {"c", "3"}});
  // The standby takes over and writes; its own read-ahead follows its commit.
  REQUIRE(standby->commit(2, {put("d", "4"), put("b", "22")}));
  auto own = standby->load();
  REQUIRE(own);
  CHECK(own->version == 3);
  CHECK(own->records == std::map<std::string, std::string>{{"b", "22"}, {"c", "3"}, {"d", "4"}});
  auto seen = leader->load();
  REQUIRE(seen);
  CHECK(seen->records == own->records);
}
