#pragma once
// JSON forms of Tessera's value types, as Mesos's v1 API renders its own
// (Resource, Attribute): shared by the master's state view and the agent's
// API.

#include "services/common/resources.hpp"
#include "services/common/wire.hpp"

#include <capnp/operator.capnp.h>
#include <nlohmann/json.hpp>

namespace tessera {

nlohmann::json resources_json(const Resources& r);
// The same, written as text onto out (no DOM): for bulk reads.
void append_resources(std::string& out, const Resources& r);
nlohmann::json attributes_json(const std::vector<Attribute>& attributes);
const char* agent_state_name(wire::AgentViewState s);
const char* drain_state_name(wire::DrainState s);

}  // namespace tessera
