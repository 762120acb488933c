#include "platform/autoscale/policy_support.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace zs::platform {

int ready_count(const DeploymentObservation& o) {
  return static_cast<int>(std::count_if(o.instances.begin(), o.instances.end(), [](const auto& i) { return i.ready; }));
}

int live_count(const DeploymentObservation& o) { return static_cast<int>(o.instances.size()); }

int busy_count(const DeploymentObservation& o) {
  return static_cast<int>(
      std::count_if(o.instances.begin(), o.instances.end(), [](const auto& i) { return i.in_flight > 0; }));
}

int demand_of(const DeploymentObservation& o) { return std::max(0, o.in_flight) + std::max(0, o.queued); }

double per_instance_target(const PolicyOptions& options, const DeploymentObservation& o) {
  if (options.target_concurrency > 0) return options.target_concurrency;
  return std::max(1, o.slots);
}

int instances_for(double demand, double target) {
  if (demand <= 0) return 0;
  if (target <= 0) target = 1;
  // Averages of integer demand carry rounding noise; do not start an instance for 1e-9 of a request.
  const double n = std::ceil(demand / target - 1e-6);
  if (n >= 1e6) return 1000000;
  return std::max(1, static_cast<int>(n));
}

int bounded(int desired, const DeploymentObservation& o) {
  const int lo = std::max(0, o.min_instances);
  return std::clamp(desired, lo, std::max(lo, o.max_instances));
}

std::vector<std::string> surplus_idle(const DeploymentObservation& o, int desired, double min_idle_s) {
  int surplus = live_count(o) - std::max(0, desired);
  std::vector<std::string> stop;
  if (surplus <= 0) return stop;
  std::vector<const InstanceObservation*> idle;
  for (const auto& i : o.instances)
    if (i.ready && i.in_flight == 0 && i.idle_for_s >= min_idle_s) idle.push_back(&i);
  // Longest idle first; ids break ties so that a decision never depends on container order.
  std::sort(idle.begin(), idle.end(), [](auto a, auto b) {
    return a->idle_for_s != b->idle_for_s ? a->idle_for_s > b->idle_for_s : a->id < b->id;
  });
  for (const auto* i : idle) {
    if (surplus-- <= 0) break;
    stop.push_back(i->id);
  }
  return stop;
}

std::string short_number(double v) {
  char buf[32];
  if (std::fabs(v - std::round(v)) < 0.05) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

void settle_count(ScalingDecision& d, int desired, const DeploymentObservation& o, std::string_view policy) {
  d.desired = desired;
  if (o.keep_alive_s < 0) {
    d.desired = std::max(d.desired, std::min(live_count(o), std::max(o.min_instances, o.max_instances)));
  } else {
    d.stop = surplus_idle(o, d.desired);
  }
  explain_stops(d, policy);
}

double IdleTracker::observe(const DeploymentObservation& o) {
  const double now = o.now_s;
  double ended = -1;
  if (idle_ && now < since_s_) since_s_ = now;  // a clock that stepped back
  if (o.arrivals > 0) {
    if (idle_) ended = now - since_s_;
    idle_ = false;
    seen_ = true;
  }
  if (demand_of(o) > 0) {
    idle_ = false;
    seen_ = true;
  } else if (seen_ && !idle_) {
    idle_ = true;  // the last request just ended (or came and went between two observations)
    since_s_ = now;
  }
  return ended;
}

void StartTimer::observe(const DeploymentObservation& o, const ScalingDecision& d) {
  const int ready = ready_count(o);
  if (asked_s_ >= 0) {
    if (ready > ready_before_ && o.now_s >= asked_s_) {
      const double took = o.now_s - asked_s_;
      measured_s_ = measured_s_ > 0 ? 0.75 * measured_s_ + 0.25 * took : took;
      asked_s_ = -1;
    } else if (live_count(o) <= ready) {
      asked_s_ = -1;  // nothing starting any more (stopped before it was ready)
    }
  }
  if (asked_s_ < 0 && d.desired > live_count(o)) {
    asked_s_ = o.now_s;
    ready_before_ = ready;
  }
}

void explain_stops(ScalingDecision& d, std::string_view policy) {
  if (!d.reason.empty() || d.stop.empty()) return;
  d.reason = std::string(policy) + ": stop " + std::to_string(d.stop.size()) + " idle instance" +
             (d.stop.size() == 1 ? "" : "s") + " above desired " + std::to_string(d.desired);
}

}  // namespace zs::platform
