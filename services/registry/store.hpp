#pragma once
// RegistryStore: where the master's registry lives. A flat map of small
// records (key -> bytes) with a version that every commit bumps; a commit
// applies a batch of changes atomically, and only if the store is still at
// the version the writer last saw (compare-and-set), so that a master that
// lost its lead can never write over its successor.
//
// Backends: MemoryStore (below; tests and the chaos simulation, where one
// instance outlives master crashes) and SqliteStore (sqlite_store.hpp; the
// embedded default, in the master's --work-dir). make_store() picks one from
// the master's --registry flag.
//
// Limits: keys of at most key_bytes_max bytes, values of at most
// value_bytes_max (well under ZooKeeper's 1 MiB node limit: a thing that
// needs more is split into more records), at most changes_per_commit_max
// changes per commit. Beyond them commit() refuses with Errc::oversized and
// writes nothing.
// Thread-safety: load() and commit() may be called from any thread; a store
// serialises them. The master calls them from its blocking pool's store lane,
// one at a time.

#include "runtime/error.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tessera {

struct RegistryChange {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the record
};

struct RegistrySnapshot {
  uint64_t version = 0;  // 0: nothing was ever committed
  std::map<std::string, std::string> records;
};

class RegistryStore {
 public:
  static constexpr size_t key_bytes_max = 1024;
  static constexpr size_t value_bytes_max = 512 * 1024;
  static constexpr size_t changes_per_commit_max = 100'000;

  virtual ~RegistryStore() = default;

  // Every record, and the version they are at.
  virtual expected<RegistrySnapshot> load() = 0;
  // Applies changes (in order; later ones win) if the store is at
  // expected_version, and returns the new version (expected_version + 1).
  // Errc::conflict, and nothing written, when another writer moved it;
  // Errc::oversized for a change beyond the limits.
  virtual expected<uint64_t> commit(uint64_t expected_version,
                                    const std::vector<RegistryChange>& changes) = 0;
  // "sqlite:/var/lib/tessera/master/registry.db", "memory", ...
  virtual std::string describe() const = 0;
  // True once the store can never serve again (a ZooKeeper session that
  // expired): whoever holds it opens another.
  virtual bool broken() const { return false; }
  // From now on a commit also requires this node of the coordination
  // service to exist (ZooKeeper: the leader's ephemeral election node), so
  // that a master whose lead ended writes nothing, even before its
  // successor does. Empty: no such condition. Stores without one ignore it.
  virtual void set_fence(const std::string& /*node*/) {}

 protected:
  // The limits above, checked before anything is written.
  static caf::error check_limits(const std::vector<RegistryChange>& changes);
};

// In memory: survives a master actor's crash when its owner keeps it (the
// chaos simulation), not a process's.
class MemoryStore : public RegistryStore {
 public:
  expected<RegistrySnapshot> load() override;
  expected<uint64_t> commit(uint64_t expected_version,
                            const std::vector<RegistryChange>& changes) override;
  std::string describe() const override { return "memory"; }

 private:
  mutable std::mutex mu_;
  RegistrySnapshot state_;
};

// The store a master's --registry flag names: "memory", "sqlite" (the file
// registry.db in work_dir), "sqlite:PATH" or "zk://HOSTS/PATH" (zk_store.hpp).
// Errc::invalid_argument for anything else, and the backend's error when it
// cannot open.
expected<std::shared_ptr<RegistryStore>> make_store(const std::string& spec,
                                                    const std::string& work_dir,
                                                    int zk_session_timeout_ms = 10'000);

}  // namespace tessera
