#pragma once
// Small pieces every scaling policy shares: counting what an observation holds, turning a
// wanted count into a bounded one and into the idle instances to stop, and an evaluation
// cadence that tolerates observations at any interval.
#include <string>
#include <vector>

#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

int ready_count(const DeploymentObservation& o);
int live_count(const DeploymentObservation& o);
int busy_count(const DeploymentObservation& o);  // instances with something in flight
int demand_of(const DeploymentObservation& o);   // in flight + queued

// Requests one instance should carry: the option, or the deployment's slots when it is 0.
double per_instance_target(const PolicyOptions& options, const DeploymentObservation& o);

// Instances needed for `demand` at `target` each; tolerant of floating-point noise (8.0000001 / 4 is 2).
int instances_for(double demand, double target);

// `desired` within [min_instances, max(min_instances, max_instances)].
int bounded(int desired, const DeploymentObservation& o);

// Idle ready instances to drain so that the live count comes down to `desired`: longest idle
// first, only those idle for at least `min_idle_s`. Starting or busy instances are never picked.
std::vector<std::string> surplus_idle(const DeploymentObservation& o, int desired, double min_idle_s = 0);

// "2.5", "12", "0.1": short numbers for decision reasons.
std::string short_number(double v);

// When a policy re-evaluates: at most every `interval_s` of observation time. A clock that
// goes backwards (a restored simulator run) makes the next evaluation due at once.
class Cadence {
 public:
  explicit Cadence(double interval_s) : interval_s_(interval_s) {}
  bool due(double now_s) const { return !started_ || now_s < last_s_ || now_s - last_s_ >= interval_s_; }
  void mark(double now_s) {
    started_ = true;
    last_s_ = now_s;
  }

 private:
  double interval_s_;
  bool started_ = false;
  double last_s_ = 0;
};

// Idle periods of a deployment: from the moment nothing is in flight or queued to the next
// arrival (what the histogram policies learn from). An idle period starts only after some
// traffic was seen.
class IdleTracker {
 public:
  // Feeds one observation; returns the length of the idle period an arrival just ended, or -1.
  double observe(const DeploymentObservation& o);
  bool idle() const { return idle_; }
  double since_s() const { return since_s_; }

 private:
  bool seen_ = false;
  bool idle_ = false;
  double since_s_ = 0;
};

// How long a deployment takes to start an instance, as far as observations show: from the
// decision that asked for one to the first look with more instances ready, smoothed so that
// one late look does not stretch every pre-warm. Pre-warming policies start this much ahead.
class StartTimer {
 public:
  // Feeds an observation and the decision made on it.
  void observe(const DeploymentObservation& o, const ScalingDecision& d);
  // The measured start time, or `fallback_s` until one was measured.
  double lead_s(double fallback_s) const { return measured_s_ > 0 ? measured_s_ : fallback_s; }

 private:
  double measured_s_ = 0;
  double asked_s_ = -1;  // a start asked for at this time, not yet seen ready
  int ready_before_ = 0;
};

// Fills `reason` for a decision that stops instances without having said why.
void explain_stops(ScalingDecision& d, std::string_view policy);

// The end of a demand-driven decision: `desired` within bounds; with keep_alive < 0 (never
// scale in) the live instances are kept, otherwise idle ones beyond `desired` are stopped,
// with a reason.
void settle_count(ScalingDecision& d, int desired, const DeploymentObservation& o, std::string_view policy);

}  // namespace zs::platform
