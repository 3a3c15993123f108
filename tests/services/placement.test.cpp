// Placement of one app instance on one offer (services/apps/placement.hpp):
// what it takes, and the first reason it cannot.

#include "services/apps/placement.hpp"

#include <catch2/catch.hpp>

using namespace tessera;
using namespace tessera::apps;

namespace {

Offer offer_of(const std::string& resources, const std::string& role = "*",
               const std::string& hostname = "host-1", const std::string& attributes = "") {
  Offer o;
  o.id = "o1";
  o.agent_id = "a1";
  o.hostname = hostname;
  o.role = role;
  auto r = Resources::parse(resources);
  REQUIRE(r);
  o.resources = *r;
  auto a = parse_attributes(attributes);
  REQUIRE(a);
  o.attributes = *a;
  return o;
}

AppSpec app_of(double cpus, double mem, std::vector<uint32_t> ports = {0}) {
  AppSpec a;
  a.id = "/a";
  a.cmd = "true";
  a.cpus = cpus;
  a.mem = mem;
  a.ports.clear();
  for (auto p : ports)
    a.ports.push_back(PortDefinition{p, "", "tcp", {}});
  return a;
}

using Values = std::vector<std::vector<std::optional<std::string>>>;

}  // namespace

TEST_CASE("an instance takes its resources and the lowest free ports, until the offer is spent",
          "[apps][placement]") {
  auto o = offer_of("cpus:1;mem:256;ports:[31000-31002]");
  OfferView view{&o, o.resources};
  auto app = app_of(0.4, 100, {0, 0});
  auto first = fit(app, "*", {}, {}, view);
  REQUIRE(first.placed);
  CHECK(first.placed->ports == std::vector<uint32_t>{31000, 31001});
  CHECK(first.placed->resources.get("cpus") == Approx(0.4));
  CHECK(view.left.get("cpus") == Approx(0.6));
  CHECK(view.left.get_ranges("ports").size() == 1);
  // One port left: the next instance needs two.
  auto second = fit(app, "*", {}, {}, view);
  CHECK_FALSE(second.placed);
  CHECK(second.refusal == Refusal::ports);
  CHECK(std::string(marathon_reason(second.refusal)) == "InsufficientPorts");
}

TEST_CASE("the first resource short names the refusal, in a fixed order", "[apps][placement]") {
  auto o = offer_of("cpus:0.5;mem:64;ports:[31000-31010]");
  OfferView view{&o, o.resources};
  CHECK(fit(app_of(1, 32), "*", {}, {}, view).refusal == Refusal::cpus);
  CHECK(fit(app_of(0.1, 128), "*", {}, {}, view).refusal == Refusal::mem);
  auto disk = app_of(0.1, 32);
  disk.disk = 10;
  CHECK(fit(disk, "*", {}, {}, view).refusal == Refusal::disk);
  // A required port outside the offer's ranges.
  auto required = app_of(0.1, 32, {8080});
  required.require_ports = true;
  CHECK(fit(required, "*", {}, {}, view).refusal == Refusal::ports);
  // Without requirePorts a port is a service port: the host port is chosen.
  auto service = fit(app_of(0.1, 32, {8080}), "*", {}, {}, view);
  REQUIRE(service.placed);
  CHECK(service.placed->ports == std::vector<uint32_t>{31000});
  auto fixed_app = app_of(0.1, 32, {31005, 0});
  fixed_app.require_ports = true;
  auto fixed = fit(fixed_app, "*", {}, {}, view);
  REQUIRE(fixed.placed);
  CHECK(fixed.placed->ports == std::vector<uint32_t>{31005, 31001});
  // Nothing was taken by the refusals.
  CHECK(view.left.get("cpus") == Approx(0.3));
}

TEST_CASE("resources reserved for the app's role are used first, and another role's offer refuses",
          "[apps][placement]") {
  auto o = offer_of("cpus(web):0.5;cpus:1;mem:256;ports:[31000-31000]", "web");
  OfferView view{&o, o.resources};
  auto r = fit(app_of(0.8, 64), "web", {}, {}, view);
  REQUIRE(r.placed);
  CHECK(r.placed->resources.get("cpus", "web") == Approx(0.5));
  CHECK(r.placed->resources.get("cpus") == Approx(0.3));
  auto other = fit(app_of(0.1, 16), "batch", {}, {}, view);
  CHECK(other.refusal == Refusal::role);
}

TEST_CASE("constraints refuse with their name, and SPREAD only ranks", "[apps][placement]") {
  auto o = offer_of("cpus:4;mem:1024;ports:[31000-31010]", "*", "host-1", "rack:r1");
  OfferView view{&o, o.resources};
  auto app = app_of(0.1, 16);
  app.constraints = {{"hostname", Constraint::Op::unique, ""},
                     {"rack", Constraint::Op::spread, ""}};
  auto checks = compile_checks(app);
  REQUIRE(checks.size() == 2);
  Values none(2);
  REQUIRE(fit(app, "*", checks, none, view).placed);
  Values here = {{"host-1"}, {"r1"}};
  auto refused = fit(app, "*", checks, here, view);
  CHECK(refused.refusal == Refusal::constraint);
  CHECK(refused.why.find("constraint hostname:UNIQUE") == 0);
  CHECK(refused.constraint == "hostname:UNIQUE");
  // SPREAD: the load of this agent's rack, the lower the better.
  Values racks = {{"host-2", "host-3", "host-4"}, {"r1", "r1", "r2"}};
  CHECK(spread_load(checks, racks, o) == 2);
  CHECK(spread_load(checks, none, o) == 0);
}
