#pragma once
// The names the master's state view gives agent and drain states in JSON
// (the shared value types' JSON forms: services/common/json_forms.hpp).

#include "services/common/json_forms.hpp"
#include "services/common/resources.hpp"
#include "services/common/wire.hpp"

#include <capnp/operator.capnp.h>
#include <nlohmann/json.hpp>

namespace tessera {

const char* agent_state_name(wire::AgentViewState s);
const char* drain_state_name(wire::DrainState s);

}  // namespace tessera
