// The JSON forms of resources: what the HTTP API reads back is what it wrote,
// Mesos's reservation form is understood, and bad input names what is wrong.

#include "services/common/json_forms.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using json = nlohmann::json;

TEST_CASE("resources read back from their JSON form are equal", "[resources][json]") {
  auto r = Resources::parse(
      "cpus:1.5;cpus(web):0.25;mem(web):512;ports(db):[31000-31009,32000-32000];"
      "zones:{a,b}");
  REQUIRE(r);
  auto back = resources_from_json(resources_json(*r));
  REQUIRE(back);
  CHECK(*back == *r);
  // The text form is accepted too.
  auto text = resources_from_json(json("cpus(web):2;mem:64"));
  REQUIRE(text);
  CHECK(text->to_string() == "cpus(web):2;mem:64");
}

TEST_CASE("Mesos's reservations list names the role", "[resources][json]") {
  auto in = json::parse(R"([
    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2},
     "reservations": [{"type": "DYNAMIC", "role": "web", "principal": "ops"}]},
    {"name": "mem", "scalar": {"value": 128}, "role": "web"},
    {"name": "disk", "type": "SCALAR", "scalar": {"value": 10}, "reservations": []}])");
  auto r = resources_from_json(in);
  REQUIRE(r);
  CHECK(r->to_string() == "cpus(web):2;disk:10;mem(web):128");
}

TEST_CASE("bad resource JSON is refused, naming the entry and what is wrong", "[resources][json]") {
  auto error = [](const char* text) {
    auto r = resources_from_json(json::parse(text));
    REQUIRE_FALSE(r);
    return what(r.error());
  };
  CHECK(error(R"({"cpus": 1})").find("a list or a string") != std::string::npos);
  CHECK(error(R"([{"type": "SCALAR"}])").find("needs a name") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "type": "SCALAR"}])").find("a scalar needs") !=
        std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": -1}}])").find(">= 0") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": 1}, "role": "no spaces"}])")
            .find("no spaces") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": 1},
                   "reservations": [{"role": "a"}, {"role": "a/b"}]}])")
            .find("refined reservations are not supported") != std::string::npos);
  CHECK(error(R"([{"name": "ports", "ranges": {"range": [{"begin": 9, "end": 1}]}}])")
            .find("inverted range") != std::string::npos);
  CHECK(error(R"([{"name": "x", "type": "TEXT"}])").find("unknown type 'TEXT'") !=
        std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": 1},
                   "reservations": [{"type": "STATIC", "role": "a"}]}])")
            .find("only DYNAMIC") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": 1}, "role": "a",
                   "reservations": [{"role": "b"}]}])")
            .find("differ") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "scalar": {"value": 1}},
                  {"name": "cpus", "ranges": {"range": [{"begin": 1, "end": 2}]}}])")
            .find("both SCALAR and RANGES") != std::string::npos);
  CHECK(error(R"([{"name": "cpus", "type": 7}])").find("'type' must be a string") !=
        std::string::npos);
  auto many = json::array();
  for (int i = 0; i < 1001; ++i)
    many.push_back({{"name", "cpus"}, {"scalar", {{"value", 1e12}}}});
  auto r = resources_from_json(many);
  REQUIRE_FALSE(r);
  CHECK(what(r.error()).find("at most 1000") != std::string::npos);
}
