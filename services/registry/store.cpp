#include "services/registry/store.hpp"

#include "services/registry/sqlite_store.hpp"
#include "services/registry/zk_store.hpp"

#include <filesystem>

namespace tessera {

caf::error RegistryStore::check_limits(const std::vector<RegistryChange>& changes) {
  if (changes.size() > changes_per_commit_max)
    return make_error(Errc::oversized, "registry commit of " + std::to_string(changes.size()) +
                                           " changes (at most " +
                                           std::to_string(changes_per_commit_max) + ")");
  for (const auto& c : changes) {
    if (c.key.empty() || c.key.size() > key_bytes_max)
      return make_error(Errc::oversized, "registry key of " + std::to_string(c.key.size()) +
                                             " bytes (1 to " + std::to_string(key_bytes_max) + ")");
    if (c.value && c.value->size() > value_bytes_max)
      return make_error(Errc::oversized, "registry record " + c.key + " of " +
                                             std::to_string(c.value->size()) + " bytes (at most " +
                                             std::to_string(value_bytes_max) + ")");
  }
  return {};
}

expected<RegistrySnapshot> MemoryStore::load() {
  std::lock_guard<std::mutex> guard(mu_);
  return state_;
}

expected<uint64_t> MemoryStore::commit(uint64_t expected_version,
                                       const std::vector<RegistryChange>& changes) {
  if (auto err = check_limits(changes))
    return err;
  std::lock_guard<std::mutex> guard(mu_);
  if (state_.version != expected_version)
    return make_error(Errc::conflict, "registry at version " + std::to_string(state_.version) +
                                          ", writer expected " + std::to_string(expected_version));
  for (const auto& c : changes) {
    if (c.value)
      state_.records[c.key] = *c.value;
    else
      state_.records.erase(c.key);
  }
  return ++state_.version;
}

expected<std::shared_ptr<RegistryStore>> make_store(const std::string& spec,
                                                    const std::string& work_dir,
                                                    int zk_session_timeout_ms) {
  if (spec == "memory")
    return std::shared_ptr<RegistryStore>(std::make_shared<MemoryStore>());
  if (spec == "sqlite" || spec.rfind("sqlite:", 0) == 0) {
    std::string path = spec == "sqlite" ? "" : spec.substr(7);
    if (path.empty()) {
      if (work_dir.empty())
        return make_error(Errc::invalid_argument, "--registry sqlite needs a --work-dir");
      path = (std::filesystem::path(work_dir) / "registry.db").string();
    }
    auto store = SqliteStore::open(path);
    if (!store)
      return store.error();
    return std::shared_ptr<RegistryStore>(std::move(*store));
  }
  if (spec.rfind("zk://", 0) == 0) {
    auto store = ZkStore::open(spec, zk_session_timeout_ms);
    if (!store)
      return store.error();
    return std::shared_ptr<RegistryStore>(std::move(*store));
  }
  return make_error(Errc::invalid_argument, "--registry '" + spec +
                                                "': expected memory, sqlite, sqlite:PATH or "
                                                "zk://HOST:PORT[,HOST:PORT...]/PATH");
}

}  // namespace tessera
