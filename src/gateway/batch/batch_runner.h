#pragma once
// Runs the items of batch jobs (POST /v1/batches) through the gateway itself, at batch
// priority: each item is an ordinary API request sent over loopback with the server's
// internal key, so it gets the same routing, queueing behind interactive work, metering and
// metrics as any other request. Progress lives in the BatchStore (SQLite): an item's result is
// recorded once, in one transaction, so a job resumes after a restart where it stopped and
// no result is lost or written twice. Items in flight at a crash are sent again; on a clean
// stop the runner lets them finish first.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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
  void wake();
  // Sends no new items from now on.
  void halt();
  // halt(), then waits up to `grace` for the items in flight to be recorded. Call it while
  // the gateway still serves, so that they can finish.
  void stop(std::chrono::milliseconds grace);
  int in_flight(const std::string& batch_id) const;

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
  void forget(const std::string& batch_id);  // a finished batch's bookkeeping

  platform::BatchStore& store_;
  BatchRunnerOptions options_;
  platform::MetricsRegistry& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::deque<platform::PendingItem> queue_;
  std::map<std::string, std::set<int64_t>> in_flight_;  // batch id -> lines queued or running
  std::map<std::pair<std::string, int64_t>, Attempt> retries_;
  std::map<std::string, std::string> owners_;  // batch id -> the API key name that created it
  bool stopping_ = false;
  bool poke_ = false;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
};

}  // namespace zs::gateway
