#pragma once
// What the cost ledger tests share: opening a ledger with a test failure on error, plain
// SQLite access from outside (as another tool would), and the schemas older builds wrote,
// verbatim, for the migration and read-only tests.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "platform/ledger/cost_ledger.h"

namespace zs::platform::ledger_test {

inline std::unique_ptr<CostLedger> open_ok(const std::string& path) {
  auto ledger = CostLedger::open(path);
  EXPECT_TRUE(ledger.is_ok()) << ledger.status().message();
  return ledger.is_ok() ? std::move(ledger).value() : nullptr;
}

inline std::unique_ptr<CostLedger> open_ro_ok(const std::string& path) {
  auto ledger = CostLedger::open_read_only(path);
  EXPECT_TRUE(ledger.is_ok()) << ledger.status().message();
  return ledger.is_ok() ? std::move(ledger).value() : nullptr;
}

// Runs statements on a separate plain connection, as an outside tool would.
inline bool exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  bool ok = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK;
  char* err = nullptr;
  if (ok && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    ADD_FAILURE() << (err ? err : "?") << " in " << sql;
    ok = false;
  }
  sqlite3_free(err);
  sqlite3_close_v2(db);
  return ok;
}

// The first column of the first row of `sql`, as text, read on its own connection opened with
// `flags` (read-only by default, so that reading changes nothing on disk).
inline std::string query_text(const std::string& path, const std::string& sql, int flags = SQLITE_OPEN_READONLY) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW &&
        sqlite3_column_text(stmt, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db);
  return out;
}

// The tables a version-1 build created.
constexpr const char* kVersion1Tables =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE instances ("
    "  id INTEGER PRIMARY KEY,"
    "  instance_id TEXT NOT NULL,"
    "  deployment TEXT NOT NULL,"
    "  device TEXT NOT NULL,"
    "  price_per_second REAL NOT NULL,"
    "  started_at REAL NOT NULL,"
    "  last_seen REAL NOT NULL,"
    "  stopped_at REAL,"
    "  cold_start INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX instances_open_id ON instances(instance_id) WHERE stopped_at IS NULL;"
    "CREATE INDEX instances_started_at ON instances(started_at);"
    "CREATE INDEX instances_stopped_at ON instances(stopped_at);"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  deployment TEXT NOT NULL,"
    "  at REAL NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  completion_tokens INTEGER NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  queue_seconds REAL NOT NULL);"
    "CREATE INDEX requests_at ON requests(at);";

// The table version 2 added.
constexpr const char* kVersion2PhasesTable =
    "CREATE TABLE instance_phases ("
    "  id INTEGER PRIMARY KEY,"
    "  run INTEGER NOT NULL REFERENCES instances(id),"
    "  phase TEXT NOT NULL CHECK (phase IN ('starting', 'ready', 'idle', 'draining')),"
    "  started_at REAL NOT NULL,"
    "  ended_at REAL);"
    "CREATE UNIQUE INDEX instance_phases_open_run ON instance_phases(run) WHERE ended_at IS NULL;"
    "CREATE INDEX instance_phases_started_at ON instance_phases(started_at);";

// What version 3 added to the requests table.
constexpr const char* kVersion3RequestKeys =
    "ALTER TABLE requests ADD COLUMN api_key TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE requests ADD COLUMN class TEXT NOT NULL DEFAULT 'interactive';";

// Whole files as those builds left them: a migration must start from exactly these.
inline std::string version1_schema() { return std::string(kVersion1Tables) + "INSERT INTO schema_version VALUES (1);"; }
inline std::string version2_schema() {
  return std::string(kVersion1Tables) + kVersion2PhasesTable + "INSERT INTO schema_version VALUES (2);";
}
inline std::string version3_schema() {
  return std::string(kVersion1Tables) + kVersion2PhasesTable + kVersion3RequestKeys +
         "INSERT INTO schema_version VALUES (3);";
}

}  // namespace zs::platform::ledger_test
