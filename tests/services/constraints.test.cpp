// Placement constraints of the apps framework: each of Marathon's operators
// against a candidate agent and where an app's instances already are.

#include "services/apps/constraints.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::apps;

namespace {

ConstraintCheck check(const std::string& field, Constraint::Op op, const std::string& value = {}) {
  auto c = ConstraintCheck::compile(Constraint{field, op, value});
  REQUIRE(c);
  return *c;
}

using Values = std::vector<std::optional<std::string>>;

}  // namespace

TEST_CASE("a field is the hostname or an attribute, as the agent writes it",
          "[apps][constraints]") {
  auto attributes = parse_attributes("rack:r1;zone:eu-1;cores:16;slots:[1-4]");
  REQUIRE(attributes);
  CHECK(field_value("hostname", "host-1", *attributes) == "host-1");
  CHECK(field_value("rack", "host-1", *attributes) == "r1");
  CHECK(field_value("cores", "host-1", *attributes) == "16");
  CHECK(field_value("slots", "host-1", *attributes) == "[1-4]");
  CHECK_FALSE(field_value("gpu", "host-1", *attributes));
}

TEST_CASE("UNIQUE, CLUSTER, IS and MAX_PER", "[apps][constraints]") {
  using Op = Constraint::Op;
  auto unique = check("hostname", Op::unique);
  CHECK_FALSE(unique.refuses("a", {}));
  CHECK_FALSE(unique.refuses("b", {"a"}));
  auto refused = unique.refuses("a", {"b", "a"});
  REQUIRE(refused);
  CHECK(*refused == "constraint hostname:UNIQUE: an instance already runs where hostname is a");
  // An agent without the field is refused by all but UNLIKE.
  CHECK(unique.refuses(std::nullopt, {}));

  auto cluster = check("rack", Op::cluster, "r1");
  CHECK_FALSE(cluster.refuses("r1", {"r1", "r1"}));
  CHECK(*cluster.refuses("r2", {}) == "constraint rack:CLUSTER:r1: rack is r2, not r1");
  CHECK_FALSE(check("zone", Op::is, "eu-1").refuses("eu-1", {}));
  CHECK(check("zone", Op::is, "eu-1").refuses("eu-2", {}));

  auto max_per = check("rack", Op::max_per, "2");
  CHECK_FALSE(max_per.refuses("r1", {"r1", "r2"}));
  CHECK(*max_per.refuses("r1", {"r1", "r2", "r1"}) ==
        "constraint rack:MAX_PER:2: 2 instance(s) already where rack is r1");
}

TEST_CASE("GROUP_BY spreads instances evenly over the values", "[apps][constraints]") {
  using Op = Constraint::Op;
  auto spread = check("rack", Op::group_by);
  CHECK_FALSE(spread.refuses("r1", {}));
  CHECK_FALSE(spread.refuses("r2", {"r1"}));  // a new value is always the emptiest
  CHECK(spread.refuses("r1", {"r1", "r2", "r1"}));
  CHECK_FALSE(spread.refuses("r2", {"r1", "r2", "r1"}));
  // With a count of groups, a second instance on r1 waits until all 3 are used.
  auto three = check("rack", Op::group_by, "3");
  CHECK_FALSE(three.refuses("r2", {"r1"}));
  CHECK(*three.refuses("r1", {"r1", "r2"}) ==
        "constraint rack:GROUP_BY:3: rack r1 has 1 instance(s); another value has 0");
  CHECK_FALSE(three.refuses("r1", {"r1", "r2", "r3"}));
}

TEST_CASE("LIKE and UNLIKE match the whole value", "[apps][constraints]") {
  using Op = Constraint::Op;
  auto like = check("rack", Op::like, "rack-[1-3]");
  CHECK_FALSE(like.refuses("rack-2", {}));
  CHECK(like.refuses("rack-4", {}));
  CHECK(like.refuses("my-rack-2", {}));  // anchored: the whole value
  CHECK(like.refuses(std::nullopt, {}));
  auto unlike = check("rack", Op::unlike, "rack-[1-3]");
  CHECK(unlike.refuses("rack-1", {}));
  CHECK_FALSE(unlike.refuses("rack-9", {}));
  CHECK_FALSE(unlike.refuses(std::nullopt, {}));  // no such field: not like it
  // Alternatives match the whole value too, and Java's \d is a digit.
  auto either = check("rack", Op::like, "rack-1|rack-2");
  CHECK_FALSE(either.refuses("rack-2", {}));
  CHECK(either.refuses("rack-12", {}));
  CHECK(either.refuses("rack-1x", {}));
  auto digits = check("hostname", Op::like, "agent-\\d+");
  CHECK_FALSE(digits.refuses("agent-12", {}));
  CHECK(digits.refuses("agent-x", {}));
}

TEST_CASE("a constraint that cannot be evaluated does not compile", "[apps][constraints]") {
  using Op = Constraint::Op;
  // Unbalanced: it cannot escape the whole-value match either.
  CHECK_FALSE(ConstraintCheck::compile(Constraint{"rack", Op::like, "r1)|(x"}));
  auto bad_regex = ConstraintCheck::compile(Constraint{"rack", Op::like, "("});
  REQUIRE_FALSE(bad_regex);
  CHECK(what(bad_regex.error()).find("not a valid regular expression") != std::string::npos);
  CHECK_FALSE(ConstraintCheck::compile(Constraint{"rack", Op::max_per, "0"}));
  CHECK_FALSE(ConstraintCheck::compile(Constraint{"rack", Op::max_per, "x"}));
  CHECK_FALSE(ConstraintCheck::compile(Constraint{"rack", Op::group_by, "-1"}));
  CHECK(ConstraintCheck::compile(Constraint{"rack", Op::group_by, ""}));
}
