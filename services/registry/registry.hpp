#pragma once
// The master's registry: what must outlive a master run, as plain values,
// and their records in a RegistryStore (store.hpp). Mechanism only: which
// change to write when is the master's policy (services/master/registrar.cpp).
//
// Records (capnp/registry.capnp), one per thing so each stays small:
//   master                            RegistryMaster: the epoch of the last run
//   agent/<agent id>                  RegistryAgent: admitted, unreachable or removed
//   ended/<agent>/<framework>/<task>  RegistryEnded: told TASK_LOST while away
//   framework/<framework id>          RegistryFramework: active or removed
//   role/<role>                       RegistryRole: its weight and quota
//
// Ids in keys are at most id_bytes_max bytes (the master refuses longer
// ones), so a key always fits RegistryStore::key_bytes_max.

#include "runtime/error.hpp"
#include "services/common/wire.hpp"
#include "services/registry/store.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tessera {

constexpr size_t registry_id_bytes_max = 255;

struct RegistryAgent {
  enum class State : uint8_t { admitted, unreachable, removed };
  std::string id;
  std::string hostname;
  std::string address;
  State state = State::admitted;
  int64_t since_ns = 0;  // runtime clock, when it entered state
  std::string reason;    // of a removal
  uint64_t order = 0;    // removal order
  // Maintenance an operator asked for, kept across master failovers.
  bool deactivated = false;
  uint8_t drain = 0;  // 0 none, 1 draining, 2 drained (wire::DrainState)
  int64_t drain_grace_ns = 0;
  // Dynamic reservations (RESERVE_RESOURCES), each resource with its role.
  Resources reservations;
};

struct RegistryFramework {
  std::string id;
  std::string name;
  std::string user;
  std::string principal;
  std::vector<std::string> roles;
  int64_t failover_timeout_ns = 0;
  std::vector<wire::FrameworkCapability> capabilities;
  bool removed = false;
  std::string reason;
  uint64_t order = 0;
  bool operator==(const RegistryFramework&) const = default;
};

struct RegistryRole {
  std::string role;
  double weight = 0;  // 0: not set
  Resources quota;    // scalars; empty: none
  bool operator==(const RegistryRole&) const = default;
};

// (framework id, task id)
using RegistryTaskKey = std::pair<std::string, std::string>;

// Everything a master recovers.
struct RegistryState {
  uint64_t version = 0;  // of the store, for the next commit
  uint64_t epoch = 0;
  std::map<std::string, RegistryAgent> agents;
  std::map<std::string, std::set<RegistryTaskKey>> ended;  // by agent id
  std::map<std::string, RegistryFramework> frameworks;
  std::map<std::string, RegistryRole> roles;
};

// Decodes a snapshot. A record that does not decode, or whose key does not
// match its contents, is an error naming it (the operator must look: the
// registry is the truth a master acts on).
expected<RegistryState> decode_registry(const RegistrySnapshot& snapshot);

RegistryChange master_record(uint64_t epoch);
RegistryChange agent_record(const RegistryAgent& agent);
RegistryChange agent_removal(const std::string& agent_id);
RegistryChange ended_record(const std::string& agent_id, const RegistryTaskKey& task);
RegistryChange ended_removal(const std::string& agent_id, const RegistryTaskKey& task);
RegistryChange framework_record(const RegistryFramework& framework);
RegistryChange framework_removal(const std::string& framework_id);
RegistryChange role_record(const RegistryRole& role);
RegistryChange role_removal(const std::string& role);

const char* to_string(RegistryAgent::State state);

}  // namespace tessera
