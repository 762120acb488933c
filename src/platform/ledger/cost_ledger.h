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
// Each run of an instance is also split into phases (starting, ready, idle, sleeping,
// draining), so reports can say how long starts took and how much paid time sat idle.
// Every second of a run is billed at the run's price_per_second, except sleeping seconds,
// which are billed at its sleep_price_per_second (both fixed when the run starts): a run's
// cost is seconds * price - sleeping_seconds * (price - sleep_price), each clipped to the
// window asked for.
//
// One process owns a ledger file for writing: open() treats every open instance in the file
// as left behind by a crash, so a second process opening the file while the daemon runs would
// close the daemon's live instances. Readers (`zeroserve cost`) use open_read_only(), which
// neither recovers nor writes.
//
// Times are seconds since the Unix epoch, passed in by the caller (the daemon passes the wall
// clock, tests a virtual one). Thread-safe: one connection guarded by a mutex.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "platform/instance/instance_phase.h"

struct sqlite3;
struct sqlite3_stmt;

namespace zs::platform {

// Instance time of one deployment on one kind of device.
struct InstanceCost {
  std::string deployment;
  std::string device;
  double instance_seconds = 0;
  // seconds * price_per_second of the device when the instance ran, its sleeping seconds at
  // the sleep price instead
  double cost = 0;
  double sleeping_seconds = 0;
};


struct DeploymentCost {
  std::string deployment;
  double instance_seconds = 0;
  double cost = 0;
  int64_t requests = 0;  // every recorded request, whatever its HTTP status: failures cost too
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cold_starts = 0;  // instances started in the window because a request was waiting
  // Instance time spent starting (process start to ready), busy (ready with a request in
  // flight), idle (ready, nothing in flight) and sleeping (idle with its resources given back,
  // billed at the sleep price). Draining time is in none of them. Runs recorded before schema
  // version 2 have no phases and count as none; sleeping came with version 4.
  double starting_seconds = 0;
  double idle_seconds = 0;
  double busy_seconds = 0;
  double sleeping_seconds = 0;
  // The most instances of the deployment running at once in the window.
  int64_t peak_instances = 0;
  // What peak_instances running through the whole covered window would have cost, at the
  // deployment's mean running price per instance-second (its device's price_per_second when
  // it has one device; an always-on instance never sleeps, so never at the sleep price).
  double always_on_cost = 0;

  // Cost divided by requests; 0 when there were no requests.
  double cost_per_request() const;
  double cost_per_1k_requests() const { return 1000 * cost_per_request(); }
  // idle_seconds / instance_seconds; 0 without instance time.
  double idle_share() const;
  // always_on_cost - cost: what scaling with demand saved (negative when it cost more).
  double saving() const { return always_on_cost - cost; }
};

// What one API key sent to one deployment in one request class over a window, and its share
// of that deployment's instance cost.
//
// The share is an attribution, not a meter: instances are shared by every caller and billed by
// the second whether busy or idle, so no request has a cost of its own. Each deployment's
// instance cost in the window (the figure costs() reports, idle time included) is split among
// the rows of that deployment in proportion to their prompt + completion tokens in the
// window, or to their request counts when the deployment had requests but no tokens there.
// The shares of one deployment therefore sum to its cost. A deployment with instance time but
// no request in the window has no one to charge: its cost is in no row.
struct KeyUsage {
  std::string api_key;     // the key's configured name; "" when the API is open, for the
                           // server's own batch-job items, and for requests recorded before
                           // schema version 3
  std::string deployment;
  std::string cls;         // "interactive" or "batch" (request_class_name)
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_share = 0;
};

// A report over the window [from, to) asked for.
struct CostReport {
  double from = 0;
  double to = 0;
  // The part of the window the ledger can speak for: from its first record (never earlier)
  // to `now` (never later). Always-on costs are priced over this span; it is empty when the
  // ledger has no records.
  double covered_from = 0;
  double covered_to = 0;
  std::vector<DeploymentCost> deployments;  // sorted by name; those with nothing in the window left out
  // Sums over the deployments; total.deployment is empty, total.peak_instances is the sum of
  // their peaks (the fleet an always-on setup would keep), and total.always_on_cost its cost.
  DeploymentCost total;
};

class CostLedger {
 public:
  // The schema version this build writes; open() migrates older files up to it and refuses
  // files written by a newer build.
  static constexpr int kSchemaVersion = 4;
  // A reader counts an open instance whose last heartbeat is older than this as stopped at
  // that heartbeat, as the writer's recovery will: its daemon is gone (it beats every 5 s).
  static constexpr double kStaleHeartbeatSeconds = 30;

  // Opens or creates the database at `path` (creating its directory), in WAL mode with
  // synchronous=NORMAL and a busy timeout, creates or migrates the schema, and closes the
  // instances a crash left open at their last heartbeat.
  static core::Result<std::unique_ptr<CostLedger>> open(const std::string& path);
  // Opens an existing ledger for reports only (SQLITE_OPEN_READONLY): no schema change, no
  // crash recovery, every write refused, so it is safe while a daemon owns the file. Reads
  // files of schema version 1 (without phases), 2 (without keys: every request reports under
  // key "" and class "interactive"), 3 (without sleeping: no sleep price, no sleeping phase)
  // and up to kSchemaVersion.
  static core::Result<std::unique_ptr<CostLedger>> open_read_only(const std::string& path);
  ~CostLedger();
  CostLedger(const CostLedger&) = delete;
  CostLedger& operator=(const CostLedger&) = delete;

  // Starts metering an instance at its device's prices: price_per_second while it runs,
  // sleep_price_per_second while it sleeps. Fails if an instance with this id is already
  // open; either price not finite and >= 0 is kInvalidArgument.
  core::Status instance_started(const std::string& instance_id, const std::string& deployment,
                                const std::string& device, double price_per_second,
                                double sleep_price_per_second, double now,
                                bool cold_start_for_request);
  // Moves last_seen of every open instance to `now` (never backwards).
  core::Status heartbeat(double now);
  // Stops metering; fails if no instance with this id is open. Ends its current phase.
  core::Status instance_stopped(const std::string& instance_id, double now);
  // Replaces the span of the latest run of `instance_id` with its runtime's own record of when
  // it ran (a cluster scheduler's start and end of the job): the run starts at `started_at`
  // and stops at `stopped_at` (an open run is closed there). Its phases are clipped to that
  // span: time the fleet saw before the job started (pending in the scheduler) or after it
  // ended is not billed, and the first and last phases reach the span's ends. kNotFound when
  // the instance never ran; kInvalidArgument for times not finite or an end before the start.
  core::Status set_run_span(const std::string& instance_id, double started_at, double stopped_at);
  // Moves an open instance into `state` at `now`, ending its current phase there.
  // instance_started() opens the starting phase; ready, idle and sleeping move freely among
  // themselves, and any of them to draining. Repeating the current state is a no-op;
  // going back to starting, or out of draining, is refused. A time before the current phase
  // began is taken as that time, so phases never overlap or run backwards.
  core::Status instance_state(const std::string& instance_id, InstancePhase state, double now);
  // One request: `api_key` is the caller's key name ("" for none), `cls` its request class
  // by name ("interactive" or "batch"; anything else is refused).
  core::Status record_request(const std::string& deployment, const std::string& api_key,
                              std::string_view cls, int64_t prompt_tokens,
                              int64_t completion_tokens, int http_status, double queue_seconds,
                              double now);

  // Per deployment (sorted by name) over [from, to): instance time clipped to the window, an
  // instance still open counting up to min(to, now); requests, tokens and cold starts whose
  // time falls in the window. Deployments with nothing in the window are left out.
  core::Result<std::vector<DeploymentCost>> costs(double from, double to, double now) const;
  // costs() with the covered window and the totals.
  core::Result<CostReport> report(double from, double to, double now) const;
  // Requests and tokens per key, deployment and class over [from, to) (sorted by the three),
  // with each row's share of its deployment's instance cost: see KeyUsage for the rule.
  core::Result<std::vector<KeyUsage>> usage_by_key(double from, double to, double now) const;
  // The time of the earliest instance start or request; nullopt for an empty ledger.
  core::Result<std::optional<double>> first_record_time() const;
  // The same instance time, per deployment and device (sorted by both).
  core::Result<std::vector<InstanceCost>> instance_costs(double from, double to, double now) const;
  core::Result<double> total_cost(double from, double to, double now) const;
  // costs() as JSON for the admin API:
  // {"from":..,"to":..,"deployments":[{"deployment":..,"instance_seconds":..,"cost":..,
  //  "requests":..,"prompt_tokens":..,"completion_tokens":..,"cold_starts":..,
  //  "cost_per_request":..,"cost_per_1k_requests":..,"starting_seconds":..,"idle_seconds":..,
  //  "busy_seconds":..,"sleeping_seconds":..,"idle_share":..,"peak_instances":..,"always_on_cost":..}],
  //  "keys":[{"api_key":..,"deployment":..,"class":..,"requests":..,"prompt_tokens":..,
  //  "completion_tokens":..,"cost_share":..}],"total_cost":..}
  // with deployments and keys read at one moment.
  core::Result<std::string> costs_json(double from, double to, double now) const;

  // How many instances the last open() found left open by a crash and closed.
  int64_t recovered_on_open() const { return recovered_on_open_; }
  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  // The schema version of the file (below kSchemaVersion only for a read-only open).
  int64_t schema_version() const { return schema_version_; }

 private:
  CostLedger(std::string path, sqlite3* db, bool read_only);
  // open() runs these with mu_ held, before the ledger is shared.
  core::Status init() REQUIRES(mu_);            // pragmas, schema, recovery, statements
  core::Status init_read_only() REQUIRES(mu_);  // schema check, statements
  core::Status prepare_statements() REQUIRES(mu_);  // the writes (unless read-only) and the reads
  core::Status migrate() REQUIRES(mu_);             // schema_version table up to kSchemaVersion
  core::Result<int64_t> read_schema_version() REQUIRES(mu_);  // 0 for a file without a ledger schema
  core::Status check_writable(const std::string& what) const;
  core::Result<std::optional<double>> first_record_time_locked() const REQUIRES(mu_);
  // Instance time of one phase of one deployment on one device inside a window, and what it
  // cost less than at the running price (its sleep saving; 0 but for sleeping).
  struct PhaseTime {
    std::string deployment;
    std::string device;
    InstancePhase phase = InstancePhase::kStarting;
    double seconds = 0;
    double sleep_saving = 0;
  };
  // Starting, ready, idle and sleeping time over [from, to) (none for a version-1 file).
  core::Result<std::vector<PhaseTime>> phase_times_locked(double from, double to, double now) const
      REQUIRES(mu_);
  // report() and usage_by_key() under mu_ and inside a read transaction the caller holds.
  core::Result<CostReport> report_locked(double from, double to, double now) const REQUIRES(mu_);
  core::Result<std::vector<KeyUsage>> usage_by_key_locked(const CostReport& report) const REQUIRES(mu_);
  core::Status exec(const char* sql, const char* what) REQUIRES(mu_);
  // Prepares `sql` once (for statements too rare to keep prepared), binds it, steps it to the
  // end calling `row` for each row, and finalizes it.
  core::Status exec_bound(const char* sql, const std::function<bool(sqlite3_stmt*)>& bind,
                          const std::function<void(sqlite3_stmt*)>& row, const std::string& what)
      REQUIRES(mu_);
  core::Status prepare(const char* sql, sqlite3_stmt** stmt) REQUIRES(mu_);
  core::Status sqlite_error(const std::string& what) const REQUIRES(mu_);

  // One connection, used by one thread at a time: mu_ serializes every statement on it (the
  // connection is opened SQLITE_OPEN_NOMUTEX). Queries and writes run with mu_ held, so a
  // slow disk holds up every caller of the ledger.
  mutable core::Mutex mu_;
  // Set at construction, constant after.
  const std::string path_;
  const bool read_only_ = false;
  sqlite3* db_ GUARDED_BY(mu_) = nullptr;
  // Set by open() before the ledger is shared, read-only after.
  int64_t schema_version_ = 0;
  int64_t recovered_on_open_ = 0;
  // Treats open rows whose heartbeat is older than this as stopped there: infinite for the
  // writer (its open rows are its own live instances), kStaleHeartbeatSeconds for a reader.
  double stale_after_ = 0;
  // Prepared once in init(), reused under mu_, finalized in the destructor.
  sqlite3_stmt* start_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* find_open_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* heartbeat_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* stop_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* request_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* costs_instances_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* costs_requests_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* device_costs_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* open_phase_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* end_phase_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* begin_phase_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* end_phases_of_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* costs_phases_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* intervals_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* first_record_stmt_ GUARDED_BY(mu_) = nullptr;
  sqlite3_stmt* key_requests_stmt_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace zs::platform
