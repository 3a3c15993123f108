#include "runtime/address.hpp"

#include <catch2/catch.hpp>

using tessera::Address;

TEST_CASE("addresses parse and print as name@host:port", "[address]") {
  auto a = Address::parse("master@127.0.0.1:5050");
  REQUIRE(a);
  CHECK(a->name == "master");
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 5050);
  CHECK(a->to_string() == "master@127.0.0.1:5050");
  CHECK(a->node_id() == "127.0.0.1:5050");

  auto v6 = Address::parse("agent.1@[::1]:31000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "agent.1@[::1]:31000");
  CHECK(Address::parse(v6->to_string()).value() == *v6);
}

TEST_CASE("bad addresses are errors that say what is wrong", "[address]") {
  for (auto bad : {"", "master", "@127.0.0.1:1", "m@:1", "m@127.0.0.1", "m@127.0.0.1:0",
                   "m@127.0.0.1:70000", "m@127.0.0.1:12x", "m@::1:5", "bad name@h:1", "m@[::1:5"}) {
    INFO(bad);
    auto a = Address::parse(bad);
    REQUIRE_FALSE(a);
    CHECK(tessera::is(a.error(), tessera::Errc::bad_address));
    CHECK(tessera::describe(a.error()).find(bad) != std::string::npos);
  }
}

TEST_CASE("addresses on the same node compare by host and port", "[address]") {
  Address a{"x", "127.0.0.1", 1};
  Address b{"y", "127.0.0.1", 1};
  Address c{"x", "127.0.0.1", 2};
  CHECK(a.same_node(b));
  CHECK_FALSE(a.same_node(c));
  CHECK(a != c);
}
