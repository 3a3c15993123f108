#pragma once
// CAF atoms for the runtime's internal, process-local messages.

#include <caf/atom.hpp>

namespace tessera {

using lookup_atom = caf::atom_constant<caf::atom("tslookup")>;
using relay_atom = caf::atom_constant<caf::atom("tsrelay")>;
using deferred_atom = caf::atom_constant<caf::atom("tsdefer")>;
using exited_atom = caf::atom_constant<caf::atom("tsexited")>;
using blocking_atom = caf::atom_constant<caf::atom("tsblock")>;
using inbox_atom = caf::atom_constant<caf::atom("tsinbox")>;

}  // namespace tessera
