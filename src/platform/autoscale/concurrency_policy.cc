#include "platform/autoscale/concurrency_policy.h"

#include <algorithm>
#include <cmath>

namespace zs::platform {

ConcurrencyPolicy::ConcurrencyPolicy(const PolicyOptions& options)
    : options_(options),
      demand_(std::max(options.stable_window_s, options.panic_window_s)),
      cadence_(options.evaluation_interval_s) {}

ScalingDecision ConcurrencyPolicy::decide(const DeploymentObservation& o) {
  const int demand = demand_of(o);
  const int live = live_count(o);
  demand_.add(o.now_s, demand);
  if (!seen_ || demand > 0 || o.arrivals > 0 || o.now_s < last_active_s_) last_active_s_ = o.now_s;
  seen_ = true;

  ScalingDecision d;
  // A request waiting with no instance at all is a cold start in progress: never make it wait
  // for the cadence (Knative's activator pokes the autoscaler the same way).
  const bool cold = demand > 0 && live == 0;
  if (cadence_.due(o.now_s) || cold) {
    cadence_.mark(o.now_s);
    const int before = desired_;
    Why why;
    std::string transition;
    desired_ = evaluate(o, why, transition);
    // Log what changed something: a panic entered or left, or a new count.
    if (!transition.empty()) d.reason = transition;
    else if (desired_ != before) d.reason = why.text(o);
  }
  settle_count(d, bounded(desired_, o), o, name());  // bounds may change on a config reload between evaluations
  return d;
}

std::string ConcurrencyPolicy::Why::text(const DeploymentObservation& o) const {
  std::string r;
  switch (kind) {
    case Kind::kStable:
    case Kind::kPanic:
      r = std::string(kind == Kind::kPanic ? "panic" : "stable") + ": demand " + short_number(demand) + " over " +
          short_number(window_s) + " s at target " + short_number(target);
      if (rate_limited) r += " (rate-limited)";
      if (held > 0) r += "; scale-down delay holds " + std::to_string(held);
      return r;
    case Kind::kScaleToZero: return "scale to zero: no traffic for " + short_number(quiet_s) + " s";
    case Kind::kColdStart: return "cold start: " + std::to_string(waiting) + " waiting";
    case Kind::kKeepOne: return "keep 1 until keep_alive " + short_number(o.keep_alive_s) + " s without traffic";
  }
  return r;
}

int ConcurrencyPolicy::evaluate(const DeploymentObservation& o, Why& why, std::string& transition) {
  const double now = o.now_s;
  const double target = per_instance_target(options_, o);
  const int live = live_count(o);
  const int pods = std::max(1, ready_count(o));  // as Knative: rates and capacity from ready instances, at least 1
  const double stable = demand_.average(now, options_.stable_window_s);
  const double panic = demand_.average(now, options_.panic_window_s);
  const int max_up = static_cast<int>(std::ceil(options_.max_scale_up_rate * pods));
  const int max_down = static_cast<int>(std::floor(pods / options_.max_scale_down_rate));
  const int want_stable = std::clamp(instances_for(stable, target), max_down, max_up);
  const int want_panic = std::clamp(instances_for(panic, target), max_down, max_up);

  const double capacity = pods * target;
  const bool over = panic >= options_.panic_threshold * capacity && panic > 0;
  if (over) {
    if (!panicking_) {
      panicking_ = true;
      max_panic_ = std::max(desired_, live);
      transition = "panic: demand " + short_number(panic) + " >= " + short_number(options_.panic_threshold) +
                   "x capacity " + short_number(capacity);
    }
    last_over_s_ = now;
  } else if (panicking_ && now - last_over_s_ >= options_.stable_window_s) {
    panicking_ = false;
    max_panic_ = 0;
    transition = "panic over: no panic condition for " + short_number(options_.stable_window_s) + " s";
  }

  int want;
  if (panicking_) {
    max_panic_ = std::max(max_panic_, want_panic);
    want = max_panic_;
    why = {Why::Kind::kPanic, panic, options_.panic_window_s, target};
  } else {
    want = want_stable;
    why = {Why::Kind::kStable, stable, options_.stable_window_s, target};
    why.rate_limited = want_stable != instances_for(stable, target);
  }

  // Scale-down delay: the highest recommendation of the trailing delay window holds.
  if (options_.scale_down_delay_s > 0) {
    while (!recent_.empty() && (recent_.front().t <= now - options_.scale_down_delay_s || recent_.front().t > now))
      recent_.pop_front();
    recent_.push_back({now, want});
    int held = want;
    for (const auto& r : recent_) held = std::max(held, r.count);
    if (held > want) why.held = held;
    want = held;
  }

  // Scale to zero only after keep_alive without any traffic; and once there has been none for
  // that long, the windows' memory of finished work does not hold instances either.
  const double quiet_s = now - last_active_s_;
  const int demand = demand_of(o);
  if (o.keep_alive_s >= 0 && demand == 0 && quiet_s >= o.keep_alive_s) {
    if (panicking_) transition = "panic over: no traffic for " + short_number(quiet_s) + " s";
    why = {Why::Kind::kScaleToZero};
    why.quiet_s = quiet_s;
    want = 0;
    panicking_ = false;
    max_panic_ = 0;
    recent_.clear();
  } else if (want == 0 && (live > 0 || demand > 0)) {
    want = 1;
    why = {demand > 0 ? Why::Kind::kColdStart : Why::Kind::kKeepOne};
    why.waiting = demand;
  }
  return bounded(want, o);
}

}  // namespace zs::platform
