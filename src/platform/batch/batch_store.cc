#include "platform/batch/batch_store.h"

#include <sqlite3.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>
#include <utility>

#include "core/random_id.h"
#include "platform/sqlite/sqlite_transaction.h"

namespace zs::platform {
namespace {

using ojson = nlohmann::ordered_json;  // keeps keys in the order OpenAI writes them

// Long enough to ride out a checkpoint by another connection, short enough that a stuck
// writer surfaces as an error instead of a hung server.
constexpr int kBusyTimeoutMs = 5000;
constexpr int64_t kSchemaVersion = 1;

constexpr const char* kSchema =
    // seq orders files and batches by creation (ids are random).
    "CREATE TABLE files ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  purpose TEXT NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  content BLOB NOT NULL);"
    "CREATE TABLE batches ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  endpoint TEXT NOT NULL,"
    "  input_file_id TEXT NOT NULL,"
    "  completion_window TEXT NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  metadata TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  in_progress_at INTEGER NOT NULL,"
    "  finalizing_at INTEGER NOT NULL,"
    "  completed_at INTEGER NOT NULL,"
    "  cancelling_at INTEGER NOT NULL,"
    "  cancelled_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  expired_at INTEGER NOT NULL,"
    "  output_file_id TEXT NOT NULL,"
    "  error_file_id TEXT NOT NULL,"
    "  total INTEGER NOT NULL,"
    "  completed INTEGER NOT NULL,"
    "  failed INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL);"
    "CREATE INDEX batches_state ON batches(state);"
    // outcome_at is NULL until the item has an outcome; the UPDATE that sets it only matches
    // rows where it is still NULL, which is what makes outcomes exactly-once.
    "CREATE TABLE batch_items ("
    "  batch_id TEXT NOT NULL,"
    "  line INTEGER NOT NULL,"
    "  custom_id TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  outcome_at INTEGER,"
    "  status_code INTEGER,"
    "  response_body TEXT,"
    "  request_id TEXT,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  PRIMARY KEY (batch_id, line));"
    // Resuming reads the pending items of a batch without scanning the finished ones.
    "CREATE INDEX batch_items_pending ON batch_items(batch_id, line) WHERE outcome_at IS NULL;";

constexpr const char* kBatchColumns =
    "id, endpoint, input_file_id, completion_window, owner, metadata, state, created_at,"
    " in_progress_at, finalizing_at, completed_at, cancelling_at, cancelled_at, expires_at,"
    " expired_at, output_file_id, error_file_id, total, completed, failed, attempts";

constexpr BatchState kAllStates[] = {BatchState::kValidating, BatchState::kFailed,    BatchState::kInProgress,
                                     BatchState::kFinalizing, BatchState::kCompleted, BatchState::kExpired,
                                     BatchState::kCancelling, BatchState::kCancelled};

std::optional<BatchState> parse_state(std::string_view name) {
  for (BatchState s : kAllStates) {
    if (batch_state_name(s) == name) return s;
  }
  return std::nullopt;
}


int64_t wall_clock_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A prepared statement, finalized at scope end. Binding errors are kept and returned by
// step(), so call sites bind a row without checking each call.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : rc_(sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr)) {}
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& text(int i, std::string_view v) {
    // A non-null pointer: SQLite stores NULL for a null pointer, even with length 0.
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    return *this;
  }
  Stmt& blob(int i, std::string_view v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT);
    }
    return *this;
  }
  Stmt& integer(int i, int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or the error of preparing, binding or stepping.
  int step() { return rc_ == SQLITE_OK ? sqlite3_step(stmt_) : rc_; }
  bool done() { return step() == SQLITE_DONE; }
  // Ready to bind and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t col_int(int c) const { return sqlite3_column_int64(stmt_, c); }
  bool col_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string col_text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }
  std::string col_blob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

BatchRecord read_record(const Stmt& s) {
  BatchRecord r;
  r.id = s.col_text(0);
  r.endpoint = s.col_text(1);
  r.input_file_id = s.col_text(2);
  r.completion_window = s.col_text(3);
  r.owner = s.col_text(4);
  r.metadata_json = s.col_text(5);
  // Only this code writes states; an unknown one would be a newer schema, refused at open.
  r.state = parse_state(s.col_text(6)).value_or(BatchState::kFailed);
  r.created_at = s.col_int(7);
  r.in_progress_at = s.col_int(8);
  r.finalizing_at = s.col_int(9);
  r.completed_at = s.col_int(10);
  r.cancelling_at = s.col_int(11);
  r.cancelled_at = s.col_int(12);
  r.expires_at = s.col_int(13);
  r.expired_at = s.col_int(14);
  r.output_file_id = s.col_text(15);
  r.error_file_id = s.col_text(16);
  r.total = s.col_int(17);
  r.completed = s.col_int(18);
  r.failed = s.col_int(19);
  r.attempts = s.col_int(20);
  return r;
}

bool is_2xx(int64_t status) { return status >= 200 && status < 300; }

// A response body as JSON: parsed when it is JSON, a string when it is not, null if empty.
ojson body_json(const std::string& body) {
  if (body.empty()) return nullptr;
  ojson parsed = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return body;
  return parsed;
}

// One JSONL line; invalid UTF-8 (from a non-JSON body or an error message) becomes U+FFFD
// instead of an exception.
void append_line(std::string& out, const ojson& j) {
  out += j.dump(-1, ' ', false, ojson::error_handler_t::replace);
  out += '\n';
}

std::string sql_state(BatchState s) { return std::string(batch_state_name(s)); }

}  // namespace

std::string_view batch_state_name(BatchState state) {
  switch (state) {
    case BatchState::kValidating:
      return "validating";
    case BatchState::kFailed:
      return "failed";
    case BatchState::kInProgress:
      return "in_progress";
    case BatchState::kFinalizing:
      return "finalizing";
    case BatchState::kCompleted:
      return "completed";
    case BatchState::kExpired:
      return "expired";
    case BatchState::kCancelling:
      return "cancelling";
    case BatchState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

bool batch_state_is_final(BatchState state) {
  return state == BatchState::kFailed || state == BatchState::kCompleted || state == BatchState::kExpired ||
         state == BatchState::kCancelled;
}

BatchStore::BatchStore(std::string path, sqlite3* db, Clock now)
    : path_(std::move(path)), db_(db), now_(std::move(now)) {}

BatchStore::~BatchStore() { sqlite3_close_v2(db_); }

core::Result<std::unique_ptr<BatchStore>> BatchStore::open(const std::string& path) {
  return open(path, wall_clock_seconds);
}

core::Result<std::unique_ptr<BatchStore>> BatchStore::open(const std::string& path, Clock now) {
  const std::string where = "opening batch store " + path;
  if (path.empty()) return core::Status::error(where + ": the path is empty");
  if (!now) return core::Status::error(where + ": no clock given");
  // SQLite does not create directories; a fresh install points at a state directory that
  // may not exist yet.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    if (!std::filesystem::create_directories(parent, ec) && ec) {
      return core::Status::error(where + ": cannot create directory " + parent.string() + ": " + ec.message());
    }
  }
  if (std::filesystem::is_directory(path, ec)) {
    return core::Status::error(where + ": the path is a directory");
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return core::Status::error(where + ": " + msg);
  }
  // Owns `db` from here on, closing it on every early return.
  std::unique_ptr<BatchStore> store(new BatchStore(path, db, std::move(now)));
  if (sqlite3_db_readonly(db, "main") == 1) {
    return core::Status::error(where + ": the file is read-only (check its permissions)");
  }
  core::MutexLock lock(store->mu_);
  ZS_RETURN_IF_ERROR(store->init().with_context(where));
  return store;
}

core::Status BatchStore::init() {
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // WAL lets readers (GET /v1/batches) run while an outcome commits; synchronous=NORMAL in
  // WAL mode loses at most the last commits on power loss, never consistency, and an
  // outcome lost that way is only sent again.
  {
    Stmt wal(db_, "PRAGMA journal_mode=WAL");
    if (wal.step() != SQLITE_ROW) return sqlite_error("enabling WAL");
    if (wal.col_text(0) != "wal") {
      return core::Status::error("the file system does not support WAL mode (journal mode is " + wal.col_text(0) + ")");
    }
  }
  if (sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqlite_error("setting synchronous");
  }
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error("starting the schema transaction");
  int64_t version = 0;
  {
    Stmt s(db_, "PRAGMA user_version");
    if (s.step() != SQLITE_ROW) return sqlite_error("reading the schema version");
    version = s.col_int(0);
  }
  if (version > kSchemaVersion) {
    return core::Status::error("the file has schema version " + std::to_string(version) + ", newer than this build's " +
                               std::to_string(kSchemaVersion) + " (written by a newer zeroserve)");
  }
  if (version == 0) {
    Stmt tables(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (tables.step() != SQLITE_ROW) return sqlite_error("reading the schema");
    if (tables.col_int(0) != 0) {
      return core::Status::error("the file is an SQLite database of something else");
    }
    char* err = nullptr;
    if (sqlite3_exec(db_, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return core::Status::error("creating the tables: " + msg);
    }
    const std::string set_version = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
    if (sqlite3_exec(db_, set_version.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return sqlite_error("writing the schema version");
    }
  }
  if (!txn.commit()) return sqlite_error("committing the schema");
  return core::Status::ok();
}

core::Status BatchStore::sqlite_error(const std::string& what) const {
  return core::Status::error("batch store " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

// --- files ------------------------------------------------------------------------------

core::Result<StoredFile> BatchStore::insert_file_locked(const std::string& purpose, const std::string& filename,
                                                        const std::string& content, int64_t now, const std::string& owner) {
  StoredFile f;
  f.id = "file-" + core::random_hex(24);
  f.purpose = purpose;
  f.filename = filename;
  f.bytes = static_cast<int64_t>(content.size());
  f.created_at = now;
  f.owner = owner;
  Stmt s(db_,
         "INSERT INTO files (id, purpose, filename, bytes, created_at, owner, content)"
         " VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.text(1, f.id).text(2, purpose).text(3, filename).integer(4, f.bytes).integer(5, now).text(6, owner).blob(7, content);
  if (!s.done()) return sqlite_error("storing file " + filename);
  return f;
}

core::Result<StoredFile> BatchStore::add_file(const std::string& purpose, const std::string& filename,
                                              const std::string& content, const std::string& owner) {
  if (purpose.empty()) return core::Status::invalid_argument("storing a file: the purpose is empty");
  core::MutexLock lock(mu_);
  return insert_file_locked(purpose, filename, content, now_(), owner);
}

core::Result<StoredFile> BatchStore::file(const std::string& id) {
  core::MutexLock lock(mu_);
  Stmt s(db_, "SELECT id, purpose, filename, bytes, created_at, owner FROM files WHERE id = ?");
  s.text(1, id);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return core::Status::not_found("no such file: " + id);
  if (rc != SQLITE_ROW) return sqlite_error("reading file " + id);
  return StoredFile{s.col_text(0), s.col_text(1), s.col_text(2), s.col_int(3), s.col_int(4), s.col_text(5)};
}

core::Result<std::string> BatchStore::file_content(const std::string& id) {
  core::MutexLock lock(mu_);
  Stmt s(db_, "SELECT content FROM files WHERE id = ?");
  s.text(1, id);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return core::Status::not_found("no such file: " + id);
  if (rc != SQLITE_ROW) return sqlite_error("reading file " + id);
  return s.col_blob(0);
}

std::vector<StoredFile> BatchStore::list_files(const std::string& owner) {
  core::MutexLock lock(mu_);
  Stmt s(db_,
         "SELECT id, purpose, filename, bytes, created_at, owner FROM files WHERE ?1 = '' OR owner = ?1 "
         "ORDER BY seq DESC");
  s.text(1, owner);
  std::vector<StoredFile> out;
  while (s.step() == SQLITE_ROW) {
    out.push_back({s.col_text(0), s.col_text(1), s.col_text(2), s.col_int(3), s.col_int(4), s.col_text(5)});
  }
  return out;
}

core::Status BatchStore::delete_file(const std::string& id) {
  core::MutexLock lock(mu_);
  Stmt s(db_, "DELETE FROM files WHERE id = ?");
  s.text(1, id);
  if (!s.done()) return sqlite_error("deleting file " + id);
  if (sqlite3_changes(db_) == 0) return core::Status::not_found("no such file: " + id);
  return core::Status::ok();
}

// --- batches ----------------------------------------------------------------------------

core::Result<BatchRecord> BatchStore::create_batch(const std::string& input_file_id, const std::string& endpoint,
                                                   const std::string& completion_window, int64_t window_seconds,
                                                   const std::string& metadata_json, const std::string& owner,
                                                   const std::vector<BatchItem>& items) {
  const std::string what = "creating a batch from " + input_file_id;
  if (items.empty()) return core::Status::invalid_argument(what + ": the batch has no requests");
  if (window_seconds <= 0) {
    return core::Status::invalid_argument(what + ": the completion window must be positive");
  }
  std::string metadata = "{}";
  if (!metadata_json.empty()) {
    const ojson parsed = ojson::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return core::Status::invalid_argument(what + ": metadata must be a JSON object");
    }
    metadata = parsed.dump(-1, ' ', false, ojson::error_handler_t::replace);
  }

  core::MutexLock lock(mu_);
  const int64_t now = now_();
  const std::string id = "batch_" + core::random_hex(24);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  {
    Stmt s(db_, "SELECT 1 FROM files WHERE id = ?");
    s.text(1, input_file_id);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return core::Status::error(what + ": no such file: " + input_file_id);
    if (rc != SQLITE_ROW) return sqlite_error(what);
  }
  {
    Stmt s(db_,
           "INSERT INTO batches (id, endpoint, input_file_id, completion_window, owner, metadata,"
           " state, created_at, in_progress_at, finalizing_at, completed_at, cancelling_at,"
           " cancelled_at, expires_at, expired_at, output_file_id, error_file_id, total,"
           " completed, failed, attempts)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 0, 0, 0, 0, ?9, 0, '', '', ?10, 0, 0, 0)");
    s.text(1, id)
        .text(2, endpoint)
        .text(3, input_file_id)
        .text(4, completion_window)
        .text(5, owner)
        .text(6, metadata)
        .text(7, sql_state(BatchState::kInProgress))
        .integer(8, now)
        .integer(9, now + window_seconds)
        .integer(10, static_cast<int64_t>(items.size()));
    if (!s.done()) return sqlite_error(what);
  }
  {
    Stmt s(db_,
           "INSERT INTO batch_items (batch_id, line, custom_id, method, url, body)"
           " VALUES (?, ?, ?, ?, ?, ?)");
    for (const BatchItem& item : items) {
      s.text(1, id).integer(2, item.line).text(3, item.custom_id).text(4, item.method);
      s.text(5, item.url).text(6, item.body);
      if (!s.done()) {
        return sqlite_error(what + ": storing line " + std::to_string(item.line));
      }
      s.reset();
    }
  }
  if (!txn.commit()) return sqlite_error(what);
  return batch_locked(id);
}

core::Result<BatchRecord> BatchStore::batch_locked(const std::string& id) {
  Stmt s(db_, (std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id = ?").c_str());
  s.text(1, id);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return core::Status::not_found("no such batch: " + id);
  if (rc != SQLITE_ROW) return sqlite_error("reading batch " + id);
  return read_record(s);
}

core::Result<BatchRecord> BatchStore::batch(const std::string& id) {
  core::MutexLock lock(mu_);
  return batch_locked(id);
}

std::vector<BatchRecord> BatchStore::list_batches(int limit, const std::string& after_id, const std::string& owner) {
  std::vector<BatchRecord> out;
  if (limit <= 0) return out;
  core::MutexLock lock(mu_);
  std::string sql = std::string("SELECT ") + kBatchColumns + " FROM batches WHERE (?3 = '' OR owner = ?3)";
  // An unknown cursor makes the subquery NULL, and `seq < NULL` matches nothing.
  if (!after_id.empty()) sql += " AND seq < (SELECT seq FROM batches WHERE id = ?2)";
  sql += " ORDER BY seq DESC LIMIT ?1";
  Stmt s(db_, sql.c_str());
  s.integer(1, limit);
  if (!after_id.empty()) s.text(2, after_id);
  s.text(3, owner);
  while (s.step() == SQLITE_ROW) out.push_back(read_record(s));
  return out;
}

std::vector<std::string> BatchStore::active_batch_ids() {
  core::MutexLock lock(mu_);
  Stmt s(db_, "SELECT id FROM batches WHERE state IN (?, ?) ORDER BY seq");
  s.text(1, sql_state(BatchState::kInProgress)).text(2, sql_state(BatchState::kCancelling));
  std::vector<std::string> out;
  while (s.step() == SQLITE_ROW) out.push_back(s.col_text(0));
  return out;
}

std::vector<std::string> BatchStore::expired_batch_ids() {
  core::MutexLock lock(mu_);
  // Cancelling batches are left out: their cancel is already ending them.
  Stmt s(db_, "SELECT id FROM batches WHERE state = ? AND expires_at <= ? ORDER BY seq");
  s.text(1, sql_state(BatchState::kInProgress)).integer(2, now_());
  std::vector<std::string> out;
  while (s.step() == SQLITE_ROW) out.push_back(s.col_text(0));
  return out;
}

// --- items ------------------------------------------------------------------------------

std::vector<PendingItem> BatchStore::pending_items(const std::string& batch_id, int limit,
                                                   const std::set<int64_t>& exclude) {
  std::vector<PendingItem> out;
  if (limit <= 0) return out;
  core::MutexLock lock(mu_);
  Stmt s(db_,
         "SELECT line, custom_id, url, body FROM batch_items"
         " WHERE batch_id = ? AND outcome_at IS NULL ORDER BY line");
  s.text(1, batch_id);
  while (static_cast<int>(out.size()) < limit && s.step() == SQLITE_ROW) {
    const int64_t line = s.col_int(0);
    if (exclude.count(line)) continue;
    out.push_back({batch_id, line, s.col_text(1), s.col_text(2), s.col_text(3)});
  }
  return out;
}

core::Result<int64_t> BatchStore::pending_count(const std::string& batch_id) {
  core::MutexLock lock(mu_);
  Stmt s(db_, "SELECT total - completed - failed FROM batches WHERE id = ?");
  s.text(1, batch_id);
  const int rc = s.step();
  if (rc == SQLITE_DONE) return core::Status::not_found("no such batch: " + batch_id);
  if (rc != SQLITE_ROW) return sqlite_error("reading batch " + batch_id);
  return s.col_int(0);
}

core::Status BatchStore::record_attempt(const std::string& batch_id, int64_t line) {
  const std::string what = "recording an attempt at line " + std::to_string(line) + " of " + batch_id;
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  auto record = batch_locked(batch_id);
  if (!record) return record.status().with_context(what);
  if (batch_state_is_final(record->state)) {
    return core::Status::error(what + ": the batch is " + std::string(batch_state_name(record->state)));
  }
  {
    Stmt s(db_, "SELECT outcome_at IS NOT NULL FROM batch_items WHERE batch_id = ? AND line = ?");
    s.text(1, batch_id).integer(2, line);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return core::Status::error(what + ": the batch has no such line");
    if (rc != SQLITE_ROW) return sqlite_error(what);
    if (s.col_int(0) != 0) return core::Status::error(what + ": the item already has an outcome");
  }
  {
    Stmt s(db_, "UPDATE batch_items SET attempts = attempts + 1 WHERE batch_id = ? AND line = ?");
    s.text(1, batch_id).integer(2, line);
    if (!s.done()) return sqlite_error(what);
  }
  {
    Stmt s(db_, "UPDATE batches SET attempts = attempts + 1 WHERE id = ?");
    s.text(1, batch_id);
    if (!s.done()) return sqlite_error(what);
  }
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Status BatchStore::withdraw_attempt(const std::string& batch_id, int64_t line) {
  const std::string what = "withdrawing an attempt at line " + std::to_string(line) + " of " + batch_id;
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  Stmt item(db_,
            "UPDATE batch_items SET attempts = attempts - 1"
            " WHERE batch_id = ? AND line = ? AND attempts > 0 AND outcome_at IS NULL");
  item.text(1, batch_id).integer(2, line);
  if (!item.done()) return sqlite_error(what);
  if (sqlite3_changes(db_) == 0) return core::Status::error(what + ": no attempt without an outcome to withdraw");
  Stmt batch(db_, "UPDATE batches SET attempts = attempts - 1 WHERE id = ? AND attempts > 0");
  batch.text(1, batch_id);
  if (!batch.done()) return sqlite_error(what);
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Result<bool> BatchStore::record_outcome(const std::string& batch_id, int64_t line, const ItemOutcome& outcome) {
  const std::string what = "recording the outcome of line " + std::to_string(line) + " of " + batch_id;
  if (outcome.status_code != 0 && (outcome.status_code < 100 || outcome.status_code > 599)) {
    return core::Status::error(what + ": " + std::to_string(outcome.status_code) + " is not an HTTP status");
  }
  if (outcome.status_code == 0 && outcome.error_code.empty()) {
    return core::Status::error(what + ": an outcome without an HTTP status needs an error code");
  }
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  auto record = batch_locked(batch_id);
  if (!record) return record.status().with_context(what);
  // The result files are written: an answer arriving now (a request in flight when the
  // batch was cancelled or expired) is dropped, so that the files and counts agree.
  if (batch_state_is_final(record->state)) return false;
  {
    Stmt s(db_,
           "UPDATE batch_items SET outcome_at = ?, status_code = ?, response_body = ?,"
           " request_id = ?, error_code = ?, error_message = ?"
           " WHERE batch_id = ? AND line = ? AND outcome_at IS NULL");
    s.integer(1, now_())
        .integer(2, outcome.status_code)
        .text(3, outcome.body)
        .text(4, outcome.request_id)
        .text(5, outcome.error_code)
        .text(6, outcome.error_message)
        .text(7, batch_id)
        .integer(8, line);
    if (!s.done()) return sqlite_error(what);
  }
  if (sqlite3_changes(db_) == 0) {
    Stmt s(db_, "SELECT 1 FROM batch_items WHERE batch_id = ? AND line = ?");
    s.text(1, batch_id).integer(2, line);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return core::Status::error(what + ": the batch has no such line");
    if (rc != SQLITE_ROW) return sqlite_error(what);
    return false;  // already recorded; the transaction rolls back having changed nothing
  }
  {
    const bool ok = is_2xx(outcome.status_code);
    Stmt s(db_, "UPDATE batches SET completed = completed + ?, failed = failed + ? WHERE id = ?");
    s.integer(1, ok ? 1 : 0).integer(2, ok ? 0 : 1).text(3, batch_id);
    if (!s.done()) return sqlite_error(what);
  }
  if (!txn.commit()) return sqlite_error(what);
  return true;
}

core::Status BatchStore::request_cancel(const std::string& id) {
  const std::string what = "cancelling batch " + id;
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  auto record = batch_locked(id);
  if (!record) return record.status();
  if (record->state != BatchState::kInProgress && record->state != BatchState::kValidating) {
    return core::Status::failed_precondition("batch " + id + " cannot be cancelled: it is " +
                               std::string(batch_state_name(record->state)));
  }
  Stmt s(db_, "UPDATE batches SET state = ?, cancelling_at = ? WHERE id = ?");
  s.text(1, sql_state(BatchState::kCancelling)).integer(2, now_()).text(3, id);
  if (!s.done()) return sqlite_error(what);
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Result<BatchRecord> BatchStore::finalize(const std::string& id, BatchState final_state) {
  const std::string what = "finalizing batch " + id;
  if (final_state != BatchState::kCompleted && final_state != BatchState::kCancelled &&
      final_state != BatchState::kExpired) {
    return core::Status::error(what + ": " + std::string(batch_state_name(final_state)) +
                               " is not a final state (use completed, cancelled or expired)");
  }
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin()) return sqlite_error(what);
  auto found = batch_locked(id);
  if (!found) return found.status();
  BatchRecord record = std::move(found).value();
  if (record.state == final_state) return record;  // already done: idempotent
  if (batch_state_is_final(record.state)) {
    return core::Status::error(what + " as " + std::string(batch_state_name(final_state)) + ": it is already " +
                               std::string(batch_state_name(record.state)));
  }
  const int64_t pending = record.total - record.completed - record.failed;
  if (final_state == BatchState::kCompleted && pending > 0) {
    return core::Status::error(what + ": " + std::to_string(pending) + " items have no outcome yet");
  }

  // The part of each item id that ties it to the batch: the batch id's random suffix.
  const std::string hex = id.rfind("batch_", 0) == 0 ? id.substr(6) : id;
  const char* missing_code = final_state == BatchState::kExpired ? "batch_expired" : "batch_cancelled";
  const char* missing_message = final_state == BatchState::kExpired
                                    ? "the batch expired before this request was completed"
                                    : "the batch was cancelled before this request was completed";
  std::string output;
  std::string errors;
  {
    Stmt s(db_,
           "SELECT line, custom_id, outcome_at IS NOT NULL, status_code, response_body,"
           " request_id, error_code, error_message FROM batch_items"
           " WHERE batch_id = ? ORDER BY line");
    s.text(1, id);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      const std::string line = std::to_string(s.col_int(0));
      ojson j;
      j["id"] = "batch_req_" + hex + "_" + line;
      j["custom_id"] = s.col_text(1);
      if (s.col_int(2) == 0) {
        j["response"] = nullptr;
        j["error"] = {{"code", missing_code}, {"message", missing_message}};
        append_line(errors, j);
        continue;
      }
      const int64_t status = s.col_int(3);
      std::string request_id = s.col_text(5);
      if (request_id.empty()) request_id = "req_" + hex + "_" + line;
      const std::string error_code = s.col_text(6);
      const std::string error_message = s.col_text(7);
      if (is_2xx(status)) {
        j["response"] = {{"status_code", status}, {"request_id", request_id}, {"body", body_json(s.col_text(4))}};
        j["error"] = nullptr;
        append_line(output, j);
        continue;
      }
      if (status != 0) {
        j["response"] = {{"status_code", status}, {"body", body_json(s.col_text(4))}};
      } else {
        j["response"] = nullptr;
      }
      if (!error_code.empty() || !error_message.empty()) {
        j["error"] = {{"code", error_code}, {"message", error_message}};
      } else {
        j["error"] = nullptr;
      }
      append_line(errors, j);
    }
    if (rc != SQLITE_DONE) return sqlite_error(what + ": reading the items");
  }

  const int64_t now = now_();
  if (!output.empty()) {
    auto f = insert_file_locked("batch_output", id + "_output.jsonl", output, now, record.owner);
    if (!f) return f.status();
    record.output_file_id = f->id;
  }
  if (!errors.empty()) {
    auto f = insert_file_locked("batch_output", id + "_errors.jsonl", errors, now, record.owner);
    if (!f) return f.status();
    record.error_file_id = f->id;
  }
  record.state = final_state;
  switch (final_state) {
    case BatchState::kCompleted:
      if (record.finalizing_at == 0) record.finalizing_at = now;
      record.completed_at = now;
      break;
    case BatchState::kCancelled:
      record.cancelled_at = now;
      break;
    default:
      record.expired_at = now;
      break;
  }
  {
    Stmt s(db_,
           "UPDATE batches SET state = ?, finalizing_at = ?, completed_at = ?, cancelled_at = ?,"
           " expired_at = ?, output_file_id = ?, error_file_id = ? WHERE id = ?");
    s.text(1, sql_state(record.state))
        .integer(2, record.finalizing_at)
        .integer(3, record.completed_at)
        .integer(4, record.cancelled_at)
        .integer(5, record.expired_at)
        .text(6, record.output_file_id)
        .text(7, record.error_file_id)
        .text(8, id);
    if (!s.done()) return sqlite_error(what);
  }
  if (!txn.commit()) return sqlite_error(what);
  return record;
}

}  // namespace zs::platform
