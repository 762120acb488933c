#include "platform/autoscale/policy_state_store.h"

#include <sqlite3.h>

#include <filesystem>

namespace zs::platform {

using core::Result;
using core::Status;

Result<std::unique_ptr<PolicyStateStore>> PolicyStateStore::open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::unique_ptr<PolicyStateStore> s(new PolicyStateStore());
  core::MutexLock lock(s->mutex_);  // not shared yet; taken for the annotations' sake
  if (sqlite3_open(path.c_str(), &s->db_) != SQLITE_OK)
    return Status::error("policy state " + path + ": " + (s->db_ ? sqlite3_errmsg(s->db_) : "cannot open"));
  sqlite3_busy_timeout(s->db_, 5000);
  char* err = nullptr;
  if (sqlite3_exec(s->db_,
                   "PRAGMA journal_mode=WAL;"
                   "CREATE TABLE IF NOT EXISTS policy_state (deployment TEXT PRIMARY KEY, policy TEXT NOT NULL,"
                   " state TEXT NOT NULL)",
                   nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::error("policy state " + path + ": " + msg);
  }
  return s;
}

PolicyStateStore::~PolicyStateStore() {
  if (db_) sqlite3_close(db_);
}

Status PolicyStateStore::save(const std::string& deployment, const std::string& policy, const std::string& state) {
  core::MutexLock lock(mutex_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO policy_state (deployment, policy, state) VALUES (?, ?, ?)", -1,
                         &st, nullptr) != SQLITE_OK)
    return Status::error(std::string("policy state: ") + sqlite3_errmsg(db_));
  sqlite3_bind_text(st, 1, deployment.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, policy.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, state.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Status::error(std::string("policy state: saving: ") + sqlite3_errmsg(db_));
  return Status::ok();
}

std::optional<std::string> PolicyStateStore::load(const std::string& deployment, const std::string& policy) const {
  core::MutexLock lock(mutex_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT state FROM policy_state WHERE deployment = ? AND policy = ?", -1, &st, nullptr) !=
      SQLITE_OK)
    return std::nullopt;
  sqlite3_bind_text(st, 1, deployment.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, policy.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<std::string> out;
  if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

}  // namespace zs::platform
