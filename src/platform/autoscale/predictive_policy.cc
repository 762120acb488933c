#include "platform/autoscale/predictive_policy.h"

#include <algorithm>
#include <cmath>

namespace zs::platform {

PredictivePolicy::PredictivePolicy(const PolicyOptions& options)
    : options_(options), profile_(options.predictive_history_weight), reactive_(options) {}

core::Status PredictivePolicy::restore_state(const std::string& state) {
  if (state.empty()) return core::Status::ok();
  return profile_.parse(state).with_context("restoring the predictive policy");
}

int PredictivePolicy::forecast_floor(double now_s, const DeploymentObservation& o, std::string* why) const {
  const int min_weeks = static_cast<int>(std::lround(options_.predictive_min_weeks));
  const double target = per_instance_target(options_, o);
  int floor = 0;
  // The hour we are in and the one the lead reaches into: an instance started now should still
  // be useful when it is ready, and a peak hour keeps its instances until it ends.
  for (double t : {now_s, now_s + options_.prewarm_lead_s}) {
    const ArrivalProfile::Bucket b = profile_.expected(t, min_weeks);
    if (b.samples == 0 || b.arrivals < options_.predictive_threshold) continue;
    const int n = std::max(1, instances_for(b.demand, target));
    if (n > floor) {
      floor = n;
      if (why)
        *why = "predictive: expect " + short_number(b.arrivals) + " arrivals in the hour of " +
               ArrivalProfile::hour_label(t) + " (threshold " + short_number(options_.predictive_threshold) +
               ", mean demand " + short_number(b.demand) + "): keep " + std::to_string(n) + " warm";
    }
  }
  return floor;
}

ScalingDecision PredictivePolicy::decide(const DeploymentObservation& o) {
  profile_.observe(o.now_s, o.arrivals, demand_of(o));
  ScalingDecision d = reactive_.decide(o);
  const int cap = std::max(o.min_instances, o.max_instances);
  const int floor = std::min(forecast_floor(o.now_s, o, nullptr), cap);
  // Written out only when a decision reports it (formatting costs more than forecasting).
  std::string why;
  if (floor != floor_ && floor > 0) (void)forecast_floor(o.now_s, o, &why);
  if (floor > d.desired) {
    d.desired = floor;
    if (o.keep_alive_s >= 0) d.stop = surplus_idle(o, d.desired);
    if (floor != floor_) d.reason = why;
  } else if (floor != floor_ && floor_ > 0 && d.reason.empty()) {
    d.reason = floor == 0 ? "predictive: no peak expected now or within the lead; concurrency decides"
                          : why;
  }
  floor_ = floor;
  // No peak expected now: idle instances sleep at once rather than after the deployment's delay.
  if (floor == 0) d.sleep_after_s = 0;
  if (!d.stop.empty() && d.reason.empty()) explain_stops(d, name());
  return d;
}

}  // namespace zs::platform
