#pragma once
// Placement of one app instance on one offer: mechanism only. fit() says
// whether what is left of an offer can take one more instance of an app,
// and takes it (resources and host ports) if so, or names the first reason
// it cannot. Which app goes first, and how many, is the framework's policy
// (apps_framework.cpp).
//
// Resources come from the offer's allocation role: what is reserved for it
// first, then unreserved. Ports: each port definition of 0 takes the lowest
// free port of the offer's "ports" ranges. With requirePorts, a port above 0
// is that host port and must be among them; without, it is a service port
// (Marathon's: a name for load balancers) and the host port is chosen as for 0.
//
// A value-only module; no I/O, no actor.

#include "services/apps/app_spec.hpp"
#include "services/apps/constraints.hpp"
#include "services/scheduler/types.hpp"

#include <optional>
#include <string>
#include <vector>

namespace tessera::apps {

// Why an offer could not take an instance, in the order they are checked.
enum class Refusal { none, role, cpus, mem, disk, gpus, ports, constraint };
const char* to_string(Refusal r);
// Marathon's name for it in /v2/queue ("InsufficientCpus", ...).
const char* marathon_reason(Refusal r);

struct Placed {
  Resources resources;          // what the task takes
  std::vector<uint32_t> ports;  // one per port definition, in order
};

struct FitResult {
  std::optional<Placed> placed;  // set when the instance fits
  Refusal refusal = Refusal::none;
  std::string why;         // for a constraint: ConstraintCheck's words
  std::string constraint;  // for a constraint: its name ("hostname:UNIQUE")
};

// What one agent offers, and what the app's instances already hold where
// (one field value per instance and per constraint, as ConstraintCheck wants).
struct OfferView {
  const Offer* offer = nullptr;
  Resources left;  // what is still free of the offer
};

// One more instance of app (in role) on what is left of view; on success
// view.left loses what the instance takes. placed[i] are the values of
// checks[i]'s field on the agents the app's instances are on.
FitResult fit(const AppSpec& app, const std::string& role,
              const std::vector<ConstraintCheck>& checks,
              const std::vector<std::vector<std::optional<std::string>>>& placed, OfferView& view);

// The app's constraints, compiled (parse_app has already checked them).
std::vector<ConstraintCheck> compile_checks(const AppSpec& app);

// How many instances hold each value of the SPREAD constraints' fields on
// this offer's agent (lower: preferred). Zero without a SPREAD constraint.
uint64_t spread_load(const std::vector<ConstraintCheck>& checks,
                     const std::vector<std::vector<std::optional<std::string>>>& placed,
                     const Offer& offer);

}  // namespace tessera::apps
