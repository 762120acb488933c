#include "platform/ledger/cost_ledger.h"

#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/log.h"
#include "platform/ledger/json_text.h"

namespace zs::platform {
namespace {

constexpr std::string_view kLogComponent = "ledger";
// Long enough to ride out another connection's checkpoint, short enough that a stuck writer
// surfaces as an error instead of a hung daemon.
constexpr int kBusyTimeoutMs = 5000;

// Each entry moves the schema from version i to i + 1. Append only: a file records the
// version it reached, and open() runs the entries it has not seen yet.
constexpr const char* kMigrations[] = {
    // 0 -> 1: instances and requests.
    // One row per run of an instance; instance ids may be reused after a stop, so the id is
    // unique among open rows only. last_seen is the latest heartbeat: the bound a crash
    // closes the row at.
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
    // Finds open rows (stopped_at IS NULL) for heartbeats and recovery without a full scan.
    "CREATE INDEX instances_stopped_at ON instances(stopped_at);"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  deployment TEXT NOT NULL,"
    "  at REAL NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  completion_tokens INTEGER NOT NULL,"
    "  http_status INTEGER NOT NULL,"
    "  queue_seconds REAL NOT NULL);"
    "CREATE INDEX requests_at ON requests(at);",
};
static_assert(std::size(kMigrations) == CostLedger::kSchemaVersion,
              "one migration per schema version");

// Seconds of an instance row inside [?1, ?2), an open row counting up to ?3 (now).
#define ZS_LEDGER_CLIPPED_SECONDS \
  "max(0.0, min(coalesce(stopped_at, ?3), ?2) - max(started_at, ?1))"
// Rows that overlap [?1, ?2) or started in it (a zero-length run still counts a cold start).
#define ZS_LEDGER_IN_WINDOW "started_at < ?2 AND (stopped_at IS NULL OR stopped_at >= ?1)"

// Resets a reused statement when the call that stepped it returns, however it returns.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtScope() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

bool bind_text(sqlite3_stmt* stmt, int index, const std::string& s) {
  // SQLITE_STATIC: the string outlives the statement's use, which ends in StmtScope.
  return sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC) ==
         SQLITE_OK;
}

std::string column_text(sqlite3_stmt* stmt, int index) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt, index))) : std::string();
}

core::Status check_time(double t, const char* name) {
  if (!std::isfinite(t)) return core::Status::error(std::string(name) + " is not a finite time");
  return core::Status::ok();
}

core::Status check_window(double from, double to, double now) {
  ZS_RETURN_IF_ERROR(check_time(from, "window start"));
  ZS_RETURN_IF_ERROR(check_time(to, "window end"));
  ZS_RETURN_IF_ERROR(check_time(now, "now"));
  if (to < from) return core::Status::error("cost window ends before it starts");
  return core::Status::ok();
}

}  // namespace

double DeploymentCost::cost_per_request() const {
  return requests > 0 ? cost / static_cast<double>(requests) : 0.0;
}

CostLedger::CostLedger(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

CostLedger::~CostLedger() {
  for (sqlite3_stmt* s : {start_stmt_, find_open_stmt_, heartbeat_stmt_, stop_stmt_, request_stmt_,
                          costs_instances_stmt_, costs_requests_stmt_, device_costs_stmt_}) {
    sqlite3_finalize(s);  // a no-op on nullptr
  }
  sqlite3_close_v2(db_);
}

core::Result<std::unique_ptr<CostLedger>> CostLedger::open(const std::string& path) {
  const std::string where = "opening cost ledger " + path;
  if (path.empty()) return core::Status::error(where + ": the path is empty");

  // SQLite does not create directories; a fresh install points the ledger at a state
  // directory that may not exist yet.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    const auto st = std::filesystem::status(parent, ec);
    if (std::filesystem::exists(st)) {
      if (!std::filesystem::is_directory(st)) {
        return core::Status::error(where + ": " + parent.string() + " is not a directory");
      }
    } else if (!std::filesystem::create_directories(parent, ec) && ec) {
      return core::Status::error(where + ": cannot create directory " + parent.string() + ": " +
                                 ec.message());
    }
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return core::Status::error(where + ": the path is a directory");
  }

  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return core::Status::error(where + ": " + msg);
  }
  // Owns `db` from here on, closing it on every early return.
  std::unique_ptr<CostLedger> ledger(new CostLedger(path, db));
  // SQLite falls back to read-only when the file is write-protected; a ledger must write.
  if (sqlite3_db_readonly(db, "main") == 1) {
    return core::Status::error(where + ": the file is read-only (check its permissions)");
  }
  ZS_RETURN_IF_ERROR(ledger->init().with_context(where));
  return ledger;
}

core::Status CostLedger::sqlite_error(const std::string& what) const {
  return core::Status::error("cost ledger " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

core::Status CostLedger::exec(const char* sql, const char* what) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return core::Status::error(std::string(what) + ": " + msg);
  }
  return core::Status::ok();
}

core::Status CostLedger::prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK) {
    return core::Status::error(std::string("preparing statement: ") + sqlite3_errmsg(db_));
  }
  return core::Status::ok();
}

core::Status CostLedger::init() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);

  // The first statement that reads the file: a file that is not SQLite fails here.
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &stmt, nullptr) != SQLITE_OK) {
    return core::Status::error(std::string("setting WAL mode: ") + sqlite3_errmsg(db_));
  }
  std::string mode;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) mode = column_text(stmt, 0);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) {
    return core::Status::error(std::string("setting WAL mode: ") + sqlite3_errmsg(db_));
  }
  if (mode != "wal") {
    return core::Status::error("the database refused WAL mode (journal mode is " + mode + ")");
  }
  // In WAL mode NORMAL stays consistent after a crash; only the last commits before a power
  // loss can be lost, which is within one heartbeat of metering.
  ZS_RETURN_IF_ERROR(exec("PRAGMA synchronous=NORMAL", "setting synchronous=NORMAL"));

  // IMMEDIATE takes the write lock up front, so two processes opening the same new file
  // cannot both decide to create the schema.
  ZS_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE", "starting the schema transaction"));
  core::Status st = migrate();
  if (st.is_ok()) {
    // Whoever left these open is gone: bill them up to their last heartbeat, no further.
    st = exec("UPDATE instances SET stopped_at = last_seen WHERE stopped_at IS NULL",
              "closing instances left open by a crash");
    recovered_on_open_ = st.is_ok() ? sqlite3_changes64(db_) : 0;
  }
  if (st.is_ok()) st = exec("COMMIT", "committing the schema");
  if (!st.is_ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  }
  if (recovered_on_open_ > 0) {
    core::log_warn(kLogComponent, path_ + ": closed " + std::to_string(recovered_on_open_) +
                                      " instance(s) left open by a crash at their last heartbeat");
  }

  ZS_RETURN_IF_ERROR(prepare(
      "INSERT INTO instances (instance_id, deployment, device, price_per_second, started_at,"
      " last_seen, stopped_at, cold_start) VALUES (?1, ?2, ?3, ?4, ?5, ?5, NULL, ?6)",
      &start_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT 1 FROM instances WHERE instance_id = ?1 AND stopped_at IS NULL", &find_open_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "UPDATE instances SET last_seen = max(last_seen, ?1) WHERE stopped_at IS NULL",
      &heartbeat_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "UPDATE instances SET stopped_at = max(started_at, ?2), last_seen = max(started_at, ?2)"
      " WHERE instance_id = ?1 AND stopped_at IS NULL",
      &stop_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "INSERT INTO requests (deployment, at, prompt_tokens, completion_tokens, http_status,"
      " queue_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      &request_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT deployment, sum(" ZS_LEDGER_CLIPPED_SECONDS "),"
      " sum(" ZS_LEDGER_CLIPPED_SECONDS " * price_per_second),"
      " sum(cold_start AND started_at >= ?1 AND started_at < ?2)"
      " FROM instances WHERE " ZS_LEDGER_IN_WINDOW " GROUP BY deployment",
      &costs_instances_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT deployment, count(*), sum(prompt_tokens), sum(completion_tokens)"
      " FROM requests WHERE at >= ?1 AND at < ?2 GROUP BY deployment",
      &costs_requests_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT deployment, device, sum(" ZS_LEDGER_CLIPPED_SECONDS "),"
      " sum(" ZS_LEDGER_CLIPPED_SECONDS " * price_per_second)"
      " FROM instances WHERE " ZS_LEDGER_IN_WINDOW " GROUP BY deployment, device"
      " ORDER BY deployment, device",
      &device_costs_stmt_));
  return core::Status::ok();
}

core::Status CostLedger::migrate() {
  ZS_RETURN_IF_ERROR(exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                          "creating the schema version table"));
  int64_t version = 0;
  int64_t other_tables = 0;
  {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT (SELECT coalesce(max(version), 0) FROM schema_version),"
                           " (SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                           "  AND name <> 'schema_version' AND name NOT LIKE 'sqlite_%')",
                           -1, &stmt, nullptr) != SQLITE_OK) {
      return core::Status::error(std::string("reading the schema version: ") + sqlite3_errmsg(db_));
    }
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      version = sqlite3_column_int64(stmt, 0);
      other_tables = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) {
      return core::Status::error(std::string("reading the schema version: ") + sqlite3_errmsg(db_));
    }
  }
  if (version == 0 && other_tables > 0) {
    return core::Status::error(
        "the file is an SQLite database but not a cost ledger (it has tables and no schema "
        "version)");
  }
  if (version > kSchemaVersion) {
    return core::Status::error("schema version " + std::to_string(version) +
                               " was written by a newer zeroserve (this one reads up to " +
                               std::to_string(kSchemaVersion) + ")");
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    ZS_RETURN_IF_ERROR(exec(kMigrations[v], ("migrating the schema to version " +
                                             std::to_string(v + 1)).c_str()));
  }
  if (version != kSchemaVersion) {
    const std::string sql = "DELETE FROM schema_version; INSERT INTO schema_version VALUES (" +
                            std::to_string(kSchemaVersion) + ")";
    ZS_RETURN_IF_ERROR(exec(sql.c_str(), "recording the schema version"));
  }
  return core::Status::ok();
}

core::Status CostLedger::instance_started(const std::string& instance_id,
                                          const std::string& deployment, const std::string& device,
                                          double price_per_second, double now,
                                          bool cold_start_for_request) {
  const std::string what = "starting instance " + instance_id;
  if (instance_id.empty()) return core::Status::error("starting an instance: the instance id is empty");
  if (deployment.empty()) return core::Status::error(what + ": the deployment name is empty");
  if (!std::isfinite(price_per_second) || price_per_second < 0) {
    return core::Status::error(what + ": price_per_second must be a finite number >= 0");
  }
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));

  std::lock_guard<std::mutex> lock(mu_);
  {
    StmtScope scope(find_open_stmt_);
    if (!bind_text(find_open_stmt_, 1, instance_id)) return sqlite_error(what);
    const int rc = sqlite3_step(find_open_stmt_);
    if (rc == SQLITE_ROW) return core::Status::error(what + ": an instance with this id is already open");
    if (rc != SQLITE_DONE) return sqlite_error(what);
  }
  StmtScope scope(start_stmt_);
  if (!bind_text(start_stmt_, 1, instance_id) || !bind_text(start_stmt_, 2, deployment) ||
      !bind_text(start_stmt_, 3, device) ||
      sqlite3_bind_double(start_stmt_, 4, price_per_second) != SQLITE_OK ||
      sqlite3_bind_double(start_stmt_, 5, now) != SQLITE_OK ||
      sqlite3_bind_int(start_stmt_, 6, cold_start_for_request ? 1 : 0) != SQLITE_OK) {
    return sqlite_error(what);
  }
  if (sqlite3_step(start_stmt_) != SQLITE_DONE) return sqlite_error(what);
  return core::Status::ok();
}

core::Status CostLedger::heartbeat(double now) {
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context("heartbeat"));
  std::lock_guard<std::mutex> lock(mu_);
  StmtScope scope(heartbeat_stmt_);
  if (sqlite3_bind_double(heartbeat_stmt_, 1, now) != SQLITE_OK ||
      sqlite3_step(heartbeat_stmt_) != SQLITE_DONE) {
    return sqlite_error("heartbeat");
  }
  return core::Status::ok();
}

core::Status CostLedger::instance_stopped(const std::string& instance_id, double now) {
  const std::string what = "stopping instance " + instance_id;
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));
  std::lock_guard<std::mutex> lock(mu_);
  StmtScope scope(stop_stmt_);
  if (!bind_text(stop_stmt_, 1, instance_id) ||
      sqlite3_bind_double(stop_stmt_, 2, now) != SQLITE_OK ||
      sqlite3_step(stop_stmt_) != SQLITE_DONE) {
    return sqlite_error(what);
  }
  if (sqlite3_changes64(db_) == 0) {
    return core::Status::error(what + ": no open instance has this id");
  }
  return core::Status::ok();
}

core::Status CostLedger::record_request(const std::string& deployment, int64_t prompt_tokens,
                                        int64_t completion_tokens, int http_status,
                                        double queue_seconds, double now) {
  const std::string what = "recording a request for " + deployment;
  if (deployment.empty()) return core::Status::error("recording a request: the deployment name is empty");
  if (prompt_tokens < 0 || completion_tokens < 0) {
    return core::Status::error(what + ": token counts must be >= 0");
  }
  if (!std::isfinite(queue_seconds) || queue_seconds < 0) {
    return core::Status::error(what + ": queue_seconds must be a finite number >= 0");
  }
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));
  std::lock_guard<std::mutex> lock(mu_);
  StmtScope scope(request_stmt_);
  if (!bind_text(request_stmt_, 1, deployment) ||
      sqlite3_bind_double(request_stmt_, 2, now) != SQLITE_OK ||
      sqlite3_bind_int64(request_stmt_, 3, prompt_tokens) != SQLITE_OK ||
      sqlite3_bind_int64(request_stmt_, 4, completion_tokens) != SQLITE_OK ||
      sqlite3_bind_int(request_stmt_, 5, http_status) != SQLITE_OK ||
      sqlite3_bind_double(request_stmt_, 6, queue_seconds) != SQLITE_OK ||
      sqlite3_step(request_stmt_) != SQLITE_DONE) {
    return sqlite_error(what);
  }
  return core::Status::ok();
}

core::Result<std::vector<DeploymentCost>> CostLedger::costs(double from, double to,
                                                            double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading costs"));
  std::map<std::string, DeploymentCost> by_deployment;
  std::lock_guard<std::mutex> lock(mu_);
  // Both reads in one transaction, so instance time and requests describe the same moment.
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqlite_error("reading costs");
  }
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db_};
  {
    sqlite3_stmt* s = costs_instances_stmt_;
    StmtScope scope(s);
    if (sqlite3_bind_double(s, 1, from) != SQLITE_OK || sqlite3_bind_double(s, 2, to) != SQLITE_OK ||
        sqlite3_bind_double(s, 3, now) != SQLITE_OK) {
      return sqlite_error("reading instance costs");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const double seconds = sqlite3_column_double(s, 1);
      const int64_t cold_starts = sqlite3_column_int64(s, 3);
      // Open rows that only start after `now` overlap nothing yet.
      if (seconds <= 0 && cold_starts == 0) continue;
      DeploymentCost& d = by_deployment[column_text(s, 0)];
      d.instance_seconds = seconds;
      d.cost = sqlite3_column_double(s, 2);
      d.cold_starts = cold_starts;
    }
    if (rc != SQLITE_DONE) return sqlite_error("reading instance costs");
  }
  {
    sqlite3_stmt* s = costs_requests_stmt_;
    StmtScope scope(s);
    if (sqlite3_bind_double(s, 1, from) != SQLITE_OK || sqlite3_bind_double(s, 2, to) != SQLITE_OK) {
      return sqlite_error("reading request counts");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      DeploymentCost& d = by_deployment[column_text(s, 0)];
      d.requests = sqlite3_column_int64(s, 1);
      d.prompt_tokens = sqlite3_column_int64(s, 2);
      d.completion_tokens = sqlite3_column_int64(s, 3);
    }
    if (rc != SQLITE_DONE) return sqlite_error("reading request counts");
  }
  std::vector<DeploymentCost> out;
  out.reserve(by_deployment.size());
  for (auto& [name, d] : by_deployment) {
    d.deployment = name;
    out.push_back(std::move(d));
  }
  return out;
}

core::Result<std::vector<InstanceCost>> CostLedger::instance_costs(double from, double to,
                                                                   double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading instance costs"));
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* s = device_costs_stmt_;
  StmtScope scope(s);
  if (sqlite3_bind_double(s, 1, from) != SQLITE_OK || sqlite3_bind_double(s, 2, to) != SQLITE_OK ||
      sqlite3_bind_double(s, 3, now) != SQLITE_OK) {
    return sqlite_error("reading instance costs");
  }
  std::vector<InstanceCost> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const double seconds = sqlite3_column_double(s, 2);
    if (seconds <= 0) continue;
    out.push_back({column_text(s, 0), column_text(s, 1), seconds, sqlite3_column_double(s, 3)});
  }
  if (rc != SQLITE_DONE) return sqlite_error("reading instance costs");
  return out;
}

core::Result<double> CostLedger::total_cost(double from, double to, double now) const {
  auto costs_or = costs(from, to, now);
  if (!costs_or) return costs_or.status();
  double total = 0;
  for (const DeploymentCost& d : *costs_or) total += d.cost;
  return total;
}

core::Result<std::string> CostLedger::costs_json(double from, double to, double now) const {
  auto costs_or = costs(from, to, now);
  if (!costs_or) return costs_or.status();
  std::string out = "{\"from\":";
  append_json_number(out, from);
  out += ",\"to\":";
  append_json_number(out, to);
  out += ",\"deployments\":[";
  double total = 0;
  bool first = true;
  for (const DeploymentCost& d : *costs_or) {
    if (!first) out += ',';
    first = false;
    out += "{\"deployment\":";
    append_json_string(out, d.deployment);
    out += ",\"instance_seconds\":";
    append_json_number(out, d.instance_seconds);
    out += ",\"cost\":";
    append_json_number(out, d.cost);
    out += ",\"requests\":";
    append_json_number(out, d.requests);
    out += ",\"prompt_tokens\":";
    append_json_number(out, d.prompt_tokens);
    out += ",\"completion_tokens\":";
    append_json_number(out, d.completion_tokens);
    out += ",\"cold_starts\":";
    append_json_number(out, d.cold_starts);
    out += ",\"cost_per_request\":";
    append_json_number(out, d.cost_per_request());
    out += '}';
    total += d.cost;
  }
  out += "],\"total_cost\":";
  append_json_number(out, total);
  out += '}';
  return out;
}

}  // namespace zs::platform
