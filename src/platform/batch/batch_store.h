#pragma once
// Persistence for OpenAI-compatible batch jobs (/v1/files, /v1/batches): uploaded files,
// batches and the outcome of every item, in SQLite (WAL mode), so that a batch survives a
// restart of the server and resumes with the items that have no outcome yet.
//
// Exactly-once results: an item's outcome is written by record_outcome() in one transaction
// with the batch's counts, and only if the item has none yet. A request that was sent but
// whose answer a crash lost is sent again after the restart; whichever answer is recorded
// first is the item's result, later ones are refused. record_attempt() counts each sending,
// committed before the request leaves, so that `attempts - total` shows how much work
// restarts repeated.
//
// Lifecycle: create_batch() stores a batch in_progress (its input was validated before, by
// parse_batch_input); request_cancel() moves it to cancelling; finalize() writes its output
// and error files and moves it to completed, cancelled or expired in one transaction.
//
// Times are unix seconds from the clock given to open() (the wall clock by default; tests
// pass a virtual one). Thread-safe: one connection guarded by a mutex.
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "platform/batch/batch_input.h"

struct sqlite3;

namespace zs::platform {

// An uploaded or generated file (its content is read with BatchStore::file_content).
struct StoredFile {
  std::string id;       // "file-<24 hex>"
  std::string purpose;  // "batch" for inputs, "batch_output" for results
  std::string filename;
  int64_t bytes = 0;
  int64_t created_at = 0;
  std::string owner;  // the API key name that uploaded it (or owns the batch it came from); "" when open
};

enum class BatchState { kValidating, kFailed, kInProgress, kFinalizing, kCompleted, kExpired, kCancelling, kCancelled };
// OpenAI's names: "validating", "failed", "in_progress", "finalizing", "completed",
// "expired", "cancelling", "cancelled".
std::string_view batch_state_name(BatchState state);
// True for the states a batch never leaves: failed, completed, expired, cancelled.
bool batch_state_is_final(BatchState state);

struct BatchRecord {
  std::string id;  // "batch_<24 hex>"
  std::string endpoint;
  std::string input_file_id;
  std::string completion_window;
  std::string owner;          // the API key's name; empty without authentication
  std::string metadata_json;  // "{}" or the object given at creation, as JSON text
  BatchState state = BatchState::kValidating;
  // Unix seconds; 0 = not yet.
  int64_t created_at = 0;
  int64_t in_progress_at = 0;
  int64_t finalizing_at = 0;
  int64_t completed_at = 0;
  int64_t cancelling_at = 0;
  int64_t cancelled_at = 0;
  int64_t expires_at = 0;
  int64_t expired_at = 0;
  std::string output_file_id;  // empty until finalized, and when there is nothing to write
  std::string error_file_id;
  int64_t total = 0;
  int64_t completed = 0;  // items with a 2xx answer
  int64_t failed = 0;     // items with another outcome
  int64_t attempts = 0;   // times items were sent to a model, summed over the items
};

// What happened to one item.
struct ItemOutcome {
  int status_code = 0;  // the HTTP status of the answer; 0 when there was none
  std::string body;     // the response body (JSON text); may be empty
  // Set when there was no HTTP answer (then required) or the request was refused.
  std::string error_code;
  std::string error_message;
  // The x-request-id of the answer; empty for one derived from the batch and line.
  std::string request_id;
};

// An item still to be sent.
struct PendingItem {
  std::string batch_id;
  int64_t line = 0;
  std::string custom_id;
  std::string url;
  std::string body;
};

class BatchStore {
 public:
  using Clock = std::function<int64_t()>;

  // Opens or creates the database at `path` (creating its directory) in WAL mode with a
  // busy timeout, and creates the tables. `now` gives the time stored in records.
  static core::Result<std::unique_ptr<BatchStore>> open(const std::string& path);
  static core::Result<std::unique_ptr<BatchStore>> open(const std::string& path, Clock now);
  ~BatchStore();
  BatchStore(const BatchStore&) = delete;
  BatchStore& operator=(const BatchStore&) = delete;

  // Files. Errors name the id: "no such file: file-...".
  core::Result<StoredFile> add_file(const std::string& purpose, const std::string& filename,
                                    const std::string& content, const std::string& owner = "");
  core::Result<StoredFile> file(const std::string& id);
  core::Result<std::string> file_content(const std::string& id);
  // Newest first; a non-empty owner lists only that owner's files.
  std::vector<StoredFile> list_files(const std::string& owner = "");
  core::Status delete_file(const std::string& id);

  // Stores a batch of `items` (from parse_batch_input over the input file's content) in
  // state in_progress; expires_at = created_at + window_seconds. `metadata_json` must be
  // empty (stored as "{}") or a JSON object. Fails when the input file does not exist.
  core::Result<BatchRecord> create_batch(const std::string& input_file_id, const std::string& endpoint,
                                         const std::string& completion_window, int64_t window_seconds,
                                         const std::string& metadata_json, const std::string& owner,
                                         const std::vector<BatchItem>& items);
  core::Result<BatchRecord> batch(const std::string& id);  // "no such batch: <id>"
  // Newest first, at most `limit`; with `after_id`, the batches created before that one
  // (OpenAI's pagination cursor; an unknown cursor gives an empty page).
  std::vector<BatchRecord> list_batches(int limit, const std::string& after_id, const std::string& owner = "");
  // Batches in_progress or cancelling, oldest first: the work to resume after a restart.
  std::vector<std::string> active_batch_ids();
  // Batches in_progress whose expires_at has passed by the store's clock, oldest first
  // (cancelling ones are left to end as cancelled).
  std::vector<std::string> expired_batch_ids();

  // Up to `limit` items of the batch without an outcome, by line, skipping the lines in
  // `exclude` (those the caller has in flight). Whatever the batch's state: the caller
  // decides whether a cancelling batch still sends.
  std::vector<PendingItem> pending_items(const std::string& batch_id, int limit, const std::set<int64_t>& exclude);
  // Items of the batch without an outcome (in flight or not).
  core::Result<int64_t> pending_count(const std::string& batch_id);
  // Counts one sending of the item; commit it before the request leaves. Refused for an
  // item that already has an outcome (sending it again would be wasted work) and for an
  // item of a final batch.
  core::Status record_attempt(const std::string& batch_id, int64_t line);
  // Takes back one recorded sending that never reached a model (the server refused it for
  // lack of capacity), so that attempts count model work only.
  core::Status withdraw_attempt(const std::string& batch_id, int64_t line);
  // In one transaction: stores the outcome and adds it to the batch's completed (2xx) or
  // failed count. Returns false and changes nothing when the item already has an outcome,
  // or when the batch is final (its result files are written): that is what makes results
  // exactly-once. An error for an unknown item or an outcome that says nothing (status 0
  // without an error_code).
  core::Result<bool> record_outcome(const std::string& batch_id, int64_t line, const ItemOutcome& outcome);
  // validating or in_progress -> cancelling; an error naming the state otherwise.
  core::Status request_cancel(const std::string& id);
  // Writes the batch's result files and moves it to `final_state` (kCompleted, kCancelled or
  // kExpired), stamping that state's time, all in one transaction:
  //  - output file "<batch id>_output.jsonl", purpose "batch_output": one line per item with
  //    a 2xx outcome, by line: {"id":"batch_req_<hex>_<line>","custom_id":..,"response":
  //    {"status_code":..,"request_id":..,"body":<body JSON>},"error":null}
  //  - error file "<batch id>_errors.jsonl", purpose "batch_output": the other items, by line:
  //    {"id":..,"custom_id":..,"response":{"status_code":..,"body":..} or null,
  //    "error":{"code":..,"message":..} or null}; items without an outcome get the error
  //    "batch_cancelled" or "batch_expired".
  // A body that is not JSON is written as a JSON string, an empty one as null. A file with
  // no lines is not created (its id stays empty). kCompleted is refused while items have no
  // outcome. Calling it again with the same state returns the batch unchanged; another
  // final state is refused.
  core::Result<BatchRecord> finalize(const std::string& id, BatchState final_state);

  const std::string& path() const { return path_; }

 private:
  BatchStore(std::string path, sqlite3* db, Clock now);
  core::Status init() REQUIRES(mu_);  // open() runs it with mu_ held, before the store is shared
  core::Status sqlite_error(const std::string& what) const REQUIRES(mu_);
  core::Result<BatchRecord> batch_locked(const std::string& id) REQUIRES(mu_);
  core::Result<StoredFile> insert_file_locked(const std::string& purpose, const std::string& filename,
                                              const std::string& content, int64_t now, const std::string& owner)
      REQUIRES(mu_);

  // One connection, used by one thread at a time: mu_ serializes every statement and
  // transaction on it. Each call does its SQLite I/O (finalize() writes whole result files)
  // with mu_ held.
  mutable core::Mutex mu_;
  const std::string path_;
  sqlite3* db_ GUARDED_BY(mu_) = nullptr;
  const Clock now_;
};

}  // namespace zs::platform
