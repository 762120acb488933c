#pragma once
// A token bucket refilled continuously at `per_minute` tokens a minute up to a burst of one
// minute's worth. Usage known only afterwards (tokens of a finished request) may take the
// balance below zero; later requests then wait until it refills.
#include <algorithm>

namespace zs::platform {

class TokenBucket {
 public:
  TokenBucket(double per_minute, double now_s) : rate_(per_minute / 60), capacity_(per_minute), level_(per_minute), at_(now_s) {}

  double available(double now_s) {
    refill(now_s);
    return level_;
  }
  void take(double n, double now_s) {
    refill(now_s);
    level_ -= n;
  }
  // Seconds until `n` tokens are available (0 when they are now).
  double seconds_until(double n, double now_s) {
    refill(now_s);
    if (level_ >= n || rate_ <= 0) return 0;
    return (n - level_) / rate_;
  }
  double capacity() const { return capacity_; }
  // A new limit keeps the balance, clipped to the new capacity.
  void set_rate(double per_minute, double now_s) {
    refill(now_s);
    rate_ = per_minute / 60;
    capacity_ = per_minute;
    level_ = std::min(level_, capacity_);
  }

 private:
  void refill(double now_s) {
    if (now_s > at_) level_ = std::min(capacity_, level_ + (now_s - at_) * rate_);
    at_ = std::max(at_, now_s);
  }
  double rate_;
  double capacity_;
  double level_;
  double at_;
};

}  // namespace zs::platform
