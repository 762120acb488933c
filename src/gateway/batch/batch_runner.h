#pragma once
// Runs the items of batch jobs (POST /v1/batches) through the gateway itself, at batch
// priority: each item is an ordinary API request sent over loopback with the server's
// internal key, so it gets the same routing, queueing behind interactive work, metering and
// metrics as any other request. Progress lives in the BatchStore (SQLite): an item's result is
// recorded once, in one transaction, so a job resumes after a restart where it stopped and
// no result is lost or written twice. Items in flight at a crash are sent again; on a clean
// stop the runner lets them finish first.
#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "platform/batch/batch_store.h"
#include "platform/metrics/metrics_registry.h"

namespace zs::gateway {

struct BatchRunnerOptions {
  std::string gateway_address;  // loopback address of this server ("127.0.0.1:8080")
  std::string internal_key;     // GatewayServer::internal_key()
  int concurrency = 8;          // items in flight over all jobs
  int max_server_errors = 5;    // 500/502 answers (or lost connections) before an item fails
  std::chrono::milliseconds poll{200};
};

class BatchRunner {
 public:
  BatchRunner(platform::BatchStore& store, BatchRunnerOptions options, platform::MetricsRegistry& metrics);
  ~BatchRunner();  // joins the senders: destroy it after the gateway stopped
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  void start();
  // A job was created or cancelled: look at once rather than at the next poll.
  void wake() EXCLUDES(mutex_);
  // Sends no new items from now on.
  void halt() EXCLUDES(mutex_);
  // halt(), then waits up to `grace` for the items in flight to be recorded. Call it while
  // the gateway still serves, so that they can finish.
  void stop(std::chrono::milliseconds grace) EXCLUDES(mutex_);
  int in_flight(const std::string& batch_id) const EXCLUDES(mutex_);

 private:
  struct Attempt {
    int server_errors = 0;
    std::chrono::steady_clock::time_point retry_at{};
  };
  void schedule_loop();
  void schedule_once();
  void work_loop();
  void run_item(const platform::PendingItem& item);
  void count(const std::string& outcome);
  void forget(const std::string& batch_id) EXCLUDES(mutex_);  // a finished batch's bookkeeping
  bool idle_locked() const REQUIRES(mutex_);  // no item queued or running

  platform::BatchStore& store_;
  BatchRunnerOptions options_;
  platform::MetricsRegistry& metrics_;
  // Held only to read or change the fields below, never around the store or an HTTP call.
  mutable core::Mutex mutex_;
  core::CondVar wake_;        // the scheduler: poke_ or stopping_
  core::CondVar work_ready_;  // the workers: queue_ or stopping_
  core::CondVar idle_;        // stop(): in_flight_ emptied
  std::deque<platform::PendingItem> queue_ GUARDED_BY(mutex_);
  std::map<std::string, std::set<int64_t>> in_flight_ GUARDED_BY(mutex_);  // batch id -> lines queued or running
  std::map<std::pair<std::string, int64_t>, Attempt> retries_ GUARDED_BY(mutex_);
  std::map<std::string, std::string> owners_ GUARDED_BY(mutex_);  // batch id -> the API key name that created it
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool poke_ GUARDED_BY(mutex_) = false;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
};

}  // namespace zs::gateway
