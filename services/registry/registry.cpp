#include "services/registry/registry.hpp"

#include <capnp/registry.capnp.h>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

namespace tessera {

namespace {

const std::string master_key = "master";
const std::string agent_prefix = "agent/";
const std::string ended_prefix = "ended/";
const std::string framework_prefix = "framework/";
const std::string role_prefix = "role/";

std::string ended_key(const std::string& agent_id, const RegistryTaskKey& task) {
  return ended_prefix + agent_id + "/" + task.first + "/" + task.second;
}

template <class T, class F>
RegistryChange record(std::string key, F fill) {
  capnp::MallocMessageBuilder message;
  fill(message.initRoot<T>());
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return {std::move(key), std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size())};
}

// Decodes one record's bytes as T and hands its reader to fn; an error
// names the key.
template <class T, class F>
caf::error read_record(const std::string& key, const std::string& bytes, F fn) {
  if (bytes.size() % sizeof(capnp::word) != 0)
    return make_error(Errc::truncated,
                      "registry record " + key + " of " + std::to_string(bytes.size()) + " bytes");
  // Aligned copy: capnp reads words.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  try {
    capnp::FlatArrayMessageReader reader(words);
    return fn(reader.getRoot<T>());
  } catch (const kj::Exception& e) {
    return make_error(Errc::malformed,
                      "registry record " + key + ": " + std::string(e.getDescription().cStr()));
  }
}

caf::error mismatch(const std::string& key, const std::string& id) {
  return make_error(Errc::malformed, "registry record " + key + " holds id '" + id + "'");
}

RegistryAgent::State from_wire(wire::RegistryAgent::State s) {
  switch (s) {
    case wire::RegistryAgent::State::UNREACHABLE:
      return RegistryAgent::State::unreachable;
    case wire::RegistryAgent::State::REMOVED:
      return RegistryAgent::State::removed;
    case wire::RegistryAgent::State::ADMITTED:
      break;
  }
  return RegistryAgent::State::admitted;
}

wire::RegistryAgent::State to_wire(RegistryAgent::State s) {
  switch (s) {
    case RegistryAgent::State::unreachable:
      return wire::RegistryAgent::State::UNREACHABLE;
    case RegistryAgent::State::removed:
      return wire::RegistryAgent::State::REMOVED;
    case RegistryAgent::State::admitted:
      break;
  }
  return wire::RegistryAgent::State::ADMITTED;
}

}  // namespace

const char* to_string(RegistryAgent::State state) {
  switch (state) {
    case RegistryAgent::State::unreachable:
      return "unreachable";
    case RegistryAgent::State::removed:
      return "removed";
    case RegistryAgent::State::admitted:
      break;
  }
  return "admitted";
}

RegistryChange master_record(uint64_t epoch) {
  return record<wire::RegistryMaster>(master_key,
                                      [&](wire::RegistryMaster::Builder b) { b.setEpoch(epoch); });
}

RegistryChange agent_record(const RegistryAgent& a) {
  return record<wire::RegistryAgent>(agent_prefix + a.id, [&](wire::RegistryAgent::Builder b) {
    b.setAgentId(a.id);
    b.setHostname(a.hostname);
    b.setAddress(a.address);
    b.setState(to_wire(a.state));
    b.setSince(a.since_ns);
    b.setReason(a.reason);
    b.setOrder(a.order);
    b.setDeactivated(a.deactivated);
    b.setDrain(a.drain);
    b.setDrainGraceNs(a.drain_grace_ns);
    to_wire(a.reservations, b.initReservations(wire_size(a.reservations)));
  });
}

RegistryChange agent_removal(const std::string& agent_id) {
  return {agent_prefix + agent_id, std::nullopt};
}

RegistryChange ended_record(const std::string& agent_id, const RegistryTaskKey& task) {
  return record<wire::RegistryEnded>(ended_key(agent_id, task),
                                     [&](wire::RegistryEnded::Builder b) {
                                       b.setAgentId(agent_id);
                                       b.setFrameworkId(task.first);
                                       b.setTaskId(task.second);
                                     });
}

RegistryChange ended_removal(const std::string& agent_id, const RegistryTaskKey& task) {
  return {ended_key(agent_id, task), std::nullopt};
}

RegistryChange framework_record(const RegistryFramework& f) {
  return record<wire::RegistryFramework>(
      framework_prefix + f.id, [&](wire::RegistryFramework::Builder b) {
        auto info = b.initInfo();
        info.setFrameworkId(f.id);
        info.setName(f.name);
        info.setUser(f.user);
        info.setPrincipal(f.principal);
        auto roles = info.initRoles(static_cast<unsigned>(f.roles.size()));
        for (unsigned i = 0; i < f.roles.size(); ++i)
          roles.set(i, f.roles[i]);
        info.setFailoverTimeoutNs(f.failover_timeout_ns);
        auto caps = info.initCapabilities(static_cast<unsigned>(f.capabilities.size()));
        for (unsigned i = 0; i < f.capabilities.size(); ++i)
          caps.set(i, f.capabilities[i]);
        b.setRemoved(f.removed);
        b.setReason(f.reason);
        b.setOrder(f.order);
      });
}

RegistryChange framework_removal(const std::string& framework_id) {
  return {framework_prefix + framework_id, std::nullopt};
}

RegistryChange role_record(const RegistryRole& r) {
  return record<wire::RegistryRole>(role_prefix + r.role, [&](wire::RegistryRole::Builder b) {
    b.setRole(r.role);
    b.setWeight(r.weight);
    to_wire(r.quota, b.initQuota(wire_size(r.quota)));
  });
}

RegistryChange role_removal(const std::string& role) {
  return {role_prefix + role, std::nullopt};
}

expected<RegistryState> decode_registry(const RegistrySnapshot& snapshot) {
  RegistryState state;
  state.version = snapshot.version;
  for (const auto& record : snapshot.records) {
    // Named, not bound: clang 14 cannot capture a structured binding.
    const auto& key = record.first;
    const auto& bytes = record.second;
    caf::error err;
    if (key == master_key) {
      err = read_record<wire::RegistryMaster>(key, bytes, [&](wire::RegistryMaster::Reader r) {
        state.epoch = r.getEpoch();
        return caf::error{};
      });
    } else if (key.rfind(agent_prefix, 0) == 0) {
      err = read_record<wire::RegistryAgent>(key, bytes, [&](wire::RegistryAgent::Reader r) {
        RegistryAgent a;
        a.id = str(r.getAgentId());
        if (agent_prefix + a.id != key)
          return mismatch(key, a.id);
        a.hostname = str(r.getHostname());
        a.address = str(r.getAddress());
        a.state = from_wire(r.getState());
        a.since_ns = r.getSince();
        a.reason = str(r.getReason());
        a.order = r.getOrder();
        a.deactivated = r.getDeactivated();
        a.drain = r.getDrain() <= 2 ? r.getDrain() : 0;
        a.drain_grace_ns = r.getDrainGraceNs();
        auto reservations = tessera::from_wire(r.getReservations());
        if (!reservations)
          return make_error(Errc::malformed,
                            "registry record " + key + ": " + what(reservations.error()));
        a.reservations = std::move(*reservations);
        state.agents.emplace(a.id, std::move(a));
        return caf::error{};
      });
    } else if (key.rfind(ended_prefix, 0) == 0) {
      err = read_record<wire::RegistryEnded>(key, bytes, [&](wire::RegistryEnded::Reader r) {
        auto agent_id = str(r.getAgentId());
        RegistryTaskKey task{str(r.getFrameworkId()), str(r.getTaskId())};
        if (ended_key(agent_id, task) != key)
          return mismatch(key, agent_id + "/" + task.first + "/" + task.second);
        state.ended[agent_id].insert(std::move(task));
        return caf::error{};
      });
    } else if (key.rfind(framework_prefix, 0) == 0) {
      err =
          read_record<wire::RegistryFramework>(key, bytes, [&](wire::RegistryFramework::Reader r) {
            RegistryFramework f;
            auto info = r.getInfo();
            f.id = str(info.getFrameworkId());
            if (framework_prefix + f.id != key)
              return mismatch(key, f.id);
            f.name = str(info.getName());
            f.user = str(info.getUser());
            f.principal = str(info.getPrincipal());
            for (auto role : info.getRoles())
              f.roles.push_back(str(role));
            f.failover_timeout_ns = info.getFailoverTimeoutNs();
            for (auto c : info.getCapabilities())
              f.capabilities.push_back(c);
            f.removed = r.getRemoved();
            f.reason = str(r.getReason());
            f.order = r.getOrder();
            state.frameworks.emplace(f.id, std::move(f));
            return caf::error{};
          });
    } else if (key.rfind(role_prefix, 0) == 0) {
      err = read_record<wire::RegistryRole>(key, bytes, [&](wire::RegistryRole::Reader r) {
        RegistryRole role;
        role.role = str(r.getRole());
        if (role_prefix + role.role != key)
          return mismatch(key, role.role);
        role.weight = r.getWeight();
        auto quota = tessera::from_wire(r.getQuota());
        if (!quota)
          return make_error(Errc::malformed, "registry record " + key + ": " + what(quota.error()));
        role.quota = std::move(*quota);
        state.roles.emplace(role.role, std::move(role));
        return caf::error{};
      });
    } else {
      err = make_error(Errc::malformed, "registry record " + key + ": unknown kind");
    }
    if (err)
      return err;
  }
  return state;
}

}  // namespace tessera
