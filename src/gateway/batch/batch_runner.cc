#include "gateway/batch/batch_runner.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/log.h"
#include "gateway/http/http_client.h"

namespace zs::gateway {

using Clock = std::chrono::steady_clock;
using platform::BatchState;

BatchRunner::BatchRunner(platform::BatchStore& store, BatchRunnerOptions options, platform::MetricsRegistry& metrics)
    : store_(store), options_(std::move(options)), metrics_(metrics) {
  options_.concurrency = std::max(1, options_.concurrency);
}

void BatchRunner::start() {
  scheduler_ = std::thread([this] { schedule_loop(); });
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { work_loop(); });
}

void BatchRunner::wake() {
  {
    core::MutexLock lock(mutex_);
    poke_ = true;
  }
  wake_.notify_all();
}

void BatchRunner::halt() {
  {
    core::MutexLock lock(mutex_);
    stopping_ = true;
    // Queued items never started: they stay pending in the store.
    for (const auto& item : queue_) in_flight_[item.batch_id].erase(item.line);
    queue_.clear();
  }
  wake_.notify_all();
  work_ready_.notify_all();
}

void BatchRunner::stop(std::chrono::milliseconds grace) {
  halt();
  {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    core::MutexLock lock(mutex_);
    while (!idle_locked() && idle_.wait_until(mutex_, deadline)) {
    }
  }
  wake_.notify_all();
  work_ready_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
}

BatchRunner::~BatchRunner() {
  stop(std::chrono::milliseconds(0));
  // Items still running end when the gateway closes their connections; they stay unrecorded
  // and are sent again at the next start.
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

bool BatchRunner::idle_locked() const {
  return std::all_of(in_flight_.begin(), in_flight_.end(), [](const auto& kv) { return kv.second.empty(); });
}

int BatchRunner::in_flight(const std::string& batch_id) const {
  core::MutexLock lock(mutex_);
  auto it = in_flight_.find(batch_id);
  return it == in_flight_.end() ? 0 : static_cast<int>(it->second.size());
}

void BatchRunner::count(const std::string& outcome) {
  metrics_.counter("zs_batch_items_total", "Batch job items by outcome (completed, failed, retried).",
                   {{"outcome", outcome}})
      .add();
}

void BatchRunner::schedule_loop() {
  for (;;) {
    {
      const auto deadline = std::chrono::steady_clock::now() + options_.poll;
      core::MutexLock lock(mutex_);
      while (!stopping_ && !poke_ && wake_.wait_until(mutex_, deadline)) {
      }
      poke_ = false;
      if (stopping_) return;
    }
    schedule_once();
  }
}

void BatchRunner::schedule_once() {
  const auto now_wall = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  for (const std::string& id : store_.active_batch_ids()) {
    auto rec = store_.batch(id);
    if (!rec) continue;
    const int running = in_flight(id);
    const bool expired = rec->expires_at > 0 && now_wall >= rec->expires_at;
    if (rec->state == BatchState::kCancelling || expired) {
      if (running == 0) {
        const BatchState final_state = rec->state == BatchState::kCancelling ? BatchState::kCancelled : BatchState::kExpired;
        auto done = store_.finalize(id, final_state);
        core::log_info("batch", id + ": " + std::string(platform::batch_state_name(final_state)) +
                                    (done ? "" : " (finalizing failed: " + done.status().message() + ")"));
        forget(id);
      }
      continue;
    }
    std::set<int64_t> exclude;
    bool waiting_retry = false;
    int free_slots;
    {
      core::MutexLock lock(mutex_);
      if (stopping_) return;
      owners_[id] = rec->owner;
      exclude = in_flight_[id];
      const auto now = Clock::now();
      for (const auto& [key, a] : retries_)
        if (key.first == id && a.retry_at > now) {
          exclude.insert(key.second);
          waiting_retry = true;
        }
      int total = 0;
      for (const auto& [b, lines] : in_flight_) total += static_cast<int>(lines.size());
      free_slots = options_.concurrency - total;
    }
    // A batch with nothing in flight or waiting to be retried may be complete: look even
    // when there is no room to send more.
    const bool idle = running == 0 && !waiting_retry;
    if (free_slots <= 0 && !idle) continue;
    auto items = store_.pending_items(id, std::max(free_slots, 1), exclude);
    if (items.empty()) {
      if (idle) {
        auto done = store_.finalize(id, BatchState::kCompleted);
        if (done)
          core::log_info("batch", id + ": completed, " + std::to_string(done->completed) + " succeeded, " +
                                      std::to_string(done->failed) + " failed");
        else
          core::log_error("batch", id + ": cannot finalize: " + done.status().message());
        forget(id);
      }
      continue;
    }
    if (free_slots <= 0) continue;  // pending work but no room: next round
    {
      core::MutexLock lock(mutex_);
      for (auto& item : items) {
        in_flight_[id].insert(item.line);
        queue_.push_back(std::move(item));
      }
    }
    work_ready_.notify_all();
  }
}

void BatchRunner::forget(const std::string& batch_id) {
  core::MutexLock lock(mutex_);
  owners_.erase(batch_id);
  in_flight_.erase(batch_id);
  for (auto it = retries_.begin(); it != retries_.end();)
    it = it->first.first == batch_id ? retries_.erase(it) : std::next(it);
}

void BatchRunner::work_loop() {
  for (;;) {
    platform::PendingItem item;
    {
      core::MutexLock lock(mutex_);
      while (!stopping_ && queue_.empty()) work_ready_.wait(mutex_);
      if (queue_.empty()) return;  // stopping
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    run_item(item);
    {
      core::MutexLock lock(mutex_);
      in_flight_[item.batch_id].erase(item.line);
    }
    idle_.notify_all();
    wake();
  }
}

void BatchRunner::run_item(const platform::PendingItem& item) {
  const auto key = std::make_pair(item.batch_id, item.line);
  // Batch answers are whole JSON documents, never streams (embeddings never stream anyway).
  auto body = nlohmann::json::parse(item.body, nullptr, false);
  if (body.is_object() && item.url != "/v1/embeddings") body["stream"] = false;
  if (auto st = store_.record_attempt(item.batch_id, item.line); !st) {
    core::log_error("batch", item.batch_id + ": " + st.message());
    return;
  }
  std::string owner;
  {
    core::MutexLock lock(mutex_);
    owner = owners_[item.batch_id];
  }
  // The owner header is honoured only with the internal key: usage is metered to the key
  // that created the job.
  HttpHeaders headers{{"Authorization", "Bearer " + options_.internal_key},
                      {"X-Priority", "batch"},
                      {"X-Zeroserve-Batch", item.batch_id},
                      {"X-Zeroserve-Batch-Owner", owner}};
  auto r = http_request("POST", options_.gateway_address, item.url, body.dump(), headers, std::chrono::hours(2));
  platform::ItemOutcome outcome;
  double retry_after_s = 0;
  bool server_error = false;
  if (!r) {
    server_error = true;
    outcome.error_code = "connection_failed";
    outcome.error_message = r.status().message();
  } else if (r->status == 429 || r->status == 503 || r->status == 504) {
    // Capacity, not the item: try again later (batch work waits for free slots). No model
    // saw it, so it is not an attempt.
    const std::string ra = r->header("Retry-After");
    retry_after_s = std::clamp(ra.empty() ? 2.0 : std::atof(ra.c_str()), 0.5, 30.0);
    if (auto st = store_.withdraw_attempt(item.batch_id, item.line); !st) core::log_warn("batch", st.message());
  } else if (r->status == 500 || r->status == 502) {
    server_error = true;
    outcome.status_code = r->status;
    outcome.body = r->body;
  } else {
    outcome.status_code = r->status;
    outcome.body = r->body;
  }
  if (server_error) {
    core::MutexLock lock(mutex_);
    Attempt& a = retries_[key];
    if (++a.server_errors < options_.max_server_errors) retry_after_s = std::min(30.0, 1.0 * (1 << a.server_errors));
  }
  if (retry_after_s > 0) {
    core::MutexLock lock(mutex_);
    retries_[key].retry_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(retry_after_s * 1000));
    count("retried");
    return;
  }
  {
    core::MutexLock lock(mutex_);
    retries_.erase(key);
  }
  auto recorded = store_.record_outcome(item.batch_id, item.line, outcome);
  if (!recorded) {
    core::log_error("batch", item.batch_id + " line " + std::to_string(item.line) + ": " + recorded.status().message());
    return;
  }
  if (*recorded) count(outcome.status_code >= 200 && outcome.status_code < 300 ? "completed" : "failed");
}

}  // namespace zs::gateway
