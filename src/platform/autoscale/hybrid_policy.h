#pragma once
// "hybrid", the default policy: the instance count follows demand at once (as `fixed`: the
// instances in flight + queued requests need, no averaging window in the way of a burst), and
// instances above that leave once idle for hybrid_scale_in_delay_s. What a deployment costs
// and how often a request finds nothing running is decided by the last instance, after the
// last request of a busy period: it follows the idle-time histogram of "Serverless in the
// Wild" (Shahrad et al., ATC'20) — unload, pre-warm before the next request is due, keep it
// until the request has probably come — but the two windows are the cheapest ones for this
// deployment's own idle times rather than fixed percentiles: each candidate pre-warm point
// (the lower edge of the bin holding the 0th, 1st, 5th, 10th or 25th percentile of idle time,
// less the start lead) and each keep-until point (a bin's upper edge) is priced as the
// instance time it keeps warm over the recorded idle times plus hybrid_cold_start_cost_s for
// every idle time it would miss (cold), and the cheapest pair wins. A spread-out pattern thus
// gets "stop at once" or "keep a while" (whichever its idle times make cheaper); a regular one
// gets a short window around the next request. With fewer than histogram_min_samples idle
// times, or more than histogram_max_oob_fraction beyond histogram_range_s, the last instance
// follows the fixed keep_alive. The start lead is this deployment's measured start time (from
// the decision asking for an instance to the first look with one more ready, smoothed),
// prewarm_lead_s until one was measured.
#include <string>

#include "platform/autoscale/idle_time_histogram.h"
#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

class HybridPolicy final : public ScalingPolicy {
 public:
  explicit HybridPolicy(const PolicyOptions& options);
  std::string_view name() const override { return "hybrid"; }
  ScalingDecision decide(const DeploymentObservation& o) override;
  std::string save_state() const override { return histogram_.serialize(); }
  core::Status restore_state(const std::string& state) override;

  // The windows for the last instance, measured from the end of the last request.
  struct Windows {
    bool learned = false;     // false: the fixed keep_alive decides
    std::string why;          // why not, or what was chosen
    double prewarm_at_s = 0;  // start it this long after the last request (0: keep it from the end)
    double keep_until_s = 0;  // keep it until this long after the last request (0: stop at once)
  };
  const Windows& windows();
  const IdleTimeHistogram& histogram() const { return histogram_; }

 private:
  Windows compute_windows() const;
  // The pre-warm lead: the deployment's measured start time, else prewarm_lead_s.
  double start_lead_s() const;

  PolicyOptions options_;
  IdleTimeHistogram histogram_;
  IdleTracker idle_;
  Windows windows_;
  uint64_t windows_total_ = ~0ull;  // histogram size the cached windows were computed at
  double windows_lead_s_ = 0;
  double windows_share_ = 1;     // sleep_cost_share_ the windows were computed with
  double sleep_cost_share_ = 1;  // of the last observation (1 when instances never sleep)
  StartTimer starts_;
  bool last_warm_ = false;          // the last decision kept the last instance for its window
  bool last_unloaded_ = false;
};

}  // namespace zs::platform
