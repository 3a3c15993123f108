#pragma once
// The contract every RegistryStore keeps, for each backend's tests.

#include "services/registry/store.hpp"

#include <catch2/catch.hpp>

namespace tessera::testing {

inline RegistryChange put(std::string key, std::string value) {
  return {std::move(key), std::move(value)};
}
inline RegistryChange del(std::string key) {
  return {std::move(key), std::nullopt};
}

// The contract every store keeps, from an empty store.
inline void check_contract(RegistryStore& store) {
  auto empty = store.load();
  REQUIRE(empty);
  CHECK(empty->version == 0);
  CHECK(empty->records.empty());

  auto v1 = store.commit(0, {put("a", "1"), put("b", std::string("\0\1\2", 3))});
  REQUIRE(v1);
  CHECK(*v1 == 1);
  // Later changes in one commit win; deletes apply.
  auto v2 = store.commit(1, {put("c", "x"), put("c", "y"), del("a")});
  REQUIRE(v2);
  CHECK(*v2 == 2);
  auto snap = store.load();
  REQUIRE(snap);
  CHECK(snap->version == 2);
  CHECK(snap->records ==
        std::map<std::string, std::string>{{"b", std::string("\0\1\2", 3)}, {"c", "y"}});

  // A writer that did not see the last commit loses, and writes nothing.
  auto stale = store.commit(1, {put("d", "lost")});
  REQUIRE_FALSE(stale);
  CHECK(is(stale.error(), Errc::conflict));
  // Beyond the limits: refused whole.
  auto big = store.commit(
      2, {put("e", "ok"), put("f", std::string(RegistryStore::value_bytes_max + 1, 'x'))});
  REQUIRE_FALSE(big);
  CHECK(is(big.error(), Errc::oversized));
  auto long_key = store.commit(2, {put(std::string(RegistryStore::key_bytes_max + 1, 'k'), "v")});
  REQUIRE_FALSE(long_key);
  CHECK(is(long_key.error(), Errc::oversized));
  snap = store.load();
  REQUIRE(snap);
  CHECK(snap->version == 2);
  CHECK(snap->records.count("d") == 0);
  CHECK(snap->records.count("e") == 0);
}

}  // namespace tessera::testing
