#include "services/registry/sqlite_store.hpp"

#include <sqlite3.h>

namespace tessera {

namespace {

// A prepared statement, finalized on every path.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

constexpr int busy_timeout_ms = 10'000;

}  // namespace

expected<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return make_error(Errc::os_error, "registry " + path + ": cannot open: " + msg);
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  for (const char* sql : {
           "PRAGMA journal_mode=WAL",
           "PRAGMA synchronous=FULL",
           "CREATE TABLE IF NOT EXISTS records(key TEXT PRIMARY KEY, value BLOB NOT NULL) "
           "WITHOUT ROWID",
           "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
           "INSERT OR IGNORE INTO meta(name, value) VALUES('version', 0)",
       })
    if (auto err = store->exec(sql))
      return err;
  return store;
}

SqliteStore::~SqliteStore() {
  sqlite3_close(db_);
}

caf::error SqliteStore::error(const std::string& what) const {
  return make_error(Errc::os_error, "registry " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

caf::error SqliteStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK)
    return {};
  std::string text = msg ? msg : "unknown error";
  sqlite3_free(msg);
  return make_error(Errc::os_error, "registry " + path_ + ": " + sql + ": " + text);
}

expected<uint64_t> SqliteStore::read_version() {
  Statement s;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE name = 'version'", -1, &s.stmt,
                         nullptr) != SQLITE_OK)
    return error("reading the version");
  if (sqlite3_step(s.stmt) != SQLITE_ROW)
    return error("reading the version");
  return static_cast<uint64_t>(sqlite3_column_int64(s.stmt, 0));
}

expected<RegistrySnapshot> SqliteStore::load() {
  std::lock_guard<std::mutex> guard(mu_);
  // One read transaction: the records and the version agree.
  if (auto err = exec("BEGIN"))
    return err;
  RegistrySnapshot snap;
  auto version = read_version();
  if (!version) {
    exec("ROLLBACK");
    return version.error();
  }
  snap.version = *version;
  Statement s;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM records", -1, &s.stmt, nullptr) !=
      SQLITE_OK) {
    auto err = error("reading records");
    exec("ROLLBACK");
    return err;
  }
  int rc;
  while ((rc = sqlite3_step(s.stmt)) == SQLITE_ROW) {
    auto* key = reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 0));
    auto* value = static_cast<const char*>(sqlite3_column_blob(s.stmt, 1));
    auto size = static_cast<size_t>(sqlite3_column_bytes(s.stmt, 1));
    snap.records.emplace(key ? key : "", std::string(value ? value : "", size));
  }
  if (rc != SQLITE_DONE) {
    auto err = error("reading records");
    exec("ROLLBACK");
    return err;
  }
  if (auto err = exec("COMMIT"))
    return err;
  return snap;
}

caf::error SqliteStore::apply(const std::vector<RegistryChange>& changes, uint64_t version) {
  Statement put, del, bump;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO records(key, value) VALUES(?1, ?2)", -1,
                         &put.stmt, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "DELETE FROM records WHERE key = ?1", -1, &del.stmt, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db_, "UPDATE meta SET value = ?1 WHERE name = 'version'", -1, &bump.stmt,
                         nullptr) != SQLITE_OK)
    return error("preparing a commit");
  for (const auto& c : changes) {
    auto* s = c.value ? put.stmt : del.stmt;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, c.key.data(), static_cast<int>(c.key.size()), SQLITE_STATIC);
    if (c.value)
      sqlite3_bind_blob(s, 2, c.value->data(), static_cast<int>(c.value->size()), SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
      return error("writing " + c.key);
  }
  sqlite3_bind_int64(bump.stmt, 1, static_cast<sqlite3_int64>(version));
  if (sqlite3_step(bump.stmt) != SQLITE_DONE)
    return error("writing the version");
  return {};
}

expected<uint64_t> SqliteStore::commit(uint64_t expected_version,
                                       const std::vector<RegistryChange>& changes) {
  if (auto err = check_limits(changes))
    return err;
  std::lock_guard<std::mutex> guard(mu_);
  // IMMEDIATE: the write lock is taken before the version is read, so no
  // other writer can slip in between the check and the write.
  if (auto err = exec("BEGIN IMMEDIATE"))
    return err;
  auto version = read_version();
  if (!version) {
    exec("ROLLBACK");
    return version.error();
  }
  if (*version != expected_version) {
    exec("ROLLBACK");
    return make_error(Errc::conflict, "registry " + path_ + " at version " +
                                          std::to_string(*version) + ", writer expected " +
                                          std::to_string(expected_version));
  }
  if (auto err = apply(changes, expected_version + 1)) {
    exec("ROLLBACK");
    return err;
  }
  if (auto err = exec("COMMIT")) {
    exec("ROLLBACK");
    return err;
  }
  return expected_version + 1;
}

}  // namespace tessera
