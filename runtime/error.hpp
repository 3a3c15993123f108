#pragma once
// One error enum for the whole project. Errors are values: functions that can
// fail return caf::expected<T> or caf::error built from these codes, and OS or
// library errors are translated once, where they enter (see make_os_error).

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace tessera {

enum class Errc : uint8_t {
  ok = 0,
  timeout,           // a request or operation ran out of time
  peer_lost,         // the peer actor exited or its node's connection dropped
  unknown_actor,     // no actor with that name on the target node
  bad_address,       // an address string that does not parse
  name_taken,        // spawn with a name already registered on the node
  connect_failed,    // the target node could not be reached
  malformed,         // a payload that does not decode as its schema
  truncated,         // a payload whose size is not a whole number of words
  oversized,         // a payload beyond the configured size limit
  traversal_limit,   // a payload beyond Cap'n Proto's traversal limit
  unhandled_type,    // a message type the receiving actor has no handler for
  spawn_failed,      // a process could not be started
  os_error,          // a system call failed; the message names it
  invalid_argument,  // a caller passed something unusable
  stopped,           // the component is shutting down
  overloaded,        // a bounded queue is full: nothing was queued; try again later
  conflict,          // a compare-and-set lost: another writer moved the state first
  unauthenticated,   // the sender did not prove who it claims to be
  forbidden,         // the sender proved who it is and may not do this
};

const char* to_string(Errc code);

// The CAF error category atom for Errc.
constexpr caf::atom_value error_category = caf::atom("tessera");

caf::error make_error(Errc code, std::string context = {});

// Translates an errno value at the edge: "open(/x): No such file or directory".
caf::error make_os_error(int errno_value, const std::string& what);

// Renders any caf::error, including ours, as one readable line.
std::string describe(const caf::error& err);

// Only the context of a Tessera error ("bad resource 'cpus:x' ..."), for
// messages to people; describe() when there is none.
std::string what(const caf::error& err);

// True when err is a Tessera error with this code.
bool is(const caf::error& err, Errc code);

template <class T>
using expected = caf::expected<T>;

}  // namespace tessera
