#pragma once
// SqliteStore: the registry in one SQLite file (WAL, synchronous=FULL: a
// commit is on disk when commit() returns). The embedded default, so a
// single master needs nothing but its --work-dir.
//
// Tables: records(key PRIMARY KEY, value BLOB) and meta(name, value) with
// the version. A commit is one IMMEDIATE transaction that checks the
// version, applies the changes and bumps it. Several processes may open the
// same file; the version check makes all but one writer fail with
// Errc::conflict.
// Thread-safety: as RegistryStore (one connection behind a mutex).

#include "services/registry/store.hpp"

#include <memory>
#include <mutex>
#include <string>

struct sqlite3;

namespace tessera {

class SqliteStore : public RegistryStore {
 public:
  // Opens (creating it and its tables if need be) the database at path.
  static expected<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  expected<RegistrySnapshot> load() override;
  expected<uint64_t> commit(uint64_t expected_version,
                            const std::vector<RegistryChange>& changes) override;
  std::string describe() const override { return "sqlite:" + path_; }

 private:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // Runs sql (no rows); the error names what failed.
  caf::error exec(const char* sql);
  caf::error error(const std::string& what) const;
  expected<uint64_t> read_version();
  caf::error apply(const std::vector<RegistryChange>& changes, uint64_t version);

  std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace tessera
