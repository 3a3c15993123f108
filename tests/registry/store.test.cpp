// The registry's stores (services/registry): one contract, checked against
// the in-memory store and the SQLite store on a real file, and the records'
// encoding.

#include "services/registry/registry.hpp"
#include "services/registry/sqlite_store.hpp"
#include "registry/contract.hpp"
#include "support/test_support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace tessera;
using namespace tessera::testing;

TEST_CASE("the memory store keeps the registry contract", "[registry]") {
  MemoryStore store;
  check_contract(store);
}

TEST_CASE("the SQLite store keeps the registry contract, on disk", "[registry]") {
  TempDir dir;
  auto path = (dir.path() / "registry.db").string();
  {
    auto store = SqliteStore::open(path);
    REQUIRE(store);
    check_contract(**store);
  }
  // What was committed is there when the file is opened again.
  auto again = SqliteStore::open(path);
  REQUIRE(again);
  auto snap = (*again)->load();
  REQUIRE(snap);
  CHECK(snap->version == 2);
  CHECK(snap->records.size() == 2);
  CHECK((*again)->describe() == "sqlite:" + path);
}

TEST_CASE("two writers of one SQLite file: only the one that saw the last commit wins",
          "[registry]") {
  TempDir dir;
  auto path = (dir.path() / "registry.db").string();
  auto first = SqliteStore::open(path);
  auto second = SqliteStore::open(path);
  REQUIRE(first);
  REQUIRE(second);
  REQUIRE((*first)->commit(0, {put("leader", "first")}));
  auto lost = (*second)->commit(0, {put("leader", "second")});
  REQUIRE_FALSE(lost);
  CHECK(is(lost.error(), Errc::conflict));
  auto snap = (*second)->load();
  REQUIRE(snap);
  CHECK(snap->records.at("leader") == "first");
}

TEST_CASE("a file that is not a registry is an error that names it", "[registry]") {
  TempDir dir;
  auto path = dir.path() / "registry.db";
  std::ofstream(path) << "this is not an SQLite database, it is a text file of some length";
  auto store = SqliteStore::open(path.string());
  std::string text;
  if (store) {
    auto snap = (*store)->load();
    REQUIRE_FALSE(snap);
    text = describe(snap.error());
  } else {
    text = describe(store.error());
  }
  CHECK(text.find(path.string()) != std::string::npos);
}

TEST_CASE("make_store reads the --registry flag", "[registry]") {
  TempDir dir;
  auto memory = make_store("memory", "");
  REQUIRE(memory);
  CHECK((*memory)->describe() == "memory");
  auto sqlite = make_store("sqlite", dir.path().string());
  REQUIRE(sqlite);
  CHECK((*sqlite)->describe() == "sqlite:" + (dir.path() / "registry.db").string());
  auto no_dir = make_store("sqlite", "");
  REQUIRE_FALSE(no_dir);
  CHECK(what(no_dir.error()).find("--work-dir") != std::string::npos);
  auto bad = make_store("etcd://x", dir.path().string());
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), Errc::invalid_argument));
}

TEST_CASE("registry records round-trip, and a corrupt one is an error naming its key",
          "[registry]") {
  MemoryStore store;
  RegistryAgent agent;
  agent.id = "S1";
  agent.hostname = "host-1";
  agent.address = "agent@h:1";
  agent.state = RegistryAgent::State::unreachable;
  agent.since_ns = 42;
  agent.reservations = *Resources::parse("cpus(web):1.5;mem(web):256;ports(web):[31000-31009]");
  RegistryAgent removed;
  removed.id = "S2";
  removed.hostname = "host-2";
  removed.address = "agent@h:2";
  removed.state = RegistryAgent::State::removed;
  removed.since_ns = 7;
  removed.reason = "unreachable for too long";
  removed.order = 3;
  RegistryFramework fw;
  fw.id = "F1";
  fw.name = "web";
  fw.roles = {"web", "batch"};
  fw.failover_timeout_ns = 5'000'000'000;
  fw.capabilities = {wire::FrameworkCapability::PARTITION_AWARE};
  REQUIRE(store.commit(0, {master_record(3), agent_record(agent), agent_record(removed),
                           ended_record("S1", {"F1", "t/1"}), framework_record(fw)}));
  auto snap = store.load();
  REQUIRE(snap);
  auto state = decode_registry(*snap);
  REQUIRE(state);
  CHECK(state->epoch == 3);
  CHECK(state->agents.at("S1").state == RegistryAgent::State::unreachable);
  CHECK(state->agents.at("S1").since_ns == 42);
  CHECK(state->agents.at("S1").reservations == agent.reservations);
  CHECK(state->agents.at("S2").reservations.empty());
  CHECK(state->agents.at("S2").reason == "unreachable for too long");
  CHECK(state->agents.at("S2").order == 3);
  CHECK(state->ended.at("S1") == std::set<RegistryTaskKey>{{"F1", "t/1"}});
  CHECK(state->frameworks.at("F1") == fw);

  REQUIRE(store.commit(1, {put("agent/S3", "garbage!")}));
  snap = store.load();
  REQUIRE(snap);
  auto corrupt = decode_registry(*snap);
  REQUIRE_FALSE(corrupt);
  CHECK(what(corrupt.error()).find("agent/S3") != std::string::npos);

  // A record filed under another id is corrupt too.
  auto moved = agent_record(agent);
  REQUIRE(store.commit(2, {del("agent/S3"), put("agent/S9", *moved.value)}));
  snap = store.load();
  REQUIRE(snap);
  corrupt = decode_registry(*snap);
  REQUIRE_FALSE(corrupt);
  CHECK(what(corrupt.error()).find("agent/S9") != std::string::npos);
}
