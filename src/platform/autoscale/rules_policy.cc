#include "platform/autoscale/rules_policy.h"

#include <algorithm>
#include <cmath>

namespace zs::platform {
namespace {

std::string percent(double fraction) { return short_number(fraction * 100) + "%"; }

}  // namespace

RulesPolicy::RulesPolicy(const PolicyOptions& options)
    : options_(options), queue_(options.rules_queue_window_s), cadence_(options.evaluation_interval_s) {}

std::string RulesPolicy::scale_out_trigger(const DeploymentObservation& o) const {
  const double queue = queue_.average(o.now_s, options_.rules_queue_window_s);
  if (queue > options_.rules_queue_threshold)
    return "queue " + short_number(queue) + " > " + short_number(options_.rules_queue_threshold) + " over " +
           short_number(options_.rules_queue_window_s) + " s";
  if (high_since_ && o.now_s - *high_since_ >= options_.rules_high_for_s)
    return "utilisation above " + percent(options_.rules_high_utilization) + " for " +
           short_number(o.now_s - *high_since_) + " s";
  if (o.ttft_objective_s > 0 && o.ttft_p95_s > o.ttft_objective_s * options_.rules_ttft_factor)
    return "ttft p95 " + short_number(o.ttft_p95_s) + " s > " + short_number(options_.rules_ttft_factor) +
           "x objective " + short_number(o.ttft_objective_s) + " s";
  return "";
}

ScalingDecision RulesPolicy::decide(const DeploymentObservation& o) {
  const double now = o.now_s;
  const int live = live_count(o);
  const int ready = ready_count(o);
  const int demand = demand_of(o);
  queue_.add(now, o.queued);
  if (!started_ || now < last_active_s_) {
    // Start from what runs (a restart keeps the instances it finds), timers from now.
    started_ = true;
    count_ = bounded(live, o);
    last_active_s_ = last_scale_out_s_ = last_scale_in_s_ = now;
    high_since_.reset();
    low_since_.reset();
  }
  if (demand > 0 || o.arrivals > 0) last_active_s_ = now;

  // Utilisation is only defined over ready instances; while none is, the timers wait.
  if (ready > 0) {
    const double utilisation = static_cast<double>(o.in_flight) / (ready * std::max(1, o.slots));
    if (utilisation > options_.rules_high_utilization) {
      if (!high_since_) high_since_ = now;
    } else {
      high_since_.reset();
    }
    if (utilisation < options_.rules_low_utilization && o.queued == 0) {
      if (!low_since_) low_since_ = now;
    } else {
      low_since_.reset();
    }
  }

  ScalingDecision d;
  const int before = count_;
  if (demand > 0 && live == 0 && count_ == 0) {
    count_ = 1;  // a waiting request never waits for the rules
    d.reason = "rules: cold start: " + std::to_string(demand) + " waiting";
  } else if (cadence_.due(now)) {
    cadence_.mark(now);
    const std::string trigger = scale_out_trigger(o);
    const double quiet_s = now - last_active_s_;
    if (!trigger.empty()) {
      if (now - last_scale_out_s_ >= options_.rules_scale_out_cooldown_s && ready == live &&
          count_ < o.max_instances) {
        const int step = std::max(1, static_cast<int>(std::ceil(options_.rules_scale_out_fraction * count_)));
        count_ = bounded(count_ + step, o);
        last_scale_out_s_ = now;
        if (high_since_) high_since_ = now;  // the new capacity gets a full period before the next step
        d.reason = "rules: " + trigger + ": +" + std::to_string(count_ - before);
      }
    } else if (o.keep_alive_s >= 0 && demand == 0 && quiet_s >= o.keep_alive_s) {
      count_ = 0;
      if (before > 0) d.reason = "rules: no traffic for " + short_number(quiet_s) + " s: scale to zero";
    } else if (o.keep_alive_s >= 0 && low_since_ && count_ > 1 &&
               now - std::max({*low_since_, last_scale_in_s_, last_scale_out_s_}) >=
                   options_.rules_scale_in_interval_s) {
      const int step = std::max(1, static_cast<int>(std::floor(options_.rules_scale_in_fraction * count_)));
      const int spare = static_cast<int>(std::ceil(options_.rules_warm_fraction * count_));
      const int floor = std::max(1, busy_count(o) + spare);
      const int next = std::max(floor, count_ - step);
      if (next < count_) {
        count_ = next;
        d.reason = "rules: utilisation below " + percent(options_.rules_low_utilization) + " for " +
                   short_number(now - *low_since_) + " s: -" + std::to_string(before - count_);
      }
      last_scale_in_s_ = now;
    }
  }
  count_ = bounded(count_, o);
  settle_count(d, count_, o, name());
  return d;
}

}  // namespace zs::platform
