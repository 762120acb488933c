#include "platform/autoscale/time_window.h"

#include <algorithm>

namespace zs::platform {

void TimeWeightedWindow::add(double now_s, double value) {
  if (!samples_.empty() && now_s < samples_.back().t) samples_.clear();
  if (!samples_.empty() && samples_.back().value == value) return;  // still the same step
  if (!samples_.empty() && samples_.back().t == now_s) {
    samples_.back().value = value;
  } else {
    samples_.push_back({now_s, value});
  }
  // Keep the last sample that starts before the horizon: it covers the window's first part.
  while (samples_.size() >= 2 && samples_[1].t <= now_s - horizon_s_) samples_.pop_front();
}

double TimeWeightedWindow::average(double now_s, double window_s) const {
  if (samples_.empty()) return 0;
  const double from = std::max(now_s - window_s, samples_.front().t);
  const double span = now_s - from;
  if (span <= 0) return samples_.back().value;
  double sum = 0;
  for (size_t i = 0; i < samples_.size(); ++i) {
    const double start = std::max(samples_[i].t, from);
    const double end = std::min(i + 1 < samples_.size() ? samples_[i + 1].t : now_s, now_s);
    if (end > start) sum += samples_[i].value * (end - start);
  }
  return sum / span;
}

}  // namespace zs::platform
