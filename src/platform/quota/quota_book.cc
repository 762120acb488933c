#include "platform/quota/quota_book.h"

#include <cmath>
#include <cstdio>

namespace zs::platform {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void set_bucket(std::optional<TokenBucket>& bucket, double per_minute, double now_s) {
  if (per_minute <= 0) bucket.reset();
  else if (bucket) bucket->set_rate(per_minute, now_s);
  else bucket.emplace(per_minute, now_s);
}

}  // namespace

void QuotaBook::set_limits(const std::string& key, const QuotaLimits& limits, double now_s) {
  core::MutexLock lock(mutex_);
  Account& a = accounts_[key];
  a.limits = limits;
  set_bucket(a.requests, limits.requests_per_minute, now_s);
  set_bucket(a.tokens, limits.tokens_per_minute, now_s);
}

std::optional<QuotaRefusal> QuotaBook::admit(const std::string& key, double now_s) {
  core::MutexLock lock(mutex_);
  Account& a = accounts_[key];
  const std::string who = "API key '" + key + "'";
  if (a.limits.max_concurrent > 0 && a.in_flight >= a.limits.max_concurrent)
    return QuotaRefusal{"max_concurrent", static_cast<double>(a.limits.max_concurrent), 1,
                        who + " has " + std::to_string(a.in_flight) + " requests in flight, its max_concurrent limit"};
  if (a.requests && a.requests->available(now_s) < 1) {
    const double wait = a.requests->seconds_until(1, now_s);
    return QuotaRefusal{"requests_per_minute", a.limits.requests_per_minute, wait,
                        who + " exceeded its requests_per_minute limit of " + number(a.limits.requests_per_minute)};
  }
  // Tokens are known only once a request ends, so the bucket refuses only once spent.
  if (a.tokens && a.tokens->available(now_s) <= 0) {
    const double wait = a.tokens->seconds_until(1, now_s);
    return QuotaRefusal{"tokens_per_minute", a.limits.tokens_per_minute, wait,
                        who + " exceeded its tokens_per_minute limit of " + number(a.limits.tokens_per_minute)};
  }
  if (a.requests) a.requests->take(1, now_s);
  ++a.in_flight;
  return std::nullopt;
}

void QuotaBook::finish(const std::string& key, double tokens, double now_s) {
  core::MutexLock lock(mutex_);
  Account& a = accounts_[key];
  a.in_flight = std::max(0, a.in_flight - 1);
  if (a.tokens && tokens > 0) a.tokens->take(tokens, now_s);
}

QuotaUsage QuotaBook::usage(const std::string& key, double now_s) {
  core::MutexLock lock(mutex_);
  Account& a = accounts_[key];
  QuotaUsage u;
  if (a.requests) u.requests_remaining = std::max(0.0, std::floor(a.requests->available(now_s)));
  if (a.tokens) u.tokens_remaining = std::max(0.0, std::floor(a.tokens->available(now_s)));
  u.in_flight = a.in_flight;
  return u;
}

}  // namespace zs::platform
