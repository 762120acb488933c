#include "platform/ledger/cost_ledger.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "core/log.h"
#include "platform/config/config.h"
#include "platform/ledger/json_text.h"
#include "platform/sqlite/sqlite_transaction.h"

namespace zs::platform {
namespace {

constexpr std::string_view kLogComponent = "ledger";
// Long enough to ride out another connection's checkpoint, short enough that a stuck writer
// surfaces as an error instead of a hung daemon.
constexpr int kBusyTimeoutMs = 5000;
// The oldest schema a read-only open can report on (it cannot migrate the file).
constexpr int64_t kOldestReadableVersion = 1;

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

    // 1 -> 2: the phases of each run. Runs recorded under version 1 keep no phases: nothing
    // tells how their time split, so reports count it as neither starting nor idle.
    // A phase still open (ended_at NULL) lasts as long as its run; at most one per run.
    "CREATE TABLE instance_phases ("
    "  id INTEGER PRIMARY KEY,"
    "  run INTEGER NOT NULL REFERENCES instances(id),"
    "  phase TEXT NOT NULL CHECK (phase IN ('starting', 'ready', 'idle', 'draining')),"
    "  started_at REAL NOT NULL,"
    "  ended_at REAL);"
    "CREATE UNIQUE INDEX instance_phases_open_run ON instance_phases(run) WHERE ended_at IS NULL;"
    "CREATE INDEX instance_phases_started_at ON instance_phases(started_at);",

    // 2 -> 3: who sent each request. Rows recorded before carry no key and were all served
    // as interactive (batch classes came with keys), which the defaults say.
    "ALTER TABLE requests ADD COLUMN api_key TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE requests ADD COLUMN class TEXT NOT NULL DEFAULT 'interactive';",

    // 3 -> 4: sleeping instances. A run may sleep (billed at its device's sleep price,
    // recorded with the run); runs recorded before never slept, so a sleep price of 0 changes
    // nothing for them. SQLite cannot alter a CHECK, so the phases table is rebuilt with the
    // new phase admitted: same columns, rows (ids kept) and indexes.
    "CREATE TABLE instance_phases_v4 ("
    "  id INTEGER PRIMARY KEY,"
    "  run INTEGER NOT NULL REFERENCES instances(id),"
    "  phase TEXT NOT NULL"
    "    CHECK (phase IN ('starting', 'ready', 'idle', 'draining', 'sleeping')),"
    "  started_at REAL NOT NULL,"
    "  ended_at REAL);"
    "INSERT INTO instance_phases_v4 (id, run, phase, started_at, ended_at)"
    "  SELECT id, run, phase, started_at, ended_at FROM instance_phases;"
    "DROP TABLE instance_phases;"
    "ALTER TABLE instance_phases_v4 RENAME TO instance_phases;"
    "CREATE UNIQUE INDEX instance_phases_open_run ON instance_phases(run) WHERE ended_at IS NULL;"
    "CREATE INDEX instance_phases_started_at ON instance_phases(started_at);"
    "ALTER TABLE instances ADD COLUMN sleep_price_per_second REAL NOT NULL DEFAULT 0;",
};
static_assert(std::size(kMigrations) == CostLedger::kSchemaVersion,
              "one migration per schema version");

// Where an instance row's time ends: its stop, else `now` (?3), except that an open row
// whose heartbeat is older than ?4 seconds ends at that heartbeat (its daemon is gone).
#define ZS_LEDGER_END \
  "coalesce(i.stopped_at, CASE WHEN ?3 - i.last_seen > ?4 THEN i.last_seen ELSE ?3 END)"
// Seconds of an instance row inside [?1, ?2).
#define ZS_LEDGER_CLIPPED_SECONDS \
  "max(0.0, min(" ZS_LEDGER_END ", ?2) - max(i.started_at, ?1))"
// Seconds of a phase p of run i inside [?1, ?2): a phase ends at its own end, else with its
// run, and never after its run ends.
#define ZS_LEDGER_PHASE_SECONDS \
  "max(0.0, min(coalesce(p.ended_at, " ZS_LEDGER_END "), " ZS_LEDGER_END ", ?2)" \
  " - max(p.started_at, ?1))"
// Rows that overlap [?1, ?2) or started in it (a zero-length run still counts a cold start).
#define ZS_LEDGER_IN_WINDOW "i.started_at < ?2 AND (i.stopped_at IS NULL OR i.stopped_at >= ?1)"

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

// Binds the window, now and the staleness bound that every instance-time query takes.
bool bind_window(sqlite3_stmt* stmt, double from, double to, double now, double stale_after) {
  return sqlite3_bind_double(stmt, 1, from) == SQLITE_OK &&
         sqlite3_bind_double(stmt, 2, to) == SQLITE_OK &&
         sqlite3_bind_double(stmt, 3, now) == SQLITE_OK &&
         sqlite3_bind_double(stmt, 4, stale_after) == SQLITE_OK;
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

std::optional<InstancePhase> parse_state(std::string_view s) {
  for (InstancePhase st : {InstancePhase::kStarting, InstancePhase::kReady, InstancePhase::kIdle,
                           InstancePhase::kDraining, InstancePhase::kSleeping}) {
    if (s == instance_phase_name(st)) return st;
  }
  return std::nullopt;
}

// `path` as the path part of an SQLite file: URI, so that '?', '#' and '%' in a file name
// are not read as URI syntax.
std::string uri_path(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7F) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// The most intervals [start, end) that overlap at one moment.
int64_t peak_overlap(std::vector<std::pair<double, int>>& edges) {
  // An end sorts before a start at the same time: a replacement that starts as another
  // instance stops is not two instances at once.
  std::sort(edges.begin(), edges.end());
  int64_t live = 0;
  int64_t peak = 0;
  for (const auto& [t, delta] : edges) {
    live += delta;
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace

double DeploymentCost::cost_per_request() const {
  return requests > 0 ? cost / static_cast<double>(requests) : 0.0;
}

double DeploymentCost::idle_share() const {
  return instance_seconds > 0 ? idle_seconds / instance_seconds : 0.0;
}

CostLedger::CostLedger(std::string path, sqlite3* db, bool read_only)
    : path_(std::move(path)),
      read_only_(read_only),
      db_(db),
      stale_after_(read_only ? kStaleHeartbeatSeconds : std::numeric_limits<double>::max()) {}

CostLedger::~CostLedger() {
  for (sqlite3_stmt* s :
       {start_stmt_, find_open_stmt_, heartbeat_stmt_, stop_stmt_, request_stmt_,
        costs_instances_stmt_, costs_requests_stmt_, device_costs_stmt_, open_phase_stmt_,
        end_phase_stmt_, begin_phase_stmt_, end_phases_of_stmt_, costs_phases_stmt_,
        intervals_stmt_, first_record_stmt_, key_requests_stmt_}) {
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
  std::unique_ptr<CostLedger> ledger(new CostLedger(path, db, /*read_only=*/false));
  // SQLite falls back to read-only when the file is write-protected; a ledger must write.
  if (sqlite3_db_readonly(db, "main") == 1) {
    return core::Status::error(where + ": the file is read-only (check its permissions)");
  }
  core::MutexLock lock(ledger->mu_);
  ZS_RETURN_IF_ERROR(ledger->init().with_context(where));
  return ledger;
}

core::Result<std::unique_ptr<CostLedger>> CostLedger::open_read_only(const std::string& path) {
  const std::string where = "opening cost ledger " + path + " for reading";
  if (path.empty()) return core::Status::error(where + ": the path is empty");
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) {
    return core::Status::error(where + ": the file does not exist");
  }
  if (std::filesystem::is_directory(st)) {
    return core::Status::error(where + ": the path is a directory");
  }
  // Without a -wal file no writer is attached and everything is in the main file. A plain
  // read-only open would then create -wal and -shm files, owned by whoever reads: a report
  // run as another user could lock the daemon out of its own ledger. immutable=1 reads the
  // file as it is, creating nothing; a daemon starting meanwhile writes to its new WAL, not
  // to the pages being read.
  const bool writer_attached = std::filesystem::exists(path + "-wal", ec);
  const std::string uri =
      "file:" + uri_path(path) + (writer_attached ? "?mode=ro" : "?mode=ro&immutable=1");
  sqlite3* db = nullptr;
  // Never SQLITE_OPEN_CREATE: reading must not leave an empty ledger behind.
  const int rc = sqlite3_open_v2(uri.c_str(), &db,
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return core::Status::error(where + ": " + msg);
  }
  std::unique_ptr<CostLedger> ledger(new CostLedger(path, db, /*read_only=*/true));
  core::MutexLock lock(ledger->mu_);
  ZS_RETURN_IF_ERROR(ledger->init_read_only().with_context(where));
  return ledger;
}

core::Status CostLedger::sqlite_error(const std::string& what) const {
  return core::Status::error("cost ledger " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

core::Status CostLedger::check_writable(const std::string& what) const {
  if (!read_only_) return core::Status::ok();
  return core::Status::error("cost ledger " + path_ + ": " + what +
                             ": the ledger was opened read-only");
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
    // Their open phases end there too (before the runs close, while they are still open).
    st = exec("UPDATE instance_phases SET ended_at = max(started_at,"
              " (SELECT last_seen FROM instances WHERE instances.id = instance_phases.run))"
              " WHERE ended_at IS NULL",
              "closing the phases of instances left open by a crash");
  }
  if (st.is_ok()) {
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
  return prepare_statements();
}

core::Status CostLedger::init_read_only() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // Belt and braces over SQLITE_OPEN_READONLY: this connection never changes the file.
  ZS_RETURN_IF_ERROR(exec("PRAGMA query_only=1", "making the connection query-only"));
  auto version = read_schema_version();
  if (!version) return version.status();
  if (*version == 0) {
    return core::Status::error("the file holds no cost ledger (no schema yet)");
  }
  if (*version > kSchemaVersion) {
    return core::Status::error("schema version " + std::to_string(*version) +
                               " was written by a newer zeroserve (this one reads up to " +
                               std::to_string(kSchemaVersion) + ")");
  }
  if (*version < kOldestReadableVersion) {
    return core::Status::error("schema version " + std::to_string(*version) +
                               " is too old to read without migrating it");
  }
  schema_version_ = *version;
  return prepare_statements();
}

core::Status CostLedger::prepare_statements() {
  if (!read_only_) {
    ZS_RETURN_IF_ERROR(prepare(
        "INSERT INTO instances (instance_id, deployment, device, price_per_second, started_at,"
        " last_seen, stopped_at, cold_start, sleep_price_per_second)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?5, NULL, ?6, ?7)",
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
        " queue_seconds, api_key, class) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &request_stmt_));
    ZS_RETURN_IF_ERROR(prepare(
        "SELECT i.id, i.started_at, p.id, p.phase, p.started_at FROM instances i"
        " LEFT JOIN instance_phases p ON p.run = i.id AND p.ended_at IS NULL"
        " WHERE i.instance_id = ?1 AND i.stopped_at IS NULL",
        &open_phase_stmt_));
    ZS_RETURN_IF_ERROR(prepare(
        "UPDATE instance_phases SET ended_at = max(started_at, ?2) WHERE id = ?1",
        &end_phase_stmt_));
    ZS_RETURN_IF_ERROR(prepare(
        "INSERT INTO instance_phases (run, phase, started_at) VALUES (?1, ?2, ?3)",
        &begin_phase_stmt_));
    ZS_RETURN_IF_ERROR(prepare(
        "UPDATE instance_phases SET ended_at = max(started_at, ?2) WHERE ended_at IS NULL AND run IN"
        " (SELECT id FROM instances WHERE instance_id = ?1 AND stopped_at IS NULL)",
        &end_phases_of_stmt_));
  }
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT i.deployment, sum(" ZS_LEDGER_CLIPPED_SECONDS "),"
      " sum(" ZS_LEDGER_CLIPPED_SECONDS " * i.price_per_second),"
      " sum(i.cold_start AND i.started_at >= ?1 AND i.started_at < ?2)"
      " FROM instances i WHERE " ZS_LEDGER_IN_WINDOW " GROUP BY i.deployment",
      &costs_instances_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT deployment, count(*), sum(prompt_tokens), sum(completion_tokens)"
      " FROM requests WHERE at >= ?1 AND at < ?2 GROUP BY deployment",
      &costs_requests_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT i.deployment, i.device, sum(" ZS_LEDGER_CLIPPED_SECONDS "),"
      " sum(" ZS_LEDGER_CLIPPED_SECONDS " * i.price_per_second)"
      " FROM instances i WHERE " ZS_LEDGER_IN_WINDOW " GROUP BY i.deployment, i.device"
      " ORDER BY i.deployment, i.device",
      &device_costs_stmt_));
  // Each run's stretch inside the window, for the peak of concurrent instances.
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT i.deployment, max(i.started_at, ?1), min(" ZS_LEDGER_END ", ?2)"
      " FROM instances i WHERE " ZS_LEDGER_IN_WINDOW
      " AND min(" ZS_LEDGER_END ", ?2) > max(i.started_at, ?1)",
      &intervals_stmt_));
  ZS_RETURN_IF_ERROR(prepare(
      "SELECT min(t) FROM (SELECT min(started_at) AS t FROM instances"
      " UNION ALL SELECT min(at) FROM requests)",
      &first_record_stmt_));
  if (schema_version_ >= 2) {
    // The last column is what the phase's seconds cost less than at the running price:
    // nonzero for sleeping phases only, which files before version 4 cannot hold (they have
    // no sleep price either).
    const std::string sleep_saving =
        schema_version_ >= 4 ? "sum(CASE WHEN p.phase = 'sleeping' THEN " ZS_LEDGER_PHASE_SECONDS
                               " * (i.price_per_second - i.sleep_price_per_second) ELSE 0.0 END)"
                             : "0.0";
    const std::string sql =
        "SELECT i.deployment, i.device, p.phase, sum(" ZS_LEDGER_PHASE_SECONDS "), " + sleep_saving +
        " FROM instance_phases p JOIN instances i ON i.id = p.run"
        " WHERE p.phase IN ('starting', 'ready', 'idle', 'sleeping') AND p.started_at < ?2"
        " AND (p.ended_at IS NULL OR p.ended_at > ?1)"
        " GROUP BY i.deployment, i.device, p.phase";
    ZS_RETURN_IF_ERROR(prepare(sql.c_str(), &costs_phases_stmt_));
  }
  // Older files (read-only opens) have no key columns: every request is keyless and
  // interactive there, as the 2 -> 3 migration's defaults would make it.
  ZS_RETURN_IF_ERROR(prepare(
      schema_version_ >= 3
          ? "SELECT api_key, deployment, class, count(*), sum(prompt_tokens),"
            " sum(completion_tokens) FROM requests WHERE at >= ?1 AND at < ?2"
            " GROUP BY api_key, deployment, class"
          : "SELECT '', deployment, 'interactive', count(*), sum(prompt_tokens),"
            " sum(completion_tokens) FROM requests WHERE at >= ?1 AND at < ?2"
            " GROUP BY deployment",
      &key_requests_stmt_));
  return core::Status::ok();
}

core::Result<int64_t> CostLedger::read_schema_version() {
  int64_t has_version_table = 0;
  int64_t other_tables = 0;
  {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                           "  AND name = 'schema_version'),"
                           " (SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                           "  AND name <> 'schema_version' AND name NOT LIKE 'sqlite_%')",
                           -1, &stmt, nullptr) != SQLITE_OK) {
      return core::Status::error(std::string("reading the schema version: ") + sqlite3_errmsg(db_));
    }
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      has_version_table = sqlite3_column_int64(stmt, 0);
      other_tables = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) {
      return core::Status::error(std::string("reading the schema version: ") + sqlite3_errmsg(db_));
    }
  }
  int64_t version = 0;
  if (has_version_table > 0) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &stmt,
                           nullptr) != SQLITE_OK) {
      return core::Status::error(std::string("reading the schema version: ") + sqlite3_errmsg(db_));
    }
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) version = sqlite3_column_int64(stmt, 0);
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
  return version;
}

core::Status CostLedger::migrate() {
  auto version_or = read_schema_version();
  if (!version_or) return version_or.status();
  const int64_t version = *version_or;
  if (version > kSchemaVersion) {
    return core::Status::error("schema version " + std::to_string(version) +
                               " was written by a newer zeroserve (this one reads up to " +
                               std::to_string(kSchemaVersion) + ")");
  }
  ZS_RETURN_IF_ERROR(exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                          "creating the schema version table"));
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    ZS_RETURN_IF_ERROR(exec(kMigrations[v], ("migrating the schema to version " +
                                             std::to_string(v + 1)).c_str()));
  }
  if (version != kSchemaVersion) {
    const std::string sql = "DELETE FROM schema_version; INSERT INTO schema_version VALUES (" +
                            std::to_string(kSchemaVersion) + ")";
    ZS_RETURN_IF_ERROR(exec(sql.c_str(), "recording the schema version"));
    if (version > 0) {
      core::log_info(kLogComponent, path_ + ": migrated the schema from version " +
                                        std::to_string(version) + " to " +
                                        std::to_string(kSchemaVersion));
    }
  }
  schema_version_ = kSchemaVersion;
  return core::Status::ok();
}

core::Status CostLedger::instance_started(const std::string& instance_id,
                                          const std::string& deployment, const std::string& device,
                                          double price_per_second, double sleep_price_per_second,
                                          double now, bool cold_start_for_request) {
  const std::string what = "starting instance " + instance_id;
  if (instance_id.empty()) return core::Status::error("starting an instance: the instance id is empty");
  if (deployment.empty()) return core::Status::error(what + ": the deployment name is empty");
  if (!std::isfinite(price_per_second) || price_per_second < 0) {
    return core::Status::invalid_argument(what + ": price_per_second must be a finite number >= 0");
  }
  if (!std::isfinite(sleep_price_per_second) || sleep_price_per_second < 0) {
    return core::Status::invalid_argument(what +
                                          ": sleep_price_per_second must be a finite number >= 0");
  }
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));
  ZS_RETURN_IF_ERROR(check_writable(what));

  core::MutexLock lock(mu_);
  // The run and its starting phase land together or not at all.
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN IMMEDIATE")) return sqlite_error(what);
  {
    StmtScope scope(find_open_stmt_);
    if (!bind_text(find_open_stmt_, 1, instance_id)) return sqlite_error(what);
    const int rc = sqlite3_step(find_open_stmt_);
    if (rc == SQLITE_ROW) return core::Status::error(what + ": an instance with this id is already open");
    if (rc != SQLITE_DONE) return sqlite_error(what);
  }
  {
    StmtScope scope(start_stmt_);
    if (!bind_text(start_stmt_, 1, instance_id) || !bind_text(start_stmt_, 2, deployment) ||
        !bind_text(start_stmt_, 3, device) ||
        sqlite3_bind_double(start_stmt_, 4, price_per_second) != SQLITE_OK ||
        sqlite3_bind_double(start_stmt_, 5, now) != SQLITE_OK ||
        sqlite3_bind_int(start_stmt_, 6, cold_start_for_request ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_double(start_stmt_, 7, sleep_price_per_second) != SQLITE_OK) {
      return sqlite_error(what);
    }
    if (sqlite3_step(start_stmt_) != SQLITE_DONE) return sqlite_error(what);
  }
  const int64_t run = sqlite3_last_insert_rowid(db_);
  {
    StmtScope scope(begin_phase_stmt_);
    if (sqlite3_bind_int64(begin_phase_stmt_, 1, run) != SQLITE_OK ||
        !bind_text(begin_phase_stmt_, 2, instance_phase_name(InstancePhase::kStarting)) ||
        sqlite3_bind_double(begin_phase_stmt_, 3, now) != SQLITE_OK ||
        sqlite3_step(begin_phase_stmt_) != SQLITE_DONE) {
      return sqlite_error(what);
    }
  }
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Status CostLedger::heartbeat(double now) {
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context("heartbeat"));
  ZS_RETURN_IF_ERROR(check_writable("heartbeat"));
  core::MutexLock lock(mu_);
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
  ZS_RETURN_IF_ERROR(check_writable(what));
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN IMMEDIATE")) return sqlite_error(what);
  {
    // First, while the run is still open and can be found by its id.
    StmtScope scope(end_phases_of_stmt_);
    if (!bind_text(end_phases_of_stmt_, 1, instance_id) ||
        sqlite3_bind_double(end_phases_of_stmt_, 2, now) != SQLITE_OK ||
        sqlite3_step(end_phases_of_stmt_) != SQLITE_DONE) {
      return sqlite_error(what);
    }
  }
  {
    StmtScope scope(stop_stmt_);
    if (!bind_text(stop_stmt_, 1, instance_id) ||
        sqlite3_bind_double(stop_stmt_, 2, now) != SQLITE_OK ||
        sqlite3_step(stop_stmt_) != SQLITE_DONE) {
      return sqlite_error(what);
    }
  }
  if (sqlite3_changes64(db_) == 0) {
    return core::Status::error(what + ": no open instance has this id");
  }
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Status CostLedger::exec_bound(const char* sql, const std::function<bool(sqlite3_stmt*)>& bind,
                                    const std::function<void(sqlite3_stmt*)>& row, const std::string& what) {
  sqlite3_stmt* stmt = nullptr;
  ZS_RETURN_IF_ERROR(prepare(sql, &stmt));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(stmt, sqlite3_finalize);
  if (!bind(stmt)) return sqlite_error(what);
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return core::Status::ok();
    if (rc != SQLITE_ROW) return sqlite_error(what);
    if (row) row(stmt);
  }
}

core::Status CostLedger::set_run_span(const std::string& instance_id, double started_at, double stopped_at) {
  const std::string what = "setting the run times of instance " + instance_id;
  if (!std::isfinite(started_at) || !std::isfinite(stopped_at))
    return core::Status::invalid_argument(what + ": the times must be finite");
  if (stopped_at < started_at) return core::Status::invalid_argument(what + ": it ends before it starts");
  ZS_RETURN_IF_ERROR(check_writable(what));
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN IMMEDIATE")) return sqlite_error(what);
  int64_t run = -1;
  ZS_RETURN_IF_ERROR(exec_bound(
      "SELECT id FROM instances WHERE instance_id = ?1 ORDER BY id DESC LIMIT 1",
      [&](sqlite3_stmt* st) { return bind_text(st, 1, instance_id); },
      [&](sqlite3_stmt* st) { run = sqlite3_column_int64(st, 0); }, what));
  if (run < 0) return core::Status::not_found(what + ": it has no run in the ledger");
  // ?1 the run, ?2 its start, ?3 its stop (as far as the statement uses them).
  auto bind_run = [&](sqlite3_stmt* st) {
    const int n = sqlite3_bind_parameter_count(st);
    return sqlite3_bind_int64(st, 1, run) == SQLITE_OK && (n < 2 || sqlite3_bind_double(st, 2, started_at) == SQLITE_OK) &&
           (n < 3 || sqlite3_bind_double(st, 3, stopped_at) == SQLITE_OK);
  };
  // Phases: clipped to the span, those left empty removed, the first and last stretched to
  // its ends; a run left with none is one starting phase (it never became ready in it).
  ZS_RETURN_IF_ERROR(exec_bound(
      "UPDATE instance_phases SET started_at = max(started_at, ?2),"
      " ended_at = min(coalesce(ended_at, ?3), ?3) WHERE run = ?1",
      bind_run, nullptr, what));
  ZS_RETURN_IF_ERROR(exec_bound("DELETE FROM instance_phases WHERE run = ?1 AND ended_at <= started_at"
                             " AND (SELECT count(*) FROM instance_phases WHERE run = ?1) > 1",
                             bind_run, nullptr, what));
  ZS_RETURN_IF_ERROR(exec_bound(
      "UPDATE instance_phases SET started_at = ?2 WHERE id ="
      " (SELECT id FROM instance_phases WHERE run = ?1 ORDER BY started_at, id LIMIT 1)",
      bind_run, nullptr, what));
  ZS_RETURN_IF_ERROR(exec_bound(
      "UPDATE instance_phases SET ended_at = ?3 WHERE id ="
      " (SELECT id FROM instance_phases WHERE run = ?1 ORDER BY started_at DESC, id DESC LIMIT 1)",
      bind_run, nullptr, what));
  ZS_RETURN_IF_ERROR(exec_bound(
      "INSERT INTO instance_phases (run, phase, started_at, ended_at) SELECT ?1, 'starting', ?2, ?3"
      " WHERE NOT EXISTS (SELECT 1 FROM instance_phases WHERE run = ?1)",
      bind_run, nullptr, what));
  ZS_RETURN_IF_ERROR(exec_bound(
      "UPDATE instances SET started_at = ?2, stopped_at = ?3, last_seen = ?3 WHERE id = ?1", bind_run,
      nullptr, what));
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Status CostLedger::instance_state(const std::string& instance_id, InstancePhase state,
                                        double now) {
  const std::string what = "moving instance " + instance_id + " to " + instance_phase_name(state);
  if (!parse_state(instance_phase_name(state))) {
    return core::Status::error("moving instance " + instance_id + ": unknown state " +
                               std::to_string(static_cast<int>(state)));
  }
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));
  ZS_RETURN_IF_ERROR(check_writable(what));
  core::MutexLock lock(mu_);
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN IMMEDIATE")) return sqlite_error(what);
  int64_t run = 0;
  double begins_at = now;
  std::optional<int64_t> open_phase;
  {
    sqlite3_stmt* s = open_phase_stmt_;
    StmtScope scope(s);
    if (!bind_text(s, 1, instance_id)) return sqlite_error(what);
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return core::Status::error(what + ": no open instance has this id");
    if (rc != SQLITE_ROW) return sqlite_error(what);
    run = sqlite3_column_int64(s, 0);
    begins_at = std::max(now, sqlite3_column_double(s, 1));
    if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
      open_phase = sqlite3_column_int64(s, 2);
      const std::string current_name = column_text(s, 3);
      const std::optional<InstancePhase> current = parse_state(current_name);
      if (current == state) return core::Status::ok();  // nothing changes; the txn rolls back
      if (state == InstancePhase::kStarting) {
        return core::Status::error(what + ": it is " + current_name +
                                   " and cannot start again (a new run needs instance_started)");
      }
      if (current == InstancePhase::kDraining) {
        return core::Status::error(what + ": it is draining and can only stop");
      }
      begins_at = std::max(begins_at, sqlite3_column_double(s, 4));
    }
  }
  if (open_phase) {
    StmtScope scope(end_phase_stmt_);
    if (sqlite3_bind_int64(end_phase_stmt_, 1, *open_phase) != SQLITE_OK ||
        sqlite3_bind_double(end_phase_stmt_, 2, begins_at) != SQLITE_OK ||
        sqlite3_step(end_phase_stmt_) != SQLITE_DONE) {
      return sqlite_error(what);
    }
  }
  {
    StmtScope scope(begin_phase_stmt_);
    if (sqlite3_bind_int64(begin_phase_stmt_, 1, run) != SQLITE_OK ||
        !bind_text(begin_phase_stmt_, 2, instance_phase_name(state)) ||
        sqlite3_bind_double(begin_phase_stmt_, 3, begins_at) != SQLITE_OK ||
        sqlite3_step(begin_phase_stmt_) != SQLITE_DONE) {
      return sqlite_error(what);
    }
  }
  if (!txn.commit()) return sqlite_error(what);
  return core::Status::ok();
}

core::Status CostLedger::record_request(const std::string& deployment, const std::string& api_key,
                                        std::string_view cls, int64_t prompt_tokens,
                                        int64_t completion_tokens, int http_status,
                                        double queue_seconds, double now) {
  const std::string what = "recording a request for " + deployment;
  if (deployment.empty()) return core::Status::error("recording a request: the deployment name is empty");
  // Reports group by class; a misspelt one would be a class of its own.
  if (!parse_request_class(cls)) {
    return core::Status::error(what + ": unknown request class '" + std::string(cls) +
                               "' (interactive or batch)");
  }
  if (prompt_tokens < 0 || completion_tokens < 0) {
    return core::Status::error(what + ": token counts must be >= 0");
  }
  if (!std::isfinite(queue_seconds) || queue_seconds < 0) {
    return core::Status::error(what + ": queue_seconds must be a finite number >= 0");
  }
  ZS_RETURN_IF_ERROR(check_time(now, "now").with_context(what));
  ZS_RETURN_IF_ERROR(check_writable(what));
  core::MutexLock lock(mu_);
  StmtScope scope(request_stmt_);
  if (!bind_text(request_stmt_, 1, deployment) ||
      sqlite3_bind_double(request_stmt_, 2, now) != SQLITE_OK ||
      sqlite3_bind_int64(request_stmt_, 3, prompt_tokens) != SQLITE_OK ||
      sqlite3_bind_int64(request_stmt_, 4, completion_tokens) != SQLITE_OK ||
      sqlite3_bind_int(request_stmt_, 5, http_status) != SQLITE_OK ||
      sqlite3_bind_double(request_stmt_, 6, queue_seconds) != SQLITE_OK ||
      !bind_text(request_stmt_, 7, api_key) ||
      sqlite3_bind_text(request_stmt_, 8, cls.data(), static_cast<int>(cls.size()),
                        SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_step(request_stmt_) != SQLITE_DONE) {
    return sqlite_error(what);
  }
  return core::Status::ok();
}

core::Result<std::optional<double>> CostLedger::first_record_time_locked() const {
  sqlite3_stmt* s = first_record_stmt_;
  StmtScope scope(s);
  const int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return sqlite_error("reading the first record");
  if (sqlite3_column_type(s, 0) == SQLITE_NULL) return std::optional<double>();
  return std::optional<double>(sqlite3_column_double(s, 0));
}

core::Result<std::optional<double>> CostLedger::first_record_time() const {
  core::MutexLock lock(mu_);
  return first_record_time_locked();
}

core::Result<CostReport> CostLedger::report(double from, double to, double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading costs"));
  core::MutexLock lock(mu_);
  // Every read in one transaction, so instance time, phases and requests describe one moment.
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN")) return sqlite_error("reading costs");
  auto report = report_locked(from, to, now);
  if (!report) return report.status();
  if (!txn.commit()) return sqlite_error("reading costs");
  return report;
}

core::Result<std::vector<CostLedger::PhaseTime>> CostLedger::phase_times_locked(double from, double to,
                                                                               double now) const {
  std::vector<PhaseTime> out;
  if (!costs_phases_stmt_) return out;  // a version-1 file: no phases
  sqlite3_stmt* s = costs_phases_stmt_;
  StmtScope scope(s);
  if (!bind_window(s, from, to, now, stale_after_)) return sqlite_error("reading instance phases");
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const std::optional<InstancePhase> phase = parse_state(column_text(s, 2));
    if (!phase) continue;  // the query names the phases it reads
    out.push_back({column_text(s, 0), column_text(s, 1), *phase, sqlite3_column_double(s, 3),
                   sqlite3_column_double(s, 4)});
  }
  if (rc != SQLITE_DONE) return sqlite_error("reading instance phases");
  return out;
}

core::Result<CostReport> CostLedger::report_locked(double from, double to, double now) const {
  CostReport report;
  report.from = from;
  report.to = to;
  auto first = first_record_time_locked();
  if (!first) return first.status();
  report.covered_from = first->has_value() ? std::max(from, **first) : from;
  report.covered_to = first->has_value() ? std::max(report.covered_from, std::min(to, now))
                                         : report.covered_from;

  std::map<std::string, DeploymentCost> by_deployment;
  // Each deployment's instance time at its running price, sleep included: the always-on
  // baseline's price (an always-on instance never sleeps).
  std::map<std::string, double> running_cost;
  {
    sqlite3_stmt* s = costs_instances_stmt_;
    StmtScope scope(s);
    if (!bind_window(s, from, to, now, stale_after_)) return sqlite_error("reading instance costs");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const double seconds = sqlite3_column_double(s, 1);
      const int64_t cold_starts = sqlite3_column_int64(s, 3);
      // Open rows that only start after `now` overlap nothing yet.
      if (seconds <= 0 && cold_starts == 0) continue;
      const std::string name = column_text(s, 0);
      DeploymentCost& d = by_deployment[name];
      d.instance_seconds = seconds;
      d.cost = sqlite3_column_double(s, 2);
      d.cold_starts = cold_starts;
      running_cost[name] = d.cost;
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
  {
    auto phases = phase_times_locked(from, to, now);
    if (!phases) return phases.status();
    for (const PhaseTime& p : *phases) {
      auto it = by_deployment.find(p.deployment);
      if (it == by_deployment.end()) continue;  // no instance time in the window
      DeploymentCost& d = it->second;
      switch (p.phase) {
        case InstancePhase::kStarting: d.starting_seconds += p.seconds; break;
        case InstancePhase::kReady: d.busy_seconds += p.seconds; break;
        case InstancePhase::kIdle: d.idle_seconds += p.seconds; break;
        case InstancePhase::kSleeping: d.sleeping_seconds += p.seconds; break;
        case InstancePhase::kDraining: break;
      }
      d.cost -= p.sleep_saving;
    }
  }
  {
    std::map<std::string, std::vector<std::pair<double, int>>> edges;
    sqlite3_stmt* s = intervals_stmt_;
    StmtScope scope(s);
    if (!bind_window(s, from, to, now, stale_after_)) return sqlite_error("reading instance runs");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      auto& e = edges[column_text(s, 0)];
      e.emplace_back(sqlite3_column_double(s, 1), +1);
      e.emplace_back(sqlite3_column_double(s, 2), -1);
    }
    if (rc != SQLITE_DONE) return sqlite_error("reading instance runs");
    for (auto& [name, e] : edges) {
      auto it = by_deployment.find(name);
      if (it != by_deployment.end()) it->second.peak_instances = peak_overlap(e);
    }
  }

  const double covered = report.covered_to - report.covered_from;
  report.deployments.reserve(by_deployment.size());
  DeploymentCost& total = report.total;
  for (auto& [name, d] : by_deployment) {
    d.deployment = name;
    // The mean running price per instance-second: exact when the deployment ran on one device.
    const double price = d.instance_seconds > 0 ? running_cost[name] / d.instance_seconds : 0.0;
    d.always_on_cost = static_cast<double>(d.peak_instances) * covered * price;
    total.instance_seconds += d.instance_seconds;
    total.cost += d.cost;
    total.requests += d.requests;
    total.prompt_tokens += d.prompt_tokens;
    total.completion_tokens += d.completion_tokens;
    total.cold_starts += d.cold_starts;
    total.starting_seconds += d.starting_seconds;
    total.idle_seconds += d.idle_seconds;
    total.busy_seconds += d.busy_seconds;
    total.sleeping_seconds += d.sleeping_seconds;
    total.peak_instances += d.peak_instances;
    total.always_on_cost += d.always_on_cost;
    report.deployments.push_back(std::move(d));
  }
  return report;
}

core::Result<std::vector<KeyUsage>> CostLedger::usage_by_key_locked(const CostReport& report) const {
  std::vector<KeyUsage> out;
  {
    sqlite3_stmt* s = key_requests_stmt_;
    StmtScope scope(s);
    if (sqlite3_bind_double(s, 1, report.from) != SQLITE_OK ||
        sqlite3_bind_double(s, 2, report.to) != SQLITE_OK) {
      return sqlite_error("reading requests per key");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      KeyUsage u;
      u.api_key = column_text(s, 0);
      u.deployment = column_text(s, 1);
      u.cls = column_text(s, 2);
      u.requests = sqlite3_column_int64(s, 3);
      u.prompt_tokens = sqlite3_column_int64(s, 4);
      u.completion_tokens = sqlite3_column_int64(s, 5);
      out.push_back(std::move(u));
    }
    if (rc != SQLITE_DONE) return sqlite_error("reading requests per key");
  }

  // The weights of each deployment's rows: tokens, or requests where it had no tokens.
  struct Totals {
    int64_t tokens = 0;
    int64_t requests = 0;
  };
  std::map<std::string, Totals> totals;
  for (const KeyUsage& u : out) {
    Totals& t = totals[u.deployment];
    t.tokens += u.prompt_tokens + u.completion_tokens;
    t.requests += u.requests;
  }
  std::map<std::string, double> cost;
  for (const DeploymentCost& d : report.deployments) cost[d.deployment] = d.cost;
  for (KeyUsage& u : out) {
    const Totals& t = totals[u.deployment];
    const auto it = cost.find(u.deployment);
    // Every deployment with a request in the window is in the report, read in the same
    // transaction; a missing one has nothing to share.
    const double c = it == cost.end() ? 0.0 : it->second;
    if (t.tokens > 0) {
      u.cost_share = c * static_cast<double>(u.prompt_tokens + u.completion_tokens) /
                     static_cast<double>(t.tokens);
    } else if (t.requests > 0) {
      u.cost_share = c * static_cast<double>(u.requests) / static_cast<double>(t.requests);
    }
  }
  std::sort(out.begin(), out.end(), [](const KeyUsage& a, const KeyUsage& b) {
    return std::tie(a.api_key, a.deployment, a.cls) < std::tie(b.api_key, b.deployment, b.cls);
  });
  return out;
}

core::Result<std::vector<KeyUsage>> CostLedger::usage_by_key(double from, double to,
                                                             double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading usage per key"));
  core::MutexLock lock(mu_);
  // The deployment costs and the requests they are shared by must describe one moment.
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN")) return sqlite_error("reading usage per key");
  auto report = report_locked(from, to, now);
  if (!report) return report.status();
  auto usage = usage_by_key_locked(*report);
  if (!usage) return usage.status();
  if (!txn.commit()) return sqlite_error("reading usage per key");
  return usage;
}

core::Result<std::vector<DeploymentCost>> CostLedger::costs(double from, double to,
                                                            double now) const {
  auto r = report(from, to, now);
  if (!r) return r.status();
  return std::move(r.value().deployments);
}

core::Result<std::vector<InstanceCost>> CostLedger::instance_costs(double from, double to,
                                                                   double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading instance costs"));
  core::MutexLock lock(mu_);
  // The runs and their sleeping phases, read at one moment.
  SqliteTransaction txn(db_);
  if (!txn.begin("BEGIN")) return sqlite_error("reading instance costs");
  std::vector<InstanceCost> out;
  {
    sqlite3_stmt* s = device_costs_stmt_;
    StmtScope scope(s);
    if (!bind_window(s, from, to, now, stale_after_)) return sqlite_error("reading instance costs");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const double seconds = sqlite3_column_double(s, 2);
      if (seconds <= 0) continue;
      out.push_back({column_text(s, 0), column_text(s, 1), seconds, sqlite3_column_double(s, 3)});
    }
    if (rc != SQLITE_DONE) return sqlite_error("reading instance costs");
  }
  auto phases = phase_times_locked(from, to, now);
  if (!phases) return phases.status();
  if (!txn.commit()) return sqlite_error("reading instance costs");
  // A handful of rows (deployments times devices): a scan finds each.
  for (const PhaseTime& p : *phases) {
    if (p.phase != InstancePhase::kSleeping) continue;
    const auto it = std::find_if(out.begin(), out.end(), [&](const InstanceCost& c) {
      return c.deployment == p.deployment && c.device == p.device;
    });
    if (it == out.end()) continue;  // no instance time in the window
    it->sleeping_seconds += p.seconds;
    it->cost -= p.sleep_saving;
  }
  return out;
}

core::Result<double> CostLedger::total_cost(double from, double to, double now) const {
  auto r = report(from, to, now);
  if (!r) return r.status();
  return r->total.cost;
}

core::Result<std::string> CostLedger::costs_json(double from, double to, double now) const {
  ZS_RETURN_IF_ERROR(check_window(from, to, now).with_context("reading costs"));
  std::optional<CostReport> r;
  std::vector<KeyUsage> keys;
  {
    core::MutexLock lock(mu_);
    SqliteTransaction txn(db_);
    if (!txn.begin("BEGIN")) return sqlite_error("reading costs");
    auto report = report_locked(from, to, now);
    if (!report) return report.status();
    auto usage = usage_by_key_locked(*report);
    if (!usage) return usage.status();
    if (!txn.commit()) return sqlite_error("reading costs");
    r = std::move(report).value();
    keys = std::move(usage).value();
  }
  std::string out = "{\"from\":";
  append_json_number(out, from);
  out += ",\"to\":";
  append_json_number(out, to);
  out += ",\"deployments\":[";
  bool first = true;
  for (const DeploymentCost& d : r->deployments) {
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
    out += ",\"cost_per_1k_requests\":";
    append_json_number(out, d.cost_per_1k_requests());
    out += ",\"starting_seconds\":";
    append_json_number(out, d.starting_seconds);
    out += ",\"idle_seconds\":";
    append_json_number(out, d.idle_seconds);
    out += ",\"busy_seconds\":";
    append_json_number(out, d.busy_seconds);
    out += ",\"sleeping_seconds\":";
    append_json_number(out, d.sleeping_seconds);
    out += ",\"idle_share\":";
    append_json_number(out, d.idle_share());
    out += ",\"peak_instances\":";
    append_json_number(out, d.peak_instances);
    out += ",\"always_on_cost\":";
    append_json_number(out, d.always_on_cost);
    out += '}';
  }
  out += "],\"keys\":[";
  first = true;
  for (const KeyUsage& u : keys) {
    if (!first) out += ',';
    first = false;
    out += "{\"api_key\":";
    append_json_string(out, u.api_key);
    out += ",\"deployment\":";
    append_json_string(out, u.deployment);
    out += ",\"class\":";
    append_json_string(out, u.cls);
    out += ",\"requests\":";
    append_json_number(out, u.requests);
    out += ",\"prompt_tokens\":";
    append_json_number(out, u.prompt_tokens);
    out += ",\"completion_tokens\":";
    append_json_number(out, u.completion_tokens);
    out += ",\"cost_share\":";
    append_json_number(out, u.cost_share);
    out += '}';
  }
  out += "],\"total_cost\":";
  append_json_number(out, r->total.cost);
  out += '}';
  return out;
}

}  // namespace zs::platform
