#pragma once
// An SQLite transaction that rolls back unless committed, shared by the stores that keep
// what must survive a crash (cost ledger, batch jobs). `begin` takes the statement that
// starts it: "BEGIN IMMEDIATE" for writes that read first (no other connection writes
// between the read and the write), "BEGIN" for reads that must see one moment.
#include <sqlite3.h>

namespace zs::platform {

class SqliteTransaction {
 public:
  explicit SqliteTransaction(sqlite3* db) : db_(db) {}
  ~SqliteTransaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  bool begin(const char* sql = "BEGIN IMMEDIATE") {
    open_ = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
    return open_;
  }
  bool commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
    open_ = false;
    return true;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace zs::platform
