#pragma once
// The cost ledger: every second of model-instance time, with the price of the device it ran
// on, plus every request and its tokens, kept in SQLite (WAL mode) so that billing survives a
// crash of the daemon (DESIGN.md, decision 4).
//
// Metering is heartbeat-bounded: an instance row carries `last_seen`, which heartbeat() moves
// forward. When the daemon dies, open() closes every instance it left open at its last_seen,
// so a crash loses at most one heartbeat interval of metering and never bills time that the
// instance may not have run.
//
// One process owns a ledger file for writing: open() treats every open instance in the file
// as left behind by a crash, so a second process opening the file while the daemon runs would
// close the daemon's live instances.
//
// Times are seconds since the Unix epoch, passed in by the caller (the daemon passes the wall
// clock, tests a virtual one). Thread-safe: one connection guarded by a mutex.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace zs::platform {

// Instance time of one deployment on one kind of device.
struct InstanceCost {
  std::string deployment;
  std::string device;
  double instance_seconds = 0;
  double cost = 0;  // seconds * price_per_second of the device when the instance ran
};

struct DeploymentCost {
  std::string deployment;
  double instance_seconds = 0;
  double cost = 0;
  int64_t requests = 0;  // every recorded request, whatever its HTTP status: failures cost too
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cold_starts = 0;  // instances started in the window because a request was waiting
  // Cost divided by requests; 0 when there were no requests.
  double cost_per_request() const;
};

class CostLedger {
 public:
  // The schema version this build writes; open() migrates older files up to it and refuses
  // files written by a newer build.
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database at `path` (creating its directory), in WAL mode with
  // synchronous=NORMAL and a busy timeout, creates or migrates the schema, and closes the
  // instances a crash left open at their last heartbeat.
  static core::Result<std::unique_ptr<CostLedger>> open(const std::string& path);
  ~CostLedger();
  CostLedger(const CostLedger&) = delete;
  CostLedger& operator=(const CostLedger&) = delete;

  // Starts metering an instance. Fails if an instance with this id is already open.
  core::Status instance_started(const std::string& instance_id, const std::string& deployment,
                                const std::string& device, double price_per_second, double now,
                                bool cold_start_for_request);
  // Moves last_seen of every open instance to `now` (never backwards).
  core::Status heartbeat(double now);
  // Stops metering; fails if no instance with this id is open.
  core::Status instance_stopped(const std::string& instance_id, double now);
  core::Status record_request(const std::string& deployment, int64_t prompt_tokens,
                              int64_t completion_tokens, int http_status, double queue_seconds,
                              double now);

  // Per deployment (sorted by name) over [from, to): instance time clipped to the window, an
  // instance still open counting up to min(to, now); requests, tokens and cold starts whose
  // time falls in the window. Deployments with nothing in the window are left out.
  core::Result<std::vector<DeploymentCost>> costs(double from, double to, double now) const;
  // The same instance time, per deployment and device (sorted by both).
  core::Result<std::vector<InstanceCost>> instance_costs(double from, double to, double now) const;
  core::Result<double> total_cost(double from, double to, double now) const;
  // costs() as JSON for the admin API:
  // {"from":..,"to":..,"deployments":[{"deployment":..,"instance_seconds":..,"cost":..,
  //  "requests":..,"prompt_tokens":..,"completion_tokens":..,"cold_starts":..,
  //  "cost_per_request":..}],"total_cost":..}
  core::Result<std::string> costs_json(double from, double to, double now) const;

  // How many instances the last open() found left open by a crash and closed.
  int64_t recovered_on_open() const { return recovered_on_open_; }
  const std::string& path() const { return path_; }

 private:
  CostLedger(std::string path, sqlite3* db);
  core::Status init();                    // pragmas, schema, recovery, statements
  core::Status migrate();                 // schema_version table up to kSchemaVersion
  core::Status exec(const char* sql, const char* what);
  core::Status prepare(const char* sql, sqlite3_stmt** stmt);
  core::Status sqlite_error(const std::string& what) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  int64_t recovered_on_open_ = 0;
  // Prepared once in init(), reused under mu_, finalized in the destructor.
  sqlite3_stmt* start_stmt_ = nullptr;
  sqlite3_stmt* find_open_stmt_ = nullptr;
  sqlite3_stmt* heartbeat_stmt_ = nullptr;
  sqlite3_stmt* stop_stmt_ = nullptr;
  sqlite3_stmt* request_stmt_ = nullptr;
  sqlite3_stmt* costs_instances_stmt_ = nullptr;
  sqlite3_stmt* costs_requests_stmt_ = nullptr;
  sqlite3_stmt* device_costs_stmt_ = nullptr;
  mutable std::mutex mu_;
};

}  // namespace zs::platform
