#pragma once
// A signal observed at irregular times (every ~20 ms from the fleet, at event times from the
// simulator), held constant between observations and averaged over trailing windows. Averaging
// by time rather than by sample keeps a burst of observations from outweighing a quiet minute.
#include <deque>

namespace zs::platform {

class TimeWeightedWindow {
 public:
  // Keeps enough history for windows up to `horizon_s`.
  explicit TimeWeightedWindow(double horizon_s) : horizon_s_(horizon_s) {}

  // `value` holds from `now_s` until the next add. A time earlier than the last one restarts
  // the history (a clock that was reset).
  void add(double now_s, double value);

  // Mean over [now_s - window_s, now_s]. With less history than the window, the mean over what
  // was observed; the latest value when no time has passed since the first sample; 0 when empty.
  double average(double now_s, double window_s) const;

  bool empty() const { return samples_.empty(); }
  void clear() { samples_.clear(); }

 private:
  struct Sample {
    double t;
    double value;
  };
  double horizon_s_;
  std::deque<Sample> samples_;
};

}  // namespace zs::platform
