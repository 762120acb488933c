#pragma once
// Per-API-key quotas: requests a minute and tokens a minute (token buckets) and a cap on
// requests in flight. admit() is asked before a request is queued; finish() returns its
// concurrency slot and charges the tokens it used. A refusal names the limit it hit, so the
// 429 tells the client what to change. Time is passed in, so tests drive a virtual clock.
#include <map>
#include <optional>
#include <string>

#include "core/mutex.h"
#include "platform/quota/token_bucket.h"

namespace zs::platform {

struct QuotaLimits {
  double requests_per_minute = 0;  // 0: unlimited
  double tokens_per_minute = 0;
  int max_concurrent = 0;
};

struct QuotaRefusal {
  std::string limit;  // "requests_per_minute", "tokens_per_minute" or "max_concurrent"
  double limit_value = 0;
  double retry_after_s = 1;
  std::string message;
};

struct QuotaUsage {
  double requests_remaining = -1;  // -1: unlimited
  double tokens_remaining = -1;
  int in_flight = 0;
};

class QuotaBook {
 public:
  // Sets or changes a key's limits; what it already used counts against the new ones.
  void set_limits(const std::string& key, const QuotaLimits& limits, double now_s) EXCLUDES(mutex_);
  // Takes a request and a concurrency slot, or says which limit refuses it.
  std::optional<QuotaRefusal> admit(const std::string& key, double now_s) EXCLUDES(mutex_);
  // The request admitted earlier ended having used `tokens`.
  void finish(const std::string& key, double tokens, double now_s) EXCLUDES(mutex_);
  QuotaUsage usage(const std::string& key, double now_s) EXCLUDES(mutex_);

 private:
  struct Account {
    QuotaLimits limits;
    std::optional<TokenBucket> requests;
    std::optional<TokenBucket> tokens;
    int in_flight = 0;
  };
  core::Mutex mutex_;
  std::map<std::string, Account> accounts_ GUARDED_BY(mutex_);
};

}  // namespace zs::platform
