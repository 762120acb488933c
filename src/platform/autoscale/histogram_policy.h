#pragma once
// "histogram": the hybrid histogram keep-alive policy of "Serverless in the Wild" (Shahrad et
// al., ATC'20). Each idle time of the deployment (from the moment nothing is in flight or
// queued to the next arrival) goes into a histogram of 1-minute bins up to 4 h. When the
// histogram is representative (enough idle times, coefficient of variation of the bin counts
// above a threshold, few out of bounds), after the last request:
//   - pre-warm window: nothing is kept until the head (5th percentile, less a margin, less the
//     start lead), then one instance is started;
//   - keep-alive window: that instance is kept until the tail (99th percentile plus a margin).
// When the head is too short to be worth a stop, the instance simply stays until the tail.
// Otherwise (and always while there is demand) the fixed keep-alive policy decides.
#include <string>

#include "platform/autoscale/fixed_policy.h"
#include "platform/autoscale/idle_time_histogram.h"
#include "platform/autoscale/policy_support.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

class HistogramPolicy final : public ScalingPolicy {
 public:
  explicit HistogramPolicy(const PolicyOptions& options);
  std::string_view name() const override { return "histogram"; }
  ScalingDecision decide(const DeploymentObservation& o) override;
  std::string save_state() const override { return histogram_.serialize(); }
  core::Status restore_state(const std::string& state) override;

  // The windows the histogram gives now, measured from the end of the last request.
  struct Windows {
    bool representative = false;
    std::string why;          // why not, or the percentiles used
    double prewarm_at_s = 0;  // start one instance this long after the last request (0: keep it)
    double keep_until_s = 0;  // and keep it until this long after the last request
  };
  // The start lead is the deployment's measured start time (StartTimer), prewarm_lead_s until
  // one was measured.
  const Windows& windows() const;
  const IdleTimeHistogram& histogram() const { return histogram_; }

 private:
  enum class Phase { kBusy, kFallback, kUnloaded, kWarm, kExpired };

  ScalingDecision decide_now(const DeploymentObservation& o);
  Windows compute_windows(double lead_s) const;

  PolicyOptions options_;
  StartTimer starts_;
  mutable Windows cached_;
  mutable uint64_t cached_total_ = ~0ull;
  mutable double cached_lead_s_ = -1;
  IdleTimeHistogram histogram_;
  FixedPolicy fallback_;
  IdleTracker idle_;
  Phase phase_ = Phase::kBusy;
};

}  // namespace zs::platform
